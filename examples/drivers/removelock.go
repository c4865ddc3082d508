package drivers

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/queues"
)

// RemoveLock is a device driver whose read dispatch takes the device's
// remove lock, pends the IRP and hands it to an I/O work item that talks
// to the hardware (its register window: a nonpaged context block),
// completes the IRP and releases the lock. Its remove-device path takes
// the lock too, then IoReleaseRemoveLockAndWait, and only then unmaps the
// registers (frees the block). Reads keep arriving during the removal and
// are failed with STATUS_DELETE_PENDING once it has begun. The bugs call
// IoReleaseRemoveLockAndWait without the remove path's own acquisition
// (it then takes away a count a read still holds and returns early), and
// release the lock when the dispatch routine returns instead of when the
// work routine is done.
var RemoveLock = &model.Scenario{
	Name: "removelock",
	Doc: "Reads take an IO_REMOVE_LOCK in dispatch and release it in the I/O work routine that completes " +
		"them; the remove path acquires, then IoReleaseRemoveLockAndWait, then frees the hardware context. " +
		"The bugs skip the remove path's acquisition, or release in dispatch while the work item is queued.",
	Section: "REFERENCE §5.6, §1.2",
	Variants: []model.Variant{
		{Name: "correct", Doc: "acquire in dispatch, release after completion in the work routine; the remove path acquires before IoReleaseRemoveLockAndWait"},
		{Name: "remove-without-acquire", Bug: true, Doc: "IoReleaseRemoveLockAndWait without its own IoAcquireRemoveLock: it returns while a read still holds the lock",
			Want: "0xD5"},
		{Name: "release-in-dispatch", Bug: true, Doc: "the dispatch routine releases the lock when it returns STATUS_PENDING, before its work item has run",
			Want: "0xD5"},
	},
	Setup: removeLockSetup,
}

const rlReads = 4

// rlExt is the device extension; the remove lock lives in it, the
// register window is a separate allocation freed at removal.
type rlExt struct {
	env     *model.Env
	k       *kernel.Kernel
	sys     *queues.System
	dev     *queues.DEVICE_OBJECT
	lock    *kernel.IO_REMOVE_LOCK
	regs    *kernel.PoolBlock
	served  int // reads the hardware served
	refused int // reads failed with STATUS_DELETE_PENDING
}

func removeLockSetup(env *model.Env) error {
	k := env.K
	sys, err := queues.NewSystem(k, queues.DefaultPoolConfig())
	if err != nil {
		return err
	}
	x := &rlExt{env: env, k: k, sys: sys}
	var statuses []kernel.NTSTATUS
	k.PsCreateSystemThread("pnp", 8, func() {
		drv, st := sys.LoadDriver("pnpdev", x.driverEntry)
		if st != kernel.STATUS_SUCCESS {
			env.Violation("driver loads", "%v", st)
			return
		}
		reader := k.PsCreateSystemThread("reader", 8, func() {
			for i := range rlReads {
				k.KeDelayExecutionThread(des.Duration(1+env.Choose("read gap", 3)*3) * des.Microsecond)
				statuses = append(statuses, x.read(i))
			}
		})
		k.KeDelayExecutionThread(des.Duration(3+env.Choose("remove at", 4)*4) * des.Microsecond)
		x.removeDevice()
		k.KeWaitForSingleObject(reader.Object(), kernel.Infinite)
		env.BeginDrain()
		sys.IoDeleteDevice(x.dev)
		sys.UnloadDriver(drv)
	})
	env.AtEnd("every read served or refused", func() error {
		if len(statuses) != rlReads || x.served+x.refused != rlReads {
			return fmt.Errorf("%d reads returned, %d served, %d refused", len(statuses), x.served, x.refused)
		}
		return nil
	})
	return nil
}

func (x *rlExt) driverEntry(d *queues.DRIVER_OBJECT) kernel.NTSTATUS {
	k := x.k
	d.MajorFunction[queues.IRP_MJ_READ] = x.dispatchRead
	d.DriverUnload = func(*queues.DRIVER_OBJECT) {}
	dev, st := x.sys.IoCreateDevice(d, "pnpdev0")
	if st != kernel.STATUS_SUCCESS {
		return st
	}
	x.dev = dev
	dev.DeviceExtension = x
	x.lock = k.IoInitializeRemoveLock("pnpdev0")
	x.regs = k.ExAllocatePoolWithTag(kernel.NonPagedPool, 64, "Regs")
	return kernel.STATUS_SUCCESS
}

// read is the application's synchronous read.
func (x *rlExt) read(i int) kernel.NTSTATUS {
	k := x.k
	var iosb kernel.IO_STATUS_BLOCK
	ev := k.KeInitializeEvent(fmt.Sprintf("read%d", i), kernel.NotificationEvent, false)
	irp := x.sys.IoBuildSynchronousFsdRequest(queues.IRP_MJ_READ, x.dev, ev, &iosb, fmt.Sprintf("read%d", i))
	if x.sys.IoCallDriver(x.dev, irp) == kernel.STATUS_PENDING {
		k.KeWaitForSingleObject(ev, kernel.Infinite)
	}
	return iosb.Status
}

// dispatchRead holds the remove lock for the IRP's whole life: from here
// to the work routine's completion.
func (x *rlExt) dispatchRead(dev *queues.DEVICE_OBJECT, irp *kernel.IRP) kernel.NTSTATUS {
	k := x.k
	if st := k.IoAcquireRemoveLock(x.lock, irp); st != kernel.STATUS_SUCCESS {
		x.refused++
		irp.IoStatus.Status = st
		k.IoCompleteRequest(irp, kernel.IO_NO_INCREMENT)
		return st
	}
	item := x.sys.IoAllocateWorkItem(dev)
	if item == nil {
		irp.IoStatus.Status = kernel.STATUS_INSUFFICIENT_RESOURCES
		k.IoCompleteRequest(irp, kernel.IO_NO_INCREMENT)
		k.IoReleaseRemoveLock(x.lock, irp)
		return kernel.STATUS_INSUFFICIENT_RESOURCES
	}
	k.IoMarkIrpPending(irp)
	x.sys.IoQueueWorkItem(item, x.workRead, queues.DelayedWorkQueue, &rlWork{irp: irp, item: item})
	if x.env.Is("release-in-dispatch") {
		k.IoReleaseRemoveLock(x.lock, irp)
	}
	return kernel.STATUS_PENDING
}

// rlWork is one read's work item context.
type rlWork struct {
	irp  *kernel.IRP
	item *queues.IO_WORKITEM
}

// workRead reads the device registers, completes the IRP and releases the
// lock its dispatch took.
func (x *rlExt) workRead(_ *queues.DEVICE_OBJECT, ctx any) {
	k := x.k
	w := ctx.(*rlWork)
	k.AccessPool(x.regs, "read data register")
	k.Compute(des.Duration(2+x.env.Choose("device time", 3)*2) * des.Microsecond)
	k.AccessPool(x.regs, "acknowledge")
	x.served++
	w.irp.IoStatus.Status = kernel.STATUS_SUCCESS
	k.IoCompleteRequest(w.irp, kernel.IO_NO_INCREMENT)
	if !x.env.Is("release-in-dispatch") {
		k.IoReleaseRemoveLock(x.lock, w.irp)
	}
	x.sys.IoFreeWorkItem(w.item)
}

// removeDevice is the IRP_MN_REMOVE_DEVICE path: drain the reads, then
// unmap the registers.
func (x *rlExt) removeDevice() {
	k := x.k
	if !x.env.Is("remove-without-acquire") {
		if k.IoAcquireRemoveLock(x.lock, "remove") != kernel.STATUS_SUCCESS {
			return
		}
	}
	k.IoReleaseRemoveLockAndWait(x.lock, "remove")
	k.ExFreePoolWithTag(x.regs, "Regs")
}
