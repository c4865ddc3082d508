package des

import (
	"sync"
	"sync/atomic"
)

// watchMask sets how often a watched Sim publishes: every watchMask+1 units
// of work (events fired plus Work calls). Publishing copies the tail ring,
// so a power of two this large keeps it under a nanosecond per event.
const watchMask = 1<<10 - 1

// Watch lets another goroutine follow a run it cannot touch: a Sim is
// single-threaded, and simulated code that loops without calling the
// kernel (a bare Go `for {}`) never returns to the event loop, so only a
// wall-clock watchdog on another goroutine can notice it. The Sim publishes
// a snapshot every 1024 units of work; Beat tells the watchdog whether the
// run still moves, Last what it was doing when it stopped moving. Both are
// safe to call from any goroutine while the run goes on.
type Watch struct {
	beat atomic.Uint64
	mu   sync.Mutex
	last Snapshot
}

// Snapshot is a run's state at its latest beat.
type Snapshot struct {
	Beat   uint64   // how many beats the run has published; 0 before the first
	Work   uint64   // events fired plus Work calls at the beat
	At     Time     // virtual time at the beat
	Actor  string   // the coroutine running at the beat; "" in the event loop
	Tail   []Record // the last trace records at the beat, oldest first
	Seed   uint64   // the run's Config.Seed
	Events uint64   // events fired at the beat
}

// Watch turns on publishing for the current and later runs of s and
// returns the Watch to hand to a watchdog goroutine. Call it from the
// goroutine that owns s, before the run. Its cost is a copy of the tail
// ring every 1024 units of work (Config.TailLen records) and a publish at
// each Reset, so a new run starts with a fresh snapshot.
func (s *Sim) Watch() *Watch {
	if s.watch == nil {
		s.watch = &Watch{}
		s.watch.publish(s)
	}
	return s.watch
}

// Beat returns the number of snapshots published so far; a watchdog that
// sees it unchanged for long knows the run is stuck in simulated code.
func (w *Watch) Beat() uint64 { return w.beat.Load() }

// Last returns a copy of the latest snapshot. What the run did after it
// (under 1024 units of work) is not in it.
func (w *Watch) Last() Snapshot {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.last
	s.Tail = append([]Record(nil), s.Tail...)
	return s
}

// publish copies s's state into the snapshot; it runs on s's goroutine
// and reuses the snapshot's tail buffer, so it allocates nothing once
// warm.
func (w *Watch) publish(s *Sim) {
	w.mu.Lock()
	w.last.Beat = w.beat.Load() + 1
	w.last.Work = s.steps + s.calls
	w.last.At = s.now
	w.last.Events = s.steps
	w.last.Seed = s.cfg.Seed
	w.last.Actor = ""
	if p := s.procs.current; p != nil {
		w.last.Actor = p.name
	}
	w.last.Tail = s.tail.appendTo(w.last.Tail[:0])
	w.mu.Unlock()
	w.beat.Add(1)
}
