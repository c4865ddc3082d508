package reports

import (
	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
)

// microsoft/Windows-driver-samples PR #217 ("Serial driver bug fix"): a
// request that has a cancel routine must have it cleared before it is
// completed, otherwise the queue gets corrupted; the authors hit it as a
// bug check in an interrupt storm. In WDM terms: the read that waits for
// data carries a cancel routine, and the DPC that delivers the data
// completes it. Completing it with the routine still set is Driver
// Verifier's 0xC9 P1=0x7; the fix clears it with IoSetCancelRoutine(NULL)
// and, when that returns NULL, leaves the IRP to the cancel routine that
// is already running.

var markSerial217CompletedWithCancelRoutine = model.NewMark("serial-217: DPC completed a read that was waiting with a cancel routine")

func init() {
	model.Register(&model.Scenario{
		Name: "serial-217",
		Doc: "A serial driver's read completes at once when data is buffered and otherwise waits with a cancel " +
			"routine; the receive DPC completes the waiting read. The DPC must clear the cancel routine first and " +
			"back off if cancellation already owns the IRP; the app may cancel the read at any time. Report: " +
			"github.com/microsoft/Windows-driver-samples pull #217.",
		Section: "report: Windows-driver-samples #217",
		Variants: []model.Variant{
			{Name: "correct", Doc: "#217: IoSetCancelRoutine(NULL) before completing; NULL means the cancel routine owns it"},
			{Name: "cancel-routine-set", Bug: true, Doc: "before #217: the DPC completes the read with its cancel routine set",
				Marks: []*model.Mark{markSerial217CompletedWithCancelRoutine}, Want: "0xC9"},
		},
		Setup: setupSerial,
	})
}

type serialExt struct {
	env      *model.Env
	k        *kernel.Kernel
	lock     *kernel.KSPIN_LOCK
	buffered bool
	waiting  *kernel.IRP // the read waiting for data
	dpc      *kernel.KDPC
}

// read is IRP_MJ_READ.
func (x *serialExt) read(irp *kernel.IRP) {
	k := x.k
	old := k.KeAcquireSpinLock(x.lock)
	if x.buffered {
		x.buffered = false
		k.KeReleaseSpinLock(x.lock, old)
		irp.IoStatus.Status = kernel.STATUS_SUCCESS
		k.IoCompleteRequest(irp, kernel.IO_NO_INCREMENT)
		return
	}
	k.IoMarkIrpPending(irp)
	x.waiting = irp
	k.IoSetCancelRoutine(irp, x.cancel)
	k.KeReleaseSpinLock(x.lock, old)
}

// received is the receive DPC: hand the data to the waiting read.
func (x *serialExt) received(*kernel.KDPC, any, any, any) {
	k := x.k
	k.KeAcquireSpinLockAtDpcLevel(x.lock)
	irp := x.waiting
	if irp == nil {
		x.buffered = true
		k.KeReleaseSpinLockFromDpcLevel(x.lock)
		return
	}
	x.waiting = nil
	if x.env.Is("correct") && k.IoSetCancelRoutine(irp, nil) == nil {
		// The cancel routine is running; it owns the IRP. Keep the data.
		x.buffered = true
		k.KeReleaseSpinLockFromDpcLevel(x.lock)
		return
	}
	k.KeReleaseSpinLockFromDpcLevel(x.lock)
	x.env.Hit(markSerial217CompletedWithCancelRoutine)
	irp.IoStatus.Status = kernel.STATUS_SUCCESS
	k.IoCompleteRequest(irp, kernel.IO_NO_INCREMENT)
}

// cancel is the read's cancel routine.
func (x *serialExt) cancel(irp *kernel.IRP) {
	k := x.k
	k.IoReleaseCancelSpinLock(irp.CancelIrql)
	old := k.KeAcquireSpinLock(x.lock)
	if x.waiting == irp {
		x.waiting = nil
	}
	k.KeReleaseSpinLock(x.lock, old)
	irp.IoStatus.Status = kernel.STATUS_CANCELLED
	k.IoCompleteRequest(irp, kernel.IO_NO_INCREMENT)
}

func setupSerial(env *model.Env) error {
	k := env.K
	x := &serialExt{env: env, k: k, lock: k.KeInitializeSpinLock("serial lock")}
	x.dpc = k.KeInitializeDpc("serial receive dpc", x.received, nil)
	k.PsCreateSystemThread("app", threadPriority, func() {
		irp := k.IoAllocateIrp("Read")
		uart := k.PsCreateSystemThread("uart", threadPriority, func() {
			// Plainly the byte is buffered before the read; or it
			// arrives while the read waits.
			when := []des.Duration{0, 10 * des.Microsecond}
			k.Compute(when[env.Choose("serial-217: the byte arrives", len(when))])
			k.KeInsertQueueDpc(x.dpc, nil, nil)
		})
		k.Compute(5 * des.Microsecond)
		x.read(irp)
		// Plainly the app never cancels; or it gives up on the read.
		if env.Choose("serial-217: the app cancels the read", 2) == 1 {
			arrive(env, "serial-217: when the app cancels")
			k.IoCancelIrp(irp)
		}
		k.KeWaitForSingleObject(irp.Done(), kernel.Infinite)
		k.KeWaitForSingleObject(uart.Object(), kernel.Infinite)
		k.IoFreeIrp(irp)
	})
	return nil
}
