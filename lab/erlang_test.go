package lab

import (
	"bytes"
	"context"
	"encoding/csv"
	"math"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Erlang C against textbook values, and stable where a^c/c! overflows.
func TestErlangC(t *testing.T) {
	assert.InDelta(t, 0.5765, ErlangC(2, 1.4), 1e-4, "M/M/2 at a = 1.4")
	assert.InDelta(t, 0.7, ErlangC(1, 0.7), 1e-12, "M/M/1: P(wait) = ρ")
	assert.InDelta(t, 0.5964, ErlangC(4, 3.2), 1e-4, "M/M/4 at a = 3.2: 21.8453 / (14.7813 + 21.8453)")
	assert.Equal(t, 1.0, ErlangC(3, 3), "unstable")
	assert.Equal(t, 0.0, ErlangC(3, 0))
	c := ErlangC(500, 490)
	assert.False(t, math.IsNaN(c))
	assert.True(t, c > 0 && c < 1, "c = 500: %v", c)
}

// mmcExample runs bench/experiments/mmc.json in full (about a second).
func mmcExample(t *testing.T) *Results {
	t.Helper()
	e, err := ParseFile("../bench/experiments/mmc.json")
	require.NoError(t, err)
	r, err := Run(context.Background(), e, Options{})
	require.NoError(t, err)
	require.Empty(t, r.Problems())
	return r
}

// TestMMcMatchesErlangC runs the shipped M/M/2 experiment (20 seeds of
// 10 s, 14,000 items each) and checks that results.csv carries the Erlang
// C columns beside the measurements, and that under nt-ideal (zero kernel
// costs, an exact M/M/2 queue) the measured mean wait and P(wait) contain
// the theory within their 95% intervals over seeds, intervals narrow
// enough to mean something. Under nt the kernel's costs make every item
// wait a little: P(wait) is 1.
func TestMMcMatchesErlangC(t *testing.T) {
	r := mmcExample(t)
	var b bytes.Buffer
	require.NoError(t, r.WriteCSV(&b))
	rows, err := csv.NewReader(&b).ReadAll()
	require.NoError(t, err)
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	for _, name := range []string{"p_wait", "lat_mean_us", "lat_mean_ci95_us", "p_wait_ci95", "erlang_c_servers", "erlang_c_p_wait", "erlang_c_wait_mean_us"} {
		require.Contains(t, col, name)
	}
	num := func(row []string, name string) float64 {
		v, err := strconv.ParseFloat(row[col[name]], 64)
		require.NoError(t, err, "%s = %q", name, row[col[name]])
		return v
	}
	checked := 0
	for _, row := range rows[1:] {
		assert.Equal(t, "2", row[col["erlang_c_servers"]], "every row is M/M/2")
		assert.InDelta(t, 0.5765, num(row, "erlang_c_p_wait"), 1e-4)
		want := 0.5765 / (2*1000 - 1400) * 1e6 // µs
		assert.InDelta(t, want, num(row, "erlang_c_wait_mean_us"), 0.5)
		if row[col["seed"]] != "all" {
			continue
		}
		switch row[col["dispatcher"]] {
		case "nt-ideal":
			mean, half := num(row, "lat_mean_us"), num(row, "lat_mean_ci95_us")
			assert.InDelta(t, want, mean, half, "Erlang C mean wait within the measured 95%% interval")
			assert.Less(t, half/want, 0.05, "the interval is tight enough to test something")
			p, ph := num(row, "p_wait"), num(row, "p_wait_ci95")
			assert.InDelta(t, 0.5765, p, ph, "Erlang C P(wait) within the measured 95%% interval")
			assert.Less(t, ph, 0.01)
			checked++
		case "nt":
			assert.Equal(t, 1.0, num(row, "p_wait"), "with kernel costs every item waits for its hand-off")
			assert.Greater(t, num(row, "lat_mean_us"), num(row, "erlang_c_wait_mean_us"), "costs add to the wait")
		}
	}
	assert.Equal(t, 1, checked)

	// The plot draws the theory as a reference curve and marks its mean.
	f, err := r.cdfFigure(&r.Experiment.Workloads[0])
	require.NoError(t, err)
	_, svg, err := f.render()
	require.NoError(t, err)
	assert.Contains(t, string(svg), "Erlang C, M/M/2 (theory)")
	assert.Contains(t, string(svg), "Erlang C mean wait, 961")
}

// Only an M/M/c workload under a fixed pool gets a prediction; the
// servers are capped by the concurrency limit and the processors.
func TestMMcOnlyWhereTheoryHolds(t *testing.T) {
	base := func() (*Workload, *Pool) {
		e, err := ParseFile("../bench/experiments/mmc.json")
		require.NoError(t, err)
		return &e.Workloads[0], &e.Pools[0]
	}
	w, p := base()
	m, ok := mmcOf(w, p)
	require.True(t, ok)
	assert.Equal(t, 2, m.C, "3 delayed workers, 2 processors")
	four := 4
	w.Processors = &four
	m, _ = mmcOf(w, p)
	assert.Equal(t, 3, m.C, "3 delayed workers on 4 processors")
	one := 1
	p.Concurrency = &one
	_, ok = mmcOf(w, p)
	assert.False(t, ok, "one server at load 1.4 is unstable")

	for name, spoil := range map[string]func(*Workload, *Pool){
		"blocking":      func(w *Workload, _ *Pool) { w.Streams[0].Blocking = &Blocking{} },
		"bursts":        func(w *Workload, _ *Pool) { n := 2; w.Streams[0].Arrivals.Burst = &n },
		"constant":      func(w *Workload, _ *Pool) { w.Streams[0].Service.Dist = "constant" },
		"competing":     func(w *Workload, _ *Pool) { w.Competing = []Competing{{Name: "x"}} },
		"reactos pool":  func(_ *Workload, p *Pool) { p.Policy = "reactos" },
		"two streams":   func(w *Workload, _ *Pool) { w.Streams = append(w.Streams, w.Streams[0]) },
		"periodic":      func(w *Workload, _ *Pool) { w.Streams[0].Arrivals.Process = "periodic" },
		"custom queue":  func(w *Workload, _ *Pool) { w.Streams[0].Queue = "CustomPriorityWorkQueue+9" },
		"real-time set": func(w *Workload, _ *Pool) { w.Tasks = []Task{{Name: "t"}} },
	} {
		w, p := base()
		spoil(w, p)
		_, ok := mmcOf(w, p)
		assert.False(t, ok, name)
	}
}
