package model

import (
	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues"
)

// Coverage marks of these scenarios (see Mark).
var (
	markUnloadedBeforeReturn = NewMark("unloadwork: image unloaded before the work routine returned")
)

// A driver refreshes its device state in a work item queued from a
// dispatch routine, and the service control manager unloads it some time
// later (REFERENCE §6.8). ExQueueWorkItem keeps no reference on the driver:
// if the unload comes before the routine has run, or before it has
// returned, the worker executes unmapped code: 0xCE. Waiting in
// DriverUnload for an event the routine sets last does not help, because
// the routine still has to return through the driver's image after the
// signal. IoQueueWorkItem holds a reference on the device object, and so
// on the image, until its kernel wrapper has seen the routine return.

func init() {
	Register(&Scenario{
		Name: "unloadwork",
		Doc: "A driver refreshes device state in a work item queued from a dispatch routine; the service " +
			"control manager unloads the driver soon after. With ExQueueWorkItem an unload before the " +
			"routine has run or returned leaves the worker executing unmapped code (0xCE), even when " +
			"DriverUnload waits for an event the routine sets as its last act. IoQueueWorkItem's device " +
			"reference keeps the image until the routine has returned.",
		Section: "§6.8, §1.1, §1.2",
		Variants: []Variant{
			{Name: "correct", Doc: "IoQueueWorkItem; DriverUnload just deletes the device"},
			{Name: "ex-item", Bug: true, Doc: "ExQueueWorkItem; DriverUnload deletes the device and returns",
				Marks: []*Mark{markUnloadedBeforeReturn}, Want: "0xCE"},
			{Name: "wait-then-unload-ex", Bug: true, Doc: "ExQueueWorkItem; DriverUnload waits for the event the routine sets before it returns",
				Marks: []*Mark{markUnloadedBeforeReturn}, Want: "0xCE"},
		},
		Setup: setupUnloadWork,
	})
}

// uwExtension is the device extension.
type uwExtension struct {
	wiDriver
	item    queues.WORK_QUEUE_ITEM // the Ex variants' refresh item
	done    *kernel.KEVENT         // set by the refresh routine as its last act
	refresh *kernel.Cell           // refreshes done
}

func setupUnloadWork(env *Env) error {
	k := env.K
	w, err := newWiDriver(env, queues.DefaultPoolConfig())
	if err != nil {
		return err
	}
	x := &uwExtension{wiDriver: w, refresh: k.NewCell("refreshes", 0),
		done: k.KeInitializeEvent("refresh done", kernel.NotificationEvent, false)}
	k.PsCreateSystemThread("scm", 8, func() {
		drv := x.loadDriver("uw", x.driverEntry)
		x.dispatchRefresh()
		// Plainly the unload comes long after the refresh; otherwise at
		// once (the item still queued) or while the routine runs.
		delay := []des.Duration{wiLateArrival, 0, wiServiceTime / 2}
		k.Compute(delay[env.Choose("unloadwork: time until the driver is unloaded", len(delay))])
		x.sys.UnloadDriver(drv)
		// Model-only: the worker counts a routine as processed after it has
		// returned into the worker; the unload cannot be overtaken between
		// the image going and this check (no scheduling point).
		if !drv.ImageLoaded() && x.sys.Queue(queues.DelayedWorkQueue).Processed == 0 {
			env.Hit(markUnloadedBeforeReturn)
		}
		env.BeginDrain()
	})
	return nil
}

func (x *uwExtension) driverEntry(d *queues.DRIVER_OBJECT) kernel.NTSTATUS {
	if st := x.createDevice(d, x); !kernel.NT_SUCCESS(st) {
		return st
	}
	if !x.env.Is("correct") {
		d.ExInitializeWorkItem(&x.item, x.exRefresh, x)
	}
	d.DriverUnload = x.driverUnload
	return kernel.STATUS_SUCCESS
}

// dispatchRefresh is the IOCTL that asks for a refresh at PASSIVE_LEVEL.
func (x *uwExtension) dispatchRefresh() kernel.NTSTATUS {
	if !x.env.Is("correct") {
		x.sys.ExQueueWorkItem(&x.item, queues.DelayedWorkQueue)
		return kernel.STATUS_PENDING
	}
	iw := x.sys.IoAllocateWorkItem(x.dev)
	if iw == nil {
		return kernel.STATUS_INSUFFICIENT_RESOURCES
	}
	x.sys.IoQueueWorkItem(iw, x.ioRefresh, queues.DelayedWorkQueue, iw)
	return kernel.STATUS_PENDING
}

func (x *uwExtension) refreshDevice() {
	x.k.Compute(wiServiceTime)
	x.k.InterlockedIncrement(x.refresh)
	x.k.KeSetEvent(x.done, kernel.IO_NO_INCREMENT, false)
}

func (x *uwExtension) exRefresh(any) { x.refreshDevice() }

func (x *uwExtension) ioRefresh(_ *queues.DEVICE_OBJECT, context any) {
	x.refreshDevice()
	x.sys.IoFreeWorkItem(context.(*queues.IO_WORKITEM))
}

func (x *uwExtension) driverUnload(*queues.DRIVER_OBJECT) {
	if x.env.Is("wait-then-unload-ex") {
		x.k.KeWaitForSingleObject(x.done, kernel.Infinite)
	}
	x.sys.IoDeleteDevice(x.dev)
}
