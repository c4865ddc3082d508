package lab

import (
	"bytes"
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
)

const examplePath = "../bench/experiments/pools.json"

// exampleScale keeps the example test quick under -short; the full
// example takes about a second.
func exampleScale() float64 {
	if testing.Short() {
		return 0.25
	}
	return 1
}

func runExample(t *testing.T, parallel int) *Results {
	t.Helper()
	e, err := ParseFile(examplePath)
	require.NoError(t, err)
	r, err := Run(context.Background(), e, Options{Parallel: parallel, Scale: exampleScale()})
	require.NoError(t, err)
	return r
}

func aggregate(t *testing.T, r *Results, workload, policy string) CellResult {
	t.Helper()
	for _, a := range r.Aggregates {
		if a.Workload == workload && a.Policy == policy {
			return a
		}
	}
	t.Fatalf("no aggregate row for %s %s", workload, policy)
	return CellResult{}
}

// The shipped example runs and writes its CSV and plots; and it shows what
// its description claims.
func TestExampleExperiment(t *testing.T) {
	r := runExample(t, 0)
	e := r.Experiment
	cells := len(e.Workloads) * len(e.Dispatchers) * len(e.Pools) * len(e.Seeds)
	require.Len(t, r.Cells, cells)
	require.Len(t, r.Aggregates, cells/len(e.Seeds))
	assert.Empty(t, r.Problems())

	files, err := r.Files()
	require.NoError(t, err)
	out := filepath.Join(t.TempDir(), "out", "pools")
	require.NoError(t, WriteDir(out, files))

	data, err := os.ReadFile(filepath.Join(out, "results.csv"))
	require.NoError(t, err)
	rows, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 1+len(r.Cells)+len(r.Aggregates))
	assert.Equal(t, CSVHeader, rows[0])
	assert.Equal(t, "all", rows[len(rows)-1][4])
	for _, w := range e.Workloads {
		for _, kind := range []string{"cdf-", "bars-"} {
			png, err := os.ReadFile(filepath.Join(out, kind+w.Name+".png"))
			require.NoError(t, err)
			assert.True(t, bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")), "%s%s.png is a PNG", kind, w.Name)
			svg, err := os.ReadFile(filepath.Join(out, kind+w.Name+".svg"))
			require.NoError(t, err)
			assert.Contains(t, string(svg[:min(len(svg), 512)]), "<svg", "%s%s.svg is an SVG", kind, w.Name)
		}
	}
	src, err := os.ReadFile(filepath.Join(out, "experiment.json"))
	require.NoError(t, err)
	orig, _ := os.ReadFile(examplePath)
	assert.Equal(t, orig, src)
	entries, _ := os.ReadDir(filepath.Dir(out))
	assert.Len(t, entries, 1, "no temporary directory left beside the output")

	// What the example is there to show.
	for _, a := range r.Aggregates {
		assert.Zero(t, a.Unfinished, "%s %s: every item ran", a.Workload, a.Policy)
		assert.InDelta(t, a.Offered, a.Throughput, 0.1*a.Offered, "%s %s: the system keeps up", a.Workload, a.Policy)
	}
	for _, d := range []string{"nt", "fifo"} {
		fixed := aggregate(t, r, "mmc-delayed", d+"/fixed")
		grow := aggregate(t, r, "mmc-delayed", d+"/grow-on-demand")
		ros := aggregate(t, r, "mmc-delayed", d+"/reactos")
		assert.Less(t, grow.Lat.P99*5, fixed.Lat.P99, "%s: grow-on-demand cuts the delayed queue's p99", d)
		assert.Zero(t, ros.DynCreated, "%s: ReactOS never grows a delayed queue that keeps making progress", d)
		fixed = aggregate(t, r, "critical-blocking", d+"/fixed")
		ros = aggregate(t, r, "critical-blocking", d+"/reactos")
		assert.Less(t, ros.Lat.P99*10, fixed.Lat.P99, "%s: ReactOS grows the critical queue on insert", d)
		assert.Positive(t, ros.DynCreated)
	}
	for _, p := range []string{"fixed", "reactos", "grow-on-demand"} {
		nt := aggregate(t, r, "hipri-pollers", "nt/"+p)
		fifo := aggregate(t, r, "hipri-pollers", "fifo/"+p)
		assert.Positive(t, nt.Preemptions, "the pollers preempt workers under NT")
		assert.Zero(t, fifo.Preemptions, "FIFO never preempts")
		// NT is not free of inversion: a readied poller joins its ideal
		// processor's queue even while another processor runs a worker
		// (REFERENCE §4.7); FIFO's is still several times larger.
		assert.Greater(t, fifo.InversionFrac, 3*nt.InversionFrac+0.01, "FIFO lets workers run while a poller of higher priority waits")
	}
}

// Same file, same bytes: whatever the parallelism (never skipped: under
// -short the example runs at a quarter of its duration).
func TestDeterministic(t *testing.T) {
	a, b := runExample(t, 1), runExample(t, 2)
	fa, err := a.Files()
	require.NoError(t, err)
	fb, err := b.Files()
	require.NoError(t, err)
	require.Equal(t, len(fa), len(fb))
	for i := range fa {
		assert.Equal(t, fa[i].Name, fb[i].Name)
		assert.True(t, bytes.Equal(fa[i].Data, fb[i].Data), "%s differs between runs", fa[i].Name)
	}
}

// mm1 is a one-processor, one-worker DelayedWorkQueue with Poisson
// arrivals and exponential service: M/M/1 plus the kernel's small costs.
const mm1 = `{
  "name": "mm1", "seeds": [1, 2, 3], "dispatchers": ["nt"],
  "pools": [{"policy": "fixed", "static": {"DelayedWorkQueue": 1}}],
  "workloads": [
    {"name": "rho30", "processors": 1, "duration": "20s", "streams": [{"queue": "DelayedWorkQueue",
      "arrivals": {"process": "poisson", "rate": 300}, "service": {"dist": "exponential", "mean": "1ms"}}]},
    {"name": "rho60", "processors": 1, "duration": "20s", "streams": [{"queue": "DelayedWorkQueue",
      "arrivals": {"process": "poisson", "rate": 600}, "service": {"dist": "exponential", "mean": "1ms"}}]},
    {"name": "rho85", "processors": 1, "duration": "20s", "streams": [{"queue": "DelayedWorkQueue",
      "arrivals": {"process": "poisson", "rate": 850}, "service": {"dist": "exponential", "mean": "1ms"}}]}
  ]
}`

// Queueing latency grows with load, as queueing theory says, and is close
// to the M/M/1 mean wait ρ/(μ−λ).
func TestLatencyGrowsWithLoad(t *testing.T) {
	e, err := Parse([]byte(mm1))
	require.NoError(t, err)
	r, err := Run(context.Background(), e, Options{})
	require.NoError(t, err)
	require.Len(t, r.Aggregates, 3)
	prev := CellResult{}
	for i, rho := range []float64{0.30, 0.60, 0.85} {
		a := r.Aggregates[i]
		assert.Equal(t, "ok", a.Outcome)
		assert.InDelta(t, rho, a.UtilMean, 0.05, "%s: utilisation ≈ ρ", a.Workload)
		theory := rho / (1000 - rho*1000) * float64(des.Second) // mean wait in ns
		assert.InEpsilon(t, theory, a.Lat.Mean, 0.2, "%s: mean wait %.0fµs vs M/M/1 %.0fµs", a.Workload, us(a.Lat.Mean), us(theory))
		if i > 0 {
			assert.Greater(t, a.Lat.Mean, 1.5*prev.Lat.Mean, "%s: mean latency grows with load", a.Workload)
			assert.Greater(t, a.Lat.P99, prev.Lat.P99, "%s: p99 grows with load", a.Workload)
		}
		t.Logf("%s: utilisation %.3f, mean wait %.0fµs (M/M/1: %.0fµs), p99 %.0fµs", a.Workload, a.UtilMean, us(a.Lat.Mean), us(theory), us(a.Lat.P99))
		prev = a
	}
}

// blocking overloads a pool of two critical workers with routines that
// block for 4ms: two threads serve at most ~475 items/s, the offered load
// is 600/s. ReactOS adds critical threads on insert while the workers are
// blocked (REFERENCE §3.2); a fixed pool cannot.
const blocking = `{
  "name": "blocking", "seeds": [1, 2, 3], "dispatchers": ["nt"],
  "pools": [{"policy": "fixed", "static": {"CriticalWorkQueue": 2}},
            {"policy": "reactos", "static": {"CriticalWorkQueue": 2}}],
  "workloads": [{"name": "io", "processors": 2, "duration": "2s", "streams": [{
    "queue": "CriticalWorkQueue", "arrivals": {"process": "poisson", "rate": 600},
    "service": {"dist": "exponential", "mean": "200us"},
    "blocking": {"fraction": 1, "time": {"dist": "constant", "mean": "4ms"}}}]}]
}`

func TestReactOSBeatsFixedOnBlockingWork(t *testing.T) {
	e, err := Parse([]byte(blocking))
	require.NoError(t, err)
	r, err := Run(context.Background(), e, Options{})
	require.NoError(t, err)
	for i := 0; i < len(e.Seeds); i++ {
		fixed, ros := r.Cells[i], r.Cells[len(e.Seeds)+i]
		require.Equal(t, "nt/fixed", fixed.Policy)
		require.Equal(t, "nt/reactos", ros.Policy)
		assert.Equal(t, fixed.Arrived, ros.Arrived, "seed %d: both pools see the same arrivals", fixed.Seed)
		assert.Less(t, ros.Lat.P99*20, fixed.Lat.P99, "seed %d: ReactOS p99 %.0fµs vs fixed %.0fµs", fixed.Seed, us(ros.Lat.P99), us(fixed.Lat.P99))
		assert.Greater(t, ros.Throughput, 1.15*fixed.Throughput, "seed %d: ReactOS keeps up, the fixed pool cannot", fixed.Seed)
		assert.Positive(t, ros.DynCreated)
		assert.Zero(t, fixed.DynCreated)
		assert.Positive(t, fixed.Drain, "seed %d: the fixed pool has a backlog to drain after the window", fixed.Seed)
	}
}

// Periodic and bursty arrivals deliver the rate asked for, bursts at once.
func TestArrivalProcesses(t *testing.T) {
	e, err := Parse([]byte(`{"name": "arr", "seeds": [7], "dispatchers": ["nt"], "pools": [{"policy": "grow-on-demand"}],
	  "workloads": [{"name": "w", "processors": 4, "duration": "1s", "streams": [
	    {"queue": "DelayedWorkQueue", "arrivals": {"process": "periodic", "rate": 1000}, "service": {"dist": "uniform", "min": "10us", "max": "50us"}},
	    {"queue": "CustomPriorityWorkQueue+9", "arrivals": {"process": "bursty", "rate": 2000, "burst": 20}, "service": {"dist": "lognormal", "mean": "50us", "cv": 2}}]}]}`))
	require.NoError(t, err)
	r, err := Run(context.Background(), e, Options{})
	require.NoError(t, err)
	c := r.Cells[0]
	assert.Equal(t, "ok", c.Outcome, c.Detail)
	assert.InDelta(t, 3000, c.Arrived, 400)
	assert.Equal(t, c.Arrived, c.Completed)
	assert.Equal(t, 3000.0, c.Offered)
}

// WriteDir replaces files in an existing directory and leaves nothing
// behind when it cannot write.
func TestWriteDir(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "res")
	require.NoError(t, WriteDir(out, []File{{"a.csv", []byte("1")}}))
	require.NoError(t, WriteDir(out, []File{{"a.csv", []byte("2")}, {"b.png", []byte("x")}}))
	got, _ := os.ReadFile(filepath.Join(out, "a.csv"))
	assert.Equal(t, "2", string(got))
	entries, _ := os.ReadDir(out)
	assert.Len(t, entries, 2, "no temporary file left")

	blocker := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(blocker, nil, 0o644))
	assert.Error(t, WriteDir(blocker, []File{{"a.csv", nil}}))
	assert.Error(t, WriteDir(filepath.Join(blocker, "sub"), []File{{"a.csv", nil}}))
	entries, _ = os.ReadDir(dir)
	assert.Len(t, entries, 2, "nothing new beside the output")
}

func TestCancel(t *testing.T) {
	e, err := ParseFile(examplePath)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = Run(ctx, e, Options{})
	assert.ErrorIs(t, err, context.Canceled)
}

// valid is the smallest complete experiment; the validation cases break
// one thing each.
const valid = `{
  "name": "v", "seeds": [1], "dispatchers": ["nt"], "pools": [{"policy": "fixed"}],
  "workloads": [{"name": "w", "processors": 2, "duration": "10ms",
    "streams": [{"queue": "DelayedWorkQueue", "arrivals": {"process": "poisson", "rate": 100},
      "service": {"dist": "exponential", "mean": "1ms"}}],
    "competing": [{"name": "hog", "priority": 14, "compute": {"dist": "constant", "mean": "1ms"}, "sleep": {"dist": "constant", "mean": "1ms"}}]}]
}`

func TestValidMinimal(t *testing.T) {
	e, err := Parse([]byte(valid))
	require.NoError(t, err)
	r, err := Run(context.Background(), e, Options{})
	require.NoError(t, err)
	assert.Equal(t, "ok", r.Cells[0].Outcome, r.Cells[0].Detail)
}

func TestValidationMessages(t *testing.T) {
	cases := []struct {
		name, old, new string
		want           []string // substrings of the message
	}{
		{"wrong field", `"rate": 100`, `"rat": 100`,
			[]string{`workloads[0].streams[0].arrivals: unknown field "rat"; did you mean "rate"?`}},
		{"unknown top-level field", `"name": "v",`, `"name": "v", "colour": 1,`,
			[]string{`(top level): unknown field "colour"`, "remove it or use one of: name, description, seeds"}},
		{"negative rate", `"rate": 100`, `"rate": -3`,
			[]string{"workloads[0].streams[0].arrivals.rate: -3 must be positive (items per second)"}},
		{"zero rate", `"rate": 100`, `"rate": 0`,
			[]string{"workloads[0].streams[0].arrivals.rate: 0 must be positive"}},
		{"zero processors", `"processors": 2`, `"processors": 0`,
			[]string{"workloads[0].processors: 0 is impossible; give 1 to 64 simulated processors"}},
		{"missing processors", `"processors": 2,`, ``,
			[]string{"workloads[0].processors: missing; give the number of simulated processors"}},
		{"processors as string", `"processors": 2`, `"processors": "2"`,
			[]string{`workloads[0].processors: "2" is a string; want a whole number`}},
		{"fractional processors", `"processors": 2`, `"processors": 1.5`,
			[]string{"workloads[0].processors: 1.5 is not a whole number"}},
		{"unknown dispatcher", `"dispatchers": ["nt"]`, `"dispatchers": ["linux"]`,
			[]string{`dispatchers[0]: unknown dispatcher "linux"; use one of nt, nt-percpu, nt-global, nt-server, nt-noboost, fifo, nt-ideal`}},
		{"unknown pool policy", `{"policy": "fixed"}`, `{"policy": "elastic"}`,
			[]string{`pools[0].policy: unknown pool policy "elastic"; use one of fixed, reactos, grow-on-demand`}},
		{"bad duration", `"duration": "10ms"`, `"duration": "10 ms"`,
			[]string{`workloads[0].duration: "10 ms" is not a duration; write it with a unit`}},
		{"duration as number", `"duration": "10ms"`, `"duration": 10`,
			[]string{"workloads[0].duration: 10 is a number; durations are strings with a unit"}},
		{"negative duration", `"duration": "10ms"`, `"duration": "-1s"`,
			[]string{"workloads[0].duration: -1s is negative"}},
		{"zero duration", `"duration": "10ms"`, `"duration": "0s"`,
			[]string{"workloads[0].duration: 0s is not allowed"}},
		{"unknown queue", `"queue": "DelayedWorkQueue"`, `"queue": "Delayed"`,
			[]string{`workloads[0].streams[0].queue: unknown queue type "Delayed"; use one of CriticalWorkQueue, DelayedWorkQueue`}},
		{"custom queue priority", `"queue": "DelayedWorkQueue"`, `"queue": "CustomPriorityWorkQueue+40"`,
			[]string{"workloads[0].streams[0].queue: \"CustomPriorityWorkQueue+40\": the priority after CustomPriorityWorkQueue+ must be 1 to 31"}},
		{"unknown distribution", `"dist": "exponential"`, `"dist": "gamma"`,
			[]string{`workloads[0].streams[0].service.dist: unknown distribution "gamma"; use one of constant, exponential, uniform, lognormal`}},
		{"min with exponential", `"mean": "1ms"}}]`, `"mean": "1ms", "min": "1us"}}]`,
			[]string{`workloads[0].streams[0].service.min: does not apply to "exponential"`}},
		{"priority too high", `"priority": 14`, `"priority": 32`,
			[]string{"workloads[0].competing[0].priority: 32 is not a thread priority; give 1 to 31"}},
		{"burst without bursty", `"rate": 100`, `"rate": 100, "burst": 4`,
			[]string{`workloads[0].streams[0].arrivals.burst: applies only to "process": "bursty"`}},
		{"empty seeds", `"seeds": [1]`, `"seeds": []`,
			[]string{"seeds: missing or empty"}},
		{"negative seed", `"seeds": [1]`, `"seeds": [-1]`,
			[]string{"seeds[0]: -1 is not a whole number from 0"}},
		{"null", `"seeds": [1]`, `"seeds": null`,
			[]string{"seeds: null is not a value here"}},
		{"bad name", `"name": "w"`, `"name": "a/b"`,
			[]string{`workloads[0].name: "a/b" contains '/'`}},
		{"too many items", `"duration": "10ms",
    "streams": [{"queue": "DelayedWorkQueue", "arrivals": {"process": "poisson", "rate": 100}`, `"duration": "1h",
    "streams": [{"queue": "DelayedWorkQueue", "arrivals": {"process": "poisson", "rate": 1000}`,
			[]string{"workloads[0]: about 3600000 work items per run (rates × duration); at most 2000000: lower the rates or shorten the duration"}},
		{"rate too high", `"rate": 100`, `"rate": 1e9`,
			[]string{"workloads[0].streams[0].arrivals.rate: 1e+09 items per second is more than the 10000000"}},
		{"syntax", `"seeds": [1],`, `"seeds": [1],,`,
			[]string{"line 2, column ", "invalid JSON"}},
		{"trailing data", `}]}]
}`, `}]}]
} {}`, []string{"unexpected data after the experiment object"}},
		{"two problems", `"processors": 2`, `"processors": -1, "bogus": true`,
			[]string{"2 problems:", `workloads[0]: unknown field "bogus"`, "workloads[0].processors: -1 is impossible"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			require.Contains(t, valid, c.old)
			src := strings.Replace(valid, c.old, c.new, 1)
			e, err := Parse([]byte(src))
			require.Error(t, err, src)
			assert.Nil(t, e)
			for _, w := range c.want {
				assert.Contains(t, err.Error(), w)
			}
			var es Errors
			require.ErrorAs(t, err, &es)
		})
	}
	// Empty and non-object files.
	for _, src := range []string{"", "  \n", "[]", "42", `"x"`, "{"} {
		_, err := Parse([]byte(src))
		require.Error(t, err, "%q", src)
	}
	_, err := ParseFile(filepath.Join(t.TempDir(), "missing.json"))
	assert.ErrorContains(t, err, "cannot read the experiment file")
}
