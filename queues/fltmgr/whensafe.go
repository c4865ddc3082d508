package fltmgr

import (
	"fmt"

	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues"
)

// FltDoCompletionProcessingWhenSafe lets a post-op do work that needs
// IRQL < DISPATCH_LEVEL (REFERENCE §5.7). Below DISPATCH_LEVEL it calls
// safe(data, objs, ctx, flags) at once and stores its status in ret. At
// DISPATCH_LEVEL (a completion from a DPC, or the completion IRQL) it
// posts safe to a system worker thread, stores
// FLT_POSTOP_MORE_PROCESSING_REQUIRED in ret — which the post-op must
// return — and the filter manager resumes completion when safe returns
// FLT_POSTOP_FINISHED_PROCESSING (if safe returns MORE_PROCESSING_REQUIRED
// instead, the filter completes the operation itself with
// FltCompletePendedPostOperation). It returns false, doing nothing, for an
// operation that is not IRP-based; the post-op must then finish without
// the work. Calling it with FLTFL_POST_OPERATION_DRAINING is a Filter
// Verifier report. Caller: a post-operation callback, IRQL ≤
// DISPATCH_LEVEL.
func (fm *FilterManager) FltDoCompletionProcessingWhenSafe(data *FLT_CALLBACK_DATA, objs *FLT_RELATED_OBJECTS, ctx any,
	flags FLT_POST_OPERATION_FLAGS, safe PFLT_POST_OPERATION_CALLBACK, ret *FLT_POSTOP_CALLBACK_STATUS) bool {
	const api = "FltDoCompletionProcessingWhenSafe"
	fm.k.Layer().CheckIrqlAtMost(api, kernel.DISPATCH_LEVEL)
	op := data.op
	if flags&FLTFL_POST_OPERATION_DRAINING != 0 {
		fm.violation(api, objs.Filter, "a draining post-op must not call FltDoCompletionProcessingWhenSafe (§5.4)",
			"called for %s with FLTFL_POST_OPERATION_DRAINING", data.name)
	}
	if !FLT_IS_IRP_OPERATION(data) {
		return false
	}
	if name, ok := storageCompleted[data.Iopb.MajorFunction]; ok {
		if fm.sys != nil {
			fm.sys.ReportContract(api, fmt.Sprintf("called for %s, an %s", data.name, name),
				"FltDoCompletionProcessingWhenSafe cannot be called for operations a driver in the storage stack can complete directly (IRP_MJ_READ, IRP_MJ_WRITE, IRP_MJ_FLUSH_BUFFERS): posting them can deadlock (REFERENCE §5.7)",
				"DDI:FltDoCompletionProcessingWhenSafe")
		}
	}
	if fm.k.KeGetCurrentIrql() < kernel.DISPATCH_LEVEL {
		prev := fm.enter(objs.Filter)
		*ret = safe(data, objs, ctx, flags)
		fm.leave(prev)
		return true
	}
	i := op.frameIn(framePostOp)
	if i < 0 {
		fm.violation(api, objs.Filter, "call it from a post-operation callback (§5.7)", "%s has no post-op running", data.name)
		return false
	}
	f := &op.frames[i]
	f.state, f.whenSafe = framePostPended, true // before the worker can run
	fm.mark(MarkPostWhenSafe, data.name)
	item := &queues.WORK_QUEUE_ITEM{}
	queues.ExInitializeWorkItem(item, func(any) {
		fm.trace(KindFltWorkItem, WhatCompletionWhenSafe, data.name, 0, 0)
		prev := fm.enter(objs.Filter)
		st := safe(data, objs, ctx, flags)
		fm.leave(prev)
		if st == FLT_POSTOP_FINISHED_PROCESSING {
			fm.FltCompletePendedPostOperation(data)
		}
	}, nil)
	if fm.sys == nil {
		panic("fltmgr: " + api + " needs the executive worker queues: pass a *queues.System to fltmgr.New")
	}
	prev := fm.k.Layer().SwitchImage(nil) // the filter manager's item (§5.11)
	fm.sys.ExQueueWorkItem(item, queues.DelayedWorkQueue)
	fm.k.Layer().SwitchImage(prev)
	*ret = FLT_POSTOP_MORE_PROCESSING_REQUIRED
	return true
}

// storageCompleted are the operations Microsoft's page names as ones a
// storage driver can complete directly, for which
// FltDoCompletionProcessingWhenSafe must not be called.
var storageCompleted = map[UCHAR]string{
	IRP_MJ_READ: "IRP_MJ_READ", IRP_MJ_WRITE: "IRP_MJ_WRITE", IRP_MJ_FLUSH_BUFFERS: "IRP_MJ_FLUSH_BUFFERS",
}

// whenSafeFinishedAnyway reports a post-op that returned
// FLT_POSTOP_FINISHED_PROCESSING after FltDoCompletionProcessingWhenSafe
// had posted its work and stored FLT_POSTOP_MORE_PROCESSING_REQUIRED in
// RetPostOperationStatus (REFERENCE §5.10): completion goes on now, and the
// filter manager's worker completes the operation again once the safe
// callback returns — or, if it already has, the operation is being completed
// a second time right now. Either way it is the double completion 0x44,
// reported at the post-op's return, which is the filter's mistake, rather
// than inside the filter manager's worker, which the filter never called.
func (fm *FilterManager) whenSafeFinishedAnyway(f *frame) {
	op := f.op
	fm.k.Layer().BugCheckFrom("post-operation callback", kernel.MULTIPLE_IRP_COMPLETE_REQUESTS, uint64(op.data.irp.ID()), 0, 0, 0,
		fmt.Sprintf("%s is completed twice: %s's post-op returned FLT_POSTOP_FINISHED_PROCESSING although FltDoCompletionProcessingWhenSafe "+
			"had posted its safe callback to a worker and stored FLT_POSTOP_MORE_PROCESSING_REQUIRED in RetPostOperationStatus; "+
			"completion continues now and the filter manager completes the operation again when the safe callback returns "+
			"(a post-op returns the status FltDoCompletionProcessingWhenSafe stored, §5.10)", op.data.name, f.inst.name))
}
