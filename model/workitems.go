package model

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues"
)

// The work-item scenarios (files wi_*.go) re-create the bug classes of
// REFERENCE §6 items 6–10 and 12 on the executive and I/O work-item APIs
// of package queues: an item queued twice (doublequeue), freed while
// queued (freequeued), a driver unloaded under its own work (unloadwork)
// or under its own timer, DPC and system thread (unloadtimer),
// a thread waiting for its item while holding the lock the routine needs
// (lockwait), the delayed worker pool exhausted by routines that wait for
// each other (exhaustion), and a routine that returns at DISPATCH_LEVEL
// (badirql).
//
// Each driver is written the way a WDM driver is: DriverEntry creates a
// device and keeps its state in the device extension, dispatch code runs
// in the requesting thread, and deferred work runs in a system worker.
// Fields a real driver would not have (bookkeeping for coverage marks and
// invariants) are marked as model-only; they are plain Go values, so
// reading them is not a scheduling point and does not change the schedule.
//
// Every scenario's workload has a decision whose non-zero choices place a
// request, a cleanup or an unload inside the racy window, so most bugs
// need that one perturbation, not a lucky run of preemptions. Two need
// other things: lockwait's bug hangs on the plain schedule, and
// unloadwork's wait-then-unload-ex needs the worker held up between the
// routine's last signal and its return (an injected stall).
//
// Times shared by the work-item scenarios: short, so a run is a few
// hundred events and well under a millisecond of simulated time (the
// exhaustion scenario's ReactOS variant excepted: its detector works in
// seconds).
const (
	wiServiceTime = 10 * des.Microsecond // what a work routine spends on one request
	wiLateArrival = 60 * des.Microsecond // a request, cleanup or unload that comes after the work is done
)

// wiDriver is what every work-item scenario's device extension starts
// with: the run, its kernel, the worker pools and the driver's device.
type wiDriver struct {
	env *Env
	k   *kernel.Kernel
	sys *queues.System
	dev *queues.DEVICE_OBJECT // set by createDevice
}

// newWiDriver builds the worker pools for a scenario from cfg (usually
// queues.DefaultPoolConfig(), the ReactOS defaults).
func newWiDriver(env *Env, cfg queues.PoolConfig) (wiDriver, error) {
	sys, err := queues.NewSystem(env.K, cfg)
	return wiDriver{env: env, k: env.K, sys: sys}, err
}

// loadDriver loads a driver from the calling thread (the service control
// manager's, in a real system) and fails the run if DriverEntry fails: the
// scenarios' DriverEntry routines only fail if the model is broken.
func (w *wiDriver) loadDriver(name string, entry queues.DRIVER_INITIALIZE) *queues.DRIVER_OBJECT {
	drv, st := w.sys.LoadDriver(name, entry)
	if !kernel.NT_SUCCESS(st) {
		w.env.Violation("driver loads", "DriverEntry of %s failed with %v", name, st)
	}
	return drv
}

// createDevice is the IoCreateDevice call of the scenarios' DriverEntry
// routines: one device named after the driver, ext as its extension, kept
// in dev. On failure dev stays nil.
func (w *wiDriver) createDevice(d *queues.DRIVER_OBJECT, ext any) kernel.NTSTATUS {
	dev, st := w.sys.IoCreateDevice(d, d.DriverName+"0")
	if !kernel.NT_SUCCESS(st) {
		return st
	}
	dev.DeviceExtension = ext
	w.dev = dev
	return kernel.STATUS_SUCCESS
}

// wiCountCheck is an end-of-run invariant: got() must equal want, the
// number of requests the workload issued and the driver must have served.
func wiCountCheck(what string, want int, got func() int) func() error {
	return func() error {
		if n := got(); n != want {
			return fmt.Errorf("%s: %d of %d requests served", what, n, want)
		}
		return nil
	}
}
