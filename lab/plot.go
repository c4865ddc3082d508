package lab

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/wqsim/wqsim/des"
)

// figure draws itself on a canvas of a fixed size.
type figure struct {
	w, h vg.Length
	draw func(dc draw.Canvas)
}

// render returns the figure as PNG and SVG.
func (f figure) render() (png, svg []byte, err error) {
	img := vgimg.New(f.w, f.h)
	f.draw(draw.New(img))
	var pb bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&pb); err != nil {
		return nil, nil, err
	}
	sc := vgsvg.New(f.w, f.h)
	f.draw(draw.New(sc))
	var sb bytes.Buffer
	if _, err := sc.WriteTo(&sb); err != nil {
		return nil, nil, err
	}
	return pb.Bytes(), sb.Bytes(), nil
}

// workloadAggregates returns the aggregate rows of workload w, in policy
// order.
func (r *Results) workloadAggregates(w string) []CellResult {
	var out []CellResult
	for _, a := range r.Aggregates {
		if a.Workload == w {
			out = append(out, a)
		}
	}
	return out
}

// cdfFigure plots the queueing-latency CDF of one workload, one line per
// policy (the quantiles averaged over seeds), on a log latency axis.
func (r *Results) cdfFigure(w *Workload) (figure, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s: work-item queueing latency (ExQueueWorkItem → routine start)", w.Name)
	p.X.Label.Text = "latency (µs, log scale)"
	p.Y.Label.Text = "fraction of items ≤ latency"
	p.Y.Min, p.Y.Max = 0, 1
	p.Legend.Top, p.Legend.Left = false, false // bottom right: empty in a CDF
	p.Legend.XOffs, p.Legend.YOffs = -vg.Millimeter*2, vg.Millimeter*2
	p.Add(plotter.NewGrid())
	lo, hi := math.Inf(1), math.Inf(-1)
	rows := r.workloadAggregates(w.Name)
	// Colour says the pool, the dash pattern the dispatcher.
	dispIndex, poolIndex := map[string]int{}, map[string]int{}
	for i, d := range r.Experiment.Dispatchers {
		dispIndex[d] = i
	}
	for i := range r.Experiment.Pools {
		poolIndex[r.Experiment.Pools[i].label()] = i
	}
	drawn := map[string]string{} // a curve's quantiles → the first policy drawn with it
	for _, a := range rows {
		if a.cdf == nil {
			continue
		}
		key := fmt.Sprint(a.cdf)
		same, hidden := drawn[key]
		if !hidden {
			drawn[key] = a.Policy
		}
		pts := make(plotter.XYs, 0, len(a.cdf))
		for j, v := range a.cdf {
			x := math.Max(us(v), 0.01)
			lo, hi = math.Min(lo, x), math.Max(hi, x)
			pts = append(pts, plotter.XY{X: x, Y: cdfQ[j]})
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return figure{}, err
		}
		l.Color = plotutil.DarkColors[poolIndex[a.Pool]%len(plotutil.DarkColors)]
		l.Width = vg.Points(1.5)
		l.Dashes = plotutil.Dashes(dispIndex[a.Dispatcher])
		p.Add(l)
		if hidden {
			// The same curve as an earlier policy would hide under it: say so
			// in the legend rather than leave a policy invisible.
			p.Legend.Add(a.Policy+" (same curve as "+same+")", l)
			continue
		}
		p.Legend.Add(a.Policy, l)
	}
	if lo <= hi {
		if err := addErlangC(p, rows, lo, hi); err != nil {
			return figure{}, err
		}
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.LogTicks{Prec: -1}
		p.X.Min, p.X.Max = lo, hi*1.05
	} else {
		p.Title.Text += " — no item ran"
	}
	return figure{w: 8 * vg.Inch, h: 5 * vg.Inch, draw: p.Draw}, nil
}

// addErlangC draws, for each distinct M/M/c queue among rows (see MMc),
// the Erlang C waiting-time CDF, 1 − C·e^(−(cμ−λ)t), as a black dashed
// reference curve over [lo, hi] µs, and a marker at its mean wait.
func addErlangC(p *plot.Plot, rows []CellResult, lo, hi float64) error {
	var seen []MMc
	for _, a := range rows {
		if a.MMc == nil || slices.Contains(seen, *a.MMc) {
			continue
		}
		m := *a.MMc
		seen = append(seen, m)
		const n = 200
		pts := make(plotter.XYs, 0, n+1)
		for i := 0; i <= n; i++ {
			x := lo * math.Pow(hi/lo, float64(i)/n)
			pts = append(pts, plotter.XY{X: x, Y: m.waitCDF(x * float64(des.Microsecond))})
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return err
		}
		l.Color = color.Black
		l.Width = vg.Points(1)
		l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("Erlang C, M/M/%d (theory): P(wait) %s", m.C, shortNum(m.PWait)), l)
		mean := us(m.MeanWait)
		if mean < lo || mean > hi {
			continue
		}
		sc, err := plotter.NewScatter(plotter.XYs{{X: mean, Y: m.waitCDF(m.MeanWait)}})
		if err != nil {
			return err
		}
		sc.GlyphStyle = draw.GlyphStyle{Color: color.Black, Radius: vg.Points(4), Shape: draw.PyramidGlyph{}}
		p.Add(sc)
		p.Legend.Add(fmt.Sprintf("Erlang C mean wait, %s µs", shortNum(mean)), sc)
	}
	return nil
}

// barsFigure plots four per-policy bar charts of one workload: p99
// queueing latency, throughput, preemptions per second and
// priority-inversion time.
func (r *Results) barsFigure(w *Workload) (figure, error) {
	rows := r.workloadAggregates(w.Name)
	names := make([]string, len(rows))
	for i, a := range rows {
		names[i] = a.Policy
	}
	plots := [][]*plot.Plot{make([]*plot.Plot, 2), make([]*plot.Plot, 2)}
	for i, pn := range barPanels() {
		p, err := barPlot(w.Name, pn, rows, names, len(r.Experiment.Seeds))
		if err != nil {
			return figure{}, err
		}
		plots[i/2][i%2] = p
	}
	return tiledFigure(plots), nil
}

// barPanel is one bar chart of barsFigure: a metric of each policy.
type barPanel struct {
	title, unit string
	value       func(CellResult) float64
	ci          func(CellResult) Interval // 95 % interval across seeds
	color       color.Color
}

// barPanels returns barsFigure's charts, left to right, top to bottom.
func barPanels() []barPanel {
	return []barPanel{
		{"p99 queueing latency", "µs", func(a CellResult) float64 { return us(a.Lat.P99) },
			func(a CellResult) Interval { return a.CI.LatP99us }, plotutil.Color(0)},
		{"throughput (in window)", "items/s", func(a CellResult) float64 { return a.Throughput },
			func(a CellResult) Interval { return a.CI.Throughput }, plotutil.Color(1)},
		{"preemptions", "per s", func(a CellResult) float64 { return a.preemptionRate() },
			func(a CellResult) Interval { return a.CI.PreemptRate }, plotutil.Color(2)},
		{"priority inversion", "% of window", func(a CellResult) float64 { return 100 * a.InversionFrac },
			func(a CellResult) Interval { return a.CI.InversionPc }, plotutil.Color(3)},
	}
}

// barPlot draws one chart: a bar per policy (rows, named by names), the
// mean over seeds with its interval when there are several.
func barPlot(workload string, pn barPanel, rows []CellResult, names []string, seeds int) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s: %s", workload, pn.title)
	if seeds >= 2 {
		p.Title.Text += fmt.Sprintf("\nmean of %d seeds, bars: 95%% t-interval", seeds)
	}
	p.Y.Label.Text = pn.unit
	p.Y.Min = 0
	if len(rows) > 0 {
		if err := addBars(p, pn, rows); err != nil {
			return nil, err
		}
	}
	p.NominalX(names...)
	p.X.Tick.Label.Rotation = math.Pi / 6
	p.X.Tick.Label.XAlign = draw.XRight
	p.X.Tick.Label.Font.Size = vg.Points(8)
	return p, nil
}

// addBars adds the bars of pn's metric over rows to p, each labelled with
// its value, with the 95 % interval across seeds as an error bar when
// there are several seeds. A metric whose positive values span more than
// two decades gets a log axis, so a small bar is not drawn as nothing.
func addBars(p *plot.Plot, pn barPanel, rows []CellResult) error {
	vals := make(plotter.Values, len(rows))
	var lbl plotter.XYLabels
	for j, a := range rows {
		vals[j] = pn.value(a)
		lbl.XYs = append(lbl.XYs, plotter.XY{X: float64(j), Y: max(vals[j], pn.ci(a).Hi())})
		lbl.Labels = append(lbl.Labels, shortNum(vals[j]))
	}
	logY := spansDecades(vals)
	base := 0.0
	if logY {
		base = minPositive(vals) / 3
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		p.Y.Label.Text += " (log scale)"
		for j := range vals {
			vals[j] = max(vals[j], base) // a zero bar stays at the axis
			lbl.XYs[j].Y = max(lbl.XYs[j].Y, base)
		}
	}
	bc, err := plotter.NewBarChart(vals, vg.Points(18))
	if err != nil {
		return err
	}
	bc.Color = pn.color
	bc.LineStyle.Width = 0
	if logY {
		// A log axis has no zero: the bars stand on a value just below the
		// smallest, through an invisible chart of that height.
		floor := make(plotter.Values, len(vals))
		for j := range vals {
			floor[j] = base
			bc.Values[j] = vals[j] - base
		}
		under, err := plotter.NewBarChart(floor, vg.Points(18))
		if err != nil {
			return err
		}
		bc.StackOn(under)
	}
	p.Add(bc)
	if errs := intervalBars(pn, rows, base); len(errs.XYs) > 0 {
		eb, err := plotter.NewYErrorBars(errs)
		if err != nil {
			return err
		}
		eb.LineStyle.Width = vg.Points(1)
		p.Add(eb)
	}
	labels, err := plotter.NewLabels(lbl)
	if err != nil {
		return err
	}
	for k := range labels.TextStyle {
		labels.TextStyle[k].Font.Size = vg.Points(8)
		labels.TextStyle[k].XAlign = draw.XCenter
	}
	labels.Offset = vg.Point{Y: vg.Points(2)}
	p.Add(labels)
	top := 0.0
	for _, xy := range lbl.XYs {
		top = math.Max(top, xy.Y)
	}
	switch {
	case logY:
		p.Y.Min, p.Y.Max = base, top*3
	case top > 0:
		p.Y.Max = top * 1.15
	default:
		p.Y.Max = 1
	}
	return nil
}

// intervalBars returns the error bars of rows' intervals (several seeds
// only), none reaching below floor: the axis, or a log axis's floor.
func intervalBars(pn barPanel, rows []CellResult, floor float64) errorBars {
	var errs errorBars
	for j, a := range rows {
		v, ci := pn.value(a), pn.ci(a)
		if ci.N < 2 || v <= floor {
			continue
		}
		errs.XYs = append(errs.XYs, plotter.XY{X: float64(j), Y: v})
		errs.YErrors = append(errs.YErrors, struct{ Low, High float64 }{min(ci.Half, v-floor), ci.Half})
	}
	return errs
}

// errorBars are bar values with their interval below and above.
type errorBars struct {
	plotter.XYs
	plotter.YErrors
}

// spansDecades reports whether the positive values span more than a
// factor of 100.
func spansDecades(vs plotter.Values) bool {
	lo, hi := minPositive(vs), maxOf(vs)
	return lo > 0 && hi/lo > 100
}

// minPositive returns the smallest positive value, or 0.
func minPositive(vs plotter.Values) float64 {
	m := 0.0
	for _, v := range vs {
		if v > 0 && (m == 0 || v < m) {
			m = v
		}
	}
	return m
}

// tiledFigure draws a 2×2 grid of plots on a white page, their axes
// aligned.
func tiledFigure(plots [][]*plot.Plot) figure {
	tiles := draw.Tiles{Rows: 2, Cols: 2, PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 4,
		PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	return figure{w: 11 * vg.Inch, h: 8 * vg.Inch, draw: func(dc draw.Canvas) {
		dc.SetColor(color.White)
		dc.Fill(dc.Rectangle.Path())
		canvases := plot.Align(plots, tiles, dc)
		for i := range plots {
			for j := range plots[i] {
				plots[i][j].Draw(canvases[i][j])
			}
		}
	}}
}

func maxOf(vs plotter.Values) float64 {
	m := 0.0
	for _, v := range vs {
		m = math.Max(m, v)
	}
	return m
}

// shortNum formats a bar's value label.
func shortNum(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e6:
		return ff(v/1e6, 2) + "M"
	case a >= 1e4:
		return ff(v/1e3, 1) + "k"
	case a >= 100:
		return ff(v, 0)
	case a >= 1:
		return ff(v, 1)
	case a == 0:
		return "0"
	}
	return strconv.FormatFloat(v, 'g', 2, 64) // 0.0045, not "0.00"
}
