package drivers

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/queues"
)

// DeviceStack is a two-driver stack. The lower driver pends every request
// on its own list (an in-stack queued spin lock, its own cancel routine)
// and completes them from a timer DPC. The upper driver handles a read by
// forward-and-wait (an event, a completion routine that returns
// STATUS_MORE_PROCESSING_REQUIRED, then its own IoCompleteRequest) and
// passes a write through with a completion routine that propagates the
// pending mark. The application sends both as asynchronous IRPs with its
// own completion routine and cancels them at a time the workload chooses.
var DeviceStack = &model.Scenario{
	Name: "devicestack",
	Doc: "An upper driver over a lower one that pends requests and completes them from a timer DPC. Reads are " +
		"forward-and-wait (STATUS_MORE_PROCESSING_REQUIRED), writes pass through; the application cancels both. " +
		"The bug lets the read's completion routine continue completion, so the upper driver completes it twice.",
	Section: "REFERENCE §1.7, §5.6",
	Variants: []model.Variant{
		{Name: "correct", Doc: "the forward-and-wait completion routine signals and returns STATUS_MORE_PROCESSING_REQUIRED"},
		{Name: "continue", Bug: true, Doc: "the forward-and-wait completion routine propagates the pending mark and returns STATUS_SUCCESS, as a pass-through one does; the dispatch routine then completes the IRP again (0x44), or after the application freed it (0xD5), or Verifier sees the mark with a final status (0xC9/0x23E)",
			Want: "0x44|0x23E|0xD5"},
	},
	Setup: stackSetup,
}

// lowerExt is the lower device's extension.
type lowerExt struct {
	env   *model.Env
	k     *kernel.Kernel
	lock  *kernel.KSPIN_LOCK
	head  kernel.LIST_ENTRY
	links map[*kernel.IRP]*kernel.LIST_ENTRY
	timer *kernel.KTIMER
	dpc   *kernel.KDPC
}

// upperExt is the upper device's extension.
type upperExt struct {
	env   *model.Env
	k     *kernel.Kernel
	sys   *queues.System
	lower *queues.DEVICE_OBJECT
}

func stackSetup(env *model.Env) error {
	k := env.K
	sys, err := queues.NewSystem(k, queues.DefaultPoolConfig())
	if err != nil {
		return err
	}
	lx := &lowerExt{env: env, k: k, links: map[*kernel.IRP]*kernel.LIST_ENTRY{}}
	ux := &upperExt{env: env, k: k, sys: sys}
	var top *queues.DEVICE_OBJECT
	var irps []*kernel.IRP
	var statuses []kernel.NTSTATUS
	k.PsCreateSystemThread("app", 8, func() {
		lowerDrv, st := sys.LoadDriver("lower", lx.driverEntry(sys))
		if st != kernel.STATUS_SUCCESS {
			env.Violation("driver loads", "lower: %v", st)
			return
		}
		upperDrv, st := sys.LoadDriver("upper", ux.driverEntry)
		if st != kernel.STATUS_SUCCESS {
			env.Violation("driver loads", "upper: %v", st)
			return
		}
		top = upperDrv.Devices()[0]
		ux.lower = sys.IoAttachDeviceToDeviceStack(top, lowerDrv.Devices()[0])
		irps, statuses = stackApp(env, sys, top)
	})
	env.AtEnd("every request completed once", func() error {
		if len(irps) != 3 {
			return fmt.Errorf("%d requests sent", len(irps))
		}
		for i, st := range statuses {
			if st != kernel.STATUS_SUCCESS && st != kernel.STATUS_CANCELLED {
				return fmt.Errorf("request %d ended with %v", i, st)
			}
		}
		return nil
	})
	return nil
}

// stackApp sends a read and two writes as asynchronous IRPs, each with a
// completion routine that signals an event and keeps the IRP (so the
// application may still cancel it), cancels two of them at chosen times,
// waits for all and frees them. It runs in its own thread because the
// read's IoCallDriver blocks in the upper driver's forward-and-wait.
func stackApp(env *model.Env, sys *queues.System, top *queues.DEVICE_OBJECT) ([]*kernel.IRP, []kernel.NTSTATUS) {
	k := env.K
	majors := []uint8{queues.IRP_MJ_READ, queues.IRP_MJ_WRITE, queues.IRP_MJ_WRITE}
	irps := make([]*kernel.IRP, len(majors))
	iosbs := make([]kernel.IO_STATUS_BLOCK, len(majors))
	events := make([]*kernel.KEVENT, len(majors))
	sent := k.KeInitializeEvent("read sent", kernel.NotificationEvent, false)
	for i, major := range majors {
		irps[i] = sys.IoBuildAsynchronousFsdRequest(major, top, &iosbs[i], fmt.Sprintf("req%d", i))
		events[i] = k.KeInitializeEvent(fmt.Sprintf("req%d done", i), kernel.NotificationEvent, false)
		k.IoSetCompletionRoutine(irps[i], func(_ any, _ *kernel.IRP, ctx any) kernel.NTSTATUS {
			k.KeSetEvent(ctx.(*kernel.KEVENT), kernel.IO_NO_INCREMENT, false)
			return kernel.STATUS_MORE_PROCESSING_REQUIRED
		}, events[i], true, true, true)
	}
	k.PsCreateSystemThread("reader", 8, func() {
		k.KeSetEvent(sent, kernel.IO_NO_INCREMENT, false)
		sys.IoCallDriver(top, irps[0])
	})
	k.KeWaitForSingleObject(sent, kernel.Infinite)
	sys.IoCallDriver(top, irps[1])
	sys.IoCallDriver(top, irps[2])
	k.KeDelayExecutionThread(des.Duration(1+env.Choose("cancel read at", 4)*4) * des.Microsecond)
	k.IoCancelIrp(irps[0])
	k.KeDelayExecutionThread(des.Duration(env.Choose("cancel write at", 4)*4) * des.Microsecond)
	k.IoCancelIrp(irps[2])
	statuses := make([]kernel.NTSTATUS, len(majors))
	for i := range irps {
		k.KeWaitForSingleObject(events[i], kernel.Infinite)
		statuses[i] = irps[i].IoStatus.Status
		k.IoFreeIrp(irps[i])
	}
	env.BeginDrain()
	return irps, statuses
}

// driverEntry of the lower driver: one device; reads and writes share the
// pending list.
func (lx *lowerExt) driverEntry(sys *queues.System) queues.DRIVER_INITIALIZE {
	return func(d *queues.DRIVER_OBJECT) kernel.NTSTATUS {
		k := lx.k
		lx.lock = k.KeInitializeSpinLock("lower lock")
		k.InitializeListHead(&lx.head)
		lx.timer = k.KeInitializeTimer("lower timer")
		lx.dpc = d.KeInitializeDpc("lower dpc", lx.timerDpc, nil)
		d.MajorFunction[queues.IRP_MJ_READ] = lx.dispatch
		d.MajorFunction[queues.IRP_MJ_WRITE] = lx.dispatch
		dev, st := sys.IoCreateDevice(d, "lower0")
		if st == kernel.STATUS_SUCCESS {
			dev.DeviceExtension = lx
		}
		return st
	}
}

// dispatch queues the IRP cancellable and (re)arms the completion timer.
func (lx *lowerExt) dispatch(_ *queues.DEVICE_OBJECT, irp *kernel.IRP) kernel.NTSTATUS {
	k := lx.k
	e := &kernel.LIST_ENTRY{Container: irp}
	var h kernel.KLOCK_QUEUE_HANDLE
	k.KeAcquireInStackQueuedSpinLock(lx.lock, &h)
	lx.links[irp] = e
	k.IoSetCancelRoutine(irp, lx.cancel)
	if k.IoIsCancelled(irp) && k.IoSetCancelRoutine(irp, nil) != nil {
		k.KeReleaseInStackQueuedSpinLock(&h)
		irp.IoStatus.Status = kernel.STATUS_CANCELLED
		k.IoCompleteRequest(irp, kernel.IO_NO_INCREMENT)
		return kernel.STATUS_CANCELLED
	}
	k.IoMarkIrpPending(irp)
	k.InsertTailList(&lx.head, e)
	k.KeReleaseInStackQueuedSpinLock(&h)
	k.KeSetTimer(lx.timer, des.Duration(1+lx.env.Choose("device latency", 3)*5)*des.Microsecond, lx.dpc)
	// Bookkeeping before returning: the timer DPC (or a cancel) may
	// complete the IRP on another processor first, which is legal once it
	// is marked pending.
	k.Compute(des.Duration(lx.env.Choose("dispatch tail", 3)) * des.Microsecond)
	return kernel.STATUS_PENDING
}

// cancel is the lower driver's cancel routine.
func (lx *lowerExt) cancel(irp *kernel.IRP) {
	k := lx.k
	k.IoReleaseCancelSpinLock(irp.CancelIrql)
	var h kernel.KLOCK_QUEUE_HANDLE
	k.KeAcquireInStackQueuedSpinLock(lx.lock, &h)
	k.RemoveEntryList(lx.links[irp])
	k.KeReleaseInStackQueuedSpinLock(&h)
	irp.IoStatus.Status = kernel.STATUS_CANCELLED
	k.IoCompleteRequest(irp, kernel.IO_NO_INCREMENT)
}

// timerDpc completes every queued IRP whose cancel routine it wins back.
func (lx *lowerExt) timerDpc(_ *kernel.KDPC, _, _, _ any) {
	k := lx.k
	var h kernel.KLOCK_QUEUE_HANDLE
	k.KeAcquireInStackQueuedSpinLockAtDpcLevel(lx.lock, &h)
	for !k.IsListEmpty(&lx.head) {
		e := k.RemoveHeadList(&lx.head)
		irp := e.Container.(*kernel.IRP)
		if k.IoSetCancelRoutine(irp, nil) == nil {
			k.InitializeListHead(e) // the cancel routine owns it
			continue
		}
		k.KeReleaseInStackQueuedSpinLockFromDpcLevel(&h)
		irp.IoStatus.Status = kernel.STATUS_SUCCESS
		k.IoCompleteRequest(irp, kernel.IO_NO_INCREMENT)
		k.KeAcquireInStackQueuedSpinLockAtDpcLevel(lx.lock, &h)
	}
	k.KeReleaseInStackQueuedSpinLockFromDpcLevel(&h)
}

// driverEntry of the upper driver.
func (ux *upperExt) driverEntry(d *queues.DRIVER_OBJECT) kernel.NTSTATUS {
	d.MajorFunction[queues.IRP_MJ_READ] = ux.forwardAndWait
	d.MajorFunction[queues.IRP_MJ_WRITE] = ux.passThrough
	dev, st := ux.sys.IoCreateDevice(d, "upper0")
	if st == kernel.STATUS_SUCCESS {
		dev.DeviceExtension = ux
	}
	return st
}

// forwardAndWait sends the read down, waits for the lower driver to finish
// with it, and completes it itself (the pattern of "Passing IRPs down the
// driver stack": the completion routine stops completion, so the IRP is
// the upper driver's again).
func (ux *upperExt) forwardAndWait(_ *queues.DEVICE_OBJECT, irp *kernel.IRP) kernel.NTSTATUS {
	k := ux.k
	ev := k.KeInitializeEvent("fwd wait", kernel.NotificationEvent, false)
	k.IoCopyCurrentIrpStackLocationToNext(irp)
	k.IoSetCompletionRoutine(irp, ux.signalDone, ev, true, true, true)
	st := ux.sys.IoCallDriver(ux.lower, irp)
	if st == kernel.STATUS_PENDING {
		k.KeWaitForSingleObject(ev, kernel.Infinite)
		st = irp.IoStatus.Status
	}
	k.IoCompleteRequest(irp, kernel.IO_NO_INCREMENT)
	return st
}

// signalDone is forward-and-wait's completion routine.
func (ux *upperExt) signalDone(_ any, irp *kernel.IRP, ctx any) kernel.NTSTATUS {
	if irp.PendingReturned() {
		ux.k.KeSetEvent(ctx.(*kernel.KEVENT), kernel.IO_NO_INCREMENT, false)
	}
	if ux.env.Is("continue") {
		// The pass-through routine's body, pasted: propagate and continue.
		if irp.PendingReturned() {
			ux.k.IoMarkIrpPending(irp)
		}
		return kernel.STATUS_SUCCESS
	}
	return kernel.STATUS_MORE_PROCESSING_REQUIRED
}

// passThrough sends the write down with a completion routine and returns
// what the lower driver returned.
func (ux *upperExt) passThrough(_ *queues.DEVICE_OBJECT, irp *kernel.IRP) kernel.NTSTATUS {
	k := ux.k
	k.IoCopyCurrentIrpStackLocationToNext(irp)
	k.IoSetCompletionRoutine(irp, func(_ any, irp *kernel.IRP, _ any) kernel.NTSTATUS {
		if irp.PendingReturned() {
			k.IoMarkIrpPending(irp)
		}
		return kernel.STATUS_SUCCESS // STATUS_CONTINUE_COMPLETION
	}, nil, true, true, true)
	return ux.sys.IoCallDriver(ux.lower, irp)
}
