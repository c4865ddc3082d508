package des_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/wqsim/wqsim/des"
)

func TestTimeAndDurationStrings(t *testing.T) {
	assert.Equal(t, "1.5ms", (1500 * des.Microsecond).String())
	assert.Equal(t, "2m0s", (2 * des.Minute).String())
	assert.Equal(t, "0.000000000s", des.Time(0).String())
	assert.Equal(t, "1.000250000s", des.Time(des.Second+250*des.Microsecond).String())
	assert.Equal(t, "-0.000000001s", des.Time(-1).String())
	assert.Equal(t, des.Time(15), des.Time(10).Add(5))
	assert.Equal(t, des.Duration(5), des.Time(15).Sub(10))
}

// Property: whatever is scheduled, events fire in nondecreasing time and
// equal times fire in insertion order.
func TestEventsFireInTimeThenInsertionOrder(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		s := des.New(des.Config{})
		times := rapid.SliceOfN(rapid.Int64Range(0, 20), 1, 60).Draw(rt, "times")
		type fired struct {
			at  des.Time
			idx int
		}
		var got []fired
		for i, at := range times {
			s.At(des.Time(at), func() { got = append(got, fired{s.Now(), i}) })
		}
		s.Run()
		require.Len(rt, got, len(times))
		for i := 1; i < len(got); i++ {
			require.LessOrEqual(rt, got[i-1].at, got[i].at, "time went backwards")
			if got[i-1].at == got[i].at {
				require.Less(rt, got[i-1].idx, got[i].idx, "equal times out of insertion order")
			}
		}
		for _, f := range got {
			require.Equal(rt, des.Time(times[f.idx]), f.at)
		}
	})
}

// Events scheduled from inside a handler, including at Now, fire after the
// current one; times in the past are clamped to Now.
func TestSchedulingFromHandlers(t *testing.T) {
	s := des.New(des.Config{})
	var order []string
	s.At(10, func() {
		order = append(order, "a")
		s.At(5, func() { order = append(order, "past→now") })
		s.After(0, func() { order = append(order, "now") })
	})
	s.At(10, func() { order = append(order, "b") })
	s.Run()
	assert.Equal(t, []string{"a", "b", "past→now", "now"}, order)
	assert.Equal(t, des.Time(10), s.Now())
}

func TestTimerCancel(t *testing.T) {
	s := des.New(des.Config{})
	fired := 0
	inc := func() { fired++ }
	t1 := s.At(5, inc)
	t2 := s.At(6, inc)
	assert.True(t, t1.Active())
	assert.Equal(t, 2, s.Pending())
	assert.True(t, t1.Stop(), "first stop cancels")
	assert.False(t, t1.Stop(), "second stop is a no-op")
	assert.False(t, t1.Active())
	assert.Equal(t, 1, s.Pending())
	// A new event reuses the cancelled slot; the stale handle must not touch it.
	t3 := s.At(7, inc)
	assert.False(t, t1.Stop(), "stale handle must not cancel the slot's new event")
	assert.True(t, t3.Active())
	s.Run()
	assert.Equal(t, 2, fired)
	assert.False(t, t2.Active(), "fired timers are inactive")
	assert.False(t, t2.Stop())
	assert.False(t, des.Timer{}.Active(), "zero timer is inactive")
	assert.Equal(t, des.Time(7), s.Now())
}

func TestCancelledEventDoesNotAdvanceClock(t *testing.T) {
	s := des.New(des.Config{})
	s.At(100, func() {}).Stop()
	s.At(3, func() {})
	assert.Equal(t, des.Time(3), s.NextAt())
	s.Run()
	assert.Equal(t, des.Time(3), s.Now())
	assert.Equal(t, des.Forever, s.NextAt())
}

func TestRunUntil(t *testing.T) {
	s := des.New(des.Config{})
	var fired []des.Time
	for _, at := range []des.Time{1, 5, 9} {
		s.At(at, func() { fired = append(fired, s.Now()) })
	}
	s.RunUntil(5)
	assert.Equal(t, []des.Time{1, 5}, fired)
	assert.Equal(t, des.Time(5), s.Now())
	s.RunUntil(7)
	assert.Equal(t, des.Time(7), s.Now(), "clock advances to the horizon")
	assert.Equal(t, 1, s.Pending())
}

// With DecideTies, simultaneous events are ordered by the chooser; choice
// 0 everywhere is insertion order.
func TestTieDecisions(t *testing.T) {
	run := func(c des.Chooser) ([]int, []des.Decision) {
		s := des.New(des.Config{DecideTies: true, Chooser: c})
		var order []int
		for i := 0; i < 4; i++ {
			s.At(10, func() { order = append(order, i) })
		}
		s.At(11, func() { order = append(order, 99) })
		out := s.Run()
		return order, out.Decisions
	}
	natural, log := run(des.Natural{})
	assert.Equal(t, []int{0, 1, 2, 3, 99}, natural)
	require.Len(t, log, 3, "ties among 4, 3, 2 events")
	assert.Equal(t, int32(4), log[0].N)
	assert.Equal(t, des.PointTie.Kind, log[0].Kind)

	reversed, _ := run(des.NewReplay([]des.Decision{
		{Kind: des.PointTie.Kind, N: 4, Choice: 3},
		{Kind: des.PointTie.Kind, N: 3, Choice: 2},
		{Kind: des.PointTie.Kind, N: 2, Choice: 1},
	}))
	assert.Equal(t, []int{3, 2, 1, 0, 99}, reversed)
}

func TestStepBudget(t *testing.T) {
	s := des.New(des.Config{StepBudget: 10})
	var tick des.Handler
	tick = func() { s.After(1, tick) }
	s.After(1, tick)
	out := s.Run()
	var be *des.BudgetError
	require.ErrorAs(t, out.Err, &be)
	assert.Equal(t, uint64(10), be.Steps)
	assert.Equal(t, 1, be.Pending)
	assert.Contains(t, be.Error(), "spin without a kernel wait")
}

func TestStopFirstErrorWins(t *testing.T) {
	s := des.New(des.Config{})
	s.At(1, func() { s.Stop(fmt.Errorf("first")); s.Stop(fmt.Errorf("second")) })
	s.At(2, func() { t.Fatal("must not run after Stop") })
	out := s.Run()
	assert.EqualError(t, out.Err, "first")
	assert.True(t, s.Stopped())
}

// recordingWorkload emits a trace whose shape depends on decisions and on
// the workload stream, so hashes catch any divergence.
func recordingWorkload(s *des.Sim) {
	pt := des.Point{Kind: 100, Label: "test: pick"}
	for i := 0; i < 3; i++ {
		name := fmt.Sprintf("w%d", i)
		p := s.Spawn(name, func(p *des.Proc) {
			for j := 0; j < 5; j++ {
				c := s.Choose(pt, 3)
				p.Sleep(des.Duration(1 + c + s.Rand().IntN(4)))
				s.Emit(&des.Record{CPU: int16(i), IRQL: 0, Thread: p.ID(), Kind: 1, What: "tick", Actor: name, A: int64(c), B: int64(j)})
			}
		})
		s.ResumeAt(0, p)
	}
}

func runWorkload(cfg des.Config) des.Outcome {
	s := des.New(cfg)
	defer s.Close()
	recordingWorkload(s)
	return s.Run()
}

func TestSameSeedSameHash(t *testing.T) {
	a := runWorkload(des.Config{Seed: 7, Chooser: des.NewSeeded(42)})
	b := runWorkload(des.Config{Seed: 7, Chooser: des.NewSeeded(42)})
	require.NoError(t, a.Err)
	assert.Equal(t, a.Hash, b.Hash)
	assert.Equal(t, a.Decisions, b.Decisions)
	c := runWorkload(des.Config{Seed: 7, Chooser: des.NewSeeded(43)})
	assert.NotEqual(t, a.Hash, c.Hash, "a different chooser seed should change this trace")
}

// Property: a run replayed from its recorded log gives the same trace hash.
func TestReplayReproducesHash(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		seed := rapid.Uint64().Draw(rt, "seed")
		cseed := rapid.Uint64().Draw(rt, "chooser seed")
		orig := runWorkload(des.Config{Seed: seed, Chooser: des.NewSeeded(cseed)})
		r := des.NewReplay(orig.Decisions)
		again := runWorkload(des.Config{Seed: seed, Chooser: r})
		require.NoError(rt, again.Err)
		require.Equal(rt, orig.Hash, again.Hash)
		require.Equal(rt, 0, r.Unused())
	})
}

func TestReplayMismatchNamesBothSides(t *testing.T) {
	log := []des.Decision{{Kind: 100, N: 3, Choice: 1, Label: "test: pick"}, {Kind: 555, N: 2, Choice: 1, Label: "other: thing"}}
	out := runWorkload(des.Config{Seed: 1, Chooser: des.NewReplay(log)})
	var m *des.ReplayMismatch
	require.ErrorAs(t, out.Err, &m)
	assert.Equal(t, 1, m.Index)
	msg := m.Error()
	assert.Contains(t, msg, `"other: thing"`)
	assert.Contains(t, msg, `"test: pick"`)
	assert.Contains(t, msg, "kind 555")
	assert.Contains(t, msg, "kind 100")
}

type badChooser struct{}

func (badChooser) Choose(des.Point, int) int { return 7 }

func TestOutOfRangeChoiceStopsRun(t *testing.T) {
	out := runWorkload(des.Config{Chooser: badChooser{}})
	require.Error(t, out.Err)
	assert.Contains(t, out.Err.Error(), "must return a value in [0, n)")
}

func TestSeededBiasedKeepsNaturalChoice(t *testing.T) {
	always := des.NewSeededBiased(1, 1, 1)
	never := des.NewSeededBiased(1, 0, 1)
	for i := 0; i < 100; i++ {
		assert.Equal(t, 0, always.Choose(des.Point{}, 5))
		assert.NotEqual(t, 0, never.Choose(des.Point{}, 5))
	}
}

func TestTextSinkColumns(t *testing.T) {
	var buf bytes.Buffer
	sink := &des.TextSink{W: &buf}
	s := des.New(des.Config{Sink: sink})
	s.At(1500, func() {
		s.Emit(&des.Record{CPU: 1, IRQL: 2, Thread: 3, Kind: 9, What: "wait", Actor: "worker.0", Object: "event done", A: 4, B: -1})
		s.Emit(&des.Record{CPU: -1, IRQL: -1, Kind: 10, What: "note"})
	})
	s.Run()
	require.NoError(t, sink.Err)
	assert.Equal(t,
		"0.000001500s cpu1  i2  worker.0              wait            event done              4 -1\n"+
			"0.000001500s -     -   -                     note            -                       0 0\n",
		buf.String())
}

func TestOutcomeTailKeepsLastRecords(t *testing.T) {
	s := des.New(des.Config{TailLen: 3})
	s.At(1, func() {
		for i := 0; i < 5; i++ {
			s.Emit(&des.Record{Kind: 1, A: int64(i)})
		}
	})
	out := s.Run()
	assert.Empty(t, out.Tail, "a run that ended well carries no tail")
	tail := s.Tail()
	require.Len(t, tail, 3)
	assert.Equal(t, []int64{2, 3, 4}, []int64{tail[0].A, tail[1].A, tail[2].A})
	s.At(s.Now()+1, func() { s.Stop(fmt.Errorf("boom")) })
	out = s.Run()
	require.Len(t, out.Tail, 3, "a failed run carries the tail")
}

// Steady-state scheduling and firing allocates nothing.
func TestNoAllocationPerEvent(t *testing.T) {
	s := des.New(des.Config{})
	var h des.Handler
	n := 0
	h = func() {
		n++
		s.After(des.Duration(1+n%7), h)
	}
	for i := 0; i < 100; i++ {
		s.After(des.Duration(i), h)
	}
	for i := 0; i < 10000; i++ {
		s.Step()
	}
	allocs := testing.AllocsPerRun(1000, func() { s.Step() })
	assert.Zero(t, allocs)

	p := s.Spawn("sleeper", func(p *des.Proc) {
		for {
			p.Sleep(3)
		}
	})
	s.ResumeAt(s.Now(), p)
	for i := 0; i < 10000; i++ {
		s.Step()
	}
	allocs = testing.AllocsPerRun(1000, func() { s.Step() })
	assert.Zero(t, allocs, "resuming a coroutine must not allocate")
	s.Close()
}

// The zero-delay FIFO and the btree together keep the single (time, seq)
// order: handlers that schedule at Now, in the future and in the past and
// cancel pending events fire exactly in the order of a naive reference
// queue (a slice searched for its (time, seq) minimum).
func TestZeroDelayFIFOKeepsTimeSeqOrder(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		const maxEvents = 200
		delays := rapid.SliceOfN(rapid.SampledFrom([]int64{-2, 0, 0, 0, 1, 3}), maxEvents*2, maxEvents*2).Draw(rt, "delays")
		cancels := rapid.SliceOfN(rapid.IntRange(-1, maxEvents), maxEvents, maxEvents).Draw(rt, "cancels")
		ties := rapid.Bool().Draw(rt, "decide ties")

		// Reference: event ids are scheduling order, so (at, id) is (time, seq).
		type ev struct {
			at     int64
			id     int
			active bool
		}
		var ref []ev
		var want []int
		refNow := int64(0)
		refSched := func(at int64) {
			if at < refNow {
				at = refNow
			}
			ref = append(ref, ev{at, len(ref), true})
		}
		refSched(0)
		refSched(0)
		for len(want) < maxEvents {
			best := -1
			for i, e := range ref {
				if e.active && (best < 0 || e.at < ref[best].at) {
					best = i
				}
			}
			if best < 0 {
				break
			}
			e := &ref[best]
			e.active = false
			refNow = e.at
			k := len(want)
			want = append(want, e.id)
			refSched(refNow + delays[2*k])
			refSched(refNow + delays[2*k+1])
			if c := cancels[k]; c >= 0 && c < len(ref) {
				ref[c].active = false
			}
		}

		// Natural ties fire in seq order, so DecideTies must not change it.
		s := des.New(des.Config{DecideTies: ties})
		var got []int
		var timers []des.Timer
		var sched func(at des.Time)
		sched = func(at des.Time) {
			id := len(timers)
			timers = append(timers, s.At(at, func() {
				k := len(got)
				if k >= maxEvents {
					return
				}
				got = append(got, id)
				sched(s.Now().Add(des.Duration(delays[2*k])))
				sched(s.Now().Add(des.Duration(delays[2*k+1])))
				if c := cancels[k]; c >= 0 && c < len(timers) {
					timers[c].Stop()
				}
			}))
		}
		sched(0)
		sched(0)
		for len(got) < maxEvents && s.Step() {
		}
		require.Equal(rt, want, got)
	})
}

// TestSpareSurvivesReset: what a layer keeps under its key survives Reset
// (that is how the kernel recycles objects between runs), each key has its
// own slot, RunNumber counts the runs, and Close drops the slots.
func TestSpareSurvivesReset(t *testing.T) {
	a, b := des.NewSpareKey("a"), des.NewSpareKey("b")
	s := des.New(des.Config{})
	assert.Equal(t, uint64(1), s.RunNumber())
	assert.Nil(t, s.Spare(a))
	s.SetSpare(a, 1)
	s.SetSpare(b, "two")
	s.SetSpare(a, 3)
	s.Reset(des.Config{Seed: 9})
	assert.Equal(t, uint64(2), s.RunNumber())
	assert.Equal(t, 3, s.Spare(a))
	assert.Equal(t, "two", s.Spare(b))
	s.Close()
	assert.Nil(t, s.Spare(a))
}

// TestQueuedBeforeZeroDelay: events queued for an instant before the clock
// reaches it fire before the zero-delay events their handlers schedule at
// that instant (they have smaller seq), with and without DecideTies; the
// zero-delay FIFO must take them over from the btree when the clock
// advances.
func TestQueuedBeforeZeroDelay(t *testing.T) {
	for _, ties := range []bool{false, true} {
		s := des.New(des.Config{DecideTies: ties})
		var got []string
		s.At(3, func() { got = append(got, "a"); s.After(0, func() { got = append(got, "c") }) })
		s.At(3, func() { got = append(got, "b") })
		s.At(5, func() { got = append(got, "d") })
		for s.Step() {
		}
		assert.Equal(t, []string{"a", "b", "c", "d"}, got, "DecideTies=%v", ties)
	}
}

// ContinueNow lets a handler continue at once only inside Run, only when
// no other event is due at this instant, and counts the continuation as
// the event it replaces (Steps), checking the step budget first.
func TestContinueNow(t *testing.T) {
	s := des.New(des.Config{})
	defer s.Close()
	var got []bool
	s.After(1, func() { got = append(got, s.ContinueNow()) })
	s.Step() // stepped, not inside Run
	s.After(1, func() {
		s.After(0, func() {})
		got = append(got, s.ContinueNow()) // another event is due now
	})
	s.After(2, func() { got = append(got, s.ContinueNow()) })
	s.Run()
	assert.Equal(t, []bool{false, false, true}, got)
	assert.Equal(t, uint64(5), s.Steps(), "four events and one continuation")

	b := des.New(des.Config{StepBudget: 2})
	defer b.Close()
	var cont bool
	b.After(1, func() {})
	b.After(2, func() { cont = b.ContinueNow() }) // the budget is reached by this event
	out := b.Run()
	assert.False(t, cont, "no continuation past the step budget")
	var be *des.BudgetError
	assert.ErrorAs(t, out.Err, &be)
}
