package drivers

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/queues"
)

// CsqTimeout queues requests in an IoCsq with an IO_CSQ_IRP_CONTEXT each
// and arms a timeout timer per request; a driver thread serves the queue
// with IoCsqRemoveNextIrp; the application cancels one request. The
// timeout DPC takes its request out with IoCsqRemoveIrp(context) and
// fails it with STATUS_IO_TIMEOUT-like status, but only if the removal
// returned the IRP: NULL means the thread or a cancel took it first and
// owns its completion. The bug completes the IRP it remembers whatever
// IoCsqRemoveIrp returned.
var CsqTimeout = &model.Scenario{
	Name: "csqtimeout",
	Doc: "Requests in an IoCsq with a per-IRP context and a timeout timer each; a thread serves the queue, the " +
		"application cancels one. The bug's timeout DPC completes its IRP even when IoCsqRemoveIrp returned " +
		"NULL (the thread or the cancel routine owns it): a second completion.",
	Section: "REFERENCE §1.6, §2.4",
	Variants: []model.Variant{
		{Name: "correct", Doc: "the timeout DPC completes only the IRP IoCsqRemoveIrp returned"},
		{Name: "ignore-null", Bug: true, Doc: "the timeout DPC completes the IRP it remembers when IoCsqRemoveIrp returned NULL",
			Want: "0x44|0xC9|0xD5"},
	},
	Setup: csqTimeoutSetup,
}

const ctRequests = 3

// ctReq is one request: its IRP, the insert's context and its timer.
type ctReq struct {
	irp   *kernel.IRP
	ctx   queues.IO_CSQ_IRP_CONTEXT
	link  kernel.LIST_ENTRY
	timer *kernel.KTIMER
	dpc   *kernel.KDPC
}

// ctDev is the device extension.
type ctDev struct {
	env      *model.Env
	k        *kernel.Kernel
	csq      queues.IO_CSQ
	lock     *kernel.KSPIN_LOCK
	head     kernel.LIST_ENTRY
	work     *kernel.KSEMAPHORE
	reqs     []*ctReq
	byIrp    map[*kernel.IRP]*ctReq
	timedOut int
}

func csqTimeoutSetup(env *model.Env) error {
	k := env.K
	d := &ctDev{env: env, k: k, byIrp: map[*kernel.IRP]*ctReq{}}
	d.lock = k.KeInitializeSpinLock("csq lock")
	k.InitializeListHead(&d.head)
	d.work = k.KeInitializeSemaphore("work", 0, 100)
	st := queues.IoCsqInitialize(k, &d.csq,
		func(_ *queues.IO_CSQ, irp *kernel.IRP) { k.InsertTailList(&d.head, &d.byIrp[irp].link) },
		func(_ *queues.IO_CSQ, irp *kernel.IRP) { k.RemoveEntryList(&d.byIrp[irp].link) },
		func(_ *queues.IO_CSQ, irp *kernel.IRP, _ any) *kernel.IRP {
			e := d.head.Flink
			if irp != nil {
				e = d.byIrp[irp].link.Flink
			}
			if e == &d.head {
				return nil
			}
			return e.Container.(*kernel.IRP)
		},
		func(*queues.IO_CSQ) kernel.IRQL { return k.KeAcquireSpinLock(d.lock) },
		func(_ *queues.IO_CSQ, irql kernel.IRQL) { k.KeReleaseSpinLock(d.lock, irql) },
		func(_ *queues.IO_CSQ, irp *kernel.IRP) {
			irp.IoStatus.Status = kernel.STATUS_CANCELLED
			k.IoCompleteRequest(irp, kernel.IO_NO_INCREMENT)
		})
	if st != kernel.STATUS_SUCCESS {
		return fmt.Errorf("csq init %v", st)
	}
	k.PsCreateSystemThread("app", 8, func() {
		for i := range ctRequests {
			d.queue(i)
			k.Compute(des.Duration(1+env.Choose("request gap", 3)) * des.Microsecond)
		}
		k.KeDelayExecutionThread(des.Duration(env.Choose("cancel at", 4)*3) * des.Microsecond)
		k.IoCancelIrp(d.reqs[1].irp)
		for _, r := range d.reqs {
			k.KeWaitForSingleObject(r.irp.Done(), kernel.Infinite)
		}
		env.BeginDrain()
		for _, r := range d.reqs {
			k.KeCancelTimer(r.timer)
		}
		k.KeFlushQueuedDpcs()
		k.KeReleaseSemaphore(d.work, kernel.IO_NO_INCREMENT, 1, false) // a nil entry: the thread stops
	})
	k.PsCreateSystemThread("server", 8, d.serve)
	env.AtEnd("every request completed", func() error {
		for i, r := range d.reqs {
			if !r.irp.Completed() {
				return fmt.Errorf("request %d not completed", i)
			}
		}
		return nil
	})
	return nil
}

// queue is the dispatch routine's part: insert with a context, arm the
// request's timeout, wake the server.
func (d *ctDev) queue(i int) {
	k := d.k
	r := &ctReq{irp: k.IoAllocateIrp(fmt.Sprintf("req%d", i))}
	r.link.Container = r.irp
	r.timer = k.KeInitializeTimer(fmt.Sprintf("timeout%d", i))
	r.dpc = k.KeInitializeDpc(fmt.Sprintf("timeout%d", i), d.timeout, r)
	d.byIrp[r.irp] = r
	d.reqs = append(d.reqs, r)
	k.IoMarkIrpPending(r.irp)
	queues.IoCsqInsertIrp(&d.csq, r.irp, &r.ctx)
	// Plainly the device answers well within the timeout; the workload may
	// make the timeout short enough to race the server.
	timeouts := []des.Duration{40 * des.Microsecond, 9 * des.Microsecond, 5 * des.Microsecond}
	k.KeSetTimer(r.timer, timeouts[d.env.Choose("timeout", len(timeouts))], r.dpc)
	k.KeReleaseSemaphore(d.work, kernel.IO_NO_INCREMENT, 1, false)
}

// timeout fails its request if it is still queued.
func (d *ctDev) timeout(_ *kernel.KDPC, ctx, _, _ any) {
	k := d.k
	r := ctx.(*ctReq)
	irp := queues.IoCsqRemoveIrp(&d.csq, &r.ctx)
	if irp == nil {
		if !d.env.Is("ignore-null") {
			return // served or cancelled already: not ours to complete
		}
		irp = r.irp
	}
	d.timedOut++
	irp.IoStatus.Status = kernel.STATUS_CANCELLED // the driver's timeout status
	k.IoCompleteRequest(irp, kernel.IO_NO_INCREMENT)
}

// serve is the driver thread: one request per semaphore count, slowly.
func (d *ctDev) serve() {
	k := d.k
	for served := 0; ; {
		k.KeWaitForSingleObject(d.work, kernel.Infinite)
		if served == ctRequests {
			return
		}
		served++
		irp := queues.IoCsqRemoveNextIrp(&d.csq, nil)
		if irp == nil {
			continue // timed out or cancelled
		}
		k.Compute(des.Duration(3+d.env.Choose("service time", 3)*3) * des.Microsecond)
		irp.IoStatus.Status = kernel.STATUS_SUCCESS
		k.IoCompleteRequest(irp, kernel.IO_NO_INCREMENT)
	}
}
