package des

import (
	"fmt"
	"math/rand/v2"

	"github.com/google/btree"
)

// Config sets up a Sim. The zero value is usable: seed 0, natural choices,
// no sink, no step budget, ties fired in insertion order.
type Config struct {
	// Seed seeds the workload random stream returned by Sim.Rand. Decisions
	// do not use it; they go through Chooser.
	Seed uint64
	// Chooser makes every decision; nil means Natural (always choice 0).
	Chooser Chooser
	// Sink receives trace records; nil drops them (the hash is still kept).
	Sink Sink
	// StepBudget stops the run with a *BudgetError once the events fired
	// plus the work charged with Work (kernel routines that fired no event)
	// reach it; 0 means no limit.
	StepBudget uint64
	// DecisionBudget stops the run with a *BudgetError once the decision
	// log holds this many decisions; 0 means no limit. It bounds the memory
	// of a run that decides without end (a thread looping over a
	// scheduling point): each logged decision costs about 40 bytes.
	DecisionBudget uint64
	// NoDecisionLog keeps no decision log, for runs nothing will replay
	// (experiments, benchmarks): memory then does not grow with the number
	// of decisions. Outcome.Decisions is empty; DecisionBudget still counts
	// every decision.
	NoDecisionLog bool
	// DecideTies makes the order of events scheduled for the same instant a
	// decision (PointTie) instead of insertion order.
	DecideTies bool
	// TailLen is how many trace records an Outcome keeps; 0 means 64.
	TailLen int
	// WantAccess asks the layers above to fill Point.Touch and
	// Point.Touches (see AccessWanter); off, they skip that work.
	WantAccess bool
	// HashV3 computes the trace hash the way fail files of format version
	// 3 recorded it (before 2026-12-05), so that such a file still replays
	// with its hash checked. It is slower; nothing else should set it.
	HashV3 bool
}

// Handler is an event callback. Callers that schedule the same callback
// repeatedly should create the func once and reuse it, so that scheduling
// allocates nothing.
type Handler func()

// entry is what the btree holds: small, so that node copies stay cheap.
type entry struct {
	at   Time
	seq  uint64
	slot int32
}

func entryLess(a, b entry) bool {
	return a.at < b.at || (a.at == b.at && a.seq < b.seq)
}

// slot holds an event's payload. seq identifies the live event using the
// slot; a queued entry whose seq differs is stale (cancelled) and is dropped
// in O(1) when it reaches the front.
type slot struct {
	seq  uint64
	fn   Handler
	proc *Proc
}

// Sim is one simulation: a clock, an event queue, a decision log, a trace
// and the coroutines of the simulated code. It is not safe for concurrent
// use; run independent Sims in parallel instead.
type Sim struct {
	now   Time
	seq   uint64
	queue *btree.BTreeG[entry]
	// due holds every queued entry that is due at now, in seq order, from
	// due[head] on; the btree holds only later ones. Most events of a
	// kernel run are due at once (a thread readied, a zero-cost call), and
	// a FIFO costs O(1) where the btree costs O(log n). Order is the same
	// as one queue's: entries already queued for an instant when the clock
	// reaches it move here first (advance), and pushed ones come later in
	// seq.
	due     []entry
	head    int
	slots   []slot
	free    []int32
	live    int
	steps   uint64
	calls   uint64 // work charged by Work
	cfg     Config
	chooser Chooser
	failer  Failer
	log     []Decision
	decided uint64 // decisions made, logged or not
	rng     *rand.Rand
	pcg     *rand.PCG
	hash    uint64
	digests digestCache // string digests for the version 4 trace hash
	tail    tailRing
	scratch Record // NextRecord's slot when no tail is kept
	stopErr error
	stopped bool
	ties    []entry
	procs   procTable
	watch   *Watch  // nil unless Watch was called
	inRun   bool    // inside Run: handlers may continue at once (ContinueNow)
	run     uint64  // which run is current: counts Resets, New's included
	spare   []spare // the layers' recycled objects (see Spare)
}

// spare is one layer's slot in Sim.Spare.
type spare struct {
	key *SpareKey
	val any
}

// SpareKey names one layer's slot in Sim.Spare; declare one per layer as a
// package variable.
type SpareKey struct{ layer string }

// NewSpareKey returns a new key; layer names it for debugging only.
func NewSpareKey(layer string) *SpareKey { return &SpareKey{layer} }

// New returns a Sim configured by cfg.
func New(cfg Config) *Sim {
	s := &Sim{queue: btree.NewG(16, entryLess)}
	s.pcg = rand.NewPCG(0, 0)
	s.rng = rand.New(s.pcg)
	s.Reset(cfg)
	return s
}

// Reset returns s to time zero with a new configuration, keeping its
// allocations (event slots, btree nodes, finished coroutines) for reuse.
// Coroutines still suspended are unwound first. Exploration resets one Sim
// per worker instead of allocating a new one per execution.
func (s *Sim) Reset(cfg Config) {
	s.procs.killAll(s)
	s.queue.Clear(true)
	s.due, s.head = s.due[:0], 0
	for i := range s.slots {
		s.slots[i] = slot{}
	}
	s.free = s.free[:0]
	for i := len(s.slots) - 1; i >= 0; i-- {
		s.free = append(s.free, int32(i))
	}
	s.now, s.seq, s.live, s.steps, s.calls = 0, 0, 0, 0, 0
	s.inRun = false
	s.cfg = cfg
	s.chooser = cfg.Chooser
	if s.chooser == nil {
		s.chooser = Natural{}
	}
	s.failer, _ = s.chooser.(Failer)
	s.log = s.log[:0]
	s.decided = 0
	s.pcg.Seed(cfg.Seed, cfg.Seed^0xda942042e4dd58b5)
	s.hash = hashSeed
	n := cfg.TailLen
	if n <= 0 {
		n = 64
	}
	if cap(s.tail.recs) < n {
		s.tail.recs = make([]Record, n)
	}
	s.tail.recs = s.tail.recs[:n]
	s.tail.reset()
	s.stopErr, s.stopped = nil, false
	s.run++
	if s.watch != nil {
		s.watch.publish(s)
	}
}

// RunNumber says which run of s is current: 1 after New, one more after
// every Reset. A layer that recycles its objects through Spare reuses an
// object only in a later run than the one that last used it, when that
// run's coroutines have been unwound.
func (s *Sim) RunNumber() uint64 { return s.run }

// Spare returns what SetSpare kept under key, nil if nothing. The slots
// survive Reset, for the layers above: the kernel keeps the threads, events
// and IRPs of one run there and hands them, reset, to the next run on the
// same Sim, so an exploration worker stops allocating them per execution.
// des never reads the slots; Close drops them.
func (s *Sim) Spare(key *SpareKey) any {
	for _, sp := range s.spare {
		if sp.key == key {
			return sp.val
		}
	}
	return nil
}

// SetSpare keeps v under key (see Spare).
func (s *Sim) SetSpare(key *SpareKey, v any) {
	for i := range s.spare {
		if s.spare[i].key == key {
			s.spare[i].val = v
			return
		}
	}
	s.spare = append(s.spare, spare{key: key, val: v})
}

// WantAccess reports whether decision points should say what their
// alternatives touch (Config.WantAccess).
func (s *Sim) WantAccess() bool { return s.cfg.WantAccess }

// Now returns the current virtual time.
func (s *Sim) Now() Time { return s.now }

// Rand returns the run's workload random stream, seeded by Config.Seed. Use
// it for arrival times and service demands, never for schedule decisions
// (those go through Choose so they are logged and can be shrunk).
func (s *Sim) Rand() *rand.Rand { return s.rng }

// Seed returns the seed of the current run.
func (s *Sim) Seed() uint64 { return s.cfg.Seed }

// Timer is a handle to a scheduled event. The zero Timer is inactive.
type Timer struct {
	sim  *Sim
	slot int32
	seq  uint64
}

// Stop cancels the event if it has not fired yet and reports whether it did
// so. Cost O(1): the queued entry becomes stale and is dropped when reached.
func (t Timer) Stop() bool {
	if !t.Active() {
		return false
	}
	t.sim.release(t.slot)
	return true
}

// Active reports whether the event is still scheduled.
func (t Timer) Active() bool {
	return t.sim != nil && t.sim.slots[t.slot].seq == t.seq
}

// At schedules fn at time t (clamped to Now if in the past) and returns a
// handle that can cancel it. Cost O(log n); no allocation once the Sim has
// warmed up, provided fn itself is not a fresh closure.
func (s *Sim) At(t Time, fn Handler) Timer {
	return s.schedule(t, fn, nil)
}

// After schedules fn d after Now.
func (s *Sim) After(d Duration, fn Handler) Timer {
	return s.schedule(s.now.Add(d), fn, nil)
}

func (s *Sim) schedule(t Time, fn Handler, p *Proc) Timer {
	i := s.push(t, fn, p)
	return Timer{sim: s, slot: i, seq: s.seq}
}

// push queues an event and returns its slot; the event's seq is s.seq.
func (s *Sim) push(t Time, fn Handler, p *Proc) int32 {
	if t < s.now {
		t = s.now
	}
	s.seq++
	var i int32
	if n := len(s.free); n > 0 {
		i = s.free[n-1]
		s.free = s.free[:n-1]
	} else {
		s.slots = append(s.slots, slot{})
		i = int32(len(s.slots) - 1)
	}
	s.slots[i] = slot{seq: s.seq, fn: fn, proc: p}
	s.live++
	if t == s.now {
		s.due = append(s.due, entry{at: t, seq: s.seq, slot: i})
	} else {
		s.queue.ReplaceOrInsert(entry{at: t, seq: s.seq, slot: i})
	}
	return i
}

// popDue removes the FIFO's head; the caller checked it is not empty.
func (s *Sim) popDue() entry {
	e := s.due[s.head]
	s.head++
	if s.head == len(s.due) {
		s.due, s.head = s.due[:0], 0
	}
	return e
}

// advance moves the btree's other entries due at t, the time of the entry
// just taken from it, to the empty FIFO, keeping the invariant of due once
// the clock reads t.
func (s *Sim) advance(t Time) {
	for {
		m, ok := s.queue.Min()
		if !ok || m.at != t {
			return
		}
		s.queue.DeleteMin()
		s.due = append(s.due, m)
	}
}

func (s *Sim) release(i int32) {
	s.slots[i] = slot{}
	s.free = append(s.free, i)
	s.live--
}

// Pending returns the number of scheduled, not cancelled events.
func (s *Sim) Pending() int { return s.live }

// NextAt returns the time of the earliest pending event, or Forever.
func (s *Sim) NextAt() Time {
	for s.head < len(s.due) {
		if e := s.due[s.head]; s.slots[e.slot].seq == e.seq {
			return e.at
		}
		s.popDue() // stale: drop it now
	}
	for {
		e, ok := s.queue.Min()
		if !ok {
			return Forever
		}
		if s.slots[e.slot].seq == e.seq {
			return e.at
		}
		s.queue.DeleteMin() // stale: drop it now
	}
}

// Steps returns how many events have fired.
func (s *Sim) Steps() uint64 { return s.steps }

// Stopped reports whether the run was stopped (by Stop, a panic, a budget
// overrun or a replay mismatch).
func (s *Sim) Stopped() bool { return s.stopped }

// Err returns the error the run stopped with, or nil.
func (s *Sim) Err() error { return s.stopErr }

// Stop ends the run after the current event with err as its outcome; the
// first error wins. Stop(nil) ends the run as a success.
func (s *Sim) Stop(err error) {
	if s.stopped {
		return
	}
	s.stopped, s.stopErr = true, err
}

// Step fires the next event and reports whether one fired. It returns false
// when no event is pending or the run has stopped.
//
// Step is the engine's hot path: popping the earliest live entry (dropping
// stale ones) and firing it are written out here rather than split into
// calls.
func (s *Sim) Step() bool {
	if s.stopped {
		return false
	}
	var e entry
	for {
		if s.head < len(s.due) {
			e = s.popDue()
		} else {
			var ok bool
			if e, ok = s.queue.DeleteMin(); !ok {
				return false
			}
			s.advance(e.at)
		}
		if s.slots[e.slot].seq == e.seq {
			break
		}
		// stale (cancelled): dropped
	}
	if s.cfg.DecideTies {
		e = s.breakTie(e)
	}
	s.now = e.at
	s.steps++
	sl := s.slots[e.slot]
	s.release(e.slot)
	if p := sl.proc; p == nil {
		sl.fn()
	} else if p.state == procSuspended && s.procs.current == nil {
		// p.resume() written out for the common case, a suspended proc
		// woken by the event loop: one call frame fewer on the path that
		// returns across a coroutine switch, where returns mispredict.
		p.state = procRunning
		s.procs.current = p
		p.next()
		s.procs.current = nil
		p.settle()
	} else {
		p.resume()
	}
	if s.cfg.StepBudget != 0 && s.steps+s.calls >= s.cfg.StepBudget && !s.stopped {
		s.overBudget(BudgetSteps)
	}
	if s.watch != nil && (s.steps+s.calls)&watchMask == 0 {
		s.watch.publish(s)
	}
	return true
}

// Work charges one unit of work that fires no event to the step budget:
// the kernel calls it on every routine simulated code calls, so code that
// loops over routines that never yield (KeGetCurrentIrql, a Yield with
// nothing to do) still exhausts the budget. It reports whether the run
// may go on; once it has stopped (budget, finding, replay mismatch) the
// caller must not continue the simulated code. No allocation.
func (s *Sim) Work() bool {
	s.calls++
	if s.cfg.StepBudget != 0 && s.steps+s.calls >= s.cfg.StepBudget && !s.stopped {
		s.overBudget(BudgetSteps)
	}
	if s.watch != nil && (s.steps+s.calls)&watchMask == 0 {
		s.watch.publish(s)
	}
	return !s.stopped
}

// Calls returns the work charged with Work so far.
func (s *Sim) Calls() uint64 { return s.calls }

// overBudget stops the run with a *BudgetError for budget b. Kept out of
// line: it runs once per run at most.
//
//go:noinline
func (s *Sim) overBudget(b Budget) {
	s.Stop(&BudgetError{Budget: b, Steps: s.steps, Calls: s.calls, Decisions: int(s.decided), Pending: s.live, At: s.now})
}

// breakTie collects every live event due at e's instant and lets the
// chooser pick which fires first; the others go back unchanged.
func (s *Sim) breakTie(e entry) entry {
	// Every other entry due at e.at is in the FIFO (see due), in order.
	s.ties = append(s.ties[:0], e)
	for s.head < len(s.due) {
		if n := s.popDue(); s.slots[n.slot].seq == n.seq {
			s.ties = append(s.ties, n)
		}
	}
	c := 0
	if len(s.ties) > 1 {
		c = s.Choose(PointTie, len(s.ties))
	}
	for i, t := range s.ties {
		if i != c {
			s.due = append(s.due, t)
		}
	}
	return s.ties[c]
}

// Run fires events until none is pending or the run stops, then returns the
// outcome.
//
// Inside Run an event handler may run the work of a zero-delay event it
// would queue as its very last act at once instead (ContinueNow): the same
// work in the same order, only without the queue. Step fires exactly one
// event, so a caller that observes the run between events drives it with
// Step.
func (s *Sim) Run() Outcome {
	s.inRun = true
	for s.Step() {
	}
	s.inRun = false
	return s.Outcome()
}

// ContinueNow reports whether an event handler that is about to queue a
// zero-delay event as the very last thing it does may run that event's
// work itself, now, instead: it may when the loop is inside Run (not
// stepped one event at a time by an observer), the handler runs in the
// loop (not in a proc), no other event is due at this instant (so the
// queued event would be the next to fire anyway) and the run goes on.
// It then accounts the continuation exactly as Step would the queued
// event: the current event's end-of-event checks (step budget, watch)
// first, then the step count. The trace, the decisions and the outcome
// are the same either way; only the queue operations are saved. No
// allocation.
func (s *Sim) ContinueNow() bool {
	if !s.inRun || s.head < len(s.due) || s.procs.current != nil {
		return false
	}
	if s.cfg.StepBudget != 0 && s.steps+s.calls >= s.cfg.StepBudget && !s.stopped {
		s.overBudget(BudgetSteps)
	}
	if s.watch != nil && (s.steps+s.calls)&watchMask == 0 {
		s.watch.publish(s)
	}
	if s.stopped {
		return false
	}
	s.steps++
	return true
}

// RunUntil fires every event due at or before t, then advances the clock to
// t (unless the run stopped earlier).
func (s *Sim) RunUntil(t Time) {
	for !s.stopped && s.NextAt() <= t {
		s.Step()
	}
	if !s.stopped && s.now < t {
		s.due, s.head = s.due[:0], 0 // only stale entries can be left: NextAt > t
		s.now = t
	}
}

// Choose asks the chooser for a decision among n options at point p and
// records it. With n ≤ 1 there is nothing to decide: it returns 0 and
// records nothing. A chooser that fails (strict replay mismatch) or returns
// an out-of-range value stops the run; Choose then returns 0.
func (s *Sim) Choose(p Point, n int) int {
	if n <= 1 || s.stopped {
		return 0
	}
	if s.cfg.DecisionBudget != 0 && s.decided >= s.cfg.DecisionBudget {
		s.overBudget(BudgetDecisions)
		return 0
	}
	c := s.chooser.Choose(p, n)
	if s.failer != nil {
		if err := s.failer.Err(); err != nil {
			s.Stop(err)
			return 0
		}
	}
	if c < 0 || c >= n {
		s.Stop(fmt.Errorf("des: chooser %T returned %d for %q with %d options; a chooser must return a value in [0, n)", s.chooser, c, p.Label, n))
		return 0
	}
	s.decided++
	if !s.cfg.NoDecisionLog {
		s.log = append(s.log, Decision{Kind: p.Kind, N: int32(n), Choice: int32(c), Label: p.Label, Actor: p.Actor, At: s.now})
	}
	return c
}

// Decisions returns the decision log so far. The slice is reused by Reset;
// copy it to keep it.
func (s *Sim) Decisions() []Decision { return s.log }

// Emit records r in the trace: it is hashed, kept in the tail ring and
// passed to the sink. Emit fills r.At with Now.
func (s *Sim) Emit(r *Record) {
	*s.NextRecord() = *r
	s.EmitNext()
	r.At = s.now
}

// NextRecord returns the record the next EmitNext emits, for the caller to
// fill in place: it is the tail ring's next slot, so the hot path writes
// each record once instead of building it and copying it in. The caller
// must set every field but At (the slot holds an older record); EmitNext
// sets At.
func (s *Sim) NextRecord() *Record {
	if len(s.tail.recs) == 0 {
		return &s.scratch
	}
	return &s.tail.recs[s.tail.next]
}

// EmitNext records the record NextRecord returned, as Emit does.
func (s *Sim) EmitNext() {
	r := s.NextRecord()
	r.At = s.now
	if s.cfg.HashV3 {
		s.hash = HashRecordV3(s.hash, r)
	} else {
		// The cache's first-way check is inlined here; lookup is the slow path.
		c := &s.digests
		what, ok := c.hit(string(r.What))
		if !ok {
			what = c.lookup(string(r.What))
		}
		actor, ok := c.hit(r.Actor)
		if !ok {
			actor = c.lookup(r.Actor)
		}
		object, ok := c.hit(r.Object)
		if !ok {
			object = c.lookup(r.Object)
		}
		s.hash = foldRecord(s.hash, r, what, actor, object)
	}
	s.tail.advance()
	if s.cfg.Sink != nil {
		s.cfg.Sink.Write(r)
	}
}

// TraceHash returns the stable hash of every record emitted so far.
func (s *Sim) TraceHash() uint64 { return s.hash }

// Tail returns a copy of the last trace records (Config.TailLen).
func (s *Sim) Tail() []Record { return s.tail.snapshot() }

// Outcome summarises the run so far. Decisions aliases the Sim's log and
// is valid until the next Reset (copy it to keep it); Tail is snapshotted
// only when the run failed, since only failure reports print it.
func (s *Sim) Outcome() Outcome {
	o := Outcome{
		Err:       s.stopErr,
		End:       s.now,
		Steps:     s.steps,
		Calls:     s.calls,
		Hash:      s.hash,
		Decisions: s.log,
	}
	if s.stopErr != nil {
		o.Tail = s.Tail()
	}
	return o
}

// Stock recycles one kind of a layer's objects from run to run of a Sim; a
// layer keeps its stocks under its SpareKey. The i-th object a run takes is
// the i-th one the previous run took, so a run never gets an object that
// another take of the same run holds, nor one from a run still going on
// (each run begins with Reset, which unwinds the last run's coroutines).
type Stock[T any] struct {
	run   uint64
	items []*T
	used  int
}

// Taken returns the objects the current run of s has taken so far, in
// the order it took them; for reports, not to be kept.
func (st *Stock[T]) Taken(s *Sim) []*T {
	if st.run != s.run {
		return nil
	}
	return st.items[:st.used]
}

// Take returns an object for the current run of s: one an earlier run took,
// which the caller must reset entirely (only buffers and handlers bound to
// the object itself may survive), or a new one.
func (st *Stock[T]) Take(s *Sim) *T {
	if st.run != s.run {
		st.run, st.used = s.run, 0
	}
	if st.used == len(st.items) {
		st.items = append(st.items, new(T))
	}
	x := st.items[st.used]
	st.used++
	return x
}
