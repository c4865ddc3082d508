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
