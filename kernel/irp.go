package kernel

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
)

// IRP flags that matter to the model (REFERENCE §5.2).
const (
	IRP_PAGING_IO             uint32 = 0x00000002
	IRP_SYNCHRONOUS_PAGING_IO uint32 = 0x00000040
)

// DriverCancel is a cancel routine (DRIVER_CANCEL): called at
// DISPATCH_LEVEL holding the cancel spin lock, which it must release with
// IoReleaseCancelSpinLock(irp.CancelIrql) (REFERENCE §1.7).
type DriverCancel func(irp *IRP)

// IO_STATUS_BLOCK is an IRP's final status.
type IO_STATUS_BLOCK struct {
	Status      NTSTATUS
	Information uint64
}

// IRP is an I/O request packet. Its cancel routine is an atomic cell:
// whoever swaps a non-nil routine for nil owns the IRP (REFERENCE §2.1).
type IRP struct {
	k             *Kernel
	id            int
	name          string
	Flags         uint32
	IoStatus      IO_STATUS_BLOCK
	CancelIrql    IRQL
	DriverContext [4]any // Tail.Overlay.DriverContext; [3] belongs to IoCsq
	FileObject    any
	TopLevel      bool // the issuing thread's TopLevelIrp was non-NULL
	Tag           string

	cancel        bool
	cancelRoutine DriverCancel
	pendingMarked bool
	completed     bool
	freed         bool
	completedBy   string
	// inCancelRoutine is set while IoCancelIrp calls the IRP's cancel
	// routine; completedInCancel records that the completion happened
	// there, so a report can say the driver's cancel routine completed it,
	// not the thread that called IoCancelIrp.
	inCancelRoutine, completedInCancel bool
	done                               *KEVENT
	// whenDone is a higher layer's release of what the IRP held while in
	// flight (Layer.WhenIrpDone); called once, at completion or free.
	whenDone    func(any)
	whenDoneArg any

	// REFERENCE §4.10: a threaded IRP (IoQueueThreadIrp) is completed to
	// its thread by the I/O completion special kernel APC, which copies
	// the status to UserIosb and sets UserEvent.
	thread    *Thread
	UserEvent *KEVENT
	UserIosb  *IO_STATUS_BLOCK

	// REFERENCE §5.6: stack locations (index current is the current one;
	// len(stack) when none is), Irp->PendingReturned during completion,
	// IRP_DEFER_IO_COMPLETION, and whether the issuer's side has finished.
	stack           []IO_STACK_LOCATION
	current         int
	pendingReturned bool
	deferred        bool
	finished        bool
	reuses          uint32 // IoReuseIrp calls so far (irpreuse.go)
	// driverAllocated: made by the public IoAllocateIrp, not the I/O
	// manager's path (Layer.AllocateIrp); kept by IoReuseIrp, as Windows
	// keeps the allocation flags (REFERENCE §1.10).
	driverAllocated bool
}

// IoAllocateIrp creates an IRP named "irp N (tag)" (N its number), with no stack
// locations and no thread: the request a scenario's issuer hands to a
// driver and completes or waits for directly. Every IRP must be completed
// or freed before the run ends, or it is reported as a leak. A driver that
// builds an IRP to send down a device stack gives it stack locations
// (queues.System.IoAllocateIrp); such an IRP is the allocating driver's to
// free, and completing it back to the top is a bug (REFERENCE §1.10).
// IRQL: ≤ DISPATCH_LEVEL as Microsoft documents; the model does not check it (REFERENCE §5.6).
func (k *Kernel) IoAllocateIrp(tag string) *IRP {
	irp := k.allocateIrp(tag)
	irp.driverAllocated = true
	return irp
}

// AllocateIrp is IoAllocateIrp for the I/O manager's and filter manager's
// own IRPs (IoBuild*Request, callback data): the IRP is not marked as a
// driver's own, so completing it to the top is the normal end of its
// life (REFERENCE §1.10). Not a scheduling point.
func (l *Layer) AllocateIrp(tag string) *IRP { return l.kernel().allocateIrp(tag) }

func (k *Kernel) allocateIrp(tag string) *IRP {
	k.tick()
	irp := k.rc.irps.Take(k.sim)
	// Recycled: keep its done event; names come from the recycler's cache.
	*irp = IRP{k: k, id: len(k.irps) + 1, Tag: tag, done: irp.done}
	if irp.done == nil {
		irp.done = new(KEVENT) // the IRP's own, never from the event stock
	}
	key, doneKey := nameKey{nameIRP, irp.id, tag}, nameKey{nameIRPDone, irp.id, tag}
	var doneName string
	var ok bool
	if irp.name, ok = k.rc.cachedName(key); ok {
		doneName, _ = k.rc.cachedName(doneKey)
	} else {
		irp.name = fmt.Sprintf("irp %d", irp.id)
		if tag != "" {
			irp.name += " (" + tag + ")"
		}
		k.rc.keepName(key, irp.name)
		doneName = k.rc.keepName(doneKey, "event "+irp.name+" done")
	}
	k.tick() // KeInitializeEvent's, which this replaces
	k.resetEvent(irp.done, doneName, NotificationEvent, false)
	k.irps = append(k.irps, irp)
	return irp
}

// ID returns the IRP's number; Name its readable name.
func (i *IRP) ID() int      { return i.id }
func (i *IRP) Name() string { return i.name }

// Completed reports whether IoCompleteRequest has run for the IRP.
func (i *IRP) Completed() bool { return i.completed }

// CompletedBy names the thread, DPC or ISR whose IoCompleteRequest
// completed the IRP ("" while it is not completed), for reports of a
// second completion that a higher layer detects.
func (i *IRP) CompletedBy() string { return i.completedBy }

// completer says who completed the IRP, for reports: the actor, and, when
// the completion happened inside the cancel routine IoCancelIrp called, that
// it was the driver's cancel routine running in that actor's context.
func (i *IRP) completer() string {
	if i.completedInCancel {
		return i.completedBy + ", in the cancel routine its IoCancelIrp called"
	}
	return i.completedBy
}

// Cancelled reports the Cancel flag (without a scheduling point; use
// k.IoIsCancelled from driver code).
func (i *IRP) Cancelled() bool { return i.cancel }

// PendingReturned is Irp->PendingReturned: for an IRP with stack
// locations, whether the location just completed was marked pending (what
// a completion routine tests before propagating the mark with
// IoMarkIrpPending, REFERENCE §5.6); for one without, whether
// IoMarkIrpPending was called.
func (i *IRP) PendingReturned() bool {
	if len(i.stack) > 0 {
		return i.pendingReturned
	}
	return i.pendingMarked
}

// Done returns the notification event set when the IRP completes, so the
// issuing thread can wait for it.
func (i *IRP) Done() *KEVENT { return i.done }

// IoIsCancelled reads irp.Cancel from driver code: a scheduling point, since
// the flag is shared with a concurrent IoCancelIrp. Reading the flag of an
// IRP that is gone (see IoSetCancelRoutine) is 0xD5.
// IRQL: any; it is a read of the Cancel field (REFERENCE §1.7).
func (k *Kernel) IoIsCancelled(irp *IRP) bool {
	x := k.cur("Irp->Cancel")
	k.point(x, k.cfg.Costs.Interlocked)
	k.checkIrpAlive(x, irp, "Irp->Cancel", "read")
	return irp.cancel
}

// IoSetCancelRoutine atomically exchanges irp's cancel routine and returns
// the previous one: nil if none was set or cancellation already took it
// (REFERENCE §1.7). The exchange writes the IRP, so the caller must know the
// IRP still exists: calling it on an IRP that is gone — freed with
// IoFreeIrp, or a threaded IRP the I/O manager freed once its completion
// reached the issuing thread (a cancel routine completed it meanwhile, say)
// — is a use after free, DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL 0xD5
// (P1 the IRP). A NULL return does not make the IRP safe to touch: it says
// someone else owns it and may already have completed it (REFERENCE §1.7,
// §2.7J).
// IRQL: ≤ DISPATCH_LEVEL as Microsoft documents; the model does not check it (REFERENCE §1.7).
func (k *Kernel) IoSetCancelRoutine(irp *IRP, routine DriverCancel) DriverCancel {
	x := k.enter("IoSetCancelRoutine")
	k.checkIrpAlive(x, irp, "IoSetCancelRoutine", "cancel routine exchanged")
	prev := irp.cancelRoutine
	irp.cancelRoutine = routine
	k.emit(x, KindIRP, WhatIoSetCancelRoutine, irp.name, b2i(routine != nil), b2i(prev != nil))
	return prev
}

// IoMarkIrpPending marks irp pending; on an IRP that is gone (see
// IoSetCancelRoutine) it is 0xD5.
// IRQL: ≤ DISPATCH_LEVEL as Microsoft documents; the model does not check it (REFERENCE §5.6).
func (k *Kernel) IoMarkIrpPending(irp *IRP) {
	x := k.enter("IoMarkIrpPending")
	k.checkIrpAlive(x, irp, "IoMarkIrpPending", "marked pending")
	irp.pendingMarked = true
	if irp.current < len(irp.stack) {
		loc := &irp.stack[irp.current]
		loc.Control |= SL_PENDING_RETURNED
		loc.marked = true
	}
	k.emit(x, KindIRP, WhatIoMarkIrpPending, irp.name, 0, 0)
}

// IoAcquireCancelSpinLock acquires the global cancel spin lock and returns
// the old IRQL.
// IRQL: ≤ DISPATCH_LEVEL, checked; the caller leaves at DISPATCH_LEVEL (REFERENCE §1.7).
func (k *Kernel) IoAcquireCancelSpinLock() IRQL {
	x := k.enter("IoAcquireCancelSpinLock")
	if x.irql > DISPATCH_LEVEL {
		k.verifierOr0A(x, "IoAcquireCancelSpinLock", 0x42, "cancel spin lock above DISPATCH_LEVEL")
	}
	old := x.irql
	k.setIrql(x, DISPATCH_LEVEL)
	k.spinAcquire(x, &k.cancelLock, "IoAcquireCancelSpinLock")
	return old
}

// IoReleaseCancelSpinLock releases it and lowers IRQL to old.
// IRQL: DISPATCH_LEVEL, as the acquire left it (REFERENCE §1.7).
func (k *Kernel) IoReleaseCancelSpinLock(old IRQL) {
	x := k.enter("IoReleaseCancelSpinLock")
	k.spinRelease(x, &k.cancelLock, "IoReleaseCancelSpinLock")
	k.lowerTo(x, old)
}

// IoCancelIrp follows REFERENCE §1.7 / §2.3 step by step, each step a
// scheduling point: take the cancel spin lock, set Cancel, swap the cancel
// routine with nil; if one was set, call it holding the lock (it releases
// it) and return true — 0x48 CANCEL_STATE_IN_COMPLETED_IRP (P1 the IRP,
// P2 the cancel routine) if the IRP was already completed; otherwise
// release the lock and return false.
// Caller IRQL ≤ DISPATCH_LEVEL.
func (k *Kernel) IoCancelIrp(irp *IRP) bool {
	x := k.enter("IoCancelIrp")
	k.checkIrqlAtMost(x, "IoCancelIrp", DISPATCH_LEVEL)
	if irp.freed {
		// A driver that cancels an IRP it allocated must keep it until the
		// cancel is done; one freed by its completion routine in between is
		// freed memory (REFERENCE §2.7J). A completed threaded IRP is not
		// checked: the I/O manager's own cancel (CancelIo) no longer finds it.
		k.checkIrpAlive(x, irp, "IoCancelIrp", "cancelled")
	}
	old := k.IoAcquireCancelSpinLock()
	k.point(x, k.cfg.Costs.Interlocked)
	irp.cancel = true
	k.emit(x, KindIRP, WhatSetCancel, irp.name, 0, 0)
	k.point(x, k.cfg.Costs.Interlocked)
	routine := irp.cancelRoutine
	irp.cancelRoutine = nil
	if routine == nil {
		k.emit(x, KindIRP, WhatIoCancelIrp, irp.name, 0, 0)
		k.IoReleaseCancelSpinLock(old)
		return false
	}
	if irp.completed {
		k.bugCheck(x, "IoCancelIrp", CANCEL_STATE_IN_COMPLETED_IRP, uint64(irp.id), routineMarker, 0, 0,
			irp.name+": cancel routine invoked on an already-completed IRP")
	}
	irp.CancelIrql = old
	k.emit(x, KindIRP, WhatIoCancelIrp, irp.name, 1, 0)
	irp.inCancelRoutine = true
	routine(irp)
	irp.inCancelRoutine = false
	return true
}

// routineMarker stands for a routine's address in bug-check parameters:
// the model has no addresses, so a set routine is reported as 1 (non-NULL)
// and named in the report's detail; IRPs are reported by number.
const routineMarker = 1

// VerifyCancelCompletes is a workload helper: it models Driver Verifier's
// check that a cancelled IRP is completed in time (bug check 0xC4
// DRIVER_VERIFIER_DETECTED_VIOLATION with P1 = 0x135, P2 the IRP). The
// calling thread — the workload's canceller, after IoCancelIrp — waits up
// to deadline for irp to complete; if it has not, the run stops with that
// bug check. Scenarios scale deadline down with their own delays. Caller
// IRQL PASSIVE_LEVEL (it waits).
func (k *Kernel) VerifyCancelCompletes(irp *IRP, deadline des.Duration) {
	if k.KeWaitForSingleObject(irp.done, deadline) == STATUS_TIMEOUT {
		k.bugCheck(k.curOrNil(), "IoCancelIrp (Verifier)", DRIVER_VERIFIER_DETECTED_VIOLATION, 0x135, uint64(irp.id), 0, 0,
			fmt.Sprintf("%s was cancelled but not completed within %v", irp.name, deadline))
	}
}

// IoCompleteRequest completes irp. A second completion is 0x44
// MULTIPLE_IRP_COMPLETE_REQUESTS; with Verifier, completing with a cancel
// routine still set is 0xC9 P1=0x7 (P2 the routine, P3 the IRP) and with
// STATUS_PENDING 0xC9 P1=0x6 (P2 the status, P3 the IRP), parameters in
// the documented order (REFERENCE §1.7, §1.8). Caller IRQL ≤
// DISPATCH_LEVEL. The issuing thread
// waiting on irp.Done() gets priorityBoost.
func (k *Kernel) IoCompleteRequest(irp *IRP, priorityBoost int) {
	if irp == nil {
		k.nilObject("IoCompleteRequest", "Irp", touchAtCaller)
	}
	x := k.enter("IoCompleteRequest")
	k.checkIrqlAtMost(x, "IoCompleteRequest", DISPATCH_LEVEL)
	switch {
	case irp.freed:
		k.bugCheck(x, "IoCompleteRequest", DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL, uint64(irp.id), 0, 0, 0, irp.name+" completed after it was freed")
	case irp.completed:
		k.bugCheck(x, "IoCompleteRequest", MULTIPLE_IRP_COMPLETE_REQUESTS, uint64(irp.id), 0, 0, 0,
			fmt.Sprintf("%s completed twice (first by %s)", irp.name, irp.completer()))
	case k.cfg.Verifier && irp.cancelRoutine != nil:
		k.bugCheck(x, "IoCompleteRequest", DRIVER_VERIFIER_IOMANAGER_VIOLATION, 0x7, routineMarker, uint64(irp.id), 0,
			irp.name+" completed with its cancel routine still set")
	case k.cfg.Verifier && irp.IoStatus.Status == STATUS_PENDING:
		k.bugCheck(x, "IoCompleteRequest", DRIVER_VERIFIER_IOMANAGER_VIOLATION, 0x6, uint64(irp.IoStatus.Status), uint64(irp.id), 0,
			irp.name+" completed with STATUS_PENDING")
	}
	k.emit(x, KindIRP, WhatIoCompleteRequest, irp.name, int64(irp.IoStatus.Status), int64(priorityBoost))
	if len(irp.stack) > 0 && !k.completeStack(x, irp) {
		return // STATUS_MORE_PROCESSING_REQUIRED: the routine's driver owns the IRP again
	}
	k.checkCompletedToTop(x, irp)
	irp.completed = true
	irp.completedBy = x.name
	irp.completedInCancel = irp.inCancelRoutine
	irp.runWhenDone()
	if irp.deferred && !irp.pendingReturned {
		return // the issuer finishes it after IoCallDriver returns (Layer.FinishDeferred)
	}
	if t := irp.thread; t != nil && t.state != Terminated {
		k.queueApc(x, k.completionApc(irp), nil, nil, priorityBoost)
		return
	}
	k.finishIrp(irp, priorityBoost)
}

// IoQueueThreadIrp makes irp a threaded IRP of the calling thread
// (Irp->Tail.Overlay.Thread): its completion is then delivered to this
// thread by the I/O completion special kernel APC, which runs only when
// the thread is below APC_LEVEL and outside guarded regions — a thread
// that waits for its own IRP at APC_LEVEL or in a guarded region hangs
// (REFERENCE §4.10). IRQL ≤ APC_LEVEL, from a thread.
func (k *Kernel) IoQueueThreadIrp(irp *IRP) {
	x := k.enter("IoQueueThreadIrp")
	k.checkIrqlAtMost(x, "IoQueueThreadIrp", APC_LEVEL)
	if x.kind != execThread {
		panic("kernel: IoQueueThreadIrp called outside a thread")
	}
	irp.thread = x.thread
	k.emit(x, KindIRP, WhatIoQueueThreadIrp, irp.name, int64(x.thread.id), 0)
}

// Thread returns the thread a threaded IRP completes to (nil otherwise).
func (i *IRP) Thread() *Thread { return i.thread }

// completionApc builds the I/O completion APC of irp (the role of the I/O
// manager's IopCompleteRequest): a special kernel APC to the IRP's thread.
func (k *Kernel) completionApc(irp *IRP) *KAPC {
	apc := k.KeInitializeApc(irp.thread, "IopCompleteRequest "+irp.name, func(*KAPC, *ApcNormalRoutine, *any, *any, *any) {
		k.finishIrp(irp, 0)
	}, nil, KernelMode, nil)
	apc.signals, apc.signalsIrp = &irp.done.dispatcherHeader, irp
	return apc
}

// finishIrp is the last step of completion, in the issuer's context for a
// threaded IRP: the status block and event the issuer gave, then the
// IRP's own done event.
func (k *Kernel) finishIrp(irp *IRP, priorityBoost int) {
	irp.finished = true
	if irp.UserIosb != nil {
		*irp.UserIosb = irp.IoStatus
	}
	if e := irp.UserEvent; e != nil {
		k.signal(&e.dispatcherHeader, 1, priorityBoost)
	}
	k.signal(&irp.done.dispatcherHeader, 1, priorityBoost)
}

// IoFreeIrp releases an IRP the caller allocated and owns (uncompleted
// IRPs freed this way are not leaks): one it has not sent, or one whose
// completion it stopped in its completion routine (which may free it
// there, then return STATUS_MORE_PROCESSING_REQUIRED). Freeing it twice is
// a use after free, 0xD5 (P1 the IRP); with Verifier, freeing it while it
// is still in use — a cancel routine set, a stack location current (sent
// and not back), a stackless IRP pended and not completed — is 0xC9
// P1=0x20B, and while it is queued to a thread 0xC9 P1=0x20C (BC:0xC9;
// REFERENCE §1.9). A threaded IRP is the I/O manager's: after its
// completion reached the thread it is already freed (0xD5).
// IRQL: ≤ DISPATCH_LEVEL as Microsoft documents; the model does not check it (REFERENCE §5.6).
func (k *Kernel) IoFreeIrp(irp *IRP) {
	x := k.enter("IoFreeIrp")
	k.checkOwned(x, irp, "IoFreeIrp", "freed")
	irp.freed = true
	irp.runWhenDone() // freed after STATUS_MORE_PROCESSING_REQUIRED: never completes
}

// WhenIrpDone asks for f(arg) once irp is done with: when IoCompleteRequest
// has completed it to the top, or when it is freed first. One per IRP: a
// second call while one is pending is refused. It reports whether f was
// registered. Not a scheduling point; f must not be one either. Package
// queues uses it for the device reference an issued IRP holds (REFERENCE
// §6.8).
func (l *Layer) WhenIrpDone(irp *IRP, f func(any), arg any) bool {
	if irp.whenDone != nil || irp.completed || irp.freed {
		return false
	}
	irp.whenDone, irp.whenDoneArg = f, arg
	return true
}

func (irp *IRP) runWhenDone() {
	if f := irp.whenDone; f != nil {
		arg := irp.whenDoneArg
		irp.whenDone, irp.whenDoneArg = nil, nil
		f(arg)
	}
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
