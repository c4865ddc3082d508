package drivers

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
)

// ClassicCancel is a device driver that manages cancellation itself: the
// dispatch routine sets a cancel routine and queues the IRP under the
// device lock; each device interrupt queues the DPC, which completes every
// queued IRP whose cancel routine it wins back; the application cancels its
// second read at a time the workload chooses.
var ClassicCancel = &model.Scenario{
	Name: "classiccancel",
	Doc: "A device driver's own cancel protocol: dispatch queues IRPs with a cancel routine, the ISR's DPC " +
		"completes them, the application cancels one. The bug completes without winning the cancel routine back.",
	Section: "REFERENCE §1.7",
	Variants: []model.Variant{
		{Name: "correct", Doc: "the DPC completes an IRP only if IoSetCancelRoutine(irp, NULL) returned the routine"},
		{Name: "nocheck", Bug: true, Doc: "the DPC ignores what IoSetCancelRoutine(irp, NULL) returned: the cancel routine and the DPC both own the IRP",
			Want: "0x139|0x44|0xC9"},
	},
	Setup: classicSetup,
}

// cdev is the device extension.
type cdev struct {
	env   *model.Env
	k     *kernel.Kernel
	lock  *kernel.KSPIN_LOCK
	head  kernel.LIST_ENTRY
	links map[*kernel.IRP]*kernel.LIST_ENTRY
	intr  *kernel.KINTERRUPT
	dpc   *kernel.KDPC
}

func classicSetup(env *model.Env) error {
	k := env.K
	d := &cdev{env: env, k: k, links: map[*kernel.IRP]*kernel.LIST_ENTRY{}}
	d.lock = k.KeInitializeSpinLock("dev lock")
	k.InitializeListHead(&d.head)
	d.dpc = k.KeInitializeDpc("dev dpc", d.dpcRoutine, d)
	intr, err := k.IoConnectInterrupt("dev", 5, func(_ *kernel.KINTERRUPT, _ any) bool {
		k.KeInsertQueueDpc(d.dpc, nil, nil)
		return true
	}, nil)
	if err != nil {
		return err
	}
	d.intr = intr
	var irps []*kernel.IRP
	k.PsCreateSystemThread("app", 8, func() {
		for range 3 {
			irp := k.IoAllocateIrp("read")
			irps = append(irps, irp)
			d.dispatch(irp)
			k.DeviceInterrupt(d.intr, 1, k.Now().Add(des.Duration(5+env.Choose("latency", 3)*2)*des.Microsecond))
		}
		k.KeDelayExecutionThread(des.Duration(1+env.Choose("cancel at", 4)*3) * des.Microsecond)
		k.IoCancelIrp(irps[1])
		for _, irp := range irps {
			k.KeWaitForSingleObject(irp.Done(), kernel.Infinite)
		}
	})
	env.AtEnd("done", func() error {
		for _, irp := range irps {
			if !irp.Completed() {
				return fmt.Errorf("%s not completed", irp.Name())
			}
		}
		return nil
	})
	return nil
}

// dispatch is the read dispatch routine: queue the IRP cancellable, or
// complete it at once if it was cancelled before the cancel routine was set.
func (d *cdev) dispatch(irp *kernel.IRP) {
	k := d.k
	e := &kernel.LIST_ENTRY{Container: irp}
	d.links[irp] = e
	old := k.KeAcquireSpinLock(d.lock)
	k.IoSetCancelRoutine(irp, d.cancel)
	if k.IoIsCancelled(irp) && k.IoSetCancelRoutine(irp, nil) != nil {
		k.KeReleaseSpinLock(d.lock, old)
		irp.IoStatus.Status = kernel.STATUS_CANCELLED
		k.IoCompleteRequest(irp, 0)
		return
	}
	k.IoMarkIrpPending(irp)
	k.InsertTailList(&d.head, e)
	k.KeReleaseSpinLock(d.lock, old)
}

// cancel is the cancel routine, called holding the cancel spin lock.
func (d *cdev) cancel(irp *kernel.IRP) {
	k := d.k
	k.IoReleaseCancelSpinLock(irp.CancelIrql)
	old := k.KeAcquireSpinLock(d.lock)
	k.RemoveEntryList(d.links[irp])
	k.KeReleaseSpinLock(d.lock, old)
	irp.IoStatus.Status = kernel.STATUS_CANCELLED
	k.IoCompleteRequest(irp, 0)
}

// dpcRoutine completes every queued IRP. One DPC run may stand for several
// interrupts (a DPC queued twice runs once), so it drains the whole list.
func (d *cdev) dpcRoutine(_ *kernel.KDPC, _, _, _ any) {
	k := d.k
	k.KeAcquireSpinLockAtDpcLevel(d.lock)
	for !k.IsListEmpty(&d.head) {
		e := k.RemoveHeadList(&d.head)
		irp := e.Container.(*kernel.IRP)
		if d.env.Is("correct") && k.IoSetCancelRoutine(irp, nil) == nil {
			// The cancel routine owns it; let its RemoveEntryList find a
			// self-linked entry.
			k.InitializeListHead(e)
			continue
		}
		if d.env.Is("nocheck") {
			k.IoSetCancelRoutine(irp, nil)
		}
		k.KeReleaseSpinLockFromDpcLevel(d.lock)
		irp.IoStatus.Status = kernel.STATUS_SUCCESS
		k.IoCompleteRequest(irp, 0)
		k.KeAcquireSpinLockAtDpcLevel(d.lock)
	}
	k.KeReleaseSpinLockFromDpcLevel(d.lock)
}
