package drivers

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/queues"
)

// CsqDriver queues IRPs in an IoCsq whose list and lock the driver owns; a
// driver thread, woken by a semaphore per IRP, removes and completes them;
// another thread cancels the last IRP queued so far.
var CsqDriver = &model.Scenario{
	Name: "csqdriver",
	Doc: "IRPs in an IoCsq served by a driver thread, one cancelled by another thread. The bug takes IRPs off " +
		"the driver's list directly instead of through IoCsqRemoveNextIrp.",
	Section: "REFERENCE §1.6, §1.8",
	Variants: []model.Variant{
		{Name: "correct", Doc: "the thread takes IRPs with IoCsqRemoveNextIrp"},
		{Name: "peek", Bug: true, Doc: "the thread unlinks the list head itself: the IRP still has the queue's cancel routine when completed",
			Want: "0xC9"},
	},
	Setup: csqSetup,
}

// csqDev is the device extension; links maps an IRP to its list entry
// (the driver's own field in a real IRP).
type csqDev struct {
	env   *model.Env
	k     *kernel.Kernel
	csq   queues.IO_CSQ
	lock  *kernel.KSPIN_LOCK
	head  kernel.LIST_ENTRY
	sem   *kernel.KSEMAPHORE
	irps  []*kernel.IRP
	links map[*kernel.IRP]*kernel.LIST_ENTRY
}

func csqSetup(env *model.Env) error {
	k := env.K
	d := &csqDev{env: env, k: k, links: map[*kernel.IRP]*kernel.LIST_ENTRY{}}
	d.lock = k.KeInitializeSpinLock("csq lock")
	k.InitializeListHead(&d.head)
	d.sem = k.KeInitializeSemaphore("work", 0, 100)
	st := queues.IoCsqInitialize(k, &d.csq,
		func(c *queues.IO_CSQ, irp *kernel.IRP) { k.InsertTailList(&d.head, d.links[irp]) },
		func(c *queues.IO_CSQ, irp *kernel.IRP) { k.RemoveEntryList(d.links[irp]) },
		func(c *queues.IO_CSQ, irp *kernel.IRP, _ any) *kernel.IRP {
			var e *kernel.LIST_ENTRY
			if irp == nil {
				e = d.head.Flink
			} else {
				e = d.links[irp].Flink
			}
			if e == &d.head {
				return nil
			}
			return e.Container.(*kernel.IRP)
		},
		func(c *queues.IO_CSQ) kernel.IRQL { return k.KeAcquireSpinLock(d.lock) },
		func(c *queues.IO_CSQ, irql kernel.IRQL) { k.KeReleaseSpinLock(d.lock, irql) },
		func(c *queues.IO_CSQ, irp *kernel.IRP) {
			irp.IoStatus.Status = kernel.STATUS_CANCELLED
			k.IoCompleteRequest(irp, 0)
		})
	if st != kernel.STATUS_SUCCESS {
		return fmt.Errorf("csq init %v", st)
	}
	k.PsCreateSystemThread("app", 8, func() {
		for range 4 {
			irp := k.IoAllocateIrp("read")
			e := &kernel.LIST_ENTRY{Container: irp}
			d.links[irp] = e
			d.irps = append(d.irps, irp)
			queues.IoCsqInsertIrp(&d.csq, irp, nil)
			k.KeReleaseSemaphore(d.sem, 0, 1, false)
			k.Compute(2 * des.Microsecond)
		}
	})
	k.PsCreateSystemThread("canceller", 8, func() {
		k.KeDelayExecutionThread(des.Duration(1+env.Choose("cancel at", 4)*2) * des.Microsecond)
		if n := len(d.irps); n > 0 {
			k.IoCancelIrp(d.irps[n-1])
		}
	})
	k.PsCreateSystemThread("worker", 8, func() {
		for range 4 {
			if k.KeWaitForSingleObject(d.sem, kernel.Infinite) != kernel.STATUS_WAIT_0 {
				return
			}
			var irp *kernel.IRP
			if env.Is("peek") {
				old := k.KeAcquireSpinLock(d.lock)
				if !k.IsListEmpty(&d.head) {
					irp = k.RemoveHeadList(&d.head).Container.(*kernel.IRP)
				}
				k.KeReleaseSpinLock(d.lock, old)
			} else {
				irp = queues.IoCsqRemoveNextIrp(&d.csq, nil)
			}
			if irp == nil {
				continue
			}
			k.Compute(3 * des.Microsecond)
			irp.IoStatus.Status = kernel.STATUS_SUCCESS
			k.IoCompleteRequest(irp, 0)
		}
	})
	return nil
}
