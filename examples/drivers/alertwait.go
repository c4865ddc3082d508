package drivers

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/queues"
)

// alertwait: a driver's worker thread waits alertably in kernel mode
// (KeWaitForSingleObjectEx with Alertable TRUE) on a semaphore counting
// queued requests, so that a diagnostic thread can nudge it with
// KeAlertThread to publish its statistics. An alertable wait returns
// STATUS_ALERTED when the thread is alerted, without acquiring the object
// (REFERENCE §4.10; learn.microsoft.com
// windows-hardware/drivers/ddi/wdm/nf-wdm-kewaitforsingleobject). The
// correct worker takes a request only on STATUS_WAIT_0 and re-waits after
// STATUS_ALERTED; the bug treats every status other than STATUS_TIMEOUT as
// "the semaphore was signalled" and takes a request nobody queued. A second
// bug waits in DriverUnload for the worker only, not for the diagnostic
// thread, which can still be executing the driver's code when the image is
// unmapped (0xCE, REFERENCE §4.18, §6.8).

// AlertWait is the scenario.
var AlertWait = &model.Scenario{
	Name: "alertwait",
	Doc: "A worker waits alertably on a request semaphore and is nudged with KeAlertThread to publish statistics. " +
		"The bug treats STATUS_ALERTED as a signalled semaphore and takes a request that was never queued.",
	Section: "REFERENCE §4.10, §4.18, §6.8",
	Variants: []model.Variant{
		{Name: "correct", Doc: "a request is taken only on STATUS_WAIT_0; STATUS_ALERTED publishes statistics and re-waits"},
		{Name: "alert-as-work", Bug: true, Doc: "any status but STATUS_TIMEOUT is taken as a signalled semaphore",
			Marks: []*model.Mark{markAlertMidWait}, Want: "invariant"},
		{Name: "unwaited-diag", Bug: true, Doc: "DriverUnload waits for the worker and the producer but not for the diagnostic thread, which may still be in the image", Want: "0xCE"},
	},
	Setup: setupAlertWait,
}

const alertWaitRequests = 3

var markAlertMidWait = model.NewMark("alertwait: the worker's alertable wait on the request semaphore ended with STATUS_ALERTED")

type alertWaitDrv struct {
	env                    *model.Env
	k                      *kernel.Kernel
	sys                    *queues.System
	work                   *kernel.KSEMAPHORE
	worker, producer, diag *kernel.Thread
	queued, taken, nudges  int
}

func setupAlertWait(env *model.Env) error {
	k := env.K
	sys, err := queues.NewSystem(k, queues.DefaultPoolConfig())
	if err != nil {
		return err
	}
	x := &alertWaitDrv{env: env, k: k, sys: sys}
	env.Sometimes(markAlertMidWait)
	env.Invariant("every request taken was queued", func() error {
		if x.taken > x.queued {
			return fmt.Errorf("worker took %d requests, only %d queued", x.taken, x.queued)
		}
		return nil
	})
	env.AtEnd("every queued request taken", func() error {
		if x.taken != x.queued {
			return fmt.Errorf("worker took %d of %d requests", x.taken, x.queued)
		}
		return nil
	})
	k.PsCreateSystemThread("scm", 8, func() {
		drv, st := sys.LoadDriver("alertwait", x.driverEntry)
		if st != kernel.STATUS_SUCCESS {
			env.Violation("driver loads", "%v", st)
			return
		}
		k.KeDelayExecutionThread(des.Duration(2+env.Choose("unload at", 3)*3) * des.Microsecond)
		sys.UnloadDriver(drv)
	})
	return nil
}

func (x *alertWaitDrv) driverEntry(d *queues.DRIVER_OBJECT) kernel.NTSTATUS {
	k := x.k
	x.work = k.KeInitializeSemaphore("requests", 0, alertWaitRequests)
	x.worker = k.PsCreateSystemThread("worker", 8, x.serve)
	x.producer = k.PsCreateSystemThread("producer", 8, x.produce)
	x.diag = k.PsCreateSystemThread("diag", 8, x.nudge)
	d.DriverUnload = x.unload
	return kernel.STATUS_SUCCESS
}

// produce queues the requests, a few microseconds apart.
func (x *alertWaitDrv) produce() {
	k := x.k
	for i := 0; i < alertWaitRequests; i++ {
		k.KeDelayExecutionThread(des.Duration(1+x.env.Choose("request gap", 3)) * des.Microsecond)
		x.queued++
		k.KeReleaseSemaphore(x.work, kernel.IO_NO_INCREMENT, 1, false)
	}
}

// nudge alerts the worker once or twice to have it publish statistics.
func (x *alertWaitDrv) nudge() {
	k := x.k
	for i := 0; i < 1+x.env.Choose("nudges", 2); i++ {
		k.KeDelayExecutionThread(des.Duration(1+x.env.Choose("nudge gap", 4)) * des.Microsecond)
		k.KeAlertThread(x.worker, kernel.KernelMode)
	}
}

// serve takes every queued request, then ends.
func (x *alertWaitDrv) serve() {
	k := x.k
	for x.taken < alertWaitRequests {
		st := k.KeWaitForSingleObjectEx(x.work, kernel.KernelMode, true, kernel.Infinite)
		if st == kernel.STATUS_ALERTED {
			x.env.Hit(markAlertMidWait)
		}
		if x.env.Is("alert-as-work") {
			if st != kernel.STATUS_TIMEOUT {
				x.taken++
				k.Compute(des.Microsecond)
			}
			continue
		}
		switch st {
		case kernel.STATUS_WAIT_0:
			x.taken++
			k.Compute(des.Microsecond)
		case kernel.STATUS_ALERTED:
			x.nudges++ // publish statistics, then wait again
		}
	}
}

func (x *alertWaitDrv) unload(*queues.DRIVER_OBJECT) {
	k := x.k
	threads := []*kernel.Thread{x.producer, x.diag, x.worker}
	if x.env.Is("unwaited-diag") {
		threads = []*kernel.Thread{x.producer, x.worker}
	}
	for _, t := range threads {
		k.KeWaitForSingleObject(t.Object(), kernel.Infinite)
	}
}
