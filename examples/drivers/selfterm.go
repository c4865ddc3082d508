package drivers

import (
	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/queues"
)

// selfterm: a driver's polling thread ends itself with
// PsTerminateSystemThread when DriverUnload asks it to stop (REFERENCE
// §4.18). DriverUnload must then wait on the thread object, which is
// signalled only once the thread has left the driver's code. The bug
// waits on a "stopped" event the thread sets just before it terminates:
// the thread may still be executing the driver's code (the call to
// PsTerminateSystemThread) when the image is unmapped (0xCE, REFERENCE
// §6.8).

// SelfTerm is the scenario.
var SelfTerm = &model.Scenario{
	Name: "selfterm",
	Doc: "A polling thread ends with PsTerminateSystemThread when unload asks it to stop; unload waits on the " +
		"thread object. The bug waits on an event the thread sets just before terminating, and unmaps the " +
		"image while the thread is still in its code.",
	Section: "REFERENCE §4.18, §6.8",
	Variants: []model.Variant{
		{Name: "correct", Doc: "DriverUnload waits on the thread object"},
		{Name: "wait-event", Bug: true, Doc: "DriverUnload waits on an event the thread sets before PsTerminateSystemThread", Want: "0xCE"},
	},
	Setup: setupSelfTerm,
}

type selfTermDrv struct {
	env     *model.Env
	k       *kernel.Kernel
	sys     *queues.System
	poller  *kernel.Thread
	stop    *kernel.KEVENT
	stopped *kernel.KEVENT
	polls   int
}

func setupSelfTerm(env *model.Env) error {
	k := env.K
	sys, err := queues.NewSystem(k, queues.DefaultPoolConfig())
	if err != nil {
		return err
	}
	x := &selfTermDrv{env: env, k: k, sys: sys}
	k.PsCreateSystemThread("scm", 8, func() {
		drv, st := sys.LoadDriver("poller", x.driverEntry)
		if st != kernel.STATUS_SUCCESS {
			env.Violation("driver loads", "%v", st)
			return
		}
		k.KeDelayExecutionThread(des.Duration(5+env.Choose("unload at", 4)*4) * des.Microsecond)
		sys.UnloadDriver(drv)
	})
	return nil
}

func (x *selfTermDrv) driverEntry(d *queues.DRIVER_OBJECT) kernel.NTSTATUS {
	k := x.k
	x.stop = k.KeInitializeEvent("stop", kernel.NotificationEvent, false)
	x.stopped = k.KeInitializeEvent("stopped", kernel.NotificationEvent, false)
	x.poller = k.PsCreateSystemThread("poller", 8, x.poll)
	d.DriverUnload = x.unload
	return kernel.STATUS_SUCCESS
}

// poll polls the device every 3µs until asked to stop, then ends itself.
func (x *selfTermDrv) poll() {
	k := x.k
	for k.KeWaitForSingleObject(x.stop, 3*des.Microsecond) == kernel.STATUS_TIMEOUT {
		x.polls++
		k.Compute(des.Microsecond)
	}
	k.KeSetEvent(x.stopped, kernel.IO_NO_INCREMENT, false)
	k.PsTerminateSystemThread(kernel.STATUS_SUCCESS)
}

func (x *selfTermDrv) unload(*queues.DRIVER_OBJECT) {
	k := x.k
	k.KeSetEvent(x.stop, kernel.IO_NO_INCREMENT, false)
	if x.env.Is("wait-event") {
		k.KeWaitForSingleObject(x.stopped, kernel.Infinite)
		return
	}
	k.KeWaitForSingleObject(x.poller.Object(), kernel.Infinite)
}
