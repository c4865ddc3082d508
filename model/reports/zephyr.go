package reports

import (
	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
)

// zephyrproject-rtos/zephyr PR #35225: the work queue thread took an item
// off the queue under the queue lock and marked it running later under
// the item's lock. A cancel in between found the item neither queued nor
// running and reported it idle, so the caller freed what the handler
// uses, and the handler ran anyway. The fix updates the state in the same
// critical section as the dequeue.

func init() {
	model.Register(&model.Scenario{
		Name: "zephyr-35225",
		Doc: "A driver submits a work item to its own work queue and, at teardown, cancels it: idle or " +
			"cancelled means the handler will not run and the context is freed; running means wait for it " +
			"first. A worker that dequeues and marks the item running in two critical sections leaves a window " +
			"where cancel reports idle and the handler then runs on freed pool. Report: " +
			"github.com/zephyrproject-rtos/zephyr pull #35225.",
		Section: "report: zephyr #35225",
		Variants: []model.Variant{
			{Name: "correct", Doc: "#35225: dequeue and mark running under one lock hold"},
			{Name: "dequeue-window", Bug: true, Doc: "before #35225: the running state is set in a second critical section",
				Marks: []*model.Mark{markZephyr35225CancelReportedIdle}, Want: "0xD5"},
		},
		Setup: setupZephyr35225,
	})
}

// cancel is k_work_cancel: it reports whether the caller must wait for a
// running handler.
func (q *dwq) cancel(w *dwork) (mustWait bool) {
	k := q.k
	old := k.KeAcquireSpinLock(q.lock)
	defer k.KeReleaseSpinLock(q.lock, old)
	switch k.Read(w.state) {
	case workQueued:
		q.removeLocked(w)
		k.Write(w.state, workIdle)
	case workRunning:
		return true
	default:
		if q.inWindow == w {
			q.env.Hit(markZephyr35225CancelReportedIdle)
		}
	}
	return false
}

func (q *dwq) submit(w *dwork) {
	k := q.k
	old := k.KeAcquireSpinLock(q.lock)
	if k.Read(w.state) == workIdle {
		q.insertLocked(w)
	}
	k.KeReleaseSpinLock(q.lock, old)
	k.KeSetEvent(q.wake, kernel.IO_NO_INCREMENT, false)
}

func setupZephyr35225(env *model.Env) error {
	k := env.K
	q := newDWQ(env, "zephyr")
	q.splitDequeue = env.Is("dequeue-window")
	var ctx *kernel.PoolBlock
	w := q.newWork("report work", func() {
		k.Compute(2 * des.Microsecond)
		k.AccessPool(ctx, "work handler reads its context")
	})
	k.PsCreateSystemThread("driver", threadPriority, func() {
		ctx = k.ExAllocatePoolWithTag(kernel.NonPagedPool, 64, "ZwCx")
		q.submit(w)
		arrive(env, "zephyr-35225: teardown cancels the work")
		if q.cancel(w) {
			k.KeWaitForSingleObject(w.done, kernel.Infinite)
		}
		k.ExFreePool(ctx)
		env.BeginDrain()
		q.shutdown()
	})
	return nil
}
