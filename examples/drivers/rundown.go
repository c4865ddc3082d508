package drivers

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/queues"
)

// Rundown is a driver with a session context (nonpaged pool) that
// notifications and the device's DPC use while the session closes. Each
// user takes run-down protection first (ExAcquireRundownProtection) and
// gives it back after its last touch; close calls
// ExWaitForRundownProtectionRelease, after which acquires fail, and frees
// the context when it returns. A notification hands its work to an I/O
// work item, which carries the hold to the worker and releases it there.
// The bugs queue the work item even when the acquire failed, and release
// the hold before the routine's last touch of the context.
var Rundown = &model.Scenario{
	Name: "rundown",
	Doc: "A session context guarded by run-down protection, used by a DPC and by I/O work items queued from " +
		"notifications, freed at close after ExWaitForRundownProtectionRelease. The bugs ignore a failed " +
		"ExAcquireRundownProtection, or release before the last use of the context.",
	Section: "REFERENCE §4.8, §1.2",
	Variants: []model.Variant{
		{Name: "correct", Doc: "acquire before queueing (skip on FALSE), release as the work routine's and the DPC's last act"},
		{Name: "ignore-false", Bug: true, Doc: "a notification queues its work item whether or not the acquire succeeded: the routine uses the freed context",
			Want: "0xD5|no hold outstanding"},
		{Name: "release-early", Bug: true, Doc: "the work routine releases its hold, then updates the context's statistics",
			Want: "0xD5"},
	},
	Setup: rundownSetup,
}

const (
	rdNotes      = 3
	rdInterrupts = 3
)

// rdExt is the device extension.
type rdExt struct {
	env     *model.Env
	k       *kernel.Kernel
	sys     *queues.System
	dev     *queues.DEVICE_OBJECT
	intr    *kernel.KINTERRUPT
	dpc     *kernel.KDPC
	ref     *kernel.EX_RUNDOWN_REF
	session *kernel.PoolBlock
	used    int // uses of the session (DPC and work routines)
	applied int // notifications a work routine applied
	dropped int // notifications dropped because the session was closing
}

func rundownSetup(env *model.Env) error {
	k := env.K
	sys, err := queues.NewSystem(k, queues.DefaultPoolConfig())
	if err != nil {
		return err
	}
	x := &rdExt{env: env, k: k, sys: sys}
	k.PsCreateSystemThread("app", 8, func() {
		drv, st := sys.LoadDriver("session", x.driverEntry)
		if st != kernel.STATUS_SUCCESS {
			env.Violation("driver loads", "%v", st)
			return
		}
		at := k.Now()
		for range rdInterrupts {
			at = at.Add(des.Duration(2+env.Choose("interrupt gap", 3)*4) * des.Microsecond)
			k.DeviceInterrupt(x.intr, env.Choose("interrupt cpu", 2), at)
		}
		notifier := k.PsCreateSystemThread("notifier", 8, func() {
			for range rdNotes {
				k.KeDelayExecutionThread(des.Duration(1+env.Choose("notify gap", 3)*3) * des.Microsecond)
				x.notify()
			}
		})
		k.KeDelayExecutionThread(des.Duration(4+env.Choose("close at", 4)*4) * des.Microsecond)
		x.close()
		k.KeWaitForSingleObject(notifier.Object(), kernel.Infinite)
		env.BeginDrain()
		sys.UnloadDriver(drv)
	})
	env.AtEnd("every notification applied or dropped", func() error {
		if x.applied+x.dropped != rdNotes {
			return fmt.Errorf("%d applied + %d dropped of %d notifications", x.applied, x.dropped, rdNotes)
		}
		return nil
	})
	return nil
}

func (x *rdExt) driverEntry(d *queues.DRIVER_OBJECT) kernel.NTSTATUS {
	k := x.k
	dev, st := x.sys.IoCreateDevice(d, "session0")
	if st != kernel.STATUS_SUCCESS {
		return st
	}
	x.dev = dev
	dev.DeviceExtension = x
	x.session = k.ExAllocatePoolWithTag(kernel.NonPagedPool, 256, "Sess")
	x.ref = k.ExInitializeRundownProtection("session")
	x.dpc = k.KeInitializeDpc("session dpc", x.sessionDpc, nil)
	intr, err := k.IoConnectInterrupt("session", 5, func(*kernel.KINTERRUPT, any) bool {
		k.KeInsertQueueDpc(x.dpc, nil, nil)
		return true
	}, nil)
	if err != nil {
		k.ExFreePoolWithTag(x.session, "Sess")
		x.sys.IoDeleteDevice(dev)
		return kernel.STATUS_INSUFFICIENT_RESOURCES
	}
	x.intr = intr
	d.DriverUnload = x.unload
	return kernel.STATUS_SUCCESS
}

// sessionDpc records the device event in the session, if it is still open.
func (x *rdExt) sessionDpc(*kernel.KDPC, any, any, any) {
	k := x.k
	if !k.ExAcquireRundownProtection(x.ref) {
		return
	}
	k.AccessPool(x.session, "dpc: event count")
	x.used++
	k.ExReleaseRundownProtection(x.ref)
}

// notify is the driver's notification callback: it takes a hold for the
// work item, which releases it.
func (x *rdExt) notify() {
	k := x.k
	held := k.ExAcquireRundownProtection(x.ref)
	if !held && !x.env.Is("ignore-false") {
		x.dropped++
		return // the session is closing: drop the notification
	}
	item := x.sys.IoAllocateWorkItem(x.dev)
	if item == nil {
		if held {
			k.ExReleaseRundownProtection(x.ref)
		}
		x.dropped++
		return
	}
	x.sys.IoQueueWorkItem(item, x.work, queues.DelayedWorkQueue, item)
}

// work is the I/O work routine: it uses the session under the hold the
// notification took, then frees its work item.
func (x *rdExt) work(_ *queues.DEVICE_OBJECT, ctx any) {
	k := x.k
	k.AccessPool(x.session, "work: apply notification")
	k.Compute(2 * des.Microsecond)
	x.used++
	x.applied++
	if x.env.Is("release-early") {
		k.ExReleaseRundownProtection(x.ref)
		k.Compute(des.Microsecond / 2) // tracing the notification
		k.AccessPool(x.session, "work: statistics")
	} else {
		k.AccessPool(x.session, "work: statistics")
		k.ExReleaseRundownProtection(x.ref)
	}
	x.sys.IoFreeWorkItem(ctx.(*queues.IO_WORKITEM))
}

// close ends the session: no new user after the run-down begins, and the
// context goes once the last user has released.
func (x *rdExt) close() {
	x.k.ExWaitForRundownProtectionRelease(x.ref)
	x.k.ExFreePoolWithTag(x.session, "Sess")
}

func (x *rdExt) unload(*queues.DRIVER_OBJECT) {
	k := x.k
	k.IoDisconnectInterrupt(x.intr)
	k.KeRemoveQueueDpc(x.dpc)
	k.KeFlushQueuedDpcs()
	x.sys.IoDeleteDevice(x.dev)
}
