package lab

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// PlacementCSVHeader is the header of placement.csv: one row per
// dispatcher × placement × utilization. schedulable and miss_ratio are
// means over seeds with 95% t-interval half-widths (_ci95); sets counts
// every seed's sets; unpartitionable, partition_rta and disagreements are
// empty for global placement.
var PlacementCSVHeader = []string{
	"processors", "tasks", "dispatcher", "placement", "utilization", "sets",
	"schedulable", "schedulable_ci95", "miss_ratio", "miss_ratio_ci95",
	"unpartitionable", "partition_rta", "disagreements", "migrations_per_job",
}

// WritePlacementCSV writes placement.csv (see PlacementCSVHeader).
func (r *Results) WritePlacementCSV(w io.Writer) error {
	pl := r.Experiment.Placement
	cw := csv.NewWriter(w)
	if err := cw.Write(PlacementCSVHeader); err != nil {
		return err
	}
	for _, p := range r.Placement {
		unpart, rta, dis := "", "", ""
		if p.Placement == Partitioned {
			unpart, rta, dis = strconv.Itoa(p.Unpartitionable), ff(p.PartitionRTA, 4), strconv.Itoa(p.Disagreements)
		}
		if err := cw.Write([]string{strconv.Itoa(pl.Processors), strconv.Itoa(pl.Tasks), p.Dispatcher, string(p.Placement),
			ff(p.Utilization, 3), strconv.Itoa(p.Sets), ff(p.Schedulable.Mean, 4), ff(p.Schedulable.Half, 4),
			ff(p.MissRatio.Mean, 5), ff(p.MissRatio.Half, 5), unpart, rta, dis, ff(p.MigrationsPerJob, 4)}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// writePlacementTable prints the points.
func (r *Results) writePlacementTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "dispatcher\tplacement\tU\tsets\tschedulable\t±95%\tmiss ratio\t±95%\tunpartitionable\tpartition RTA\tdisagree\tmigrations/job\t")
	for _, p := range r.Placement {
		unpart, rta, dis := "-", "-", "-"
		if p.Placement == Partitioned {
			unpart, rta, dis = strconv.Itoa(p.Unpartitionable), ff(p.PartitionRTA, 3), strconv.Itoa(p.Disagreements)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", p.Dispatcher, p.Placement, ff(p.Utilization, 2), p.Sets,
			ff(p.Schedulable.Mean, 3), ff(p.Schedulable.Half, 3), ff(p.MissRatio.Mean, 4), ff(p.MissRatio.Half, 4),
			unpart, rta, dis, ff(p.MigrationsPerJob, 3))
	}
	return tw.Flush()
}

// placementFiles renders a placement experiment: placement.csv,
// experiment.json and placement.png/.svg.
func (r *Results) placementFiles() ([]File, error) {
	var b bytes.Buffer
	if err := r.WritePlacementCSV(&b); err != nil {
		return nil, err
	}
	files := []File{{Name: "placement.csv", Data: b.Bytes()}}
	if src := r.Experiment.Source(); src != nil {
		files = append(files, File{Name: "experiment.json", Data: src})
	}
	top, bottom, err := r.placementPlots()
	if err != nil {
		return nil, fmt.Errorf("plotting placement: %w", err)
	}
	png, svg, err := tiledColumn(top, bottom).render()
	if err != nil {
		return nil, fmt.Errorf("rendering placement: %w", err)
	}
	return append(files, File{Name: "placement.png", Data: png}, File{Name: "placement.svg", Data: svg}), nil
}

// placementPlots draws, against total utilization, the schedulable
// fraction (top) and the deadline miss ratio (bottom) of each dispatcher ×
// placement, each point with its 95% t-interval across seeds; for a
// partitioned curve with the utilization fit the top panel adds the
// fraction of sets first-fit decreasing could place (dotted).
func (r *Results) placementPlots() (top, bottom *plot.Plot, err error) {
	pl, seeds := r.Experiment.Placement, len(r.Experiment.Seeds)
	top, bottom = plot.New(), plot.New()
	top.Title.Text = fmt.Sprintf("%s: task sets with no deadline missed, %d tasks on %d processors (RM; partitioned: first-fit decreasing, %s fit)%s",
		r.Experiment.Name, pl.Tasks, pl.Processors, orDefault(pl.Fit, "rta"), seedNote(seeds))
	top.Y.Label.Text = "fraction of task sets"
	bottom.Title.Text = fmt.Sprintf("%s: deadline miss ratio (jobs of the sets that ran)%s", r.Experiment.Name, seedNote(seeds))
	bottom.Y.Label.Text = "missed jobs / jobs"
	for _, p := range []*plot.Plot{top, bottom} {
		p.X.Label.Text = "total utilization"
		p.Y.Min = 0
	}
	top.Y.Max = 1.02
	top.Legend.Left, top.Legend.Top = true, false
	for ci, c := range pl.curves(r.Experiment.Dispatchers) {
		var sched, miss, fits errorBars
		for _, p := range r.Placement {
			if p.Dispatcher != c.disp || p.Placement != c.kind {
				continue
			}
			sched.add(p.Utilization, p.Schedulable)
			miss.add(p.Utilization, p.MissRatio)
			fits.XYs = append(fits.XYs, plotter.XY{X: p.Utilization, Y: 1 - float64(p.Unpartitionable)/float64(p.Sets)})
		}
		name := c.disp + " " + string(c.kind)
		if err := addIntervalLine(top, sched, name, ci, seeds, true); err != nil {
			return nil, nil, err
		}
		if err := addIntervalLine(bottom, miss, name, ci, seeds, false); err != nil {
			return nil, nil, err
		}
		if c.kind == Partitioned && pl.Fit == "utilization" { // with "rta" it is the schedulable line
			l, err := plotter.NewLine(fits.XYs)
			if err != nil {
				return nil, nil, err
			}
			l.Color, l.Dashes = plotutil.Color(ci), []vg.Length{vg.Points(1), vg.Points(3)}
			top.Add(l)
			top.Legend.Add(name+": partitionable (first-fit decreasing, ΣU ≤ 1 per processor)", l)
		}
	}
	return top, bottom, nil
}

// add appends a fraction and its interval, cut at 0 and 1.
func (e *errorBars) add(x float64, i Interval) {
	e.XYs = append(e.XYs, plotter.XY{X: x, Y: i.Mean})
	e.YErrors = append(e.YErrors, struct{ Low, High float64 }{min(i.Half, i.Mean), min(i.Half, 1-i.Mean)})
}

// addIntervalLine draws one curve as a line with points and, with several
// seeds, interval bars.
func addIntervalLine(p *plot.Plot, e errorBars, name string, ci, seeds int, legend bool) error {
	l, pts, err := plotter.NewLinePoints(e.XYs)
	if err != nil {
		return err
	}
	l.Color, l.Width = plotutil.Color(ci), vg.Points(1.5)
	pts.Color, pts.Shape = plotutil.Color(ci), plotutil.Shape(ci)
	p.Add(l, pts)
	if seeds >= 2 {
		bars, err := plotter.NewYErrorBars(e)
		if err != nil {
			return err
		}
		bars.Color = plotutil.Color(ci)
		p.Add(bars)
	}
	if legend {
		p.Legend.Add(name, l, pts)
	}
	return nil
}
