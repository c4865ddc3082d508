package reports

import (
	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/queues"
)

// vadimgrn/usbip-win2 PR #188 (and issue #96): the attach path reused one
// WDF work item for its connection phases, each callback queueing the next.
// Deleting a work item (WdfObjectDelete, FxWorkItem::Dispose) waits for a
// running callback unless the caller is that callback, which the framework
// tells by a marker holding the running callback's thread. The thunk of an
// earlier run cleared the marker after it returned from the callback, which
// could be after the reused item's next callback had started on another
// worker thread; that callback then deleted the item, saw no marker, and
// waited for itself. Driver unload waited behind it: the host controller
// restart hung. The fix gives each phase a fresh work item.
//
// NT form: a driver-side wrapper over IoQueueWorkItem with the same marker
// and idle event; phase 1 queues phase 2 on the same wrapper, phase 2 ends
// the attach by deleting it, and unload waits for the deletion.

func init() {
	model.Register(&model.Scenario{
		Name: "usbip-188",
		Doc: "An attach runs in two work-item phases; phase 1 queues phase 2 and phase 2 deletes the work " +
			"item, which waits for a running callback unless it is that callback (a marker holds the running " +
			"callback's thread, cleared by the thunk after each callback). Reusing one work item lets phase 1's " +
			"thunk clear the marker after phase 2 started on another worker: phase 2 waits on itself and unload " +
			"hangs. Report: github.com/vadimgrn/usbip-win2 pull #188 (issue #96).",
		Section: "report: usbip-win2 #188",
		Variants: []model.Variant{
			{Name: "correct", Doc: "#188: each phase gets its own work item"},
			{Name: "reused-item", Bug: true, Doc: "before #188: phase 2 reuses phase 1's work item",
				Marks: []*model.Mark{markUsbip188AnEarlierThunk}, Want: "hang|deadlock"},
		},
		Setup: setupUsbip,
	})
}

// fxWorkItem is the framework work item: an IO_WORKITEM, the running
// callback's thread (the marker) and an event set when no callback runs.
type fxWorkItem struct {
	d       *driver
	iw      *queues.IO_WORKITEM
	running *kernel.Thread
	busy    int
	idle    *kernel.KEVENT
	deleted bool
}

func newFxWorkItem(d *driver, name string) *fxWorkItem {
	return &fxWorkItem{d: d, iw: d.sys.IoAllocateWorkItem(d.dev),
		idle: d.k.KeInitializeEvent(name+" idle", kernel.NotificationEvent, true)}
}

// enqueue is WdfWorkItemEnqueue.
func (w *fxWorkItem) enqueue(callback func(*fxWorkItem)) {
	k := w.d.k
	w.busy++
	k.KeClearEvent(w.idle)
	w.d.sys.IoQueueWorkItem(w.iw, func(*queues.DEVICE_OBJECT, any) { w.thunk(callback) }, queues.DelayedWorkQueue, nil)
}

// thunk runs the callback with the marker set and clears it afterwards.
func (w *fxWorkItem) thunk(callback func(*fxWorkItem)) {
	k := w.d.k
	me := k.KeGetCurrentThread()
	w.running = me
	callback(w)
	if w.running != me {
		w.d.env.Hit(markUsbip188AnEarlierThunk)
	}
	w.running = nil // the bug: clears a later run's marker too
	if w.busy--; w.busy == 0 {
		k.KeSetEvent(w.idle, kernel.IO_NO_INCREMENT, false)
	}
}

// delete is WdfObjectDelete: wait for a running callback unless the caller
// is it, then free the work item.
func (w *fxWorkItem) delete() {
	k := w.d.k
	if w.running != k.KeGetCurrentThread() {
		k.KeWaitForSingleObject(w.idle, kernel.Infinite)
	}
	w.deleted = true
	w.d.sys.IoFreeWorkItem(w.iw)
}

func setupUsbip(env *model.Env) error {
	d, err := newDriver(env)
	if err != nil {
		return err
	}
	k := env.K
	attached := k.KeInitializeEvent("usbip attach done", kernel.NotificationEvent, false)
	k.PsCreateSystemThread("pnp", threadPriority, func() {
		d.load("usbip")
		first := newFxWorkItem(d, "connect")
		first.enqueue(func(w *fxWorkItem) { // phase 1: connect the socket
			next := w
			if env.Is("correct") {
				next = newFxWorkItem(d, "import")
			}
			next.enqueue(func(w2 *fxWorkItem) { // phase 2: import, then end the attach
				k.Compute(5 * des.Microsecond) // the import request
				w2.delete()
				k.KeSetEvent(attached, kernel.IO_NO_INCREMENT, false)
			})
			// Plainly phase 1 returns at once; or it logs for a while first.
			tail := []des.Duration{0, 20 * des.Microsecond}
			k.Compute(tail[env.Choose("usbip-188: phase 1 finishes after queueing phase 2", len(tail))])
		})
		k.KeWaitForSingleObject(attached, kernel.Infinite)
		if env.Is("correct") {
			first.delete()
		}
		env.BeginDrain()
		d.sys.UnloadDriver(d.drv) // restart of the host controller
	})
	return nil
}
