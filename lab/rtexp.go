package lab

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

var (
	taskKinds      = []string{"periodic", "sporadic"}
	taskGenerators = []string{"uunifast", "uunifast-discard"}
	deadlineKinds  = []string{"implicit", "constrained"}
	priorityRules  = []string{"rm", "dm"}
)

// maxJobsPerCell bounds real-time job releases per cell.
const maxJobsPerCell = 2_000_000

// rtWorkload checks the real-time parts of w (tasks, task_set,
// priorities, rt_app) and returns the number of tasks it runs.
func (v *validator) rtWorkload(p string, w *Workload, window des.Duration) int {
	if w.Priorities != "" && !slices.Contains(priorityRules, w.Priorities) {
		v.bad(p+".priorities", "unknown priority rule %q; use %s", clip(w.Priorities), strings.Join(priorityRules, " or "))
	}
	tasks := w.Tasks
	if w.RTApp != nil {
		imp, errs := rtAppFrom(p+".rt_app", w.RTApp.v)
		for _, e := range errs {
			v.bad(e.Path, "%s", e.Msg)
		}
		if imp != nil {
			tasks = append(slices.Clip(tasks), imp.Tasks...)
		}
	}
	jobs, auto := 0.0, 0
	for i := range w.Tasks {
		jobs += v.task(fmt.Sprintf("%s.tasks[%d]", p, i), &w.Tasks[i]) * secs(window)
	}
	for _, t := range tasks {
		if t.Priority == nil {
			auto++
		}
		if t.Period.D > 0 && len(t.events) > 0 {
			jobs += secs(window) / secs(t.Period.D)
		}
	}
	n := len(tasks)
	if g := w.TaskSet; g != nil {
		v.taskSet(p+".task_set", g)
		auto += g.Tasks
		n += g.Tasks
		if g.PeriodMin.D > 0 {
			jobs += float64(g.Tasks) * secs(window) / secs(g.PeriodMin.D)
		}
	}
	if auto > maxRTLevels {
		v.bad(p+".tasks", "%d tasks without a priority; the real-time band has %d levels (16–31): give some tasks a \"priority\"", auto, maxRTLevels)
	}
	if jobs > maxJobsPerCell {
		v.bad(p, "about %.0f real-time jobs per run; at most %d: lengthen the periods or shorten the duration", jobs, maxJobsPerCell)
	}
	return n
}

// task checks t and returns its release rate per second (0 if invalid).
func (v *validator) task(p string, t *Task) float64 {
	v.name(p+".name", t.Name, "the task")
	if t.Kind != "" && !slices.Contains(taskKinds, t.Kind) {
		v.bad(p+".kind", "unknown task kind %q; use %s", clip(t.Kind), strings.Join(taskKinds, " or "))
	}
	period := v.duration(p+".period", t.Period, true, maxDistDuration, "the release period")
	wcet := v.duration(p+".wcet", t.WCET, true, maxDistDuration, "the worst-case execution time of a job")
	if t.Deadline.Set {
		v.duration(p+".deadline", t.Deadline, true, maxDistDuration, "the relative deadline")
	}
	if t.Offset.Set {
		v.duration(p+".offset", t.Offset, false, maxDuration, "the first release")
	}
	if t.Jitter.Set {
		if j := v.duration(p+".jitter", t.Jitter, false, maxDistDuration, "the release jitter"); period > 0 && j > period {
			v.bad(p+".jitter", "%v is longer than the period %v; releases would overtake each other", j, period)
		}
	}
	if t.Priority != nil && (*t.Priority < 1 || *t.Priority > 31) {
		v.bad(p+".priority", "%d is not a thread priority; give 1 to 31 (16–31 are real-time), or remove it for the workload's rule", *t.Priority)
	}
	if t.Exec != nil {
		v.dist(p+".exec", t.Exec, "a job's execution time (capped at wcet)")
	}
	if t.Gap != nil {
		if t.Kind != "sporadic" {
			v.bad(p+".gap", "applies only to \"kind\": \"sporadic\"; remove it")
		}
		v.dist(p+".gap", t.Gap, "the extra time between sporadic releases")
	}
	if period > 0 && wcet > 0 {
		return 1 / secs(period)
	}
	return 0
}

func (v *validator) taskSet(p string, g *TaskSetGen) {
	if !slices.Contains(taskGenerators, g.Generator) {
		v.bad(p+".generator", "%s; use %s", quotedOrMissing(g.Generator), strings.Join(taskGenerators, " or "))
	}
	if g.Tasks < 1 || g.Tasks > maxRTLevels {
		v.bad(p+".tasks", "%d tasks is impossible; give 1 to %d (one real-time level each)", g.Tasks, maxRTLevels)
	}
	if !(g.Utilization > 0 && g.Utilization <= float64(maxRTLevels)) {
		v.bad(p+".utilization", "%s must be in (0, %d]: the total utilization of the set", fmtFloat(g.Utilization), maxRTLevels)
	}
	lo := v.duration(p+".period_min", g.PeriodMin, true, maxDistDuration, "the shortest period")
	hi := v.duration(p+".period_max", g.PeriodMax, true, maxDistDuration, "the longest period")
	if lo > hi {
		v.bad(p, "period_min %v is above period_max %v; swap them", lo, hi)
	}
	if g.Granularity.Set {
		if gr := v.duration(p+".granularity", g.Granularity, true, maxDistDuration, "the period grid"); gr > lo && lo > 0 {
			v.bad(p+".granularity", "%v is coarser than period_min %v", gr, lo)
		}
	}
	if g.Deadlines != "" && !slices.Contains(deadlineKinds, g.Deadlines) {
		v.bad(p+".deadlines", "unknown deadline kind %q; use %s", clip(g.Deadlines), strings.Join(deadlineKinds, " or "))
	}
}

func quotedOrMissing(s string) string {
	if s == "" {
		return "missing"
	}
	return fmt.Sprintf("unknown generator %q", clip(s))
}

// spec returns the generator spec of g.
func (g *TaskSetGen) spec() GenSpec {
	return GenSpec{
		Tasks: g.Tasks, Utilization: g.Utilization, PeriodMin: g.PeriodMin.D, PeriodMax: g.PeriodMax.D,
		Granularity: g.Granularity.D, Constrained: g.Deadlines == "constrained", Discard: g.Generator == "uunifast-discard",
	}
}

// cellTasks returns the tasks of one cell: the file's, the imported
// rt-app ones and, with a task_set, a set drawn from the cell's seed (the
// same set under every policy, so that policies are compared on equal
// terms).
func cellTasks(w *Workload, seed uint64) []Task {
	tasks := slices.Clone(w.Tasks)
	if w.RTApp != nil {
		if imp, errs := rtAppFrom("", w.RTApp.v); len(errs) == 0 {
			tasks = append(tasks, imp.Tasks...)
		}
	}
	if g := w.TaskSet; g != nil {
		for _, pt := range g.spec().Generate(newRand(seed, 0x7a5)) {
			tasks = append(tasks, Task{Name: pt.Name, Period: Dur(pt.Period), WCET: Dur(pt.WCET), Deadline: Dur(pt.Deadline)})
		}
	}
	return tasks
}

// cellCompeting returns the competing groups of one cell: the file's and
// the imported rt-app run/sleep threads.
func cellCompeting(w *Workload) []Competing {
	if w.RTApp == nil {
		return w.Competing
	}
	imp, errs := rtAppFrom("", w.RTApp.v)
	if len(errs) > 0 {
		return w.Competing
	}
	return append(slices.Clone(w.Competing), imp.Competing...)
}

// rtSpecs turns a cell's tasks into run specs: priorities from the
// workload's rule for tasks without one (31 down, by period for rm, by
// deadline for dm), random streams from the seed.
func rtSpecs(w *Workload, tasks []Task, seed uint64) []rtSpec {
	pts := make([]PeriodicTask, len(tasks))
	for i, t := range tasks {
		pts[i] = PeriodicTask{Name: t.Name, Period: t.Period.D, WCET: t.WCET.D, Deadline: t.Deadline.D}
	}
	rule := RateMonotonic
	if w.Priorities == "dm" {
		rule = DeadlineMonotonic
	}
	specs := make([]rtSpec, len(tasks))
	level := kernel.HIGH_PRIORITY
	for _, i := range rule.Order(pts) {
		t := tasks[i]
		s := rtSpec{PeriodicTask: pts[i], offset: t.Offset.D, rng: newRand(seed, 5000+uint64(i)), events: t.events}
		if t.Priority != nil {
			s.priority = *t.Priority
		} else {
			s.priority = level
			level--
		}
		if t.Jitter.D > 0 {
			s.jitter, s.hasJit = newSampler(Dist{Dist: "uniform", Max: t.Jitter}), true
		}
		if t.Exec != nil {
			s.exec, s.hasExec = newSampler(*t.Exec), true
		}
		if t.Kind == "sporadic" {
			gap := cmp.Or(t.Gap, &Dist{Dist: "exponential", Mean: t.Period})
			s.extra, s.sporadic = newSampler(*gap), true
		}
		specs[i] = s
	}
	return specs
}

// TaskResult is what one real-time task measured in one cell (or, with
// Seed "all", over the seeds: means with 95% confidence half-widths).
type TaskResult struct {
	Workload, Policy string
	Seed             uint64
	Aggregate        bool
	Task             string
	Priority         int
	Period, WCET     des.Duration
	Deadline         des.Duration
	Jobs             int     // jobs completed
	Misses           int     // jobs that finished after their deadline
	MissRatio        float64 // Misses / Jobs
	Resp             Summary // response times: nominal release → job end
	TardinessMax     des.Duration
	TardinessMean    float64 // over late jobs
	CPUShare         float64 // fraction of the window the task's thread held a processor
	Preemptions      int     // times the thread was preempted
	Migrations       int     // dispatches on another processor than the last

	// WorstRD is the worst response over the deadline (of the task; of the
	// worst task on a "(set)" row), the mean over seeds on aggregate rows.
	WorstRD float64

	// Over seeds (aggregate rows): 95% confidence half-widths of the mean
	// worst response, miss ratio and WorstRD (Student t with seeds−1
	// degrees of freedom; 0 with one seed). On those rows MissRatio is the
	// mean over seeds of each seed's ratio, the centre of its interval.
	RespMaxCI, MissRatioCI, WorstRDCI float64
}

// taskResults measures the tasks of one cell.
func taskResults(c *CellResult, tasks []*rtTask, o *observer) []TaskResult {
	out := make([]TaskResult, len(tasks))
	for i, t := range tasks {
		r := TaskResult{
			Workload: c.Workload, Policy: c.Policy, Seed: c.Seed, Task: t.spec.Name, Priority: t.spec.priority,
			Period: t.spec.Period, WCET: t.spec.WCET, Deadline: t.spec.deadline(),
			Jobs: t.resp.n, Misses: t.misses, Resp: t.resp.summary(),
		}
		if r.Jobs > 0 {
			r.MissRatio = float64(r.Misses) / float64(r.Jobs)
		}
		r.WorstRD = r.Resp.Max / float64(r.Deadline)
		var sum des.Duration
		for _, d := range t.tardiness {
			r.TardinessMax = max(r.TardinessMax, d)
			sum += d
		}
		if len(t.tardiness) > 0 {
			r.TardinessMean = float64(sum) / float64(len(t.tardiness))
		}
		if st := o.thread(t.thread.ID()); st != nil {
			r.CPUShare = float64(st.cpu) / float64(o.window)
			r.Preemptions, r.Migrations = st.preempted, st.migrations
		}
		out[i] = r
	}
	return out
}

// aggregateTasks summarises the task rows of a workload × policy over its
// seeds. When every seed ran the same tasks (the file's), it averages task
// by task; when the set differs between seeds (a task_set), the i-th task
// of one seed has nothing to do with that of another, so it gives one
// "(set)" row: jobs and misses summed, the miss ratio and the worst
// response over deadline of the set, as means over seeds with 95%
// confidence half-widths.
func aggregateTasks(group []CellResult) []TaskResult {
	if len(group) == 0 || len(group[0].Tasks) == 0 {
		return nil
	}
	if !sameTasks(group) {
		return []TaskResult{aggregateSet(group)}
	}
	n := len(group)
	out := make([]TaskResult, len(group[0].Tasks))
	for i := range out {
		first := group[0].Tasks[i]
		a := TaskResult{Workload: first.Workload, Policy: first.Policy, Aggregate: true, Task: first.Task,
			Priority: first.Priority, Period: first.Period, WCET: first.WCET, Deadline: first.Deadline}
		var worst, miss, rd []float64
		for _, c := range group {
			t := c.Tasks[i]
			a.Jobs += t.Jobs
			a.Misses += t.Misses
			a.Resp = a.Resp.add(t.Resp, 1/float64(n))
			a.TardinessMax = max(a.TardinessMax, t.TardinessMax)
			a.TardinessMean += t.TardinessMean / float64(n)
			a.CPUShare += t.CPUShare / float64(n)
			a.Preemptions += t.Preemptions
			a.Migrations += t.Migrations
			worst = append(worst, t.Resp.Max)
			miss = append(miss, t.MissRatio)
			rd = append(rd, t.WorstRD)
		}
		a.Resp.Max = mean(worst) // the mean over seeds of the worst response, with its CI
		a.MissRatio, a.MissRatioCI = mean(miss), ci95(miss)
		a.RespMaxCI = ci95(worst)
		a.WorstRD, a.WorstRDCI = mean(rd), ci95(rd)
		a.Preemptions = (a.Preemptions + n/2) / n
		a.Migrations = (a.Migrations + n/2) / n
		out[i] = a
	}
	return out
}

// sameTasks reports whether every cell of group ran the same tasks.
func sameTasks(group []CellResult) bool {
	for _, c := range group[1:] {
		if len(c.Tasks) != len(group[0].Tasks) {
			return false
		}
		for i, t := range c.Tasks {
			f := group[0].Tasks[i]
			if t.Task != f.Task || t.Period != f.Period || t.WCET != f.WCET || t.Deadline != f.Deadline {
				return false
			}
		}
	}
	return true
}

// aggregateSet is the "(set)" row of a group whose task sets differ.
func aggregateSet(group []CellResult) TaskResult {
	n := len(group)
	first := group[0].Tasks[0]
	a := TaskResult{Workload: first.Workload, Policy: first.Policy, Aggregate: true, Task: "(set)"}
	var miss, rd []float64
	for _, c := range group {
		jobs, misses, worst := 0, 0, 0.0
		for _, t := range c.Tasks {
			jobs += t.Jobs
			misses += t.Misses
			worst = max(worst, t.WorstRD)
			a.TardinessMax = max(a.TardinessMax, t.TardinessMax)
			a.CPUShare += t.CPUShare / float64(n)
			a.Preemptions += t.Preemptions
			a.Migrations += t.Migrations
		}
		a.Jobs += jobs
		a.Misses += misses
		if jobs > 0 {
			miss = append(miss, float64(misses)/float64(jobs))
		}
		rd = append(rd, worst)
	}
	a.MissRatio, a.MissRatioCI = mean(miss), ci95(miss)
	a.WorstRD, a.WorstRDCI = mean(rd), ci95(rd)
	a.Preemptions = (a.Preemptions + n/2) / n
	a.Migrations = (a.Migrations + n/2) / n
	return a
}

func mean(xs []float64) float64 { return meanInterval(xs).Mean }

// ci95 is the half-width of the 95% t-interval of the mean of xs (see
// Interval; 0 for fewer than two values).
func ci95(xs []float64) float64 { return meanInterval(xs).Half }
