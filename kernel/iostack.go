package kernel

import "fmt"

// NO_MORE_IRP_STACK_LOCATIONS is the bug check of an IoCallDriver with no
// stack location left (REFERENCE §5.6).
const NO_MORE_IRP_STACK_LOCATIONS uint32 = 0x35

// IO_STACK_LOCATION.Control bits (wdm.h; REFERENCE §5.6).
const (
	SL_PENDING_RETURNED  uint8 = 0x01
	SL_INVOKE_ON_CANCEL  uint8 = 0x20
	SL_INVOKE_ON_SUCCESS uint8 = 0x40
	SL_INVOKE_ON_ERROR   uint8 = 0x80
)

// IO_COMPLETION_ROUTINE is a completion routine set with
// IoSetCompletionRoutine. It runs in whatever context completes the IRP,
// at that context's IRQL (≤ DISPATCH_LEVEL), with the device object of
// the driver that set it (nil for the issuer's own location). Returning
// STATUS_MORE_PROCESSING_REQUIRED stops completion: the routine's driver
// owns the IRP again and must complete or free it. Otherwise, if
// irp.PendingReturned() it must call IoMarkIrpPending (Verifier 0xC9
// P1=0x228). REFERENCE §5.6.
type IO_COMPLETION_ROUTINE func(device any, irp *IRP, ctx any) NTSTATUS

// IO_STACK_LOCATION is one driver's part of an IRP.
type IO_STACK_LOCATION struct {
	MajorFunction, MinorFunction uint8
	Control                      uint8
	// DeviceObject is the device whose dispatch routine received the IRP
	// at this location (set by IoCallDriver).
	DeviceObject      any
	Parameters        any
	CompletionRoutine IO_COMPLETION_ROUTINE
	Context           any

	marked       bool   // IoMarkIrpPending was called at this location (kept for the Verifier's return check)
	image        *Image // the driver image of CompletionRoutine, nil for none (image.go)
	belowPending bool   // an IoCallDriver from this location returned STATUS_PENDING: the mark comes with completion
}

// AllocateIrpStack gives irp stackSize stack locations, none current yet:
// the first IoCallDriver makes location stackSize-1 (the highest) current.
// For IoBuild*Request and the I/O manager's own IRPs; an IRP without stack
// locations is completed directly by whoever owns it. REFERENCE §5.6.
func (l *Layer) AllocateIrpStack(irp *IRP, stackSize int) {
	irp.stack = make([]IO_STACK_LOCATION, stackSize)
	irp.current = stackSize
}

// StackCount returns the IRP's number of stack locations.
func (i *IRP) StackCount() int { return len(i.stack) }

// CurrentLocation returns the index of the current stack location
// (StackCount when none is current yet, as Irp->CurrentLocation-1).
func (i *IRP) CurrentLocation() int { return i.current }

// IoGetCurrentIrpStackLocation returns the caller's stack location: the
// one IoCallDriver made current for its dispatch routine.
// IRQL: any (REFERENCE §5.6).
func (k *Kernel) IoGetCurrentIrpStackLocation(irp *IRP) *IO_STACK_LOCATION {
	if irp.current >= len(irp.stack) {
		panic(fmt.Sprintf("kernel: IoGetCurrentIrpStackLocation(%s): no current stack location", irp.name))
	}
	return &irp.stack[irp.current]
}

// IoGetNextIrpStackLocation returns the location of the next-lower driver,
// where the caller sets the parameters and its completion routine before
// IoCallDriver.
// IRQL: any (REFERENCE §5.6).
func (k *Kernel) IoGetNextIrpStackLocation(irp *IRP) *IO_STACK_LOCATION {
	if irp.current == 0 {
		k.bugCheck(k.curOrNil(), "IoGetNextIrpStackLocation", NO_MORE_IRP_STACK_LOCATIONS, uint64(irp.id), 0, 0, 0,
			irp.name+" has no stack location below the current one")
	}
	return &irp.stack[irp.current-1]
}

// IoCopyCurrentIrpStackLocationToNext copies the caller's location to the
// next one, without the completion routine and control bits, so the lower
// driver sees the same parameters. Any IRQL. REFERENCE §5.6.
func (k *Kernel) IoCopyCurrentIrpStackLocationToNext(irp *IRP) {
	cur := k.IoGetCurrentIrpStackLocation(irp)
	next := k.IoGetNextIrpStackLocation(irp)
	*next = IO_STACK_LOCATION{MajorFunction: cur.MajorFunction, MinorFunction: cur.MinorFunction, Parameters: cur.Parameters}
}

// IoSkipCurrentIrpStackLocation makes the lower driver use the caller's
// own location: the caller sets no completion routine and will not see the
// IRP again. Any IRQL. REFERENCE §5.6.
func (k *Kernel) IoSkipCurrentIrpStackLocation(irp *IRP) {
	k.IoGetCurrentIrpStackLocation(irp)
	irp.current++
}

// IoSetCompletionRoutine sets routine in the next-lower location, to be
// called during completion when the final status is a success
// (invokeOnSuccess), an error (invokeOnError) or the IRP was cancelled
// (invokeOnCancel). Any IRQL. REFERENCE §5.6.
func (k *Kernel) IoSetCompletionRoutine(irp *IRP, routine IO_COMPLETION_ROUTINE, ctx any, invokeOnSuccess, invokeOnError, invokeOnCancel bool) {
	next := k.IoGetNextIrpStackLocation(irp)
	next.CompletionRoutine, next.Context, next.image = routine, ctx, k.currentImage()
	next.Control &^= SL_INVOKE_ON_SUCCESS | SL_INVOKE_ON_ERROR | SL_INVOKE_ON_CANCEL
	if invokeOnSuccess {
		next.Control |= SL_INVOKE_ON_SUCCESS
	}
	if invokeOnError {
		next.Control |= SL_INVOKE_ON_ERROR
	}
	if invokeOnCancel {
		next.Control |= SL_INVOKE_ON_CANCEL
	}
}

// CallDriver is the core of IoCallDriver for the layer that owns device
// objects (REFERENCE §5.6): it makes the next location current for device
// (NO_MORE_IRP_STACK_LOCATIONS 0x35 if there is none), calls dispatch and
// applies the I/O Verifier's checks on what it returns — IRQL changed by
// the dispatch routine (0xC9 P1=0x05), STATUS_PENDING returned without
// IoMarkIrpPending and without a lower driver having returned it (then the
// mark comes back up with completion, P1=0x23D), and a location marked
// pending with another
// status returned (P1=0x23E). Caller IRQL ≤ DISPATCH_LEVEL (0xC9 P1=0x10
// above it with Verifier).
func (l *Layer) CallDriver(irp *IRP, device any, dispatch func() NTSTATUS) NTSTATUS {
	k := l.kernel()
	x := k.enter("IoCallDriver")
	if x.irql > DISPATCH_LEVEL {
		k.verifierIo(x, "IoCallDriver", 0x10, uint64(x.irql), irp, "IoCallDriver called above DISPATCH_LEVEL")
		k.checkIrqlAtMost(x, "IoCallDriver", DISPATCH_LEVEL)
	}
	if irp.current == 0 {
		k.bugCheck(x, "IoCallDriver", NO_MORE_IRP_STACK_LOCATIONS, uint64(irp.id), 0, 0, 0, irp.name+" has no stack location left")
	}
	irp.current--
	at := irp.current
	loc := &irp.stack[at]
	loc.DeviceObject = device
	loc.marked, loc.belowPending = false, false
	k.emit(x, KindIRP, WhatIoCallDriver, irp.name, int64(irp.current), 0)
	before := x.irql
	st := dispatch()
	if x.irql != before {
		k.verifierIo(x, "IoCallDriver", 0x05, uint64(before), irp, fmt.Sprintf("the dispatch routine returned at %v, called at %v", x.irql, before))
	}
	if st == STATUS_PENDING && at+1 < len(irp.stack) {
		irp.stack[at+1].belowPending = true
	}
	switch {
	case st == STATUS_PENDING && !loc.marked && !loc.belowPending:
		k.verifierIo(x, "IoCallDriver", 0x23D, uint64(irp.id), irp, "a dispatch routine returned STATUS_PENDING without IoMarkIrpPending")
	case st != STATUS_PENDING && loc.marked:
		k.verifierIo(x, "IoCallDriver", 0x23E, uint64(irp.id), irp, fmt.Sprintf("a dispatch routine marked the IRP pending but returned %v", st))
	}
	return st
}

// verifierIo raises an I/O Verification error: bug check 0xC9 with the
// error code as P1, when Verifier is on (REFERENCE §5.6).
func (k *Kernel) verifierIo(x *exec, api string, code, p2 uint64, irp *IRP, detail string) {
	if k.cfg.Verifier {
		k.bugCheck(x, api, DRIVER_VERIFIER_IOMANAGER_VIOLATION, code, p2, uint64(irp.id), 0, irp.name+": "+detail)
	}
}

// completeStack runs the completion routines of irp's locations from the
// current one up (WRK IopfCompleteRequest; REFERENCE §5.6), in the
// completing context and at its IRQL, and reports whether completion goes
// on to the issuer (false: a routine returned
// STATUS_MORE_PROCESSING_REQUIRED and owns the IRP again).
func (k *Kernel) completeStack(x *exec, irp *IRP) bool {
	for irp.current < len(irp.stack) {
		loc := &irp.stack[irp.current]
		irp.pendingReturned = loc.Control&SL_PENDING_RETURNED != 0
		irp.current++
		routine, ctx, control, img := loc.CompletionRoutine, loc.Context, loc.Control, loc.image
		loc.Control, loc.CompletionRoutine, loc.Context, loc.image = 0, nil, nil, nil
		st := irp.IoStatus.Status
		invoke := routine != nil && ((NT_SUCCESS(st) && control&SL_INVOKE_ON_SUCCESS != 0) ||
			(!NT_SUCCESS(st) && control&SL_INVOKE_ON_ERROR != 0) || (irp.cancel && control&SL_INVOKE_ON_CANCEL != 0))
		if !invoke {
			if irp.pendingReturned && irp.current < len(irp.stack) {
				irp.stack[irp.current].Control |= SL_PENDING_RETURNED // the I/O manager propagates the mark
			}
			continue
		}
		var dev any
		if irp.current < len(irp.stack) {
			dev = irp.stack[irp.current].DeviceObject
		}
		k.emit(x, KindIRP, WhatCompletionRoutine, irp.name, int64(irp.current), int64(st))
		if img != nil && img.unloaded {
			k.unloadedCompletionRoutine(x, irp, img)
		}
		reuses := irp.reuses
		if routine(dev, irp, ctx) == STATUS_MORE_PROCESSING_REQUIRED {
			k.emit(x, KindIRP, WhatMoreProcessingRequired, irp.name, int64(irp.current), 0)
			return false
		}
		k.checkReuseInCompletion(x, irp, reuses)
		if irp.freed {
			// The routine freed the IRP and let completion go on: the I/O
			// manager's next read of the IRP is in freed (special) pool.
			k.bugCheck(x, "IoCompleteRequest", DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL, uint64(irp.id), 0, 0, 0,
				irp.name+": a completion routine freed it (IoFreeIrp) and did not return STATUS_MORE_PROCESSING_REQUIRED; completion went on in freed memory")
		}
		if irp.pendingReturned && irp.current < len(irp.stack) && irp.stack[irp.current].Control&SL_PENDING_RETURNED == 0 {
			k.verifierIo(x, "IoCompleteRequest", 0x228, uint64(irp.id), irp, "a completion routine did not call IoMarkIrpPending although Irp->PendingReturned was set")
		}
	}
	return true
}

// DeferIrpCompletion marks irp as the I/O manager's own request whose
// completion it finishes itself when the dispatch routines did not return
// STATUS_PENDING (IRP_DEFER_IO_COMPLETION): IoCompleteRequest then queues
// no completion APC, and the issuer calls FinishDeferred after
// IoCallDriver returns. If a driver returned STATUS_PENDING without the
// pending mark reaching the top location, nobody finishes the IRP: the
// issuer's wait hangs, the consequence Verifier's 0x228/0x23D warn of
// (REFERENCE §5.6).
func (l *Layer) DeferIrpCompletion(irp *IRP) { irp.deferred = true }

// FinishDeferred finishes, in the calling issuer, a deferred-completion IRP
// whose IoCallDriver returned a status other than STATUS_PENDING and that
// has completed (REFERENCE §5.6). It reports whether it did.
func (l *Layer) FinishDeferred(irp *IRP) bool {
	if !irp.deferred || !irp.completed || irp.pendingReturned || irp.finished {
		return false
	}
	l.kernel().finishIrp(irp, 0)
	return true
}

// ContextThread returns the thread whose context the calling code runs in:
// the calling thread, or — in a DPC or an ISR — the thread its processor
// was running when interrupted (nil if it was idle). Thread-relative state
// such as the TopLevelIrp is read from it: a post-op run by a DPC sees the
// interrupted thread's, not the issuer's (REFERENCE §5.7). Any IRQL.
func (l *Layer) ContextThread() *Thread { return l.kernel().KeGetCurrentThread() }
