package lab

import (
	"bytes"
	"context"
	"encoding/csv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/plot"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues"
)

// rtExperiment is a one-processor machine with three RM tasks (U = 0.7)
// and a work-item stream, under the NT dispatcher and the run-to-block
// FIFO baseline.
const rtExperiment = `{
  "name": "rt", "seeds": [1, 2, 3], "dispatchers": ["nt", "fifo"], "pools": [{"policy": "reactos"}],
  "workloads": [{
    "name": "w", "processors": 1, "duration": "1s",
    "tasks": [
      {"name": "fast", "period": "5ms", "wcet": "1ms"},
      {"name": "mid", "period": "20ms", "wcet": "4ms"},
      {"name": "slow", "kind": "sporadic", "period": "50ms", "wcet": "15ms", "deadline": "45ms"}
    ],
    "streams": [{"queue": "DelayedWorkQueue", "arrivals": {"process": "poisson", "rate": 100},
      "service": {"dist": "constant", "mean": "2ms"}}]
  }]
}`

func runRT(t *testing.T, src string) *Results {
	t.Helper()
	e, err := Parse([]byte(src))
	require.NoError(t, err)
	r, err := Run(context.Background(), e, Options{})
	require.NoError(t, err)
	require.Empty(t, r.Problems())
	return r
}

func taskRow(t *testing.T, r *Results, policy, task string) TaskResult {
	t.Helper()
	for _, a := range r.Aggregates {
		for _, tr := range a.Tasks {
			if a.Policy == policy && tr.Task == task {
				return tr
			}
		}
	}
	t.Fatalf("no task row %s %s", policy, task)
	return TaskResult{}
}

// Real-time tasks run beside work items: under NT the RM priorities on the
// real-time band keep every deadline (REFERENCE §4.2: the highest task is
// never preempted, runs its WCET plus the modelled call costs); without
// preemption (fifo) the 2 ms work items and the 15 ms task make the 5 ms
// task miss. Jobs, CPU share and priorities are what the file says.
func TestRealTimeTasksInExperiment(t *testing.T) {
	r := runRT(t, rtExperiment)
	fast := taskRow(t, r, "nt/reactos", "fast")
	assert.Equal(t, 31, fast.Priority, "RM: the shortest period gets 31")
	assert.Equal(t, 30, taskRow(t, r, "nt/reactos", "mid").Priority)
	assert.Equal(t, 600, fast.Jobs, "200 releases in 1 s per seed, 3 seeds")
	assert.Zero(t, fast.Misses)
	assert.Zero(t, fast.Preemptions, "nothing outranks the top task")
	assert.Less(t, fast.Resp.Max, float64(1100*des.Microsecond), "WCET 1ms plus call costs")
	assert.GreaterOrEqual(t, fast.Resp.Max, float64(des.Millisecond))
	assert.InDelta(t, 0.2, fast.CPUShare, 0.01, "1ms every 5ms")
	for _, name := range []string{"mid", "slow"} {
		assert.Zero(t, taskRow(t, r, "nt/reactos", name).Misses, name)
	}
	assert.Positive(t, taskRow(t, r, "nt/reactos", "mid").Preemptions, "fast preempts mid")
	late := taskRow(t, r, "fifo/reactos", "fast")
	assert.Positive(t, late.Misses, "without preemption the 5ms task misses")
	assert.Positive(t, late.TardinessMax)
	assert.Zero(t, late.Preemptions)

	var b bytes.Buffer
	require.NoError(t, r.WriteTaskCSV(&b))
	rows, err := csv.NewReader(&b).ReadAll()
	require.NoError(t, err)
	assert.Equal(t, TaskCSVHeader, rows[0])
	assert.Len(t, rows, 1+2*3*3+2*3, "per cell and per policy over seeds")
	files, err := r.Files()
	require.NoError(t, err)
	var names []string
	for _, f := range files {
		names = append(names, f.Name)
	}
	assert.Contains(t, names, "tasks.csv")
	assert.Contains(t, names, "rt-w.png")
	var table bytes.Buffer
	require.NoError(t, r.WriteTable(&table))
	assert.Contains(t, table.String(), "miss ratio")
}

// A generated task set differs between seeds and is the same under every
// policy of one seed; the same file gives byte-identical task output.
func TestGeneratedTaskSetAndDeterminism(t *testing.T) {
	src := `{"name": "g", "seeds": [1, 2], "dispatchers": ["nt", "nt-noboost"], "pools": [{"policy": "fixed"}],
	  "workloads": [{"name": "w", "processors": 1, "duration": "500ms",
	    "task_set": {"generator": "uunifast-discard", "tasks": 5, "utilization": 0.6,
	      "period_min": "2ms", "period_max": "50ms", "granularity": "100us", "deadlines": "constrained"},
	    "priorities": "dm"}]}`
	r := runRT(t, src)
	require.Len(t, r.Cells, 4)
	assert.Equal(t, r.Cells[0].Tasks[0].Period, r.Cells[2].Tasks[0].Period, "seed 1 under both policies")
	assert.NotEqual(t, r.Cells[0].Tasks[0].Period, r.Cells[1].Tasks[0].Period, "another seed, another set")
	for _, c := range r.Cells {
		for _, tr := range c.Tasks {
			assert.Zero(t, tr.Misses, "U = 0.6 with DM is schedulable here: %+v", tr)
			assert.LessOrEqual(t, tr.Deadline, tr.Period)
		}
	}
	var a, b bytes.Buffer
	require.NoError(t, r.WriteTaskCSV(&a))
	require.NoError(t, runRT(t, src).WriteTaskCSV(&b))
	assert.Equal(t, a.String(), b.String())
}

// The response-time analysis of a generated set and the machine agree
// when the lab runs it with zero costs (the experiment path uses the same
// release mechanism as CheckRTA).
func TestGenSpecMatchesAnalysis(t *testing.T) {
	g := GenSpec{Tasks: 4, Utilization: 0.7, PeriodMin: des.Millisecond, PeriodMax: 20 * des.Millisecond}
	ts := g.Generate(newRand(3, 3))
	require.NoError(t, CheckRTA(ts, RateMonotonic, kernel.Costs{}))
}

func TestRealTimeValidation(t *testing.T) {
	base := `{"name": "v", "seeds": [1], "dispatchers": ["nt"], "pools": [{"policy": "fixed"}],
	  "workloads": [{"name": "w", "processors": 1, "duration": "1s", TASKS}]}`
	cases := []struct{ tasks, want string }{
		{`"tasks": [{"name": "a", "kind": "aperiodic", "period": "1ms", "wcet": "1ms"}]`, `workloads[0].tasks[0].kind: unknown task kind "aperiodic"`},
		{`"tasks": [{"name": "a", "period": "1ms", "wcet": "1ms", "jitter": "2ms"}]`, `workloads[0].tasks[0].jitter: 2ms is longer than the period 1ms`},
		{`"tasks": [{"name": "a", "period": "1ms"}]`, `workloads[0].tasks[0].wcet: missing`},
		{`"tasks": [{"name": "a", "period": "1ms", "wcet": "1ms", "priority": 40}]`, `workloads[0].tasks[0].priority: 40 is not a thread priority`},
		{`"tasks": [{"name": "a", "period": "1ms", "wcet": "1ms", "gap": {"dist": "constant", "mean": "1ms"}}]`, `workloads[0].tasks[0].gap: applies only to "kind": "sporadic"`},
		{`"task_set": {"tasks": 4, "utilization": 0.5, "period_min": "1ms", "period_max": "10ms"}`, `workloads[0].task_set.generator: missing; use uunifast or uunifast-discard`},
		{`"task_set": {"generator": "uunifast", "tasks": 17, "utilization": 0.5, "period_min": "1ms", "period_max": "10ms"}`, `workloads[0].task_set.tasks: 17 tasks is impossible`},
		{`"task_set": {"generator": "uunifast", "tasks": 4, "utilization": 0.5, "period_min": "10ms", "period_max": "1ms"}`, `period_min 10ms is above period_max 1ms`},
		{`"priorities": "edf", "tasks": [{"name": "a", "period": "1ms", "wcet": "1ms"}]`, `workloads[0].priorities: unknown priority rule "edf"; use rm or dm`},
		{`"tasks": [{"name": "a", "period": "100ns", "wcet": "1ns"}]`, `real-time jobs per run; at most 2000000`},
		{`"rt_app": {"tasks": {"t": {"run": 100, "lock": "m"}}}`, `workloads[0].rt_app.tasks.t.lock: unsupported rt-app event "lock"`},
	}
	for _, tc := range cases {
		_, err := Parse([]byte(strings.Replace(base, "TASKS", tc.tasks, 1)))
		require.Error(t, err, tc.tasks)
		assert.Contains(t, err.Error(), tc.want, tc.tasks)
	}
}

const rtAppExample = `{
  "global": {"duration": 3, "default_policy": "SCHED_FIFO", "calibration": "CPU0", "logdir": "./"},
  "tasks": {
    "video": {"instance": 2, "loop": -1, "priority": 50, "run": 4000, "sleep": 1000, "run1": 2000,
      "timer": {"ref": "unique", "period": 16667}},
    "audio": {"phases": {"p0": {"loop": -1, "run": 500, "timer": {"ref": "a", "period": 5000}}}, "priority": 99},
    "logger": {"policy": "SCHED_OTHER", "priority": 0, "run": 3000, "sleep": 7000}
  }
}`

// The rt-app subset: periodic threads become tasks whose job is the run
// and sleep events before the timer, run/sleep loops competing threads;
// priorities map onto the NT bands.
func TestParseRTApp(t *testing.T) {
	w, err := ParseRTApp([]byte(rtAppExample))
	require.NoError(t, err)
	assert.Equal(t, 3*des.Second, w.Duration)
	require.Len(t, w.Tasks, 3)
	audio := w.Tasks[0]
	assert.Equal(t, "audio", audio.Name)
	assert.Equal(t, 31, *audio.Priority, "FIFO 99 → 31")
	assert.Equal(t, 5*des.Millisecond, audio.Period.D)
	assert.Equal(t, []string{"video.0", "video.1"}, []string{w.Tasks[1].Name, w.Tasks[2].Name})
	v := w.Tasks[1]
	assert.Equal(t, 23, *v.Priority, "FIFO 50 → 16 + 49·16/99 = 23")
	assert.Equal(t, 6*des.Millisecond, v.WCET.D, "run 4ms + run1 2ms")
	assert.Equal(t, []rtEvent{{d: 4 * des.Millisecond}, {sleep: true, d: des.Millisecond}, {d: 2 * des.Millisecond}}, v.events)
	require.Len(t, w.Competing, 1)
	assert.Equal(t, 8, *w.Competing[0].Priority, "SCHED_OTHER nice 0 → 8")
	assert.Equal(t, 7*des.Millisecond, w.Competing[0].Sleep.Mean.D)

	// An experiment runs it: the sleep inside a video job stretches its
	// response beyond its 6ms of computing.
	src := `{"name": "r", "seeds": [1], "dispatchers": ["nt"], "pools": [{"policy": "fixed"}],
	  "workloads": [{"name": "m", "processors": 2, "rt_app": ` + rtAppExample + `}]}`
	r := runRT(t, src)
	video := taskRow(t, r, "nt/fixed", "video.0")
	assert.GreaterOrEqual(t, video.Resp.Max, float64(7*des.Millisecond))
	assert.Equal(t, 180, video.Jobs, "3 s of 16.667 ms periods (global.duration)")
}

// Unsupported rt-app features are named with their path.
func TestParseRTAppUnsupported(t *testing.T) {
	cases := []struct{ src, want string }{
		{`{"tasks": {"t": {"run": 1, "lock": "m"}}}`, `tasks.t.lock: unsupported rt-app event "lock"`},
		{`{"tasks": {"t": {"policy": "SCHED_DEADLINE", "run": 1}}}`, `tasks.t.policy: unsupported scheduling policy "SCHED_DEADLINE"`},
		{`{"tasks": {"t": {"loop": 10, "run": 1}}}`, `tasks.t.loop: unsupported loop count 10`},
		{`{"tasks": {"t": {"phases": {"a": {"run": 1}, "b": {"run": 2}}}}}`, `tasks.t.phases: the lab runs exactly one phase per thread`},
		{`{"global": {"pi_enabled": true, "frequency": 2}, "tasks": {"t": {"run": 1}}}`, `global.frequency: unsupported rt-app global setting`},
		{`{"resources": {}, "tasks": {"t": {"run": 1}}}`, `resources: unsupported rt-app section`},
		{`{"tasks": {"t": {"run": 1, "timer": {"period": 10, "mode": "relative"}}}}`, `tasks.t.timer.mode: unsupported timer setting`},
		{`{"tasks": {"t": {"timer": {"period": 10}, "run": 1}}}`, ``},
		{`{"tasks": {"t": {"priority": 120, "policy": "SCHED_FIFO", "run": 1}}}`, `tasks.t.priority: 120: SCHED_FIFO/SCHED_RR priorities are 1 to 99`},
	}
	for _, tc := range cases {
		_, err := ParseRTApp([]byte(tc.src))
		if tc.want == "" {
			assert.NoError(t, err, tc.src)
			continue
		}
		require.Error(t, err, tc.src)
		assert.Contains(t, err.Error(), tc.want, tc.src)
	}
}

// Policies registered by name are usable in experiment files, get the
// cell's PolicyEnv, and names are unique.
func TestRegisteredPolicies(t *testing.T) {
	var sawDeadline bool
	RegisterDispatcher("test-deadline-probe", "a test dispatcher", func(cfg *kernel.Config, env *PolicyEnv) {
		cfg.Policy = &probePolicy{NTDispatcher: kernel.NewNTDispatcher(), env: env, saw: &sawDeadline}
	})
	t.Cleanup(func() { dispatchers = dispatchers[:len(dispatchers)-1] })
	assert.Contains(t, DispatcherNames(), "test-deadline-probe")
	src := strings.Replace(rtExperiment, `["nt", "fifo"]`, `["test-deadline-probe"]`, 1)
	r := runRT(t, src)
	assert.True(t, sawDeadline, "the policy saw a task's deadline through PolicyEnv")
	assert.Zero(t, taskRow(t, r, "test-deadline-probe/reactos", "fast").Misses)
	assert.Panics(t, func() { RegisterDispatcher("nt", "again", nil) })
	assert.Panics(t, func() { RegisterPool("bad name", "", nil) })
	_, err := Parse([]byte(strings.Replace(rtExperiment, `["nt", "fifo"]`, `["edf"]`, 1)))
	assert.ErrorContains(t, err, "lab.RegisterDispatcher")
}

type probePolicy struct {
	*kernel.NTDispatcher
	env *PolicyEnv
	saw *bool
}

func (p *probePolicy) Enqueue(t *kernel.Thread, front bool) {
	if d, ok := p.env.Deadline(t); ok && d > 0 {
		*p.saw = true
	}
	p.NTDispatcher.Enqueue(t, front)
}

// The acceptance-ratio experiment: the exact test accepts at least what
// the sufficient bounds accept, the Liu & Layland bound accepts all or
// nothing at a point (UUniFast hits the total exactly), and the simulated
// machine accepts exactly the sets the exact test accepts.
func TestAcceptanceExperiment(t *testing.T) {
	src := `{"name": "acc", "seeds": [1, 2], "acceptance": {"tasks": [3, 6], "sets": 15,
	  "utilization_min": 0.6, "utilization_max": 1.0, "utilization_step": 0.1,
	  "period_min": "2ms", "period_max": "200ms", "granularity": "1ms", "simulate": true}}`
	e, err := Parse([]byte(src))
	require.NoError(t, err)
	r, err := Run(context.Background(), e, Options{})
	require.NoError(t, err)
	require.Len(t, r.Acceptance, 10)
	for _, p := range r.Acceptance {
		assert.Equal(t, 30, p.Sets)
		assert.Zero(t, p.Disagreements, "simulation and exact test disagree at %+v", p)
		assert.Equal(t, p.Exact, p.Simulated)
		assert.GreaterOrEqual(t, p.Exact, p.Hyperbolic)
		assert.GreaterOrEqual(t, p.Hyperbolic, p.LiuLayland, "the hyperbolic bound dominates Liu & Layland")
		assert.Equal(t, p.Utilization <= LiuLaylandBound(p.Tasks)+1e-3, p.LiuLayland > 0.5, "%+v", p)
	}
	assert.Equal(t, 1.0, r.Acceptance[0].Exact, "U = 0.6 is always RM-schedulable")
	assert.Less(t, r.Acceptance[4].Exact, 0.5, "U = 1 rarely is")
	files, err := r.Files()
	require.NoError(t, err)
	require.Len(t, files, 4)
	assert.Equal(t, "acceptance.csv", files[0].Name)
	assert.True(t, strings.HasPrefix(string(files[0].Data), strings.Join(AcceptanceCSVHeader, ",")))
	_, err = Parse([]byte(strings.Replace(src, `"seeds": [1, 2],`, `"seeds": [1, 2], "dispatchers": ["nt"],`, 1)))
	assert.ErrorContains(t, err, "an acceptance-ratio experiment has no workloads, dispatchers or pools")
}

// A pool policy registered from outside the lab is usable by name, gets
// its pool entry (limit), and drives the worker pool: "never" grows no
// thread, so the blocking stream of the critical queue waits for the 5
// static workers, as the built-in "fixed" policy does.
func TestRegisteredPoolPolicy(t *testing.T) {
	var gotLimit int
	RegisterPool("test-never", "never grows", func(p Pool) queues.PoolPolicy {
		if p.Limit != nil {
			gotLimit = *p.Limit
		}
		return neverGrow{}
	})
	t.Cleanup(func() { pools = pools[:len(pools)-1] })
	src := `{"name": "p", "seeds": [1], "dispatchers": ["nt"],
	  "pools": [{"policy": "test-never", "limit": 7}, {"policy": "fixed"}, {"policy": "grow-on-demand"}],
	  "workloads": [{"name": "w", "processors": 2, "duration": "200ms",
	    "streams": [{"queue": "CriticalWorkQueue", "arrivals": {"process": "poisson", "rate": 1100},
	      "service": {"dist": "constant", "mean": "200us"},
	      "blocking": {"fraction": 1, "time": {"dist": "constant", "mean": "4ms"}}}]}]}`
	r := runRT(t, src)
	assert.Equal(t, 7, gotLimit)
	never, fixed, grow := r.Aggregates[0], r.Aggregates[1], r.Aggregates[2]
	assert.Equal(t, "nt/test-never", never.Policy)
	assert.Zero(t, never.DynCreated)
	assert.Equal(t, fixed.Lat, never.Lat, "never growing is the fixed pool")
	assert.Positive(t, grow.DynCreated)
}

type neverGrow struct{}

func (neverGrow) Name() string                        { return "never" }
func (neverGrow) GrowOnInsert(queues.QueueState) bool { return false }
func (neverGrow) GrowOnPass(queues.QueueState) bool   { return false }
func (neverGrow) Periodic() bool                      { return false }

// The real-time chart draws each bar's 95% interval across seeds and says
// so: under fifo the fast task's miss ratio differs between seeds, and the
// interval reaches above the tallest bar (the axis follows it). The
// aggregate miss ratio is the mean of the seeds' ratios, the centre of
// that interval.
func TestRTFigureHasSeedIntervals(t *testing.T) {
	r := runRT(t, rtExperiment)
	late := taskRow(t, r, "fifo/reactos", "fast")
	require.Positive(t, late.MissRatioCI, "seeds differ: an interval to draw")
	var perSeed []float64
	for _, c := range r.Cells {
		if c.Policy == "fifo/reactos" {
			perSeed = append(perSeed, c.Tasks[0].MissRatio)
		}
	}
	assert.InDelta(t, mean(perSeed), late.MissRatio, 1e-12)
	top, bottom, err := r.rtPlots(&r.Experiment.Workloads[0])
	require.NoError(t, err)
	for _, p := range []*plot.Plot{top, bottom} {
		assert.Contains(t, p.Title.Text, "mean of 3 seeds, bars: 95% t-interval of the mean")
	}
	highest := 0.0
	for _, a := range r.Aggregates {
		for _, tr := range a.Tasks {
			highest = max(highest, tr.MissRatio+tr.MissRatioCI)
		}
	}
	assert.InDelta(t, highest, bottom.Y.Max, 1e-12, "the interval bars are on the plot")
	assert.Greater(t, bottom.Y.Max, late.MissRatio)
}
