package fltmgr_test

// FltCbdq* on top of IoCsq (REFERENCE §1.5, §2, §6.1, §6.2, §6.14, §6.15).

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues"
	"github.com/wqsim/wqsim/queues/fltmgr"
)

// cbdqResult is what a race case observed.
type cbdqResult struct {
	io        *fltmgr.IoOp
	irp       *kernel.IRP // captured in the pre-op
	final     kernel.IO_STATUS_BLOCK
	cancelled bool // what IoCancelIrp returned
	removed   []*fltmgr.FLT_CALLBACK_DATA
	drained   int
}

// cbdqRace is one forced interleaving of a read pended in a cbdq.
type cbdqRace struct {
	name    string
	section string
	setup   func(r *rig, c *cbdqFilter, res *cbdqResult)
	want    func(t *testing.T, order queues.CsqOrder, r *rig, c *cbdqFilter, res *cbdqResult)
}

// appIssues issues one read in a thread named app, captures its IRP in the
// pre-op, opens issued once the issuing call returned, and waits for it.
func appIssues(r *rig, c *cbdqFilter, res *cbdqResult, issued *kernel.Cell) {
	prev := c.beforeInsert
	c.beforeInsert = func(d *fltmgr.FLT_CALLBACK_DATA) {
		res.irp = d.Irp()
		if prev != nil {
			prev(d)
		}
	}
	r.thread("app", func() {
		c.start()
		res.io = r.vol.Issue(read(512))
		if issued != nil {
			r.open(issued)
		}
		res.final = res.io.Wait()
	})
}

// canceller cancels the read's IRP once start is open, then runs then.
func canceller(r *rig, res *cbdqResult, start *kernel.Cell, then func()) {
	r.thread("canceller", func() {
		r.wait(start)
		res.cancelled = r.k.IoCancelIrp(res.irp)
		if then != nil {
			then()
		}
	})
}

func pause(r *rig, reached, resume *kernel.Cell) func() {
	return func() {
		r.open(reached)
		r.wait(resume)
	}
}

func wantCancelledOnceBy(t *testing.T, c *cbdqFilter, res *cbdqResult, by string) {
	t.Helper()
	assert.Equal(t, []string{by}, c.cancelledBy, "exactly one CompleteCanceledIo, by the party that owned the cancel (§2.1)")
	assert.Equal(t, kernel.STATUS_CANCELLED, res.final.Status)
	assert.True(t, res.io.Completed())
}

var cbdqRaces = []cbdqRace{
	{
		name: "cancel before insert: completed inside the insert, which still succeeds", section: "§1.5 issue #56, §2.2, §1.4",
		setup: func(r *rig, c *cbdqFilter, res *cbdqResult) {
			reached, resume := r.gate("reached"), r.gate("resume")
			c.beforeInsert = func(*fltmgr.FLT_CALLBACK_DATA) { pause(r, reached, resume)() }
			appIssues(r, c, res, nil)
			canceller(r, res, reached, func() { r.open(resume) })
		},
		want: func(t *testing.T, _ queues.CsqOrder, r *rig, c *cbdqFilter, res *cbdqResult) {
			wantCancelledOnceBy(t, c, res, "app")
			assert.False(t, res.cancelled, "no cancel routine yet")
			assert.Equal(t, []kernel.NTSTATUS{kernel.STATUS_SUCCESS}, c.inserts)
			assert.Equal(t, kernel.STATUS_CANCELLED, res.io.Returned(), "completed before the issuing call returned")
			assert.Equal(t, 1, r.fm.Hits(fltmgr.MarkCbdqInsertCancelled))
			assert.Equal(t, 1, r.fm.Hits(fltmgr.MarkCompletedBeforePending), "CompleteCanceledIo ran inside the pre-op (§1.4)")
		},
	},
	{
		name: "cancel between set routine and test Cancel", section: "§2.2 step 7, §6.1",
		setup: func(r *rig, c *cbdqFilter, res *cbdqResult) {
			reached, resume := r.gate("reached"), r.gate("resume")
			c.hooks[queues.CsqInsertSetRoutine] = pause(r, reached, resume)
			c.hooks[queues.CsqCancelLocking] = func() { r.open(resume) }
			appIssues(r, c, res, nil)
			canceller(r, res, reached, nil)
		},
		want: func(t *testing.T, _ queues.CsqOrder, r *rig, c *cbdqFilter, res *cbdqResult) {
			wantCancelledOnceBy(t, c, res, "canceller")
			assert.True(t, res.cancelled)
			assert.Equal(t, []kernel.NTSTATUS{kernel.STATUS_SUCCESS}, c.inserts)
			assert.Equal(t, 1, c.q.Csq.Hits(queues.CsqMarkCancelRacedInsert))
		},
	},
	{
		name: "cancel vs remove-next: remove skips, the cancel routine completes", section: "§2.5, §6.2",
		setup: func(r *rig, c *cbdqFilter, res *cbdqResult) {
			issued, reached, resume := r.gate("issued"), r.gate("reached"), r.gate("resume")
			appIssues(r, c, res, issued)
			c.hooks[queues.CsqRemoveNextPeeked] = pause(r, reached, resume)
			c.hooks[queues.CsqCancelLocking] = func() { r.open(resume) }
			r.thread("worker", func() {
				r.wait(issued)
				res.removed = append(res.removed, r.fm.FltCbdqRemoveNextIo(&c.q, nil))
			})
			canceller(r, res, reached, nil)
		},
		want: func(t *testing.T, _ queues.CsqOrder, r *rig, c *cbdqFilter, res *cbdqResult) {
			wantCancelledOnceBy(t, c, res, "canceller")
			assert.Equal(t, []*fltmgr.FLT_CALLBACK_DATA{nil}, res.removed)
			assert.Equal(t, 1, c.q.Csq.Hits(queues.CsqMarkRemoveSkippedCancelled))
		},
	},
	{
		name: "cancel vs remove: NULL, and a second removal is NULL too", section: "§2.4, §1.5 issue #55",
		setup: func(r *rig, c *cbdqFilter, res *cbdqResult) {
			issued, reached, resume, cancelled := r.gate("issued"), r.gate("reached"), r.gate("resume"), r.gate("cancelled")
			appIssues(r, c, res, issued)
			c.hooks[queues.CsqRemoveLocked] = pause(r, reached, resume)
			c.hooks[queues.CsqCancelLocking] = func() { r.open(resume) }
			r.thread("worker", func() {
				r.wait(issued)
				tok := res.io.Data().QueueContext[0].(*fltmgr.FLT_CALLBACK_DATA_QUEUE_IO_CONTEXT)
				res.removed = append(res.removed, r.fm.FltCbdqRemoveIo(&c.q, tok))
				r.wait(cancelled)
				res.removed = append(res.removed, r.fm.FltCbdqRemoveIo(&c.q, tok))
			})
			canceller(r, res, reached, func() { r.open(cancelled) })
		},
		want: func(t *testing.T, _ queues.CsqOrder, r *rig, c *cbdqFilter, res *cbdqResult) {
			wantCancelledOnceBy(t, c, res, "canceller")
			assert.Equal(t, []*fltmgr.FLT_CALLBACK_DATA{nil, nil}, res.removed)
		},
	},
	{
		name: "disable before the insert locks: refused, the caller keeps the data", section: "§1.5, §7.1 step 2",
		setup: func(r *rig, c *cbdqFilter, res *cbdqResult) {
			reached, resume := r.gate("reached"), r.gate("resume")
			c.beforeInsert = func(*fltmgr.FLT_CALLBACK_DATA) { pause(r, reached, resume)() }
			appIssues(r, c, res, nil)
			r.thread("teardown", func() {
				r.wait(reached)
				r.fm.FltCbdqDisable(&c.q)
				r.open(resume)
			})
		},
		want: func(t *testing.T, order queues.CsqOrder, r *rig, c *cbdqFilter, res *cbdqResult) {
			assert.Equal(t, []kernel.NTSTATUS{kernel.STATUS_FLT_CBDQ_DISABLED}, c.inserts)
			assert.Equal(t, kernel.NTSTATUS(0xC01C000E), c.inserts[0])
			assert.Equal(t, kernel.STATUS_SUCCESS, res.final.Status, "passed down by the pre-op")
			assert.Equal(t, kernel.STATUS_SUCCESS, res.io.Returned())
			assert.Empty(t, c.cancelledBy)
			assert.Equal(t, 1, r.fm.Hits(fltmgr.MarkCbdqDisabledInsert))
			// ReactOS marks the IRP pending before the insert callback fails.
			assert.Equal(t, order == queues.CsqOrderReactOS, res.irp.PendingReturned())
		},
	},
	{
		name: "disable while the insert holds the lock: inserted, then drained", section: "§1.5, §5.5 item 2",
		setup: func(r *rig, c *cbdqFilter, res *cbdqResult) {
			reached, resume := r.gate("reached"), r.gate("resume")
			c.hooks[queues.CsqInsertCallback] = pause(r, reached, resume)
			appIssues(r, c, res, nil)
			r.thread("teardown", func() {
				r.wait(reached)
				r.open(resume)
				r.fm.FltCbdqDisable(&c.q) // waits for the insert to release the lock
				for c.completeNext() != nil {
					res.drained++
				}
			})
		},
		want: func(t *testing.T, _ queues.CsqOrder, r *rig, c *cbdqFilter, res *cbdqResult) {
			assert.Equal(t, []kernel.NTSTATUS{kernel.STATUS_SUCCESS}, c.inserts)
			assert.Equal(t, 1, res.drained)
			assert.True(t, c.q.Disabled())
			assert.Equal(t, kernel.STATUS_SUCCESS, res.final.Status)
			assert.Empty(t, c.cancelledBy)
		},
	},
}

// TestCbdqRaces forces each interleaving with rendezvous on two processors,
// for both IoCsq step orders and both lock kinds, and checks exactly-once
// completion and which party completed (§2.2–§2.5 through FltCbdq*).
func TestCbdqRaces(t *testing.T) {
	for _, tc := range cbdqRaces {
		for _, order := range []queues.CsqOrder{queues.CsqOrderMicrosoft, queues.CsqOrderReactOS} {
			for _, lock := range []lockKind{spinLocked, mutexLocked} {
				t.Run(fmt.Sprintf("%s/%v/%v", tc.name, order, lock), func(t *testing.T) {
					fcfg := fltmgr.DefaultConfig()
					fcfg.CsqOrder = order
					r := newRig(t, rigOpts{fcfg: &fcfg})
					c := newCbdqFilter(r, lock)
					res := &cbdqResult{}
					tc.setup(r, c, res)
					require.NoError(t, r.run().Err, tc.section)
					assert.Equal(t, order, c.q.Csq.Order)
					tc.want(t, order, r, c, res)
					assert.Empty(t, c.hooks, "every forced interleaving point was reached")
				})
			}
		}
	}
}

// §1.5: FltCbdqInsertIo's statuses — STATUS_FLT_CBDQ_DISABLED on a
// disabled queue (caller keeps the data), STATUS_INVALID_PARAMETER for
// non-IRP data, and InsertIo's own success status (STATUS_PENDING) passed
// through; FltCbdqEnable re-enables.
func TestCbdqInsertStatuses(t *testing.T) {
	t.Run("disabled, then enabled", func(t *testing.T) {
		r := newRig(t, rigOpts{})
		c := newCbdqFilter(r, mutexLocked)
		var first, second kernel.IO_STATUS_BLOCK
		r.thread("app", func() {
			c.start()
			r.fm.FltCbdqDisable(&c.q)
			first = r.vol.Send(read(1))
			r.fm.FltCbdqEnable(&c.q)
			io := r.vol.Issue(read(2))
			assert.Equal(t, kernel.STATUS_PENDING, io.Returned())
			c.completeNext()
			second = io.Wait()
		})
		require.NoError(t, r.run().Err)
		assert.Equal(t, []kernel.NTSTATUS{kernel.STATUS_FLT_CBDQ_DISABLED, kernel.STATUS_SUCCESS}, c.inserts)
		assert.Equal(t, kernel.STATUS_SUCCESS, first.Status)
		assert.Equal(t, kernel.STATUS_SUCCESS, second.Status)
	})
	t.Run("not IRP-based", func(t *testing.T) {
		r := newRig(t, rigOpts{})
		c := newCbdqFilter(r, spinLocked)
		c.insertFastIo = true
		var st kernel.IO_STATUS_BLOCK
		r.thread("app", func() {
			c.start()
			st = r.vol.Send(fltmgr.IoRequest{MajorFunction: fltmgr.IRP_MJ_READ, FastIo: true, Length: 5})
		})
		require.NoError(t, r.run().Err)
		assert.Equal(t, []kernel.NTSTATUS{kernel.STATUS_INVALID_PARAMETER}, c.inserts)
		assert.Equal(t, kernel.STATUS_SUCCESS, st.Status)
	})
	t.Run("InsertIo returns STATUS_PENDING", func(t *testing.T) {
		r := newRig(t, rigOpts{})
		c := newCbdqFilter(r, spinLocked)
		c.insertReturns = kernel.STATUS_PENDING
		var final kernel.IO_STATUS_BLOCK
		r.thread("app", func() {
			c.start()
			io := r.vol.Issue(read(9))
			c.completeNext()
			final = io.Wait()
		})
		require.NoError(t, r.run().Err)
		assert.Equal(t, []kernel.NTSTATUS{kernel.STATUS_PENDING}, c.inserts)
		assert.Equal(t, kernel.STATUS_SUCCESS, final.Status)
	})
}

// §1.5, §6.14: a cbdq locked by a fast mutex used at DISPATCH_LEVEL — here
// from a post-op, which runs at DISPATCH_LEVEL — takes the fast mutex
// there: DRIVER_VERIFIER_DETECTED_VIOLATION 0xC4 P1=0x33.
func TestCbdqFastMutexFromPostOp(t *testing.T) {
	r := newRig(t, rigOpts{})
	c := newCbdqFilter(r, mutexLocked)
	completer := r.register("completer", 200, &fltmgr.FLT_REGISTRATION{OperationRegistration: []fltmgr.FLT_OPERATION_REGISTRATION{{
		MajorFunction: fltmgr.IRP_MJ_WRITE,
		PreOperation: func(*fltmgr.FLT_CALLBACK_DATA, *fltmgr.FLT_RELATED_OBJECTS, *any) fltmgr.FLT_PREOP_CALLBACK_STATUS {
			return fltmgr.FLT_PREOP_SUCCESS_WITH_CALLBACK
		},
		PostOperation: func(*fltmgr.FLT_CALLBACK_DATA, *fltmgr.FLT_RELATED_OBJECTS, any, fltmgr.FLT_POST_OPERATION_FLAGS) fltmgr.FLT_POSTOP_CALLBACK_STATUS {
			r.fm.FltCbdqRemoveNextIo(&c.q, nil)
			return fltmgr.FLT_POSTOP_FINISHED_PROCESSING
		},
	}}})
	r.thread("app", func() {
		c.start()
		r.fm.FltStartFiltering(completer)
		r.vol.Issue(read(1))
		r.vol.Send(fltmgr.IoRequest{MajorFunction: fltmgr.IRP_MJ_WRITE, Length: 1})
	})
	bc := requireBugCheck(t, r.run(), kernel.DRIVER_VERIFIER_DETECTED_VIOLATION, 0x33)
	assert.Equal(t, kernel.DISPATCH_LEVEL, bc.IRQL)
}

// §2.7I, §6.15: an insert that started before teardown and lands after
// FltCbdqDisable is refused. A filter that passes the read down lets the
// teardown finish; one that ignores STATUS_FLT_CBDQ_DISABLED and returns
// FLT_PREOP_PENDING anyway pends it forever: InstanceTeardownComplete is
// never called and the unload hangs.
func TestCbdqIgnoringDisabledHangsUnload(t *testing.T) {
	for _, buggy := range []bool{false, true} {
		r := newRig(t, rigOpts{})
		c := newCbdqFilter(r, mutexLocked)
		c.ignoreDisabled = buggy
		inPreOp, tornDown := r.gate("in pre-op"), r.gate("teardown started")
		c.beforeInsert = func(*fltmgr.FLT_CALLBACK_DATA) {
			r.open(inPreOp)
			r.wait(tornDown)
		}
		c.onTeardownStart = func() { r.open(tornDown) }
		r.thread("app", func() {
			c.start()
			r.vol.Issue(read(1))
		})
		r.thread("unloader", func() {
			r.wait(inPreOp)
			r.fm.FltUnloadFilter(c.f)
		})
		out := r.run()
		assert.Equal(t, []kernel.NTSTATUS{kernel.STATUS_FLT_CBDQ_DISABLED}, c.inserts)
		if !buggy {
			require.NoError(t, out.Err)
			assert.Equal(t, []string{"start", "complete"}, c.torndown)
			continue
		}
		var d *kernel.Deadlock
		require.ErrorAs(t, out.Err, &d)
		assert.Contains(t, d.Error(), "teardown: pended operations")
		assert.Equal(t, []string{"start"}, c.torndown)
	}
}

// §2.7H, §6.4: after a successful FltCbdqInsertIo the pre-op must return
// FLT_PREOP_PENDING — the insert may already have completed a cancelled
// read through CompleteCanceledIo. A pre-op that returns
// SUCCESS_NO_CALLBACK instead sends an already completed operation on:
// MULTIPLE_IRP_COMPLETE_REQUESTS 0x44.
func TestCbdqInsertCancelledThenPassedDownIs0x44(t *testing.T) {
	r := newRig(t, rigOpts{})
	c := newCbdqFilter(r, spinLocked)
	c.beforeInsert = func(d *fltmgr.FLT_CALLBACK_DATA) { r.k.IoCancelIrp(d.Irp()) }
	buggy := c.preRead
	f := r.register("buggy", 200, &fltmgr.FLT_REGISTRATION{OperationRegistration: []fltmgr.FLT_OPERATION_REGISTRATION{{
		MajorFunction: fltmgr.IRP_MJ_WRITE,
		PreOperation: func(d *fltmgr.FLT_CALLBACK_DATA, o *fltmgr.FLT_RELATED_OBJECTS, x *any) fltmgr.FLT_PREOP_CALLBACK_STATUS {
			buggy(d, o, x)
			return fltmgr.FLT_PREOP_SUCCESS_NO_CALLBACK
		}}}})
	r.thread("app", func() {
		c.start()
		r.fm.FltStartFiltering(f)
		r.vol.Issue(fltmgr.IoRequest{MajorFunction: fltmgr.IRP_MJ_WRITE, Length: 1})
	})
	bc := requireBugCheck(t, r.run(), kernel.MULTIPLE_IRP_COMPLETE_REQUESTS, 1)
	assert.Contains(t, bc.Detail, "must return FLT_PREOP_PENDING")
	assert.Equal(t, []string{"app"}, c.cancelledBy)
}
