package kernel

import (
	"errors"

	"github.com/wqsim/wqsim/des"
)

// Layer is the second API surface of a Kernel: what the layers built on
// the kernel (package queues, the filter manager, package model's run
// loop) and the tools that observe a run (the timeline, the experiment lab)
// use. Driver code never needs it: a driver calls the NT routines and the
// workload helpers on *Kernel (see the package documentation).
//
// A Layer is the same machine seen from above; k.Layer() costs nothing and
// may be called as often as convenient. Methods fall in three groups:
//
//   - routines of higher layers: Enter, Yield, CheckIrqlAtMost,
//     BugCheckFrom, Fail, Trace, TraceKind, HitMark, AllocateInternal,
//     FreeInternal, AddEndCheck — called from simulated code on behalf of an NT routine
//     that layer implements (IoQueueWorkItem, FltCbdqInsertIo, ...);
//   - the run: Sim, Config, Finish, Marks;
//   - read-only observers for measurement: Processors, Processor, Threads,
//     ThreadByID, Policy, ReadyCount, EachReady. They read dispatcher state
//     between events without changing it, allocate nothing and are not
//     scheduling points: call them from outside simulated code (a des.Sink,
//     or the loop that drives Sim.Step), where the state is consistent.
//     Mutating the returned objects is not supported.
type Layer Kernel

// Layer returns the layer surface of k (see Layer).
func (k *Kernel) Layer() *Layer { return (*Layer)(k) }

func (l *Layer) kernel() *Kernel { return (*Kernel)(l) }

// Enter begins a higher layer's kernel routine (IoAllocateWorkItem,
// IoCreateDevice, ...) on behalf of the calling simulated code, exactly as
// the kernel's own routines begin: a scheduling point that charges
// Costs.Call and offers the injected perturbations. api names the routine in
// the panic raised when it is called outside simulated code.
func (l *Layer) Enter(api string) { l.kernel().enter(api) }

// Yield is a bare scheduling point with no cost: perturbations may be
// injected here and pending preemption or DPCs take effect. A layer places
// one between two steps of a protocol another processor may interleave
// with.
func (l *Layer) Yield() {
	k := l.kernel()
	k.point(k.cur("Yield"), 0)
}

// CheckIrqlAtMost lets higher layers enforce "IRQL ≤ max" for their
// routines with the kernel's bug check (IRQL_NOT_LESS_OR_EQUAL).
func (l *Layer) CheckIrqlAtMost(api string, max IRQL) {
	k := l.kernel()
	k.checkIrqlAtMost(k.cur(api), api, max)
}

// BugCheckFrom raises a bug check on behalf of a higher layer (queues,
// filter manager) from the calling simulated code.
func (l *Layer) BugCheckFrom(api string, code uint32, p1, p2, p3, p4 uint64, detail string) {
	k := l.kernel()
	k.bugCheck(k.curOrNil(), api, code, p1, p2, p3, p4, detail)
}

// NullDereference stops the run for a NULL param passed to api, a routine
// of a higher layer that dereferences it at the caller's IRQL (writing if
// write): 0x7E (0x1E outside a thread) below DISPATCH_LEVEL, 0xA at or
// above it, as for the kernel's own routines (REFERENCE §4.15). It does not
// return to the caller. Call it from simulated code.
func (l *Layer) NullDereference(api, param string, write bool) {
	how := touchAtCaller
	if write {
		how = writeAtCaller
	}
	l.kernel().nilObject(api, param, how)
}

// Fail stops the run with a finding of a higher layer (a verifier message,
// a protocol violation) raised by the calling simulated code.
func (l *Layer) Fail(err error) {
	k := l.kernel()
	k.halt(k.curOrNil(), err)
}

// Trace emits a record of a higher layer's call (work-item queueing, a
// cbdq operation) attributed to the calling simulated code.
func (l *Layer) Trace(what des.What, object string, a, b int64) {
	k := l.kernel()
	k.tick()
	k.emit(k.curOrNil(), KindCall, what, object, a, b)
}

// TraceKind is Trace with the caller's own record kind.
func (l *Layer) TraceKind(kind des.Kind, what des.What, object string, a, b int64) {
	k := l.kernel()
	k.tick()
	k.emit(k.curOrNil(), kind, what, object, a, b)
}

// AllocateInternal creates a block without a scheduling point, for kernel
// objects allocated on the caller's behalf by higher layers (work items).
func (l *Layer) AllocateInternal(typ POOL_TYPE, size int, tag string) *PoolBlock {
	k := l.kernel()
	k.tick()
	return k.allocate(k.curOrNil(), typ, size, tag)
}

// FreeInternal frees a block like ExFreePool but attributes the call to api.
func (l *Layer) FreeInternal(b *PoolBlock, api string) {
	k := l.kernel()
	k.tick()
	k.free(k.curOrNil(), b, b.Tag, api)
}

// HitMark records that the calling code reached the path m (see Mark).
// It traces nothing: each layer traces its hits in its own record layout.
// Not a scheduling point.
func (l *Layer) HitMark(m *Mark) { l.marks.Add(m) }

// Marks returns the run's mark counts: every mark recorded with HitMark.
func (l *Layer) Marks() *MarkCounts { return &l.marks }

// AddEndCheck registers a check run by Finish when the run ends quietly;
// each returned string is an outstanding object reported as a *Leak.
func (l *Layer) AddEndCheck(f func() []string) { l.endChecks = append(l.endChecks, f) }

// AddHangNote registers f, called when the run ends in a hang or deadlock
// (outside simulated code): each string it returns is something a higher
// layer still holds that the waiting threads were counting on — work items
// queued with no worker left to run them — reported as Deadlock.Pending.
func (l *Layer) AddHangNote(f func() []string) { l.hangNotes = append(l.hangNotes, f) }

// QueueEntriesNotedByLayer says that the layer's own hang note reports
// what q still holds (a worker pool's work items), so the kernel's hang
// report does not name q's entries a second time.
func (l *Layer) QueueEntriesNotedByLayer(q *KQUEUE) { q.layerNoted = true }

// Sim returns the simulation the kernel runs on.
func (l *Layer) Sim() *des.Sim { return l.sim }

// Config returns the kernel's configuration.
func (l *Layer) Config() Config { return l.cfg }

// Finish classifies how the run ended: a finding that stopped it; a step
// budget overrun (as *Livelock); threads that wait with nothing left to
// wake them (*Deadlock); or outstanding IRPs, pool blocks and objects of
// higher layers (*Leak). Call it once the event queue is empty or the run
// has stopped. Kernel.Run calls it.
func (l *Layer) Finish() des.Outcome {
	k := l.kernel()
	if err := k.sim.Err(); err != nil {
		var be *des.BudgetError
		if errors.As(err, &be) {
			if _, already := err.(*Livelock); !already {
				k.sim.ReplaceErr(&Livelock{Budget: be, Running: k.runningNames(), Ready: k.readyNames(), Waiting: k.blockedEdges(), StuckDpcs: k.stuckDpcs()})
			}
		}
		return k.sim.Outcome()
	}
	if k.sim.Pending() == 0 || k.stall.timersOnly {
		if d := k.findHang(); d != nil {
			k.endWith(d)
			return k.sim.Outcome()
		}
		if items := k.leaks(); len(items) > 0 {
			k.endWith(&Leak{Items: items, At: k.sim.Now()})
		}
	}
	return k.sim.Outcome()
}

// Processors returns the number of processors.
func (l *Layer) Processors() int { return len(l.cpus) }

// Processor returns processor i (0 ≤ i < Processors()).
func (l *Layer) Processor(i int) *Processor { return l.cpus[i] }

// Threads returns every thread created so far, in creation order.
func (l *Layer) Threads() []*Thread { return l.threads }

// ThreadByID returns the thread with id (IDs count from 1 in creation
// order, as in trace records' Thread field), or nil if there is none.
func (l *Layer) ThreadByID(id int32) *Thread {
	if id < 1 || int(id) > len(l.threads) {
		return nil
	}
	return l.threads[id-1]
}

// Policy returns the dispatcher policy in use.
func (l *Layer) Policy() Policy { return l.policy }

// ReadyCount returns the number of ready threads.
func (l *Layer) ReadyCount() int { return l.policy.Len() }

// EachReady calls f on every ready thread in the policy's order (best first
// for the NT dispatcher) until f returns false. f must not change dispatcher
// state.
func (l *Layer) EachReady(f func(*Thread) bool) { l.policy.Each(f) }

// endWith ends a finished run with a finding. A run that ended because only
// quiet timers were left (stall.go) is already stopped, without an error:
// the finding replaces that success.
func (k *Kernel) endWith(err error) {
	if k.sim.Stopped() {
		k.sim.ReplaceErr(err)
		return
	}
	k.sim.Stop(err)
}
