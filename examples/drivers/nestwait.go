package drivers

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/queues"
)

// NestWait is a boot-start driver (never unloaded) that applies
// configuration changes in I/O work items on the DelayedWorkQueue. Each
// change must also be saved by a helper that runs in a work item of its
// own (shared code the driver's other paths queue too), and the apply
// routine waits for the helper before it reports the change applied. An
// application sends a burst of changes.
//
// Waiting in a work routine for another work item is safe when the helper
// cannot queue behind the waiters: on another queue whose workers do not
// wait (the CriticalWorkQueue, which grows on insert, REFERENCE §3.2), or
// with a timeout after which the routine saves the change itself (a
// compare-exchange decides whether the routine or the helper saves it). The
// bug queues the helper on the same DelayedWorkQueue and waits without a
// timeout: a burst larger than the delayed workers the pool can ever have
// (3 static, 16 dynamic added by the deadlock detector one a second) leaves
// every delayed worker waiting for a helper queued behind it (REFERENCE
// §3.4, §6.10).
//
// The timeout is written as NT code writes it, negative for "relative to
// now" (REFERENCE §3.7); the model once read it as an infinite wait and
// reported this correct variant as a hang.
var NestWait = &model.Scenario{
	Name: "nestwait",
	Doc: "Delayed work routines each queue a helper work item and wait for it. Correct on another queue " +
		"(the helper on CriticalWorkQueue) or with a timeout after which the routine does the helper's " +
		"work itself; the bug waits without a timeout for a helper on the same DelayedWorkQueue, and a burst " +
		"larger than the pool hangs.",
	Section: "REFERENCE §3.2, §3.4, §3.7, §6.10",
	Variants: []model.Variant{
		{Name: "critical-helper", Doc: "the helper is an executive item on the CriticalWorkQueue; the routine waits without a timeout"},
		{Name: "timeout", Doc: "the helper is on the DelayedWorkQueue; the routine waits 5 ms, then saves the change itself unless the helper already claimed it"},
		{Name: "same-queue", Bug: true,
			Doc:  "the helper is on the DelayedWorkQueue and the routine waits without a timeout: a burst occupies every delayed worker, dynamic ones included",
			Want: "hang"},
	},
	Setup: nestWaitSetup,
}

const nwChanges = 24 // more than 3 static + 16 dynamic delayed workers

// nwChange is one configuration change.
type nwChange struct {
	id      int
	item    *queues.IO_WORKITEM    // the apply routine's
	helper  *queues.IO_WORKITEM    // timeout, same-queue
	exItem  queues.WORK_QUEUE_ITEM // critical-helper
	claimed *kernel.Cell           // 1 once the helper or the routine saves it
	refs    *kernel.Cell           // timeout: routine and helper
	saved   *kernel.KEVENT
}

// nwExt is the device extension.
type nwExt struct {
	env     *model.Env
	k       *kernel.Kernel
	sys     *queues.System
	drv     *queues.DRIVER_OBJECT
	dev     *queues.DEVICE_OBJECT
	left    *kernel.Cell // changes not yet applied
	allDone *kernel.KEVENT
	saves   *kernel.Cell
}

func nestWaitSetup(env *model.Env) error {
	k := env.K
	sys, err := queues.NewSystem(k, queues.DefaultPoolConfig())
	if err != nil {
		return err
	}
	x := &nwExt{env: env, k: k, sys: sys}
	k.PsCreateSystemThread("app", 8, func() {
		if _, st := sys.LoadDriver("nestwait", x.driverEntry); st != kernel.STATUS_SUCCESS {
			env.Violation("driver loads", "%v", st)
			return
		}
		for i := range nwChanges {
			if env.Choose("change gap", 2) == 1 {
				k.KeDelayExecutionThread(5 * des.Microsecond)
			}
			x.change(i)
		}
		k.KeWaitForSingleObject(x.allDone, kernel.Infinite)
		env.BeginDrain()
	})
	env.AtEnd("every change saved once", func() error {
		if n := x.saves.Peek(); n != nwChanges {
			return fmt.Errorf("%d saves for %d changes", n, nwChanges)
		}
		return nil
	})
	return nil
}

func (x *nwExt) driverEntry(d *queues.DRIVER_OBJECT) kernel.NTSTATUS {
	k := x.k
	dev, st := x.sys.IoCreateDevice(d, "nestwait0")
	if st != kernel.STATUS_SUCCESS {
		return st
	}
	x.drv, x.dev = d, dev
	dev.DeviceExtension = x
	x.left = k.NewCell("changes left", nwChanges)
	x.saves = k.NewCell("saves", 0)
	x.allDone = k.KeInitializeEvent("all applied", kernel.NotificationEvent, false)
	return kernel.STATUS_SUCCESS
}

// change is the IOCTL path: queue the apply routine.
func (x *nwExt) change(i int) {
	k := x.k
	c := &nwChange{id: i}
	c.claimed = k.NewCell(fmt.Sprintf("change %d claimed", i), 0)
	c.refs = k.NewCell(fmt.Sprintf("change %d refs", i), 2)
	c.saved = k.KeInitializeEvent(fmt.Sprintf("change %d saved", i), kernel.NotificationEvent, false)
	if c.item = x.sys.IoAllocateWorkItem(x.dev); c.item == nil {
		x.applied()
		return
	}
	x.sys.IoQueueWorkItem(c.item, x.apply, queues.DelayedWorkQueue, c)
}

// apply is the delayed work routine.
func (x *nwExt) apply(_ *queues.DEVICE_OBJECT, ctx any) {
	k := x.k
	c := ctx.(*nwChange)
	k.Compute(2 * des.Microsecond)
	if x.env.Is("critical-helper") {
		x.drv.ExInitializeWorkItem(&c.exItem, func(any) { x.save(c) }, nil)
		x.sys.ExQueueWorkItem(&c.exItem, queues.CriticalWorkQueue)
		k.KeWaitForSingleObject(c.saved, kernel.Infinite)
		x.finish(c)
		return
	}
	c.helper = x.sys.IoAllocateWorkItem(x.dev)
	if c.helper == nil {
		x.save(c)
		x.finish(c)
		return
	}
	x.sys.IoQueueWorkItem(c.helper, func(*queues.DEVICE_OBJECT, any) {
		x.save(c)
		x.release(c)
	}, queues.DelayedWorkQueue, nil)
	if x.env.Is("same-queue") {
		k.KeWaitForSingleObject(c.saved, kernel.Infinite)
		x.release(c)
		x.finish(c)
		return
	}
	if k.KeWaitForSingleObject(c.saved, -5*des.Millisecond) == kernel.STATUS_TIMEOUT {
		x.save(c) // no-op if the helper claimed it meanwhile
	}
	x.release(c)
	x.finish(c)
}

// save writes the change once: whoever claims it first.
func (x *nwExt) save(c *nwChange) {
	k := x.k
	if k.InterlockedCompareExchange(c.claimed, 1, 0) != 0 {
		return
	}
	k.Compute(3 * des.Microsecond)
	k.InterlockedIncrement(x.saves)
	k.KeSetEvent(c.saved, kernel.IO_NO_INCREMENT, false)
}

// release drops the routine's or the helper's hold on the helper item;
// the last frees it.
func (x *nwExt) release(c *nwChange) {
	if x.k.InterlockedDecrement(c.refs) == 0 {
		x.sys.IoFreeWorkItem(c.helper)
	}
}

// finish frees the apply item and counts the change applied.
func (x *nwExt) finish(c *nwChange) {
	x.sys.IoFreeWorkItem(c.item)
	x.applied()
}

func (x *nwExt) applied() {
	if x.k.InterlockedDecrement(x.left) == 0 {
		x.k.KeSetEvent(x.allDone, kernel.IO_NO_INCREMENT, false)
	}
}
