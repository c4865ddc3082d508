package drivers

import (
	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/queues"
)

// requeue: a polling driver keeps one I/O work item alive by queueing it
// again from its own routine (legal: the item is off the queue while its
// routine runs, REFERENCE §1.2). DriverUnload asks the chain to stop and must
// not free the item (IoFreeWorkItem) while it is queued or about to be
// queued: 0xE4 P1=2 for a queued item, a use after free (0xD5) when the
// routine queues it after the free. The chain's end is the pass that sees
// the stop request and does not queue again; only that pass may tell unload.

var markRequeueAfterWait = model.NewMark("requeue: unload's wait returned while the routine was still deciding to queue again")

// Requeue is the scenario.
var Requeue = &model.Scenario{
	Name: "requeue",
	Doc: "An I/O work item re-queues itself from its own routine until DriverUnload asks it to stop. " +
		"The bug has unload wait for the current pass ('idle' set at the end of every pass) instead of " +
		"for the pass that sees the stop and does not queue again: the item is freed while queued.",
	Section: "§1.2, §6.8",
	Variants: []model.Variant{
		{Name: "correct", Doc: "the routine signals 'stopped' only from the pass that read the stop request and did not re-queue"},
		{Name: "wait-idle", Bug: true, Doc: "unload waits for 'idle', set at the end of every pass before the re-queue decision",
			Marks: []*model.Mark{markRequeueAfterWait}, Want: "0xE4|0xD5"},
	},
	Setup: setupRequeue,
}

type requeueDrv struct {
	env      *model.Env
	sys      *queues.System
	dev      *queues.DEVICE_OBJECT
	item     *queues.IO_WORKITEM
	stop     *kernel.Cell   // set by unload
	passes   *kernel.Cell   // polls done
	idle     *kernel.KEVENT // wait-idle: no pass running (notification)
	stopped  *kernel.KEVENT // correct: the chain has ended
	deciding bool           // wait-idle: between "idle" and the re-queue (bookkeeping for the mark)
}

func setupRequeue(env *model.Env) error {
	k := env.K
	sys, err := queues.NewSystem(k, queues.DefaultPoolConfig())
	if err != nil {
		return err
	}
	d := &requeueDrv{env: env, sys: sys,
		stop:    k.NewCell("stop", 0),
		passes:  k.NewCell("passes", 0),
		idle:    k.KeInitializeEvent("idle", kernel.NotificationEvent, true),
		stopped: k.KeInitializeEvent("stopped", kernel.NotificationEvent, false),
	}
	k.PsCreateSystemThread("admin", 8, func() {
		drv, st := sys.LoadDriver("poller", d.driverEntry)
		if !kernel.NT_SUCCESS(st) {
			env.Violation("load", "DriverEntry failed: %#x", uint32(st))
			return
		}
		k.KeDelayExecutionThread(60 * des.Microsecond) // let it poll a while
		sys.UnloadDriver(drv)
	})
	return nil
}

func (d *requeueDrv) driverEntry(drv *queues.DRIVER_OBJECT) kernel.NTSTATUS {
	dev, st := d.sys.IoCreateDevice(drv, "poller0")
	if !kernel.NT_SUCCESS(st) {
		return st
	}
	d.dev = dev
	d.item = d.sys.IoAllocateWorkItem(dev)
	if d.item == nil {
		d.sys.IoDeleteDevice(dev)
		return kernel.STATUS_INSUFFICIENT_RESOURCES
	}
	drv.DriverUnload = d.unload
	d.sys.IoQueueWorkItem(d.item, d.poll, queues.DelayedWorkQueue, nil)
	return kernel.STATUS_SUCCESS
}

// poll is one pass of the chain.
func (d *requeueDrv) poll(_ *queues.DEVICE_OBJECT, _ any) {
	k := d.env.K
	if d.env.Is("wait-idle") {
		k.KeClearEvent(d.idle)
	}
	k.Compute(15 * des.Microsecond) // poll the hardware
	k.Write(d.passes, k.Read(d.passes)+1)
	if d.env.Is("wait-idle") {
		k.KeSetEvent(d.idle, kernel.IO_NO_INCREMENT, false)
		d.deciding = true
	}
	if k.Read(d.stop) == 0 {
		d.sys.IoQueueWorkItem(d.item, d.poll, queues.DelayedWorkQueue, nil)
		d.deciding = false
		return
	}
	d.deciding = false
	if d.env.Is("correct") {
		k.KeSetEvent(d.stopped, kernel.IO_NO_INCREMENT, false)
	}
}

func (d *requeueDrv) unload(_ *queues.DRIVER_OBJECT) {
	k := d.env.K
	k.Write(d.stop, 1)
	if d.env.Is("correct") {
		k.KeWaitForSingleObject(d.stopped, kernel.Infinite)
	} else {
		k.KeWaitForSingleObject(d.idle, kernel.Infinite)
		if d.deciding || d.item.Queued() {
			d.env.Hit(markRequeueAfterWait)
		}
	}
	d.sys.IoFreeWorkItem(d.item)
	d.sys.IoDeleteDevice(d.dev)
}
