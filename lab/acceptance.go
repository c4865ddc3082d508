package lab

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"strconv"
	"text/tabwriter"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// Acceptance is an acceptance-ratio experiment: for each task count and
// total utilization it draws random task sets (UUniFast utilizations,
// log-uniform periods) and reports the fraction each test accepts — the
// exact response-time test, the Liu & Layland bound n(2^{1/n} − 1), the
// hyperbolic bound Π(U_i + 1) ≤ 2 (Bini, Buttazzo & Buttazzo 2003) and,
// with Simulate, the simulated machine itself (every set run on one
// processor with zero kernel-call costs from the critical instant; a set
// is accepted when no job misses its deadline). The simulated and exact
// fractions must agree set by set; the rows count the sets where they do
// not.
//
// An experiment file with "acceptance" needs no workloads, dispatchers
// or pools; its seeds seed the set generator (sets are drawn per seed).
type Acceptance struct {
	// Tasks lists the task counts, one curve each (1–16).
	Tasks []int `json:"tasks"`
	// Sets is the number of task sets per point and seed.
	Sets int `json:"sets"`
	// UtilizationMin, UtilizationMax and UtilizationStep give the points.
	UtilizationMin  float64 `json:"utilization_min"`
	UtilizationMax  float64 `json:"utilization_max"`
	UtilizationStep float64 `json:"utilization_step"`
	// PeriodMin, PeriodMax and Granularity shape the log-uniform periods.
	PeriodMin   Duration `json:"period_min"`
	PeriodMax   Duration `json:"period_max"`
	Granularity Duration `json:"granularity,omitzero"`
	// Priorities is "rm" (default) or "dm"; Deadlines "implicit" (default)
	// or "constrained".
	Priorities string `json:"priorities,omitempty"`
	Deadlines  string `json:"deadlines,omitempty"`
	// Simulate also runs every set on the simulated machine.
	Simulate bool `json:"simulate,omitempty"`
}

// maxAcceptanceSets bounds the sets of one experiment.
const maxAcceptanceSets = 2_000_000

// AcceptancePoint is one task count × utilization.
type AcceptancePoint struct {
	Tasks       int
	Utilization float64
	Sets        int
	// Fractions of the sets accepted by each test.
	Exact, LiuLayland, Hyperbolic, Simulated float64
	// Disagreements counts sets the simulation and the exact test judged
	// differently (0 unless the dispatcher is wrong).
	Disagreements int
}

func (v *validator) acceptance(p string, a *Acceptance, seeds int) {
	if len(a.Tasks) == 0 {
		v.bad(p+".tasks", "missing or empty; give the task counts, e.g. [4, 8]")
	}
	for i, n := range a.Tasks {
		if n < 1 || n > maxRTLevels {
			v.bad(fmt.Sprintf("%s.tasks[%d]", p, i), "%d tasks is impossible; give 1 to %d", n, maxRTLevels)
		}
	}
	if a.Sets < 1 {
		v.bad(p+".sets", "missing or < 1; give the number of task sets per point, e.g. 1000")
	}
	if !(a.UtilizationMin > 0 && a.UtilizationMax >= a.UtilizationMin && a.UtilizationMax <= 1 && a.UtilizationStep > 0) {
		v.bad(p, "give 0 < utilization_min ≤ utilization_max ≤ 1 and utilization_step > 0")
	}
	lo := v.duration(p+".period_min", a.PeriodMin, true, maxDistDuration, "the shortest period")
	hi := v.duration(p+".period_max", a.PeriodMax, true, maxDistDuration, "the longest period")
	if lo > hi {
		v.bad(p, "period_min %v is above period_max %v; swap them", lo, hi)
	}
	if a.Granularity.Set {
		v.duration(p+".granularity", a.Granularity, true, maxDistDuration, "the period grid")
	}
	if a.Priorities != "" && a.Priorities != "rm" && a.Priorities != "dm" {
		v.bad(p+".priorities", "unknown priority rule %q; use rm or dm", clip(a.Priorities))
	}
	if a.Deadlines != "" && a.Deadlines != "implicit" && a.Deadlines != "constrained" {
		v.bad(p+".deadlines", "unknown deadline kind %q; use implicit or constrained", clip(a.Deadlines))
	}
	if a.UtilizationStep > 0 {
		points := int((a.UtilizationMax-a.UtilizationMin)/a.UtilizationStep+1e-9) + 1
		if total := points * len(a.Tasks) * a.Sets * seeds; total > maxAcceptanceSets {
			v.bad(p, "%d task sets in all (points × task counts × sets × seeds); at most %d", total, maxAcceptanceSets)
		}
	}
}

// utilizations lists the points.
func (a *Acceptance) utilizations() []float64 {
	return utilizationPoints(a.UtilizationMin, a.UtilizationMax, a.UtilizationStep)
}

// utilizationPoints lists min, min+step, … up to max (inclusive, with a
// tolerance for the float steps), each rounded to 1e-9 so that the points
// print and compare exactly. step must be positive.
func utilizationPoints(min, max, step float64) []float64 {
	var out []float64
	for i := 0; ; i++ {
		u := min + float64(i)*step
		if u > max+1e-9 {
			return out
		}
		out = append(out, math.Round(u*1e9)/1e9)
	}
}

// runAcceptance computes every point. Sets are drawn from (seed, task
// count, point), so a point's sets do not depend on the others.
func runAcceptance(ctx context.Context, a *Acceptance, seeds []uint64) ([]AcceptancePoint, error) {
	order := RateMonotonic
	if a.Priorities == "dm" {
		order = DeadlineMonotonic
	}
	var out []AcceptancePoint
	for _, n := range a.Tasks {
		for pi, u := range a.utilizations() {
			pt := AcceptancePoint{Tasks: n, Utilization: u}
			g := GenSpec{Tasks: n, Utilization: u, PeriodMin: a.PeriodMin.D, PeriodMax: a.PeriodMax.D,
				Granularity: a.Granularity.D, Constrained: a.Deadlines == "constrained"}
			var exact, ll, hyp, sim int
			for _, seed := range seeds {
				r := newRand(seed, uint64(n)<<32|uint64(pi))
				for range a.Sets {
					if err := ctx.Err(); err != nil {
						return nil, err
					}
					ts := g.Generate(r)
					ok := Schedulable(ts, order)
					exact += b2i(ok)
					ll += b2i(Utilization(ts) <= LiuLaylandBound(n))
					hyp += b2i(hyperbolic(ts))
					if a.Simulate {
						simOK, err := simulatedSchedulable(ts, order)
						if err != nil {
							return nil, err
						}
						sim += b2i(simOK)
						pt.Disagreements += b2i(simOK != ok)
					}
					pt.Sets++
				}
			}
			f := 1 / float64(pt.Sets)
			pt.Exact, pt.LiuLayland, pt.Hyperbolic = float64(exact)*f, float64(ll)*f, float64(hyp)*f
			if a.Simulate {
				pt.Simulated = float64(sim) * f
			}
			out = append(out, pt)
		}
	}
	return out, nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// hyperbolic is the hyperbolic bound for RM with implicit deadlines.
func hyperbolic(ts []PeriodicTask) bool {
	p := 1.0
	for _, t := range ts {
		p *= t.Utilization() + 1
	}
	return p <= 2
}

// simulatedSchedulable runs ts from the critical instant on one processor
// with zero costs until the largest deadline and reports whether every job
// met its deadline. With D ≤ T a set that meets every deadline over that
// window meets them forever (Liu & Layland's critical instant).
func simulatedSchedulable(ts []PeriodicTask, o PriorityOrder) (bool, error) {
	var horizon des.Duration
	for _, t := range ts {
		horizon = max(horizon, t.deadline())
	}
	worst, err := SimulateWorstResponses(ts, o.Order(ts), kernel.Costs{}, horizon)
	if err != nil {
		return false, err
	}
	for i, w := range worst {
		if w > ts[i].deadline() {
			return false, nil
		}
	}
	return true, nil
}

// AcceptanceCSVHeader is the header of acceptance.csv.
var AcceptanceCSVHeader = []string{"tasks", "utilization", "sets", "exact", "liu_layland", "hyperbolic", "simulated", "disagreements"}

// WriteAcceptanceCSV writes acceptance.csv.
func (r *Results) WriteAcceptanceCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(AcceptanceCSVHeader); err != nil {
		return err
	}
	for _, p := range r.Acceptance {
		sim := ""
		if r.Experiment.Acceptance.Simulate {
			sim = ff(p.Simulated, 4)
		}
		if err := cw.Write([]string{strconv.Itoa(p.Tasks), ff(p.Utilization, 3), strconv.Itoa(p.Sets),
			ff(p.Exact, 4), ff(p.LiuLayland, 4), ff(p.Hyperbolic, 4), sim, strconv.Itoa(p.Disagreements)}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// writeAcceptanceTable prints the points.
func (r *Results) writeAcceptanceTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "tasks\tU\tsets\texact\tLiu-Layland\thyperbolic\tsimulated\tdisagree\t")
	for _, p := range r.Acceptance {
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%s\t%s\t%d\t\n", p.Tasks, ff(p.Utilization, 2), p.Sets,
			ff(p.Exact, 3), ff(p.LiuLayland, 3), ff(p.Hyperbolic, 3), ff(p.Simulated, 3), p.Disagreements)
	}
	return tw.Flush()
}

// acceptanceFigure plots the schedulable fraction against utilization:
// per task count the exact test (solid), the simulation (points), the
// Liu & Layland bound (dashed) and the hyperbolic bound (dotted).
func (r *Results) acceptanceFigure() (figure, error) {
	a := r.Experiment.Acceptance
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s: schedulable fraction of random task sets (%s priorities, one processor)", r.Experiment.Name, orDefault(a.Priorities, "rm"))
	p.X.Label.Text = "total utilization"
	p.Y.Label.Text = "fraction of task sets schedulable"
	p.Y.Min, p.Y.Max = 0, 1.02
	p.Legend.Left, p.Legend.Top = true, false
	p.Legend.YOffs = vg.Points(40)
	for ci, n := range a.Tasks {
		var exact, ll, hyp, sim plotter.XYs
		for _, pt := range r.Acceptance {
			if pt.Tasks != n {
				continue
			}
			exact = append(exact, plotter.XY{X: pt.Utilization, Y: pt.Exact})
			ll = append(ll, plotter.XY{X: pt.Utilization, Y: pt.LiuLayland})
			hyp = append(hyp, plotter.XY{X: pt.Utilization, Y: pt.Hyperbolic})
			sim = append(sim, plotter.XY{X: pt.Utilization, Y: pt.Simulated})
		}
		col := plotutil.Color(ci)
		for _, l := range []struct {
			name   string
			xy     plotter.XYs
			dashes []vg.Length
		}{
			{fmt.Sprintf("n=%d exact test", n), exact, nil},
			{fmt.Sprintf("n=%d Liu & Layland bound", n), ll, []vg.Length{vg.Points(6), vg.Points(3)}},
			{fmt.Sprintf("n=%d hyperbolic bound", n), hyp, []vg.Length{vg.Points(1), vg.Points(3)}},
		} {
			line, err := plotter.NewLine(l.xy)
			if err != nil {
				return figure{}, err
			}
			line.Color, line.Dashes, line.Width = col, l.dashes, vg.Points(1.5)
			p.Add(line)
			p.Legend.Add(l.name, line)
		}
		if a.Simulate {
			sc, err := plotter.NewScatter(sim)
			if err != nil {
				return figure{}, err
			}
			sc.Color, sc.Shape = col, plotutil.Shape(ci)
			p.Add(sc)
			p.Legend.Add(fmt.Sprintf("n=%d simulated", n), sc)
		}
	}
	return figure{w: 9 * vg.Inch, h: 6 * vg.Inch, draw: p.Draw}, nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
