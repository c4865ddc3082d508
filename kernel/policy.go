package kernel

import "math/bits"

// Policy is the dispatcher's ready structure and preemption rules, pluggable
// so that research can compare schedulers. Quantum accounting, boosts and
// IRQL deferral stay in the kernel; a policy only orders ready threads and
// says when one displaces another.
type Policy interface {
	// Name identifies the policy in experiment output.
	Name() string
	// Reset empties the structure for a new run.
	Reset()
	// Enqueue makes t ready. front is true for a preempted thread, which
	// NT puts at the head of its list (REFERENCE §4.2).
	Enqueue(t *Thread, front bool)
	// Remove takes a ready thread out (it is being dispatched).
	Remove(t *Thread)
	// Peek returns the thread that should run next, or nil if none is ready.
	Peek() *Thread
	// Len returns the number of ready threads.
	Len() int
	// Preempts reports whether ready thread r must displace running thread
	// cur at once.
	Preempts(r, cur *Thread) bool
	// RoundRobin reports whether r takes the processor when cur's quantum
	// ends.
	RoundRobin(r, cur *Thread) bool
	// Each calls f on every ready thread, best first, until f returns false.
	Each(f func(*Thread) bool)
}

// NTDispatcher is the global NT dispatcher of REFERENCE §4.2, kept as a
// research policy: the model's earlier behaviour, one ready structure for
// the whole machine, where a ready thread preempts the lowest-priority
// running thread anywhere at once. Per-processor queues (the default,
// PerProcessorDispatcher) are REFERENCE §4.7. 32 FIFO ready lists,
// the highest non-empty one runs; a preempted thread returns to the head of
// its list, a thread whose quantum ended or that just became ready to the
// tail; a strictly higher priority preempts at once, an equal one never
// does but takes over at quantum end.
type NTDispatcher struct {
	head, tail [32]*Thread
	summary    uint32 // bit p set when list p is non-empty
	n          int
}

// NewNTDispatcher returns the NT rules over one global ready structure
// (REFERENCE §4.2): a readied thread preempts the lowest-priority running
// thread anywhere at once. Not Windows' placement (that is the default,
// NewPerProcessorDispatcher, §4.7); kept for research and comparison (the
// lab's "nt-global").
func NewNTDispatcher() *NTDispatcher { return &NTDispatcher{} }

func (d *NTDispatcher) Name() string { return "nt" }
func (d *NTDispatcher) Reset()       { *d = NTDispatcher{} }
func (d *NTDispatcher) Len() int     { return d.n }

func (d *NTDispatcher) Enqueue(t *Thread, front bool) {
	p := t.priority
	t.rnext, t.rprev = nil, nil
	switch {
	case d.head[p] == nil:
		d.head[p], d.tail[p] = t, t
	case front:
		t.rnext = d.head[p]
		d.head[p].rprev = t
		d.head[p] = t
	default:
		t.rprev = d.tail[p]
		d.tail[p].rnext = t
		d.tail[p] = t
	}
	d.summary |= 1 << uint(p)
	d.n++
}

func (d *NTDispatcher) Remove(t *Thread) {
	p := t.priority
	if t.rprev != nil {
		t.rprev.rnext = t.rnext
	} else {
		d.head[p] = t.rnext
	}
	if t.rnext != nil {
		t.rnext.rprev = t.rprev
	} else {
		d.tail[p] = t.rprev
	}
	t.rnext, t.rprev = nil, nil
	if d.head[p] == nil {
		d.summary &^= 1 << uint(p)
	}
	d.n--
}

func (d *NTDispatcher) Peek() *Thread {
	if d.summary == 0 {
		return nil
	}
	return d.head[31-leadingZeros32(d.summary)]
}

func (d *NTDispatcher) Preempts(r, cur *Thread) bool   { return r.priority > cur.priority }
func (d *NTDispatcher) RoundRobin(r, cur *Thread) bool { return r.priority >= cur.priority }

func (d *NTDispatcher) Each(f func(*Thread) bool) {
	for s := d.summary; s != 0; {
		p := 31 - bits.LeadingZeros32(s)
		s &^= 1 << uint(p)
		for t := d.head[p]; t != nil; t = t.rnext {
			if !f(t) {
				return
			}
		}
	}
}

func leadingZeros32(x uint32) int { return bits.LeadingZeros32(x) }

// FIFODispatcher is a research baseline: one FIFO ready queue, no
// preemption and no round-robin; a thread runs until it waits or exits.
// Priorities and boosts are ignored for ordering.
type FIFODispatcher struct {
	head, tail *Thread
	n          int
}

// NewFIFODispatcher returns the run-to-block FIFO policy.
func NewFIFODispatcher() *FIFODispatcher { return &FIFODispatcher{} }

func (d *FIFODispatcher) Name() string { return "fifo" }
func (d *FIFODispatcher) Reset()       { *d = FIFODispatcher{} }
func (d *FIFODispatcher) Len() int     { return d.n }

func (d *FIFODispatcher) Enqueue(t *Thread, front bool) {
	t.rnext, t.rprev = nil, nil
	switch {
	case d.head == nil:
		d.head, d.tail = t, t
	case front:
		t.rnext, d.head.rprev, d.head = d.head, t, t
	default:
		t.rprev, d.tail.rnext, d.tail = d.tail, t, t
	}
	d.n++
}

func (d *FIFODispatcher) Remove(t *Thread) {
	if t.rprev != nil {
		t.rprev.rnext = t.rnext
	} else {
		d.head = t.rnext
	}
	if t.rnext != nil {
		t.rnext.rprev = t.rprev
	} else {
		d.tail = t.rprev
	}
	t.rnext, t.rprev = nil, nil
	d.n--
}

func (d *FIFODispatcher) Peek() *Thread                { return d.head }
func (d *FIFODispatcher) Preempts(_, _ *Thread) bool   { return false }
func (d *FIFODispatcher) RoundRobin(_, _ *Thread) bool { return false }

func (d *FIFODispatcher) Each(f func(*Thread) bool) {
	for t := d.head; t != nil && f(t); t = t.rnext {
	}
}

// PerProcessorPolicy is a Policy that keeps one ready queue per processor
// (REFERENCE §4.7). The kernel sets a thread's queue (Thread.ReadyProcessor)
// before Enqueue; Peek, Len and Each cover every queue, PeekOn and EachOn
// one processor's.
type PerProcessorPolicy interface {
	Policy
	// Processors sizes the structure for n processors; New calls it once,
	// after Reset.
	Processors(n int)
	// PeekOn returns the best ready thread queued on processor cpu.
	PeekOn(cpu int) *Thread
	// EachOn calls f on cpu's ready threads, best first, until it returns
	// false.
	EachOn(cpu int, f func(*Thread) bool)
}

// PerProcessorDispatcher is the default dispatcher (REFERENCE §4.7): one
// set of 32 FIFO ready lists per processor, with NTDispatcher's ordering
// and preemption rules inside each. Which processor's queue a thread joins
// is the kernel's choice (ideal processor, affinity, idle processors).
type PerProcessorDispatcher struct {
	queues []NTDispatcher
	n      int
}

// NewPerProcessorDispatcher returns the per-processor NT dispatcher.
func NewPerProcessorDispatcher() *PerProcessorDispatcher { return &PerProcessorDispatcher{} }

func (d *PerProcessorDispatcher) Name() string { return "nt-per-processor" }
func (d *PerProcessorDispatcher) Reset() {
	for i := range d.queues {
		d.queues[i].Reset()
	}
	d.n = 0
}
func (d *PerProcessorDispatcher) Processors(n int) {
	if cap(d.queues) < n {
		d.queues = make([]NTDispatcher, n)
	}
	d.queues = d.queues[:n]
	for i := range d.queues {
		d.queues[i].Reset()
	}
}
func (d *PerProcessorDispatcher) Len() int { return d.n }

func (d *PerProcessorDispatcher) Enqueue(t *Thread, front bool) {
	d.queues[t.queueCPU].Enqueue(t, front)
	d.n++
}

func (d *PerProcessorDispatcher) Remove(t *Thread) {
	d.queues[t.queueCPU].Remove(t)
	d.n--
}

// Peek returns the best ready thread of any processor (lowest processor
// number among equals).
func (d *PerProcessorDispatcher) Peek() *Thread {
	var best *Thread
	for i := range d.queues {
		if t := d.queues[i].Peek(); t != nil && (best == nil || t.priority > best.priority) {
			best = t
		}
	}
	return best
}

func (d *PerProcessorDispatcher) PeekOn(cpu int) *Thread { return d.queues[cpu].Peek() }

func (d *PerProcessorDispatcher) EachOn(cpu int, f func(*Thread) bool) { d.queues[cpu].Each(f) }

// Each visits processor 0's ready threads, then processor 1's, and so on.
func (d *PerProcessorDispatcher) Each(f func(*Thread) bool) {
	stop := false
	g := func(t *Thread) bool {
		if !f(t) {
			stop = true
		}
		return !stop
	}
	for i := range d.queues {
		if d.queues[i].Each(g); stop {
			return
		}
	}
}

func (d *PerProcessorDispatcher) Preempts(r, cur *Thread) bool   { return r.priority > cur.priority }
func (d *PerProcessorDispatcher) RoundRobin(r, cur *Thread) bool { return r.priority >= cur.priority }
