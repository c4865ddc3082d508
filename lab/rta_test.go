package lab

import (
	"errors"
	"flag"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// rtaSets is how many random task sets TestRTAEqualsSimulation checks per
// priority order; the full validation is -rta.sets=10000.
var rtaSets = flag.Int("rta.sets", 200, "random task sets per priority order checked by TestRTAEqualsSimulation (full validation: 10000)")

// rtaGen is the validation's task-set distribution: 2–10 tasks, total
// utilization uniform in [0.05, 1.0], periods log-uniform in [1ms, 100ms]
// on a 1µs grid, WCETs in nanoseconds.
func rtaGen(r interface {
	IntN(int) int
	Float64() float64
}) GenSpec {
	return GenSpec{
		Tasks: 2 + r.IntN(9), Utilization: 0.05 + 0.95*r.Float64(),
		PeriodMin: des.Millisecond, PeriodMax: 100 * des.Millisecond, Granularity: des.Microsecond,
	}
}

// checkRandomSets checks n random task sets of seed under o with costs and
// returns the number of tasks compared (those with a bounded response)
// and the first failure.
func checkRandomSets(seed uint64, n int, o PriorityOrder, costs kernel.Costs) (int, error) {
	r := newRand(seed, 0x57a)
	compared := 0
	for i := range n {
		g := rtaGen(r)
		g.Constrained = o == DeadlineMonotonic
		ts := g.Generate(r)
		for _, rt := range ResponseTimes(ts, o.Order(ts)) {
			if rt != Unbounded {
				compared++
			}
		}
		if err := CheckRTA(ts, o, costs); err != nil {
			return compared, fmt.Errorf("set %d of seed %d: %w", i, seed, err)
		}
	}
	return compared, nil
}

// The dispatcher's preemption is exact: on one processor with zero
// kernel-call costs the simulated worst-case response time of every task
// over the busy period equals exact response-time analysis to the
// nanosecond, for random UUniFast task sets under rate-monotonic
// (implicit deadlines) and deadline-monotonic (constrained deadlines)
// priorities on the real-time band (REFERENCE §4.2: a higher priority
// preempts at once). A failure names the task set in full.
func TestRTAEqualsSimulation(t *testing.T) {
	n := *rtaSets
	if testing.Short() {
		n = min(n, 50)
	}
	for _, o := range []PriorityOrder{RateMonotonic, DeadlineMonotonic} {
		t.Run(o.String(), func(t *testing.T) {
			compared, err := checkRandomSets(1, n, o, kernel.Costs{})
			require.NoError(t, err)
			assert.Greater(t, compared, 3*n, "most tasks have a bounded response and are compared")
		})
	}
}

// A textbook set (Buttazzo, Hard Real-Time Computing Systems, RM example):
// C = 1, 2, 3 and T = 4, 6, 12 give R = 1, 3, 10.
func TestRTATextbookSet(t *testing.T) {
	ms := des.Millisecond
	ts := []PeriodicTask{{Name: "a", WCET: 1 * ms, Period: 4 * ms}, {Name: "b", WCET: 2 * ms, Period: 6 * ms}, {Name: "c", WCET: 3 * ms, Period: 12 * ms}}
	assert.Equal(t, []des.Duration{1 * ms, 3 * ms, 10 * ms}, ResponseTimes(ts, RateMonotonic.Order(ts)))
	require.NoError(t, CheckRTA(ts, RateMonotonic, kernel.Costs{}))
	// Overload: the lowest task's level utilization is 1/4+2/6+4/8 > 1.
	ts[2] = PeriodicTask{Name: "c", WCET: 4 * ms, Period: 8 * ms}
	r := ResponseTimes(ts, RateMonotonic.Order(ts))
	assert.Equal(t, Unbounded, r[2])
	assert.False(t, Schedulable(ts, RateMonotonic))
	require.NoError(t, CheckRTA(ts, RateMonotonic, kernel.Costs{}), "the bounded tasks still agree")
}

// Beyond the deadline: a task whose response exceeds its period has its
// worst case at a later job of the busy period (Lehoczky 1990), not the
// first: C = (26, 62), T = (70, 100) gives 118 for the second job of b.
func TestRTAArbitraryDeadlineBusyPeriod(t *testing.T) {
	ts := []PeriodicTask{{Name: "a", WCET: 26, Period: 70}, {Name: "b", WCET: 62, Period: 100}}
	r := ResponseTimes(ts, RateMonotonic.Order(ts))
	assert.Equal(t, des.Duration(26), r[0])
	assert.Equal(t, des.Duration(118), r[1], "job 0 completes at 114, job 1 at 202 (response 102), … the worst is 118")
	require.NoError(t, CheckRTA(ts, RateMonotonic, kernel.Costs{}))
}

// The validation can fail: one nanosecond of kernel-call cost (or of
// context switch) delays every release and preemption, and the simulated
// responses no longer match the analysis. The mismatch names the set.
func TestRTAValidationDetectsOneCallCost(t *testing.T) {
	for _, costs := range []kernel.Costs{{Call: 1}, {ContextSwitch: 1}} {
		_, err := checkRandomSets(1, 20, RateMonotonic, costs)
		var m *RTAMismatch
		require.True(t, errors.As(err, &m), "costs %+v: want a mismatch, got %v", costs, err)
		assert.Greater(t, m.Simulated, m.Analysed, "overheads only lengthen responses")
		assert.Contains(t, err.Error(), "task set [t0(C=")
	}
}

func TestUUniFast(t *testing.T) {
	r := newRand(7, 1)
	for range 1000 {
		us := UUniFast(r, 5, 0.8)
		var sum float64
		for _, u := range us {
			assert.GreaterOrEqual(t, u, 0.0)
			sum += u
		}
		assert.InDelta(t, 0.8, sum, 1e-12)
	}
	us, ok := UUniFastDiscard(r, 4, 2.5, 1)
	require.True(t, ok)
	for _, u := range us {
		assert.LessOrEqual(t, u, 1.0)
	}
	_, ok = UUniFastDiscard(r, 2, 2.5, 1)
	assert.False(t, ok, "two tasks cannot share 2.5 below 1 each")
	// Log-uniform periods stay in range on the grid.
	for range 1000 {
		p := LogUniformPeriod(r, 10*des.Millisecond, des.Second, des.Millisecond)
		assert.True(t, p >= 10*des.Millisecond && p <= des.Second && p%des.Millisecond == 0, "%v", p)
	}
	assert.InDelta(t, 0.7797, LiuLaylandBound(3), 1e-4)
}

// BenchmarkRTAValidation checks one random task set per iteration under
// RM (go test ./lab -run '^$' -bench RTAValidation -benchtime 10000x for
// the full 10,000-set validation).
func BenchmarkRTAValidation(b *testing.B) {
	r := newRand(1, 0x57a)
	for b.Loop() {
		g := rtaGen(r)
		if err := CheckRTA(g.Generate(r), RateMonotonic, kernel.Costs{}); err != nil {
			b.Fatal(err)
		}
	}
}
