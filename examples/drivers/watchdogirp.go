package drivers

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/queues"
)

// watchdogirp: a driver sends reads it builds itself to a disk and arms a
// watchdog timer for each; if the timer fires first, its DPC cancels the
// read with IoCancelIrp. A driver may cancel only a pending IRP it
// allocated (REFERENCE §2.7J), and the completion routine and the
// watchdog's DPC race: KeCancelTimer returns FALSE once the timer has
// expired, even though the DPC has not run yet (§4.8). So each read holds
// two references, one for the completion routine and one for the
// watchdog, and whichever drops the last one frees the IRP. The bug frees
// the IRP in the completion routine after KeCancelTimer, whatever it
// returned: a DPC already queued then cancels freed memory.

// WatchdogIrp is the scenario.
var WatchdogIrp = &model.Scenario{
	Name: "watchdogirp",
	Doc: "A driver times out its own reads with a watchdog timer whose DPC calls IoCancelIrp. The completion " +
		"routine and the DPC each hold a reference to the IRP and the last one frees it; the bug frees it in " +
		"the completion routine although KeCancelTimer said the DPC was already on its way.",
	Section: "REFERENCE §2.7J, §4.8",
	Variants: []model.Variant{
		{Name: "correct", Doc: "completion routine and watchdog DPC each drop a reference; the last one frees the IRP"},
		{Name: "free-in-completion", Bug: true, Doc: "the completion routine frees the IRP even when KeCancelTimer returned FALSE: the watchdog DPC then cancels a freed IRP",
			Want: "bugcheck 0xD5"},
	},
	Setup: setupWatchdogIrp,
}

const wdReads = 3

// wdRead is one read in flight with its watchdog.
type wdRead struct {
	irp   *kernel.IRP
	iosb  kernel.IO_STATUS_BLOCK
	timer *kernel.KTIMER
	dpc   *kernel.KDPC
	refs  *kernel.Cell // completion routine + watchdog
}

// wdExt is the driver's device extension.
type wdExt struct {
	env         *model.Env
	k           *kernel.Kernel
	sys         *queues.System
	dev         *queues.DEVICE_OBJECT
	disk        *queues.DEVICE_OBJECT
	thread      *kernel.Thread
	outstanding *kernel.Cell   // reads not yet freed, plus one while the thread issues
	idle        *kernel.KEVENT // set when outstanding drops to zero
	done        *kernel.Cell   // reads that completed, whichever way
}

func setupWatchdogIrp(env *model.Env) error {
	k := env.K
	sys, err := queues.NewSystem(k, queues.DefaultPoolConfig())
	if err != nil {
		return err
	}
	x := &wdExt{env: env, k: k, sys: sys}
	k.PsCreateSystemThread("scm", 8, func() {
		x.disk = sys.NewSimDevice("disk", 6*des.Microsecond).Device
		drv, st := sys.LoadDriver("watchdog", x.driverEntry)
		if st != kernel.STATUS_SUCCESS {
			env.Violation("driver loads", "%v", st)
			return
		}
		k.KeDelayExecutionThread(20 * des.Microsecond)
		env.BeginDrain()
		sys.UnloadDriver(drv)
	})
	env.AtEnd("every read completed", func() error {
		if n := x.done.Peek(); n != wdReads {
			return fmt.Errorf("%d of %d reads completed", n, wdReads)
		}
		return nil
	})
	return nil
}

func (x *wdExt) driverEntry(d *queues.DRIVER_OBJECT) kernel.NTSTATUS {
	k := x.k
	dev, st := x.sys.IoCreateDevice(d, "watchdog0")
	if st != kernel.STATUS_SUCCESS {
		return st
	}
	x.dev = dev
	dev.DeviceExtension = x
	x.outstanding = k.NewCell("reads outstanding", 1) // the thread's own count
	x.done = k.NewCell("reads completed", 0)
	x.idle = k.KeInitializeEvent("no reads outstanding", kernel.NotificationEvent, false)
	x.thread = k.PsCreateSystemThread("reader", 8, x.issue)
	d.DriverUnload = x.unload
	return kernel.STATUS_SUCCESS
}

// issue sends the reads, each with a watchdog due around the disk's
// latency, so that either may come first.
func (x *wdExt) issue() {
	k := x.k
	for i := range wdReads {
		r := &wdRead{refs: k.NewCell(fmt.Sprintf("read%d refs", i), 2)}
		r.irp = x.sys.IoBuildAsynchronousFsdRequest(queues.IRP_MJ_READ, x.disk, &r.iosb, fmt.Sprintf("read%d", i))
		r.timer = k.KeInitializeTimer(fmt.Sprintf("read%d watchdog", i))
		r.dpc = k.KeInitializeDpc(fmt.Sprintf("read%d watchdog dpc", i), x.watchdog, r)
		k.IoSetCompletionRoutine(r.irp, x.readDone, r, true, true, true)
		k.InterlockedIncrement(x.outstanding)
		due := []des.Duration{30, 6, 5, 7}[x.env.Choose("watchdog due", 4)] * des.Microsecond
		k.KeSetTimer(r.timer, due, r.dpc)
		x.sys.IoCallDriver(x.disk, r.irp)
		k.KeDelayExecutionThread(2 * des.Microsecond)
	}
	x.release()
}

// watchdog is the timer's DPC: the read is late, cancel it. The IRP is
// still allocated because this DPC holds a reference to it.
func (x *wdExt) watchdog(_ *kernel.KDPC, ctx, _, _ any) {
	r := ctx.(*wdRead)
	x.k.IoCancelIrp(r.irp)
	x.drop(r)
}

// readDone is the completion routine. If KeCancelTimer stopped the timer,
// the watchdog will never run and its reference is dropped here too.
func (x *wdExt) readDone(_ any, irp *kernel.IRP, ctx any) kernel.NTSTATUS {
	k := x.k
	r := ctx.(*wdRead)
	k.InterlockedIncrement(x.done)
	stopped := k.KeCancelTimer(r.timer)
	if x.env.Is("free-in-completion") {
		k.IoFreeIrp(irp)
		x.release()
		return kernel.STATUS_MORE_PROCESSING_REQUIRED
	}
	if stopped {
		x.drop(r)
	}
	x.drop(r)
	return kernel.STATUS_MORE_PROCESSING_REQUIRED
}

// drop releases one reference to r; the last one frees the IRP.
func (x *wdExt) drop(r *wdRead) {
	if x.k.InterlockedDecrement(r.refs) == 0 {
		x.k.IoFreeIrp(r.irp)
		x.release()
	}
}

// release drops one outstanding count and signals idle at zero.
func (x *wdExt) release() {
	if x.k.InterlockedDecrement(x.outstanding) == 0 {
		x.k.KeSetEvent(x.idle, kernel.IO_NO_INCREMENT, false)
	}
}

// unload waits for every read to be freed, then for the watchdog DPCs
// that freed one to return out of the image.
func (x *wdExt) unload(*queues.DRIVER_OBJECT) {
	k := x.k
	k.KeWaitForSingleObject(x.thread.Object(), kernel.Infinite)
	k.KeWaitForSingleObject(x.idle, kernel.Infinite)
	k.KeFlushQueuedDpcs()
	x.sys.IoDeleteDevice(x.dev)
}
