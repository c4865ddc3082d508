package model

import (
	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues"
)

// Coverage marks of these scenarios (see Mark).
var (
	markWaitsForHolder = NewMark("lockwait: waits for the work item holding the mutex it needs")
)

// A driver's set-configuration IOCTL updates the configuration under the
// device's fast mutex and has a work item write it to the registry at
// PASSIVE_LEVEL, waiting for the write before it completes the request
// (REFERENCE §6.9). The routine takes the same mutex to read a consistent
// configuration. The buggy IOCTL waits for the routine while still holding
// the mutex: the worker blocks on the mutex, the IOCTL thread on the
// routine's event, and nothing wakes either (a hang: the cycle runs
// through an event, which has no owner). DDI:ExQueueWorkItem says to
// release locks before waiting for a work item; the fix does.

func init() {
	Register(&Scenario{
		Name: "lockwait",
		Doc: "A set-configuration IOCTL updates the device configuration under a fast mutex and waits " +
			"for a work item to write it to the registry; the routine takes the same mutex. Waiting while " +
			"holding the mutex deadlocks the IOCTL thread and the worker (a hang, the cycle goes through " +
			"an event). The fix releases the mutex before waiting. A query IOCTL on another thread " +
			"contends for the mutex at a time the workload chooses.",
		Section: "§6.9, §1.1, §4.6",
		Variants: []Variant{
			{Name: "correct", Doc: "release the mutex, then wait for the work item"},
			{Name: "wait-holding-mutex", Bug: true, Doc: "wait for the work item while holding the mutex its routine acquires",
				Marks: []*Mark{markWaitsForHolder}, Want: "deadlock|hang"},
		},
		Setup: setupLockWait,
	})
}

// lwExtension is the device extension.
type lwExtension struct {
	wiDriver
	mutex   *kernel.FAST_MUTEX // guards config
	config  int
	saved   *kernel.Cell   // the configuration generation last written to the registry
	flushed *kernel.KEVENT // the flush routine has written the configuration
	queries int            // model-only: query IOCTLs served
}

func setupLockWait(env *Env) error {
	k := env.K
	w, err := newWiDriver(env, queues.DefaultPoolConfig())
	if err != nil {
		return err
	}
	x := &lwExtension{wiDriver: w, mutex: k.ExInitializeFastMutex("lw config"),
		saved: k.NewCell("saved generation", 0), flushed: k.KeInitializeEvent("lw flushed", kernel.SynchronizationEvent, false)}
	env.AtEnd("configuration saved", wiCountCheck("lockwait", 1, func() int { return int(x.saved.Peek()) }))
	env.AtEnd("query served", wiCountCheck("lockwait query", 1, func() int { return x.queries }))
	k.PsCreateSystemThread("app", 8, func() {
		x.loadDriver("lw", x.driverEntry)
		done := 0
		finish := func() {
			if done++; done == 2 {
				env.BeginDrain()
			}
		}
		k.PsCreateSystemThread("query", 8, func() {
			// Plainly the query comes after the set; otherwise with it, or
			// while the flush routine runs.
			delay := []des.Duration{wiLateArrival, 0, wiServiceTime / 2}
			k.Compute(delay[env.Choose("lockwait: query IOCTL arrives", len(delay))])
			_ = x.dispatchQuery()
			finish()
		})
		x.dispatchSetConfig()
		finish()
	})
	return nil
}

func (x *lwExtension) driverEntry(d *queues.DRIVER_OBJECT) kernel.NTSTATUS {
	return x.createDevice(d, x)
}

// dispatchSetConfig is IOCTL_SET_CONFIG: update, have it flushed, wait.
func (x *lwExtension) dispatchSetConfig() kernel.NTSTATUS {
	k := x.k
	iw := x.sys.IoAllocateWorkItem(x.dev)
	if iw == nil {
		return kernel.STATUS_INSUFFICIENT_RESOURCES
	}
	k.ExAcquireFastMutex(x.mutex)
	x.config++
	k.Compute(2 * des.Microsecond)
	x.sys.IoQueueWorkItem(iw, x.flushWorker, queues.DelayedWorkQueue, iw)
	if x.env.Is("wait-holding-mutex") {
		if !k.KeReadStateEvent(x.flushed) {
			x.env.Hit(markWaitsForHolder)
		}
		k.KeWaitForSingleObject(x.flushed, kernel.Infinite)
		k.ExReleaseFastMutex(x.mutex)
		return kernel.STATUS_SUCCESS
	}
	k.ExReleaseFastMutex(x.mutex)
	k.KeWaitForSingleObject(x.flushed, kernel.Infinite)
	return kernel.STATUS_SUCCESS
}

// flushWorker writes a consistent copy of the configuration to the
// registry (modelled as compute) and signals the IOCTL.
func (x *lwExtension) flushWorker(_ *queues.DEVICE_OBJECT, context any) {
	k := x.k
	k.ExAcquireFastMutex(x.mutex)
	generation := x.config
	k.ExReleaseFastMutex(x.mutex)
	k.Compute(wiServiceTime)
	k.InterlockedExchange(x.saved, int64(generation))
	k.KeSetEvent(x.flushed, kernel.IO_NO_INCREMENT, false)
	x.sys.IoFreeWorkItem(context.(*queues.IO_WORKITEM))
}

// dispatchQuery is IOCTL_QUERY_CONFIG: copy the configuration out under
// the mutex.
func (x *lwExtension) dispatchQuery() int {
	k := x.k
	k.ExAcquireFastMutex(x.mutex)
	config := x.config
	k.Compute(des.Microsecond) // copy to the output buffer
	k.ExReleaseFastMutex(x.mutex)
	x.queries++
	return config
}
