package kernel

import "github.com/wqsim/wqsim/des"

// Decision point kinds of the kernel (stable numbers: they appear in fail
// files). Choice 0 is always the unperturbed option.
const (
	PointPickCPU    des.PointKind = 10 // which idle processor takes a ready thread
	PointPickVictim des.PointKind = 11 // which equal-priority processor to preempt
	PointInject     des.PointKind = 12 // 0 none, 1 early quantum end, 2 stall, 3 short stall (FineStalls)
	PointJitter     des.PointKind = 13 // stretch of an explicit Compute
	PointAllocFail  des.PointKind = 14 // 0 allocate, 1 return NULL
	PointPickThread des.PointKind = 15 // which equal-priority ready thread runs (0 = FIFO head)
	PointDpcDrain   des.PointKind = 16 // 0 a deferrable DPC queue waits, 1 it drains at once
	PointPageIn     des.PointKind = 17 // 0 a pageable page is resident, 1 it is paged out
	PointSteal      des.PointKind = 18 // which processor's queue an idle processor takes from (0 = lowest)
	PointStall      des.PointKind = 19 // at DISPATCH_LEVEL or above (FineStalls): 0 none, 1 short stall, 2 stall
)

// Trace record kinds of the kernel (stable numbers: part of trace hashes).
const (
	KindThread    des.Kind = 100 + iota // create / exit
	KindReady                           // thread made ready
	KindSwitch                          // thread dispatched on a processor
	KindQuantum                         // quantum end
	KindWait                            // a thread blocks
	KindWake                            // a wait is satisfied
	KindSignal                          // an object is signalled
	KindIrql                            // IRQL change
	KindLock                            // spin lock, mutex, resource
	KindInterrupt                       // ISR/DPC context enter/leave
	KindDPC                             // DPC queued or run
	KindIRP                             // IRP operations
	KindPool                            // pool allocate/free
	KindMemory                          // shared-cell access
	KindInject                          // an injected perturbation
	KindBugCheck                        // a bug check
	KindQueue                           // KQUEUE insert/remove
	KindCall                            // a higher layer's API call
	KindAPC                             // APC queued, run, a wait interrupted, an alert (REFERENCE §4.10)
)

// emit writes a trace record for e (which may be nil for kernel-internal
// events).
//
// The record is written in place into the Sim's next trace slot
// (des.Sim.NextRecord), not on the stack: the sink is an interface, so a
// stack record would escape and cost an allocation per event, and a
// record built elsewhere would be copied once more into the tail ring.
func (k *Kernel) emit(e *exec, kind des.Kind, what des.What, object string, a, b int64) {
	k.progressOf(e, kind, what)
	// Fields are set one by one, not as a struct literal: the literal is
	// built on the stack and copied over in 16-byte moves that straddle its
	// 8-byte field stores, and the stalled store forwarding cost an eighth
	// of a context switch (Sim.Emit sets At).
	r := k.sim.NextRecord()
	r.Kind, r.What, r.Object, r.A, r.B = kind, what, object, a, b
	r.CPU, r.IRQL, r.Thread, r.Actor = -1, -1, 0, ""
	if e != nil {
		r.Actor = e.name
		if e.thread != nil {
			r.Thread = e.thread.id
		}
		if e.cpu != nil {
			r.CPU = int16(e.cpu.id)
			r.IRQL = int8(e.irql)
		}
	}
	k.sim.EmitNext()
}

// Records whose numbers are NTSTATUS or bug-check values show them in hex
// in the text trace (the trace hash is over the numbers, not the text).
func init() {
	des.ShowArgsAs(KindWake, WhatWake, des.Hex, des.Decimal)             // A status, B priority
	des.ShowArgsAs(KindBugCheck, WhatBugCheck, des.Hex, des.Hex)         // A code, B P1
	des.ShowArgsAs(KindIRP, WhatIoCompleteRequest, des.Hex, des.Decimal) // A status, B boost
	des.ShowArgsAs(KindWait, WhatSatisfied, des.Decimal, des.Hex)        // A timeout, B status
	des.ShowArgsAs(KindAPC, WhatWaitAborted, des.Hex, des.Decimal)       // A status
}
