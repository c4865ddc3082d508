package fltmgr

import (
	"fmt"

	"github.com/wqsim/wqsim/kernel"
)

// FltCompletePendedPreOperation resumes an operation whose pre-op returned
// FLT_PREOP_PENDING (REFERENCE §1.4), in the calling thread: with
// FLT_PREOP_SUCCESS_WITH_CALLBACK (context goes to the post-op) or
// FLT_PREOP_SUCCESS_NO_CALLBACK the operation continues down to the lower
// filters and the file system; with FLT_PREOP_COMPLETE it completes with
// data.IoStatus and only the post-ops of filters above run.
//
// Caller IRQL ≤ DISPATCH_LEVEL with FLT_PREOP_COMPLETE, else ≤ APC_LEVEL
// (IRQL_NOT_LESS_OR_EQUAL otherwise). Calling it before the pre-op has
// returned PENDING is legal: the completion is applied when the pre-op
// returns (§1.4, MarkCompletedBeforePending). Any other status, or a
// context with a status other than SUCCESS_WITH_CALLBACK, is a Filter
// Verifier report. Completing an operation twice is the kernel's 0x44
// MULTIPLE_IRP_COMPLETE_REQUESTS (§6.4).
func (fm *FilterManager) FltCompletePendedPreOperation(data *FLT_CALLBACK_DATA, status FLT_PREOP_CALLBACK_STATUS, ctx any) {
	const api = "FltCompletePendedPreOperation"
	if data == nil {
		fm.k.Layer().NullDereference(api, "CallbackData", true)
	}
	limit := kernel.APC_LEVEL
	if status == FLT_PREOP_COMPLETE {
		limit = kernel.DISPATCH_LEVEL
	}
	fm.k.Layer().CheckIrqlAtMost(api, limit)
	op := data.op
	filter := op.filterAt(framePended, framePreOp)
	switch {
	case status != FLT_PREOP_COMPLETE && status != FLT_PREOP_SUCCESS_NO_CALLBACK && status != FLT_PREOP_SUCCESS_WITH_CALLBACK:
		fm.violation(api, filter, "CallbackStatus is COMPLETE, SUCCESS_NO_CALLBACK or SUCCESS_WITH_CALLBACK (§1.4)",
			"unknown pre-operation callback status %v for %s", status, data.name)
	case ctx != nil && status != FLT_PREOP_SUCCESS_WITH_CALLBACK:
		fm.violation(api, filter, "Context must be NULL unless the status is SUCCESS_WITH_CALLBACK (§1.4)",
			"context given with %v for %s", status, data.name)
	}
	if !op.isIrp() {
		fm.violation(api, filter, "only IRP-based operations can be pended (§5.1)", "%s is not IRP-based", data.name)
	}
	fm.k.Layer().Yield()
	i := op.frameIn(framePended)
	if i < 0 {
		if p := op.frameIn(framePreOp); p >= 0 && !op.early.set {
			if op.staleUpperCompletion(p) {
				fm.k.Layer().BugCheckFrom(api, kernel.MULTIPLE_IRP_COMPLETE_REQUESTS, uint64(data.irp.ID()), 0, 0, 0,
					fmt.Sprintf("%s completed a second time: an upper filter's pend was already completed and the operation is in %s's pre-op, which handed it to no routine that could complete it (§1.4)",
						data.name, op.frames[p].inst.name))
			}
			op.early = earlyCompletion{set: true, status: status, ctx: ctx}
			fm.mark(MarkCompletedBeforePending, data.name)
			return
		}
		fm.notPended(op, api)
		return
	}
	op.frames[i].resumed = true
	fm.trace(KindFltOp, api, data.name, int64(status), 0)
	if _, cont := fm.resume(op, i, status, ctx); cont {
		fm.walkDown(op, i+1)
	}
}

// FltCompletePendedPostOperation resumes completion of an operation whose
// post-op returned FLT_POSTOP_MORE_PROCESSING_REQUIRED: the post-ops of
// the filters above run and the IRP is completed, in the calling thread
// (REFERENCE §1.4). Until it is called the filter manager does nothing
// more for the operation. Caller IRQL ≤ DISPATCH_LEVEL. Calling it while
// the post-op that posted the work is still running (the work item ran on
// another processor before the post-op returned MORE_PROCESSING_REQUIRED)
// is legal: the completion resumes when the post-op returns (§5.4,
// MarkPostCompletedBeforePended). Calling it for an operation that is
// already complete, or whose post-op then returns FINISHED_PROCESSING, is
// the kernel's 0x44.
func (fm *FilterManager) FltCompletePendedPostOperation(data *FLT_CALLBACK_DATA) {
	const api = "FltCompletePendedPostOperation"
	if data == nil {
		fm.k.Layer().NullDereference(api, "CallbackData", true)
	}
	fm.k.Layer().CheckIrqlAtMost(api, kernel.DISPATCH_LEVEL)
	op := data.op
	fm.k.Layer().Yield()
	j := op.frameIn(framePostPended)
	if j < 0 {
		if p := op.frameIn(framePostOp); p >= 0 && op.isIrp() && !op.frames[p].earlyPost && !op.frames[p].whenSafe {
			op.frames[p].earlyPost = true
			fm.mark(MarkPostCompletedBeforePended, data.name)
			return
		}
		fm.notPended(op, api)
		return
	}
	fm.trace(KindFltOp, api, data.name, 0, 0)
	fm.frameDone(&op.frames[j])
	fm.completeUp(op, j-1)
}

// filterAt returns the filter of the first frame in one of the states, for
// reports.
func (op *operation) filterAt(states ...frameState) *FLT_FILTER {
	for i := range op.frames {
		for _, s := range states {
			if op.frames[i].state == s {
				return op.frames[i].inst.filter
			}
		}
	}
	if len(op.frames) > 0 {
		return op.frames[0].inst.filter
	}
	return nil
}

// notPended handles a completion call for an operation not waiting for
// one: a second completion of an IRP-based operation is the kernel's 0x44
// (through IoCompleteRequest once the IRP is complete, directly while the
// first completion is still being processed); anything else is a Filter
// Verifier report.
func (fm *FilterManager) notPended(op *operation, api string) {
	switch {
	case op.data.irp != nil && op.finished:
		// The kernel's 0x44, raised here so that the report names the
		// routine the filter called, not the IoCompleteRequest inside it.
		irp := op.data.irp
		fm.k.Layer().BugCheckFrom(api, kernel.MULTIPLE_IRP_COMPLETE_REQUESTS, uint64(irp.ID()), 0, 0, 0,
			fmt.Sprintf("%s completed a second time: it was already completed, first by %s", op.data.name, irp.CompletedBy()))
	case op.data.irp != nil && op.frameIn(framePostPended) < 0 && op.frameIn(framePended) < 0:
		fm.k.Layer().BugCheckFrom(api, kernel.MULTIPLE_IRP_COMPLETE_REQUESTS, uint64(op.data.irp.ID()), 0, 0, 0,
			op.data.name+" completed twice (a second completion arrived while the first was still being processed), or completed although it was never pended")
	default:
		fm.violation(api, op.filterAt(framePostPended, framePended), "complete only an operation you pended, once (§1.4)",
			"%s is not pended the way %s expects", op.data.name, api)
	}
}

// FltSetCancelCompletion sets callback as the cancel routine of a pended
// IRP-based operation that is about to be posted (never for one in a
// cbdq): on cancel it is called without the cancel spin lock (REFERENCE
// §1.7). It does not look at the Cancel flag — the NameChanger sample
// takes the cancel spin lock around "FltIsIoCanceled, then
// FltSetCancelCompletion" for that (§2.6, §7.3). Returns STATUS_SUCCESS,
// or STATUS_INVALID_PARAMETER for a non-IRP operation. Caller IRQL ≤
// DISPATCH_LEVEL.
func (fm *FilterManager) FltSetCancelCompletion(data *FLT_CALLBACK_DATA, callback func(data *FLT_CALLBACK_DATA)) kernel.NTSTATUS {
	fm.k.Layer().CheckIrqlAtMost("FltSetCancelCompletion", kernel.DISPATCH_LEVEL)
	if data.irp == nil || callback == nil {
		return kernel.STATUS_INVALID_PARAMETER
	}
	data.op.exposeData()
	owner := data.Iopb.TargetInstance // the filter whose code the callback is
	fm.k.IoSetCancelRoutine(data.irp, func(irp *kernel.IRP) {
		fm.k.IoReleaseCancelSpinLock(irp.CancelIrql)
		var prev *kernel.Image
		if owner != nil {
			prev = fm.enter(owner.filter)
		} else {
			prev = fm.enter(nil)
		}
		callback(data)
		fm.leave(prev)
	})
	return kernel.STATUS_SUCCESS
}

// FltClearCancelCompletion clears the cancel routine set by
// FltSetCancelCompletion: STATUS_SUCCESS means the caller now owns the
// operation; STATUS_CANCELLED means no routine was set or cancellation is
// already in progress and the callback owns it (the §2.1 swap). Any IRQL.
func (fm *FilterManager) FltClearCancelCompletion(data *FLT_CALLBACK_DATA) kernel.NTSTATUS {
	if data.irp == nil {
		return kernel.STATUS_INVALID_PARAMETER
	}
	if fm.k.IoSetCancelRoutine(data.irp, nil) == nil {
		return kernel.STATUS_CANCELLED
	}
	return kernel.STATUS_SUCCESS
}

// FltIsIoCanceled reports the IRP's Cancel flag (false for non-IRP
// operations). Any IRQL; a scheduling point. REFERENCE §1.7.
func (fm *FilterManager) FltIsIoCanceled(data *FLT_CALLBACK_DATA) bool {
	if data.irp == nil {
		return false
	}
	return fm.k.IoIsCancelled(data.irp)
}

// FltLockUserBuffer locks the operation's buffer so that another thread
// (a worker in the System process) can use it, setting
// Iopb.Parameters.MdlAddress; STATUS_SUCCESS. Caller IRQL ≤ APC_LEVEL.
// The model has no address spaces, so it cannot fail. REFERENCE §7.1
// step 4c.
func (fm *FilterManager) FltLockUserBuffer(data *FLT_CALLBACK_DATA) kernel.NTSTATUS {
	fm.k.Layer().CheckIrqlAtMost("FltLockUserBuffer", kernel.APC_LEVEL)
	fm.k.Layer().Yield()
	if data.Iopb.Parameters.MdlAddress == nil {
		data.Iopb.Parameters.MdlAddress = "mdl " + data.name
	}
	return kernel.STATUS_SUCCESS
}
