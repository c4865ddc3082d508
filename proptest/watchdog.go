package proptest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/model"
)

// The watchdog. Simulated code runs on the goroutine that drives the event
// loop; a simulated thread that loops in pure Go without calling the kernel
// (`for {}`) never gives control back, and no budget counted by the
// simulation can see it. Such an execution is detected from outside, by
// wall-clock time, and reported as a *StuckError. Its goroutine cannot be
// unwound: it is abandoned (still spinning) and the caller is expected to
// report and exit, as the command line does; a test binary carries on with
// one busy goroutine.

// DefaultWatchdog is the shortest time an execution may run without
// yielding before the watchdog reports it: generous, because a shared
// machine can stall a healthy run for seconds.
const DefaultWatchdog = 30 * time.Second

// watchdogMedianFactor: an exploration allows an execution this many times
// the median execution time seen so far (never less than DefaultWatchdog).
const watchdogMedianFactor = 1000

// StuckError reports an execution that did not come back to the event loop
// within the watchdog limit.
type StuckError struct {
	Exec      int           // execution index in the exploration; -1 for a single run
	Seed      uint64        // its seed
	After     time.Duration // how long it ran without yielding
	Actor     string        // actor of the last trace record before it stuck
	Tail      []des.Record  // the last trace records before it stuck
	Decisions []des.Decision
	// Reproduced is false when a re-run to collect the records above did
	// not get stuck (the machine may have been too busy): the records are
	// then those of the re-run's end.
	Reproduced bool
}

func (e *StuckError) Error() string {
	who := "a simulated thread"
	if e.Actor != "" {
		who = "a simulated thread (last in the trace: " + e.Actor + ")"
	}
	what := fmt.Sprintf("execution %d (seed %d)", e.Exec, e.Seed)
	if e.Exec < 0 {
		what = fmt.Sprintf("the run (seed %d)", e.Seed)
	}
	msg := fmt.Sprintf("%s did not yield for %v: %s may loop without calling the kernel", what, e.After.Round(time.Millisecond), who)
	if !e.Reproduced {
		msg += " (a re-run did not get stuck: the machine may be overloaded; raise --watchdog)"
	}
	return msg
}

// tailKeep is how many trace records a watched run keeps for the report.
const tailKeep = 16

// watched wraps a run's sink and chooser so that another goroutine can read
// how far the run got while it is stuck: every access holds mu. After
// close, the abandoned run's records are dropped.
type watched struct {
	mu        sync.Mutex
	sink      des.Sink
	chooser   des.Chooser
	failer    des.Failer
	ring      []des.Record
	decisions []des.Decision
	progress  uint64
	closed    bool
}

func newWatched(sink des.Sink, chooser des.Chooser) *watched {
	if chooser == nil {
		chooser = des.Natural{}
	}
	w := &watched{sink: sink, chooser: chooser}
	w.failer, _ = chooser.(des.Failer)
	return w
}

// Write implements des.Sink.
func (w *watched) Write(r *des.Record) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	w.progress++
	if len(w.ring) == tailKeep {
		copy(w.ring, w.ring[1:])
		w.ring = w.ring[:tailKeep-1]
	}
	w.ring = append(w.ring, *r)
	if w.sink != nil {
		w.sink.Write(r)
	}
}

// Choose implements des.Chooser.
func (w *watched) Choose(p des.Point, n int) int {
	c := w.chooser.Choose(p, n)
	w.mu.Lock()
	w.progress++
	w.decisions = append(w.decisions, des.Decision{Kind: p.Kind, N: int32(n), Choice: int32(c), Label: p.Label, Actor: p.Actor})
	w.mu.Unlock()
	return c
}

// Err implements des.Failer.
// WantsAccess passes the wrapped chooser's request for access reports on.
func (w *watched) WantsAccess() bool { return des.WantsAccess(w.chooser) }

func (w *watched) Err() error {
	if w.failer != nil {
		return w.failer.Err()
	}
	return nil
}

func (w *watched) snapshot() (uint64, []des.Record, []des.Decision) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.progress, slices.Clone(w.ring), slices.Clone(w.decisions)
}

// close stops the sink from passing records on and returns what it saw.
func (w *watched) close() ([]des.Record, []des.Decision) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	return slices.Clone(w.ring), slices.Clone(w.decisions)
}

// RunWatched runs one execution like model.Run, on its own goroutine, and
// comes back when it ends, when it has made no progress (no trace record,
// no decision) for limit (0: DefaultWatchdog), or one second after ctx is
// done. A run that did not come back has a *StuckError as its outcome, with
// the decisions and last records it made; its goroutine is abandoned.
func RunWatched(ctx context.Context, limit time.Duration, s *model.Scenario, variant string, rc model.RunConfig) (model.Result, error) {
	if limit <= 0 {
		limit = DefaultWatchdog
	}
	w := newWatched(rc.Sink, rc.Chooser)
	rc.Sink, rc.Chooser = w, w
	type ended struct {
		r   model.Result
		err error
	}
	done := make(chan ended, 1)
	go func() {
		r, err := model.Run(s, variant, rc)
		done <- ended{r, err}
	}()
	e, stuckFor, ok := waitProgress(ctx, w, done, limit)
	if ok {
		return e.r, e.err
	}
	tail, log := w.close()
	st := &StuckError{Exec: -1, Seed: rc.Seed, After: stuckFor, Tail: tail, Decisions: log, Reproduced: true}
	st.Actor = lastActor(tail)
	return stuckResult(s.Name, variant, st), nil
}

// waitProgress waits for the value on done, or until w has not progressed
// for limit, or a second after ctx is done; then it returns false with the
// time without progress.
func waitProgress[T any](ctx context.Context, w *watched, done <-chan T, limit time.Duration) (T, time.Duration, bool) {
	tick := time.NewTicker(watchTick(limit))
	defer tick.Stop()
	last, since := uint64(0), time.Now()
	var cancelled time.Time
	for {
		select {
		case v := <-done:
			return v, 0, true
		case now := <-tick.C:
			if p, _, _ := w.snapshot(); p != last {
				last, since = p, now
			}
			if ctx.Err() != nil && cancelled.IsZero() {
				cancelled = now
			}
			if now.Sub(since) >= limit || (!cancelled.IsZero() && now.Sub(cancelled) >= time.Second) {
				select {
				case v := <-done: // it ended meanwhile
					return v, 0, true
				default:
				}
				var zero T
				return zero, now.Sub(since), false
			}
		}
	}
}

func watchTick(limit time.Duration) time.Duration {
	return min(max(limit/20, 10*time.Millisecond), 250*time.Millisecond)
}

func lastActor(tail []des.Record) string {
	for i := len(tail) - 1; i >= 0; i-- {
		if tail[i].Actor != "" {
			return tail[i].Actor
		}
	}
	return ""
}

// stuckResult is the result of a run the watchdog gave up on.
func stuckResult(scenario, variant string, st *StuckError) model.Result {
	return model.Result{Scenario: scenario, Variant: variant, Seed: st.Seed,
		Outcome: des.Outcome{Err: st, Decisions: st.Decisions, Tail: st.Tail}}
}

// Class implements des.Finding.
func (e *StuckError) Class() des.Class { return des.ClassStuck }

// Signature implements des.Finding.
func (e *StuckError) Signature() string { return "stuck" }
