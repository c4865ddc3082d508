package lab

import (
	"encoding/csv"
	"fmt"
	"image/color"
	"io"
	"slices"
	"strconv"
	"text/tabwriter"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// TaskCSVHeader is the header of tasks.csv: one row per real-time task
// per cell, then per workload × policy the rows over seeds (seed "all":
// means, resp_max_us the mean over seeds of the worst response and
// miss_ratio the mean of the seeds' ratios, with 95% confidence
// half-widths in the _ci95 columns; a generated task set, new for every
// seed, gets one "(set)" row instead of one per task).
var TaskCSVHeader = []string{
	"workload", "policy", "seed", "task", "priority", "period_us", "wcet_us", "deadline_us",
	"jobs", "misses", "miss_ratio", "miss_ratio_ci95",
	"resp_p50_us", "resp_p90_us", "resp_p99_us", "resp_max_us", "resp_max_ci95_us", "resp_mean_us",
	"tardiness_max_us", "tardiness_mean_us", "worst_r_over_d", "worst_r_over_d_ci95",
	"cpu_share", "preemptions", "migrations",
}

// hasTasks reports whether any cell ran real-time tasks.
func (r *Results) hasTasks() bool {
	for _, c := range r.Cells {
		if len(c.Tasks) > 0 {
			return true
		}
	}
	return false
}

// WriteTaskCSV writes tasks.csv (see TaskCSVHeader).
func (r *Results) WriteTaskCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(TaskCSVHeader); err != nil {
		return err
	}
	for _, rows := range [][]CellResult{r.Cells, r.Aggregates} {
		for _, c := range rows {
			for i := range c.Tasks {
				if err := cw.Write(c.Tasks[i].row()); err != nil {
					return err
				}
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

func (t *TaskResult) row() []string {
	seed := strconv.FormatUint(t.Seed, 10)
	if t.Aggregate {
		seed = "all"
	}
	return []string{
		t.Workload, t.Policy, seed, t.Task, strconv.Itoa(t.Priority),
		ff(us(float64(t.Period)), 3), ff(us(float64(t.WCET)), 3), ff(us(float64(t.Deadline)), 3),
		strconv.Itoa(t.Jobs), strconv.Itoa(t.Misses), ff(t.MissRatio, 4), ff(t.MissRatioCI, 4),
		ff(us(t.Resp.P50), 3), ff(us(t.Resp.P90), 3), ff(us(t.Resp.P99), 3), ff(us(t.Resp.Max), 3),
		ff(us(t.RespMaxCI), 3), ff(us(t.Resp.Mean), 3),
		ff(us(float64(t.TardinessMax)), 3), ff(us(t.TardinessMean), 3), ff(t.WorstRD, 4), ff(t.WorstRDCI, 4), ff(t.CPUShare, 4),
		strconv.Itoa(t.Preemptions), strconv.Itoa(t.Migrations),
	}
}

// writeTaskTable prints the real-time tasks' rows over seeds.
func (r *Results) writeTaskTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\tpolicy\ttask\tprio\tD µs\tworst µs\t±95%\tworst R/D\t±95%\tmisses\tmiss ratio\t±95%\tcpu share\tpreempted\t")
	for _, a := range r.Aggregates {
		for _, t := range a.Tasks {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%d\t\n",
				t.Workload, t.Policy, t.Task, t.Priority, ff(us(float64(t.Deadline)), 0), ff(us(t.Resp.Max), 1),
				ff(us(t.RespMaxCI), 1), ff(t.WorstRD, 3), ff(t.WorstRDCI, 3), t.Misses, ff(t.MissRatio, 4), ff(t.MissRatioCI, 4),
				ff(t.CPUShare, 3), t.Preemptions)
		}
	}
	return tw.Flush()
}

// rtFigure plots, per task and policy, the worst response time over the
// deadline and the deadline miss ratio: means over seeds, each bar with
// the 95% t-interval of its mean across seeds (Student t, seeds−1 degrees
// of freedom) when there are several seeds.
func (r *Results) rtFigure(w *Workload) (figure, error) {
	top, bottom, err := r.rtPlots(w)
	if err != nil {
		return figure{}, err
	}
	return tiledColumn(top, bottom), nil
}

// rtPlots builds rtFigure's two panels.
func (r *Results) rtPlots(w *Workload) (top, bottom *plot.Plot, err error) {
	rows, seeds := r.workloadAggregates(w.Name), len(r.Experiment.Seeds)
	top = plot.New()
	top.Title.Text = fmt.Sprintf("%s: worst response time / deadline%s", w.Name, seedNote(seeds))
	top.Y.Label.Text = "R / D"
	bottom = plot.New()
	bottom.Title.Text = fmt.Sprintf("%s: deadline miss ratio%s", w.Name, seedNote(seeds))
	bottom.Y.Label.Text = "missed jobs / jobs"
	if len(rows) == 0 || len(rows[0].Tasks) == 0 {
		return top, bottom, nil
	}
	width := vg.Points(float64(48) / float64(len(rows)))
	for pi, a := range rows {
		off := width * vg.Length(float64(pi)-float64(len(rows)-1)/2)
		for _, panel := range []struct {
			p      *plot.Plot
			value  func(TaskResult) (float64, float64)
			legend bool
		}{
			{top, func(t TaskResult) (float64, float64) { return t.WorstRD, t.WorstRDCI }, true},
			{bottom, func(t TaskResult) (float64, float64) { return t.MissRatio, t.MissRatioCI }, false},
		} {
			vals := make(plotter.Values, len(a.Tasks))
			bars := &shiftedErrorBars{off: off, cap: width * 0.6}
			for i, t := range a.Tasks {
				v, half := panel.value(t)
				vals[i] = v
				if seeds >= 2 { // a zero-width interval is drawn too: the seeds agree
					bars.add(float64(i), v, half)
				}
			}
			bc, err := plotter.NewBarChart(vals, width)
			if err != nil {
				return nil, nil, err
			}
			bc.Color, bc.Offset, bc.LineStyle.Width = plotutil.Color(pi), off, 0
			panel.p.Add(bc)
			if len(bars.x) > 0 {
				panel.p.Add(bars)
			}
			if panel.legend {
				panel.p.Legend.Add(a.Policy, bc)
			}
		}
	}
	names := make([]string, len(rows[0].Tasks))
	for i, t := range rows[0].Tasks {
		names[i] = t.Task
	}
	top.NominalX(names...)
	bottom.NominalX(names...)
	top.Legend.Top = true
	if l, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: 1}, {X: float64(len(names)) - 0.5, Y: 1}}); err == nil {
		l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		top.Add(l)
	}
	top.Y.Min, bottom.Y.Min = 0, 0
	for _, p := range []*plot.Plot{top, bottom} {
		p.X.Min, p.X.Max = -0.5, float64(len(names))-0.5
	}
	return top, bottom, nil
}

// seedNote says what a bar over seeds shows.
func seedNote(seeds int) string {
	if seeds < 2 {
		return " (one seed: no interval)"
	}
	return fmt.Sprintf("\nmean of %d seeds, bars: 95%% t-interval of the mean", seeds)
}

// shiftedErrorBars draws interval bars at data x shifted by a fixed page
// offset, so that they stand on the bars of a grouped BarChart drawn with
// the same Offset (gonum's YErrorBars has no offset). The low end never
// goes below zero: a ratio's interval is cut at the axis.
type shiftedErrorBars struct {
	x, lo, hi []float64
	off, cap  vg.Length
}

func (e *shiftedErrorBars) add(x, v, half float64) {
	e.x = append(e.x, x)
	e.lo = append(e.lo, max(0, v-half))
	e.hi = append(e.hi, v+half)
}

// Plot implements plot.Plotter.
func (e *shiftedErrorBars) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	style := draw.LineStyle{Color: color.Black, Width: vg.Points(1)}
	for i, x := range e.x {
		px, lo, hi := trX(x)+e.off, trY(e.lo[i]), trY(e.hi[i])
		c.StrokeLine2(style, px, lo, px, hi)
		c.StrokeLine2(style, px-e.cap/2, lo, px+e.cap/2, lo)
		c.StrokeLine2(style, px-e.cap/2, hi, px+e.cap/2, hi)
	}
}

// DataRange implements plot.DataRanger: the intervals' extent.
func (e *shiftedErrorBars) DataRange() (xmin, xmax, ymin, ymax float64) {
	xmin, xmax = slices.Min(e.x), slices.Max(e.x)
	return xmin, xmax, slices.Min(e.lo), slices.Max(e.hi)
}

// tiledColumn stacks two plots on a white page, their axes aligned.
func tiledColumn(top, bottom *plot.Plot) figure {
	plots := [][]*plot.Plot{{top}, {bottom}}
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadY: vg.Millimeter * 4, PadTop: vg.Millimeter * 2,
		PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	return figure{w: 10 * vg.Inch, h: 8 * vg.Inch, draw: func(dc draw.Canvas) {
		dc.SetColor(color.White)
		dc.Fill(dc.Rectangle.Path())
		canvases := plot.Align(plots, tiles, dc)
		top.Draw(canvases[0][0])
		bottom.Draw(canvases[1][0])
	}}
}
