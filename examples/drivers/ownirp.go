package drivers

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/queues"
)

// OwnIrp is a prefetch driver that reads ahead from a disk with IRPs it
// builds itself (IoBuildAsynchronousFsdRequest: no thread, nobody to
// complete them to). Its completion routine, which runs wherever the disk
// completes the read (inline, in the disk's DPC, in a worker), stores the
// result, frees the IRP and returns STATUS_MORE_PROCESSING_REQUIRED, the
// only correct return for such an IRP. Unload waits until no read is
// outstanding before the image goes. The bugs return STATUS_SUCCESS from
// the routine after freeing the IRP, and unload without waiting for the
// reads in flight.
var OwnIrp = &model.Scenario{
	Name: "ownirp",
	Doc: "A driver reads ahead with its own IoBuildAsynchronousFsdRequest IRPs; the completion routine frees " +
		"each and returns STATUS_MORE_PROCESSING_REQUIRED, and unload waits for the reads in flight. The bugs " +
		"continue completion of the freed IRP, or unload while a completion routine can still run.",
	Section: "REFERENCE §5.6, §6.8",
	Variants: []model.Variant{
		{Name: "correct", Doc: "IoFreeIrp and STATUS_MORE_PROCESSING_REQUIRED in the completion routine; unload waits for the outstanding count to reach zero"},
		{Name: "continue", Bug: true, Doc: "the completion routine frees the IRP and returns STATUS_SUCCESS: the I/O manager goes on completing a freed IRP",
			Want: "bugcheck 0xD5"},
		{Name: "no-drain", Bug: true, Doc: "unload waits for the prefetch thread but not for its reads: a completion routine runs after the image is gone",
			Want: "0xCE"},
	},
	Setup: ownIrpSetup,
}

const oiReads = 3

// oiExt is the prefetch driver's device extension.
type oiExt struct {
	env         *model.Env
	k           *kernel.Kernel
	sys         *queues.System
	dev         *queues.DEVICE_OBJECT
	disk        *queues.DEVICE_OBJECT
	thread      *kernel.Thread
	outstanding *kernel.Cell   // reads in flight plus one while the thread may issue
	idle        *kernel.KEVENT // set when outstanding drops to zero
	cache       *kernel.PoolBlock
	iosb        [oiReads]kernel.IO_STATUS_BLOCK
	filled      int // completion routines only, one at a time per slot
}

func ownIrpSetup(env *model.Env) error {
	k := env.K
	sys, err := queues.NewSystem(k, queues.DefaultPoolConfig())
	if err != nil {
		return err
	}
	x := &oiExt{env: env, k: k, sys: sys}
	k.PsCreateSystemThread("scm", 8, func() {
		disk := sys.NewSimDevice("disk", 6*des.Microsecond)
		x.disk = disk.Device
		drv, st := sys.LoadDriver("prefetch", x.driverEntry)
		if st != kernel.STATUS_SUCCESS {
			env.Violation("driver loads", "%v", st)
			return
		}
		k.KeDelayExecutionThread(des.Duration(4+env.Choose("unload at", 4)*4) * des.Microsecond)
		env.BeginDrain()
		sys.UnloadDriver(drv)
	})
	env.AtEnd("every read completed", func() error {
		if x.filled != oiReads {
			return fmt.Errorf("%d of %d reads filled the cache", x.filled, oiReads)
		}
		return nil
	})
	return nil
}

func (x *oiExt) driverEntry(d *queues.DRIVER_OBJECT) kernel.NTSTATUS {
	k := x.k
	dev, st := x.sys.IoCreateDevice(d, "prefetch0")
	if st != kernel.STATUS_SUCCESS {
		return st
	}
	x.dev = dev
	dev.DeviceExtension = x
	x.cache = k.ExAllocatePoolWithTag(kernel.NonPagedPool, 4096, "Pfch")
	x.outstanding = k.NewCell("outstanding reads", 1) // the thread's own count
	x.idle = k.KeInitializeEvent("no reads outstanding", kernel.NotificationEvent, false)
	x.thread = k.PsCreateSystemThread("prefetcher", 8, x.prefetch)
	d.DriverUnload = x.unload
	return kernel.STATUS_SUCCESS
}

// prefetch issues the reads a few microseconds apart and drops its own
// count when done issuing.
func (x *oiExt) prefetch() {
	k := x.k
	for i := range oiReads {
		irp := x.sys.IoBuildAsynchronousFsdRequest(queues.IRP_MJ_READ, x.disk, &x.iosb[i], fmt.Sprintf("prefetch%d", i))
		k.IoSetCompletionRoutine(irp, x.readDone, i, true, true, true)
		k.InterlockedIncrement(x.outstanding)
		x.sys.IoCallDriver(x.disk, irp)
		k.KeDelayExecutionThread(des.Duration(1+x.env.Choose("issue gap", 3)*2) * des.Microsecond)
	}
	x.release()
}

// release drops one count and signals idle at zero.
func (x *oiExt) release() {
	if x.k.InterlockedDecrement(x.outstanding) == 0 {
		x.k.KeSetEvent(x.idle, kernel.IO_NO_INCREMENT, false)
	}
}

// readDone is the completion routine: the IRP is this driver's, so it is
// freed here and completion stops (IoBuildAsynchronousFsdRequest's rule).
func (x *oiExt) readDone(_ any, irp *kernel.IRP, ctx any) kernel.NTSTATUS {
	k := x.k
	if irp.IoStatus.Status == kernel.STATUS_SUCCESS {
		k.AccessPool(x.cache, "cache fill")
		x.filled++
	}
	k.IoFreeIrp(irp)
	x.release()
	if x.env.Is("continue") {
		return kernel.STATUS_SUCCESS
	}
	return kernel.STATUS_MORE_PROCESSING_REQUIRED
}

func (x *oiExt) unload(*queues.DRIVER_OBJECT) {
	k := x.k
	k.KeWaitForSingleObject(x.thread.Object(), kernel.Infinite)
	if !x.env.Is("no-drain") {
		k.KeWaitForSingleObject(x.idle, kernel.Infinite)
	}
	k.ExFreePoolWithTag(x.cache, "Pfch")
	x.sys.IoDeleteDevice(x.dev)
}
