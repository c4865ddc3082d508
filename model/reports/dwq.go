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
	list   []*dwork
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
	e       *entry
	state   *kernel.Cell
	handler func()
	done    *kernel.KEVENT // set each time the handler returns
}

func newDWQ(env *model.Env, name string) *dwq {
	k := env.K
	q := &dwq{env: env, k: k, lock: k.KeInitializeSpinLock(name + " lock"),
		wake: k.KeInitializeEvent(name+" wake", kernel.SynchronizationEvent, false)}
	q.worker = k.PsCreateSystemThread(name+" worker", 12, q.run)
	return q
}

func (q *dwq) newWork(name string, handler func()) *dwork {
	return &dwork{name: name, e: newEntry(q.k, name), state: q.k.NewCell(name+" state", workIdle), handler: handler,
		done: q.k.KeInitializeEvent(name+" done", kernel.NotificationEvent, false)}
}

// insertLocked appends w; the caller holds the lock. An entry already
// linked is linked again, corrupting the list as InsertTailList would.
func (q *dwq) insertLocked(w *dwork) {
	w.e.insert(q.k)
	q.list = append(q.list, w)
	q.k.Write(w.state, workQueued)
}

// removeLocked unlinks w if it is on the list; the caller holds the lock.
func (q *dwq) removeLocked(w *dwork) bool {
	for i, x := range q.list {
		if x == w {
			q.list = append(q.list[:i:i], q.list[i+1:]...)
			w.e.remove(q.k)
			return true
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
		if len(q.list) == 0 {
			stop := q.stop // read under the lock: nothing is queued after it
			k.KeReleaseSpinLock(q.lock, old)
			if stop {
				return
			}
			k.KeWaitForSingleObject(q.wake, kernel.Infinite)
			continue
		}
		w := q.list[0]
		q.list = q.list[1:]
		w.e.remove(k)
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
