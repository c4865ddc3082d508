package des_test

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
)

// Work charged by simulated code that never yields counts toward the step
// budget: the run stops, and Work tells the caller to stop too.
func TestWorkChargesStepBudget(t *testing.T) {
	s := des.New(des.Config{StepBudget: 100})
	defer s.Close()
	calls := 0
	p := s.Spawn("looper", func(p *des.Proc) {
		for s.Work() { // a loop over routines that never yield
			calls++
		}
		for {
			p.Yield() // parked: nothing resumes it
		}
	})
	s.ResumeAt(0, p)
	out := s.Run()
	var be *des.BudgetError
	require.ErrorAs(t, out.Err, &be)
	assert.Equal(t, des.BudgetSteps, be.Budget)
	assert.Equal(t, uint64(1), be.Steps, "one event: the resume")
	assert.Equal(t, uint64(99), be.Calls)
	assert.Equal(t, 98, calls, "the call that exhausted the budget returned false")
	assert.Equal(t, uint64(99), out.Calls)
	assert.Contains(t, be.Error(), "step budget exceeded")
	assert.False(t, s.Work(), "Work after the stop still says stop")
}

// The decision budget stops a run that decides without end; once stopped,
// Choose returns 0 and logs nothing more.
func TestDecisionBudget(t *testing.T) {
	s := des.New(des.Config{DecisionBudget: 50, Chooser: des.NewSeeded(1)})
	defer s.Close()
	pt := des.Point{Kind: 100, Label: "test: pick"}
	s.At(0, func() {
		for i := 0; i < 1000; i++ {
			s.Choose(pt, 3)
		}
	})
	out := s.Run()
	var be *des.BudgetError
	require.ErrorAs(t, out.Err, &be)
	assert.Equal(t, des.BudgetDecisions, be.Budget)
	assert.Equal(t, 50, be.Decisions)
	assert.Len(t, out.Decisions, 50)
	assert.Contains(t, be.Error(), "decision budget exceeded")
	assert.Contains(t, be.Error(), "Budget.Decisions", "the message names the scenario field to raise")
	assert.Contains(t, be.Error(), "--decision-budget", "and the command-line flag")
}

// Without a decision log (experiments, benchmarks) a run keeps no
// decisions, makes the same choices, and the decision budget still counts
// every one of them.
func TestNoDecisionLog(t *testing.T) {
	pt := des.Point{Kind: 100, Label: "test: pick"}
	run := func(noLog bool, budget uint64) (des.Outcome, []int) {
		s := des.New(des.Config{DecisionBudget: budget, Chooser: des.NewSeeded(1), NoDecisionLog: noLog})
		defer s.Close()
		var picks []int
		s.At(0, func() {
			for i := 0; i < 200; i++ {
				picks = append(picks, s.Choose(pt, 3))
			}
		})
		out := s.Run()
		out.Decisions = append([]des.Decision(nil), out.Decisions...)
		return out, picks
	}
	logged, want := run(false, 0)
	quiet, got := run(true, 0)
	require.NoError(t, quiet.Err)
	assert.Equal(t, want, got, "the same choices")
	assert.Len(t, logged.Decisions, 200)
	assert.Empty(t, quiet.Decisions, "nothing is logged")

	stopped, _ := run(true, 50)
	var be *des.BudgetError
	require.ErrorAs(t, stopped.Err, &be)
	assert.Equal(t, 50, be.Decisions, "the budget counts decisions that were not logged")
}

// Charging work allocates nothing, and neither does a watched run once its
// snapshot buffer is warm.
func TestWorkAndWatchAllocateNothing(t *testing.T) {
	s := des.New(des.Config{})
	defer s.Close()
	s.Watch()
	var h des.Handler
	rec := &des.Record{Kind: 1, What: "tick"} // reused, as the kernel does
	h = func() {
		s.Emit(rec)
		s.After(1, h)
	}
	s.After(1, h)
	for i := 0; i < 5000; i++ {
		s.Step()
	}
	assert.Zero(t, testing.AllocsPerRun(5000, func() { s.Step(); s.Work() }))
}

// A watchdog goroutine reads a running simulation's progress and its last
// records without racing with it (run with -race), and a run that stops
// moving keeps showing the actor and records of its last beat.
func TestWatchFromAnotherGoroutine(t *testing.T) {
	s := des.New(des.Config{Seed: 7, TailLen: 8})
	defer s.Close()
	w := s.Watch()
	assert.Equal(t, uint64(1), w.Beat(), "Watch publishes at once")
	p := s.Spawn("busy", func(p *des.Proc) {
		for i := 0; ; i++ {
			s.Emit(&des.Record{Kind: 1, What: "work", A: int64(i)})
			s.Work()
			if i%100 == 0 {
				p.Sleep(1)
			}
		}
	})
	s.ResumeAt(0, p)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() { // the watchdog
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			snap := w.Last()
			if snap.Beat > 1 && len(snap.Tail) > 0 {
				assert.Equal(t, des.What("work"), snap.Tail[len(snap.Tail)-1].What)
			}
		}
	}()
	for i := 0; i < 100 && s.Step(); i++ {
	}
	close(stop)
	wg.Wait()
	snap := w.Last()
	assert.Greater(t, snap.Beat, uint64(5))
	assert.Equal(t, snap.Beat, w.Beat())
	assert.Equal(t, "busy", snap.Actor, "beats happen while the proc runs")
	assert.Equal(t, uint64(7), snap.Seed)
	assert.Len(t, snap.Tail, 8)
	assert.Zero(t, snap.Work%1024, "a beat every 1024 units of work")
	s.Reset(des.Config{Seed: 8})
	assert.Equal(t, uint64(8), w.Last().Seed, "Reset publishes the new run")
	assert.Empty(t, w.Last().Tail)
}
