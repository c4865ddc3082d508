package fltmgr_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues"
	"github.com/wqsim/wqsim/queues/fltmgr"
)

// fsChooser pins how the file system completes (queues.Complete*) and
// leaves every other decision natural.
type fsChooser int

func (c fsChooser) Choose(p des.Point, n int) int {
	if p.Kind == queues.PointDeviceCompletion {
		return int(c)
	}
	return 0
}

// postSeen is what a post-op observed about the context it ran in.
type postSeen struct {
	irql     kernel.IRQL
	dpc      bool
	thread   string
	topLevel any
}

// observingFilter registers a filter whose read and set-information
// post-ops record their context (and run extra, if set, to decide their
// return).
func observingFilter(r *rig, seen *[]postSeen, extra fltmgr.PFLT_POST_OPERATION_CALLBACK) *fltmgr.FLT_FILTER {
	post := func(d *fltmgr.FLT_CALLBACK_DATA, o *fltmgr.FLT_RELATED_OBJECTS, ctx any, fl fltmgr.FLT_POST_OPERATION_FLAGS) fltmgr.FLT_POSTOP_CALLBACK_STATUS {
		*seen = append(*seen, postSeen{r.k.KeGetCurrentIrql(), r.k.KeIsExecutingDpc(), r.threadName(), r.fm.IoGetTopLevelIrp()})
		if extra != nil {
			return extra(d, o, ctx, fl)
		}
		return fltmgr.FLT_POSTOP_FINISHED_PROCESSING
	}
	return r.register("obs", 100, &fltmgr.FLT_REGISTRATION{OperationRegistration: []fltmgr.FLT_OPERATION_REGISTRATION{
		{MajorFunction: fltmgr.IRP_MJ_READ, PostOperation: post},
		{MajorFunction: fltmgr.IRP_MJ_SET_INFORMATION, PostOperation: post},
	}})
}

// setInfo is a set-information request: an operation
// FltDoCompletionProcessingWhenSafe may be used for (reads, writes and
// flushes may not, §5.7).
func setInfo() fltmgr.IoRequest {
	return fltmgr.IoRequest{MajorFunction: fltmgr.IRP_MJ_SET_INFORMATION, Tag: "setinfo"}
}

// REFERENCE §5.6, §5.7: the file system completes inline (the issuer's
// thread, at the completion IRQL), or pends and completes from its DPC —
// post-ops at DISPATCH_LEVEL in a DPC, seeing the TopLevelIrp of the
// thread the DPC interrupted — or from a worker thread at PASSIVE_LEVEL.
// The issuer sees STATUS_PENDING and waits.
func TestPostOpRunsWhereCompletionHappens(t *testing.T) {
	for _, c := range []struct {
		how  int
		want postSeen
	}{
		{queues.CompleteInline, postSeen{kernel.DISPATCH_LEVEL, false, "app", nil}},
		{queues.CompleteFromDpc, postSeen{kernel.DISPATCH_LEVEL, true, "dpc", "FSRTL_CACHE_TOP_LEVEL_IRP"}},
		{queues.CompleteFromWorker, postSeen{kernel.PASSIVE_LEVEL, false, "cbd 1 (irp 1 (read)) fs worker", nil}},
	} {
		kcfg := kernel.DefaultConfig()
		kcfg.Processors = 1
		r := newRig(t, rigOpts{kcfg: &kcfg, chooser: fsChooser(c.how)})
		var seen []postSeen
		f := observingFilter(r, &seen, nil)
		var io *fltmgr.IoOp
		var st kernel.IO_STATUS_BLOCK
		r.thread("app", func() {
			r.fm.FltStartFiltering(f)
			io = r.vol.Issue(read(512))
			st = io.Wait()
		})
		// A busy thread that holds file-system resources: the DPC
		// interrupts it, so a post-op run there sees its TopLevelIrp.
		r.thread("busy", func() {
			r.fm.IoSetTopLevelIrp("FSRTL_CACHE_TOP_LEVEL_IRP")
			r.k.Compute(des.Millisecond)
			r.fm.IoSetTopLevelIrp(nil)
		})
		require.NoError(t, r.run().Err, "choice %d", c.how)
		require.Len(t, seen, 1)
		assert.Equal(t, c.want, seen[0], "choice %d", c.how)
		assert.Equal(t, kernel.STATUS_SUCCESS, st.Status)
		assert.Equal(t, c.how != queues.CompleteInline, io.Returned() == kernel.STATUS_PENDING)
		assert.Equal(t, c.how != queues.CompleteInline, r.fm.Hits(fltmgr.MarkFsPended) > 0)
	}
}

// REFERENCE §5.7: FltDoCompletionProcessingWhenSafe calls the safe
// callback inline below DISPATCH_LEVEL and posts it to a worker at
// DISPATCH_LEVEL, the post-op returning MORE_PROCESSING_REQUIRED; the
// operation completes once the safe callback finishes.
func TestCompletionProcessingWhenSafe(t *testing.T) {
	for _, how := range []int{queues.CompleteInline, queues.CompleteFromDpc, queues.CompleteFromWorker} {
		r := newRig(t, rigOpts{chooser: fsChooser(how)})
		var seen []postSeen
		var safeRan []string
		f := observingFilter(r, &seen, func(d *fltmgr.FLT_CALLBACK_DATA, o *fltmgr.FLT_RELATED_OBJECTS, ctx any, fl fltmgr.FLT_POST_OPERATION_FLAGS) fltmgr.FLT_POSTOP_CALLBACK_STATUS {
			var ret fltmgr.FLT_POSTOP_CALLBACK_STATUS
			ok := r.fm.FltDoCompletionProcessingWhenSafe(d, o, ctx, fl, func(*fltmgr.FLT_CALLBACK_DATA, *fltmgr.FLT_RELATED_OBJECTS, any, fltmgr.FLT_POST_OPERATION_FLAGS) fltmgr.FLT_POSTOP_CALLBACK_STATUS {
				safeRan = append(safeRan, r.k.KeGetCurrentIrql().String())
				m := r.k.ExInitializeFastMutex("needs passive")
				r.k.ExAcquireFastMutex(m)
				r.k.ExReleaseFastMutex(m)
				return fltmgr.FLT_POSTOP_FINISHED_PROCESSING
			}, &ret)
			require.True(t, ok)
			return ret
		})
		var st kernel.IO_STATUS_BLOCK
		r.thread("app", func() {
			r.fm.FltStartFiltering(f)
			st = r.vol.Issue(setInfo()).Wait()
		})
		require.NoError(t, r.run().Err, "choice %d", how)
		assert.Equal(t, []string{"PASSIVE_LEVEL"}, safeRan)
		assert.Equal(t, kernel.STATUS_SUCCESS, st.Status)
		assert.Equal(t, how != queues.CompleteFromWorker, r.fm.Hits(fltmgr.MarkPostWhenSafe) == 1, "posted only from DISPATCH_LEVEL")
	}
}

// REFERENCE §5.10: a post-op that returns FLT_POSTOP_FINISHED_PROCESSING
// although FltDoCompletionProcessingWhenSafe posted its work (TRUE, and
// MORE_PROCESSING_REQUIRED stored) lets completion go on while the worker
// will complete the operation again: 0x44, reported at the post-op's
// return and naming it, not inside the filter manager's worker. Returning
// the stored status is clean whether the post-op ran at DISPATCH_LEVEL
// (posted) or PASSIVE_LEVEL (run at once).
func TestWhenSafePostOpReturningFinishedAnyway(t *testing.T) {
	for _, how := range []int{queues.CompleteInline, queues.CompleteFromDpc, queues.CompleteFromWorker} {
		for _, obey := range []bool{false, true} {
			r := newRig(t, rigOpts{chooser: fsChooser(how)})
			var seen []postSeen
			f := observingFilter(r, &seen, func(d *fltmgr.FLT_CALLBACK_DATA, o *fltmgr.FLT_RELATED_OBJECTS, ctx any, fl fltmgr.FLT_POST_OPERATION_FLAGS) fltmgr.FLT_POSTOP_CALLBACK_STATUS {
				var ret fltmgr.FLT_POSTOP_CALLBACK_STATUS
				ok := r.fm.FltDoCompletionProcessingWhenSafe(d, o, ctx, fl, func(*fltmgr.FLT_CALLBACK_DATA, *fltmgr.FLT_RELATED_OBJECTS, any, fltmgr.FLT_POST_OPERATION_FLAGS) fltmgr.FLT_POSTOP_CALLBACK_STATUS {
					return fltmgr.FLT_POSTOP_FINISHED_PROCESSING
				}, &ret)
				if ok && !obey {
					return fltmgr.FLT_POSTOP_FINISHED_PROCESSING // "TRUE means the work is done"
				}
				return ret
			})
			r.thread("app", func() {
				r.fm.FltStartFiltering(f)
				r.vol.Issue(setInfo()).Wait()
			})
			out := r.run()
			if obey || how == queues.CompleteFromWorker { // at PASSIVE_LEVEL the safe callback ran at once
				require.NoError(t, out.Err, "choice %d obey %v", how, obey)
				continue
			}
			bc := requireBugCheck(t, out, kernel.MULTIPLE_IRP_COMPLETE_REQUESTS, 1)
			assert.Equal(t, "post-operation callback", bc.API, bc.Error())
			assert.Contains(t, bc.Error(), "FltDoCompletionProcessingWhenSafe", bc.Error())
			assert.Contains(t, bc.Error(), "RetPostOperationStatus", bc.Error())
		}
	}
}

// REFERENCE §5.7: a post-op that waits when completion comes from the
// file system's DPC is ATTEMPTED_SWITCH_FROM_DPC 0xB8 (a blocking wait in
// a DPC); the same post-op in the issuer's thread at DISPATCH_LEVEL is the
// Verifier's 0xC4/0x121.
func TestPostOpWaitingInDpc(t *testing.T) {
	r := newRig(t, rigOpts{chooser: fsChooser(queues.CompleteFromDpc)})
	var seen []postSeen
	f := observingFilter(r, &seen, func(*fltmgr.FLT_CALLBACK_DATA, *fltmgr.FLT_RELATED_OBJECTS, any, fltmgr.FLT_POST_OPERATION_FLAGS) fltmgr.FLT_POSTOP_CALLBACK_STATUS {
		r.k.KeWaitForSingleObject(r.k.KeInitializeEvent("never", kernel.NotificationEvent, false), kernel.Infinite)
		return fltmgr.FLT_POSTOP_FINISHED_PROCESSING
	})
	r.thread("app", func() {
		r.fm.FltStartFiltering(f)
		r.vol.Issue(read(512)).Wait()
	})
	var bc *kernel.BugCheck
	require.ErrorAs(t, r.run().Err, &bc)
	assert.Equal(t, kernel.ATTEMPTED_SWITCH_FROM_DPC, bc.Code)
}

// REFERENCE §1.4: filter A pends a read and its worker resumes it, which
// runs filter B's pre-op in that worker; meanwhile A completes the read a
// second time from another thread. That is A's double completion, not B's
// legal early completion (B handed the data to nobody): 0x44 naming the
// stale second completion, not B.
func TestUpperDoubleCompletionIsNotLowerEarlyCompletion(t *testing.T) {
	r := newRig(t, rigOpts{})
	var pended *fltmgr.FLT_CALLBACK_DATA
	aPended, inB, second := r.gate("A pended"), r.gate("in B"), r.gate("second done")
	a := newSimpleFilter(r, "A", 200, false, func(d *fltmgr.FLT_CALLBACK_DATA, _ *any) fltmgr.FLT_PREOP_CALLBACK_STATUS {
		pended = d
		r.open(aPended)
		return fltmgr.FLT_PREOP_PENDING
	})
	b := newSimpleFilter(r, "B", 100, false, func(d *fltmgr.FLT_CALLBACK_DATA, _ *any) fltmgr.FLT_PREOP_CALLBACK_STATUS {
		r.open(inB)
		r.wait(second)
		return fltmgr.FLT_PREOP_SUCCESS_NO_CALLBACK
	})
	r.thread("app", func() {
		r.fm.FltStartFiltering(a.f)
		r.fm.FltStartFiltering(b.f)
		r.vol.Issue(read(1))
	})
	r.thread("A worker", func() {
		r.wait(aPended)
		r.fm.FltCompletePendedPreOperation(pended, fltmgr.FLT_PREOP_SUCCESS_NO_CALLBACK, nil)
	})
	r.thread("A stale", func() {
		r.wait(inB)
		pended.IoStatus.Status = kernel.STATUS_SUCCESS
		r.fm.FltCompletePendedPreOperation(pended, fltmgr.FLT_PREOP_COMPLETE, nil)
		r.open(second)
	})
	bc := requireBugCheck(t, r.run(), kernel.MULTIPLE_IRP_COMPLETE_REQUESTS, 1)
	assert.Equal(t, "FltCompletePendedPreOperation", bc.API, bc.Error())
	assert.Equal(t, "A stale", bc.Actor)
	assert.Zero(t, r.fm.Hits(fltmgr.MarkCompletedBeforePending), "not taken for B's early completion")
}

// REFERENCE §5.7: Microsoft's page forbids FltDoCompletionProcessingWhenSafe
// for operations a storage driver can complete directly (reads, writes,
// flushes): posting them can deadlock. Windows does not check it; the
// model reports a contract violation naming the operation
// (PoolConfig.ContractChecks, on by default).
func TestWhenSafeForbiddenForReads(t *testing.T) {
	post := func(r *rig) fltmgr.PFLT_POST_OPERATION_CALLBACK {
		return func(d *fltmgr.FLT_CALLBACK_DATA, o *fltmgr.FLT_RELATED_OBJECTS, ctx any, fl fltmgr.FLT_POST_OPERATION_FLAGS) fltmgr.FLT_POSTOP_CALLBACK_STATUS {
			var ret fltmgr.FLT_POSTOP_CALLBACK_STATUS
			r.fm.FltDoCompletionProcessingWhenSafe(d, o, ctx, fl, func(*fltmgr.FLT_CALLBACK_DATA, *fltmgr.FLT_RELATED_OBJECTS, any, fltmgr.FLT_POST_OPERATION_FLAGS) fltmgr.FLT_POSTOP_CALLBACK_STATUS {
				return fltmgr.FLT_POSTOP_FINISHED_PROCESSING
			}, &ret)
			return ret
		}
	}
	r := newRig(t, rigOpts{})
	var seen []postSeen
	f := observingFilter(r, &seen, post(r))
	r.thread("app", func() {
		r.fm.FltStartFiltering(f)
		r.vol.Issue(read(512)).Wait()
	})
	var cv *queues.ContractViolation
	require.ErrorAs(t, r.run().Err, &cv)
	assert.Equal(t, "FltDoCompletionProcessingWhenSafe", cv.API)
	assert.Contains(t, cv.Detail, "IRP_MJ_READ")
	assert.Equal(t, "DDI:FltDoCompletionProcessingWhenSafe", cv.Source)
}
