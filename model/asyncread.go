package model

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues"
	"github.com/wqsim/wqsim/queues/fltmgr"
)

// A prefetching minifilter reads ahead on each volume it attaches to
// (REFERENCE §5.9): InstanceSetup allocates a nonpaged buffer and queues a
// generic work item, whose routine allocates callback data and sends an
// asynchronous read below the instance with FltPerformAsynchronousIo. The
// completion callback copies into the buffer — at DISPATCH_LEVEL in the
// file system's DPC, at PASSIVE_LEVEL in its worker, inline in the work
// routine, or in the thread whose cancel completed it — and signals an
// event. When the filter is unloaded, InstanceTeardownStart cancels the
// read if it is still in flight, waits for its completion, then frees the
// callback data and the buffer. How the file system completes, whether it
// makes pended reads cancellable, and when the unload comes are
// decisions. The bugs take the cancel for the end of the read:
//   - free-buffer-on-cancel: teardown frees the buffer right after
//     FltCancelIo; the callback then copies into freed pool (0xD5), in the
//     file system's DPC at DISPATCH_LEVEL;
//   - free-data-on-cancel: teardown frees the callback data (and the
//     buffer) right after FltCancelIo, before its callback ran: the file
//     system's completion writes into freed pool (0xD5);
//   - cancel-under-lock: teardown calls FltCancelIo while holding the spin
//     lock the callback takes; on a file system that makes pended reads
//     cancellable the cancel completes the read inside FltCancelIo, and
//     the callback acquires the lock its own thread holds (0x0F);
//   - free-in-callback: the callback frees the callback data itself (legal
//     on its own, DDI:FltPerformAsynchronousIo), while teardown, having
//     seen the read in flight, is about to cancel it: FltCancelIo on freed
//     data (0xD5), the cancel-after-completion race.

var (
	markArInFlight    = NewMark("asyncread: teardown found the read in flight")
	markArNotSent     = NewMark("asyncread: teardown came before the read was sent")
	markArCancelRaced = NewMark("asyncread: the read completed while teardown was cancelling it")
)

const (
	arReadLength       = 4096
	arLateUnload       = 400 * des.Microsecond // past any completion (file system latency 100µs)
	arEarlyUnloadDelay = 50 * des.Microsecond
	arFsLatency        = 100 * des.Microsecond // fltmgr.DefaultConfig's FsLatency
)

func init() {
	Register(&Scenario{
		Name: "asyncread",
		Doc: "A prefetching filter sends an asynchronous read below its instance from a generic work item " +
			"(FltAllocateCallbackData, FltPerformAsynchronousIo); the completion callback fills a nonpaged buffer, " +
			"possibly at DISPATCH_LEVEL in the file system's DPC. On unload, teardown cancels the read if it is in " +
			"flight (FltCancelIo), waits for the completion, then frees the data and the buffer. The bugs free on " +
			"the cancel, or free the data in the callback while teardown cancels (0xD5), or cancel holding the " +
			"lock the callback takes when the cancel completes the read at once (0x0F).",
		Section: "§5.9, §5.7, §5.5, §1.3",
		Variants: []Variant{
			{Name: "correct", Doc: "cancel, wait for the completion callback, then free the data and the buffer"},
			{Name: "free-buffer-on-cancel", Bug: true, Doc: "teardown frees the buffer right after FltCancelIo; the callback copies into it later",
				Marks: []*Mark{markArInFlight}, Want: "copying into the buffer"},
			{Name: "free-data-on-cancel", Bug: true, Doc: "teardown frees the callback data right after FltCancelIo, before its callback",
				Marks: []*Mark{markArInFlight, fltmgr.MarkFreedInFlight}, Want: "completing the callback data|cancelling the callback data"},
			{Name: "cancel-under-lock", Bug: true, Doc: "teardown calls FltCancelIo holding the spin lock the completion callback takes",
				Marks: []*Mark{markArInFlight, fltmgr.MarkFsCancelled}, Want: "SPIN_LOCK_ALREADY_OWNED"},
			{Name: "free-in-callback", Bug: true, Doc: "the callback frees the callback data while teardown may still cancel it",
				Marks: []*Mark{markArCancelRaced}, Want: "FltCancelIo reading the callback data"},
		},
		Setup: setupAsyncRead,
	})
}

// arFilter is the prefetch filter and its one instance's state (the model
// attaches it to C: only).
type arFilter struct {
	*Minifilter
	lock *kernel.KSPIN_LOCK // guards the fields below
	done *kernel.KEVENT     // the read's callback ran

	buffer    *kernel.PoolBlock
	freed     bool // buffer freed
	data      *fltmgr.FLT_CALLBACK_DATA
	stopping  bool // teardown started: send nothing more
	sent      bool // the read was (or is being) sent
	completed bool // its callback ran
	callbacks int
}

func setupAsyncRead(env *Env) error {
	k := env.K
	b, err := NewMinifilter(env)
	if err != nil {
		return err
	}
	// A disk file system's pended read is not cancellable; a redirector's
	// is (REFERENCE §5.9). Natural: not cancellable.
	b.Volume.CancelPendedIo = env.Choose("asyncread: the file system makes pended reads cancellable", 2) == 1
	x := &arFilter{Minifilter: b, lock: k.KeInitializeSpinLock("prefetch state"),
		done: k.KeInitializeEvent("prefetch read done", kernel.NotificationEvent, false)}
	if err := x.Register("prefetch", 370000, &fltmgr.FLT_REGISTRATION{
		InstanceSetupCallback:         x.instanceSetup,
		InstanceTeardownStartCallback: x.teardownStart,
	}); err != nil {
		return err
	}
	k.PsCreateSystemThread("admin", 8, func() {
		x.StartFiltering()
		// Plainly the administrator unloads the filter long after the
		// prefetch; otherwise at once, 50µs later while the read may be in
		// flight, or about when the file system completes it.
		delays := []des.Duration{arLateUnload, 0, arEarlyUnloadDelay, arFsLatency}
		k.KeDelayExecutionThread(delays[env.Choose("asyncread: when the filter is unloaded", len(delays))])
		x.Unload()
		env.BeginDrain()
	})
	env.AtEnd("the prefetch read completed once", func() error {
		if x.sent && x.callbacks != 1 {
			return fmt.Errorf("the read's completion callback ran %d times", x.callbacks)
		}
		return nil
	})
	return nil
}

// instanceSetup allocates the buffer and queues the prefetch.
func (x *arFilter) instanceSetup(objs *fltmgr.FLT_RELATED_OBJECTS, _ fltmgr.FLT_INSTANCE_SETUP_FLAGS) kernel.NTSTATUS {
	x.buffer = x.K.ExAllocatePoolWithTag(kernel.NonPagedPool, int(arReadLength), "PfBf")
	item := x.FM.FltAllocateGenericWorkItem()
	if x.buffer == nil || item == nil {
		x.freeBuffer()
		if item != nil {
			x.FM.FltFreeGenericWorkItem(item)
		}
		return kernel.STATUS_INSUFFICIENT_RESOURCES
	}
	if x.FM.FltQueueGenericWorkItem(item, objs.Instance, x.prefetch, queues.DelayedWorkQueue, nil) != kernel.STATUS_SUCCESS {
		x.FM.FltFreeGenericWorkItem(item)
	}
	return kernel.STATUS_SUCCESS
}

// prefetch is the work routine: unless teardown has started, send the read.
func (x *arFilter) prefetch(item *fltmgr.FLT_GENERIC_WORKITEM, obj fltmgr.FltObject, _ any) {
	k := x.K
	defer x.FM.FltFreeGenericWorkItem(item)
	inst := obj.(*fltmgr.FLT_INSTANCE)
	var d *fltmgr.FLT_CALLBACK_DATA
	if x.FM.FltAllocateCallbackData(inst, nil, &d) != kernel.STATUS_SUCCESS {
		return
	}
	d.Iopb.MajorFunction = fltmgr.IRP_MJ_READ
	d.Iopb.Parameters.Length = arReadLength
	old := k.KeAcquireSpinLock(x.lock)
	send := !x.stopping
	if send {
		x.data, x.sent = d, true
	}
	k.KeReleaseSpinLock(x.lock, old)
	if !send {
		x.FM.FltFreeCallbackData(d)
		return
	}
	x.FM.FltPerformAsynchronousIo(d, x.readDone, x)
}

// readDone is the completion callback: any context, IRQL ≤ DISPATCH_LEVEL.
func (x *arFilter) readDone(d *fltmgr.FLT_CALLBACK_DATA, _ any) {
	k := x.K
	if d.IoStatus.Status == kernel.STATUS_SUCCESS {
		k.AccessPool(x.buffer, "prefetch completion copying into the buffer")
	}
	old := k.KeAcquireSpinLock(x.lock)
	x.completed = true
	x.callbacks++
	if x.Env.Is("free-in-callback") {
		x.data = nil
	}
	k.KeReleaseSpinLock(x.lock, old)
	if x.Env.Is("free-in-callback") {
		x.FM.FltFreeCallbackData(d)
	}
	k.KeSetEvent(x.done, kernel.IO_NO_INCREMENT, false)
}

// teardownStart stops the prefetch: no new read; cancel one in flight and
// wait for its completion; then free what the callback touches.
func (x *arFilter) teardownStart(*fltmgr.FLT_RELATED_OBJECTS, fltmgr.FLT_INSTANCE_TEARDOWN_FLAGS) {
	k := x.K
	old := k.KeAcquireSpinLock(x.lock)
	x.stopping = true
	d, sent, completed := x.data, x.sent, x.completed
	underLock := x.Env.Is("cancel-under-lock")
	if underLock && sent && !completed {
		x.Env.Hit(markArInFlight)
		x.cancel(d) // the bug: a cancel that takes runs the callback here, and it takes this lock
	}
	k.KeReleaseSpinLock(x.lock, old)
	if !sent {
		x.Env.Hit(markArNotSent)
		x.freeBuffer()
		return
	}
	if !completed && !underLock {
		x.Env.Hit(markArInFlight)
		x.cancel(d)
		switch {
		case x.Env.Is("free-buffer-on-cancel"):
			x.freeBuffer() // the bug: the cancel was only a request
		case x.Env.Is("free-data-on-cancel"):
			x.FM.FltFreeCallbackData(d) // the bug: the callback is still to come
			x.freeBuffer()
			return
		}
	}
	k.KeWaitForSingleObject(x.done, kernel.Infinite)
	if !x.Env.Is("free-in-callback") {
		x.FM.FltFreeCallbackData(d)
	}
	x.freeBuffer()
}

// cancel asks for the read's cancellation (FltCancelIo, §5.9).
func (x *arFilter) cancel(d *fltmgr.FLT_CALLBACK_DATA) {
	if x.Env.Is("free-in-callback") && x.completed { // a look, not a synchronised read
		x.Env.Hit(markArCancelRaced) // the callback ran (and freed d) since teardown looked
	}
	x.FM.FltCancelIo(d)
}

func (x *arFilter) freeBuffer() {
	if x.buffer != nil && !x.freed {
		x.freed = true
		x.K.ExFreePoolWithTag(x.buffer, "PfBf")
	}
}
