package reports

import (
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
)

// dwq is a driver's own deferred-work queue, the NT shape of an RTOS work
// queue: a list of work items under a spin lock and one dedicated system
// thread that removes and runs them. The zephyr and nuttx reports are bugs
// in exactly this machinery; the scenarios vary how its operations are
// split into critical sections.
type dwq struct {
	env    *model.Env
	k      *kernel.Kernel
	lock   *kernel.KSPIN_LOCK
	head   kernel.LIST_ENTRY // the queued items, linked by dwork.link
	wake   *kernel.KEVENT
	stop   bool
	worker *kernel.Thread
	// splitDequeue leaves a window between taking an item off the list and
	// marking it running (zephyr before #35225).
	splitDequeue bool
	inWindow     *dwork // model-only: the item in that window
}

// Work item states.
const (
	workIdle int64 = iota
	workQueued
	workRunning
)

// dwork is one work item.
type dwork struct {
	name    string
	link    kernel.LIST_ENTRY
	state   *kernel.Cell
	handler func()
	done    *kernel.KEVENT // set each time the handler returns
}

func newDWQ(env *model.Env, name string) *dwq {
	k := env.K
	q := &dwq{env: env, k: k, lock: k.KeInitializeSpinLock(name + " lock"),
		wake: k.KeInitializeEvent(name+" wake", kernel.SynchronizationEvent, false)}
	k.InitializeListHead(&q.head)
	q.worker = k.PsCreateSystemThread(name+" worker", 12, q.run)
	return q
}

// Name names the item in list-corruption reports.
func (w *dwork) Name() string { return w.name }

func (q *dwq) newWork(name string, handler func()) *dwork {
	w := &dwork{name: name, state: q.k.NewCell(name+" state", workIdle), handler: handler,
		done: q.k.KeInitializeEvent(name+" done", kernel.NotificationEvent, false)}
	w.link.Container = w
	return w
}

// insertLocked appends w; the caller holds the lock. An entry already
// linked is linked again, corrupting the list as InsertTailList does.
func (q *dwq) insertLocked(w *dwork) {
	q.k.InsertTailList(&q.head, &w.link)
	q.k.Write(w.state, workQueued)
}

// removeLocked unlinks w if it is on the list; the caller holds the lock.
func (q *dwq) removeLocked(w *dwork) bool {
	if !onList(q.k, &q.head, &w.link) {
		return false
	}
	q.k.RemoveEntryList(&w.link)
	return true
}

// linkedPeek reports whether w is on the list without a scheduling point
// (model bookkeeping for marks).
func (q *dwq) linkedPeek(w *dwork) bool {
	for p := q.head.Flink; p != &q.head && p != nil; p = p.Flink {
		if p == &w.link {
			return true
		}
		if p.Flink == p {
			break // a self-linked entry: the list is already corrupt
		}
	}
	return false
}

// shutdown stops the worker after the queue drains and waits for it.
func (q *dwq) shutdown() {
	old := q.k.KeAcquireSpinLock(q.lock)
	q.stop = true
	q.k.KeReleaseSpinLock(q.lock, old)
	q.k.KeSetEvent(q.wake, kernel.IO_NO_INCREMENT, false)
	q.k.KeWaitForSingleObject(q.worker.Object(), kernel.Infinite)
}

// run is the worker thread: take the head item, mark it running, run it.
func (q *dwq) run() {
	k := q.k
	for {
		old := k.KeAcquireSpinLock(q.lock)
		if k.IsListEmpty(&q.head) {
			stop := q.stop // read under the lock: nothing is queued after it
			k.KeReleaseSpinLock(q.lock, old)
			if stop {
				return
			}
			k.KeWaitForSingleObject(q.wake, kernel.Infinite)
			continue
		}
		e := k.RemoveHeadList(&q.head)
		if e == nil {
			k.KeReleaseSpinLock(q.lock, old)
			return // the fast fail stopped the run
		}
		w := e.Container.(*dwork)
		if q.splitDequeue {
			k.Write(w.state, workIdle) // the queued flag goes with the list link
			q.inWindow = w
			k.KeReleaseSpinLock(q.lock, old)
			old = k.KeAcquireSpinLock(q.lock)
			q.inWindow = nil
		}
		k.Write(w.state, workRunning)
		k.KeReleaseSpinLock(q.lock, old)
		w.handler()
		old = k.KeAcquireSpinLock(q.lock)
		k.Write(w.state, workIdle)
		k.KeReleaseSpinLock(q.lock, old)
		k.KeSetEvent(w.done, kernel.IO_NO_INCREMENT, false)
	}
}
