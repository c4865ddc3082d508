package reports

import (
	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
)

// Two apache/nuttx work-queue reports on the driver work queue (dwq):
//
// PR #7065: work_queue() cancelled a pending instance of the item
// (work_cancel) before entering the critical section that appends it, so
// two CPUs (or two threads on one) queueing the same item could both find
// it unqueued and both append it: the same node twice on the list. The
// fix does the cancel inside the critical section.
//
// PR #10668: timer_delete() cancelled the timer's notification work with
// work_cancel(), which cannot stop a handler that is already running, and
// then freed the timer, which that handler uses: a use after free. The fix
// is work_cancel_sync(), which waits for a running handler.

func init() {
	model.Register(&model.Scenario{
		Name: "nuttx-7065",
		Doc: "Two threads queue the same work item on a driver work queue. Queueing first cancels a pending " +
			"instance and then appends the item, in two critical sections: both threads can find it unqueued " +
			"and both append it, linking one LIST_ENTRY twice (the worker's second removal fast-fails, 0x139). " +
			"Report: github.com/apache/nuttx pull #7065.",
		Section: "report: nuttx #7065",
		Variants: []model.Variant{
			{Name: "correct", Doc: "#7065: cancel and append in one critical section"},
			{Name: "cancel-outside-lock", Bug: true, Doc: "before #7065: cancel, then lock and append",
				Marks: []*model.Mark{markNuttx7065AppendedAnItem}, Want: "0x139"},
		},
		Setup: setupNuttx7065,
	})
	model.Register(&model.Scenario{
		Name: "nuttx-10668",
		Doc: "A timer's expiry queues a notification work item that reads the timer; deleting the timer " +
			"cancels the work and frees the timer. An asynchronous cancel cannot stop a handler that already " +
			"runs, so the handler reads freed pool; the fix waits for it (work_cancel_sync). Report: " +
			"github.com/apache/nuttx pull #10668.",
		Section: "report: nuttx #10668",
		Variants: []model.Variant{
			{Name: "correct", Doc: "#10668: work_cancel_sync waits for a running handler before the free"},
			{Name: "async-cancel", Bug: true, Doc: "before #10668: work_cancel, then free",
				Marks: []*model.Mark{markNuttx10668TimerFreedWhile}, Want: "0xD5"},
		},
		Setup: setupNuttx10668,
	})
}

// queueWork is work_queue(): take a pending instance off the list and
// append the item again.
func (q *dwq) queueWork(w *dwork, oneSection bool) {
	k := q.k
	if !oneSection {
		old := k.KeAcquireSpinLock(q.lock)
		q.removeLocked(w)
		k.KeReleaseSpinLock(q.lock, old)
	}
	old := k.KeAcquireSpinLock(q.lock)
	if oneSection {
		q.removeLocked(w)
	}
	if q.linkedPeek(w) {
		q.env.Hit(markNuttx7065AppendedAnItem)
	}
	q.insertLocked(w)
	k.KeReleaseSpinLock(q.lock, old)
	k.KeSetEvent(q.wake, kernel.IO_NO_INCREMENT, false)
}

func setupNuttx7065(env *model.Env) error {
	k := env.K
	q := newDWQ(env, "nuttx")
	runs := 0
	w := q.newWork("notify work", func() { runs++; k.Compute(des.Microsecond) })
	one := env.Is("correct")
	k.PsCreateSystemThread("cpu0 caller", threadPriority, func() {
		second := k.PsCreateSystemThread("cpu1 caller", threadPriority, func() {
			arrive(env, "nuttx-7065: the second caller queues the item")
			q.queueWork(w, one)
		})
		q.queueWork(w, one)
		k.KeWaitForSingleObject(second.Object(), kernel.Infinite)
		env.BeginDrain()
		q.shutdown()
	})
	env.AtEnd("the work ran", func() error {
		if runs == 0 {
			return errorf("the queued work never ran")
		}
		return nil
	})
	return nil
}

func setupNuttx10668(env *model.Env) error {
	k := env.K
	q := newDWQ(env, "hpwork")
	var timer *kernel.PoolBlock
	w := q.newWork("nxsig_notification_worker", func() {
		k.Compute(3 * des.Microsecond)
		k.AccessPool(timer, "notification worker reads the timer")
	})
	k.PsCreateSystemThread("user", threadPriority, func() {
		timer = k.ExAllocatePoolWithTag(kernel.NonPagedPool, 64, "Timr")
		q.submit(w) // the timer fired: its notification is queued
		arrive(env, "nuttx-10668: timer_delete")
		if q.cancel(w) && env.Is("correct") {
			k.KeWaitForSingleObject(w.done, kernel.Infinite)
		}
		if w.state.Peek() == workRunning {
			env.Hit(markNuttx10668TimerFreedWhile)
		}
		k.ExFreePool(timer)
		env.BeginDrain()
		q.shutdown()
	})
	return nil
}
