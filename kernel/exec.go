package kernel

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
)

// execKind says what an execution context is.
type execKind uint8

const (
	execThread execKind = iota
	execDPC
	execISR
)

// request is what an exec asked for when it last yielded to the loop.
type request uint8

const (
	reqNone    request = iota
	reqCompute         // consume `remaining` CPU time, then resume
	reqBlock           // thread waits; its processor picks another
	reqSpin            // spinning on a spin lock: the processor stays busy
	reqExit            // thread body returned
	reqIdle            // DPC/ISR drain finished: pop the context
	reqHalt            // a finding stopped the run
)

// exec is an execution context that runs simulated code as a coroutine on
// a processor: a thread, or a processor's DPC or ISR context. Only the
// context on top of a processor's stack advances; the ones below it are
// interrupted with their remaining compute saved.
type exec struct {
	k          *Kernel
	proc       *des.Proc
	kind       execKind
	name       string
	cpu        *Processor
	irql       IRQL
	req        request
	remaining  des.Duration  // compute left before the coroutine resumes
	started    des.Time      // when the current chunk began
	timer      des.Timer     // end of the current chunk
	onChunk    des.Handler   // created once: chunk-end event handler
	thread     *Thread       // non-nil for thread contexts
	spinOn     *KSPIN_LOCK   // the lock it spins on, when req == reqSpin
	spinOnRW   *EX_SPIN_LOCK // the reader/writer spin lock it spins on, likewise
	next       des.Access    // what it is about to touch (only with WantAccess; see access.go)
	image      *Image        // the driver image whose code runs now (image.go)
	dpcRunning *KDPC         // the DPC whose routine a DPC context is running
}

func (e *exec) init(k *Kernel, kind execKind, name string) {
	e.k, e.kind, e.name = k, kind, name
	if e.onChunk == nil { // a recycled exec keeps its own (see recycler)
		e.onChunk = e.chunkDone
	}
}

// spinning reports whether e spins on a spin lock of either kind.
func (e *exec) spinning() bool { return e.spinOn != nil || e.spinOnRW != nil }

// running reports whether e's coroutine is the code executing now.
func (e *exec) running() bool { return e.proc != nil && e.k.sim.Current() == e.proc }

// cur returns the exec of the calling simulated code; every exported
// routine that simulated code calls passes here. api names the routine for
// the error when it is called from outside simulated code.
//
// Each call is charged to the step budget (des.Sim.Work), so a loop over
// routines that never yield (KeGetCurrentIrql, a Yield with nothing to do)
// ends as a livelock instead of hanging; once the run has stopped (that
// budget, the decision budget, a finding) the caller is parked for good
// instead of continuing.
func (k *Kernel) cur(api string) *exec {
	e := k.curOrNil()
	if e == nil {
		panic(fmt.Sprintf("kernel: %s called outside simulated code; call kernel routines from a thread, DPC or ISR body", api))
	}
	if !k.sim.Work() {
		k.halt(e, nil)
	}
	return e
}

func (k *Kernel) curOrNil() *exec {
	p := k.sim.Current()
	if p == nil {
		return nil
	}
	e, _ := p.Data.(*exec)
	return e
}

// point is a scheduling point: it charges cost of CPU time to the calling
// exec (yielding to the loop so other processors advance and this one can
// be preempted or interrupted) and offers the injected perturbations.
func (k *Kernel) point(e *exec, cost des.Duration) {
	c := e.cpu
	if k.cfg.InjectPreemption && e.kind != execISR {
		cost += k.inject(e)
	}
	if cost != 0 || c.needSettle || c.yieldWanted {
		e.remaining += cost
		e.req = reqCompute
		e.proc.Yield()
	}
	if e.kind == execThread && e.thread.apcPending && e.irql == PASSIVE_LEVEL {
		k.deliverApcs(e) // a kernel APC queued meanwhile interrupts the thread here (REFERENCE §4.10)
	}
}

// inject offers the injected perturbations at e's scheduling point and
// returns the stall it chose (0 for none). A thread below DISPATCH_LEVEL
// may end its quantum early or stall; with Config.FineStalls a stall may be
// short or long there, and code at DISPATCH_LEVEL or above (a DPC, a thread
// holding a spin lock) may stall too, but never end its quantum: dispatching
// is off there (REFERENCE §4.5, §9 "Injected perturbations"). ISRs are not
// stalled: see Config.FineStalls.
func (k *Kernel) inject(e *exec) des.Duration {
	if e.canSwitch() {
		n := 3
		if k.cfg.FineStalls {
			n = 4
		}
		switch k.sim.Choose(des.Point{Kind: PointInject, Label: "kernel: inject preemption", Actor: e.thread.id, Touch: e.next}, n) {
		case 1:
			e.cpu.yieldWanted = true
			k.emit(e, KindInject, WhatInjectYield, "", 0, 0)
		case 2:
			return k.stallFor(e, k.cfg.StallTime)
		case 3:
			return k.stallFor(e, k.cfg.ShortStallTime)
		}
		return 0
	}
	if !k.cfg.FineStalls {
		return 0
	}
	switch k.sim.Choose(des.Point{Kind: PointStall, Label: "kernel: inject stall at DISPATCH_LEVEL", Actor: e.actorID(), Touch: e.next}, 3) {
	case 1:
		return k.stallFor(e, k.cfg.ShortStallTime)
	case 2:
		return k.stallFor(e, k.cfg.StallTime)
	}
	return 0
}

// stallFor records an injected stall of d on e's processor and returns d.
func (k *Kernel) stallFor(e *exec, d des.Duration) des.Duration {
	k.emit(e, KindInject, WhatInjectStall, "", int64(d), 0)
	return d
}

// enter begins a kernel call: it finds the caller and passes a scheduling
// point charging the configured call cost.
func (k *Kernel) enter(api string) *exec {
	e := k.cur(api)
	k.point(e, k.cfg.Costs.Call)
	return e
}

// Compute consumes d of CPU time in the calling code: the "compute for
// 40µs" of a scenario. Preemption, interrupts and DPCs can split it. With
// JitterLevels > 1 the length is a decision (choice 0 is exact).
func (k *Kernel) Compute(d des.Duration) {
	e := k.cur("Compute")
	if n := k.cfg.JitterLevels; n > 1 && d > 0 {
		c := k.sim.Choose(des.Point{Kind: PointJitter, Label: "kernel: compute jitter", Actor: e.actorID()}, n)
		d += d * des.Duration(c) / des.Duration(n)
	}
	k.point(e, d)
}

func (e *exec) actorID() int32 {
	if e.thread != nil {
		return e.thread.id
	}
	return 0
}

// chunkDone is the event at the end of a compute chunk. A pending quantum
// end sends the processor to settle (which may round-robin) only when the
// chunk was a thread's below DISPATCH_LEVEL: at or above it, or in a DPC or
// ISR, dispatching is off and the quantum end waits until IRQL drops
// (REFERENCE §4.3, §4.5); settling then would only start an empty chunk,
// for ever.
//
// When what it sets up next is another zero-length chunk that would be the
// very next event, it runs that chunk's end at once instead of queueing it
// (Processor.settleTail, des.Sim.ContinueNow): a thread switched in with
// nothing left to compute resumes without a trip through the event queue.
func (e *exec) chunkDone() {
	for e != nil {
		e = e.endChunk()
	}
}

// endChunk is one chunk end; it returns the exec whose zero-length chunk
// is to end now, or nil.
func (e *exec) endChunk() *exec {
	c := e.cpu
	c.charge(e)
	if e.remaining > 0 || c.quantumEnd && e.canSwitch() {
		return c.settleTail()
	}
	return e.resume()
}

// canSwitch reports whether the dispatcher may act on e's processor now:
// e is a thread context below DISPATCH_LEVEL.
// ruleIrql is the IRQL whose rules e's calls are checked against: its
// IRQL, except in a threaded DPC's routine, which runs at PASSIVE_LEVEL
// but must keep DISPATCH_LEVEL's rules, since it runs at DISPATCH_LEVEL as
// an ordinary DPC wherever threaded DPCs are disabled (REFERENCE §4.21).
func (e *exec) ruleIrql() IRQL {
	if e.dpcRunning != nil && e.kind == execThread && e.irql < DISPATCH_LEVEL {
		return DISPATCH_LEVEL
	}
	return e.irql
}

// inThreadedDpc names the threaded DPC whose routine e runs, for reports;
// "" outside one.
func (e *exec) inThreadedDpc() string {
	if e.dpcRunning != nil && e.kind == execThread {
		return e.dpcRunning.Name
	}
	return ""
}

func (e *exec) canSwitch() bool { return e.kind == execThread && e.irql < DISPATCH_LEVEL }

// resume runs e's coroutine until it yields, then lets its processor act
// on what it asked for; it returns the exec whose zero-length chunk is to
// end at once (see chunkDone), or nil.
func (e *exec) resume() *exec {
	if e.runsUnloadedCode() {
		e.k.unloadedResume(e) // REFERENCE §6.8: the thread never runs again
		return nil
	}
	e.req = reqNone
	e.proc.Resume()
	if e.k.sim.Stopped() {
		return nil
	}
	c := e.cpu
	switch e.req {
	case reqCompute:
		return c.settleTail()
	case reqBlock, reqExit:
		c.cur = nil
		e.cpu = nil
		return c.settleTail()
	case reqIdle:
		c.popContext(e)
		return c.settleTail()
	}
	return nil // reqSpin, reqHalt, reqNone
}

// KeGetCurrentIrql returns the IRQL of the calling code.
// IRQL: any (REFERENCE §4.5).
func (k *Kernel) KeGetCurrentIrql() IRQL { return k.cur("KeGetCurrentIrql").irql }

// KeGetCurrentThread returns the thread the caller runs in: the calling
// thread, or — in a DPC or ISR, which borrow the context of whatever the
// processor was running — the interrupted thread, as on Windows; nil only
// when the processor was idle (the model has no idle thread objects,
// REFERENCE §9). Code that must tell a DPC from its thread asks
// KeIsExecutingDpc.
// IRQL: ≤ DISPATCH_LEVEL as Microsoft documents (REFERENCE §4.5, §5.7).
func (k *Kernel) KeGetCurrentThread() *Thread {
	x := k.cur("KeGetCurrentThread")
	if x.thread != nil {
		return x.thread
	}
	return x.cpu.cur
}

// ThreadOrNil returns the calling thread, nil in a DPC or ISR: for
// layers that name the actor of a report or keep per-thread state that a
// DPC must not touch. Any IRQL.
func (l *Layer) ThreadOrNil() *Thread { return l.kernel().cur("ThreadOrNil").thread }

// KeGetCurrentProcessorNumber returns the processor the caller runs on.
// IRQL: any (REFERENCE §4.7).
func (k *Kernel) KeGetCurrentProcessorNumber() int {
	return k.cur("KeGetCurrentProcessorNumber").cpu.id
}

// KeIsExecutingDpc reports whether the caller runs in a DPC.
// IRQL: any (REFERENCE §4.8).
func (k *Kernel) KeIsExecutingDpc() bool { return k.cur("KeIsExecutingDpc").kind == execDPC }

// tick charges a call to the step budget, as cur does, for the exported
// routines that setup code may also call outside simulated code
// (initialisers, accessors): from simulated code they count, so a loop over
// them ends as a livelock; from setup code or an event handler they are
// free.
func (k *Kernel) tick() {
	p := k.sim.Current()
	if p == nil || k.sim.Work() {
		return
	}
	if e, _ := p.Data.(*exec); e != nil {
		k.halt(e, nil)
	}
	for { // a coroutine of a higher layer, not a kernel context
		p.Yield()
	}
}
