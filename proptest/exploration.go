package proptest

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/model"
)

// exploration is one Explore call: its workers run on their own
// goroutines while the calling goroutine watches them.
type exploration struct {
	o     Options
	ctx   context.Context
	start time.Time

	slots []execSlot // one per worker
	next  atomic.Int64
	stop  atomic.Int64 // executions at or past this index are not started
	quit  atomic.Bool  // the watchdog fired: workers leave at once
	done  atomic.Int64 // executions finished
	halt  atomic.Int32 // why a worker stopped early: an End, 0 if none did

	mu    sync.Mutex
	fails []Failure
	marks map[string]int

	nsamples atomic.Int64
	samples  [64]atomic.Int64 // durations of the first executions, for the median
}

// execSlot is what the watchdog sees of a worker: when its current
// execution started (UnixNano; 0 between executions) and which it is.
type execSlot struct {
	start atomic.Int64
	exec  atomic.Int64
	cov   *coverage // what this worker's executions reached

	choosers choosers // the worker's own, reused (not seen by the watchdog)
}

func (x *exploration) run() *Report {
	x.stop.Store(int64(x.o.Execs))
	_, seq := x.o.Strategy.(Sequential)
	workers := x.o.Parallel
	if seq {
		workers = 1
	}
	x.slots = make([]execSlot, workers)
	for w := range x.slots {
		x.slots[w].cov = newCoverage()
	}
	finished := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if seq {
				x.serial(&x.slots[w])
			} else {
				x.worker(&x.slots[w])
			}
		}()
	}
	go func() { wg.Wait(); close(finished) }()
	if x.o.Progress != nil {
		go x.progressLoop(finished)
	}
	if stuck := x.watch(finished); stuck != nil {
		return x.report(stuck)
	}
	return x.report(nil)
}

// startExec runs execution i on sim, visible to the watchdog through slot.
func (x *exploration) startExec(slot *execSlot, sim *des.Sim, i int) (model.Result, error) {
	slot.exec.Store(int64(i))
	t0 := time.Now()
	slot.start.Store(t0.UnixNano())
	r, err := runExec(&x.o, sim, i, &slot.choosers)
	slot.start.Store(0)
	if n := x.nsamples.Add(1) - 1; n < int64(len(x.samples)) {
		x.samples[n].Store(int64(time.Since(t0)))
	}
	return r, err
}

// expired says whether the exploration must stop now, and why.
func (x *exploration) expired() End {
	switch {
	case x.ctx.Err() != nil:
		return EndInterrupted
	case x.o.Duration > 0 && time.Since(x.start) > x.o.Duration:
		return EndTime
	}
	return EndComplete
}

// cover counts the marks an execution reached.
func (x *exploration) cover(marks []string) {
	if len(marks) == 0 {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.marks == nil {
		x.marks = map[string]int{}
	}
	for _, m := range marks {
		x.marks[m]++
	}
}

// record keeps a failure unless the watchdog already gave up on the run.
func (x *exploration) record(i int, r model.Result) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.quit.Load() {
		x.fails = append(x.fails, newFailure(&x.o, i, r))
	}
}

func (x *exploration) worker(slot *execSlot) {
	var sim *des.Sim // built on the first execution this worker takes
	defer func() {
		if sim != nil {
			sim.Close()
		}
	}()
	for !x.quit.Load() {
		i := int(x.next.Add(1) - 1)
		if i >= int(x.stop.Load()) {
			return
		}
		if why := x.expired(); why != EndComplete {
			x.halt.Store(int32(why))
			return
		}
		if !x.o.mine(i) {
			continue
		}
		if sim == nil {
			sim = des.New(des.Config{})
		}
		r, err := x.startExec(slot, sim, i)
		if err != nil {
			x.halt.Store(int32(EndError))
			return
		}
		x.done.Add(1)
		slot.cov.add(i, r)
		x.cover(r.Marks)
		if r.Failed() {
			x.record(i, r)
			if !x.o.KeepGoing {
				lowerTo(&x.stop, int64(i))
			}
		}
	}
}

// serial runs a Sequential strategy: each execution depends on the ones
// before it.
func (x *exploration) serial(slot *execSlot) {
	sim := des.New(des.Config{})
	defer sim.Close()
	seq := x.o.Strategy.(Sequential)
	for i := 0; i < x.o.Execs && !x.quit.Load(); i++ {
		if why := x.expired(); why != EndComplete {
			x.halt.Store(int32(why))
			return
		}
		if !x.o.mine(i) {
			continue
		}
		r, err := x.startExec(slot, sim, i)
		if err != nil {
			x.halt.Store(int32(EndError))
			return
		}
		x.done.Add(1)
		slot.cov.add(i, r)
		x.cover(r.Marks)
		if r.Failed() {
			x.record(i, r)
			if !x.o.KeepGoing {
				return
			}
		}
		if !seq.Observe(r.Outcome.Decisions) {
			x.halt.Store(int32(EndExhausted))
			return
		}
	}
}

// watch waits for the workers to finish and returns nil, or returns the
// stuck execution the watchdog gave up on (workers are told to quit).
func (x *exploration) watch(finished <-chan struct{}) *StuckError {
	tick := time.NewTicker(watchTick(cmp.Or(x.o.Watchdog, DefaultWatchdog)))
	defer tick.Stop()
	var cancelled time.Time
	for {
		select {
		case <-finished:
			return nil
		case now := <-tick.C:
			if x.ctx.Err() != nil && cancelled.IsZero() {
				cancelled = now
			}
			if st := x.overdue(now, cancelled); st != nil {
				x.mu.Lock()
				x.quit.Store(true)
				x.mu.Unlock()
				return x.diagnose(st)
			}
		}
	}
}

// overdue returns the lowest-index execution running past its limit.
func (x *exploration) overdue(now, cancelled time.Time) *StuckError {
	limit := x.limit()
	var worst *StuckError
	for k := range x.slots {
		started := x.slots[k].start.Load()
		if started == 0 {
			continue
		}
		ran := now.Sub(time.Unix(0, started))
		late := ran >= limit ||
			(!cancelled.IsZero() && now.Sub(cancelled) >= time.Second) ||
			(x.o.Duration > 0 && now.Sub(x.start) >= x.o.Duration+time.Second)
		i := int(x.slots[k].exec.Load())
		if late && (worst == nil || i < worst.Exec) {
			worst = &StuckError{Exec: i, Seed: ExecSeed(x.o.Seed, i), After: ran}
		}
	}
	return worst
}

// limit is the watchdog limit for one execution.
func (x *exploration) limit() time.Duration {
	if x.o.Watchdog > 0 {
		return x.o.Watchdog
	}
	n := min(int(x.nsamples.Load()), len(x.samples))
	if n < 8 {
		return DefaultWatchdog
	}
	d := make([]time.Duration, n)
	for i := range d {
		d[i] = time.Duration(x.samples[i].Load())
	}
	slices.Sort(d)
	return max(DefaultWatchdog, watchdogMedianFactor*d[n/2])
}

// diagnose re-runs the stuck execution on a goroutine of its own, watched,
// until it stops progressing, to learn its decisions and last records.
func (x *exploration) diagnose(st *StuckError) *StuckError {
	w := newWatched(nil, x.o.chooser(st.Exec))
	done := make(chan struct{}, 1)
	go func() {
		model.Run(x.o.Scenario, x.o.Variant, model.RunConfig{Seed: st.Seed, Chooser: w, Sink: w})
		done <- struct{}{}
	}()
	quiet := min(max(x.limit()/4, 200*time.Millisecond), 2*time.Second)
	_, _, ended := waitProgress(context.Background(), w, done, quiet)
	st.Reproduced = !ended
	st.Tail, st.Decisions = w.close()
	st.Actor = lastActor(st.Tail)
	return st
}

// report collects the workers' findings; with stuck, the workers that
// still run are abandoned and stuck counts as a failure at its index.
func (x *exploration) report(stuck *StuckError) *Report {
	x.mu.Lock()
	fails := slices.Clone(x.fails)
	marks := maps.Clone(x.marks)
	x.mu.Unlock()
	if stuck != nil {
		fails = append(fails, Failure{Exec: stuck.Exec, Seed: stuck.Seed,
			Result: stuckResult(x.o.Scenario.Name, x.o.Variant, stuck)})
	}
	sort.Slice(fails, func(a, b int) bool { return fails[a].Exec < fails[b].Exec })
	if !x.o.KeepGoing && len(fails) > 1 {
		fails = fails[:1]
	}
	rep := &Report{Execs: int(x.done.Load()), Failures: fails, Marks: marks, End: End(x.halt.Load())}
	switch {
	case stuck != nil:
		rep.End = EndStuck
	case len(fails) > 0 && !x.o.KeepGoing:
		rep.End = EndFailure
	}
	rep.Stopped = rep.End != EndComplete && rep.End != EndExhausted && rep.End != EndFailure
	upTo := x.o.Execs
	if !x.o.KeepGoing && len(fails) == 1 && stuck == nil {
		// Executions past the first failure may have run in parallel; a
		// serial run would not have: count only those up to it.
		upTo = fails[0].Exec + 1
		rep.Execs = countMine(&x.o, upTo)
	}
	if stuck == nil { // abandoned workers may still write their coverage
		covs := make([]*coverage, len(x.slots))
		for w := range x.slots {
			covs[w] = x.slots[w].cov
		}
		fillCoverage(rep, upTo, covs...)
	}
	return rep
}

func (x *exploration) progressLoop(finished <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-finished:
			return
		case <-x.ctx.Done():
			return
		case <-t.C:
			if x.quit.Load() {
				return
			}
			x.mu.Lock()
			n := len(x.fails)
			x.mu.Unlock()
			x.o.Progress(Progress{Execs: int(x.done.Load()), Failures: n, Elapsed: time.Since(x.start)})
		}
	}
}
