package drivers

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/queues"
)

// TryWork is a device whose ISR queues a DPC that collects samples into a
// list and hands them to one I/O work item, at most once in flight (a
// "queued" flag under the device lock). For latency the DPC first tries
// IoTryQueueWorkItem, which queues only when a worker thread is free at
// once, and falls back to IoQueueWorkItemEx. The work routine drains the
// list at PASSIVE_LEVEL. Other components' work items keep the delayed
// workers busy at times (a workload decision). Unload disconnects the interrupt, flushes DPCs,
// waits until the item is idle, frees it and deletes the device.
var TryWork = &model.Scenario{
	Name: "trywork",
	Doc: "A DPC hands samples to one I/O work item with IoTryQueueWorkItem, falling back to IoQueueWorkItemEx. " +
		"The bug reads IoTryQueueWorkItem's FALSE as 'already queued' (as KeInsertQueueDpc's FALSE means) and " +
		"queues nothing: the samples wait forever.",
	Section: "REFERENCE §1.2, §6.8",
	Variants: []model.Variant{
		{Name: "correct", Doc: "on FALSE the DPC queues the item with IoQueueWorkItemEx"},
		{Name: "false-is-queued", Bug: true, Doc: "on FALSE the DPC does nothing: nothing was queued, and the flag says it was",
			Want: "hang"},
	},
	Setup: tryWorkSetup,
}

const twSamples = 4

// twExt is the device extension.
type twExt struct {
	env       *model.Env
	k         *kernel.Kernel
	sys       *queues.System
	dev       *queues.DEVICE_OBJECT
	lock      *kernel.KSPIN_LOCK
	intr      *kernel.KINTERRUPT
	count     *kernel.Cell // interrupts so far, interlocked (the ISR's)
	dpc       *kernel.KDPC
	item      *queues.IO_WORKITEM
	idle      *kernel.KEVENT // set while no work item is queued or draining
	allDone   *kernel.KEVENT
	arrived   int  // samples the DPC collected, guarded by lock
	taken     int  // samples the work routine took, guarded by lock
	queued    bool // guarded by lock
	processed int  // work routine only
}

func tryWorkSetup(env *model.Env) error {
	k := env.K
	sys, err := queues.NewSystem(k, queues.DefaultPoolConfig())
	if err != nil {
		return err
	}
	x := &twExt{env: env, k: k, sys: sys}
	k.PsCreateSystemThread("app", 8, func() {
		drv, st := sys.LoadDriver("trywork", x.driverEntry)
		if st != kernel.STATUS_SUCCESS {
			env.Violation("driver loads", "%v", st)
			return
		}
		// Other components keep the delayed workers busy for a while, so
		// IoTryQueueWorkItem may find none free.
		background := make([]queues.WORK_QUEUE_ITEM, env.Choose("background items", 4))
		for i := range background {
			queues.ExInitializeWorkItem(&background[i], func(any) { k.Compute(12 * des.Microsecond) }, nil)
			sys.ExQueueWorkItem(&background[i], queues.DelayedWorkQueue)
		}
		at := k.Now()
		for range twSamples {
			at = at.Add(des.Duration(1+env.Choose("sample gap", 4)*4) * des.Microsecond)
			k.DeviceInterrupt(x.intr, env.Choose("sample cpu", 2), at)
		}
		k.KeWaitForSingleObject(x.allDone, kernel.Infinite)
		env.BeginDrain()
		sys.UnloadDriver(drv)
	})
	env.AtEnd("every sample processed", func() error {
		if x.processed != twSamples {
			return fmt.Errorf("%d of %d samples processed", x.processed, twSamples)
		}
		return nil
	})
	return nil
}

func (x *twExt) driverEntry(d *queues.DRIVER_OBJECT) kernel.NTSTATUS {
	k := x.k
	dev, st := x.sys.IoCreateDevice(d, "trywork0")
	if st != kernel.STATUS_SUCCESS {
		return st
	}
	x.dev = dev
	x.lock = k.KeInitializeSpinLock("dev lock")
	x.idle = k.KeInitializeEvent("item idle", kernel.NotificationEvent, true)
	x.allDone = k.KeInitializeEvent("all done", kernel.NotificationEvent, false)
	x.dpc = k.KeInitializeDpc("sample dpc", x.sampleDpc, nil)
	if x.item = x.sys.IoAllocateWorkItem(dev); x.item == nil {
		x.sys.IoDeleteDevice(dev)
		return kernel.STATUS_INSUFFICIENT_RESOURCES
	}
	x.count = k.NewCell("interrupts", 0)
	intr, err := k.IoConnectInterrupt("sampler", 5, func(*kernel.KINTERRUPT, any) bool {
		k.InterlockedIncrement(x.count)
		k.KeInsertQueueDpc(x.dpc, nil, nil)
		return true
	}, nil)
	if err != nil {
		x.sys.IoFreeWorkItem(x.item)
		x.sys.IoDeleteDevice(dev)
		return kernel.STATUS_INSUFFICIENT_RESOURCES
	}
	x.intr = intr
	d.DriverUnload = x.unload
	return kernel.STATUS_SUCCESS
}

// sampleDpc collects one sample per interrupt it stands for (a DPC queued
// twice runs once, so it reads the ISR's count) and starts the work
// item unless one is in flight.
func (x *twExt) sampleDpc(*kernel.KDPC, any, any, any) {
	k := x.k
	k.KeAcquireSpinLockAtDpcLevel(x.lock)
	x.arrived = int(k.Read(x.count))
	start := !x.queued && x.arrived > x.taken
	if start {
		x.queued = true
		k.KeClearEvent(x.idle)
	}
	k.KeReleaseSpinLockFromDpcLevel(x.lock)
	if !start {
		return
	}
	if x.sys.IoTryQueueWorkItem(x.item, x.drain, queues.DelayedWorkQueue, x) {
		return
	}
	if x.env.Is("correct") {
		x.sys.IoQueueWorkItemEx(x.item, x.drain, queues.DelayedWorkQueue, x)
	}
}

// drain is the work routine: it takes samples until none is left, then
// gives up the flag under the lock, so a DPC that comes after queues the
// item again.
func (x *twExt) drain(queues.IoObject, any, *queues.IO_WORKITEM) {
	k := x.k
	for {
		old := k.KeAcquireSpinLock(x.lock)
		if x.taken == x.arrived {
			x.queued = false
			k.KeSetEvent(x.idle, kernel.IO_NO_INCREMENT, false)
			k.KeReleaseSpinLock(x.lock, old)
			return
		}
		x.taken++
		k.KeReleaseSpinLock(x.lock, old)
		k.Compute(3 * des.Microsecond)
		x.processed++
		if x.processed == twSamples {
			k.KeSetEvent(x.allDone, kernel.IO_NO_INCREMENT, false)
		}
	}
}

// unload stops the interrupt first (it queues the DPC), waits out the DPC
// (it queues the item), then waits until the item is idle before freeing
// it. The image itself is safe: a queued I/O work item holds the device.
func (x *twExt) unload(*queues.DRIVER_OBJECT) {
	k := x.k
	k.IoDisconnectInterrupt(x.intr)
	k.KeRemoveQueueDpc(x.dpc)
	k.KeFlushQueuedDpcs()
	k.KeWaitForSingleObject(x.idle, kernel.Infinite)
	x.sys.IoFreeWorkItem(x.item)
	x.sys.IoDeleteDevice(x.dev)
}
