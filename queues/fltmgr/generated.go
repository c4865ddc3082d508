package fltmgr

import (
	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// Filter-initiated I/O (REFERENCE §5.9): a minifilter allocates callback
// data for an instance of its own, fills in the parameter block and sends
// it to the instances below that instance and the file system, with a
// routine the filter manager calls once the operation has completed.

// PFLT_COMPLETED_ASYNC_IO_CALLBACK is the routine FltPerformAsynchronousIo
// calls when the operation has completed: in an arbitrary thread context
// at IRQL ≤ DISPATCH_LEVEL (in the file system's DPC, in a worker, or in
// the thread whose cancel completed it). From its call on the callback
// data belongs to the filter again, which may free or reuse it there.
type PFLT_COMPLETED_ASYNC_IO_CALLBACK func(data *FLT_CALLBACK_DATA, ctx any)

// callbackDataTag is the pool tag of callback data the model allocates for
// FltAllocateCallbackData (the model's own tag; Windows' is not documented).
const callbackDataTag = "FMcd"

// callbackDataSize is the size of that pool block (about an
// FLT_CALLBACK_DATA with its parameter block on x64).
const callbackDataSize = 0x140

// generated is what the filter manager keeps for callback data a filter
// allocated: the pool block the data lives in and the state of the
// operation it was last sent on.
type generated struct {
	initiator *FLT_INSTANCE
	block     *kernel.PoolBlock
	callback  PFLT_COMPLETED_ASYNC_IO_CALLBACK
	ctx       any
	inFlight  bool // sent, its callback not yet called
	completed bool // its callback was called
}

// FltAllocateCallbackData allocates callback data with which inst's filter
// can initiate an IRP-based operation on inst's volume (fileObject may be
// nil) and stores it in *ret: STATUS_SUCCESS, or
// STATUS_INSUFFICIENT_RESOURCES when the pool allocation fails (with
// kernel.Config.InjectAllocFailures, a decision). The data lives in a
// nonpaged pool block, so touching it after FltFreeCallbackData is a use
// after free (0xD5) and never freeing it is a leak at the end of the run.
// The caller sets Iopb.MajorFunction and Iopb.Parameters, then calls
// FltPerformAsynchronousIo or FltPerformSynchronousIo. Caller IRQL ≤
// APC_LEVEL. DDI:FltAllocateCallbackData; REFERENCE §5.9.
func (fm *FilterManager) FltAllocateCallbackData(inst *FLT_INSTANCE, fileObject any, ret **FLT_CALLBACK_DATA) kernel.NTSTATUS {
	const api = "FltAllocateCallbackData"
	fm.k.Layer().CheckIrqlAtMost(api, kernel.APC_LEVEL)
	if inst == nil || ret == nil {
		return kernel.STATUS_INVALID_PARAMETER
	}
	block := fm.k.ExAllocatePoolWithTag(kernel.NonPagedPool, callbackDataSize, callbackDataTag)
	if block == nil {
		*ret = nil
		return kernel.STATUS_INSUFFICIENT_RESOURCES
	}
	fm.lastOp++
	b := fm.sp.ops.Take(fm.k.Layer().Sim())
	old := *b // recycled: keep the frame buffer
	*b = opBlock{}
	op := &b.op
	*op = operation{fm: fm, vol: inst.volume, frames: old.op.frames[:0], num: fm.lastOp, fs: old.op.fs,
		gen: &generated{initiator: inst, block: block}}
	d := &b.data
	*d = FLT_CALLBACK_DATA{op: op, Thread: fm.k.KeGetCurrentThread(),
		Flags: FLTFL_CALLBACK_DATA_IRP_OPERATION | FLTFL_CALLBACK_DATA_GENERATED_IO}
	d.QueueLinks.Container = d
	d.Iopb = &b.iopb
	*d.Iopb = FLT_IO_PARAMETER_BLOCK{TargetInstance: inst, TargetFileObject: fileObject}
	d.name = fm.sp.dataName(op.num, "")
	op.data = d
	block.Owner = d.name
	block.Use = kernel.BlockUse{Kind: "FLT_CALLBACK_DATA", Alloc: api, Free: "FltFreeCallbackData", For: inst.objName}
	fm.trace(KindFltOp, api, d.name, 0, 0)
	*ret = d
	return kernel.STATUS_SUCCESS
}

// FltPerformAsynchronousIo sends data (from FltAllocateCallbackData) to the
// instances attached below the initiating instance and to the file system,
// in the calling thread until something pends, and has callback(data, ctx)
// called once it has completed — after the post-ops of those instances,
// wherever the completion happens (the file system's completion decision
// of §5.7: inline, its DPC at DISPATCH_LEVEL, or a worker; or the thread
// whose FltCancelIo completed it). Returns STATUS_SUCCESS when the file
// system completed it before returning (the callback has then run),
// STATUS_FLT_IO_COMPLETE when a lower filter's pre-op completed it,
// STATUS_PENDING when the callback is still to come. IRP_MJ_CREATE cannot
// be asynchronous: STATUS_FLT_INVALID_ASYNCHRONOUS_REQUEST, and the
// callback is called all the same, before the return.
//
// The data stays the filter manager's until the callback is called: it
// must not be freed, reused or sent again before (a second send while the
// first is in flight is a Filter Verifier report; a free is a use after
// free when the completion touches it). Data not from
// FltAllocateCallbackData is a Filter Verifier report. Caller IRQL
// PASSIVE_LEVEL, ≤ APC_LEVEL for paging I/O (IRQL_NOT_LESS_OR_EQUAL
// otherwise). DDI:FltPerformAsynchronousIo,
// DDI:PFLT_COMPLETED_ASYNC_IO_CALLBACK; REFERENCE §5.9.
func (fm *FilterManager) FltPerformAsynchronousIo(data *FLT_CALLBACK_DATA, callback PFLT_COMPLETED_ASYNC_IO_CALLBACK, ctx any) kernel.NTSTATUS {
	const api = "FltPerformAsynchronousIo"
	fm.checkPerformIrql(api, data)
	if callback == nil {
		return kernel.STATUS_INVALID_PARAMETER
	}
	return fm.perform(api, data, callback, ctx, true)
}

// FltPerformSynchronousIo sends data like FltPerformAsynchronousIo and
// waits until it has completed; the result is in data.IoStatus. Caller
// IRQL ≤ APC_LEVEL (PASSIVE_LEVEL unless paging I/O, as for the
// asynchronous form). DDI:FltPerformSynchronousIo; REFERENCE §5.9.
func (fm *FilterManager) FltPerformSynchronousIo(data *FLT_CALLBACK_DATA) {
	const api = "FltPerformSynchronousIo"
	fm.checkPerformIrql(api, data)
	done := fm.k.KeInitializeEvent(data.name+" synchronous io", kernel.NotificationEvent, false)
	signal := func(*FLT_CALLBACK_DATA, any) { fm.k.KeSetEvent(done, kernel.IO_NO_INCREMENT, false) }
	if fm.perform(api, data, signal, nil, false) == kernel.STATUS_PENDING {
		fm.k.KeWaitForSingleObject(done, kernel.Infinite)
	}
}

func (fm *FilterManager) checkPerformIrql(api string, data *FLT_CALLBACK_DATA) {
	limit := kernel.PASSIVE_LEVEL
	if data != nil && data.Iopb != nil && data.Iopb.IrpFlags&kernel.IRP_PAGING_IO != 0 {
		limit = kernel.APC_LEVEL
	}
	fm.k.Layer().CheckIrqlAtMost(api, limit)
}

// perform starts one filter-initiated operation (both Perform routines).
func (fm *FilterManager) perform(api string, data *FLT_CALLBACK_DATA, cb PFLT_COMPLETED_ASYNC_IO_CALLBACK, ctx any, async bool) kernel.NTSTATUS {
	g := fm.ownGenerated(api, data)
	if g == nil {
		return kernel.STATUS_INVALID_PARAMETER
	}
	fm.touchData(data.op, api+" reading the callback data")
	if g.inFlight {
		fm.violation(api, g.initiator.filter, "callback data must not be sent again before its callback ran (DDI:FltPerformAsynchronousIo, §5.9)",
			"%s is still in flight", data.name)
		return kernel.STATUS_INVALID_PARAMETER
	}
	op := data.op
	g.callback, g.ctx, g.inFlight, g.completed = cb, ctx, true, false
	if async && data.Iopb.MajorFunction == IRP_MJ_CREATE {
		data.IoStatus = kernel.IO_STATUS_BLOCK{Status: kernel.STATUS_FLT_INVALID_ASYNCHRONOUS_REQUEST}
		fm.callCompletion(op)
		return kernel.STATUS_FLT_INVALID_ASYNCHRONOUS_REQUEST
	}
	fm.prepareGenerated(op)
	fm.trace(KindFltOp, des.What(api), data.name, int64(data.Iopb.MajorFunction), int64(len(op.frames)))
	fm.walkDown(op, 0)
	switch {
	case !op.finished:
		return kernel.STATUS_PENDING
	case op.preCompleted:
		return kernel.STATUS_FLT_IO_COMPLETE
	}
	return kernel.STATUS_SUCCESS
}

// ownGenerated returns data's filter-initiated state, or reports data that
// did not come from FltAllocateCallbackData.
func (fm *FilterManager) ownGenerated(api string, data *FLT_CALLBACK_DATA) *generated {
	if data != nil && data.op != nil && data.op.gen != nil {
		return data.op.gen
	}
	var filter *FLT_FILTER
	if data != nil && data.op != nil {
		filter = data.op.filterAt(framePreOp, framePostOp, framePended, framePostPended)
	}
	fm.violation(api, filter, "only callback data from FltAllocateCallbackData (DDI:"+api+", §5.9)",
		"the callback data was not allocated by FltAllocateCallbackData")
	return nil
}

// prepareGenerated resets op for a new send: a fresh IRP, and one frame per
// instance below the initiator that registered for the major function.
func (fm *FilterManager) prepareGenerated(op *operation) {
	d, g := op.data, op.gen
	op.frames, op.early, op.markedPending, op.finished, op.preCompleted = op.frames[:0], earlyCompletion{}, false, false, false
	d.IoStatus = kernel.IO_STATUS_BLOCK{}
	d.Flags &^= FLTFL_CALLBACK_DATA_POST_OPERATION
	d.irp = fm.k.Layer().AllocateIrp("flt io")
	d.irp.Flags, d.irp.FileObject = d.Iopb.IrpFlags, d.Iopb.TargetFileObject
	d.irp.DriverContext[2] = d
	d.name = fm.sp.dataName(op.num, d.irp.Name())
	req := IoRequest{MajorFunction: d.Iopb.MajorFunction, IrpFlags: d.Iopb.IrpFlags}
	below := false
	for _, inst := range op.vol.instances {
		if inst == g.initiator {
			below = true
			continue
		}
		if r := inst.filter.opReg(req.MajorFunction); below && r != nil && (r.PreOperation != nil || r.PostOperation != nil) && !skips(r, d, req) {
			op.frames = append(op.frames, frame{op: op, inst: inst, reg: r})
		}
	}
}

// finishGenerated completes a filter-initiated operation: its IRP, then
// the filter's completion callback in the completing context (§5.9).
func (fm *FilterManager) finishGenerated(op *operation) walk {
	fm.touchData(op, "filter manager completing the callback data")
	op.finished = true
	fm.trace(KindFltOp, WhatComplete, op.data.name, int64(op.data.IoStatus.Status), int64(op.data.IoStatus.Information))
	op.data.irp.IoStatus = op.data.IoStatus
	fm.k.IoCompleteRequest(op.data.irp, kernel.IO_NO_INCREMENT)
	fm.callCompletion(op)
	return walkDone
}

// callCompletion calls the filter's completion callback. From the call on
// the data is the filter's; nothing here touches it afterwards.
func (fm *FilterManager) callCompletion(op *operation) {
	g := op.gen
	g.inFlight, g.completed = false, true
	if fm.k.KeIsExecutingDpc() {
		fm.mark(MarkAsyncCallbackInDpc, op.data.name)
	}
	fm.trace(KindFltOp, WhatAsyncCallback, op.data.name, int64(op.data.IoStatus.Status), 0)
	prev := fm.enter(g.initiator.filter)
	g.callback(op.data, g.ctx)
	fm.leave(prev)
}

// touchData is the filter manager reading or writing filter-allocated
// callback data: after FltFreeCallbackData, a use after free (0xD5).
func (fm *FilterManager) touchData(op *operation, what string) {
	if op.gen != nil {
		fm.k.AccessPool(op.gen.block, what)
	}
}

// FltFreeCallbackData frees callback data from FltAllocateCallbackData. It
// is legal from the completion callback on (also inside it); freeing it
// while its operation is in flight leaves the filter manager a freed block
// to complete — 0xD5 when the completion touches it (the model lets the
// free happen and marks it, MarkFreedInFlight). A second free is 0xC2
// P1=0x7; data the filter did not allocate is a Filter Verifier report.
// Caller IRQL ≤ DISPATCH_LEVEL. DDI:FltFreeCallbackData; REFERENCE §5.9.
func (fm *FilterManager) FltFreeCallbackData(data *FLT_CALLBACK_DATA) {
	const api = "FltFreeCallbackData"
	if data == nil {
		fm.k.Layer().NullDereference(api, "CallbackData", true)
	}
	fm.k.Layer().CheckIrqlAtMost(api, kernel.DISPATCH_LEVEL)
	g := fm.ownGenerated(api, data)
	if g == nil {
		return
	}
	if g.inFlight && !g.block.Freed() {
		fm.mark(MarkFreedInFlight, data.name)
	}
	fm.k.ExFreePoolWithTag(g.block, callbackDataTag)
}

// FltCancelIo asks for the cancellation of an IRP-based operation the
// caller initiated (FltPerformAsynchronousIo) or pended: it sets the IRP's
// Cancel flag and calls its cancel routine if one is set — the file
// system's for a request it pended cancellably
// (FLT_VOLUME.CancelPendedIo), the filter's from FltSetCancelCompletion —
// and returns TRUE; FALSE if no routine was set (the completion still comes
// later) or the operation is not IRP-based. A cancel is a request: the
// operation completes, with STATUS_CANCELLED or otherwise, through the
// ordinary completion path — for filter-initiated I/O, the completion
// callback, possibly inside this call. After the operation has completed
// it returns FALSE while the callback data is still allocated (the filter
// manager sees the operation is over; inferred, the page only forbids it)
// and is a use after free (0xD5) once the data has been freed: the
// classic cancel-after-completion race. Caller IRQL ≤ DISPATCH_LEVEL.
// DDI:FltCancelIo; REFERENCE §5.9.
func (fm *FilterManager) FltCancelIo(data *FLT_CALLBACK_DATA) bool {
	const api = "FltCancelIo"
	if data == nil {
		fm.k.Layer().NullDereference(api, "CallbackData", false)
	}
	fm.k.Layer().CheckIrqlAtMost(api, kernel.DISPATCH_LEVEL)
	op := data.op
	fm.touchData(op, api+" reading the callback data")
	if g := op.gen; g != nil && !g.inFlight && !g.completed {
		return false // not sent yet: there is nothing to cancel
	}
	if op.finished || (op.gen != nil && !op.gen.inFlight) {
		fm.mark(MarkCancelAfterCompletion, data.name)
		return false
	}
	if data.irp == nil {
		return false
	}
	fm.trace(KindFltOp, api, data.name, 0, 0)
	return fm.k.IoCancelIrp(data.irp)
}
