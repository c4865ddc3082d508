package lab

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// PlacementKind is how real-time tasks are placed on processors.
type PlacementKind string

const (
	// Global: every task's thread may run on any processor; the
	// dispatcher decides where ("nt-global": one ready structure,
	// REFERENCE §4.2; "nt": per-processor queues, §4.7).
	Global PlacementKind = "global"
	// Partitioned: first-fit decreasing by utilization assigns each task a
	// processor, and its thread pins itself there with
	// KeSetSystemAffinityThreadEx before its first job (REFERENCE §4.7).
	Partitioned PlacementKind = "partitioned"
)

var placementKinds = []PlacementKind{Global, Partitioned}

// Placement is a multiprocessor placement experiment: for each total
// utilization it draws random implicit-deadline task sets for Processors
// processors (UUniFast-discard: no task above utilization 1, Davis & Burns
// 2009; log-uniform periods), runs every set under every dispatcher of
// the file × placement from synchronous release for Duration, with
// rate-monotonic priorities on the real-time band and zero kernel-call
// costs, and reports per dispatcher × placement the fraction of sets
// that missed no deadline and the fraction of jobs that missed, as means
// over seeds with 95% confidence intervals.
//
// Partitioned placement uses first-fit decreasing by utilization (see
// Partition), a processor taking a task while its share stays schedulable
// by the exact response-time test ("fit": "rta", the default) or while
// its total utilization stays ≤ 1 ("utilization": bin packing, which
// lets a full processor miss deadlines). A set that does not fit is
// unpartitionable: it is not run, counts as not schedulable and is
// reported in its own column. For a set that fits, the exact
// response-time test of each processor's share is computed too; the
// simulation must agree with it set by set (column disagreements).
//
// Global schedulability is what the run shows: no deadline missed within
// Duration from synchronous release, which for global scheduling is not
// the worst case (it is for each processor of a partitioned machine).
//
// An experiment file with "placement" names its dispatchers in
// "dispatchers" and has no workloads or pools; its seeds seed the set
// generator, the same sets under every dispatcher and placement.
type Placement struct {
	// Processors is the number of processors, 2–16.
	Processors int `json:"processors"`
	// Tasks is the number of tasks per set, more than Processors, at most
	// 16 (one real-time priority each).
	Tasks int `json:"tasks"`
	// Placements lists "global" and/or "partitioned".
	Placements []PlacementKind `json:"placements"`
	// Fit is partitioning's admission test: "rta" (the default) or
	// "utilization".
	Fit string `json:"fit,omitempty"`
	// Sets is the number of task sets per utilization and seed.
	Sets int `json:"sets"`
	// UtilizationMin, UtilizationMax and UtilizationStep give the total
	// utilizations, at most Processors.
	UtilizationMin  float64 `json:"utilization_min"`
	UtilizationMax  float64 `json:"utilization_max"`
	UtilizationStep float64 `json:"utilization_step"`
	// PeriodMin, PeriodMax and Granularity shape the log-uniform periods.
	PeriodMin   Duration `json:"period_min"`
	PeriodMax   Duration `json:"period_max"`
	Granularity Duration `json:"granularity,omitzero"`
	// Duration is the simulated time of each run (releases stop then; jobs
	// still pending finish); at least PeriodMax, so that every task's first
	// job — its worst on a partitioned processor — is judged.
	Duration Duration `json:"duration"`
}

// Bounds of a placement experiment.
const (
	maxPlacementProcessors = 16
	maxPlacementRuns       = 1_000_000
	maxPlacementJobs       = 2_000_000_000
)

func (v *validator) placement(p string, pl *Placement, e *Experiment) {
	if pl.Processors < 2 || pl.Processors > maxPlacementProcessors {
		v.bad(p+".processors", "%d processors; give 2 to %d", pl.Processors, maxPlacementProcessors)
	}
	if pl.Tasks <= pl.Processors || pl.Tasks > maxRTLevels {
		v.bad(p+".tasks", "%d tasks; give more than the %d processors and at most %d (one real-time level each)", pl.Tasks, pl.Processors, maxRTLevels)
	}
	if len(pl.Placements) == 0 {
		v.bad(p+".placements", "missing or empty; give [\"global\", \"partitioned\"] or one of them")
	}
	for i, k := range pl.Placements {
		if !slices.Contains(placementKinds, k) {
			v.bad(fmt.Sprintf("%s.placements[%d]", p, i), "unknown placement %q; use global or partitioned", clip(string(k)))
		} else if j := slices.Index(pl.Placements, k); j < i {
			v.bad(fmt.Sprintf("%s.placements[%d]", p, i), "%q repeats placements[%d]", k, j)
		}
	}
	if pl.Fit != "" && pl.Fit != "rta" && pl.Fit != "utilization" {
		v.bad(p+".fit", "unknown fit %q; use rta or utilization", clip(pl.Fit))
	}
	if pl.Sets < 1 {
		v.bad(p+".sets", "missing or < 1; give the number of task sets per point, e.g. 100")
	}
	if !(pl.UtilizationMin > 0 && pl.UtilizationMax >= pl.UtilizationMin && pl.UtilizationMax <= float64(pl.Processors) && pl.UtilizationStep > 0) {
		v.bad(p, "give 0 < utilization_min ≤ utilization_max ≤ processors (%d) and utilization_step > 0", pl.Processors)
	}
	lo := v.duration(p+".period_min", pl.PeriodMin, true, maxDistDuration, "the shortest period")
	hi := v.duration(p+".period_max", pl.PeriodMax, true, maxDistDuration, "the longest period")
	if lo > hi {
		v.bad(p, "period_min %v is above period_max %v; swap them", lo, hi)
	}
	if pl.Granularity.Set {
		v.duration(p+".granularity", pl.Granularity, true, maxDistDuration, "the period grid")
	}
	d := v.duration(p+".duration", pl.Duration, true, maxDistDuration, "the simulated time of each run")
	if d > 0 && d < hi {
		v.bad(p+".duration", "%v is shorter than period_max %v: a task's first deadline would not be judged", d, hi)
	}
	v.dispatcherList(e.Dispatchers)
	if pl.UtilizationStep > 0 && lo > 0 && d > 0 {
		runs := len(pl.utilizations()) * pl.Sets * len(e.Seeds) * len(pl.Placements) * len(e.Dispatchers)
		if runs > maxPlacementRuns {
			v.bad(p, "%d runs in all (points × sets × seeds × placements × dispatchers); at most %d", runs, maxPlacementRuns)
		} else if jobs := float64(runs) * float64(pl.Tasks) * secs(d) / secs(lo); jobs > maxPlacementJobs {
			v.bad(p, "up to %.0f jobs in all; at most %d: fewer sets, a shorter duration or longer periods", jobs, maxPlacementJobs)
		}
	}
}

// utilizations lists the points.
func (pl *Placement) utilizations() []float64 {
	return utilizationPoints(pl.UtilizationMin, pl.UtilizationMax, pl.UtilizationStep)
}

// curve is one dispatcher × placement.
type curve struct {
	disp string
	kind PlacementKind
}

func (pl *Placement) curves(disps []string) []curve {
	var out []curve
	for _, d := range disps {
		for _, k := range pl.Placements {
			out = append(out, curve{d, k})
		}
	}
	return out
}

// PlacementPoint is one dispatcher × placement × total utilization.
type PlacementPoint struct {
	Dispatcher  string
	Placement   PlacementKind
	Utilization float64
	Sets        int // drawn, over all seeds
	// Schedulable is the fraction of sets that missed no deadline
	// (unpartitionable sets count as missed), MissRatio the fraction of
	// jobs that missed (of the sets that ran): per seed, then the mean and
	// 95% t-interval over seeds.
	Schedulable, MissRatio Interval
	// Unpartitionable counts sets first-fit decreasing could not place
	// (partitioned only; they are not run).
	Unpartitionable int
	// PartitionRTA is the fraction of sets whose partition passes the
	// exact response-time test on every processor (partitioned only), and
	// Disagreements the sets where that test and the run disagree (0
	// unless the dispatcher is wrong).
	PartitionRTA  float64
	Disagreements int
	// MigrationsPerJob is the tasks' migrations over their jobs (a pinned
	// thread's move to its processor is not a migration).
	MigrationsPerJob float64
}

// seedTally is one curve's counts at one point for one seed.
type seedTally struct {
	sets, sched, unpart, rta, disagree int
	jobs, misses, migrations           int
}

// runPlacement runs every point; (point, seed) units run in parallel and
// draw their sets from (seed, point) alone, so the results do not depend
// on the parallelism.
func runPlacement(ctx context.Context, pl *Placement, disps []string, seeds []uint64, par int) ([]PlacementPoint, error) {
	us, curves := pl.utilizations(), pl.curves(disps)
	tallies := make([][][]seedTally, len(us)) // point, seed, curve
	errs := make([]error, len(us)*len(seeds))
	for pi := range us {
		tallies[pi] = make([][]seedTally, len(seeds))
	}
	if err := inParallel(ctx, len(errs), par, func(unit int) {
		pi, si := unit/len(seeds), unit%len(seeds)
		tallies[pi][si], errs[unit] = pl.runUnit(ctx, us[pi], pi, seeds[si], curves)
	}); err != nil {
		return nil, err
	}
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return summarizePlacement(us, curves, tallies), nil
}

// runUnit draws the sets of one point and seed and runs each under every
// curve.
func (pl *Placement) runUnit(ctx context.Context, u float64, pi int, seed uint64, curves []curve) ([]seedTally, error) {
	g := GenSpec{Tasks: pl.Tasks, Utilization: u, PeriodMin: pl.PeriodMin.D, PeriodMax: pl.PeriodMax.D, Granularity: pl.Granularity.D}
	r := newRand(seed, 0x91ace<<20|uint64(pi))
	out := make([]seedTally, len(curves))
	for range pl.Sets {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ts, ok := g.GenerateDiscard(r)
		if !ok {
			return nil, fmt.Errorf("placement: utilization %v: UUniFast-discard found no set of %d tasks with every task at most 1 in 1000 draws; lower utilization_max or add tasks", u, pl.Tasks)
		}
		if err := pl.runSet(ts, curves, out); err != nil {
			return nil, fmt.Errorf("placement: utilization %v, seed %d, set [%s]: %w", u, seed, TaskSetString(ts), err)
		}
	}
	return out, nil
}

// runSet runs one set under every curve and adds it to the tallies.
func (pl *Placement) runSet(ts []PeriodicTask, curves []curve, out []seedTally) error {
	m := pl.Processors
	order := RateMonotonic.Order(ts)
	fit := FitRTA(RateMonotonic)
	if pl.Fit == "utilization" {
		fit = FitUtilization
	}
	assign, fits := Partition(ts, m, fit)
	rta := fits && PartitionSchedulable(ts, assign, m, RateMonotonic)
	for ci, c := range curves {
		t := &out[ci]
		t.sets++
		var pin []int
		if c.kind == Partitioned {
			if !fits {
				t.unpart++
				continue
			}
			pin = assign
			t.rta += b2i(rta)
		}
		run, err := SimulatePlacement(ts, order, m, c.disp, pin, pl.Duration.D)
		if err != nil {
			return fmt.Errorf("%s %s: %w", c.disp, c.kind, err)
		}
		ok := run.Misses == 0
		t.sched += b2i(ok)
		t.jobs += run.Jobs
		t.misses += run.Misses
		t.migrations += run.Migrations
		if c.kind == Partitioned {
			t.disagree += b2i(ok != rta)
		}
	}
	return nil
}

// summarizePlacement turns the tallies into points, curve by curve.
func summarizePlacement(us []float64, curves []curve, tallies [][][]seedTally) []PlacementPoint {
	var out []PlacementPoint
	for ci, c := range curves {
		for pi, u := range us {
			p := PlacementPoint{Dispatcher: c.disp, Placement: c.kind, Utilization: u}
			var sched, miss []float64
			var jobs, migrations, rta int
			for _, seed := range tallies[pi] {
				t := seed[ci]
				p.Sets += t.sets
				p.Unpartitionable += t.unpart
				p.Disagreements += t.disagree
				jobs += t.jobs
				migrations += t.migrations
				rta += t.rta
				sched = append(sched, float64(t.sched)/float64(t.sets))
				if t.jobs > 0 {
					miss = append(miss, float64(t.misses)/float64(t.jobs))
				}
			}
			p.Schedulable, p.MissRatio = meanInterval(sched), meanInterval(miss)
			if c.kind == Partitioned {
				p.PartitionRTA = float64(rta) / float64(p.Sets)
			}
			if jobs > 0 {
				p.MigrationsPerJob = float64(migrations) / float64(jobs)
			}
			out = append(out, p)
		}
	}
	return out
}

// dispatcherList checks an experiment's dispatchers.
func (v *validator) dispatcherList(ds []string) {
	known := DispatcherNames()
	if len(ds) == 0 {
		v.bad("dispatchers", "missing or empty; give a list of dispatchers from %s", strings.Join(known, ", "))
	}
	seen := map[string]int{}
	for i, d := range ds {
		p := fmt.Sprintf("dispatchers[%d]", i)
		if !slices.Contains(known, d) {
			v.bad(p, "unknown dispatcher %q; use one of %s (a package of your own can add more with lab.RegisterDispatcher)", clip(d), strings.Join(known, ", "))
		} else if j, dup := seen[d]; dup {
			v.bad(p, "%q repeats dispatchers[%d]; list each dispatcher once", d, j)
		}
		seen[d] = i
	}
}
