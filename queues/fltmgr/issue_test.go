package fltmgr_test

// The pre-/post-operation protocol driven through the issuer (REFERENCE
// §5.1–§5.4, §1.4).

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues"
	"github.com/wqsim/wqsim/queues/fltmgr"
)

// postCall records one post-op call.
type postCall struct {
	ctx    any
	irql   kernel.IRQL
	flags  fltmgr.FLT_POST_OPERATION_FLAGS
	thread string
	data   *fltmgr.FLT_CALLBACK_DATA
}

// simpleFilter registers one read callback pair from closures.
type simpleFilter struct {
	f     *fltmgr.FLT_FILTER
	pre   func(d *fltmgr.FLT_CALLBACK_DATA, ctx *any) fltmgr.FLT_PREOP_CALLBACK_STATUS
	posts []postCall
	pres  int
}

func newSimpleFilter(r *rig, name string, altitude uint32, withPost bool,
	pre func(d *fltmgr.FLT_CALLBACK_DATA, ctx *any) fltmgr.FLT_PREOP_CALLBACK_STATUS) *simpleFilter {
	return newSimpleFilterFor(r, fltmgr.IRP_MJ_READ, name, altitude, withPost, pre)
}

func newSimpleFilterFor(r *rig, major fltmgr.UCHAR, name string, altitude uint32, withPost bool,
	pre func(d *fltmgr.FLT_CALLBACK_DATA, ctx *any) fltmgr.FLT_PREOP_CALLBACK_STATUS) *simpleFilter {
	s := &simpleFilter{pre: pre}
	op := fltmgr.FLT_OPERATION_REGISTRATION{MajorFunction: major,
		PreOperation: func(d *fltmgr.FLT_CALLBACK_DATA, _ *fltmgr.FLT_RELATED_OBJECTS, ctx *any) fltmgr.FLT_PREOP_CALLBACK_STATUS {
			s.pres++
			return s.pre(d, ctx)
		}}
	if withPost {
		op.PostOperation = func(d *fltmgr.FLT_CALLBACK_DATA, _ *fltmgr.FLT_RELATED_OBJECTS, ctx any, flags fltmgr.FLT_POST_OPERATION_FLAGS) fltmgr.FLT_POSTOP_CALLBACK_STATUS {
			s.posts = append(s.posts, postCall{ctx: ctx, irql: r.k.KeGetCurrentIrql(), flags: flags, thread: r.threadName(), data: d})
			return fltmgr.FLT_POSTOP_FINISHED_PROCESSING
		}
	}
	s.f = r.register(name, altitude, &fltmgr.FLT_REGISTRATION{
		OperationRegistration: []fltmgr.FLT_OPERATION_REGISTRATION{op},
		FilterUnloadCallback: func(fltmgr.FLT_FILTER_UNLOAD_FLAGS) kernel.NTSTATUS {
			r.fm.FltUnregisterFilter(s.f)
			return kernel.STATUS_SUCCESS
		},
	})
	return s
}

// §5.3 SUCCESS_WITH_CALLBACK, §5.4: the post-op gets the pre-op's context
// and runs at the completion IRQL (DISPATCH_LEVEL by default).
func TestIssuePassesDownAndRunsPostOp(t *testing.T) {
	r := newRig(t, rigOpts{})
	s := newSimpleFilter(r, "f", 100, true, func(_ *fltmgr.FLT_CALLBACK_DATA, ctx *any) fltmgr.FLT_PREOP_CALLBACK_STATUS {
		*ctx = "my context"
		return fltmgr.FLT_PREOP_SUCCESS_WITH_CALLBACK
	})
	io, out := r.startAndIssue(s.f, read(4096))
	require.NoError(t, out.Err)
	assert.Equal(t, kernel.STATUS_SUCCESS, io.Returned())
	assert.Equal(t, kernel.IO_STATUS_BLOCK{Status: kernel.STATUS_SUCCESS, Information: 4096}, io.IoStatus())
	require.Len(t, s.posts, 1)
	assert.Equal(t, "my context", s.posts[0].ctx)
	assert.Equal(t, kernel.DISPATCH_LEVEL, s.posts[0].irql)
	assert.Zero(t, s.posts[0].flags)
	assert.True(t, io.Irp().Completed())
}

// preCase is one row of the §5.3 return-value table.
type preCase struct {
	name     string
	section  string
	req      fltmgr.IoRequest
	withPost bool
	pre      func(r *rig, d *fltmgr.FLT_CALLBACK_DATA, ctx *any) fltmgr.FLT_PREOP_CALLBACK_STATUS
	check    func(t *testing.T, r *rig, s *simpleFilter, io *fltmgr.IoOp, out des.Outcome)
}

func okRun(t *testing.T, out des.Outcome) { t.Helper(); require.NoError(t, out.Err) }

var preCases = []preCase{
	{name: "SUCCESS_NO_CALLBACK skips the post-op", section: "§5.3", req: read(512), withPost: true,
		pre: func(*rig, *fltmgr.FLT_CALLBACK_DATA, *any) fltmgr.FLT_PREOP_CALLBACK_STATUS {
			return fltmgr.FLT_PREOP_SUCCESS_NO_CALLBACK
		},
		check: func(t *testing.T, r *rig, s *simpleFilter, io *fltmgr.IoOp, out des.Outcome) {
			okRun(t, out)
			assert.Equal(t, kernel.STATUS_SUCCESS, io.Returned())
			assert.Empty(t, s.posts)
		}},
	{name: "COMPLETE completes without the file system", section: "§5.3", req: read(512), withPost: true,
		pre: func(_ *rig, d *fltmgr.FLT_CALLBACK_DATA, _ *any) fltmgr.FLT_PREOP_CALLBACK_STATUS {
			d.IoStatus = kernel.IO_STATUS_BLOCK{Status: kernel.STATUS_INVALID_DEVICE_REQUEST}
			return fltmgr.FLT_PREOP_COMPLETE
		},
		check: func(t *testing.T, r *rig, s *simpleFilter, io *fltmgr.IoOp, out des.Outcome) {
			okRun(t, out)
			assert.Equal(t, kernel.STATUS_INVALID_DEVICE_REQUEST, io.Returned())
			assert.Equal(t, kernel.STATUS_INVALID_DEVICE_REQUEST, io.Irp().IoStatus.Status)
			assert.Empty(t, s.posts, "only filters above see post-ops")
			assert.NotContains(t, r.trace.String(), "file system")
		}},
	{name: "COMPLETE with STATUS_PENDING", section: "§5.3", req: read(512),
		pre: func(_ *rig, d *fltmgr.FLT_CALLBACK_DATA, _ *any) fltmgr.FLT_PREOP_CALLBACK_STATUS {
			d.IoStatus.Status = kernel.STATUS_PENDING
			return fltmgr.FLT_PREOP_COMPLETE
		},
		check: func(t *testing.T, r *rig, s *simpleFilter, io *fltmgr.IoOp, out des.Outcome) {
			requireViolation(t, out, "not STATUS_PENDING")
		}},
	{name: "PENDING for fast I/O", section: "§5.1, §5.3", req: fltmgr.IoRequest{MajorFunction: fltmgr.IRP_MJ_READ, FastIo: true},
		pre: func(*rig, *fltmgr.FLT_CALLBACK_DATA, *any) fltmgr.FLT_PREOP_CALLBACK_STATUS {
			return fltmgr.FLT_PREOP_PENDING
		},
		check: func(t *testing.T, r *rig, s *simpleFilter, io *fltmgr.IoOp, out des.Outcome) {
			requireViolation(t, out, "only IRP-based operations can be pended")
		}},
	{name: "PENDING for an FsFilter callback", section: "§5.1", req: fltmgr.IoRequest{MajorFunction: fltmgr.IRP_MJ_ACQUIRE_FOR_SECTION_SYNC},
		pre: func(*rig, *fltmgr.FLT_CALLBACK_DATA, *any) fltmgr.FLT_PREOP_CALLBACK_STATUS {
			return fltmgr.FLT_PREOP_PENDING
		},
		check: func(t *testing.T, r *rig, s *simpleFilter, io *fltmgr.IoOp, out des.Outcome) {
			requireViolation(t, out, "only IRP-based operations can be pended")
		}},
	{name: "PENDING with a completion context", section: "§5.3", req: read(512),
		pre: func(_ *rig, _ *fltmgr.FLT_CALLBACK_DATA, ctx *any) fltmgr.FLT_PREOP_CALLBACK_STATUS {
			*ctx = 1
			return fltmgr.FLT_PREOP_PENDING
		},
		check: func(t *testing.T, r *rig, s *simpleFilter, io *fltmgr.IoOp, out des.Outcome) {
			requireViolation(t, out, "completion context must be NULL")
		}},
	{name: "DISALLOW_FASTIO reissues as an IRP", section: "§5.1, §5.3", req: fltmgr.IoRequest{MajorFunction: fltmgr.IRP_MJ_READ, FastIo: true, Length: 8},
		withPost: true,
		pre: func(_ *rig, d *fltmgr.FLT_CALLBACK_DATA, _ *any) fltmgr.FLT_PREOP_CALLBACK_STATUS {
			if fltmgr.FLT_IS_FASTIO_OPERATION(d) {
				return fltmgr.FLT_PREOP_DISALLOW_FASTIO
			}
			return fltmgr.FLT_PREOP_SUCCESS_NO_CALLBACK
		},
		check: func(t *testing.T, r *rig, s *simpleFilter, io *fltmgr.IoOp, out des.Outcome) {
			okRun(t, out)
			assert.True(t, io.Reissued())
			assert.Equal(t, 2, s.pres, "once as fast I/O, once as the reissued IRP")
			require.NotNil(t, io.Irp())
			assert.True(t, fltmgr.FLT_IS_IRP_OPERATION(io.Data()))
			assert.NotZero(t, io.Data().Flags&fltmgr.FLTFL_CALLBACK_DATA_REISSUED_IO)
			assert.Equal(t, kernel.IO_STATUS_BLOCK{Status: kernel.STATUS_SUCCESS, Information: 8}, io.IoStatus())
			assert.Equal(t, 1, r.fm.Hits(fltmgr.MarkFastIoReissued))
		}},
	{name: "DISALLOW_FASTIO for an IRP", section: "§5.3", req: read(512),
		pre: func(*rig, *fltmgr.FLT_CALLBACK_DATA, *any) fltmgr.FLT_PREOP_CALLBACK_STATUS {
			return fltmgr.FLT_PREOP_DISALLOW_FASTIO
		},
		check: func(t *testing.T, r *rig, s *simpleFilter, io *fltmgr.IoOp, out des.Outcome) {
			requireViolation(t, out, "fast I/O only")
		}},
	{name: "SYNCHRONIZE runs the post-op in the pre-op thread", section: "§5.3", req: read(512), withPost: true,
		pre: func(_ *rig, _ *fltmgr.FLT_CALLBACK_DATA, ctx *any) fltmgr.FLT_PREOP_CALLBACK_STATUS {
			*ctx = "sync"
			return fltmgr.FLT_PREOP_SYNCHRONIZE
		},
		check: func(t *testing.T, r *rig, s *simpleFilter, io *fltmgr.IoOp, out des.Outcome) {
			okRun(t, out)
			require.Len(t, s.posts, 1)
			assert.Equal(t, postCall{ctx: "sync", irql: kernel.PASSIVE_LEVEL, thread: "app", data: io.Data()}, s.posts[0])
			assert.Equal(t, 1, r.fm.Hits(fltmgr.MarkSynchronized))
		}},
	{name: "SUCCESS_WITH_CALLBACK without a post-op", section: "§1.8 0xF5/0x66", req: read(512),
		pre: func(*rig, *fltmgr.FLT_CALLBACK_DATA, *any) fltmgr.FLT_PREOP_CALLBACK_STATUS {
			return fltmgr.FLT_PREOP_SUCCESS_WITH_CALLBACK
		},
		check: func(t *testing.T, r *rig, s *simpleFilter, io *fltmgr.IoOp, out des.Outcome) {
			requireBugCheck(t, out, kernel.FLTMGR_FILE_SYSTEM, 0x66)
		}},
	{name: "SYNCHRONIZE without a post-op", section: "§1.8 0xF5/0x66", req: read(512),
		pre: func(*rig, *fltmgr.FLT_CALLBACK_DATA, *any) fltmgr.FLT_PREOP_CALLBACK_STATUS {
			return fltmgr.FLT_PREOP_SYNCHRONIZE
		},
		check: func(t *testing.T, r *rig, s *simpleFilter, io *fltmgr.IoOp, out des.Outcome) {
			requireBugCheck(t, out, kernel.FLTMGR_FILE_SYSTEM, 0x66)
		}},
	{name: "unknown status", section: "§5.3", req: read(512),
		pre: func(*rig, *fltmgr.FLT_CALLBACK_DATA, *any) fltmgr.FLT_PREOP_CALLBACK_STATUS { return 42 },
		check: func(t *testing.T, r *rig, s *simpleFilter, io *fltmgr.IoOp, out des.Outcome) {
			requireViolation(t, out, "FLT_PREOP_CALLBACK_STATUS(42)")
		}},
}

func TestPreOperationReturnValues(t *testing.T) {
	for _, tc := range preCases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, rigOpts{})
			s := newSimpleFilterFor(r, tc.req.MajorFunction, "f", 100, tc.withPost, func(d *fltmgr.FLT_CALLBACK_DATA, ctx *any) fltmgr.FLT_PREOP_CALLBACK_STATUS {
				return tc.pre(r, d, ctx)
			})
			io, out := r.startAndIssue(s.f, tc.req) // io is read after the run that sets it
			tc.check(t, r, s, io, out)
		})
	}
}

// §5.3: pre-ops run from the highest altitude down and post-ops back up;
// FLT_PREOP_COMPLETE stops the descent and only filters above get their
// post-op.
func TestAltitudeOrder(t *testing.T) {
	cases := []struct {
		name     string
		complete string // which filter completes in its pre-op, "" none
		want     []string
	}{
		{"both pass", "", []string{"pre high", "pre low", "post low", "post high"}},
		{"low completes", "low", []string{"pre high", "pre low", "post high"}},
		{"high completes", "high", []string{"pre high"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, rigOpts{})
			var calls []string
			mk := func(name string, alt uint32) *fltmgr.FLT_FILTER {
				return r.register(name, alt, &fltmgr.FLT_REGISTRATION{OperationRegistration: []fltmgr.FLT_OPERATION_REGISTRATION{{
					MajorFunction: fltmgr.IRP_MJ_READ,
					PreOperation: func(d *fltmgr.FLT_CALLBACK_DATA, objs *fltmgr.FLT_RELATED_OBJECTS, _ *any) fltmgr.FLT_PREOP_CALLBACK_STATUS {
						calls = append(calls, "pre "+name)
						assert.Same(t, objs.Instance, d.Iopb.TargetInstance)
						if tc.complete == name {
							d.IoStatus.Status = kernel.STATUS_SUCCESS
							return fltmgr.FLT_PREOP_COMPLETE
						}
						return fltmgr.FLT_PREOP_SUCCESS_WITH_CALLBACK
					},
					PostOperation: func(*fltmgr.FLT_CALLBACK_DATA, *fltmgr.FLT_RELATED_OBJECTS, any, fltmgr.FLT_POST_OPERATION_FLAGS) fltmgr.FLT_POSTOP_CALLBACK_STATUS {
						calls = append(calls, "post "+name)
						return fltmgr.FLT_POSTOP_FINISHED_PROCESSING
					},
				}}})
			}
			low, high := mk("low", 100), mk("high", 300)
			r.thread("app", func() {
				r.fm.FltStartFiltering(low)
				r.fm.FltStartFiltering(high)
				r.vol.Send(read(1))
			})
			require.NoError(t, r.run().Err)
			assert.Equal(t, tc.want, calls)
		})
	}
}

// §5.2: a filter registered with SKIP_PAGING_IO never sees paging I/O.
func TestSkipPagingIo(t *testing.T) {
	r := newRig(t, rigOpts{})
	c := newCbdqFilter(r, spinLocked)
	var paging kernel.IO_STATUS_BLOCK
	r.thread("app", func() {
		c.start()
		paging = r.vol.Send(fltmgr.IoRequest{MajorFunction: fltmgr.IRP_MJ_READ, IrpFlags: kernel.IRP_PAGING_IO, Length: 4096})
	})
	require.NoError(t, r.run().Err)
	require.Len(t, r.vol.Instances(), 1, "attached: the flag, not a missing instance, bypassed it")
	assert.Empty(t, c.inserts, "the paging read bypassed the filter")
	assert.Equal(t, kernel.STATUS_SUCCESS, paging.Status)
}

// §5.5: an InstanceSetup that returns STATUS_FLT_DO_NOT_ATTACH leaves the
// volume without an instance of the filter.
func TestInstanceSetupRefuses(t *testing.T) {
	r := newRig(t, rigOpts{})
	f := r.register("picky", 100, &fltmgr.FLT_REGISTRATION{
		InstanceSetupCallback: func(*fltmgr.FLT_RELATED_OBJECTS, fltmgr.FLT_INSTANCE_SETUP_FLAGS) kernel.NTSTATUS {
			return kernel.STATUS_FLT_DO_NOT_ATTACH
		},
	})
	var st kernel.NTSTATUS
	r.thread("app", func() { st = r.fm.FltStartFiltering(f) })
	require.NoError(t, r.run().Err)
	assert.Equal(t, kernel.STATUS_SUCCESS, st)
	assert.Empty(t, f.Instances())
	assert.Empty(t, r.vol.Instances())
}

// deferredFilter pends every read with a deferred I/O work item (the
// pre-op recipe of §1.3) or, with inPost, pends its post-op the same way
// (the post-op recipe).
type deferredFilter struct {
	r        *rig
	f        *fltmgr.FLT_FILTER
	inPost   bool
	statuses []kernel.NTSTATUS // FltQueueDeferredIoWorkItem results
	routine  func(item *fltmgr.FLT_DEFERRED_IO_WORKITEM, d *fltmgr.FLT_CALLBACK_DATA)
	ranIn    []string
	posts    []postCall
	// postDelay is spent in the post-op after it queued its work item and
	// before it returns: the item may complete the operation meanwhile.
	postDelay des.Duration
	// postFinish makes the post-op return FINISHED_PROCESSING after
	// queueing work that completes the operation (a filter bug).
	postFinish bool
}

// newDeferredFilter builds and registers the filter.
func newDeferredFilter(r *rig, inPost bool) *deferredFilter {
	df := buildDeferredFilter(r, inPost)
	df.f = r.register("deferred", 100, &fltmgr.FLT_REGISTRATION{
		OperationRegistration: []fltmgr.FLT_OPERATION_REGISTRATION{{MajorFunction: fltmgr.IRP_MJ_READ, PreOperation: df.pre, PostOperation: df.postCallback()}},
		FilterUnloadCallback: func(fltmgr.FLT_FILTER_UNLOAD_FLAGS) kernel.NTSTATUS {
			r.fm.FltUnregisterFilter(df.f)
			return kernel.STATUS_SUCCESS
		},
	})
	return df
}

// buildDeferredFilter builds the callbacks only; the caller registers.
func buildDeferredFilter(r *rig, inPost bool) *deferredFilter {
	df := &deferredFilter{r: r, inPost: inPost}
	df.routine = func(item *fltmgr.FLT_DEFERRED_IO_WORKITEM, d *fltmgr.FLT_CALLBACK_DATA) {
		if df.inPost {
			r.fm.FltCompletePendedPostOperation(d)
		} else {
			r.fm.FltCompletePendedPreOperation(d, fltmgr.FLT_PREOP_SUCCESS_WITH_CALLBACK, "from worker")
		}
		r.fm.FltFreeDeferredIoWorkItem(item)
	}
	return df
}

// queue posts the rest of the work to a deferred work item and reports
// whether the queueing succeeded (a refused item is freed).
func (df *deferredFilter) queue(d *fltmgr.FLT_CALLBACK_DATA) bool {
	item := df.r.fm.FltAllocateDeferredIoWorkItem()
	st := df.r.fm.FltQueueDeferredIoWorkItem(item, d, func(item *fltmgr.FLT_DEFERRED_IO_WORKITEM, d *fltmgr.FLT_CALLBACK_DATA, _ any) {
		df.ranIn = append(df.ranIn, df.r.threadName()+" at "+df.r.k.KeGetCurrentIrql().String())
		df.routine(item, d)
	}, queues.DelayedWorkQueue, nil)
	df.statuses = append(df.statuses, st)
	if st != kernel.STATUS_SUCCESS {
		df.r.fm.FltFreeDeferredIoWorkItem(item)
		return false
	}
	return true
}

func (df *deferredFilter) pre(d *fltmgr.FLT_CALLBACK_DATA, _ *fltmgr.FLT_RELATED_OBJECTS, _ *any) fltmgr.FLT_PREOP_CALLBACK_STATUS {
	if df.inPost {
		return fltmgr.FLT_PREOP_SUCCESS_WITH_CALLBACK
	}
	if df.queue(d) {
		return fltmgr.FLT_PREOP_PENDING
	}
	return fltmgr.FLT_PREOP_SUCCESS_NO_CALLBACK
}

func (df *deferredFilter) postOp(d *fltmgr.FLT_CALLBACK_DATA, ctx any, flags fltmgr.FLT_POST_OPERATION_FLAGS) fltmgr.FLT_POSTOP_CALLBACK_STATUS {
	df.posts = append(df.posts, postCall{ctx: ctx, irql: df.r.k.KeGetCurrentIrql(), flags: flags, thread: df.r.threadName(), data: d})
	if df.inPost && flags&fltmgr.FLTFL_POST_OPERATION_DRAINING == 0 && df.queue(d) {
		df.r.k.Compute(df.postDelay)
		if df.postFinish {
			return fltmgr.FLT_POSTOP_FINISHED_PROCESSING
		}
		return fltmgr.FLT_POSTOP_MORE_PROCESSING_REQUIRED
	}
	return fltmgr.FLT_POSTOP_FINISHED_PROCESSING
}

func (df *deferredFilter) postCallback() fltmgr.PFLT_POST_OPERATION_CALLBACK {
	return func(d *fltmgr.FLT_CALLBACK_DATA, _ *fltmgr.FLT_RELATED_OBJECTS, ctx any, flags fltmgr.FLT_POST_OPERATION_FLAGS) fltmgr.FLT_POSTOP_CALLBACK_STATUS {
		return df.postOp(d, ctx, flags)
	}
}

// §1.3 pre-op recipe, §1.4: the pre-op posts the read and returns PENDING;
// the issuer sees STATUS_PENDING; a worker resumes it with
// SUCCESS_WITH_CALLBACK and a context that reaches the post-op.
func TestDeferredPreOpRecipe(t *testing.T) {
	r := newRig(t, rigOpts{})
	df := newDeferredFilter(r, false)
	var io *fltmgr.IoOp
	var final kernel.IO_STATUS_BLOCK
	r.thread("app", func() {
		r.fm.FltStartFiltering(df.f)
		io = r.vol.Issue(read(100))
		final = io.Wait()
	})
	require.NoError(t, r.run().Err)
	assert.Equal(t, kernel.STATUS_PENDING, io.Returned())
	assert.True(t, io.Irp().PendingReturned())
	assert.Equal(t, kernel.IO_STATUS_BLOCK{Status: kernel.STATUS_SUCCESS, Information: 100}, final)
	assert.Equal(t, []kernel.NTSTATUS{kernel.STATUS_SUCCESS}, df.statuses)
	require.Len(t, df.ranIn, 1)
	assert.True(t, strings.HasSuffix(df.ranIn[0], "at PASSIVE_LEVEL"), df.ranIn[0])
	assert.NotContains(t, df.ranIn[0], "app", "the routine runs in a system worker thread")
	require.Len(t, df.posts, 1)
	assert.Equal(t, "from worker", df.posts[0].ctx)
}

// §1.3 post-op recipe, §1.4, §5.4: the post-op posts and returns
// MORE_PROCESSING_REQUIRED; nothing more happens until the worker calls
// FltCompletePendedPostOperation.
func TestDeferredPostOpRecipe(t *testing.T) {
	r := newRig(t, rigOpts{})
	df := newDeferredFilter(r, true)
	var completedWhenWorkerRan []bool
	inner := df.routine
	var io *fltmgr.IoOp
	df.routine = func(item *fltmgr.FLT_DEFERRED_IO_WORKITEM, d *fltmgr.FLT_CALLBACK_DATA) {
		completedWhenWorkerRan = append(completedWhenWorkerRan, io.Completed())
		inner(item, d)
	}
	var final kernel.IO_STATUS_BLOCK
	r.thread("app", func() {
		r.fm.FltStartFiltering(df.f)
		io = r.vol.Issue(read(7))
		final = io.Wait()
	})
	require.NoError(t, r.run().Err)
	assert.Equal(t, []bool{false}, completedWhenWorkerRan, "completion waits for FltCompletePendedPostOperation")
	assert.Equal(t, kernel.STATUS_SUCCESS, final.Status)
	assert.Equal(t, 1, r.fm.Hits(fltmgr.MarkPostPended))
}

// §1.4, §5.4: the documented post-op recipe races with itself: the
// deferred work item can run on another processor and call
// FltCompletePendedPostOperation before the post-op has returned
// MORE_PROCESSING_REQUIRED. That is legal (the completion resumes when the
// post-op returns), not a double completion; a post-op that then returns
// FINISHED_PROCESSING has completed an operation it never pended: 0x44.
func TestPostOpCompletedBeforeItReturns(t *testing.T) {
	two := kernel.DefaultConfig()
	two.Processors = 2
	for _, finish := range []bool{false, true} {
		r := newRig(t, rigOpts{kcfg: &two})
		df := newDeferredFilter(r, true)
		df.postDelay, df.postFinish = 200*des.Microsecond, finish
		var final kernel.IO_STATUS_BLOCK
		r.thread("app", func() {
			r.fm.FltStartFiltering(df.f)
			final = r.vol.Issue(read(7)).Wait()
		})
		out := r.run()
		if finish {
			var bc *kernel.BugCheck
			require.ErrorAs(t, out.Err, &bc)
			assert.Equal(t, kernel.MULTIPLE_IRP_COMPLETE_REQUESTS, bc.Code)
			continue
		}
		require.NoError(t, out.Err)
		assert.Equal(t, kernel.STATUS_SUCCESS, final.Status)
		assert.Equal(t, 1, r.fm.Hits(fltmgr.MarkPostCompletedBeforePended), "the work item completed it while the post-op ran")
		require.Len(t, df.ranIn, 1)
	}
}

// §1.3, §5.2: FltQueueDeferredIoWorkItem refuses paging I/O, a thread with
// a TopLevelIrp and non-IRP operations with
// STATUS_FLT_NOT_SAFE_TO_POST_OPERATION (0xC01C0006); the pre-op then
// passes the operation down itself.
func TestDeferredWorkItemNotSafe(t *testing.T) {
	cases := []struct {
		name string
		req  fltmgr.IoRequest
	}{
		{"paging I/O", fltmgr.IoRequest{MajorFunction: fltmgr.IRP_MJ_READ, IrpFlags: kernel.IRP_PAGING_IO}},
		{"synchronous paging I/O", fltmgr.IoRequest{MajorFunction: fltmgr.IRP_MJ_READ, IrpFlags: kernel.IRP_SYNCHRONOUS_PAGING_IO}},
		{"TopLevelIrp set", fltmgr.IoRequest{MajorFunction: fltmgr.IRP_MJ_READ, TopLevel: true}},
		{"fast I/O", fltmgr.IoRequest{MajorFunction: fltmgr.IRP_MJ_READ, FastIo: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, rigOpts{})
			df := newDeferredFilter(r, false)
			var final kernel.IO_STATUS_BLOCK
			r.thread("app", func() {
				r.fm.FltStartFiltering(df.f)
				final = r.vol.Send(tc.req)
			})
			require.NoError(t, r.run().Err, "no leak: the filter freed the refused item")
			assert.Equal(t, []kernel.NTSTATUS{kernel.STATUS_FLT_NOT_SAFE_TO_POST_OPERATION}, df.statuses)
			assert.Equal(t, kernel.NTSTATUS(0xC01C0006), df.statuses[0])
			assert.Equal(t, kernel.STATUS_SUCCESS, final.Status)
			assert.Empty(t, df.ranIn)
			assert.Equal(t, 1, r.fm.Hits(fltmgr.MarkDeferredNotSafe))
		})
	}
}

// §1.4: completing a pended operation before its pre-op has returned
// FLT_PREOP_PENDING is legal: the completion takes effect when it returns.
func TestCompletionBeforePreOpReturnsPending(t *testing.T) {
	r := newRig(t, rigOpts{})
	s := newSimpleFilter(r, "eager", 100, false, nil)
	s.pre = func(d *fltmgr.FLT_CALLBACK_DATA, _ *any) fltmgr.FLT_PREOP_CALLBACK_STATUS {
		d.IoStatus = kernel.IO_STATUS_BLOCK{Status: kernel.STATUS_FILE_CLOSED}
		r.fm.FltCompletePendedPreOperation(d, fltmgr.FLT_PREOP_COMPLETE, nil)
		return fltmgr.FLT_PREOP_PENDING
	}
	io, out := r.startAndIssue(s.f, read(1))
	require.NoError(t, out.Err)
	assert.Equal(t, kernel.STATUS_FILE_CLOSED, io.Returned())
	assert.True(t, io.Completed())
	assert.Equal(t, 1, r.fm.Hits(fltmgr.MarkCompletedBeforePending))
}

// §6.4, §1.4: completing a pended operation twice is a double IRP
// completion: MULTIPLE_IRP_COMPLETE_REQUESTS 0x44.
func TestCompletePendedTwiceIs0x44(t *testing.T) {
	for _, post := range []bool{false, true} {
		r := newRig(t, rigOpts{})
		df := newDeferredFilter(r, post)
		df.routine = func(item *fltmgr.FLT_DEFERRED_IO_WORKITEM, d *fltmgr.FLT_CALLBACK_DATA) {
			for range 2 {
				if post {
					r.fm.FltCompletePendedPostOperation(d)
				} else {
					d.IoStatus.Status = kernel.STATUS_SUCCESS
					r.fm.FltCompletePendedPreOperation(d, fltmgr.FLT_PREOP_COMPLETE, nil)
				}
			}
		}
		_, out := r.startAndIssue(df.f, read(1))
		bc := requireBugCheck(t, out, kernel.MULTIPLE_IRP_COMPLETE_REQUESTS, 1)
		// The report names the routine the filter called twice, and who
		// completed the operation first (it named IoCompleteRequest,
		// which the filter never calls).
		api := map[bool]string{false: "FltCompletePendedPreOperation", true: "FltCompletePendedPostOperation"}[post]
		assert.Equal(t, api, bc.API)
		assert.Contains(t, bc.Detail, "was already completed, first by worker.")
	}
}

// §1.4: FltCompletePendedPreOperation may be called at DISPATCH_LEVEL only
// with FLT_PREOP_COMPLETE; otherwise ≤ APC_LEVEL.
func TestCompletePendedPreOperationIrql(t *testing.T) {
	for _, status := range []fltmgr.FLT_PREOP_CALLBACK_STATUS{fltmgr.FLT_PREOP_COMPLETE, fltmgr.FLT_PREOP_SUCCESS_NO_CALLBACK} {
		r := newRig(t, rigOpts{})
		c := newCbdqFilter(r, spinLocked)
		queued := r.gate("queued")
		r.thread("app", func() {
			c.start()
			r.vol.Issue(read(1))
			r.open(queued)
		})
		r.thread("worker", func() {
			r.wait(queued)
			d := r.fm.FltCbdqRemoveNextIo(&c.q, nil)
			old := r.k.KeRaiseIrql(kernel.DISPATCH_LEVEL)
			d.IoStatus.Status = kernel.STATUS_SUCCESS
			r.fm.FltCompletePendedPreOperation(d, status, nil)
			r.k.KeLowerIrql(old)
		})
		out := r.run()
		if status == fltmgr.FLT_PREOP_COMPLETE {
			require.NoError(t, out.Err, "COMPLETE is legal at DISPATCH_LEVEL")
			continue
		}
		bc := requireBugCheck(t, out, kernel.IRQL_NOT_LESS_OR_EQUAL, 0)
		assert.Equal(t, "FltCompletePendedPreOperation", bc.API)
	}
}

// §1.7, §2.1, §7.3: FltSetCancelCompletion arms a cancel callback; the
// owner decides with FltClearCancelCompletion: STATUS_CANCELLED means the
// callback has it, STATUS_SUCCESS means the owner does.
func TestCancelCompletionOwnership(t *testing.T) {
	for _, cancel := range []bool{false, true} {
		r := newRig(t, rigOpts{})
		df := buildDeferredFilter(r, false)
		var cleared []kernel.NTSTATUS
		var callbackRan bool
		cancelled := r.gate("cancelled")
		df.routine = func(item *fltmgr.FLT_DEFERRED_IO_WORKITEM, d *fltmgr.FLT_CALLBACK_DATA) {
			if cancel {
				r.wait(cancelled)
			}
			st := r.fm.FltClearCancelCompletion(d)
			cleared = append(cleared, st)
			if st == kernel.STATUS_SUCCESS {
				r.fm.FltCompletePendedPreOperation(d, fltmgr.FLT_PREOP_SUCCESS_NO_CALLBACK, nil)
			}
			r.fm.FltFreeDeferredIoWorkItem(item)
		}
		pre := df.pre
		df.f = r.register("nc", 200, &fltmgr.FLT_REGISTRATION{OperationRegistration: []fltmgr.FLT_OPERATION_REGISTRATION{{
			MajorFunction: fltmgr.IRP_MJ_READ,
			PreOperation: func(d *fltmgr.FLT_CALLBACK_DATA, o *fltmgr.FLT_RELATED_OBJECTS, c *any) fltmgr.FLT_PREOP_CALLBACK_STATUS {
				require.Equal(t, kernel.STATUS_SUCCESS, r.fm.FltSetCancelCompletion(d, func(d *fltmgr.FLT_CALLBACK_DATA) {
					callbackRan = true
					d.IoStatus.Status = kernel.STATUS_CANCELLED
					r.fm.FltCompletePendedPreOperation(d, fltmgr.FLT_PREOP_COMPLETE, nil)
				}))
				return pre(d, o, c)
			}}}})
		var final kernel.IO_STATUS_BLOCK
		r.thread("app", func() {
			r.fm.FltStartFiltering(df.f)
			io := r.vol.Issue(read(1))
			if cancel {
				assert.True(t, io.Cancel())
				r.open(cancelled)
			}
			final = io.Wait()
		})
		require.NoError(t, r.run().Err)
		assert.Equal(t, cancel, callbackRan)
		if cancel {
			assert.Equal(t, []kernel.NTSTATUS{kernel.STATUS_CANCELLED}, cleared)
			assert.Equal(t, kernel.STATUS_CANCELLED, final.Status)
		} else {
			assert.Equal(t, []kernel.NTSTATUS{kernel.STATUS_SUCCESS}, cleared)
			assert.Equal(t, kernel.STATUS_SUCCESS, final.Status)
		}
	}
}

// §2.7C: unlinking a callback data's QueueLinks twice is a corrupted list
// unlink, fast-failed as KERNEL_SECURITY_CHECK_FAILURE 0x139 P1=3.
func TestDoubleUnlinkIs0x139(t *testing.T) {
	r := newRig(t, rigOpts{})
	var head fltmgr.LIST_ENTRY
	k := r.k
	s := newSimpleFilter(r, "f", 100, false, func(d *fltmgr.FLT_CALLBACK_DATA, _ *any) fltmgr.FLT_PREOP_CALLBACK_STATUS {
		k.InitializeListHead(&head)
		k.InsertTailList(&head, &d.QueueLinks)
		assert.Same(t, d, fltmgr.CbdFromQueueLinks(head.Flink))
		assert.True(t, k.RemoveEntryList(&d.QueueLinks))
		k.RemoveEntryList(&d.QueueLinks)
		return fltmgr.FLT_PREOP_SUCCESS_NO_CALLBACK
	})
	_, out := r.startAndIssue(s.f, read(1))
	bc := requireBugCheck(t, out, fltmgr.KERNEL_SECURITY_CHECK_FAILURE, 3)
	assert.Contains(t, bc.Detail, "cbd ", "the report names the callback data the entry is in")
}

// §5.1: each kind of operation satisfies exactly one of the operation-kind
// macros, and only an IRP-based one has an IRP.
func TestOperationKindMacros(t *testing.T) {
	cases := []struct {
		name                string
		req                 fltmgr.IoRequest
		irp, fast, fsFilter bool
	}{
		{"IRP", read(1), true, false, false},
		{"fast I/O", fltmgr.IoRequest{MajorFunction: fltmgr.IRP_MJ_READ, FastIo: true}, false, true, false},
		{"FsFilter callback", fltmgr.IoRequest{MajorFunction: fltmgr.IRP_MJ_ACQUIRE_FOR_SECTION_SYNC}, false, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, rigOpts{})
			var got [3]bool
			s := newSimpleFilterFor(r, tc.req.MajorFunction, "f", 100, false, func(d *fltmgr.FLT_CALLBACK_DATA, _ *any) fltmgr.FLT_PREOP_CALLBACK_STATUS {
				got = [3]bool{fltmgr.FLT_IS_IRP_OPERATION(d), fltmgr.FLT_IS_FASTIO_OPERATION(d), fltmgr.FLT_IS_FS_FILTER_OPERATION(d)}
				return fltmgr.FLT_PREOP_SUCCESS_NO_CALLBACK
			})
			io, out := r.startAndIssue(s.f, tc.req)
			require.NoError(t, out.Err)
			assert.Equal(t, 1, s.pres)
			assert.Equal(t, [3]bool{tc.irp, tc.fast, tc.fsFilter}, got, "IRP, fast I/O, FsFilter")
			assert.Equal(t, tc.irp, io.Irp() != nil)
		})
	}
}

func TestConfigValidate(t *testing.T) {
	c := fltmgr.DefaultConfig()
	require.NoError(t, c.Validate())
	c.FsLatency, c.CompletionIrql = -1, kernel.IRQL(5)
	err := c.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "FsLatency")
	assert.Contains(t, err.Error(), "≤ DISPATCH_LEVEL")
	_, err = fltmgr.New(nil, nil, c)
	assert.Error(t, err)
}

func TestStatusCodes(t *testing.T) {
	// The exact NTSTATUS values the filter manager returns (§1.8).
	for _, c := range []struct {
		st   kernel.NTSTATUS
		want uint32
	}{
		{kernel.STATUS_FLT_NOT_SAFE_TO_POST_OPERATION, 0xC01C0006},
		{kernel.STATUS_FLT_DELETING_OBJECT, 0xC01C000B},
		{kernel.STATUS_FLT_CBDQ_DISABLED, 0xC01C000E},
		{kernel.STATUS_FLT_DO_NOT_ATTACH, 0xC01C000F},
		{kernel.STATUS_FLT_DO_NOT_DETACH, 0xC01C0010},
		{kernel.STATUS_FLT_DISALLOW_FAST_IO, 0xC01C0004},
		{kernel.STATUS_FLT_FILTER_NOT_READY, 0xC01C0008},
		{kernel.STATUS_CANCELLED, 0xC0000120},
		{kernel.STATUS_INVALID_PARAMETER, 0xC000000D},
	} {
		assert.Equal(t, c.want, uint32(c.st), c.st.String())
	}
	var names []string
	for s := fltmgr.FLT_PREOP_CALLBACK_STATUS(0); s <= 6; s++ {
		names = append(names, s.String())
	}
	assert.Equal(t, []string{"FLT_PREOP_SUCCESS_WITH_CALLBACK", "FLT_PREOP_SUCCESS_NO_CALLBACK", "FLT_PREOP_PENDING",
		"FLT_PREOP_DISALLOW_FASTIO", "FLT_PREOP_COMPLETE", "FLT_PREOP_SYNCHRONIZE", "FLT_PREOP_DISALLOW_FSFILTER_IO"},
		names, "enum values of §5.3")
}
