package model

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues"
	"github.com/wqsim/wqsim/queues/fltmgr"
)

// Three minifilter bug classes of REFERENCE §6, each as a small filter
// written the way a minifilter is written, with a workload whose
// decisions put the racy operation in place:
//
//   - postpaging (§6.11, §5.2): posting an operation that is not safe to
//     post (paging I/O, TopLevelIrp set);
//   - postopqueue (§6.14, §5.4): a queue locked by a fast mutex used from a
//     post-operation callback at DISPATCH_LEVEL;
//   - teardownpend (§6.15, §5.5): operations pended in the filter's own
//     list that InstanceTeardownStart forgets.

// newFltApps is the countdown of a minifilter scenario's workload threads.
func newFltApps(k *kernel.Kernel, n int) *countdown {
	return newCountdown(k, n, "workload threads running", "workload done")
}

// ---------------------------------------------------------------------
// postpaging: §6.11, §5.2, §1.3.

var markPostNotSafe = NewMark("postpaging: deferred work item refused, not safe to post")

func init() {
	Register(&Scenario{
		Name: "postpaging",
		Doc: "A filter inspects every read at PASSIVE_LEVEL in a system worker: its pre-read posts the read " +
			"with FltQueueDeferredIoWorkItem and returns FLT_PREOP_PENDING. A cached write holding the file's " +
			"FCB resource may fault on a mapped view of the same file (a paging read) or recurse into a read, " +
			"both with TopLevelIrp set: FltQueueDeferredIoWorkItem refuses them with " +
			"STATUS_FLT_NOT_SAFE_TO_POST_OPERATION and the correct filter passes them through in the " +
			"issuing thread. The bug variants pend them anyway.",
		Section: "§6.11, §5.2, §1.3",
		Variants: []Variant{
			{Name: "correct", Doc: "on STATUS_FLT_NOT_SAFE_TO_POST_OPERATION free the item and pass the read through"},
			{Name: "pend-not-safe", Bug: true,
				Doc:   "ignores the status of FltQueueDeferredIoWorkItem and returns FLT_PREOP_PENDING: nothing was queued, the read never completes",
				Marks: []*Mark{markPostNotSafe}, Want: "hang"},
			{Name: "post-anyway", Bug: true,
				Doc: "falls back to a generic work item and pends the read anyway: the worker sends it to the file system, " +
					"which needs the FCB resource the issuing thread holds while it waits for the read",
				Marks: []*Mark{markPostNotSafe}, Want: "hang|deadlock"},
		},
		Setup: setupPostPaging,
	})
}

type ppFilter struct{ *Minifilter }

func setupPostPaging(env *Env) error {
	k := env.K
	b, err := NewMinifilter(env)
	if err != nil {
		return err
	}
	vol := b.Volume
	pp := &ppFilter{b}
	// The file system below: a read holds the file's FCB resource shared
	// for its disk transfer (recursive for a thread that owns it).
	fcb := k.ExInitializeResourceLite("FCB a.txt")
	vol.FileSystem = func(data *fltmgr.FLT_CALLBACK_DATA) kernel.NTSTATUS {
		k.KeEnterCriticalRegion()
		k.ExAcquireResourceSharedLite(fcb, true)
		k.KeDelayExecutionThread(50 * des.Microsecond)
		k.ExReleaseResourceLite(fcb)
		k.KeLeaveCriticalRegion()
		data.IoStatus.Information = uint64(data.Iopb.Parameters.Length)
		return kernel.STATUS_SUCCESS
	}
	if err := pp.Register("inspect", 320000, &fltmgr.FLT_REGISTRATION{
		OperationRegistration: []fltmgr.FLT_OPERATION_REGISTRATION{{MajorFunction: fltmgr.IRP_MJ_READ, PreOperation: pp.preRead}},
	}); err != nil {
		return err
	}

	// Workload: an application reads the file twice; a cached write to it
	// holds the FCB exclusively while copying the user's buffer, which
	// may fault on a view of the same file (a decision).
	apps := newFltApps(k, 2)
	started := k.KeInitializeEvent("filter started", kernel.NotificationEvent, false)
	k.PsCreateSystemThread("app", 8, func() {
		pp.StartFiltering()
		k.KeSetEvent(started, 0, false)
		for i := range 2 {
			vol.Send(fltmgr.IoRequest{MajorFunction: fltmgr.IRP_MJ_READ, Length: 4096, ByteOffset: int64(i) * 4096, Tag: fmt.Sprintf("read%d", i)})
		}
		apps.finish()
	})
	k.PsCreateSystemThread("writer", 8, func() {
		k.KeWaitForSingleObject(started, kernel.Infinite)
		fault := env.Choose("postpaging: the cached write faults (0 no, 1 paging read, 2 recursive read), TopLevelIrp set", 3)
		k.KeEnterCriticalRegion()
		k.ExAcquireResourceExclusiveLite(fcb, true)
		k.Compute(10 * des.Microsecond) // copy the user's buffer into the cache
		switch fault {
		case 1:
			// The memory manager resolves the fault in this thread: a
			// synchronous paging read below the write that holds the FCB.
			vol.Send(fltmgr.IoRequest{MajorFunction: fltmgr.IRP_MJ_READ, Length: 4096,
				IrpFlags: kernel.IRP_PAGING_IO | kernel.IRP_SYNCHRONOUS_PAGING_IO | fltmgr.IRP_NOCACHE, TopLevel: true, Tag: "page fault"})
		case 2:
			vol.Send(fltmgr.IoRequest{MajorFunction: fltmgr.IRP_MJ_READ, Length: 512, TopLevel: true, Tag: "recursive read"})
		}
		k.Compute(5 * des.Microsecond)
		k.ExReleaseResourceLite(fcb)
		k.KeLeaveCriticalRegion()
		apps.finish()
	})
	pp.UnloadWhenDone(apps.done)
	return nil
}

// preRead posts every IRP-based read to a worker (§1.3 pre-op recipe).
func (pp *ppFilter) preRead(data *fltmgr.FLT_CALLBACK_DATA, objs *fltmgr.FLT_RELATED_OBJECTS, _ *any) fltmgr.FLT_PREOP_CALLBACK_STATUS {
	fm := pp.FM
	if !fltmgr.FLT_IS_IRP_OPERATION(data) {
		return fltmgr.FLT_PREOP_SUCCESS_NO_CALLBACK // fast I/O cannot be posted; inspect nothing
	}
	item := fm.FltAllocateDeferredIoWorkItem()
	if item == nil {
		return fltmgr.FLT_PREOP_SUCCESS_NO_CALLBACK
	}
	st := fm.FltQueueDeferredIoWorkItem(item, data, pp.inspect, queues.DelayedWorkQueue, nil)
	if st == kernel.STATUS_FLT_NOT_SAFE_TO_POST_OPERATION {
		pp.Env.Hit(markPostNotSafe)
	}
	switch {
	case pp.Env.Is("pend-not-safe"):
		return fltmgr.FLT_PREOP_PENDING // status not inspected
	case st == kernel.STATUS_SUCCESS:
		return fltmgr.FLT_PREOP_PENDING
	case st == kernel.STATUS_FLT_NOT_SAFE_TO_POST_OPERATION && pp.Env.Is("post-anyway"):
		fm.FltFreeDeferredIoWorkItem(item)
		g := fm.FltAllocateGenericWorkItem()
		if g != nil {
			if fm.FltQueueGenericWorkItem(g, objs.Instance, pp.inspectGeneric, queues.DelayedWorkQueue, data) == kernel.STATUS_SUCCESS {
				return fltmgr.FLT_PREOP_PENDING
			}
			fm.FltFreeGenericWorkItem(g)
		}
		return fltmgr.FLT_PREOP_SUCCESS_NO_CALLBACK
	}
	// Not safe to post (or the instance is going away): inspect nothing,
	// let the read go down in this thread.
	fm.FltFreeDeferredIoWorkItem(item)
	return fltmgr.FLT_PREOP_SUCCESS_NO_CALLBACK
}

// inspect is the deferred work routine: look at the request at PASSIVE,
// then let it continue down the stack.
func (pp *ppFilter) inspect(item *fltmgr.FLT_DEFERRED_IO_WORKITEM, data *fltmgr.FLT_CALLBACK_DATA, _ any) {
	pp.K.Compute(20 * des.Microsecond)
	pp.FM.FltCompletePendedPreOperation(data, fltmgr.FLT_PREOP_SUCCESS_NO_CALLBACK, nil)
	pp.FM.FltFreeDeferredIoWorkItem(item)
}

func (pp *ppFilter) inspectGeneric(item *fltmgr.FLT_GENERIC_WORKITEM, _ fltmgr.FltObject, ctx any) {
	data := ctx.(*fltmgr.FLT_CALLBACK_DATA)
	pp.K.Compute(20 * des.Microsecond)
	pp.FM.FltCompletePendedPreOperation(data, fltmgr.FLT_PREOP_SUCCESS_NO_CALLBACK, nil)
	pp.FM.FltFreeGenericWorkItem(item)
}

// ---------------------------------------------------------------------
// postopqueue: §6.14, §5.4, §1.5.

var markPostOpRelease = NewMark("postopqueue: post-write releases waiting reads")

const (
	// pqStatusContentReady is the filter's own status (customer bit set)
	// with which its InsertIo refuses to queue: the content arrived, the
	// read may go down at once.
	pqStatusContentReady kernel.NTSTATUS = 0xE0000001
)

func init() {
	Register(&Scenario{
		Name: "postopqueue",
		Doc: "A filter holds reads of a file until its content has been written: early reads wait in a " +
			"cancel-safe callback-data queue locked by a fast mutex (as in the cancelSafe sample); the " +
			"post-write callback releases them. Post-operation callbacks run at DISPATCH_LEVEL when the " +
			"storage stack completes from a DPC. The correct filter posts the release to a worker " +
			"(FltQueueDeferredIoWorkItem, FLT_POSTOP_MORE_PROCESSING_REQUIRED: what " +
			"FltDoCompletionProcessingWhenSafe does); the bug variants release inline.",
		Section: "§6.14, §5.4, §1.5, §1.4",
		Variants: []Variant{
			{Name: "correct", Doc: "fast-mutex queue; the post-write posts the release to a worker at PASSIVE_LEVEL"},
			{Name: "fastmutex-at-dispatch", Bug: true,
				Doc:   "the post-write calls FltCbdqRemoveNextIo on the fast-mutex queue at DISPATCH_LEVEL",
				Marks: []*Mark{markPostOpRelease}, Want: "0xC4 DRIVER_VERIFIER_DETECTED_VIOLATION (0x33,"},
			{Name: "resume-at-dispatch", Bug: true,
				Doc: "a spin-lock queue makes the dequeue legal at DISPATCH_LEVEL, but resuming a read with " +
					"FLT_PREOP_SUCCESS_NO_CALLBACK is allowed only at ≤ APC_LEVEL (§1.4)",
				Marks: []*Mark{markPostOpRelease}, Want: "0xA IRQL_NOT_LESS_OR_EQUAL"},
		},
		Setup: setupPostOpQueue,
	})
}

type pqFilter struct {
	*Minifilter
	q       fltmgr.FLT_CALLBACK_DATA_QUEUE
	list    cbdqList           // q's storage, locked by a fast mutex ...
	spin    *kernel.KSPIN_LOCK // ... or by this in the resume-at-dispatch variant
	ready   *kernel.Cell       // the content has been written
	waiting *kernel.Cell       // reads in the queue (or being inserted)
}

func setupPostOpQueue(env *Env) error {
	k := env.K
	b, err := NewMinifilter(env)
	if err != nil {
		return err
	}
	vol := b.Volume
	pq := &pqFilter{Minifilter: b,
		list: cbdqList{k: k, mutex: k.ExInitializeFastMutex("waitq")}, spin: k.KeInitializeSpinLock("waitq"),
		ready: k.NewCell("content ready", 0), waiting: k.NewCell("reads waiting", 0)}
	if err := pq.Register("waitcontent", 140000, &fltmgr.FLT_REGISTRATION{
		OperationRegistration: []fltmgr.FLT_OPERATION_REGISTRATION{
			{MajorFunction: fltmgr.IRP_MJ_READ, PreOperation: pq.preRead},
			{MajorFunction: fltmgr.IRP_MJ_WRITE, PostOperation: pq.postWrite},
		},
		InstanceSetupCallback:         pq.instanceSetup,
		InstanceTeardownStartCallback: pq.teardownStart,
	}); err != nil {
		return err
	}

	// Workload: a producer writes the file twice; two readers read it,
	// each after the first write (natural) or while it is in flight (a
	// decision); a canceller may give up on reader 0's read.
	apps := newFltApps(k, 4)
	started := k.KeInitializeEvent("filter started", kernel.NotificationEvent, false)
	written := k.KeInitializeEvent("first write done", kernel.NotificationEvent, false)
	issued0 := k.KeInitializeEvent("reader0 issued", kernel.NotificationEvent, false)
	var read0 *fltmgr.IoOp
	k.PsCreateSystemThread("producer", 8, func() {
		pq.StartFiltering()
		k.KeSetEvent(started, 0, false)
		for i := range 2 {
			vol.Send(fltmgr.IoRequest{MajorFunction: fltmgr.IRP_MJ_WRITE, Length: 4096, ByteOffset: int64(i) * 4096, Tag: fmt.Sprintf("write%d", i)})
			k.KeSetEvent(written, 0, false)
		}
		apps.finish()
	})
	for i := range 2 {
		k.PsCreateSystemThread(fmt.Sprintf("reader%d", i), 8, func() {
			k.KeWaitForSingleObject(started, kernel.Infinite)
			if env.Choose(fmt.Sprintf("postopqueue: reader%d reads before the first write completes", i), 2) == 0 {
				k.KeWaitForSingleObject(written, kernel.Infinite)
			}
			io := vol.Issue(fltmgr.IoRequest{MajorFunction: fltmgr.IRP_MJ_READ, Length: 4096, Tag: fmt.Sprintf("read%d", i)})
			if i == 0 {
				read0 = io
				k.KeSetEvent(issued0, 0, false)
			}
			io.Wait()
			apps.finish()
		})
	}
	k.PsCreateSystemThread("canceller", 8, func() {
		k.KeWaitForSingleObject(issued0, kernel.Infinite)
		cancelAfterChoice(env, "postopqueue: cancel read0 (×20µs; 0 = never)", 4, func() { read0.Cancel() })
		apps.finish()
	})
	pq.UnloadWhenDone(apps.done)
	return nil
}

func (pq *pqFilter) instanceSetup(objs *fltmgr.FLT_RELATED_OBJECTS, _ fltmgr.FLT_INSTANCE_SETUP_FLAGS) kernel.NTSTATUS {
	pq.list.k.InitializeListHead(&pq.list.head)
	return pq.FM.FltCbdqInitialize(objs.Instance, &pq.q, pq.insertIo, pq.removeIo, pq.list.peekNextIo, pq.acquire, pq.release, pq.completeCanceledIo)
}

// preRead lets a read through once the content is there, otherwise
// queues it (the insert callback rechecks under the queue lock).
func (pq *pqFilter) preRead(data *fltmgr.FLT_CALLBACK_DATA, _ *fltmgr.FLT_RELATED_OBJECTS, _ *any) fltmgr.FLT_PREOP_CALLBACK_STATUS {
	if !fltmgr.FLT_IS_IRP_OPERATION(data) {
		return fltmgr.FLT_PREOP_DISALLOW_FASTIO
	}
	if pq.K.Read(pq.ready) != 0 {
		return fltmgr.FLT_PREOP_SUCCESS_NO_CALLBACK
	}
	if pq.FM.FltCbdqInsertIo(&pq.q, data, nil, nil) == kernel.STATUS_SUCCESS {
		return fltmgr.FLT_PREOP_PENDING // do not touch data any more
	}
	return fltmgr.FLT_PREOP_SUCCESS_NO_CALLBACK // content ready, or the queue is disabled
}

// postWrite marks the content ready and releases the waiting reads.
func (pq *pqFilter) postWrite(data *fltmgr.FLT_CALLBACK_DATA, _ *fltmgr.FLT_RELATED_OBJECTS, _ any, flags fltmgr.FLT_POST_OPERATION_FLAGS) fltmgr.FLT_POSTOP_CALLBACK_STATUS {
	k, fm := pq.K, pq.FM
	if flags&fltmgr.FLTFL_POST_OPERATION_DRAINING != 0 || !kernel.NT_SUCCESS(data.IoStatus.Status) {
		return fltmgr.FLT_POSTOP_FINISHED_PROCESSING // teardown drains the queue itself
	}
	// Publish "ready" before looking for waiters; the insert callback
	// counts itself before it looks at "ready", so one of them sees the
	// other.
	k.InterlockedExchange(pq.ready, 1)
	if k.Read(pq.waiting) == 0 {
		return fltmgr.FLT_POSTOP_FINISHED_PROCESSING
	}
	pq.Env.Hit(markPostOpRelease)
	if !pq.Env.Is("correct") {
		pq.releaseWaiting() // here, at whatever IRQL the completion runs
		return fltmgr.FLT_POSTOP_FINISHED_PROCESSING
	}
	item := fm.FltAllocateDeferredIoWorkItem()
	if item == nil {
		return fltmgr.FLT_POSTOP_FINISHED_PROCESSING // the next write (or teardown) releases them
	}
	if fm.FltQueueDeferredIoWorkItem(item, data, pq.releaseRoutine, queues.DelayedWorkQueue, nil) != kernel.STATUS_SUCCESS {
		fm.FltFreeDeferredIoWorkItem(item) // instance going away: teardown releases them
		return fltmgr.FLT_POSTOP_FINISHED_PROCESSING
	}
	return fltmgr.FLT_POSTOP_MORE_PROCESSING_REQUIRED
}

// releaseRoutine is the posted completion processing, at PASSIVE_LEVEL.
func (pq *pqFilter) releaseRoutine(item *fltmgr.FLT_DEFERRED_IO_WORKITEM, data *fltmgr.FLT_CALLBACK_DATA, _ any) {
	pq.releaseWaiting()
	pq.FM.FltCompletePendedPostOperation(data)
	pq.FM.FltFreeDeferredIoWorkItem(item)
}

// releaseWaiting lets every queued read continue down the stack.
func (pq *pqFilter) releaseWaiting() {
	for {
		d := pq.FM.FltCbdqRemoveNextIo(&pq.q, nil)
		if d == nil {
			return
		}
		pq.FM.FltCompletePendedPreOperation(d, fltmgr.FLT_PREOP_SUCCESS_NO_CALLBACK, nil)
	}
}

func (pq *pqFilter) teardownStart(*fltmgr.FLT_RELATED_OBJECTS, fltmgr.FLT_INSTANCE_TEARDOWN_FLAGS) {
	pq.FM.FltCbdqDisable(&pq.q)
	pq.releaseWaiting()
}

// The queue callbacks; insert, remove and peek run with the lock held.

func (pq *pqFilter) insertIo(_ *fltmgr.FLT_CALLBACK_DATA_QUEUE, data *fltmgr.FLT_CALLBACK_DATA, _ any) kernel.NTSTATUS {
	k := pq.K
	k.InterlockedIncrement(pq.waiting)
	if k.Read(pq.ready) != 0 {
		k.InterlockedDecrement(pq.waiting)
		return pqStatusContentReady
	}
	pq.list.k.InsertTailList(&pq.list.head, &data.QueueLinks)
	return kernel.STATUS_SUCCESS
}

func (pq *pqFilter) removeIo(q *fltmgr.FLT_CALLBACK_DATA_QUEUE, data *fltmgr.FLT_CALLBACK_DATA) {
	pq.list.removeIo(q, data)
	pq.K.InterlockedDecrement(pq.waiting)
}

func (pq *pqFilter) acquire(q *fltmgr.FLT_CALLBACK_DATA_QUEUE) kernel.IRQL {
	if pq.Env.Is("resume-at-dispatch") {
		return pq.K.KeAcquireSpinLock(pq.spin)
	}
	return pq.list.acquire(q)
}

func (pq *pqFilter) release(q *fltmgr.FLT_CALLBACK_DATA_QUEUE, irql kernel.IRQL) {
	if pq.Env.Is("resume-at-dispatch") {
		pq.K.KeReleaseSpinLock(pq.spin, irql)
		return
	}
	pq.list.release(q, irql)
}

func (pq *pqFilter) completeCanceledIo(_ *fltmgr.FLT_CALLBACK_DATA_QUEUE, data *fltmgr.FLT_CALLBACK_DATA) {
	data.IoStatus = kernel.IO_STATUS_BLOCK{Status: kernel.STATUS_CANCELLED}
	pq.FM.FltCompletePendedPreOperation(data, fltmgr.FLT_PREOP_COMPLETE, nil)
}

// ---------------------------------------------------------------------
// teardownpend: §6.15, §5.5, §7.3.

var (
	markTeardownPended    = NewMark("teardownpend: teardown with notifications pended")
	markPendAfterTeardown = NewMark("teardownpend: notification pended after teardown started")
)

const (
	// IRP_MN_NOTIFY_CHANGE_DIRECTORY (wdm.h).
	irpMnNotifyChangeDirectory fltmgr.UCHAR = 0x02
)

func init() {
	Register(&Scenario{
		Name: "teardownpend",
		Doc: "A filter answers directory change notifications itself: it pends them in its own list " +
			"(a spin lock, and a cancel callback set with FltSetCancelCompletion under the cancel spin lock, " +
			"as NameChanger does) and completes them from its post-write callback. The filter unloads after " +
			"the watcher is done or, a decision, while a notification is pended or being issued. " +
			"InstanceTeardownStart must hand the pended notifications back and stop pending new ones: new " +
			"writes no longer reach the instance, and the filter manager waits for pended operations without " +
			"completing them.",
		Section: "§6.15, §5.5, §7.3, §1.7",
		Variants: []Variant{
			{Name: "correct", Doc: "InstanceTeardownStart closes the list and passes every notification it still owns down; a pre-op that finds the list closed passes its notification down"},
			{Name: "forget-pended", Bug: true, Doc: "InstanceTeardownStart ignores the pended notifications: unload waits forever",
				Marks: []*Mark{markTeardownPended}, Want: "hang"},
			{Name: "pend-after-teardown", Bug: true,
				Doc: "InstanceTeardownStart drains the list but does not close it: a pre-op already running when " +
					"teardown starts (§5.5 item 2) pends its notification afterwards, and unload waits forever",
				Marks: []*Mark{markPendAfterTeardown}, Want: "hang"},
		},
		Setup: setupTeardownPend,
	})
}

type tpFilter struct {
	*Minifilter
	lock   *kernel.KSPIN_LOCK
	notify []*fltmgr.FLT_CALLBACK_DATA // pended notifications
	closed bool                        // teardown started: pend no more
	// entered is set when notify1's pre-op starts (workload timing).
	entered *kernel.KEVENT
}

func setupTeardownPend(env *Env) error {
	k := env.K
	b, err := NewMinifilter(env)
	if err != nil {
		return err
	}
	vol := b.Volume
	tp := &tpFilter{Minifilter: b, lock: k.KeInitializeSpinLock("notify list"),
		entered: k.KeInitializeEvent("notify1 pre-op entered", kernel.NotificationEvent, false)}
	if err := tp.Register("changenotify", 180000, &fltmgr.FLT_REGISTRATION{
		OperationRegistration: []fltmgr.FLT_OPERATION_REGISTRATION{
			{MajorFunction: fltmgr.IRP_MJ_DIRECTORY_CONTROL, PreOperation: tp.preDirectoryControl},
			{MajorFunction: fltmgr.IRP_MJ_WRITE, PostOperation: tp.postWrite},
		},
		InstanceTeardownStartCallback: tp.teardownStart,
	}); err != nil {
		return err
	}
	tp.startWorkload(vol)
	return nil
}

// tpWorkload is teardownpend's workload: a watcher arms a notification,
// waits for it, arms a second; a writer writes once per armed
// notification; a canceller may cancel the first; the unloader unloads at
// the end, while the first is pended, or while the second is being
// issued.
type tpWorkload struct {
	tp      *tpFilter
	vol     *fltmgr.FLT_VOLUME
	apps    *countdown
	started *kernel.KEVENT     // filtering started
	armed   *kernel.KSEMAPHORE // a count per notification issued
	issued0 *kernel.KEVENT     // notify0 is issued
	notify0 *fltmgr.IoOp
}

// startWorkload creates the workload's events and its four threads.
func (tp *tpFilter) startWorkload(vol *fltmgr.FLT_VOLUME) {
	k := tp.K
	w := &tpWorkload{tp: tp, vol: vol}
	w.apps = newFltApps(k, 3)
	w.started = k.KeInitializeEvent("filter started", kernel.NotificationEvent, false)
	w.armed = k.KeInitializeSemaphore("notifications armed", 0, 16)
	w.issued0 = k.KeInitializeEvent("notify0 issued", kernel.NotificationEvent, false)
	k.PsCreateSystemThread("watcher", 8, w.watcher)
	k.PsCreateSystemThread("writer", 8, w.writer)
	k.PsCreateSystemThread("canceller", 8, w.canceller)
	k.PsCreateSystemThread("unloader", 8, w.unloader)
}

// watcher starts filtering, then issues two change notifications, one
// after the other.
func (w *tpWorkload) watcher() {
	k := w.tp.K
	w.tp.StartFiltering()
	k.KeSetEvent(w.started, 0, false)
	for i := range 2 {
		io := w.vol.Issue(fltmgr.IoRequest{MajorFunction: fltmgr.IRP_MJ_DIRECTORY_CONTROL, MinorFunction: irpMnNotifyChangeDirectory,
			Length: 1024, Tag: fmt.Sprintf("notify%d", i)})
		if i == 0 {
			w.notify0 = io
			k.KeSetEvent(w.issued0, 0, false)
		}
		k.KeReleaseSemaphore(w.armed, 0, 1, false)
		io.Wait()
	}
	w.apps.finish()
}

// writer writes once per armed notification: the post-write completes it.
func (w *tpWorkload) writer() {
	k := w.tp.K
	for i := range 2 {
		k.KeWaitForSingleObject(w.armed, kernel.Infinite)
		k.Compute(10 * des.Microsecond)
		w.vol.Send(fltmgr.IoRequest{MajorFunction: fltmgr.IRP_MJ_WRITE, Length: 512, ByteOffset: int64(i) * 512, Tag: fmt.Sprintf("write%d", i)})
	}
	w.apps.finish()
}

// canceller cancels notify0 after a delay, or never (a decision).
func (w *tpWorkload) canceller() {
	w.tp.K.KeWaitForSingleObject(w.issued0, kernel.Infinite)
	cancelAfterChoice(w.tp.Env, "teardownpend: cancel notify0 (×20µs; 0 = never)", 4, func() { w.notify0.Cancel() })
	w.apps.finish()
}

// unloader unloads the filter at a moment the workload decides.
func (w *tpWorkload) unloader() {
	tp, env, k := w.tp, w.tp.Env, w.tp.K
	k.KeWaitForSingleObject(w.started, kernel.Infinite)
	switch env.Choose("teardownpend: unload (0 at the end, 1 while notify0 is pended, 2 while notify1's pre-op runs)", 3) {
	case 1:
		k.KeWaitForSingleObject(w.issued0, kernel.Infinite)
	case 2:
		k.KeWaitForSingleObject(tp.entered, kernel.Infinite)
	default:
		k.KeWaitForSingleObject(w.apps.done, kernel.Infinite)
	}
	env.BeginDrain()
	tp.Unload()
}

// preDirectoryControl pends change notifications: under the cancel spin
// lock, complete an already-cancelled one, else set the cancel callback
// and put it on the list (the NameChanger order, §7.3) — unless teardown
// has closed the list.
func (tp *tpFilter) preDirectoryControl(data *fltmgr.FLT_CALLBACK_DATA, objs *fltmgr.FLT_RELATED_OBJECTS, _ *any) fltmgr.FLT_PREOP_CALLBACK_STATUS {
	k, fm := tp.K, tp.FM
	if data.Iopb.MinorFunction != irpMnNotifyChangeDirectory || !fltmgr.FLT_IS_IRP_OPERATION(data) {
		return fltmgr.FLT_PREOP_SUCCESS_NO_CALLBACK
	}
	if data.Irp().Tag == "notify1" {
		k.KeSetEvent(tp.entered, 0, false)
	}
	// FltGetFileNameInformation for the directory and the match against
	// the watched paths: the bulk of the pre-op's time.
	k.Compute(20 * des.Microsecond)
	old := k.IoAcquireCancelSpinLock()
	if fm.FltIsIoCanceled(data) {
		k.IoReleaseCancelSpinLock(old)
		data.IoStatus = kernel.IO_STATUS_BLOCK{Status: kernel.STATUS_CANCELLED}
		return fltmgr.FLT_PREOP_COMPLETE
	}
	k.KeAcquireSpinLockAtDpcLevel(tp.lock)
	if tp.closed && !tp.Env.Is("pend-after-teardown") {
		k.KeReleaseSpinLockFromDpcLevel(tp.lock)
		k.IoReleaseCancelSpinLock(old)
		return fltmgr.FLT_PREOP_SUCCESS_NO_CALLBACK // detaching: the file system watches alone
	}
	fm.FltSetCancelCompletion(data, tp.cancelNotify)
	tp.notify = append(tp.notify, data)
	if objs.Instance.TearingDown() {
		tp.Env.Hit(markPendAfterTeardown)
	}
	k.KeReleaseSpinLockFromDpcLevel(tp.lock)
	k.IoReleaseCancelSpinLock(old)
	return fltmgr.FLT_PREOP_PENDING
}

// take removes every pended notification from the list.
func (tp *tpFilter) take() []*fltmgr.FLT_CALLBACK_DATA {
	old := tp.K.KeAcquireSpinLock(tp.lock)
	list := tp.notify
	tp.notify = nil
	tp.K.KeReleaseSpinLock(tp.lock, old)
	return list
}

// postWrite reports the change: it completes every notification whose
// cancel callback it can clear (the others belong to the callback).
func (tp *tpFilter) postWrite(data *fltmgr.FLT_CALLBACK_DATA, _ *fltmgr.FLT_RELATED_OBJECTS, _ any, flags fltmgr.FLT_POST_OPERATION_FLAGS) fltmgr.FLT_POSTOP_CALLBACK_STATUS {
	if flags&fltmgr.FLTFL_POST_OPERATION_DRAINING != 0 || !kernel.NT_SUCCESS(data.IoStatus.Status) {
		return fltmgr.FLT_POSTOP_FINISHED_PROCESSING
	}
	for _, d := range tp.take() {
		if tp.FM.FltClearCancelCompletion(d) == kernel.STATUS_SUCCESS {
			d.IoStatus = kernel.IO_STATUS_BLOCK{Status: kernel.STATUS_SUCCESS, Information: 64}
			tp.FM.FltCompletePendedPreOperation(d, fltmgr.FLT_PREOP_COMPLETE, nil)
		}
	}
	return fltmgr.FLT_POSTOP_FINISHED_PROCESSING
}

// cancelNotify is the cancel callback (no cancel spin lock held): it owns
// the notification whether or not it is still on the list.
func (tp *tpFilter) cancelNotify(data *fltmgr.FLT_CALLBACK_DATA) {
	old := tp.K.KeAcquireSpinLock(tp.lock)
	tp.notify = removeFirst(tp.notify, data)
	tp.K.KeReleaseSpinLock(tp.lock, old)
	data.IoStatus = kernel.IO_STATUS_BLOCK{Status: kernel.STATUS_CANCELLED}
	tp.FM.FltCompletePendedPreOperation(data, fltmgr.FLT_PREOP_COMPLETE, nil)
}

// teardownStart must give back every pended notification and stop
// pending new ones (§5.5 item 2): the correct filter closes the list and
// passes each notification it still owns down to the file system, which
// keeps watching without the filter.
func (tp *tpFilter) teardownStart(*fltmgr.FLT_RELATED_OBJECTS, fltmgr.FLT_INSTANCE_TEARDOWN_FLAGS) {
	k := tp.K
	old := k.KeAcquireSpinLock(tp.lock)
	if len(tp.notify) > 0 {
		tp.Env.Hit(markTeardownPended)
	}
	tp.closed = true
	var list []*fltmgr.FLT_CALLBACK_DATA
	if !tp.Env.Is("forget-pended") {
		list, tp.notify = tp.notify, nil
	}
	k.KeReleaseSpinLock(tp.lock, old)
	for _, d := range list {
		if tp.FM.FltClearCancelCompletion(d) == kernel.STATUS_SUCCESS {
			tp.FM.FltCompletePendedPreOperation(d, fltmgr.FLT_PREOP_SUCCESS_NO_CALLBACK, nil)
		}
	}
}
