package drivers

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/queues"
)

// iotimeout: a legacy driver times out stuck requests with the I/O
// manager's one-second timer (IoInitializeTimer / IoStartTimer). Each
// request waits in the driver's list with a deadline counted in IoTimer
// ticks; the IoTimer routine, at DISPATCH_LEVEL under the list's spin
// lock, fails every request whose deadline passed. The device completes
// some requests first. Unload stops the timer, and, because IoStopTimer
// does not wait for a tick already running on another processor
// (REFERENCE §1.11), flushes the DPCs before the image goes. The bug
// unloads right after IoStopTimer.

// IoTimeout is the scenario.
var IoTimeout = &model.Scenario{
	Name: "iotimeout",
	Doc: "Requests time out through an IoTimer routine run once a second by the I/O manager; the device answers " +
		"some first. Unload stops the timer and flushes DPCs; the bug unloads right after IoStopTimer, while a " +
		"tick may still run the routine on the other processor.",
	Section: "REFERENCE §1.11, §6.8",
	Variants: []model.Variant{
		{Name: "correct", Doc: "unload calls IoStopTimer, then KeFlushQueuedDpcs, then deletes the device"},
		{Name: "no-flush", Bug: true, Doc: "unload deletes the device right after IoStopTimer: a tick under way returns into the unloaded image",
			Want: "0xCE"},
	},
	Setup: setupIoTimeout,
}

const ioTimeoutRequests = 3

type ioTimeoutReq struct {
	irp      *kernel.IRP
	iosb     kernel.IO_STATUS_BLOCK
	deadline int // in IoTimer ticks
	link     kernel.LIST_ENTRY
}

type ioTimeoutDev struct {
	env   *model.Env
	k     *kernel.Kernel
	sys   *queues.System
	dev   *queues.DEVICE_OBJECT
	lock  *kernel.KSPIN_LOCK
	head  kernel.LIST_ENTRY
	ticks int
	reqs  [ioTimeoutRequests]*ioTimeoutReq
}

func setupIoTimeout(env *model.Env) error {
	k := env.K
	sys, err := queues.NewSystem(k, queues.DefaultPoolConfig())
	if err != nil {
		return err
	}
	x := &ioTimeoutDev{env: env, k: k, sys: sys}
	k.PsCreateSystemThread("app", 8, func() {
		drv, st := sys.LoadDriver("legacy", x.driverEntry)
		if st != kernel.STATUS_SUCCESS {
			env.Violation("driver loads", "%v", st)
			return
		}
		for i := range x.reqs {
			r := &ioTimeoutReq{}
			r.link.Container = r
			r.irp = sys.IoBuildAsynchronousFsdRequest(queues.IRP_MJ_READ, x.dev, &r.iosb, fmt.Sprintf("req%d", i))
			x.reqs[i] = r
			sys.IoCallDriver(x.dev, r.irp)
		}
		// The device answers one request before the first tick, at a time
		// the workload picks; the others time out.
		k.KeDelayExecutionThread(des.Duration(200+env.Choose("device answers at", 3)*300) * des.Millisecond)
		x.complete(x.reqs[env.Choose("answered request", ioTimeoutRequests)], kernel.STATUS_SUCCESS)
		for _, r := range x.reqs {
			k.KeWaitForSingleObject(r.irp.Done(), kernel.Infinite)
		}
		// Unload lands close to a tick: just before, on, or just after it.
		k.KeDelayExecutionThread(des.Second - des.Duration(int64(k.Now())%int64(des.Second)) - 2*des.Microsecond +
			des.Duration(env.Choose("unload near the tick", 3))*2*des.Microsecond)
		sys.UnloadDriver(drv)
	})
	env.AtEnd("every request completed", func() error {
		for i, r := range x.reqs {
			if r == nil || !r.irp.Completed() {
				return fmt.Errorf("request %d not completed", i)
			}
		}
		return nil
	})
	return nil
}

func (x *ioTimeoutDev) driverEntry(d *queues.DRIVER_OBJECT) kernel.NTSTATUS {
	k := x.k
	dev, st := x.sys.IoCreateDevice(d, "legacy0")
	if st != kernel.STATUS_SUCCESS {
		return st
	}
	x.dev = dev
	x.lock = k.KeInitializeSpinLock("requests")
	k.InitializeListHead(&x.head)
	d.MajorFunction[queues.IRP_MJ_READ] = x.read
	d.DriverUnload = x.unload
	x.sys.IoInitializeTimer(dev, x.tick, nil)
	x.sys.IoStartTimer(dev)
	return kernel.STATUS_SUCCESS
}

// read queues the request with a two-tick deadline.
func (x *ioTimeoutDev) read(_ *queues.DEVICE_OBJECT, irp *kernel.IRP) kernel.NTSTATUS {
	k := x.k
	var r *ioTimeoutReq
	for _, q := range x.reqs {
		if q != nil && q.irp == irp {
			r = q // the request's extension (the app files it before sending)
		}
	}
	k.IoMarkIrpPending(irp)
	old := k.KeAcquireSpinLock(x.lock)
	r.deadline = x.ticks + 2
	k.InsertTailList(&x.head, &r.link)
	k.KeReleaseSpinLock(x.lock, old)
	return kernel.STATUS_PENDING
}

// complete takes r off the list (if still there) and completes it.
func (x *ioTimeoutDev) complete(r *ioTimeoutReq, st kernel.NTSTATUS) {
	k := x.k
	old := k.KeAcquireSpinLock(x.lock)
	if r.link.Flink == nil {
		k.KeReleaseSpinLock(x.lock, old)
		return // timed out already
	}
	k.RemoveEntryList(&r.link)
	r.link.Flink, r.link.Blink = nil, nil
	k.KeReleaseSpinLock(x.lock, old)
	r.irp.IoStatus = kernel.IO_STATUS_BLOCK{Status: st}
	k.IoCompleteRequest(r.irp, kernel.IO_NO_INCREMENT)
}

// tick is the IoTimer routine: fail the requests whose deadline passed.
func (x *ioTimeoutDev) tick(*queues.DEVICE_OBJECT, any) {
	k := x.k
	k.KeAcquireSpinLockAtDpcLevel(x.lock)
	x.ticks++
	var expired []*ioTimeoutReq
	for e := x.head.Flink; e != &x.head; {
		r := e.Container.(*ioTimeoutReq)
		e = e.Flink
		if r.deadline <= x.ticks {
			k.RemoveEntryList(&r.link)
			r.link.Flink, r.link.Blink = nil, nil
			expired = append(expired, r)
		}
	}
	k.KeReleaseSpinLockFromDpcLevel(x.lock)
	for _, r := range expired {
		r.irp.IoStatus = kernel.IO_STATUS_BLOCK{Status: kernel.STATUS_CANCELLED}
		k.IoCompleteRequest(r.irp, kernel.IO_NO_INCREMENT)
	}
	k.KeStallExecutionProcessor(3) // the rest of the routine's housekeeping
}

func (x *ioTimeoutDev) unload(*queues.DRIVER_OBJECT) {
	x.sys.IoStopTimer(x.dev)
	if !x.env.Is("no-flush") {
		x.k.KeFlushQueuedDpcs()
	}
	x.sys.IoDeleteDevice(x.dev)
}
