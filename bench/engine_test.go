package bench

// Engine benchmarks (issue 2) and their floors, in one file so that every
// ratio in BENCHMARKS.md comes from one run on one machine.
//
// The workload is the classic "hold" model: P simulated threads, each looping
// "sleep an exponentially distributed delay (mean 1ms)". One event is one
// thread resumption (or one timer callback); b.N counts events, so ns/op,
// ns/event and allocs/op are all per event.
//
//	BenchmarkEngineTimers    des timers: a callback that reschedules itself with After
//	BenchmarkFloorBtree      floor for timers: a bare btree of (time, seq, callback index)
//	BenchmarkEngineTimeouts  des procs (Spawn, ResumeAt, Proc.Sleep)
//	BenchmarkFloorCoro       floor for procs: the same btree plus iter.Pull coroutines
//
// The benchmarks are declared pairwise, each engine benchmark followed by its
// floor, so that go test runs the two of a ratio back to back.
//
// Every variant draws its delays from the same PCG stream in the same order
// and orders events by (time, seq), so all four fire the same events at the
// same instants; TestWorkloadsAgree checks it.

import (
	"fmt"
	"iter"
	"math/rand/v2"
	"testing"

	"github.com/google/btree"

	"github.com/wqsim/wqsim/des"
)

// benchSizes are the numbers of simulated threads measured.
var benchSizes = []int{10, 1000}

const (
	benchSeed = 42
	// meanDelay is the mean of the exponential sleep, in nanoseconds.
	meanDelay = float64(des.Millisecond)
	// floorDegree is the btree degree of the floors, the same as des uses,
	// so the ratio measures the engine and not a different tree shape.
	floorDegree = 16
)

// simRand returns the generator des.Sim.Rand returns for the same seed (a
// PCG seeded with seed and seed^0xda942042e4dd58b5), never the global
// source: the floors draw the same numbers as the engine.
func simRand(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, seed^0xda942042e4dd58b5))
}

// expDelay draws one sleep: exponential with mean meanDelay, at least 1ns.
func expDelay(r *rand.Rand) int64 {
	d := int64(r.ExpFloat64() * meanDelay)
	if d < 1 {
		d = 1
	}
	return d
}

// warmupEvents is how many events run before the timer starts, enough for
// the queue, the event slots and the btree free list to reach steady state.
func warmupEvents(p int) int { return 20*p + 10000 }

// The four event benchmarks share everything but their timed loop: eachSize
// runs one sub-benchmark per P, warmUp runs the untimed warm-up and starts
// the measurement, endEvents stops it. The timed loop is written out once per
// event-loop type (benchSim for both engine benchmarks, one per floor) so
// that it calls its step method directly: passing the step as a func value
// or an interface would add an indirect call and a wrapper frame to every
// measured event, and the thread benchmarks are sensitive to the frames on
// the path that returns across a coroutine switch (BENCHMARKS.md).

// eachSize runs body as sub-benchmark "P=<p>" for every p in benchSizes.
func eachSize(b *testing.B, body func(b *testing.B, p int)) {
	for _, p := range benchSizes {
		b.Run(fmt.Sprintf("P=%d", p), func(b *testing.B) { body(b, p) })
	}
}

// warmUp runs warmupEvents(p) events with step, untimed, then counts
// allocations and restarts the timer: what follows is measured.
func warmUp(b *testing.B, p int, step func() bool) {
	for i := warmupEvents(p); i > 0; i-- {
		if !step() {
			b.Fatal(errRanDry)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
}

// endEvents stops the timer and adds the ns/event metric: b.N counts
// events, so it equals ns/op, under the unit BENCHMARKS.md's benchstat
// filter (.unit:sec/event) selects.
func endEvents(b *testing.B) {
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/event")
}

const errRanDry = "event queue ran dry"

// --- engine: timers -----------------------------------------------------------

// newEngineTimers builds a Sim with p self-rescheduling callbacks. Each
// callback is created once, so rescheduling it allocates nothing.
func newEngineTimers(p int) *des.Sim {
	sim := des.New(des.Config{Seed: benchSeed})
	rng := sim.Rand()
	for i := 0; i < p; i++ {
		var fn des.Handler
		fn = func() { sim.After(des.Duration(expDelay(rng)), fn) }
		sim.At(0, fn)
	}
	return sim
}

// benchSim measures the des event loop: b.N events of the Sim newSim builds.
// Both engine benchmarks use it; its timed loop calls (*des.Sim).Step
// directly.
func benchSim(b *testing.B, newSim func(p int) *des.Sim) {
	eachSize(b, func(b *testing.B, p int) {
		sim := newSim(p)
		defer sim.Close()
		warmUp(b, p, sim.Step)
		for i := 0; i < b.N; i++ {
			if !sim.Step() {
				b.Fatal(errRanDry)
			}
		}
		endEvents(b)
	})
}

func BenchmarkEngineTimers(b *testing.B) { benchSim(b, newEngineTimers) }

// --- floor: bare btree + callbacks ----------------------------------------------

// item is a floor event: when, insertion order, and whose callback (or
// coroutine, or M/M/4 server).
type item struct {
	at  int64
	seq uint64
	idx int32
}

func itemLess(a, b item) bool {
	return a.at < b.at || (a.at == b.at && a.seq < b.seq)
}

// floor is the bare event loop every floor is built on: a btree ordered by
// (time, seq), a clock, and the random source seeded like the engine's.
type floor struct {
	q   *btree.BTreeG[item]
	now int64
	seq uint64
	rng *rand.Rand
}

func newFloor(seed uint64) floor {
	return floor{q: btree.NewG(floorDegree, itemLess), rng: simRand(seed)}
}

func (f *floor) push(at int64, idx int32) {
	f.seq++
	f.q.ReplaceOrInsert(item{at: at, seq: f.seq, idx: idx})
}

// floorBtree is the timer floor: DeleteMin, call the callback, and the
// callback reinserts itself at now + exp delay.
type floorBtree struct {
	floor
	cbs []func()
}

func newFloorBtree(p int) *floorBtree {
	f := &floorBtree{floor: newFloor(benchSeed), cbs: make([]func(), p)}
	for i := range f.cbs {
		idx := int32(i)
		f.cbs[i] = func() { f.push(f.now+expDelay(f.rng), idx) }
		f.push(0, idx)
	}
	return f
}

func (f *floorBtree) step() bool {
	it, ok := f.q.DeleteMin()
	if !ok {
		return false
	}
	f.now = it.at
	f.cbs[it.idx]()
	return true
}

func BenchmarkFloorBtree(b *testing.B) {
	eachSize(b, func(b *testing.B, p int) {
		f := newFloorBtree(p)
		warmUp(b, p, f.step)
		for i := 0; i < b.N; i++ {
			if !f.step() {
				b.Fatal(errRanDry)
			}
		}
		endEvents(b)
	})
}

// --- engine: simulated threads ---------------------------------------------

// newEngineTimeouts builds a Sim with p procs, each looping Sleep(exp).
func newEngineTimeouts(p int) *des.Sim {
	sim := des.New(des.Config{Seed: benchSeed})
	rng := sim.Rand()
	body := func(pr *des.Proc) {
		for {
			pr.Sleep(des.Duration(expDelay(rng)))
		}
	}
	for i := 0; i < p; i++ {
		sim.ResumeAt(0, sim.Spawn(fmt.Sprintf("t%d", i), body))
	}
	return sim
}

func BenchmarkEngineTimeouts(b *testing.B) { benchSim(b, newEngineTimeouts) }

// --- floor: bare btree + iter.Pull coroutines -------------------------------------

// floorCoro is the thread floor: P coroutines made with iter.Pull, each
// yielding its next delay; the loop does DeleteMin, next(), reinsert.
type floorCoro struct {
	floor
	next []func() (int64, bool)
	stop []func()
}

func newFloorCoro(p int) *floorCoro {
	f := &floorCoro{floor: newFloor(benchSeed), next: make([]func() (int64, bool), p), stop: make([]func(), p)}
	thread := func(yield func(int64) bool) {
		for yield(expDelay(f.rng)) {
		}
	}
	for i := 0; i < p; i++ {
		f.next[i], f.stop[i] = iter.Pull(iter.Seq[int64](thread))
		f.push(0, int32(i))
	}
	return f
}

func (f *floorCoro) step() bool {
	it, ok := f.q.DeleteMin()
	if !ok {
		return false
	}
	f.now = it.at
	d, _ := f.next[it.idx]()
	f.push(f.now+d, it.idx)
	return true
}

func (f *floorCoro) close() {
	for _, stop := range f.stop {
		stop()
	}
}

func BenchmarkFloorCoro(b *testing.B) {
	eachSize(b, func(b *testing.B, p int) {
		f := newFloorCoro(p)
		defer f.close()
		warmUp(b, p, f.step)
		for i := 0; i < b.N; i++ {
			if !f.step() {
				b.Fatal(errRanDry)
			}
		}
		endEvents(b)
	})
}

// TestWorkloadsAgree checks that the four variants run the same workload:
// the same events at the same instants, so their costs are comparable.
func TestWorkloadsAgree(t *testing.T) {
	for _, p := range benchSizes {
		n := warmupEvents(p)
		trace := func(step func() bool, now func() int64) []int64 {
			ts := make([]int64, n)
			for i := range ts {
				if !step() {
					t.Fatalf("P=%d: queue ran dry after %d events", p, i)
				}
				ts[i] = now()
			}
			return ts
		}
		eth := newEngineTimeouts(p)
		etm := newEngineTimers(p)
		fb := newFloorBtree(p)
		fc := newFloorCoro(p)
		runs := map[string][]int64{
			"EngineTimeouts": trace(eth.Step, func() int64 { return int64(eth.Now()) }),
			"EngineTimers":   trace(etm.Step, func() int64 { return int64(etm.Now()) }),
			"FloorBtree":     trace(fb.step, func() int64 { return fb.now }),
			"FloorCoro":      trace(fc.step, func() int64 { return fc.now }),
		}
		eth.Close()
		etm.Close()
		fc.close()
		want := runs["FloorBtree"]
		for name, got := range runs {
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("P=%d: %s event %d at %d, FloorBtree at %d", p, name, i, got[i], want[i])
				}
			}
		}
		if want[n-1] <= 0 {
			t.Fatalf("P=%d: clock did not advance", p)
		}
	}
}
