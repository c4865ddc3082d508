package fltmgr

import (
	"fmt"
	"github.com/wqsim/wqsim/des"

	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues"
)

// Work routines of the two Flt work-item kinds (REFERENCE §1.3). Both run
// at PASSIVE_LEVEL in a system worker thread.
type (
	PFLT_GENERIC_WORKITEM_ROUTINE     func(item *FLT_GENERIC_WORKITEM, fltObject FltObject, ctx any)
	PFLT_DEFERRED_IO_WORKITEM_ROUTINE func(item *FLT_DEFERRED_IO_WORKITEM, data *FLT_CALLBACK_DATA, ctx any)
)

// fltWorkTag is the pool tag of Flt work items (fltmgr's FMwi).
const fltWorkTag = "FMwi"

// What a leaked Flt work item's pool block is reported as (REFERENCE §1.3).
var (
	genericItemUse  = kernel.BlockUse{Kind: "FLT_GENERIC_WORKITEM", Alloc: "FltAllocateGenericWorkItem", Free: "FltFreeGenericWorkItem"}
	deferredItemUse = kernel.BlockUse{Kind: "FLT_DEFERRED_IO_WORKITEM", Alloc: "FltAllocateDeferredIoWorkItem", Free: "FltFreeDeferredIoWorkItem"}
)

// fltWorkItem is what both kinds share: an executive work item in a
// nonpaged pool block (item.Block), and the rundown reference held while
// it is queued or running.
type fltWorkItem struct {
	fm   *FilterManager
	item queues.WORK_QUEUE_ITEM
	name string
	ref  FltObject // holds a rundown reference while queued or running
}

// FLT_GENERIC_WORKITEM is a work item not tied to an I/O operation.
type FLT_GENERIC_WORKITEM struct {
	fltWorkItem
	routine PFLT_GENERIC_WORKITEM_ROUTINE
	ctx     any
	runFn   func(any) // run, bound once
}

// FLT_DEFERRED_IO_WORKITEM posts an IRP-based operation to a worker.
type FLT_DEFERRED_IO_WORKITEM struct {
	fltWorkItem
	routine PFLT_DEFERRED_IO_WORKITEM_ROUTINE
	data    *FLT_CALLBACK_DATA
	ctx     any
}

// Name returns "flt work item N".
func (w *fltWorkItem) Name() string { return w.name }

// Queued reports whether the item waits in a system queue (not yet taken
// by a worker). No scheduling point.
func (w *fltWorkItem) Queued() bool { return w.item.Queued() }

// Block returns the pool block the item lives in.
func (w *fltWorkItem) Block() *kernel.PoolBlock { return w.item.Block }

// allocWorkItem allocates the pool block of a Flt work item and labels it
// with use, so that a leak names the item and its routines; the filter it
// serves is added when the item is queued (forWorkItem).
func (fm *FilterManager) allocWorkItem(use kernel.BlockUse) (fltWorkItem, bool) {
	api := use.Alloc
	fm.k.Layer().CheckIrqlAtMost(api, kernel.DISPATCH_LEVEL)
	b := fm.k.ExAllocatePoolWithTag(kernel.NonPagedPool, queues.SizeofWorkQueueItem+32, fltWorkTag)
	if b == nil {
		return fltWorkItem{}, false
	}
	fm.lastItem++
	w := fltWorkItem{fm: fm, item: queues.WORK_QUEUE_ITEM{Block: b}, name: fm.sp.itemName(fm.lastItem)}
	b.Owner, b.Use = w.name, use
	fm.trace(KindFltWorkItem, des.What(api), w.name, 0, 0)
	return w, true
}

// FltAllocateGenericWorkItem allocates a generic work item from nonpaged
// pool; nil if the allocation fails (kernel Config.InjectAllocFailures).
// Caller IRQL ≤ DISPATCH_LEVEL. Free it with FltFreeGenericWorkItem, usually
// from its routine; a leaked item is reported at the end of the run as its
// pool block (tag FMwi), named as an FLT_GENERIC_WORKITEM from this routine,
// with the filter it was queued for. REFERENCE §1.3.
func (fm *FilterManager) FltAllocateGenericWorkItem() *FLT_GENERIC_WORKITEM {
	w, ok := fm.allocWorkItem(genericItemUse)
	if !ok {
		return nil
	}
	item := fm.sp.generic.Take(fm.k.Layer().Sim())
	runFn := item.runFn // recycled: keep the handler bound to the item itself
	*item = FLT_GENERIC_WORKITEM{fltWorkItem: w, runFn: runFn}
	if item.runFn == nil {
		item.runFn = item.run
	}
	return item
}

// FltAllocateDeferredIoWorkItem allocates a deferred I/O work item; as
// FltAllocateGenericWorkItem. REFERENCE §1.3.
// IRQL: ≤ DISPATCH_LEVEL.
func (fm *FilterManager) FltAllocateDeferredIoWorkItem() *FLT_DEFERRED_IO_WORKITEM {
	w, ok := fm.allocWorkItem(deferredItemUse)
	if !ok {
		return nil
	}
	return &FLT_DEFERRED_IO_WORKITEM{fltWorkItem: w}
}

// FltFreeGenericWorkItem frees item. Caller IRQL ≤ DISPATCH_LEVEL. Freeing
// an item that is still queued is caught when a worker removes it
// (WORKER_INVALID 0xE4 P1=0, the executive outcome §1.3 expects); freeing
// twice is BAD_POOL_CALLER 0xC2.
func (fm *FilterManager) FltFreeGenericWorkItem(item *FLT_GENERIC_WORKITEM) {
	if item == nil {
		fm.k.Layer().NullDereference("FltFreeGenericWorkItem", "FltWorkItem", true)
	}
	fm.freeWorkItem("FltFreeGenericWorkItem", &item.fltWorkItem)
}

// FltFreeDeferredIoWorkItem frees item; as FltFreeGenericWorkItem
// (REFERENCE §1.3).
// IRQL: ≤ DISPATCH_LEVEL.
func (fm *FilterManager) FltFreeDeferredIoWorkItem(item *FLT_DEFERRED_IO_WORKITEM) {
	if item == nil {
		fm.k.Layer().NullDereference("FltFreeDeferredIoWorkItem", "FltWorkItem", true)
	}
	fm.freeWorkItem("FltFreeDeferredIoWorkItem", &item.fltWorkItem)
}

func (fm *FilterManager) freeWorkItem(api string, w *fltWorkItem) {
	fm.k.Layer().CheckIrqlAtMost(api, kernel.DISPATCH_LEVEL)
	fm.trace(KindFltWorkItem, des.What(api), w.name, 0, 0)
	fm.k.ExFreePoolWithTag(w.item.Block, fltWorkTag)
}

// FltQueueGenericWorkItem queues item to the system worker queue typ
// (CriticalWorkQueue or DelayedWorkQueue) to call routine(item, fltObject,
// ctx) at PASSIVE_LEVEL in a worker thread. It takes a rundown reference
// on fltObject (the filter or an instance) and drops it when the routine
// returns, so FltUnregisterFilter waits for the routine (§1.3, §6.8).
// Returns STATUS_SUCCESS, or STATUS_FLT_DELETING_OBJECT (0xC01C000B) when
// the object is being torn down (the filter unloading, the instance
// detaching) — then nothing is queued. Any other queue type is a
// queues.ContractViolation (HyperCriticalWorkQueue is reserved) when the
// pool's ContractChecks is on. Caller IRQL ≤ DISPATCH_LEVEL. Queueing an
// item that is still queued is the executive's 0xE4 P1=1 (§1.3).
func (fm *FilterManager) FltQueueGenericWorkItem(item *FLT_GENERIC_WORKITEM, fltObject FltObject,
	routine PFLT_GENERIC_WORKITEM_ROUTINE, typ queues.WORK_QUEUE_TYPE, ctx any) kernel.NTSTATUS {
	const api = "FltQueueGenericWorkItem"
	if item == nil {
		fm.k.Layer().NullDereference(api, "FltWorkItem", true)
	}
	fm.k.Layer().CheckIrqlAtMost(api, kernel.DISPATCH_LEVEL)
	item.forObject(fltObject)
	if st := fm.FltObjectReference(fltObject); st != kernel.STATUS_SUCCESS {
		fm.trace(KindFltWorkItem, des.What(api), item.name, int64(st), int64(typ))
		return st
	}
	if d, ok := ctx.(*FLT_CALLBACK_DATA); ok && d.op != nil {
		d.op.exposeData()
	}
	item.routine, item.ctx, item.ref = routine, ctx, fltObject
	fm.queueWorkItem(api, &item.fltWorkItem, typ, item.runFn)
	return kernel.STATUS_SUCCESS
}

// forObject records, for the leak report, the filter or instance the
// item was queued for (even if the queueing was refused: the item then
// stays with the caller, who must free it).
func (w *fltWorkItem) forObject(obj FltObject) {
	if b := w.item.Block; b != nil && obj != nil {
		b.Use.For = obj.objectName()
	}
}

func (item *FLT_GENERIC_WORKITEM) run(any) {
	routine, obj, ctx := item.routine, item.ref, item.ctx // read before: the routine may free or requeue the item
	item.fm.trace(KindFltWorkItem, WhatGenericRoutine, item.name, 0, 0)
	prev := item.fm.enter(filterOf(obj))
	routine(item, obj, ctx)
	item.fm.leave(prev)
	item.fm.workItemReturned(&item.fltWorkItem, obj)
}

// FltQueueDeferredIoWorkItem posts the IRP-based operation data to the
// system worker queue typ, to call routine(item, data, ctx) at
// PASSIVE_LEVEL in a worker thread; the usual caller then returns
// FLT_PREOP_PENDING (or FLT_POSTOP_MORE_PROCESSING_REQUIRED) and the
// routine completes the operation with FltCompletePendedPreOperation (or
// FltCompletePendedPostOperation). Returns STATUS_SUCCESS, or (nothing
// queued):
//   - STATUS_FLT_NOT_SAFE_TO_POST_OPERATION (0xC01C0006) for paging I/O,
//     when the calling thread's TopLevelIrp is not NULL (§5.2), or for an
//     operation that is not IRP-based (the docs list it as a cause without
//     a status; §1.3 infers this one);
//   - STATUS_FLT_DELETING_OBJECT (0xC01C000B) when data's target instance
//     is being torn down.
//
// A rundown reference on the instance is held until the routine returns.
// Caller IRQL ≤ DISPATCH_LEVEL. REFERENCE §1.3.
func (fm *FilterManager) FltQueueDeferredIoWorkItem(item *FLT_DEFERRED_IO_WORKITEM, data *FLT_CALLBACK_DATA,
	routine PFLT_DEFERRED_IO_WORKITEM_ROUTINE, typ queues.WORK_QUEUE_TYPE, ctx any) kernel.NTSTATUS {
	const api = "FltQueueDeferredIoWorkItem"
	if item == nil {
		fm.k.Layer().NullDereference(api, "FltWorkItem", true)
	}
	fm.k.Layer().CheckIrqlAtMost(api, kernel.DISPATCH_LEVEL)
	fm.k.Layer().Yield()
	if !FLT_IS_IRP_OPERATION(data) || data.pagingIo() || fm.IoGetTopLevelIrp() != nil {
		fm.mark(MarkDeferredNotSafe, data.name)
		fm.trace(KindFltWorkItem, des.What(api), item.name, int64(kernel.STATUS_FLT_NOT_SAFE_TO_POST_OPERATION), int64(typ))
		return kernel.STATUS_FLT_NOT_SAFE_TO_POST_OPERATION
	}
	inst := data.Iopb.TargetInstance
	item.forObject(inst)
	if st := fm.FltObjectReference(inst); st != kernel.STATUS_SUCCESS {
		fm.trace(KindFltWorkItem, des.What(api), item.name, int64(st), int64(typ))
		return st
	}
	data.op.exposeData()
	item.routine, item.data, item.ctx, item.ref = routine, data, ctx, inst
	fm.queueWorkItem(api, &item.fltWorkItem, typ, item.run)
	return kernel.STATUS_SUCCESS
}

func (item *FLT_DEFERRED_IO_WORKITEM) run(any) {
	routine, data, obj, ctx := item.routine, item.data, item.ref, item.ctx
	item.fm.trace(KindFltWorkItem, WhatDeferredRoutine, item.name, 0, 0)
	prev := item.fm.enter(filterOf(obj))
	routine(item, data, ctx)
	item.fm.leave(prev)
	item.fm.workItemReturned(&item.fltWorkItem, obj)
}

// queueWorkItem checks the queue type against the documented pair and
// hands the item to the executive work queue.
func (fm *FilterManager) queueWorkItem(api string, w *fltWorkItem, typ queues.WORK_QUEUE_TYPE, run func(any)) {
	if fm.sys == nil {
		panic("fltmgr: " + api + " needs the executive worker queues: pass a *queues.System to fltmgr.New")
	}
	if typ != queues.CriticalWorkQueue && typ != queues.DelayedWorkQueue && typ.Valid() {
		fm.sys.ReportContract(api, fmt.Sprintf("%s queued to %v", w.name, typ),
			"QueueType is CriticalWorkQueue or DelayedWorkQueue; HyperCriticalWorkQueue is reserved for system use",
			"DDI:"+api+", REFERENCE §1.3")
	}
	if !w.item.Queued() {
		// Re-initialising a queued item would null a live link; leave it so
		// that ExQueueWorkItem reports the double queueing (§1.3, §6.6).
		queues.ExInitializeWorkItem(&w.item, run, nil)
	}
	fm.trace(KindFltWorkItem, des.What(api), w.name, 0, int64(typ))
	prev := fm.k.Layer().SwitchImage(nil) // the filter manager's wrapper, not the filter's code (§5.11)
	fm.sys.ExQueueWorkItem(&w.item, typ)
	fm.k.Layer().SwitchImage(prev)
}

// workItemReturned drops the rundown reference the item held, after its
// routine returned (in fltmgr's code, so the filter may be unloading).
func (fm *FilterManager) workItemReturned(w *fltWorkItem, obj FltObject) {
	fm.trace(KindFltWorkItem, WhatRoutineReturned, w.name, 0, 0)
	fm.FltObjectDereference(obj)
}

// filterOf is the filter whose code a routine queued for obj belongs to.
func filterOf(obj FltObject) *FLT_FILTER {
	switch o := obj.(type) {
	case *FLT_FILTER:
		return o
	case *FLT_INSTANCE:
		return o.filter
	}
	return nil
}
