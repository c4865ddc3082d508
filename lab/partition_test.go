package lab

import (
	"fmt"
	"math/bits"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// UUniFast-discard for m processors (Davis & Burns 2009): every set sums to
// U, no task exceeds 1, and — the distribution being uniform over the
// simplex cut by u_i ≤ 1, which is symmetric in the tasks — every task's
// mean utilization is U/n. A set that cannot exist is refused, not drawn
// with a task above 1.
func TestUUniFastDiscardDistribution(t *testing.T) {
	const n, u, draws = 8, 3.2, 4000
	r := newRand(11, 2)
	var sums [n]float64
	for range draws {
		us, ok := UUniFastDiscard(r, n, u, 1)
		require.True(t, ok)
		var sum float64
		for i, x := range us {
			require.True(t, x >= 0 && x <= 1, "u_%d = %v", i, x)
			sum += x
			sums[i] += x
		}
		require.InDelta(t, u, sum, 1e-9)
	}
	for i, s := range sums {
		assert.InDelta(t, u/n, s/draws, 0.02, "mean utilization of task %d", i)
	}
	g := GenSpec{Tasks: 2, Utilization: 2.5, PeriodMin: des.Millisecond, PeriodMax: des.Millisecond}
	_, ok := g.GenerateDiscard(r)
	assert.False(t, ok, "two tasks cannot share 2.5 with each at most 1")
	g = GenSpec{Tasks: 6, Utilization: 2.5, PeriodMin: des.Millisecond, PeriodMax: 100 * des.Millisecond, Granularity: des.Millisecond}
	ts, ok := g.GenerateDiscard(r)
	require.True(t, ok)
	assert.InDelta(t, 2.5, Utilization(ts), 0.01, "WCETs are rounded to the nanosecond")
}

func TestPartitionFirstFitDecreasing(t *testing.T) {
	task := func(name string, c, p des.Duration) PeriodicTask { return PeriodicTask{Name: name, WCET: c, Period: p} }
	// 0.4, 0.6, 0.5, 0.5: 0.6→P0, 0.5→P1, 0.5→P1 (exactly 1), 0.4→P0 (exactly 1).
	ts := []PeriodicTask{task("a", 4, 10), task("b", 6, 10), task("c", 5, 10), task("d", 1, 2)}
	assign, ok := Partition(ts, 2, FitUtilization)
	require.True(t, ok)
	assert.Equal(t, []int{0, 0, 1, 1}, assign)
	_, ok = Partition([]PeriodicTask{task("a", 6, 10), task("b", 6, 10), task("c", 6, 10)}, 2, FitUtilization)
	assert.False(t, ok, "three tasks of 0.6 do not fit two processors")
	// The analysis of a partition is that of each processor's share: RM
	// C=(2,4), T=(5,7) (U = 0.97) misses alone, but fits split in two.
	hard := []PeriodicTask{task("x", 2, 5), task("y", 4, 7)}
	assert.False(t, PartitionSchedulable(hard, []int{0, 0}, 1, RateMonotonic))
	assert.True(t, PartitionSchedulable(hard, []int{0, 1}, 2, RateMonotonic))
	// Admitted by exact RTA, first fit splits them; by utilization it
	// packs them on one processor, where y misses.
	assign, ok = Partition(hard, 2, FitRTA(RateMonotonic))
	require.True(t, ok)
	assert.Equal(t, []int{1, 0}, assign, "y (0.57) first, on P0; x (0.4) does not fit beside it")
	assign, ok = Partition(hard, 2, FitUtilization)
	require.True(t, ok)
	assert.Equal(t, []int{0, 0}, assign)
}

// placementSets draws n partitionable sets of 8 tasks for 4 processors at
// total utilizations in [1.6, 3.2], periods log-uniform in [1ms, 50ms] on
// a 100µs grid.
func placementSets(seed uint64, n int) [][]PeriodicTask {
	r := newRand(seed, 0x9a7)
	var out [][]PeriodicTask
	for len(out) < n {
		g := GenSpec{Tasks: 8, Utilization: 1.6 + 1.6*r.Float64(), PeriodMin: des.Millisecond,
			PeriodMax: 50 * des.Millisecond, Granularity: 100 * des.Microsecond}
		ts, ok := g.GenerateDiscard(r)
		if !ok {
			continue
		}
		if _, ok := Partition(ts, 4, FitUtilization); ok {
			out = append(out, ts)
		}
	}
	return out
}

// Partitioned placement pins: every task's thread, once it has pinned
// itself, is only ever dispatched on its processor and never migrates —
// under the global NT dispatcher and the per-processor one alike (both
// honour affinity, REFERENCE §4.7). Global placement of the same sets on
// four processors migrates threads.
func TestPartitionedPlacementPins(t *testing.T) {
	sets := placementSets(1, 20)
	for _, disp := range []string{"nt", "nt-percpu"} {
		globalMigrations := 0
		for si, ts := range sets {
			order := RateMonotonic.Order(ts)
			assign, _ := Partition(ts, 4, FitUtilization)
			run, err := SimulatePlacement(ts, order, 4, disp, assign, 200*des.Millisecond)
			require.NoError(t, err)
			require.Zero(t, run.Migrations, "%s set %d [%s] partitioned", disp, si, TaskSetString(ts))
			for i := range ts {
				require.Equal(t, kernel.KAFFINITY(1)<<uint(assign[i]), run.RanOn[i], "%s set %d task %s ran on %b, pinned to %d", disp, si, ts[i].Name, run.RanOn[i], assign[i])
			}
			g, err := SimulatePlacement(ts, order, 4, disp, nil, 200*des.Millisecond)
			require.NoError(t, err)
			globalMigrations += g.Migrations
			if g.Migrations > 0 {
				assert.True(t, slicesAny(g.RanOn, func(a kernel.KAFFINITY) bool { return bits.OnesCount64(a) > 1 }))
			}
		}
		assert.Positive(t, globalMigrations, "%s: global placement on 4 processors migrates", disp)
	}
}

func slicesAny[T any](xs []T, f func(T) bool) bool {
	for _, x := range xs {
		if f(x) {
			return true
		}
	}
	return false
}

// Validation against per-processor analysis: on a partitioned machine each
// processor is a one-processor machine of its share, so with zero call
// costs the simulated worst response of every task equals exact
// response-time analysis of its processor's share to the nanosecond, and a
// partition whose every share passes the exact test misses no deadline
// (and one whose share fails misses). A failure names the set and the
// partition in full.
func TestPartitionedMatchesPerProcessorRTA(t *testing.T) {
	n := 60
	if testing.Short() {
		n = 20
	}
	for _, disp := range []string{"nt", "nt-percpu"} {
		compared, schedulable := 0, 0
		for si, ts := range placementSets(2, n) {
			assign, _ := Partition(ts, 4, FitUtilization)
			want := partitionResponses(ts, assign, 4, RateMonotonic)
			horizon := partitionHorizon(ts, assign, 4, RateMonotonic)
			if horizon > 2*des.Second {
				continue // a share at utilization ~1: a busy period too long for a unit test
			}
			run, err := SimulatePlacement(ts, RateMonotonic.Order(ts), 4, disp, assign, horizon)
			require.NoError(t, err)
			name := fmt.Sprintf("%s set %d [%s] on processors %v", disp, si, TaskSetString(ts), assign)
			for i, w := range want {
				if w != Unbounded {
					require.Equal(t, w, run.Worst[i], "%s: task %s", name, ts[i].Name)
					compared++
				}
			}
			ok := PartitionSchedulable(ts, assign, 4, RateMonotonic)
			require.Equal(t, ok, run.Misses == 0, "%s: analysis schedulable=%v, simulation missed %d of %d jobs", name, ok, run.Misses, run.Jobs)
			schedulable += b2i(ok)
		}
		t.Logf("%s: compared %d schedulable %d", disp, compared, schedulable)
		assert.Greater(t, compared, 4*n, "%s: most tasks compared", disp)
		assert.Positive(t, schedulable, disp)
	}
}

// partitionResponses is ResponseTimes of each processor's share, indexed
// as ts.
func partitionResponses(ts []PeriodicTask, assign []int, m int, o PriorityOrder) []des.Duration {
	out := make([]des.Duration, len(ts))
	for p := range m {
		var idx []int
		for i := range ts {
			if assign[i] == p {
				idx = append(idx, i)
			}
		}
		share := onProcessor(ts, assign, p)
		for j, r := range ResponseTimes(share, o.Order(share)) {
			out[idx[j]] = r
		}
	}
	return out
}
