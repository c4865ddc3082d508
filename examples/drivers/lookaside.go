package drivers

import (
	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/queues"
)

// lookaside: a driver takes a context for each request from a nonpaged
// lookaside list that lives in its device extension, and an I/O work item
// returns it to the list when the request is done (REFERENCE §4.14). The
// work item's device reference keeps the image loaded past DriverUnload
// (§1.2), so nothing crashes in unloaded code; what goes wrong is the list
// itself: unload deletes it and frees the extension holding it, and a work
// item still in flight then frees its context to a list that no longer
// exists — into freed memory (0xD5), or into a deleted list that never
// frees it (a pool leak).

var markLookasideAfterDelete = model.NewMark("lookaside: a context was freed to the list after unload deleted it")

// Lookaside is the scenario.
var Lookaside = &model.Scenario{
	Name: "lookaside",
	Doc: "Request contexts come from a nonpaged lookaside list in the device extension and go back to it from " +
		"I/O work items. The bug deletes the list and frees the extension in DriverUnload without waiting " +
		"for the work items in flight: a late one frees its context into freed memory or a deleted list.",
	Section: "§4.14, §1.2, §6.8",
	Variants: []model.Variant{
		{Name: "correct", Doc: "unload drops its bias on an outstanding-request count and waits for the last work item before deleting the list"},
		{Name: "no-wait", Bug: true, Doc: "unload deletes the list and frees the extension at once",
			Marks: []*model.Mark{markLookasideAfterDelete}, Want: "0xD5|leak"},
	},
	Setup: setupLookaside,
}

const lookasideRequests = 3

type lookasideDrv struct {
	env         *model.Env
	k           *kernel.Kernel
	sys         *queues.System
	dev         *queues.DEVICE_OBJECT
	ext         *kernel.PoolBlock // the device extension, holding list
	list        kernel.NPAGED_LOOKASIDE_LIST
	outstanding *kernel.Cell   // requests in flight, plus one for "not unloading"
	idle        *kernel.KEVENT // set when outstanding reaches zero
	deleted     bool           // the list was deleted (bookkeeping for the mark)
}

func setupLookaside(env *model.Env) error {
	k := env.K
	sys, err := queues.NewSystem(k, queues.DefaultPoolConfig())
	if err != nil {
		return err
	}
	d := &lookasideDrv{env: env, k: k, sys: sys,
		outstanding: k.NewCell("outstanding", 1),
		idle:        k.KeInitializeEvent("idle", kernel.NotificationEvent, false),
	}
	k.PsCreateSystemThread("admin", 8, func() {
		drv, st := sys.LoadDriver("ctxpool", d.driverEntry)
		if !kernel.NT_SUCCESS(st) {
			env.Violation("load", "DriverEntry failed: %#x", uint32(st))
			return
		}
		for range lookasideRequests {
			d.request()
		}
		k.KeDelayExecutionThread(40 * des.Microsecond)
		sys.UnloadDriver(drv)
	})
	return nil
}

func (d *lookasideDrv) driverEntry(drv *queues.DRIVER_OBJECT) kernel.NTSTATUS {
	k := d.k
	dev, st := d.sys.IoCreateDevice(drv, "ctx0")
	if !kernel.NT_SUCCESS(st) {
		return st
	}
	d.dev = dev
	d.ext = k.ExAllocatePoolWithTag(kernel.NonPagedPool, 256, "DevX")
	if d.ext == nil {
		d.sys.IoDeleteDevice(dev)
		return kernel.STATUS_INSUFFICIENT_RESOURCES
	}
	d.list.Block = d.ext
	k.ExInitializeNPagedLookasideList(&d.list, "request contexts", 64, "RqCx")
	drv.DriverUnload = d.unload
	return kernel.STATUS_SUCCESS
}

// request is the dispatch side: a context from the list, a work item to
// finish the request at PASSIVE_LEVEL.
func (d *lookasideDrv) request() {
	k := d.k
	ctx := k.ExAllocateFromNPagedLookasideList(&d.list)
	if ctx == nil {
		return // STATUS_INSUFFICIENT_RESOURCES to the caller
	}
	item := d.sys.IoAllocateWorkItem(d.dev)
	if item == nil {
		k.ExFreeToNPagedLookasideList(&d.list, ctx)
		return
	}
	k.InterlockedIncrement(d.outstanding)
	d.sys.IoQueueWorkItem(item, func(_ *queues.DEVICE_OBJECT, _ any) { d.finish(item, ctx) }, queues.DelayedWorkQueue, ctx)
}

// finish is the work routine: use the context, give it back, count down.
func (d *lookasideDrv) finish(item *queues.IO_WORKITEM, ctx *kernel.PoolBlock) {
	k := d.k
	k.AccessPool(ctx, "request context")
	k.Compute(10 * des.Microsecond)
	if d.deleted {
		d.env.Hit(markLookasideAfterDelete)
	}
	k.ExFreeToNPagedLookasideList(&d.list, ctx)
	d.sys.IoFreeWorkItem(item)
	if k.InterlockedDecrement(d.outstanding) == 0 {
		k.KeSetEvent(d.idle, kernel.IO_NO_INCREMENT, false)
	}
}

func (d *lookasideDrv) unload(_ *queues.DRIVER_OBJECT) {
	k := d.k
	if d.env.Is("correct") && k.InterlockedDecrement(d.outstanding) != 0 {
		k.KeWaitForSingleObject(d.idle, kernel.Infinite)
	}
	d.deleted = true
	k.ExDeleteNPagedLookasideList(&d.list)
	k.ExFreePool(d.ext)
	d.sys.IoDeleteDevice(d.dev)
}
