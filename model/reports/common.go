package reports

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/queues"
)

// threadPriority is the priority of the workload threads (a normal system
// thread, below the worker threads' 12).
const threadPriority = 8

// linkRead is the time to read one list link during a walk.
const linkRead = 50 * des.Nanosecond

// onList reports whether e is linked on the list at head, walking it as a
// driver's lookup does (the caller holds the list's lock). A scheduling
// point per entry visited (reading its link).
func onList(k *kernel.Kernel, head, e *kernel.LIST_ENTRY) bool {
	for p := head.Flink; p != head; p = p.Flink {
		k.Compute(linkRead)
		if p == e {
			return true
		}
	}
	return false
}

// driver is a loaded driver with one device on the system worker pools.
type driver struct {
	env *model.Env
	k   *kernel.Kernel
	sys *queues.System
	drv *queues.DRIVER_OBJECT
	dev *queues.DEVICE_OBJECT
}

// newDriver builds the worker pools (ReactOS defaults); load it from a
// thread with load.
func newDriver(env *model.Env) (*driver, error) {
	sys, err := queues.NewSystem(env.K, queues.DefaultPoolConfig())
	return &driver{env: env, k: env.K, sys: sys}, err
}

// load runs DriverEntry (one device named after the driver) from the
// calling thread.
func (d *driver) load(name string) {
	drv, st := d.sys.LoadDriver(name, func(o *queues.DRIVER_OBJECT) kernel.NTSTATUS {
		o.DriverUnload = func(*queues.DRIVER_OBJECT) {}
		dev, st := d.sys.IoCreateDevice(o, name+"0")
		d.dev = dev
		return st
	})
	if !kernel.NT_SUCCESS(st) {
		d.env.Violation("driver loads", "DriverEntry of %s failed with %v", name, st)
	}
	d.drv = drv
}

// delays are the workload's choices of when a racing request arrives:
// plainly late (after the work is done), or at once, or a little later.
var delays = []des.Duration{60 * des.Microsecond, 0, 3 * des.Microsecond, 8 * des.Microsecond}

// arrive waits for the workload's choice of delay named label.
func arrive(env *model.Env, label string) {
	env.K.Compute(delays[env.Choose(label, len(delays))])
}

// errorf is fmt.Errorf for end-of-run checks.
func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }
