package drivers

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/queues"
)

// csqdpc: a device works on one read at a time and interrupts when it is
// done; its DPC completes the read. Reads wait in an IoCsq, and the one the
// device works on stays there, so that a caller that gives up can still
// cancel it (the hardware result is then dropped). The DPC therefore races
// the cancel routine for the IRP it finished: only IoCsqRemoveIrp, which
// swaps the cancel routine atomically, decides who owns it (REFERENCE §2.1,
// §2.4). The buggy DPC takes the IRP off the driver's list itself and
// clears the cancel routine without looking at what it got back.

var markCsqDpcLost = model.NewMark("csqdpc: the DPC completed a read the cancel routine had already taken")

// CsqDpc is the scenario.
var CsqDpc = &model.Scenario{
	Name: "csqdpc",
	Doc: "Reads wait in an IoCsq while a device works on the head one; the device's DPC completes it while a " +
		"caller that timed out cancels it. The bug has the DPC test the Cancel flag, unlink the IRP from the driver's " +
		"list and clear its cancel routine by hand instead of IoCsqRemoveIrp: a cancel just after the test completes it too.",
	Section: "§1.6, §2.1, §2.4, §4.8",
	Variants: []model.Variant{
		{Name: "correct", Doc: "the DPC removes the finished read with IoCsqRemoveIrp and completes it only if it got it back"},
		{Name: "own-unlink", Bug: true, Doc: "the DPC tests the Cancel flag, unlinks the read from the driver's list itself and ignores IoSetCancelRoutine's result",
			Marks: []*model.Mark{markCsqDpcLost}, Want: "0x44|0x139|0xC9|0x48"},
	},
	Setup: setupCsqDpc,
}

const csqDpcReads = 3

// csqDpcLatency lists the device's times per read, the usual one first.
var csqDpcLatency = [...]des.Duration{20 * des.Microsecond, 16 * des.Microsecond, 24 * des.Microsecond}

type csqDpcDev struct {
	env     *model.Env
	k       *kernel.Kernel
	csq     queues.IO_CSQ
	lock    *kernel.KSPIN_LOCK // the queue lock (the csq's and the driver's list)
	list    kernel.LIST_ENTRY
	intr    *kernel.KINTERRUPT
	dpc     *kernel.KDPC
	current *csqDpcRead // the read the device works on; under lock
}

// csqDpcRead is a read's per-IRP state, kept in DriverContext[0].
type csqDpcRead struct {
	irp   *kernel.IRP
	entry kernel.LIST_ENTRY
	ctx   queues.IO_CSQ_IRP_CONTEXT
}

func setupCsqDpc(env *model.Env) error {
	k := env.K
	d := &csqDpcDev{env: env, k: k, lock: k.KeInitializeSpinLock("queue lock")}
	k.InitializeListHead(&d.list)
	d.csq.Name = "reads"
	if st := queues.IoCsqInitialize(k, &d.csq, d.insert, d.remove, d.peek, d.acquire, d.release, d.completeCanceled); !kernel.NT_SUCCESS(st) {
		return fmt.Errorf("IoCsqInitialize: %#x", uint32(st))
	}
	intr, err := k.IoConnectInterrupt("dev", 5, d.isr, nil)
	if err != nil {
		return err
	}
	d.intr = intr
	d.dpc = k.KeInitializeDpc("read done", d.dpcRoutine, nil)
	for i := 0; i < csqDpcReads; i++ {
		// Each caller gives up after a while: the second and third reads
		// wait behind the first, so their callers cancel some of them.
		patience := des.Duration(30+10*i) * des.Microsecond
		k.PsCreateSystemThread("app"+string(rune('0'+i)), 8, func() {
			irp := k.IoAllocateIrp("read")
			d.dispatchRead(irp)
			if k.KeWaitForSingleObject(irp.Done(), patience) == kernel.STATUS_TIMEOUT {
				k.IoCancelIrp(irp)
				k.KeWaitForSingleObject(irp.Done(), kernel.Infinite)
			}
		})
	}
	return nil
}

// dispatchRead is IRP_MJ_READ: queue the read and start the device if idle.
func (d *csqDpcDev) dispatchRead(irp *kernel.IRP) kernel.NTSTATUS {
	r := &csqDpcRead{irp: irp}
	r.entry.Container = irp
	irp.DriverContext[0] = r
	queues.IoCsqInsertIrp(&d.csq, irp, &r.ctx)
	old := d.k.KeAcquireSpinLock(d.lock)
	d.startLocked()
	d.k.KeReleaseSpinLock(d.lock, old)
	return kernel.STATUS_PENDING
}

// startLocked gives the device the head read if it is idle. Queue lock held.
func (d *csqDpcDev) startLocked() {
	if d.current != nil || d.k.IsListEmpty(&d.list) {
		return
	}
	irp := d.list.Flink.Container.(*kernel.IRP)
	d.current = irp.DriverContext[0].(*csqDpcRead)
	// The device's time per read varies; the workload decides it.
	lat := csqDpcLatency[d.env.Choose("device latency", len(csqDpcLatency))]
	d.k.DeviceInterrupt(d.intr, 0, d.k.Now().Add(lat))
}

func (d *csqDpcDev) isr(_ *kernel.KINTERRUPT, _ any) bool {
	d.k.KeInsertQueueDpc(d.dpc, nil, nil)
	return true
}

// dpcRoutine completes the read the device finished and starts the next.
func (d *csqDpcDev) dpcRoutine(_ *kernel.KDPC, _, _, _ any) {
	k := d.k
	k.KeAcquireSpinLockAtDpcLevel(d.lock)
	r := d.current
	k.KeReleaseSpinLockFromDpcLevel(d.lock)
	if r == nil {
		return
	}
	if d.env.Is("correct") {
		if irp := queues.IoCsqRemoveIrp(&d.csq, &r.ctx); irp != nil {
			k.Compute(3 * des.Microsecond) // copy the data into the caller's buffer
			irp.IoStatus.Status = kernel.STATUS_SUCCESS
			k.IoCompleteRequest(irp, kernel.IO_NO_INCREMENT)
		} // else the cancel routine owns it and completes it as cancelled
	} else {
		d.completeOwn(r)
	}
	k.KeAcquireSpinLockAtDpcLevel(d.lock)
	d.current = nil
	d.startLocked()
	k.KeReleaseSpinLockFromDpcLevel(d.lock)
}

// completeOwn is the buggy DPC's hand-rolled removal: it leaves a
// cancelled read to the cancel routine, but tests the Cancel flag instead
// of swapping the cancel routine, so a cancel that starts after the test
// finds the routine still set and takes the read too.
func (d *csqDpcDev) completeOwn(r *csqDpcRead) {
	k, irp := d.k, r.irp
	k.KeAcquireSpinLockAtDpcLevel(d.lock)
	if k.IoIsCancelled(irp) {
		k.KeReleaseSpinLockFromDpcLevel(d.lock)
		return // the cancel routine completes it
	}
	k.KeReleaseSpinLockFromDpcLevel(d.lock)
	k.Compute(3 * des.Microsecond) // copy the data into the caller's buffer
	k.KeAcquireSpinLockAtDpcLevel(d.lock)
	if irp.Cancelled() {
		d.env.Hit(markCsqDpcLost) // a cancel began after the test
	}
	k.RemoveEntryList(&r.entry)
	k.KeReleaseSpinLockFromDpcLevel(d.lock)
	k.IoSetCancelRoutine(irp, nil)
	irp.IoStatus.Status = kernel.STATUS_SUCCESS
	k.IoCompleteRequest(irp, kernel.IO_NO_INCREMENT)
}

// The csq callbacks: a driver-owned list under a spin lock.

func (d *csqDpcDev) insert(_ *queues.IO_CSQ, irp *kernel.IRP) {
	d.k.InsertTailList(&d.list, &irp.DriverContext[0].(*csqDpcRead).entry)
}

func (d *csqDpcDev) remove(_ *queues.IO_CSQ, irp *kernel.IRP) {
	d.k.RemoveEntryList(&irp.DriverContext[0].(*csqDpcRead).entry)
}

func (d *csqDpcDev) peek(_ *queues.IO_CSQ, irp *kernel.IRP, _ any) *kernel.IRP {
	next := d.list.Flink
	if irp != nil {
		next = irp.DriverContext[0].(*csqDpcRead).entry.Flink
	}
	if next == &d.list {
		return nil
	}
	return next.Container.(*kernel.IRP)
}

func (d *csqDpcDev) acquire(_ *queues.IO_CSQ) kernel.IRQL { return d.k.KeAcquireSpinLock(d.lock) }

func (d *csqDpcDev) release(_ *queues.IO_CSQ, old kernel.IRQL) { d.k.KeReleaseSpinLock(d.lock, old) }

func (d *csqDpcDev) completeCanceled(_ *queues.IO_CSQ, irp *kernel.IRP) {
	irp.IoStatus.Status = kernel.STATUS_CANCELLED
	d.k.IoCompleteRequest(irp, kernel.IO_NO_INCREMENT)
}
