package fltmgr

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues"
)

// frameState is where an operation is with respect to one instance.
type frameState uint8

const (
	frameIdle       frameState = iota // not reached yet
	frameSkipped                      // instance not called (tearing down when reached)
	framePreOp                        // pre-op running
	framePended                       // pre-op returned PENDING; waits for FltCompletePendedPreOperation
	frameBelow                        // waits for its post-op while lower layers work
	framePostOp                       // post-op running
	framePostPended                   // post-op returned MORE_PROCESSING_REQUIRED
	frameDrained                      // post-op called with DRAINING; the real completion skips it
	frameDone                         // finished with this instance
)

// frame is one instance's part of an operation.
type frame struct {
	op     *operation
	inst   *FLT_INSTANCE
	reg    *FLT_OPERATION_REGISTRATION
	state  frameState
	ctx    any // completion context from the pre-op
	preCtx any // where the pre-op writes it (its own, so the call allocates nothing)

	whenSafe bool // FltDoCompletionProcessingWhenSafe posted this post-op's work (§5.7)
	// earlyPost: FltCompletePendedPostOperation came while this post-op
	// was still running; it applies when the post-op returns (§5.4).
	earlyPost bool
	resumed   bool // was pended and resumed by FltCompletePendedPreOperation (§1.4)
	exposed   bool // its pre-op handed the data to a routine that can complete it (§1.4)

	// SYNCHRONIZE (§5.3): the post-op runs in the pre-op's thread, which
	// waits for the lower layers to complete.
	sync        bool
	syncReached bool // completion arrived at this frame
	syncWaiting bool // the owner thread is blocked on syncEvent
	syncEvent   *kernel.KEVENT
}

// earlyCompletion is a FltCompletePendedPreOperation that arrived while
// the pre-op was still running (legal, §1.4).
// Held in the operation (set says whether one arrived), not allocated.
type earlyCompletion struct {
	set    bool
	status FLT_PREOP_CALLBACK_STATUS
	ctx    any
}

// operation is one attempt at an I/O operation: its callback data (and
// through it the IRP behind an IRP-based one), and one frame per instance
// it passes.
type operation struct {
	fm            *FilterManager
	vol           *FLT_VOLUME
	data          *FLT_CALLBACK_DATA
	frames        []frame
	early         earlyCompletion
	fs            fsPending // kept when the operation is recycled
	markedPending bool
	finished      bool
	preCompleted  bool       // a pre-op completed it (FLT_PREOP_COMPLETE)
	num           int        // its callback data's number
	gen           *generated // filter-initiated I/O (§5.9), else nil
}

func (op *operation) isIrp() bool { return op.data.irp != nil }

// frameIn returns the index of the frame in state s, or -1.
func (op *operation) frameIn(s frameState) int {
	for i := range op.frames {
		if op.frames[i].state == s {
			return i
		}
	}
	return -1
}

// walk is how far a pass over an operation got.
type walk uint8

const (
	walkDone          walk = iota // the operation completed
	walkPending                   // it waits for a FltCompletePended*Operation or a SYNCHRONIZE owner
	walkFastIoRefused             // fast I/O refused by DISALLOW_FASTIO: reissue as an IRP
	walkHandedOff                 // completion reached a SYNCHRONIZE frame; its owner continues
)

// walkDown calls the pre-ops from frame i down, then the file system and
// the post-ops back up, until the operation completes or waits.
func (fm *FilterManager) walkDown(op *operation, i int) walk {
	for ; i < len(op.frames); i++ {
		f := &op.frames[i]
		if f.inst.TearingDown() {
			f.state = frameSkipped // new operations no longer reach it (§5.5 item 2)
			continue
		}
		status, ctx := fm.callPre(f)
		if status == FLT_PREOP_PENDING {
			var pend bool
			if status, ctx, pend = fm.pend(f, ctx); pend {
				return walkPending
			}
		} else if op.early.set {
			fm.completedTwice(f, status)
		}
		if w, cont := fm.resume(op, i, status, ctx); !cont {
			return w
		}
	}
	return fm.bottom(op)
}

// callPre runs frame f's pre-op in the calling thread.
func (fm *FilterManager) callPre(f *frame) (FLT_PREOP_CALLBACK_STATUS, any) {
	op := f.op
	f.state = framePreOp
	f.inst.track(f)
	op.data.Iopb.TargetInstance = f.inst
	fm.trace(KindFltCallback, WhatPreOp, f.inst.name, 0, int64(op.data.Iopb.MajorFunction))
	f.preCtx = nil
	status := FLT_PREOP_SUCCESS_WITH_CALLBACK // a post-op without a pre-op is always called
	if f.reg.PreOperation != nil {
		prev := fm.enter(f.inst.filter)
		status = f.reg.PreOperation(op.data, f.inst.objects(), &f.preCtx)
		fm.leave(prev)
	}
	fm.trace(KindFltCallback, des.What(status.String()), op.data.name, 0, int64(status))
	return status, f.preCtx
}

// pend handles FLT_PREOP_PENDING from frame f (§5.3): legal only for
// IRP-based operations and with a NULL completion context. If the filter
// already called FltCompletePendedPreOperation while the pre-op ran
// (§1.4), that completion is applied now and pend reports false.
func (fm *FilterManager) pend(f *frame, ctx any) (FLT_PREOP_CALLBACK_STATUS, any, bool) {
	op := f.op
	switch {
	case !op.isIrp():
		fm.violation("pre-operation callback", f.inst.filter, "only IRP-based operations can be pended (§5.1, §5.3)",
			"%s returned FLT_PREOP_PENDING for %s, which is not IRP-based", f.inst.name, op.data.name)
	case ctx != nil:
		fm.violation("pre-operation callback", f.inst.filter, "with FLT_PREOP_PENDING the completion context must be NULL (§5.3)",
			"%s set a completion context and returned FLT_PREOP_PENDING", f.inst.name)
	}
	if e := op.early; e.set {
		op.early = earlyCompletion{}
		fm.trace(KindFltOp, WhatResumeCompletedEarly, op.data.name, int64(e.status), 0)
		return e.status, e.ctx, false
	}
	f.state = framePended
	if !op.markedPending {
		op.markedPending = true
		fm.k.IoMarkIrpPending(op.data.irp)
	}
	fm.mark(MarkPended, op.data.name)
	return 0, nil, true
}

// resume applies a non-PENDING pre-op status of frame i (§5.3, and the
// statuses FltCompletePendedPreOperation may pass, §1.4). cont reports
// that the operation goes on to frame i+1; otherwise w says where it
// stopped.
func (fm *FilterManager) resume(op *operation, i int, status FLT_PREOP_CALLBACK_STATUS, ctx any) (w walk, cont bool) {
	f := &op.frames[i]
	switch status {
	case FLT_PREOP_SUCCESS_WITH_CALLBACK:
		fm.needPost(f, status)
		f.state, f.ctx = frameBelow, ctx
		return 0, true
	case FLT_PREOP_SUCCESS_NO_CALLBACK:
		fm.frameDone(f)
		return 0, true
	case FLT_PREOP_SYNCHRONIZE:
		fm.needPost(f, status)
		if !op.isIrp() { // non-IRP operations treat it as SUCCESS_WITH_CALLBACK (§5.3)
			f.state, f.ctx = frameBelow, ctx
			return 0, true
		}
		return fm.synchronize(op, i, ctx), false
	case FLT_PREOP_COMPLETE:
		if op.data.IoStatus.Status == kernel.STATUS_PENDING {
			fm.violation("pre-operation callback", f.inst.filter, "with FLT_PREOP_COMPLETE, IoStatus.Status must be final, not STATUS_PENDING (§5.3)",
				"%s completed %s with STATUS_PENDING", f.inst.name, op.data.name)
		}
		op.preCompleted = true
		fm.frameDone(f)
		return fm.completeUp(op, i-1), false
	case FLT_PREOP_DISALLOW_FASTIO:
		if !FLT_IS_FASTIO_OPERATION(op.data) {
			fm.badPreStatus(f, status, "FLT_PREOP_DISALLOW_FASTIO is for fast I/O only (§5.3)")
		}
		op.data.IoStatus = kernel.IO_STATUS_BLOCK{Status: kernel.STATUS_FLT_DISALLOW_FAST_IO}
		fm.frameDone(f)
		fm.completeUp(op, i-1) // only the filters above see post-ops (§5.3)
		return walkFastIoRefused, false
	}
	fm.badPreStatus(f, status, "a pre-op returns one of the FLT_PREOP_* values of §5.3")
	return walkPending, false
}

// completedTwice reports a pre-op that returned a status other than
// PENDING although FltCompletePendedPreOperation was already called for
// its operation (typically an insert-time cancel completed it inside
// FltCbdqInsertIo, §2.7H): the operation would be processed twice, the
// double IRP completion of §6.4.
func (fm *FilterManager) completedTwice(f *frame, status FLT_PREOP_CALLBACK_STATUS) {
	op := f.op
	fm.k.Layer().BugCheckFrom("pre-operation callback", kernel.MULTIPLE_IRP_COMPLETE_REQUESTS, uint64(op.data.irp.ID()), 0, 0, 0,
		fmt.Sprintf("%s returned %v for %s after FltCompletePendedPreOperation had completed it; after completing (or a successful FltCbdqInsertIo) a pre-op must return FLT_PREOP_PENDING (§1.4, §2.7H)",
			f.inst.name, status, op.data.name))
}

func (fm *FilterManager) badPreStatus(f *frame, status FLT_PREOP_CALLBACK_STATUS, rule string) {
	fm.violation("pre-operation callback", f.inst.filter, rule, "%s returned %v for %s", f.inst.name, status, f.op.data.name)
}

// needPost enforces that SUCCESS_WITH_CALLBACK and SYNCHRONIZE come with a
// registered post-op: FLTMGR_FILE_SYSTEM 0xF5 P1=0x66 otherwise (§1.8).
func (fm *FilterManager) needPost(f *frame, status FLT_PREOP_CALLBACK_STATUS) {
	if f.reg.PostOperation == nil {
		fm.k.Layer().BugCheckFrom("pre-operation callback", kernel.FLTMGR_FILE_SYSTEM, 0x66, 0, 0, 0,
			fmt.Sprintf("%s returned %v but registered no post-operation callback for major 0x%X", f.inst.name, status, f.op.data.Iopb.MajorFunction))
	}
}

// synchronize runs FLT_PREOP_SYNCHRONIZE for frame i: the lower layers run
// (from this thread, until something pends), this thread waits until the
// completion comes back up to frame i, then runs the post-op itself at its
// own IRQL and carries the completion on up (§5.3).
func (fm *FilterManager) synchronize(op *operation, i int, ctx any) walk {
	f := &op.frames[i]
	f.state, f.ctx, f.sync = frameBelow, ctx, true
	fm.walkDown(op, i+1)
	if !f.syncReached {
		if f.syncEvent == nil {
			f.syncEvent = fm.k.KeInitializeEvent(op.data.name+" synchronize", kernel.NotificationEvent, false)
		}
		f.syncWaiting = true
		fm.k.KeWaitForSingleObject(f.syncEvent, kernel.Infinite)
		f.syncWaiting = false
	}
	fm.mark(MarkSynchronized, op.data.name)
	return fm.completeUp(op, i)
}

// bottom sends the operation to the file system, then runs the post-ops
// at the volume's completion IRQL.
func (fm *FilterManager) bottom(op *operation) walk {
	v := op.vol
	fm.trace(KindFltOp, WhatFileSystem, op.data.name, int64(op.data.Iopb.MajorFunction), 0)
	if v.FileSystem == nil && op.isIrp() {
		if how := fm.fsCompletion(v); how != queues.CompleteInline {
			return fm.fsPend(op, how)
		}
	}
	var st kernel.NTSTATUS
	if v.FileSystem != nil {
		st = v.FileSystem(op.data)
	} else {
		if d := v.latency(); d > 0 {
			fm.k.KeDelayExecutionThread(d)
		}
		op.data.IoStatus.Information = uint64(op.data.Iopb.Parameters.Length)
		st = kernel.STATUS_SUCCESS
	}
	op.data.IoStatus.Status = st
	old := fm.k.KeGetCurrentIrql()
	raise := v.completionIrql() > old
	if raise {
		fm.k.KeRaiseIrql(v.completionIrql())
	}
	w := fm.completeUp(op, len(op.frames)-1)
	if raise {
		fm.k.KeLowerIrql(old)
	}
	return w
}

// completeUp runs the completion from frame j up to the top: post-ops of
// frames that asked for one, skipping drained ones; it stops at a post-op
// that returns MORE_PROCESSING_REQUIRED, and hands over at a SYNCHRONIZE
// frame to the thread that waits there. At the top the IRP is completed.
func (fm *FilterManager) completeUp(op *operation, j int) walk {
	for ; j >= 0; j-- {
		f := &op.frames[j]
		if f.sync {
			if !f.syncReached {
				f.syncReached = true
				if f.syncWaiting {
					fm.k.KeSetEvent(f.syncEvent, kernel.IO_NO_INCREMENT, false)
				}
				return walkHandedOff
			}
			f.sync = false // the owner carries on from here
		}
		if f.state == frameBelow && fm.callPost(f) {
			return walkPending
		}
	}
	return fm.finish(op)
}

// callPost runs frame f's post-op during a real completion and reports
// whether completion stops there (MORE_PROCESSING_REQUIRED, §5.4).
func (fm *FilterManager) callPost(f *frame) bool {
	op := f.op
	f.state = framePostOp
	op.data.Iopb.TargetInstance = f.inst
	switch st := fm.callPostCallback(f, op.data, 0); st {
	case FLT_POSTOP_FINISHED_PROCESSING:
		if f.earlyPost { // completed by FltCompletePendedPostOperation though never pended
			f.earlyPost = false
			fm.notPended(op, "FltCompletePendedPostOperation")
		}
		if f.whenSafe { // FltDoCompletionProcessingWhenSafe posted the work: its worker completes the operation (§5.10)
			f.whenSafe = false
			fm.whenSafeFinishedAnyway(f)
		}
		fm.frameDone(f)
		return false
	case FLT_POSTOP_MORE_PROCESSING_REQUIRED:
		if !op.isIrp() {
			fm.violation("post-operation callback", f.inst.filter, "only IRP-based operations can return MORE_PROCESSING_REQUIRED (§5.4)",
				"%s returned it for %s", f.inst.name, op.data.name)
		}
		if f.whenSafe { // already pended (and maybe resumed) by FltDoCompletionProcessingWhenSafe
			f.whenSafe = false
			return true
		}
		if f.earlyPost { // its work already called FltCompletePendedPostOperation: carry on up
			f.earlyPost = false
			fm.mark(MarkPostPended, op.data.name)
			fm.frameDone(f)
			return false
		}
		f.state = framePostPended
		fm.mark(MarkPostPended, op.data.name)
		return true
	default:
		fm.violation("post-operation callback", f.inst.filter, "a post-op returns FINISHED_PROCESSING or MORE_PROCESSING_REQUIRED (§5.4)",
			"%s returned %v for %s", f.inst.name, st, op.data.name)
		return true
	}
}

func (fm *FilterManager) callPostCallback(f *frame, data *FLT_CALLBACK_DATA, flags FLT_POST_OPERATION_FLAGS) FLT_POSTOP_CALLBACK_STATUS {
	data.Flags |= FLTFL_CALLBACK_DATA_POST_OPERATION
	fm.trace(KindFltCallback, WhatPostOp, f.inst.name, 1+int64(flags), int64(data.Iopb.MajorFunction))
	prev := fm.enter(f.inst.filter)
	st := f.reg.PostOperation(data, f.inst.objects(), f.ctx, flags)
	fm.leave(prev)
	fm.trace(KindFltCallback, des.What(st.String()), data.name, 1+int64(flags), int64(st))
	return st
}

func (fm *FilterManager) frameDone(f *frame) {
	f.state = frameDone
	f.inst.untrack(f)
}

// finish completes the operation: an IRP-based one through
// IoCompleteRequest (a second completion is the kernel's 0x44), others by
// marking them done.
func (fm *FilterManager) finish(op *operation) walk {
	if op.gen != nil {
		return fm.finishGenerated(op)
	}
	op.finished = true
	fm.trace(KindFltOp, WhatComplete, op.data.name, int64(op.data.IoStatus.Status), int64(op.data.IoStatus.Information))
	if op.data.irp != nil {
		op.data.irp.IoStatus = op.data.IoStatus
		fm.k.IoCompleteRequest(op.data.irp, kernel.IO_DISK_INCREMENT)
	}
	return walkDone
}

// fsCompletion decides how the default file system completes an IRP-based
// operation (REFERENCE §5.6): inline in the thread that sent it (choice 0,
// the synchronous path above), or STATUS_PENDING and later from its DPC or
// from a worker thread. Volume.SyncFileSystem pins choice 0.
func (fm *FilterManager) fsCompletion(v *FLT_VOLUME) int {
	if v.SyncFileSystem {
		return queues.CompleteInline
	}
	if v.fsLabel == "" {
		v.fsLabel = "file system on " + v.Name + ": how it completes"
	}
	return fm.k.Layer().Sim().Choose(des.Point{Kind: queues.PointDeviceCompletion, Label: v.fsLabel}, 3)
}

// fsPend is the file system returning STATUS_PENDING (REFERENCE §5.6,
// §5.7): the IRP is marked pending, the sending thread goes back up (the
// issuer sees STATUS_PENDING), and after the volume's latency the
// completion comes from the file system's DPC — post-ops at
// DISPATCH_LEVEL in whatever thread that processor interrupted — or from a
// worker thread at PASSIVE_LEVEL. On a volume with CancelPendedIo the
// request is cancellable meanwhile (fsCancellable).
func (fm *FilterManager) fsPend(op *operation, how int) walk {
	k := fm.k
	if !op.markedPending {
		op.markedPending = true
		k.IoMarkIrpPending(op.data.irp)
	}
	fm.mark(MarkFsPended, op.data.name)
	if op.vol.CancelPendedIo && fm.fsCancellable(op) {
		return walkPending // cancelled before it became cancellable: already completed
	}
	fs := op.fs.bind(op)
	// The file system's DPC and worker are its code, not a filter's, even
	// when a filter's routine (FltCompletePendedPreOperation in its work
	// item) sent the operation down (REFERENCE §5.11).
	prev := k.Layer().SwitchImage(nil)
	defer k.Layer().SwitchImage(prev)
	if how == queues.CompleteFromDpc {
		t := k.KeInitializeTimerEx(fs.timerName, kernel.NotificationEvent)
		k.KeSetTimer(t, op.vol.latency(), k.KeInitializeDpc(fs.dpcName, fs.dpc, nil))
		return walkPending
	}
	k.PsCreateSystemThread(fs.workerName, 12, fs.worker)
	return walkPending
}

// fsPending is what the default file system needs to complete a pended
// operation later: its DPC routine and worker body, bound once to the
// operation (which is recycled with them, recycle.go), and their names,
// kept while they come out equal.
type fsPending struct {
	dpc                            func(*kernel.KDPC, any, any, any)
	worker                         func()
	timerName, dpcName, workerName string
}

// bind readies f for op and returns it.
func (f *fsPending) bind(op *operation) *fsPending {
	if f.worker == nil {
		f.dpc = func(*kernel.KDPC, any, any, any) { op.fsDone() }
		f.worker = func() {
			if d := op.vol.latency(); d > 0 {
				op.fm.k.KeDelayExecutionThread(d)
			}
			op.fsDone()
		}
	}
	name := op.data.name
	f.timerName = op.fm.sp.concat(f.timerName, name, " fs")
	f.dpcName = op.fm.sp.concat(f.dpcName, name, " fs completion")
	f.workerName = op.fm.sp.concat(f.workerName, name, " fs worker")
	return f
}

// fsDone is the file system completing the pended operation.
func (op *operation) fsDone() {
	fm, k := op.fm, op.fm.k
	if op.vol.CancelPendedIo && k.IoSetCancelRoutine(op.data.irp, nil) == nil {
		return // a cancel took the request: its routine completes it
	}
	fm.touchData(op, "file system completing the callback data")
	op.data.IoStatus = kernel.IO_STATUS_BLOCK{Status: kernel.STATUS_SUCCESS, Information: uint64(op.data.Iopb.Parameters.Length)}
	if k.KeIsExecutingDpc() {
		fm.mark(MarkPostInDpc, op.data.name)
	}
	fm.completeUp(op, len(op.frames)-1)
}

// fsCancellable makes a pended request cancellable the cancel-safe way
// (§2.2): set the cancel routine, then test the Cancel flag; if a cancel
// came first and the routine can be taken back, the request is completed
// as cancelled at once and fsCancellable reports true. The routine
// completes the request with STATUS_CANCELLED in the cancelling thread,
// after releasing the cancel spin lock (DDI:DRIVER_CANCEL, §1.7).
func (fm *FilterManager) fsCancellable(op *operation) bool {
	k := fm.k
	k.IoSetCancelRoutine(op.data.irp, func(irp *kernel.IRP) {
		k.IoReleaseCancelSpinLock(irp.CancelIrql)
		fm.fsCancelled(op)
	})
	if k.IoIsCancelled(op.data.irp) && k.IoSetCancelRoutine(op.data.irp, nil) != nil {
		fm.fsCancelled(op)
		return true
	}
	return false
}

func (fm *FilterManager) fsCancelled(op *operation) {
	fm.mark(MarkFsCancelled, op.data.name)
	fm.touchData(op, "file system cancelling the callback data")
	op.data.IoStatus = kernel.IO_STATUS_BLOCK{Status: kernel.STATUS_CANCELLED}
	fm.completeUp(op, len(op.frames)-1)
}

// exposeData notes that the pre-op running now handed data to a routine
// through which its operation can be completed while the pre-op still runs
// (FltCbdqInsertIo, FltQueueDeferredIoWorkItem, FltSetCancelCompletion, a
// generic work item with the data as context): an early completion is then
// that filter's (§1.4).
func (op *operation) exposeData() {
	if i := op.frameIn(framePreOp); i >= 0 {
		op.frames[i].exposed = true
	}
}

// staleUpperCompletion reports whether a FltCompletePendedPreOperation that
// finds no pended frame while frame p's pre-op runs is rather an upper
// filter completing its own, already resumed, pend a second time: some
// frame above p was pended and resumed, and p's pre-op handed the data to
// nobody who could complete it (§1.4).
func (op *operation) staleUpperCompletion(p int) bool {
	if op.frames[p].exposed {
		return false
	}
	for j := 0; j < p; j++ {
		if op.frames[j].resumed {
			return true
		}
	}
	return false
}
