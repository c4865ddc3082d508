package des

import (
	"fmt"
	"iter"
	"runtime/debug"
)

// procState tracks where a coroutine is in its life.
type procState uint8

const (
	procFree      procState = iota // body finished; parked, reusable
	procNew                        // body assigned, not yet resumed
	procRunning                    // currently executing
	procSuspended                  // yielded in the middle of its body
)

// errKilled unwinds a suspended body when its Sim is reset.
var errKilled = &struct{ msg string }{"des: process killed by Reset"}

// Proc is a coroutine running simulated code, such as one kernel thread. It
// runs only when the event loop resumes it and runs until it calls Yield (or
// a helper built on Yield such as Sleep), so exactly one piece of simulated
// code runs at a time. Procs are built on iter.Pull: a resume and a yield
// are one coroutine switch, with no trip through the Go scheduler.
//
// A panic inside the body is recovered; the run stops with a *PanicError
// carrying the panic value and stack.
type Proc struct {
	// The fields every resume and yield touch come first, so that they
	// share one cache line.
	sim   *Sim
	next  func() (struct{}, bool)
	yield func(struct{}) bool
	state procState
	kill  bool
	// sleeping asks the resumer to schedule this proc's wake-up sleepFor
	// after Now once it has yielded (see Sleep and settle).
	sleeping bool
	sleepFor Duration
	id       int32
	name     string
	body     func(*Proc)
	stop     func()
	// Data is free for the layer above (the kernel stores its thread here).
	Data any
}

// ID returns the proc's number, assigned in spawn order within a run.
func (p *Proc) ID() int32 { return p.id }

// Name returns the name given to Spawn.
func (p *Proc) Name() string { return p.name }

// Sim returns the simulation the proc belongs to.
func (p *Proc) Sim() *Sim { return p.sim }

// procTable owns every coroutine of a Sim and recycles finished ones:
// creating a coroutine costs far more than resuming a parked one.
type procTable struct {
	all     []*Proc
	pool    []*Proc
	current *Proc
	nextID  int32
}

// Spawn prepares a coroutine that will run body when first resumed (see
// Resume, ResumeAt). It reuses a finished coroutine when one is parked.
func (s *Sim) Spawn(name string, body func(*Proc)) *Proc {
	t := &s.procs
	var p *Proc
	if n := len(t.pool); n > 0 {
		p = t.pool[n-1]
		t.pool = t.pool[:n-1]
	} else {
		p = &Proc{sim: s}
		p.next, p.stop = iter.Pull(p.loop)
		t.all = append(t.all, p)
	}
	t.nextID++
	p.id, p.name, p.body, p.state, p.kill, p.Data = t.nextID, name, body, procNew, false, nil
	return p
}

// loop is the coroutine's whole life: run a body, park, run the next one.
func (p *Proc) loop(yield func(struct{}) bool) {
	p.yield = yield
	for {
		p.runBody()
		p.state = procFree
		p.body = nil
		if !yield(struct{}{}) {
			return
		}
	}
}

func (p *Proc) runBody() {
	defer func() {
		r := recover()
		if r == nil || r == errKilled {
			return
		}
		p.sim.Stop(&PanicError{Proc: p.name, Value: r, Stack: string(debug.Stack())})
	}()
	if p.body != nil && !p.kill {
		p.body(p)
	}
}

// Resume runs p until it yields or finishes. Only the event loop (code that
// is not itself inside a Proc) may resume a proc.
func (p *Proc) Resume() { p.resume() }

func (p *Proc) resume() {
	t := &p.sim.procs
	if t.current != nil {
		p.resumedInsideProc()
	}
	if p.state != procNew && p.state != procSuspended {
		return // finished or recycled: a late wake-up is dropped
	}
	p.state = procRunning
	t.current = p
	p.next()
	t.current = nil
	p.settle()
}

// settle finishes a resume once p has yielded or finished: it schedules the
// wake-up Sleep asked for, or parks a finished coroutine for reuse. Sim.Step
// writes resume out and calls settle too.
func (p *Proc) settle() {
	if p.sleeping {
		p.sleeping = false
		p.sim.push(p.sim.now.Add(p.sleepFor), nil, p)
	}
	if p.state == procFree {
		p.sim.procs.pool = append(p.sim.procs.pool, p)
	} else {
		p.state = procSuspended // it yielded
	}
}

// resumedInsideProc panics: only the event loop may resume a proc. It is
// kept out of line so that the hot resume path carries no fmt call.
//
//go:noinline
func (p *Proc) resumedInsideProc() {
	panic(fmt.Sprintf("des: proc %q resumed from inside proc %q; resume procs only from event handlers", p.name, p.sim.procs.current.name))
}

// Yield suspends p and returns control to the event loop. It returns when
// the loop resumes p.
func (p *Proc) Yield() {
	// The state is the resumer's business: it marks p procRunning before
	// switching in and procSuspended after switching back (settle), which
	// keeps Yield, and Sleep with it, small enough to inline.
	if p.kill {
		// Being unwound by Reset: a deferred call that reaches a scheduling
		// point must not yield (it would park the half-unwound body in the
		// pool, to resume inside a later run); it unwinds further instead.
		panic(errKilled)
	}
	if !p.yield(struct{}{}) || p.kill {
		panic(errKilled)
	}
}

// ResumeAt schedules p to be resumed at time t.
func (s *Sim) ResumeAt(t Time, p *Proc) Timer { return s.schedule(t, nil, p) }

// Sleep suspends p for d of virtual time.
//
// The wake-up is queued by the event loop right after p yields, not on p's
// own stack: nothing runs in between, so it gets the same time and sequence
// number, but the btree insert runs on the loop's hot stack instead of one
// of many cold coroutine stacks.
func (p *Proc) Sleep(d Duration) {
	p.sleepFor, p.sleeping = d, true
	p.Yield()
}

// Current returns the proc that is running, or nil in an event handler.
func (s *Sim) Current() *Proc { return s.procs.current }

// Live returns how many procs have started a body that has not finished.
func (s *Sim) Live() int {
	k := 0
	for _, p := range s.procs.all {
		if p.state == procNew || p.state == procSuspended {
			k++
		}
	}
	return k
}

// killAll unwinds every unfinished body so its coroutine can be reused.
func (t *procTable) killAll(s *Sim) {
	t.current = nil
	t.pool = t.pool[:0]
	live := t.all[:0]
	for _, p := range t.all {
		switch p.state {
		case procSuspended:
			p.kill = true
			p.state = procRunning
			t.current = p
			p.next()
			t.current = nil
			p.sleeping = false
			if p.state == procRunning {
				// Yield panics once kill is set, so a body always unwinds;
				// reaching here means simulated code recovered the kill
				// panic and kept going. Abandon that coroutine: reusing it
				// would let the old body run inside a later run.
				continue
			}
		case procNew:
			p.state, p.body = procFree, nil
		}
		p.Data = nil
		live = append(live, p)
		t.pool = append(t.pool, p)
	}
	t.all = live
	// Reverse so the pool hands out coroutines in creation order, keeping
	// proc-to-coroutine assignment independent of the previous run.
	for i, j := 0, len(t.pool)-1; i < j; i, j = i+1, j-1 {
		t.pool[i], t.pool[j] = t.pool[j], t.pool[i]
	}
	t.nextID = 0
}

// Close releases every coroutine. The Sim must not be used afterwards.
func (s *Sim) Close() {
	s.procs.killAll(s)
	for _, p := range s.procs.all {
		p.stop()
	}
	s.procs = procTable{}
	s.spare = nil
}
