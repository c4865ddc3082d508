package queues_test

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues"
)

// A driver thread queues an executive work item; a delayed worker runs it
// at PASSIVE_LEVEL (REFERENCE §1.1, §3.3).
func ExampleSystem_ExQueueWorkItem() {
	sim := des.New(des.Config{})
	defer sim.Close()
	k := kernel.MustNew(sim, kernel.DefaultConfig())
	sys := queues.MustNewSystem(k, queues.DefaultPoolConfig())
	var item queues.WORK_QUEUE_ITEM
	k.PsCreateSystemThread("driver", 8, func() {
		queues.ExInitializeWorkItem(&item, func(ctx any) {
			fmt.Printf("%v runs in %s at %v\n", ctx, k.KeGetCurrentThread().Name(), k.KeGetCurrentIrql())
		}, "item 1")
		sys.ExQueueWorkItem(&item, queues.DelayedWorkQueue)
	})
	fmt.Println("outcome:", k.Run().Err)
	// Output:
	// item 1 runs in worker.delayed.2 at PASSIVE_LEVEL
	// outcome: <nil>
}

// A driver unloads while its executive work item is still queued: the
// worker later calls into the unmapped image (REFERENCE §6.8). With
// IoQueueWorkItem the device reference would have kept the image loaded.
func ExampleSystem_UnloadDriver() {
	sim := des.New(des.Config{})
	defer sim.Close()
	cfg := kernel.DefaultConfig()
	cfg.Processors = 1
	k := kernel.MustNew(sim, cfg)
	sys := queues.MustNewSystem(k, queues.DefaultPoolConfig())
	var item queues.WORK_QUEUE_ITEM
	k.PsCreateSystemThread("loader", 20, func() {
		drv, _ := sys.LoadDriver("sample", func(d *queues.DRIVER_OBJECT) kernel.NTSTATUS {
			d.DriverUnload = func(*queues.DRIVER_OBJECT) {} // forgets the queued item
			return kernel.STATUS_SUCCESS
		})
		drv.ExInitializeWorkItem(&item, func(any) {}, nil)
		sys.ExQueueWorkItem(&item, queues.DelayedWorkQueue)
		sys.UnloadDriver(drv)
	})
	bc := k.Run().Err.(*kernel.BugCheck)
	fmt.Printf("0x%X %s by %s\n", bc.Code, bc.Name, bc.Actor)
	// Output:
	// 0xCE DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS by worker.delayed.0
}

// Deferred completion: the dispatch routine holds the device's remove lock
// for the read, pends it and completes it from an I/O work item, which
// releases the lock last; DriverUnload drains the lock before deleting the
// device (REFERENCE §1.2, §5.6). The work item's device reference keeps the
// image loaded until its routine has returned, so unload is safe.
func ExampleSystem_IoQueueWorkItem() {
	sim := des.New(des.Config{})
	defer sim.Close()
	k := kernel.MustNew(sim, kernel.DefaultConfig())
	sys := queues.MustNewSystem(k, queues.DefaultPoolConfig())
	rl := k.IoInitializeRemoveLock("dev")
	complete := func(dev *queues.DEVICE_OBJECT, ctx any) {
		irp := ctx.(*kernel.IRP)
		irp.IoStatus.Status = kernel.STATUS_SUCCESS
		k.IoCompleteRequest(irp, kernel.IO_NO_INCREMENT)
		sys.IoFreeWorkItem(irp.DriverContext[0].(*queues.IO_WORKITEM))
		k.IoReleaseRemoveLock(rl, irp) // last: the lock keeps the device
	}
	read := func(dev *queues.DEVICE_OBJECT, irp *kernel.IRP) kernel.NTSTATUS {
		if st := k.IoAcquireRemoveLock(rl, irp); st != kernel.STATUS_SUCCESS {
			irp.IoStatus.Status = st
			k.IoCompleteRequest(irp, kernel.IO_NO_INCREMENT)
			return st
		}
		wi := sys.IoAllocateWorkItem(dev) // nil only with injected allocation failures
		irp.DriverContext[0] = wi
		k.IoMarkIrpPending(irp)
		sys.IoQueueWorkItem(wi, complete, queues.DelayedWorkQueue, irp)
		return kernel.STATUS_PENDING
	}
	k.PsCreateSystemThread("app", 8, func() {
		var dev *queues.DEVICE_OBJECT
		drv, _ := sys.LoadDriver("deferio", func(d *queues.DRIVER_OBJECT) kernel.NTSTATUS {
			dev, _ = sys.IoCreateDevice(d, `\Device\Defer`)
			d.MajorFunction[queues.IRP_MJ_READ] = read
			d.DriverUnload = func(*queues.DRIVER_OBJECT) {
				k.IoAcquireRemoveLock(rl, "unload") // IoReleaseRemoveLockAndWait releases one of its own
				k.IoReleaseRemoveLockAndWait(rl, "unload")
				sys.IoDeleteDevice(dev)
			}
			return kernel.STATUS_SUCCESS
		})
		done := k.KeInitializeEvent("read done", kernel.NotificationEvent, false)
		var iosb kernel.IO_STATUS_BLOCK
		irp := sys.IoBuildSynchronousFsdRequest(queues.IRP_MJ_READ, dev, done, &iosb, "read")
		if sys.IoCallDriver(dev, irp) == kernel.STATUS_PENDING {
			k.KeWaitForSingleObject(done, kernel.Infinite)
		}
		sys.UnloadDriver(drv)
		fmt.Println("read:", iosb.Status.Name(), "image loaded:", drv.ImageLoaded())
	})
	fmt.Println("outcome:", k.Run().Err)
	// Output:
	// read: STATUS_SUCCESS image loaded: false
	// outcome: <nil>
}
