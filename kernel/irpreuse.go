package kernel

import "fmt"

// I/O Verifier codes of an IRP destroyed while still in use (BC:0xC9):
// documented for IoFreeIrp, and applied by the model to IoReuseIrp too,
// which wipes the IRP the same way (REFERENCE §1.9).
const (
	verifierIrpInUse        = 0x20B // still in use: queued cancelably, or a driver's stack location current
	verifierIrpThreadQueued = 0x20C // still queued against a thread
)

// IoReuseIrp reinitializes irp, an IRP the calling driver allocated with
// IoAllocateIrp and owns again, so it can be sent once more: as
// IoInitializeIrp, everything is cleared — the Cancel flag and cancel
// IRQL, the pending marks (PendingReturned), the flags, driver context,
// file object, user event and status block, every stack location's
// parameters and completion routine, and the current location goes back
// above the top, as after IoAllocateIrp — then IoStatus.Status is set to
// status and IoStatus.Information to 0. The IRP's number, name and its
// Done event (cleared) are kept. The driver still frees it with IoFreeIrp
// when it is done with it (DDI:IoReuseIrp; WDD:kernel/reusing-irps;
// RO:ntoskrnl/io/iomgr/irp.c IoReuseIrp).
//
// The driver owns the IRP again when it has not sent it yet, when it
// was completed to the top, or when the driver's own completion routine
// returned STATUS_MORE_PROCESSING_REQUIRED (the usual place to reuse it).
// Reusing an IRP that is not the caller's to reuse is a driver bug:
// a freed IRP is a use after free, DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL
// 0xD5 (P1 the IRP); with Verifier, an IRP still in use — a cancel
// routine set (it sits in a cancelable queue), a stack location current
// (it was sent and has not completed back to the caller), or, for an IRP
// without stack locations, marked pending and not completed — is 0xC9 P1=0x20B, and a threaded IRP
// (IoQueueThreadIrp, IoBuildSynchronousFsdRequest: the I/O manager's, not
// the driver's) still queued to its thread is 0xC9 P1=0x20C; a threaded
// IRP already completed was freed by the I/O manager, 0xD5 (REFERENCE
// §1.9). Without Verifier an IRP in use is reinitialized anyway, as on a
// free build.
//
// IRQL: ≤ DISPATCH_LEVEL, checked (IRQL_NOT_LESS_OR_EQUAL 0xA above it;
// REFERENCE §1.9). A scheduling point.
func (k *Kernel) IoReuseIrp(irp *IRP, status NTSTATUS) {
	x := k.enter("IoReuseIrp")
	k.checkIrqlAtMost(x, "IoReuseIrp", DISPATCH_LEVEL)
	k.checkOwned(x, irp, "IoReuseIrp", "reused")
	k.emit(x, KindIRP, WhatIoReuseIrp, irp.name, int64(status), 0)
	irp.reinitialize(status)
}

// checkOwned reports api (IoReuseIrp, IoFreeIrp) on an IRP its caller no
// longer owns: freed (0xD5), or, with Verifier, still in use (0xC9
// P1=0x20B) or queued to a thread (0x20C). did says what the caller did,
// for the report ("reused", "freed").
func (k *Kernel) checkOwned(x *exec, irp *IRP, api, did string) {
	k.checkIrpAlive(x, irp, api, did)
	switch {
	case irp.thread != nil:
		k.verifierIo(x, api, verifierIrpThreadQueued, 0, irp,
			fmt.Sprintf("%s while still queued to thread %s (a threaded IRP is the I/O manager's to free)", did, irp.thread.name))
	case irp.cancelRoutine != nil:
		k.verifierIo(x, api, verifierIrpInUse, 0, irp, did+" with a cancel routine set: it is still in a cancelable queue")
	case irp.current < len(irp.stack):
		k.verifierIo(x, api, verifierIrpInUse, 0, irp,
			fmt.Sprintf("%s while stack location %d is current: it was sent and has not completed back to its owner", did, irp.current))
	case len(irp.stack) == 0 && irp.pendingMarked && !irp.completed:
		// An IRP without stack locations is handed over, not sent: the
		// driver that marked it pending holds it until it completes it.
		k.verifierIo(x, api, verifierIrpInUse, 0, irp, did+" while marked pending and not completed: a driver still holds it")
	}
}

// reinitialize is IoInitializeIrp on irp's own storage followed by the
// status: what IoReuseIrp leaves. The allocation (number, name, Done
// event, the higher layer's release hook) is kept.
func (irp *IRP) reinitialize(status NTSTATUS) {
	irp.Flags, irp.CancelIrql, irp.DriverContext = 0, 0, [4]any{}
	irp.FileObject, irp.TopLevel = nil, false
	irp.IoStatus = IO_STATUS_BLOCK{Status: status}
	irp.cancel, irp.cancelRoutine = false, nil
	irp.pendingMarked, irp.pendingReturned = false, false
	irp.completed, irp.completedBy, irp.finished, irp.deferred = false, "", false, false
	irp.inCancelRoutine, irp.completedInCancel = false, false
	irp.thread, irp.UserEvent, irp.UserIosb = nil, nil, nil
	clear(irp.stack)
	irp.current = len(irp.stack)
	irp.done.state = 0
	irp.reuses++
}

// checkReuseInCompletion reports a completion routine that reused irp
// (IoReuseIrp) and then let completion go on instead of returning
// STATUS_MORE_PROCESSING_REQUIRED: the I/O manager goes on completing an
// IRP its owner has already reinitialized (REFERENCE §1.9).
func (k *Kernel) checkReuseInCompletion(x *exec, irp *IRP, before uint32) {
	if irp.reuses != before {
		k.verifierIo(x, "IoCompleteRequest", verifierIrpInUse, 0, irp,
			"a completion routine reused it (IoReuseIrp) and did not return STATUS_MORE_PROCESSING_REQUIRED; completion went on over the reinitialized IRP")
	}
}

// checkCompletedToTop reports a driver's own IRP whose completion reached
// the top of its stack: it has no thread for the I/O manager to finish it
// in (the I/O manager queues its completion APC to
// Irp->Tail.Overlay.Thread, NULL for IoAllocateIrp's IRPs; REFERENCE
// §1.10). The allocating driver must stop completion in its completion
// routine (free the IRP, or keep it, and return
// STATUS_MORE_PROCESSING_REQUIRED). An IRP queued to a thread
// (IoQueueThreadIrp) completes to that thread and is not reported; IRPs
// without stack locations are requests completed straight to their owner.
func (k *Kernel) checkCompletedToTop(x *exec, irp *IRP) {
	if !irp.driverAllocated || irp.thread != nil || len(irp.stack) == 0 {
		return
	}
	detail := irp.name + " was allocated by a driver (IoAllocateIrp) and completed to the top of its stack: it has no thread, and the I/O manager's completion dereferences the NULL thread; " +
		"the allocating driver's completion routine must free or keep it and return STATUS_MORE_PROCESSING_REQUIRED"
	if x.irql >= DISPATCH_LEVEL {
		// A page fault at DISPATCH_LEVEL or above in the kernel's own code
		// is not an exception but IRQL_NOT_LESS_OR_EQUAL (P1 the address).
		k.bugCheck(x, "IoCompleteRequest", IRQL_NOT_LESS_OR_EQUAL, 0, uint64(x.irql), 0, 0, detail)
	}
	k.raiseUnhandled(x, "IoCompleteRequest", STATUS_ACCESS_VIOLATION, detail)
}

// checkIrpAlive reports api touching an IRP whose memory is gone as a use
// after free, 0xD5 with P1 the IRP (REFERENCE §1.9, §2.7J): one freed with
// IoFreeIrp, or a threaded IRP the I/O manager freed when its completion
// reached the issuing thread. did says what the caller did, for the report.
// An IRP without a thread that was completed is not gone: its issuer owns
// it and may keep it.
func (k *Kernel) checkIrpAlive(x *exec, irp *IRP, api, did string) {
	switch {
	case irp.freed:
		k.bugCheck(x, api, DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL, uint64(irp.id), 0, 0, 0,
			irp.name+" "+did+" after it was freed (IoFreeIrp)")
	case irp.thread != nil && irp.finished:
		k.bugCheck(x, api, DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL, uint64(irp.id), 0, 0, 0,
			fmt.Sprintf("%s %s after it was completed (by %s) and freed: it is a threaded IRP, which the I/O manager freed when its completion reached thread %s",
				irp.name, did, irp.completer(), irp.thread.name))
	}
}
