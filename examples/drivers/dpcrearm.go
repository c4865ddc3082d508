package drivers

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/queues"
)

// DpcRearm is a polling driver with no interrupt: a one-shot KTIMER whose
// DPC samples the device and re-arms the timer for the next sample, with a
// delay that depends on what it saw (so it cannot be a periodic timer).
// Unload must stop the chain: set a "stopping" flag under the lock the DPC
// re-arms under, cancel the timer, then KeFlushQueuedDpcs. The bug cancels
// and flushes without the flag: a DPC running on another processor re-arms
// the timer after KeCancelTimer, and the next expiry runs a DPC of the
// unloaded image.
var DpcRearm = &model.Scenario{
	Name: "dpcrearm",
	Doc: "A one-shot timer re-armed by its own DPC (adaptive polling), stopped at unload. The bug cancels the " +
		"timer and flushes DPCs without first telling the DPC to stop re-arming: a DPC running at the cancel " +
		"arms the timer again, and its next DPC runs in the unloaded image.",
	Section: "REFERENCE §4.8, §6.8",
	Variants: []model.Variant{
		{Name: "correct", Doc: "unload sets 'stopping' under the DPC's lock, then KeCancelTimer and KeFlushQueuedDpcs"},
		{Name: "cancel-only", Bug: true, Doc: "unload calls KeCancelTimer and KeFlushQueuedDpcs but never stops the DPC from re-arming",
			Want: "0xCE"},
	},
	Setup: dpcRearmSetup,
}

// drExt is the device extension.
type drExt struct {
	env      *model.Env
	k        *kernel.Kernel
	sys      *queues.System
	dev      *queues.DEVICE_OBJECT
	lock     *kernel.KSPIN_LOCK
	timer    *kernel.KTIMER
	dpc      *kernel.KDPC
	stopping bool // guarded by lock
	samples  int  // DPC only
}

func dpcRearmSetup(env *model.Env) error {
	k := env.K
	sys, err := queues.NewSystem(k, queues.DefaultPoolConfig())
	if err != nil {
		return err
	}
	x := &drExt{env: env, k: k, sys: sys}
	k.PsCreateSystemThread("scm", 8, func() {
		drv, st := sys.LoadDriver("poller", x.driverEntry)
		if st != kernel.STATUS_SUCCESS {
			env.Violation("driver loads", "%v", st)
			return
		}
		// The service stops between two samples or while one is running.
		k.KeDelayExecutionThread(des.Duration(30+env.Choose("unload at", 4)*3) * des.Microsecond)
		env.BeginDrain()
		sys.UnloadDriver(drv)
	})
	env.AtEnd("the device was sampled", func() error {
		if x.samples == 0 {
			return fmt.Errorf("no sample taken")
		}
		return nil
	})
	return nil
}

func (x *drExt) driverEntry(d *queues.DRIVER_OBJECT) kernel.NTSTATUS {
	k := x.k
	dev, st := x.sys.IoCreateDevice(d, "poller0")
	if st != kernel.STATUS_SUCCESS {
		return st
	}
	x.dev = dev
	dev.DeviceExtension = x
	x.lock = k.KeInitializeSpinLock("poll lock")
	x.timer = k.KeInitializeTimer("poll timer")
	x.dpc = k.KeInitializeDpc("poll dpc", x.pollDpc, nil)
	k.KeSetTimer(x.timer, 5*des.Microsecond, x.dpc)
	d.DriverUnload = x.unload
	return kernel.STATUS_SUCCESS
}

// pollDpc samples the device and arms the timer for the next sample: soon
// if the device was busy, later if not.
func (x *drExt) pollDpc(*kernel.KDPC, any, any, any) {
	k := x.k
	k.Compute(des.Duration(2+x.env.Choose("sample time", 3)) * des.Microsecond)
	x.samples++
	next := des.Duration(4+x.env.Choose("device busy", 2)*4) * des.Microsecond
	k.KeAcquireSpinLockAtDpcLevel(x.lock)
	if !x.stopping {
		k.KeSetTimer(x.timer, next, x.dpc)
	}
	k.KeReleaseSpinLockFromDpcLevel(x.lock)
}

// unload stops the re-arming chain, then the timer, then waits out a DPC
// still queued or running (REFERENCE §4.8: KeFlushQueuedDpcs).
func (x *drExt) unload(*queues.DRIVER_OBJECT) {
	k := x.k
	if x.env.Is("correct") {
		old := k.KeAcquireSpinLock(x.lock)
		x.stopping = true
		k.KeReleaseSpinLock(x.lock, old)
	}
	k.KeCancelTimer(x.timer)
	k.KeFlushQueuedDpcs()
	x.sys.IoDeleteDevice(x.dev)
}
