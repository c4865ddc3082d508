package drivers

import (
	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/queues"
)

// dpcref: each request arms a timeout timer whose DPC handles the timeout;
// the request takes a reference on the device (ObReferenceObject) before it
// arms the timer and the DPC drops it (ObDereferenceObject) as its last
// act. The reference keeps the device, and through it the driver image,
// alive until the dereference (REFERENCE §1.2) — but the dereference runs
// inside the DPC routine, which still has to return through the driver's
// code. If it was the last reference the image is unloaded under the
// returning DPC: 0xCE (§6.8). A reference handed to code of the same
// driver cannot protect that code; unload has to wait for the DPCs
// themselves (KeFlushQueuedDpcs after cancelling the timers).

var markDpcRefLast = model.NewMark("dpcref: a timeout DPC dropped the last reference on the device")

// DpcRef is the scenario.
var DpcRef = &model.Scenario{
	Name: "dpcref",
	Doc: "Request timeouts are timer DPCs that hold a device reference taken with ObReferenceObject and " +
		"drop it as their last act. The bug has DriverUnload rely on that reference instead of flushing the " +
		"DPCs: the DPC's dereference unloads the image and the DPC returns into it.",
	Section: "§1.2, §4.8, §6.8",
	Variants: []model.Variant{
		{Name: "correct", Doc: "unload cancels the timers (dropping the references of those it cancelled) and calls KeFlushQueuedDpcs before IoDeleteDevice"},
		{Name: "ref-only", Bug: true, Doc: "unload cancels the timers and deletes the device, counting on the DPC's reference",
			Marks: []*model.Mark{markDpcRefLast}, Want: "0xCE"},
	},
	Setup: setupDpcRef,
}

const dpcRefRequests = 2

type dpcRefDrv struct {
	env    *model.Env
	k      *kernel.Kernel
	sys    *queues.System
	dev    *queues.DEVICE_OBJECT
	timers [dpcRefRequests]*kernel.KTIMER
	dpcs   [dpcRefRequests]*kernel.KDPC
}

func setupDpcRef(env *model.Env) error {
	k := env.K
	sys, err := queues.NewSystem(k, queues.DefaultPoolConfig())
	if err != nil {
		return err
	}
	d := &dpcRefDrv{env: env, k: k, sys: sys}
	loaded := k.KeInitializeEvent("loaded", kernel.NotificationEvent, false)
	armed := k.KeInitializeEvent("requests sent", kernel.NotificationEvent, false)
	k.PsCreateSystemThread("admin", 8, func() {
		drv, st := sys.LoadDriver("timeouts", d.driverEntry)
		if !kernel.NT_SUCCESS(st) {
			env.Violation("load", "DriverEntry failed: %#x", uint32(st))
			return
		}
		k.KeSetEvent(loaded, kernel.IO_NO_INCREMENT, false)
		k.KeWaitForSingleObject(armed, kernel.Infinite)
		// The administrator stops the driver a little later; when exactly
		// is the workload's decision (the usual moment first: the first
		// timeout has fired, the second is still pending).
		delays := [...]des.Duration{12 * des.Microsecond, 22 * des.Microsecond, 17 * des.Microsecond}
		k.KeDelayExecutionThread(delays[env.Choose("unload delay", len(delays))])
		sys.UnloadDriver(drv)
	})
	k.PsCreateSystemThread("app", 8, func() {
		k.KeWaitForSingleObject(loaded, kernel.Infinite)
		for i := range dpcRefRequests {
			d.request(i, des.Duration(10+10*i)*des.Microsecond)
		}
		k.KeSetEvent(armed, kernel.IO_NO_INCREMENT, false)
	})
	return nil
}

func (d *dpcRefDrv) driverEntry(drv *queues.DRIVER_OBJECT) kernel.NTSTATUS {
	dev, st := d.sys.IoCreateDevice(drv, "timeouts0")
	if !kernel.NT_SUCCESS(st) {
		return st
	}
	d.dev = dev
	for i := range d.timers {
		d.timers[i] = d.k.KeInitializeTimer("timeout")
		d.dpcs[i] = drv.KeInitializeDpc("timeout", d.timeout, nil)
	}
	drv.DriverUnload = d.unload
	return kernel.STATUS_SUCCESS
}

// request arms request i's timeout, holding a device reference for it.
func (d *dpcRefDrv) request(i int, after des.Duration) {
	d.sys.ObReferenceObject(d.dev)
	d.k.KeSetTimer(d.timers[i], after, d.dpcs[i])
}

// timeout is the timer DPC: handle the timeout, drop the request's reference.
func (d *dpcRefDrv) timeout(_ *kernel.KDPC, _, _, _ any) {
	d.k.Compute(3 * des.Microsecond) // fail the request, reset the device
	if d.dev.Deleted() && d.dev.References() == 1 {
		d.env.Hit(markDpcRefLast)
	}
	d.sys.ObDereferenceObject(d.dev)
}

func (d *dpcRefDrv) unload(_ *queues.DRIVER_OBJECT) {
	k := d.k
	for _, t := range d.timers {
		if k.KeCancelTimer(t) {
			d.sys.ObDereferenceObject(d.dev) // its DPC will not run
		}
	}
	if d.env.Is("correct") {
		k.KeFlushQueuedDpcs()
	}
	d.sys.IoDeleteDevice(d.dev)
}
