package fltmgr

import (
	"fmt"

	"github.com/wqsim/wqsim/kernel"
)

// IoRequest describes an operation a simulated thread issues to a volume,
// playing the I/O manager (and the application above it).
type IoRequest struct {
	MajorFunction UCHAR
	MinorFunction UCHAR
	// IrpFlags go to Iopb.IrpFlags and the IRP: kernel.IRP_PAGING_IO,
	// kernel.IRP_SYNCHRONOUS_PAGING_IO, IRP_NOCACHE.
	IrpFlags uint32
	// FastIo issues the operation as fast I/O first (only for operations
	// that can be fast I/O, §5.1); a filter that returns
	// FLT_PREOP_DISALLOW_FASTIO makes the issuer reissue it as an IRP.
	FastIo bool
	// TopLevel sets the issuing thread's TopLevelIrp (non-NULL: the thread
	// holds file-system resources, e.g. a recursive or cache-manager call)
	// while the operation is being issued (§5.2).
	TopLevel bool
	// VolumeOpen marks I/O to the volume itself (DASD); other I/O is
	// skipped by filters registered with SKIP_NON_DASD_IO.
	VolumeOpen bool
	Length     uint32
	ByteOffset int64
	FileObject any
	// SystemBuffer sets FLTFL_CALLBACK_DATA_SYSTEM_BUFFER.
	SystemBuffer bool
	// Tag names the IRP in traces ("read").
	Tag string
	// Issued, if set, is called in the issuing thread with the operation's
	// handle as soon as its callback data (and IRP) exist, before any
	// pre-op runs; again for the IRP if fast I/O is reissued. It lets the
	// scenario hand the operation to another thread while Issue has not
	// returned yet — the way an application cancels a synchronous request
	// from another thread (CancelSynchronousIo, IoCancelIrp on its IRP)
	// while a filter that returned FLT_PREOP_SYNCHRONIZE holds the issuer
	// (REFERENCE §5.3). It must not block; no scheduling point.
	Issued func(*IoOp)
}

// IoOp is the issuer's handle on an operation: what IoCallDriver returned,
// the IRP to wait on or cancel, and the final status.
type IoOp struct {
	fm       *FilterManager
	cur      *operation
	returned kernel.NTSTATUS
	reissued bool
}

// Issue sends req to the volume from the calling thread, the way the I/O
// manager does: it builds the callback data (and an IRP unless the
// operation is fast I/O or an FsFilter callback) and calls the attached
// instances' pre-ops from the highest altitude down in this thread,
// acting on each return value (§5.3); if none pends, the file system
// runs and the post-ops follow (§5.4) before Issue returns. Fast I/O
// refused with FLT_PREOP_DISALLOW_FASTIO is reissued as an IRP. Issue
// returns as soon as the operation is pended (IoOp.Returned is then
// STATUS_PENDING): wait for it with IoOp.Wait or cancel it with
// IoOp.Cancel. A SYNCHRONIZE pre-op makes Issue wait for completion;
// IoRequest.Issued hands the operation to another thread before that.
// Caller IRQL ≤ APC_LEVEL (pre-ops run at PASSIVE or APC, §5.3).
func (v *FLT_VOLUME) Issue(req IoRequest) *IoOp {
	fm := v.fm
	fm.k.Layer().CheckIrqlAtMost("IoCallDriver", kernel.APC_LEVEL)
	if req.FastIo && !fastIoPossible(req.MajorFunction) {
		panic(fmt.Sprintf("fltmgr: Issue: major 0x%X cannot be fast I/O (§5.1); clear IoRequest.FastIo", req.MajorFunction))
	}
	io := fm.sp.issues.Take(fm.k.Layer().Sim())
	*io = IoOp{fm: fm}
	prevTop := fm.IoGetTopLevelIrp()
	if req.TopLevel {
		fm.IoSetTopLevelIrp("FSRTL_FSP_TOP_LEVEL_IRP")
	}
	fast := req.FastIo || fastIoOnlyMajor(req.MajorFunction)
	for {
		io.cur = fm.newOperation(v, req, fast, io.reissued)
		fm.trace(KindFltOp, WhatIssue, io.cur.data.name, int64(req.MajorFunction), int64(len(io.cur.frames)))
		if req.Issued != nil {
			req.Issued(io)
		}
		if fm.walkDown(io.cur, 0) != walkFastIoRefused || fastIoOnlyMajor(req.MajorFunction) {
			break
		}
		fast, io.reissued = false, true
		fm.mark(MarkFastIoReissued, io.cur.data.name)
	}
	fm.IoSetTopLevelIrp(prevTop)
	io.returned = kernel.STATUS_PENDING
	if io.cur.finished {
		io.returned = io.cur.data.IoStatus.Status
	}
	return io
}

// Send is Issue followed by Wait: a synchronous request.
func (v *FLT_VOLUME) Send(req IoRequest) kernel.IO_STATUS_BLOCK { return v.Issue(req).Wait() }

// newOperation builds the callback data, the IRP and one frame per
// instance that registered for the major function and does not skip this
// kind of I/O (§5.2), highest altitude first.
func (fm *FilterManager) newOperation(v *FLT_VOLUME, req IoRequest, fast, reissue bool) *operation {
	fm.lastOp++
	b := fm.sp.ops.Take(fm.k.Layer().Sim())
	old := *b // recycled: keep the frame buffer
	*b = opBlock{}
	op := &b.op
	*op = operation{fm: fm, vol: v, frames: old.op.frames[:0], num: fm.lastOp, fs: old.op.fs}
	d := &b.data
	*d = FLT_CALLBACK_DATA{op: op, Thread: fm.k.KeGetCurrentThread()}
	d.QueueLinks.Container = d
	d.Iopb = &b.iopb
	*d.Iopb = FLT_IO_PARAMETER_BLOCK{IrpFlags: req.IrpFlags, MajorFunction: req.MajorFunction, MinorFunction: req.MinorFunction,
		TargetFileObject: req.FileObject, Parameters: FLT_PARAMETERS{Length: req.Length, ByteOffset: req.ByteOffset}}
	switch {
	case isFsFilterMajor(req.MajorFunction):
		d.Flags = FLTFL_CALLBACK_DATA_FS_FILTER_OPERATION
	case fast:
		d.Flags = FLTFL_CALLBACK_DATA_FAST_IO_OPERATION
	default:
		d.Flags = FLTFL_CALLBACK_DATA_IRP_OPERATION
		d.irp = fm.k.Layer().AllocateIrp(req.Tag)
		d.irp.Flags, d.irp.TopLevel, d.irp.FileObject = req.IrpFlags, req.TopLevel, req.FileObject
		d.irp.DriverContext[2] = d // the filter manager's link from the IRP back to its data
	}
	if req.SystemBuffer {
		d.Flags |= FLTFL_CALLBACK_DATA_SYSTEM_BUFFER
	}
	if reissue {
		d.Flags |= FLTFL_CALLBACK_DATA_REISSUED_IO
	}
	irpName := ""
	if d.irp != nil {
		irpName = d.irp.Name()
	}
	d.name = fm.sp.dataName(fm.lastOp, irpName)
	op.data = d
	for _, inst := range v.instances {
		if r := inst.filter.opReg(req.MajorFunction); r != nil && (r.PreOperation != nil || r.PostOperation != nil) && !skips(r, d, req) {
			op.frames = append(op.frames, frame{op: op, inst: inst, reg: r})
		}
	}
	return op
}

// skips applies the FLTFL_OPERATION_REGISTRATION_SKIP_* flags (§5.2).
func skips(r *FLT_OPERATION_REGISTRATION, d *FLT_CALLBACK_DATA, req IoRequest) bool {
	switch {
	case r.Flags&FLTFL_OPERATION_REGISTRATION_SKIP_PAGING_IO != 0 && d.pagingIo():
		return true
	case r.Flags&FLTFL_OPERATION_REGISTRATION_SKIP_CACHED_IO != 0 && req.IrpFlags&IRP_NOCACHE == 0 &&
		(req.MajorFunction == IRP_MJ_READ || req.MajorFunction == IRP_MJ_WRITE):
		return true
	case r.Flags&FLTFL_OPERATION_REGISTRATION_SKIP_NON_DASD_IO != 0 && !req.VolumeOpen:
		return true
	}
	return false
}

// Data returns the callback data of the current attempt (after a fast I/O
// reissue, the IRP-based one).
func (o *IoOp) Data() *FLT_CALLBACK_DATA { return o.cur.data }

// Irp returns the IRP of the current attempt; nil for fast I/O and
// FsFilter operations.
func (o *IoOp) Irp() *kernel.IRP { return o.cur.data.irp }

// Returned is what the issuing call returned: STATUS_PENDING if the
// operation was pended, else its final status.
func (o *IoOp) Returned() kernel.NTSTATUS { return o.returned }

// Reissued reports that the operation was first issued as fast I/O and
// reissued as an IRP after a filter returned DISALLOW_FASTIO.
func (o *IoOp) Reissued() bool { return o.reissued }

// Completed reports whether the operation has completed. No scheduling
// point: for tests and invariants.
func (o *IoOp) Completed() bool { return o.cur.finished }

// IoStatus returns the final status block (meaningful once Completed).
func (o *IoOp) IoStatus() kernel.IO_STATUS_BLOCK {
	if o.cur.data.irp != nil {
		return o.cur.data.irp.IoStatus
	}
	return o.cur.data.IoStatus
}

// Wait blocks the calling thread until the operation completes and
// returns its status block. If nobody ever completes it, the thread waits
// forever and the kernel reports the hang at quiescence. Caller IRQL ≤
// APC_LEVEL.
func (o *IoOp) Wait() kernel.IO_STATUS_BLOCK {
	if irp := o.cur.data.irp; irp != nil && !o.cur.finished {
		o.fm.k.KeWaitForSingleObject(irp.Done(), kernel.Infinite)
	}
	return o.IoStatus()
}

// Cancel cancels the operation's IRP (IoCancelIrp, REFERENCE §2.3) from
// the calling thread and returns what IoCancelIrp returned: TRUE if a
// cancel routine was called (a cbdq's, or one set with
// FltSetCancelCompletion). Operations without an IRP cannot be cancelled
// (false). Caller IRQL ≤ DISPATCH_LEVEL.
func (o *IoOp) Cancel() bool {
	if o.cur.data.irp == nil {
		return false
	}
	return o.fm.k.IoCancelIrp(o.cur.data.irp)
}
