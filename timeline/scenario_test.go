package timeline

import (
	"strconv"
	"testing"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// run builds a kernel on a fresh simulation that keeps every record,
// lets script set it up, runs it and returns the records and outcome.
func run(t testing.TB, cfg kernel.Config, script func(k *kernel.Kernel)) ([]des.Record, des.Outcome) {
	t.Helper()
	sink := &des.RecordSink{}
	sim := des.New(des.Config{Sink: sink, StepBudget: 1_000_000})
	t.Cleanup(sim.Close)
	k, err := kernel.New(sim, cfg)
	if err != nil {
		t.Fatal(err)
	}
	script(k)
	out := k.Run()
	return sink.Records, out
}

// demoConfig is the kernel configuration the demo's pinned times were laid
// out for: the global dispatcher (kernel.NewNTDispatcher), where the
// worker woken by the DPC preempts the lower-priority thread on the other
// processor at once. The tests here check rendering, not dispatching.
func demoConfig() kernel.Config {
	c := kernel.DefaultConfig()
	c.Policy = kernel.NewNTDispatcher()
	return c
}

// demo is the representative 2-processor scenario: two threads on two
// processors ping-pong an event and share a spin lock; a third contends
// for the lock; a device interrupt's ISR queues a DPC that completes an
// IRP and queues a work item, which a worker thread runs.
func demo(k *kernel.Kernel) { demoScenario(k, false) }

// demoBug is demo where the work item completes the IRP the DPC already
// completed: MULTIPLE_IRP_COMPLETE_REQUESTS.
func demoBug(k *kernel.Kernel) { demoScenario(k, true) }

func demoScenario(k *kernel.Kernel, bug bool) {
	ping := k.KeInitializeEvent("ping", kernel.SynchronizationEvent, false)
	pong := k.KeInitializeEvent("pong", kernel.SynchronizationEvent, false)
	work := k.KeInitializeEvent("work", kernel.SynchronizationEvent, false)
	lock := k.KeInitializeSpinLock("L")
	irp := k.IoAllocateIrp("read")
	dpc := k.KeInitializeDpc("nic", func(*kernel.KDPC, any, any, any) {
		k.Compute(3 * des.Microsecond)
		irp.IoStatus.Status = kernel.STATUS_SUCCESS
		k.IoCompleteRequest(irp, kernel.IO_NO_INCREMENT)
		k.Layer().Trace("ExQueueWorkItem", "workitem log", 0, 0)
		k.KeSetEvent(work, kernel.EVENT_INCREMENT, false)
	}, nil)
	intr, err := k.IoConnectInterrupt("nic", 5, func(*kernel.KINTERRUPT, any) bool {
		k.Compute(2 * des.Microsecond)
		k.KeInsertQueueDpc(dpc, nil, nil)
		return true
	}, nil)
	if err != nil {
		panic(err)
	}
	k.DeviceInterrupt(intr, 1, des.Time(31*des.Microsecond))
	k.PsCreateSystemThread("pinger", 8, func() {
		for i := 0; i < 3; i++ {
			k.Compute(4 * des.Microsecond)
			k.KeSetEvent(ping, kernel.EVENT_INCREMENT, false)
			k.KeWaitForSingleObject(pong, kernel.Infinite)
		}
	})
	k.PsCreateSystemThread("ponger", 8, func() {
		for i := 0; i < 3; i++ {
			k.KeWaitForSingleObject(ping, kernel.Infinite)
			old := k.KeAcquireSpinLock(lock)
			k.Compute(6 * des.Microsecond)
			k.KeReleaseSpinLock(lock, old)
			k.KeSetEvent(pong, kernel.EVENT_INCREMENT, false)
		}
	})
	k.PsCreateSystemThread("locker", 8, func() {
		for i := 0; i < 2; i++ {
			k.Compute(5 * des.Microsecond)
			old := k.KeAcquireSpinLock(lock)
			k.Compute(7 * des.Microsecond)
			k.KeReleaseSpinLock(lock, old)
		}
	})
	k.PsCreateSystemThread("worker", 9, func() {
		k.KeWaitForSingleObject(work, kernel.Infinite)
		k.Layer().Trace("run-work-item", "workitem log", 0, 0)
		k.Compute(9 * des.Microsecond)
		if bug {
			k.IoCompleteRequest(irp, kernel.IO_NO_INCREMENT)
		}
	})
}

// busy is a long 2-processor run: a ping-pong, two lock loops, a periodic
// device interrupt whose DPC queues a work item to a worker thread.
func busy(iters int) func(k *kernel.Kernel) {
	return func(k *kernel.Kernel) {
		ping := k.KeInitializeEvent("ping", kernel.SynchronizationEvent, false)
		pong := k.KeInitializeEvent("pong", kernel.SynchronizationEvent, false)
		work := k.KeInitializeSemaphore("work", 0, 1<<20)
		lock := k.KeInitializeSpinLock("L")
		n := 0
		dpc := k.KeInitializeDpc("nic", func(*kernel.KDPC, any, any, any) {
			k.Compute(2 * des.Microsecond)
			n++
			k.Layer().Trace("ExQueueWorkItem", "workitem "+strconv.Itoa(n), 0, 0)
			k.KeReleaseSemaphore(work, 0, 1, false)
		}, nil)
		intr, _ := k.IoConnectInterrupt("nic", 5, func(*kernel.KINTERRUPT, any) bool {
			k.Compute(1 * des.Microsecond)
			k.KeInsertQueueDpc(dpc, nil, nil)
			return true
		}, nil)
		for i := 0; i < iters/10; i++ {
			k.DeviceInterrupt(intr, i%2, des.Time(des.Duration(i)*97*des.Microsecond+13*des.Microsecond))
		}
		k.PsCreateSystemThread("pinger", 8, func() {
			for i := 0; i < iters; i++ {
				k.Compute(3 * des.Microsecond)
				k.KeSetEvent(ping, kernel.EVENT_INCREMENT, false)
				k.KeWaitForSingleObject(pong, kernel.Infinite)
			}
		})
		k.PsCreateSystemThread("ponger", 8, func() {
			for i := 0; i < iters; i++ {
				k.KeWaitForSingleObject(ping, kernel.Infinite)
				k.Compute(2 * des.Microsecond)
				k.KeSetEvent(pong, kernel.EVENT_INCREMENT, false)
			}
		})
		for _, name := range []string{"locker-a", "locker-b"} {
			k.PsCreateSystemThread(name, 7, func() {
				for i := 0; i < iters/4; i++ {
					k.Compute(6 * des.Microsecond)
					old := k.KeAcquireSpinLock(lock)
					k.Compute(5 * des.Microsecond)
					k.KeReleaseSpinLock(lock, old)
				}
			})
		}
		k.PsCreateSystemThread("worker", 9, func() {
			for i := 0; i < iters/10; i++ {
				k.KeWaitForSingleObject(work, kernel.Infinite)
				k.Layer().Trace("run-work-item", "workitem "+strconv.Itoa(i+1), 0, 0)
				k.Compute(4 * des.Microsecond)
			}
		})
	}
}

// lateTimer works for a few microseconds on both processors, then idles
// until a timer's DPC runs a second later (like the queues balance
// manager's timer).
func lateTimer(k *kernel.Kernel) {
	tm := k.KeInitializeTimerEx("balance", kernel.NotificationEvent)
	dpc := k.KeInitializeDpc("balance", func(*kernel.KDPC, any, any, any) { k.Compute(3 * des.Microsecond) }, nil)
	k.PsCreateSystemThread("a", 8, func() {
		k.KeSetTimer(tm, des.Second, dpc)
		k.Compute(20 * des.Microsecond)
	})
	k.PsCreateSystemThread("b", 8, func() { k.Compute(30 * des.Microsecond) })
}
