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

// genRig is a rig with three filters on C: "upper" (300), the initiator
// "mid" (200) and "lower" (100); upper and lower log their read callbacks
// in log, and the initiator's completion callback logs itself too.
type genRig struct {
	*rig
	mid *fltmgr.FLT_FILTER
	log []string
	// lowerPre, if set, is lower's read pre-op.
	lowerPre fltmgr.PFLT_PRE_OPERATION_CALLBACK
}

func newGenRig(t *testing.T, o rigOpts) *genRig {
	g := &genRig{rig: newRig(t, o)}
	for _, f := range []struct {
		name string
		alt  uint32
	}{{"upper", 300}, {"lower", 100}} {
		name := f.name
		reg := &fltmgr.FLT_REGISTRATION{OperationRegistration: []fltmgr.FLT_OPERATION_REGISTRATION{{
			MajorFunction: fltmgr.IRP_MJ_READ,
			PreOperation: func(d *fltmgr.FLT_CALLBACK_DATA, o *fltmgr.FLT_RELATED_OBJECTS, c *any) fltmgr.FLT_PREOP_CALLBACK_STATUS {
				g.log = append(g.log, name+" pre")
				if name == "lower" && g.lowerPre != nil {
					return g.lowerPre(d, o, c)
				}
				return fltmgr.FLT_PREOP_SUCCESS_WITH_CALLBACK
			},
			PostOperation: func(d *fltmgr.FLT_CALLBACK_DATA, _ *fltmgr.FLT_RELATED_OBJECTS, _ any, _ fltmgr.FLT_POST_OPERATION_FLAGS) fltmgr.FLT_POSTOP_CALLBACK_STATUS {
				g.log = append(g.log, name+" post")
				return fltmgr.FLT_POSTOP_FINISHED_PROCESSING
			}}}}
		g.register(name, f.alt, reg)
	}
	g.mid = g.register("mid", 200, &fltmgr.FLT_REGISTRATION{})
	return g
}

// start starts every filter (from a thread) and returns mid's instance.
func (g *genRig) start() *fltmgr.FLT_INSTANCE {
	for _, f := range g.fm.Filters() {
		g.fm.FltStartFiltering(f)
	}
	return g.fm.Volumes()[0].Instances()[1]
}

// allocRead allocates callback data for a 512-byte read from inst.
func (g *genRig) allocRead(inst *fltmgr.FLT_INSTANCE) *fltmgr.FLT_CALLBACK_DATA {
	var d *fltmgr.FLT_CALLBACK_DATA
	require.Equal(g.t, kernel.STATUS_SUCCESS, g.fm.FltAllocateCallbackData(inst, nil, &d))
	d.Iopb.MajorFunction = fltmgr.IRP_MJ_READ
	d.Iopb.Parameters.Length = 512
	return d
}

// completion is what a completion callback saw.
type completion struct {
	status kernel.NTSTATUS
	seen   postSeen
}

// REFERENCE §5.9: FltPerformAsynchronousIo sends the operation to the
// instances below the initiator only, and calls the completion callback
// after their post-ops wherever the file system completes it: inline
// (STATUS_SUCCESS, before the call returns), or later from its DPC at
// DISPATCH_LEVEL or its worker at PASSIVE_LEVEL (STATUS_PENDING). Freeing
// the data in the callback is legal.
func TestAsyncIoCompletesWhereTheFileSystemCompletes(t *testing.T) {
	for _, c := range []struct {
		how    int
		ret    kernel.NTSTATUS
		irql   kernel.IRQL
		dpc    bool
		thread string
	}{
		{queues.CompleteInline, kernel.STATUS_SUCCESS, kernel.DISPATCH_LEVEL, false, "filter"},
		{queues.CompleteFromDpc, kernel.STATUS_PENDING, kernel.DISPATCH_LEVEL, true, "dpc"},
		{queues.CompleteFromWorker, kernel.STATUS_PENDING, kernel.PASSIVE_LEVEL, false, "cbd 1 (irp 1 (flt io)) fs worker"},
	} {
		g := newGenRig(t, rigOpts{chooser: fsChooser(c.how)})
		var got []completion
		var ret kernel.NTSTATUS
		g.thread("filter", func() {
			d := g.allocRead(g.start())
			ret = g.fm.FltPerformAsynchronousIo(d, func(d *fltmgr.FLT_CALLBACK_DATA, ctx any) {
				g.log = append(g.log, ctx.(string))
				got = append(got, completion{d.IoStatus.Status, postSeen{g.k.KeGetCurrentIrql(), g.k.KeIsExecutingDpc(), g.threadName(), nil}})
				g.fm.FltFreeCallbackData(d) // legal from the callback on
			}, "callback")
		})
		require.NoError(t, g.run().Err, "choice %d", c.how)
		assert.Equal(t, c.ret, ret, "choice %d", c.how)
		assert.Equal(t, []string{"lower pre", "lower post", "callback"}, g.log, "only the instances below, post-ops first")
		require.Len(t, got, 1)
		assert.Equal(t, completion{kernel.STATUS_SUCCESS, postSeen{c.irql, c.dpc, c.thread, nil}}, got[0], "choice %d", c.how)
		assert.Equal(t, c.dpc, g.fm.Hits(fltmgr.MarkAsyncCallbackInDpc) == 1)
	}
}

// REFERENCE §5.9: a lower pre-op that completes the operation makes the
// call return STATUS_FLT_IO_COMPLETE; IRP_MJ_CREATE cannot be asynchronous
// (STATUS_FLT_INVALID_ASYNCHRONOUS_REQUEST) and the callback is called all
// the same.
func TestAsyncIoReturnStatuses(t *testing.T) {
	g := newGenRig(t, rigOpts{})
	g.lowerPre = func(d *fltmgr.FLT_CALLBACK_DATA, _ *fltmgr.FLT_RELATED_OBJECTS, _ *any) fltmgr.FLT_PREOP_CALLBACK_STATUS {
		d.IoStatus = kernel.IO_STATUS_BLOCK{Status: kernel.STATUS_ACCESS_VIOLATION}
		return fltmgr.FLT_PREOP_COMPLETE
	}
	var rets, seen []kernel.NTSTATUS
	g.thread("filter", func() {
		inst := g.start()
		for _, major := range []fltmgr.UCHAR{fltmgr.IRP_MJ_READ, fltmgr.IRP_MJ_CREATE} {
			d := g.allocRead(inst)
			d.Iopb.MajorFunction = major
			rets = append(rets, g.fm.FltPerformAsynchronousIo(d, func(d *fltmgr.FLT_CALLBACK_DATA, _ any) {
				seen = append(seen, d.IoStatus.Status)
			}, nil))
			g.fm.FltFreeCallbackData(d)
		}
	})
	require.NoError(t, g.run().Err)
	assert.Equal(t, []kernel.NTSTATUS{kernel.STATUS_FLT_IO_COMPLETE, kernel.STATUS_FLT_INVALID_ASYNCHRONOUS_REQUEST}, rets)
	assert.Equal(t, []kernel.NTSTATUS{kernel.STATUS_ACCESS_VIOLATION, kernel.STATUS_FLT_INVALID_ASYNCHRONOUS_REQUEST}, seen)
}

// REFERENCE §5.9: FltPerformSynchronousIo waits for the completion, even
// one that comes from the file system's DPC.
func TestPerformSynchronousIo(t *testing.T) {
	for _, how := range []int{queues.CompleteInline, queues.CompleteFromDpc} {
		g := newGenRig(t, rigOpts{chooser: fsChooser(how)})
		var st kernel.IO_STATUS_BLOCK
		g.thread("filter", func() {
			d := g.allocRead(g.start())
			g.fm.FltPerformSynchronousIo(d)
			st = d.IoStatus
			g.fm.FltFreeCallbackData(d)
		})
		require.NoError(t, g.run().Err)
		assert.Equal(t, kernel.IO_STATUS_BLOCK{Status: kernel.STATUS_SUCCESS, Information: 512}, st, "choice %d", how)
	}
}

// REFERENCE §5.9: the callback data belongs to the filter manager until
// the callback is called. Freed before, the completion touches freed pool:
// 0xD5, in the file system's DPC. Never freed, it is a leak.
func TestCallbackDataFreedInFlightOrLeaked(t *testing.T) {
	g := newGenRig(t, rigOpts{chooser: fsChooser(queues.CompleteFromDpc)})
	g.thread("filter", func() {
		d := g.allocRead(g.start())
		require.Equal(t, kernel.STATUS_PENDING, g.fm.FltPerformAsynchronousIo(d, func(*fltmgr.FLT_CALLBACK_DATA, any) {}, nil))
		g.fm.FltFreeCallbackData(d)
	})
	bc := requireCode(t, g.run(), kernel.DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL)
	assert.Contains(t, bc.Error(), "file system completing the callback data")
	assert.Equal(t, 1, g.fm.Hits(fltmgr.MarkFreedInFlight))

	g = newGenRig(t, rigOpts{})
	g.thread("filter", func() {
		g.fm.FltPerformAsynchronousIo(g.allocRead(g.start()), func(*fltmgr.FLT_CALLBACK_DATA, any) {}, nil)
	})
	var leak *kernel.Leak
	require.ErrorAs(t, g.run().Err, &leak)
	assert.Contains(t, leak.Error(), `tag "FMcd"`)
	assert.Regexp(t, `tag "FMcd" \(\d+ bytes\) never freed: FLT_CALLBACK_DATA \S.* allocated by FltAllocateCallbackData in .* for instance \S+, without FltFreeCallbackData`, leak.Error())
}

// requireCode requires a bug check with code (P1, a pool block's number,
// depends on what else the run allocated).
func requireCode(t *testing.T, out des.Outcome, code uint32) *kernel.BugCheck {
	t.Helper()
	var bc *kernel.BugCheck
	require.ErrorAs(t, out.Err, &bc, "want bug check 0x%X", code)
	assert.Equal(t, code, bc.Code, bc.Error())
	return bc
}

// REFERENCE §5.9: a cancel is a request. On a file system whose pended
// requests are not cancellable FltCancelIo returns FALSE and the read
// completes normally later; on one whose are (CancelPendedIo) it returns
// TRUE and the request completes with STATUS_CANCELLED through the
// callback, inside the FltCancelIo call, and the file system's own
// completion does not come a second time.
func TestCancelIoIsARequest(t *testing.T) {
	for _, cancellable := range []bool{false, true} {
		g := newGenRig(t, rigOpts{chooser: fsChooser(queues.CompleteFromDpc)})
		g.vol.CancelPendedIo = cancellable
		var got []completion
		var cancelled bool
		issued := g.gate("issued")
		var d *fltmgr.FLT_CALLBACK_DATA
		g.thread("filter", func() {
			d = g.allocRead(g.start())
			g.fm.FltPerformAsynchronousIo(d, func(d *fltmgr.FLT_CALLBACK_DATA, _ any) {
				got = append(got, completion{d.IoStatus.Status, postSeen{g.k.KeGetCurrentIrql(), g.k.KeIsExecutingDpc(), g.threadName(), nil}})
			}, nil)
			g.open(issued)
		})
		g.thread("canceller", func() {
			g.wait(issued)
			cancelled = g.fm.FltCancelIo(d)
			g.k.KeWaitForSingleObject(d.Irp().Done(), kernel.Infinite)
			assert.False(t, g.fm.FltCancelIo(d), "after completion: FALSE while the data is allocated")
			g.fm.FltFreeCallbackData(d)
		})
		require.NoError(t, g.run().Err, "cancellable %v", cancellable)
		assert.Equal(t, cancellable, cancelled)
		require.Len(t, got, 1, "one completion either way")
		want := completion{kernel.STATUS_SUCCESS, postSeen{kernel.DISPATCH_LEVEL, true, "dpc", nil}}
		if cancellable {
			want = completion{kernel.STATUS_CANCELLED, postSeen{kernel.PASSIVE_LEVEL, false, "canceller", nil}}
		}
		assert.Equal(t, want, got[0], "cancellable %v", cancellable)
		assert.Equal(t, 1, g.fm.Hits(fltmgr.MarkCancelAfterCompletion))
	}
}

// REFERENCE §5.9: data allocated but not sent yet has nothing to cancel:
// FALSE, and it is not the cancel-after-completion race.
func TestCancelIoBeforeSend(t *testing.T) {
	g := newGenRig(t, rigOpts{})
	var got bool
	g.thread("filter", func() {
		d := g.allocRead(g.start())
		got = g.fm.FltCancelIo(d)
		g.fm.FltFreeCallbackData(d)
	})
	require.NoError(t, g.run().Err)
	assert.False(t, got)
	assert.Zero(t, g.fm.Hits(fltmgr.MarkCancelAfterCompletion))
}

// REFERENCE §5.9: cancelling after the callback has run and the filter
// freed the data — the classic cancel-after-completion race — touches
// freed pool: 0xD5 in FltCancelIo.
func TestCancelAfterFreeIsUseAfterFree(t *testing.T) {
	g := newGenRig(t, rigOpts{})
	g.thread("filter", func() {
		d := g.allocRead(g.start())
		g.fm.FltPerformAsynchronousIo(d, func(d *fltmgr.FLT_CALLBACK_DATA, _ any) { g.fm.FltFreeCallbackData(d) }, nil)
		g.fm.FltCancelIo(d)
	})
	bc := requireCode(t, g.run(), kernel.DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL)
	assert.Equal(t, "memory access", bc.API)
	assert.Contains(t, bc.Error(), "FltCancelIo reading the callback data")
}

// REFERENCE §5.9: the rules Filter Verifier reports — data sent again while
// in flight, data freed that the filter did not allocate — and the IRQL of
// FltPerformAsynchronousIo (PASSIVE_LEVEL unless paging I/O).
func TestFilterInitiatedIoContracts(t *testing.T) {
	g := newGenRig(t, rigOpts{chooser: fsChooser(queues.CompleteFromDpc)})
	g.thread("filter", func() {
		d := g.allocRead(g.start())
		g.fm.FltPerformAsynchronousIo(d, func(*fltmgr.FLT_CALLBACK_DATA, any) {}, nil)
		g.fm.FltPerformAsynchronousIo(d, func(*fltmgr.FLT_CALLBACK_DATA, any) {}, nil)
	})
	requireViolation(t, g.run(), "must not be sent again before its callback ran")

	g = newGenRig(t, rigOpts{})
	io, out := g.startAndIssue(g.mid, read(1))
	require.NoError(t, out.Err)
	g.thread("filter", func() { g.fm.FltFreeCallbackData(io.Data()) })
	requireViolation(t, g.run(), "only callback data from FltAllocateCallbackData")

	for _, paging := range []bool{false, true} {
		g = newGenRig(t, rigOpts{})
		g.thread("filter", func() {
			d := g.allocRead(g.start())
			if paging {
				d.Iopb.IrpFlags = kernel.IRP_PAGING_IO
			}
			old := g.k.KeRaiseIrql(kernel.APC_LEVEL)
			g.fm.FltPerformAsynchronousIo(d, func(d *fltmgr.FLT_CALLBACK_DATA, _ any) { g.fm.FltFreeCallbackData(d) }, nil)
			g.k.KeLowerIrql(old)
		})
		out := g.run()
		if paging {
			require.NoError(t, out.Err, "paging I/O may be sent at APC_LEVEL")
			continue
		}
		assert.Equal(t, "FltPerformAsynchronousIo", requireBugCheck(t, out, kernel.IRQL_NOT_LESS_OR_EQUAL, 0).API)
	}
}

// REFERENCE §5.9, §1.7: a filter cancels an operation it pended itself:
// FltCancelIo calls the routine set with FltSetCancelCompletion (TRUE),
// which completes the operation as cancelled; a second FltCancelIo, after
// the completion, returns FALSE.
func TestCancelIoOfAPendedOperation(t *testing.T) {
	r := newRig(t, rigOpts{})
	var pended *fltmgr.FLT_CALLBACK_DATA
	f := r.register("timeout", 200, &fltmgr.FLT_REGISTRATION{OperationRegistration: []fltmgr.FLT_OPERATION_REGISTRATION{{
		MajorFunction: fltmgr.IRP_MJ_READ,
		PreOperation: func(d *fltmgr.FLT_CALLBACK_DATA, _ *fltmgr.FLT_RELATED_OBJECTS, _ *any) fltmgr.FLT_PREOP_CALLBACK_STATUS {
			require.Equal(t, kernel.STATUS_SUCCESS, r.fm.FltSetCancelCompletion(d, func(d *fltmgr.FLT_CALLBACK_DATA) {
				d.IoStatus = kernel.IO_STATUS_BLOCK{Status: kernel.STATUS_CANCELLED}
				r.fm.FltCompletePendedPreOperation(d, fltmgr.FLT_PREOP_COMPLETE, nil)
			}))
			pended = d
			return fltmgr.FLT_PREOP_PENDING
		}}}})
	var first, second bool
	var final kernel.IO_STATUS_BLOCK
	r.thread("app", func() {
		r.fm.FltStartFiltering(f)
		io := r.vol.Issue(read(1))
		first = r.fm.FltCancelIo(pended) // the filter's timeout fires
		final = io.Wait()
		second = r.fm.FltCancelIo(pended)
	})
	require.NoError(t, r.run().Err)
	assert.True(t, first)
	assert.False(t, second)
	assert.Equal(t, kernel.STATUS_CANCELLED, final.Status)
	assert.Equal(t, 1, r.fm.Hits(fltmgr.MarkCancelAfterCompletion))
}

// REFERENCE §5.3: a read that a filter synchronizes holds its issuer inside
// Issue; another thread, handed the operation through IoRequest.Issued,
// cancels its IRP while the file system has it pended (cancellably), and
// the issuer comes back with STATUS_CANCELLED after the post-op ran in its
// own thread. Without Issued no other thread could reach the operation.
func TestCancelWhileSynchronized(t *testing.T) {
	g := newGenRig(t, rigOpts{chooser: fsChooser(queues.CompleteFromDpc)})
	g.vol.CancelPendedIo = true
	g.lowerPre = func(*fltmgr.FLT_CALLBACK_DATA, *fltmgr.FLT_RELATED_OBJECTS, *any) fltmgr.FLT_PREOP_CALLBACK_STATUS {
		return fltmgr.FLT_PREOP_SYNCHRONIZE
	}
	issued := g.gate("issued")
	var op *fltmgr.IoOp
	var ret kernel.NTSTATUS
	var st kernel.IO_STATUS_BLOCK
	var issuedBeforePreOps []string
	g.thread("app", func() {
		g.start()
		io := g.vol.Issue(fltmgr.IoRequest{MajorFunction: fltmgr.IRP_MJ_READ, Length: 512, Tag: "read",
			Issued: func(o *fltmgr.IoOp) {
				issuedBeforePreOps = append([]string(nil), g.log...)
				op = o
				g.open(issued)
			}})
		ret, st = io.Returned(), io.IoStatus()
	})
	var cancelled bool
	g.thread("canceller", func() {
		g.wait(issued)
		g.k.KeDelayExecutionThread(20 * des.Microsecond) // the file system has pended it by then
		require.False(t, op.Completed())
		cancelled = op.Cancel()
	})
	require.NoError(t, g.run().Err)
	assert.Empty(t, issuedBeforePreOps, "Issued comes before any pre-op")
	assert.True(t, cancelled, "the file system's cancel routine ran")
	assert.Equal(t, kernel.STATUS_CANCELLED, ret, "Issue returned only once the synchronized read completed")
	assert.Equal(t, kernel.STATUS_CANCELLED, st.Status)
	assert.Equal(t, []string{"upper pre", "lower pre", "lower post", "upper post"}, g.log)
	assert.Equal(t, 1, g.fm.Hits(fltmgr.MarkSynchronized))
}
