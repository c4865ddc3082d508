package model

import (
	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues"
)

// Coverage marks of these scenarios (see Mark).
var (
	markDoubleQueued = NewMark("doublequeue: item queued again before its routine ran")
)

// A driver defers its requests to a system worker through the one
// executive work item in its device extension (REFERENCE §6.6). An
// application sends overlapped IOCTLs. The naive dispatch routine queues
// the item for every request, so a request that comes before a worker has
// taken the item queues an item that is still queued: WORKER_INVALID 0xE4
// P1=1, or, on a kernel without that check, two queue entries with one
// link and INVALID_WORK_QUEUE_ITEM 0x96 at the second removal.
// The fix is WDD:kernel/system-worker-threads.md's pattern: a task list
// under a spin lock, the item queued only by the request that finds no
// worker queued or draining, and a routine that drains the list.

const dqRequests = 3

func init() {
	Register(&Scenario{
		Name: "doublequeue",
		Doc: "A driver hands its requests to a system worker through one executive work item kept in " +
			"the device extension; an application sends three overlapped IOCTLs. Queueing the item for every " +
			"request queues it again while it is still queued when a request comes before a " +
			"worker took the item: 0xE4 P1=1. The fix keeps a task list under a spin lock, queues the item " +
			"only on the idle→busy transition and lets the routine drain the list.",
		Section: "§6.6, §1.1, §3.3",
		Variants: []Variant{
			{Name: "correct", Doc: "task list under a spin lock; queue only when no worker is queued or draining"},
			{Name: "no-guard", Bug: true, Doc: "ExQueueWorkItem for every request (Windows' check catches it)",
				Marks: []*Mark{markDoubleQueued},
				Want:  "0xE4 WORKER_INVALID (0x1,"},
			{Name: "no-guard-nocheck", Bug: true, Doc: "the same on a kernel without the queue-time check (PoolConfig.DoubleQueue=corrupt): the second removal finds a NULL link",
				Marks: []*Mark{markDoubleQueued},
				Want:  "0x96 INVALID_WORK_QUEUE_ITEM"},
		},
		Setup: setupDoubleQueue,
	})
}

// dqExtension is the device extension.
type dqExtension struct {
	wiDriver
	lock *kernel.KSPIN_LOCK
	item queues.WORK_QUEUE_ITEM
	// Under lock: requests waiting for the worker, and whether the item is
	// queued or its routine is still draining (the fix's guard).
	tasks      []int
	workerBusy bool
	served     *kernel.Cell

	inFlight int // model-only: queueings whose routine has not started yet
}

func setupDoubleQueue(env *Env) error {
	k := env.K
	cfg := queues.DefaultPoolConfig()
	if env.Is("no-guard-nocheck") {
		cfg.DoubleQueue = queues.DoubleQueueCorrupt
	}
	w, err := newWiDriver(env, cfg)
	if err != nil {
		return err
	}
	x := &dqExtension{wiDriver: w, lock: k.KeInitializeSpinLock("dq tasks"), served: k.NewCell("served", 0)}
	env.AtEnd("every request served", wiCountCheck("doublequeue", dqRequests, func() int { return int(x.served.Peek()) }))
	k.PsCreateSystemThread("app", 8, func() {
		x.loadDriver("dq", x.driverEntry)
		// Overlapped IOCTLs from one thread: the dispatch routine returns
		// STATUS_PENDING and the application goes on. Plainly it thinks
		// until the previous request was served; otherwise it sends the
		// next one at once (inside the window between the queueing and a
		// worker's dequeue), after 1µs, or while the routine is draining.
		think := []des.Duration{wiLateArrival, 0, des.Microsecond, wiServiceTime + 2*des.Microsecond}
		for id := range dqRequests {
			if id > 0 {
				k.Compute(think[env.Choose("doublequeue: think time before the next request", len(think))])
			}
			x.dispatch(id)
		}
		env.BeginDrain()
	})
	return nil
}

func (x *dqExtension) driverEntry(d *queues.DRIVER_OBJECT) kernel.NTSTATUS {
	if st := x.createDevice(d, x); !kernel.NT_SUCCESS(st) {
		return st
	}
	d.ExInitializeWorkItem(&x.item, x.workRoutine, x.dev)
	return kernel.STATUS_SUCCESS
}

// dispatch is the IRP_MJ_DEVICE_CONTROL path: record the request, get the
// worker going.
func (x *dqExtension) dispatch(id int) {
	k := x.k
	old := k.KeAcquireSpinLock(x.lock)
	x.tasks = append(x.tasks, id)
	start := true
	if x.env.Is("correct") {
		start = !x.workerBusy
		x.workerBusy = true
	}
	k.KeReleaseSpinLock(x.lock, old)
	if start {
		x.queueWorker()
	}
}

func (x *dqExtension) queueWorker() {
	if x.inFlight > 0 {
		x.env.Hit(markDoubleQueued)
	}
	x.inFlight++
	x.sys.ExQueueWorkItem(&x.item, queues.DelayedWorkQueue)
}

// workRoutine drains the task list at PASSIVE_LEVEL. It clears the guard
// under the lock when it finds the list empty, so a request that comes
// later queues the item again (legal: the item was dequeued before this
// routine was called, REFERENCE §3.3 item 5).
func (x *dqExtension) workRoutine(any) {
	x.inFlight--
	k := x.k
	for {
		old := k.KeAcquireSpinLock(x.lock)
		if len(x.tasks) == 0 {
			x.workerBusy = false
			k.KeReleaseSpinLock(x.lock, old)
			return
		}
		x.tasks = x.tasks[1:]
		k.KeReleaseSpinLock(x.lock, old)
		k.Compute(wiServiceTime)
		k.InterlockedIncrement(x.served)
	}
}
