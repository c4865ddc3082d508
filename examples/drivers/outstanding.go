package drivers

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/queues"
)

// Outstanding is a driver that defers each request to its own work item
// and counts the items in flight (a count biased by one, dropped by
// unload, with an event set when it reaches zero). Unload waits for the
// count, frees the buffer the items use and deletes the device; an item
// may still be between its last statement and its return. An I/O work
// item holds a reference on the device, so the image stays until the
// routine has returned (REFERENCE §1.2); an executive work item holds
// nothing, so the worker returns into an unloaded image (REFERENCE §6.8).
var Outstanding = &model.Scenario{
	Name: "outstanding",
	Doc: "Each request is deferred to its own work item; unload waits for a count of items in flight, " +
		"then frees their buffer and deletes the device. The bugs skip the wait, or use ExQueueWorkItem " +
		"so that nothing holds the image while the last routine returns.",
	Section: "REFERENCE §1.2, §6.8",
	Variants: []model.Variant{
		{Name: "correct", Doc: "IoAllocateWorkItem/IoQueueWorkItem; unload waits for the count to reach zero"},
		{Name: "last-frees", Doc: "unload deletes the device without waiting; whoever drops the count to zero frees the buffer (the queued items hold the device, so the image stays)"},
		{Name: "no-wait", Bug: true, Doc: "unload frees the buffer and deletes the device without waiting: an item still queued touches freed pool",
			Want: "0xD5"},
		{Name: "ex-item", Bug: true, Doc: "ExQueueWorkItem with the same count and wait: the routine signals, then returns into the unloaded image",
			Want: "0xCE"},
	},
	Setup: outstandingSetup,
}

const osRequests = 3

// osExt is the device extension.
type osExt struct {
	env     *model.Env
	k       *kernel.Kernel
	sys     *queues.System
	drv     *queues.DRIVER_OBJECT
	dev     *queues.DEVICE_OBJECT
	buffer  *kernel.PoolBlock
	count   *kernel.Cell // items in flight, plus one until unload
	drained *kernel.KEVENT
	exItems [osRequests]queues.WORK_QUEUE_ITEM
	served  int
}

func outstandingSetup(env *model.Env) error {
	k := env.K
	sys, err := queues.NewSystem(k, queues.DefaultPoolConfig())
	if err != nil {
		return err
	}
	x := &osExt{env: env, k: k, sys: sys}
	k.PsCreateSystemThread("app", 8, func() {
		drv, st := sys.LoadDriver("defer", x.driverEntry)
		if st != kernel.STATUS_SUCCESS {
			env.Violation("driver loads", "%v", st)
			return
		}
		for i := range osRequests {
			k.KeDelayExecutionThread(des.Duration(1+env.Choose("request gap", 3)*2) * des.Microsecond)
			x.request(i)
		}
		k.KeDelayExecutionThread(des.Duration(env.Choose("unload after", 3)*3) * des.Microsecond)
		env.BeginDrain()
		sys.UnloadDriver(drv)
	})
	env.AtEnd("every request served", func() error {
		if x.served != osRequests && !env.Is("no-wait") {
			return fmt.Errorf("%d of %d requests served", x.served, osRequests)
		}
		return nil
	})
	return nil
}

func (x *osExt) driverEntry(d *queues.DRIVER_OBJECT) kernel.NTSTATUS {
	k := x.k
	dev, st := x.sys.IoCreateDevice(d, "defer0")
	if st != kernel.STATUS_SUCCESS {
		return st
	}
	x.drv, x.dev = d, dev
	dev.DeviceExtension = x
	x.buffer = k.ExAllocatePoolWithTag(kernel.NonPagedPool, 256, "Dfr ")
	x.count = k.NewCell("in flight", 1)
	x.drained = k.KeInitializeEvent("drained", kernel.NotificationEvent, false)
	d.DriverUnload = x.unload
	return kernel.STATUS_SUCCESS
}

// request defers request i to a work item.
func (x *osExt) request(i int) {
	k := x.k
	k.InterlockedIncrement(x.count)
	if x.env.Is("ex-item") {
		x.drv.ExInitializeWorkItem(&x.exItems[i], func(any) { x.serve() }, nil)
		x.sys.ExQueueWorkItem(&x.exItems[i], queues.DelayedWorkQueue)
		return
	}
	item := x.sys.IoAllocateWorkItem(x.dev)
	if item == nil {
		x.done()
		return
	}
	x.sys.IoQueueWorkItem(item, func(_ *queues.DEVICE_OBJECT, ctx any) {
		x.serve()
		x.sys.IoFreeWorkItem(ctx.(*queues.IO_WORKITEM))
		x.done()
	}, queues.DelayedWorkQueue, item)
}

// serve does the request's work in the buffer.
func (x *osExt) serve() {
	x.k.Compute(des.Duration(2+x.env.Choose("work time", 3)*3) * des.Microsecond)
	x.k.AccessPool(x.buffer, "request buffer")
	x.served++
	if x.env.Is("ex-item") {
		x.done()
		x.k.Compute(des.Microsecond) // the routine's epilogue, in the image
	}
}

// done drops one count; the last one signals unload, or frees the buffer
// itself in last-frees.
func (x *osExt) done() {
	if x.k.InterlockedDecrement(x.count) != 0 {
		return
	}
	if x.env.Is("last-frees") {
		x.k.ExFreePoolWithTag(x.buffer, "Dfr ")
		return
	}
	x.k.KeSetEvent(x.drained, kernel.IO_NO_INCREMENT, false)
}

func (x *osExt) unload(*queues.DRIVER_OBJECT) {
	k := x.k
	if x.env.Is("last-frees") {
		x.done()
		x.sys.IoDeleteDevice(x.dev)
		return
	}
	if !x.env.Is("no-wait") {
		x.done()
		k.KeWaitForSingleObject(x.drained, kernel.Infinite)
	}
	k.ExFreePoolWithTag(x.buffer, "Dfr ")
	x.sys.IoDeleteDevice(x.dev)
}
