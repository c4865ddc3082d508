package queues_test

// Tests of the IoCsq library (REFERENCE §1.6, §2). Every helper here is
// prefixed csq so that it cannot collide with the other test files of the
// package.

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues"
)

// csqLock is the kind of queue lock a test driver uses.
type csqLock uint8

const (
	csqSpinLock  csqLock = iota // IRQL DISPATCH_LEVEL inside the queue
	csqFastMutex                // IRQL APC_LEVEL inside the queue
)

func (l csqLock) String() string { return [...]string{"spin lock", "fast mutex"}[l] }

// csqCompletion records who completed an IRP and how.
type csqCompletion struct {
	irp      *kernel.IRP
	by       string // thread name
	how      string // "cancelled" (CompleteCanceledIrp) or "dequeued"
	lockHeld bool   // the queue lock was held at the time
}

// csqRig is a tiny driver around one IO_CSQ: a list, a lock, a completion
// log, rendezvous gates and per-step hooks, on a two-processor machine.
type csqRig struct {
	t      *testing.T
	sim    *des.Sim
	k      *kernel.Kernel
	rec    *des.RecordSink
	csq    queues.IO_CSQ
	lock   csqLock
	spin   *kernel.KSPIN_LOCK
	mutex  *kernel.FAST_MUTEX
	locked bool
	list   []*kernel.IRP
	done   []csqCompletion
	// insertStatus is what the Ex insert callback returns; a failure
	// leaves the list alone.
	insertStatus kernel.NTSTATUS
	// hooks run once, at their step, in whichever thread reaches it.
	hooks map[queues.CsqStep]func(irp *kernel.IRP)
	// onCompleteCanceled, if set, runs inside CompleteCanceledIrp.
	onCompleteCanceled func(irp *kernel.IRP)
}

// newCsqRig builds the rig; dcfg supplies the seed and chooser (its sink
// and step budget are set here).
func newCsqRig(t *testing.T, cfg kernel.Config, dcfg des.Config, order queues.CsqOrder, lock csqLock) *csqRig {
	t.Helper()
	r := &csqRig{t: t, rec: &des.RecordSink{}, lock: lock, hooks: map[queues.CsqStep]func(*kernel.IRP){}}
	dcfg.Sink, dcfg.StepBudget = r.rec, 2_000_000
	r.sim = des.New(dcfg)
	t.Cleanup(r.sim.Close)
	r.k = kernel.MustNew(r.sim, cfg)
	r.spin = r.k.KeInitializeSpinLock("queue")
	r.mutex = r.k.ExInitializeFastMutex("queue")
	r.csq.Name, r.csq.Order = "test", order
	r.csq.Hook = func(s queues.CsqStep, irp *kernel.IRP) {
		if f := r.hooks[s]; f != nil {
			delete(r.hooks, s)
			f(irp)
		}
	}
	st := queues.IoCsqInitializeEx(r.k, &r.csq, r.insertEx, r.remove, r.peek, r.acquire, r.release, r.completeCanceled)
	require.Equal(t, kernel.STATUS_SUCCESS, st)
	return r
}

func (r *csqRig) insertEx(_ *queues.IO_CSQ, irp *kernel.IRP, _ any) kernel.NTSTATUS {
	assert.True(r.t, r.locked, "insert callback runs with the queue lock held (§1.5)")
	if kernel.NT_SUCCESS(r.insertStatus) {
		r.list = append(r.list, irp)
	}
	return r.insertStatus
}

func (r *csqRig) remove(_ *queues.IO_CSQ, irp *kernel.IRP) {
	assert.True(r.t, r.locked, "remove callback runs with the queue lock held (§1.5)")
	i := slices.Index(r.list, irp)
	if !assert.GreaterOrEqual(r.t, i, 0, "%s removed twice or never inserted (§2.7C)", irp.Name()) {
		return
	}
	r.list = slices.Delete(r.list, i, i+1)
}

func (r *csqRig) peek(_ *queues.IO_CSQ, irp *kernel.IRP, _ any) *kernel.IRP {
	i := 0
	if irp != nil {
		i = slices.Index(r.list, irp) + 1
	}
	if i < len(r.list) {
		return r.list[i]
	}
	return nil
}

func (r *csqRig) acquire(*queues.IO_CSQ) kernel.IRQL {
	var old kernel.IRQL
	if r.lock == csqSpinLock {
		old = r.k.KeAcquireSpinLock(r.spin)
	} else {
		r.k.ExAcquireFastMutex(r.mutex)
	}
	r.locked = true
	return old
}

func (r *csqRig) release(_ *queues.IO_CSQ, old kernel.IRQL) {
	r.locked = false
	if r.lock == csqSpinLock {
		r.k.KeReleaseSpinLock(r.spin, old)
	} else {
		r.k.ExReleaseFastMutex(r.mutex)
	}
}

func (r *csqRig) completeCanceled(_ *queues.IO_CSQ, irp *kernel.IRP) {
	if r.onCompleteCanceled != nil {
		r.onCompleteCanceled(irp)
	}
	r.complete(irp, kernel.STATUS_CANCELLED, "cancelled")
}

func (r *csqRig) complete(irp *kernel.IRP, st kernel.NTSTATUS, how string) {
	r.done = append(r.done, csqCompletion{irp: irp, by: r.k.KeGetCurrentThread().Name(), how: how, lockHeld: r.locked})
	irp.IoStatus.Status = st
	r.k.IoCompleteRequest(irp, kernel.IO_NO_INCREMENT)
}

// gate is a one-shot flag in shared memory; waiting spins on it, which on
// two processors lets the other party run (each read is a scheduling point).
func (r *csqRig) gate(name string) *kernel.Cell { return r.k.NewCell(name, 0) }
func (r *csqRig) open(g *kernel.Cell)           { r.k.Write(g, 1) }
func (r *csqRig) wait(g *kernel.Cell) {
	for r.k.Read(g) == 0 {
	}
}

// at installs a one-shot hook that opens reached and waits for resume.
func (r *csqRig) at(s queues.CsqStep, reached, resume *kernel.Cell) {
	r.hooks[s] = func(*kernel.IRP) {
		r.open(reached)
		r.wait(resume)
	}
}

func (r *csqRig) thread(name string, body func()) { r.k.PsCreateSystemThread(name, 8, body) }

// steps returns the KindCsqStep records of the run, in order.
func (r *csqRig) steps() []string {
	var out []string
	for _, rec := range r.rec.Records {
		if rec.Kind == queues.KindCsqStep {
			out = append(out, string(rec.What))
		}
	}
	return out
}

// csqResult is what a race case observed.
type csqResult struct {
	insertStatus kernel.NTSTATUS
	cancelResult bool
	removed      []*kernel.IRP // results of IoCsqRemoveIrp / IoCsqRemoveNextIrp, in order
	ctxClearedAt string        // "before lock" / "inside lock": where the cancel routine broke the link
}

// csqCase is one forced interleaving of §2.2–§2.5.
type csqCase struct {
	name    string
	section string
	// run builds the threads. irp is the request under test, ctx its token.
	run func(r *csqRig, irp *kernel.IRP, ctx *queues.IO_CSQ_IRP_CONTEXT, res *csqResult)
	// want is checked per order.
	want func(t *testing.T, order queues.CsqOrder, r *csqRig, irp *kernel.IRP, res *csqResult)
}

// insertThenGo inserts irp in a thread named inserter and opens inserted.
func (r *csqRig) insertThenGo(irp *kernel.IRP, ctx *queues.IO_CSQ_IRP_CONTEXT, res *csqResult, inserted *kernel.Cell) {
	r.thread("inserter", func() {
		res.insertStatus = queues.IoCsqInsertIrpEx(&r.csq, irp, ctx, nil)
		if inserted != nil {
			r.open(inserted)
		}
	})
}

// cancelWhen cancels irp in a thread named canceller once start is open.
func (r *csqRig) cancelWhen(irp *kernel.IRP, start *kernel.Cell, res *csqResult, then func()) {
	r.thread("canceller", func() {
		if start != nil {
			r.wait(start)
		}
		res.cancelResult = r.k.IoCancelIrp(irp)
		if then != nil {
			then()
		}
	})
}

// watchContext records where the cancel routine broke the IRP↔context
// link: already nil when it is about to lock (ReactOS) or only after.
func (r *csqRig) watchContext(ctx *queues.IO_CSQ_IRP_CONTEXT, res *csqResult, also func()) {
	r.hooks[queues.CsqCancelLocking] = func(*kernel.IRP) {
		res.ctxClearedAt = "inside lock"
		if ctx.Irp == nil {
			res.ctxClearedAt = "before lock"
		}
		if also != nil {
			also()
		}
	}
}

func wantCompletedOnce(t *testing.T, r *csqRig, irp *kernel.IRP, by, how string) {
	t.Helper()
	require.Len(t, r.done, 1, "exactly one completion (§2.1)")
	assert.Same(t, irp, r.done[0].irp)
	assert.Equal(t, by, r.done[0].by, "who completed")
	assert.Equal(t, how, r.done[0].how)
	assert.True(t, irp.Completed())
	assert.Empty(t, r.list, "nothing left queued")
}

func wantMarks(t *testing.T, r *csqRig, marks ...*kernel.Mark) {
	t.Helper()
	for _, m := range csqAllMarks {
		want := 0
		for _, w := range marks {
			if w == m {
				want++
			}
		}
		assert.Equal(t, want, r.csq.Hits(m), "coverage mark %q", m)
	}
}

var csqAllMarks = []*kernel.Mark{
	queues.CsqMarkInsertCompletedCancelled, queues.CsqMarkCancelRacedInsert, queues.CsqMarkInsertRejected,
	queues.CsqMarkCancelRoutineCompleted, queues.CsqMarkRemoveNoIrp, queues.CsqMarkRemoveLostToCancel,
	queues.CsqMarkRemoveSkippedCancelled,
}

var csqCases = []csqCase{
	{
		name: "no cancel: remove-next dequeues", section: "§2.2 step 9, §2.5",
		run: func(r *csqRig, irp *kernel.IRP, ctx *queues.IO_CSQ_IRP_CONTEXT, res *csqResult) {
			inserted := r.gate("inserted")
			r.insertThenGo(irp, ctx, res, inserted)
			r.thread("remover", func() {
				r.wait(inserted)
				got := queues.IoCsqRemoveNextIrp(&r.csq, nil)
				res.removed = append(res.removed, got)
				r.complete(got, kernel.STATUS_SUCCESS, "dequeued")
			})
		},
		want: func(t *testing.T, _ queues.CsqOrder, r *csqRig, irp *kernel.IRP, res *csqResult) {
			wantCompletedOnce(t, r, irp, "remover", "dequeued")
			assert.Equal(t, []*kernel.IRP{irp}, res.removed)
			assert.True(t, irp.PendingReturned(), "IoCsqInsertIrp marks the IRP pending (§1.6)")
			assert.Nil(t, ctxIrp(irp), "removal broke the association")
			wantMarks(t, r)
		},
	},
	{
		name: "cancel before insert", section: "§2.2 steps 6-8, §1.5 issue #56",
		run: func(r *csqRig, irp *kernel.IRP, ctx *queues.IO_CSQ_IRP_CONTEXT, res *csqResult) {
			cancelled := r.gate("cancelled")
			r.cancelWhen(irp, nil, res, func() { r.open(cancelled) })
			r.thread("inserter", func() {
				r.wait(cancelled)
				res.insertStatus = queues.IoCsqInsertIrpEx(&r.csq, irp, ctx, nil)
			})
		},
		want: func(t *testing.T, order queues.CsqOrder, r *csqRig, irp *kernel.IRP, res *csqResult) {
			wantCompletedOnce(t, r, irp, "inserter", "cancelled")
			assert.False(t, res.cancelResult, "no routine yet: IoCancelIrp returns FALSE (§1.7)")
			assert.Equal(t, kernel.STATUS_SUCCESS, res.insertStatus, "insert succeeds although the IRP is already completed (§1.5)")
			assert.Equal(t, order == queues.CsqOrderReactOS, r.done[0].lockHeld,
				"Microsoft completes after unlocking, ReactOS with the lock held (§2.2)")
			wantMarks(t, r, queues.CsqMarkInsertCompletedCancelled)
		},
	},
	{
		name: "cancel between insert callback and set routine", section: "§2.2 steps 5-8 (why set before test)",
		run: func(r *csqRig, irp *kernel.IRP, ctx *queues.IO_CSQ_IRP_CONTEXT, res *csqResult) {
			reached, resume := r.gate("reached"), r.gate("resume")
			r.at(queues.CsqInsertCallback, reached, resume)
			r.insertThenGo(irp, ctx, res, nil)
			r.cancelWhen(irp, reached, res, func() { r.open(resume) })
		},
		want: func(t *testing.T, _ queues.CsqOrder, r *csqRig, irp *kernel.IRP, res *csqResult) {
			wantCompletedOnce(t, r, irp, "inserter", "cancelled")
			assert.False(t, res.cancelResult, "the routine was not set yet")
			wantMarks(t, r, queues.CsqMarkInsertCompletedCancelled)
		},
	},
	{
		name: "cancel between set routine and test Cancel", section: "§2.2 step 7, §2.7B",
		run: func(r *csqRig, irp *kernel.IRP, ctx *queues.IO_CSQ_IRP_CONTEXT, res *csqResult) {
			reached, resume := r.gate("reached"), r.gate("resume")
			r.at(queues.CsqInsertSetRoutine, reached, resume)
			r.insertThenGo(irp, ctx, res, nil)
			r.watchContext(ctx, res, func() { r.open(resume) })
			r.cancelWhen(irp, reached, res, nil)
		},
		want: func(t *testing.T, order queues.CsqOrder, r *csqRig, irp *kernel.IRP, res *csqResult) {
			wantCompletedOnce(t, r, irp, "canceller", "cancelled")
			assert.True(t, res.cancelResult, "IoCancelIrp took the routine")
			assert.Equal(t, kernel.STATUS_SUCCESS, res.insertStatus)
			assert.False(t, r.done[0].lockHeld, "the cancel routine completes after unlocking (§2.3 step 8)")
			wantMarks(t, r, queues.CsqMarkCancelRacedInsert, queues.CsqMarkCancelRoutineCompleted)
			wantCtxCleared(t, order, res)
		},
	},
	{
		name: "cancel while queued", section: "§2.3",
		run: func(r *csqRig, irp *kernel.IRP, ctx *queues.IO_CSQ_IRP_CONTEXT, res *csqResult) {
			inserted := r.gate("inserted")
			r.insertThenGo(irp, ctx, res, inserted)
			r.watchContext(ctx, res, nil)
			r.cancelWhen(irp, inserted, res, nil)
		},
		want: func(t *testing.T, order queues.CsqOrder, r *csqRig, irp *kernel.IRP, res *csqResult) {
			wantCompletedOnce(t, r, irp, "canceller", "cancelled")
			assert.True(t, res.cancelResult)
			wantMarks(t, r, queues.CsqMarkCancelRoutineCompleted)
			wantCtxCleared(t, order, res)
		},
	},
	{
		name: "cancel vs remove-next: remove skips, cancel routine completes", section: "§2.5, §6.2",
		run: func(r *csqRig, irp *kernel.IRP, ctx *queues.IO_CSQ_IRP_CONTEXT, res *csqResult) {
			inserted, reached, resume := r.gate("inserted"), r.gate("reached"), r.gate("resume")
			r.insertThenGo(irp, ctx, res, inserted)
			r.at(queues.CsqRemoveNextPeeked, reached, resume)
			r.thread("remover", func() {
				r.wait(inserted)
				res.removed = append(res.removed, queues.IoCsqRemoveNextIrp(&r.csq, nil))
			})
			r.watchContext(ctx, res, func() { r.open(resume) })
			r.cancelWhen(irp, reached, res, nil)
		},
		want: func(t *testing.T, _ queues.CsqOrder, r *csqRig, irp *kernel.IRP, res *csqResult) {
			wantCompletedOnce(t, r, irp, "canceller", "cancelled")
			assert.Equal(t, []*kernel.IRP{nil}, res.removed, "remove-next returns NULL: the only entry is being cancelled")
			wantMarks(t, r, queues.CsqMarkRemoveSkippedCancelled, queues.CsqMarkCancelRoutineCompleted)
		},
	},
	{
		name: "cancel vs remove: remove gets NULL, so does a second removal", section: "§2.4, §1.5 issue #55",
		run: func(r *csqRig, irp *kernel.IRP, ctx *queues.IO_CSQ_IRP_CONTEXT, res *csqResult) {
			inserted, reached, resume, cancelled := r.gate("inserted"), r.gate("reached"), r.gate("resume"), r.gate("cancelled")
			r.insertThenGo(irp, ctx, res, inserted)
			r.at(queues.CsqRemoveLocked, reached, resume)
			r.thread("remover", func() {
				r.wait(inserted)
				res.removed = append(res.removed, queues.IoCsqRemoveIrp(&r.csq, ctx))
				r.wait(cancelled)
				res.removed = append(res.removed, queues.IoCsqRemoveIrp(&r.csq, ctx))
			})
			r.watchContext(ctx, res, func() { r.open(resume) })
			r.cancelWhen(irp, reached, res, func() { r.open(cancelled) })
		},
		want: func(t *testing.T, _ queues.CsqOrder, r *csqRig, irp *kernel.IRP, res *csqResult) {
			wantCompletedOnce(t, r, irp, "canceller", "cancelled")
			assert.Equal(t, []*kernel.IRP{nil, nil}, res.removed)
			// The remover read the context before the cancel routine broke
			// it, so its swap decides; the second removal finds no IRP.
			wantMarks(t, r, queues.CsqMarkRemoveLostToCancel, queues.CsqMarkRemoveNoIrp, queues.CsqMarkCancelRoutineCompleted)
		},
	},
	{
		name: "remove, then cancel, then remove again", section: "§1.5 issue #55, §2.4 step 2",
		run: func(r *csqRig, irp *kernel.IRP, ctx *queues.IO_CSQ_IRP_CONTEXT, res *csqResult) {
			inserted := r.gate("inserted")
			r.insertThenGo(irp, ctx, res, inserted)
			r.thread("remover", func() {
				r.wait(inserted)
				got := queues.IoCsqRemoveIrp(&r.csq, ctx)
				res.removed = append(res.removed, got)
				res.cancelResult = r.k.IoCancelIrp(irp)
				res.removed = append(res.removed, queues.IoCsqRemoveIrp(&r.csq, ctx))
				r.complete(got, kernel.STATUS_SUCCESS, "dequeued")
			})
		},
		want: func(t *testing.T, _ queues.CsqOrder, r *csqRig, irp *kernel.IRP, res *csqResult) {
			wantCompletedOnce(t, r, irp, "remover", "dequeued")
			assert.Equal(t, []*kernel.IRP{irp, nil}, res.removed)
			assert.False(t, res.cancelResult, "the dequeuer already swapped the routine out")
			wantMarks(t, r, queues.CsqMarkRemoveNoIrp)
		},
	},
	{
		name: "Ex insert callback fails", section: "§2.2 step 3, §1.6",
		run: func(r *csqRig, irp *kernel.IRP, ctx *queues.IO_CSQ_IRP_CONTEXT, res *csqResult) {
			r.insertStatus = kernel.STATUS_INSUFFICIENT_RESOURCES
			r.thread("inserter", func() {
				res.insertStatus = queues.IoCsqInsertIrpEx(&r.csq, irp, ctx, nil)
				res.cancelResult = r.k.IoCancelIrp(irp)
				r.complete(irp, res.insertStatus, "rejected")
			})
		},
		want: func(t *testing.T, order queues.CsqOrder, r *csqRig, irp *kernel.IRP, res *csqResult) {
			assert.Equal(t, kernel.STATUS_INSUFFICIENT_RESOURCES, res.insertStatus)
			wantCompletedOnce(t, r, irp, "inserter", "rejected")
			assert.False(t, res.cancelResult, "no cancel routine was set")
			if order == queues.CsqOrderMicrosoft {
				assert.False(t, irp.PendingReturned(), "Microsoft: not marked pending")
				assert.Nil(t, ctxIrp(irp))
			} else {
				assert.True(t, irp.PendingReturned(), "ReactOS marks pending before the insert callback")
			}
			wantMarks(t, r, queues.CsqMarkInsertRejected)
		},
	},
}

func wantCtxCleared(t *testing.T, order queues.CsqOrder, res *csqResult) {
	t.Helper()
	want := map[queues.CsqOrder]string{queues.CsqOrderMicrosoft: "inside lock", queues.CsqOrderReactOS: "before lock"}[order]
	assert.Equal(t, want, res.ctxClearedAt, "where the cancel routine breaks the IRP↔context link (§2.3 step 6)")
}

func ctxIrp(irp *kernel.IRP) any { return irp.DriverContext[3] }

// TestCsqProtocolStepByStep forces each interleaving of §2.2–§2.5 with
// rendezvous hooks on two processors, for both step orders and both kinds
// of queue lock, and checks exactly-once completion and who completed.
func TestCsqProtocolStepByStep(t *testing.T) {
	for _, tc := range csqCases {
		for _, order := range []queues.CsqOrder{queues.CsqOrderMicrosoft, queues.CsqOrderReactOS} {
			for _, lock := range []csqLock{csqSpinLock, csqFastMutex} {
				t.Run(fmt.Sprintf("%s/%v/%v", tc.name, order, lock), func(t *testing.T) {
					r := newCsqRig(t, kernel.DefaultConfig(), des.Config{}, order, lock)
					irp := r.k.IoAllocateIrp("read")
					ctx := &queues.IO_CSQ_IRP_CONTEXT{}
					res := &csqResult{}
					tc.run(r, irp, ctx, res)
					out := r.k.Run()
					require.NoError(t, out.Err, "%s", tc.section)
					tc.want(t, order, r, irp, res)
					assert.Empty(t, r.hooks, "every forced interleaving point was reached")
				})
			}
		}
	}
}

// TestCsqStepOrder checks the traced step sequence of an uncontended
// insert-time cancel in each order (§2.2).
func TestCsqStepOrder(t *testing.T) {
	want := map[queues.CsqOrder][]string{
		queues.CsqOrderMicrosoft: {
			"csq insert: associate", "csq insert: locked", "csq insert: callback", "csq insert: mark pending",
			"csq insert: set routine", "csq insert: test cancel", "csq insert: swap back",
			"csq insert: remove cancelled", "csq insert: unlocked", "csq insert: complete cancelled",
		},
		queues.CsqOrderReactOS: {
			"csq insert: locked", "csq insert: mark pending", "csq insert: associate", "csq insert: callback",
			"csq insert: set routine", "csq insert: test cancel", "csq insert: swap back",
			"csq insert: remove cancelled", "csq insert: complete cancelled", "csq insert: unlocked",
		},
	}
	for _, order := range []queues.CsqOrder{queues.CsqOrderMicrosoft, queues.CsqOrderReactOS} {
		r := newCsqRig(t, kernel.DefaultConfig(), des.Config{}, order, csqSpinLock)
		irp := r.k.IoAllocateIrp("read")
		r.thread("inserter", func() {
			r.k.IoCancelIrp(irp)
			queues.IoCsqInsertIrp(&r.csq, irp, nil)
		})
		require.NoError(t, r.k.Run().Err)
		assert.Equal(t, want[order], r.steps(), "order %v", order)
	}
}

// An Ex insert callback that reports success with STATUS_PENDING (legal
// for FltCbdq, §1.5) queues the IRP under Microsoft's rule (NT_SUCCESS);
// ReactOS tests "!= STATUS_SUCCESS", treats it as a failure and never arms
// the cancel routine, so a cancel is lost and a remove-next skips the
// entry: the IRP stays queued for good (§2.2, ReactOS difference).
func TestCsqInsertExPendingStatus(t *testing.T) {
	for _, order := range []queues.CsqOrder{queues.CsqOrderMicrosoft, queues.CsqOrderReactOS} {
		r := newCsqRig(t, kernel.DefaultConfig(), des.Config{}, order, csqSpinLock)
		r.insertStatus = kernel.STATUS_PENDING
		irp := r.k.IoAllocateIrp("read")
		var st kernel.NTSTATUS
		var cancelled bool
		var next *kernel.IRP
		r.thread("driver", func() {
			st = queues.IoCsqInsertIrpEx(&r.csq, irp, nil, nil)
			cancelled = r.k.IoCancelIrp(irp)
			next = queues.IoCsqRemoveNextIrp(&r.csq, nil)
		})
		out := r.k.Run()
		assert.Equal(t, kernel.STATUS_PENDING, st)
		assert.Nil(t, next)
		if order == queues.CsqOrderMicrosoft {
			require.NoError(t, out.Err)
			assert.True(t, cancelled)
			assert.Len(t, r.done, 1)
			continue
		}
		assert.False(t, cancelled, "ReactOS never set the cancel routine")
		var leak *kernel.Leak
		require.ErrorAs(t, out.Err, &leak)
		assert.Contains(t, leak.Error(), "irp 1 (read) never completed")
		assert.Equal(t, 1, r.csq.Hits(queues.CsqMarkInsertRejected))
		assert.Equal(t, 1, r.csq.Hits(queues.CsqMarkRemoveSkippedCancelled))
	}
}

// §2.2: a CompleteCanceledIrp callback that re-enters the queue works under
// Microsoft's order (the lock is free) and self-deadlocks under ReactOS's
// (completion runs with the lock held): with a spin lock that is
// SPIN_LOCK_ALREADY_OWNED 0x0F.
func TestCsqCompleteCanceledReentersQueue(t *testing.T) {
	for _, order := range []queues.CsqOrder{queues.CsqOrderMicrosoft, queues.CsqOrderReactOS} {
		r := newCsqRig(t, kernel.DefaultConfig(), des.Config{}, order, csqSpinLock)
		irp := r.k.IoAllocateIrp("read")
		r.onCompleteCanceled = func(*kernel.IRP) { queues.IoCsqRemoveNextIrp(&r.csq, nil) }
		r.thread("inserter", func() {
			r.k.IoCancelIrp(irp)
			queues.IoCsqInsertIrp(&r.csq, irp, nil)
		})
		out := r.k.Run()
		if order == queues.CsqOrderMicrosoft {
			require.NoError(t, out.Err)
			continue
		}
		var bc *kernel.BugCheck
		require.ErrorAs(t, out.Err, &bc)
		assert.Equal(t, kernel.SPIN_LOCK_ALREADY_OWNED, bc.Code)
	}
}

// §2.3 step 4, §6.14: IoCancelIrp at DISPATCH_LEVEL on an IRP in a
// fast-mutex queue: the cancel routine drops the cancel spin lock back to
// DISPATCH_LEVEL and then takes the fast mutex there → 0xC4 P1=0x33.
func TestCsqCancelAtDispatchOnFastMutexQueue(t *testing.T) {
	r := newCsqRig(t, kernel.DefaultConfig(), des.Config{}, queues.CsqOrderMicrosoft, csqFastMutex)
	irp := r.k.IoAllocateIrp("read")
	r.thread("driver", func() {
		queues.IoCsqInsertIrp(&r.csq, irp, nil)
		r.k.KeRaiseIrql(kernel.DISPATCH_LEVEL)
		r.k.IoCancelIrp(irp)
	})
	var bc *kernel.BugCheck
	require.ErrorAs(t, r.k.Run().Err, &bc)
	assert.Equal(t, kernel.DRIVER_VERIFIER_DETECTED_VIOLATION, bc.Code)
	assert.Equal(t, uint64(0x33), bc.Params[0])
	assert.Equal(t, "ExAcquireFastMutex", bc.API)
}

// §1.6: DriverContext[3] belongs to the library; a driver that overwrites
// it while the IRP is queued makes the cancel routine read garbage.
func TestCsqOverwrittenDriverContext3(t *testing.T) {
	r := newCsqRig(t, kernel.DefaultConfig(), des.Config{}, queues.CsqOrderMicrosoft, csqSpinLock)
	irp := r.k.IoAllocateIrp("read")
	r.thread("driver", func() {
		queues.IoCsqInsertIrp(&r.csq, irp, nil)
		irp.DriverContext[3] = "mine"
		r.k.IoCancelIrp(irp)
	})
	var ce *queues.CsqCorruption
	require.ErrorAs(t, r.k.Run().Err, &ce)
	assert.Contains(t, ce.Error(), "DriverContext[3] holds string")
}

func TestCsqInitializeRejectsMissingCallbacks(t *testing.T) {
	k := kernel.MustNew(des.New(des.Config{}), kernel.DefaultConfig())
	var csq queues.IO_CSQ
	assert.Equal(t, kernel.STATUS_INVALID_PARAMETER,
		queues.IoCsqInitialize(k, &csq, nil, nil, nil, nil, nil, nil))
	assert.Equal(t, kernel.STATUS_INVALID_PARAMETER,
		queues.IoCsqInitializeEx(k, &csq, func(*queues.IO_CSQ, *kernel.IRP, any) kernel.NTSTATUS { return 0 }, nil, nil, nil, nil, nil))
}

// naiveQueue is a hand-rolled cancellable queue that tests Cancel and only
// then sets its cancel routine: the lost-cancel bug of §2.7A / §6.1.
type naiveQueue struct {
	k     *kernel.Kernel
	mutex *kernel.FAST_MUTEX
	list  []*kernel.IRP
}

func (q *naiveQueue) insert(irp *kernel.IRP) {
	q.k.ExAcquireFastMutex(q.mutex)
	if q.k.IoIsCancelled(irp) {
		q.k.ExReleaseFastMutex(q.mutex)
		irp.IoStatus.Status = kernel.STATUS_CANCELLED
		q.k.IoCompleteRequest(irp, kernel.IO_NO_INCREMENT)
		return
	}
	q.k.Compute(2 * des.Microsecond) // build the list entry: the window
	q.k.IoMarkIrpPending(irp)
	q.k.IoSetCancelRoutine(irp, q.cancel)
	q.list = append(q.list, irp)
	q.k.ExReleaseFastMutex(q.mutex)
}

func (q *naiveQueue) cancel(irp *kernel.IRP) {
	q.k.IoReleaseCancelSpinLock(irp.CancelIrql)
	q.k.ExAcquireFastMutex(q.mutex)
	q.list = slices.DeleteFunc(q.list, func(x *kernel.IRP) bool { return x == irp })
	q.k.ExReleaseFastMutex(q.mutex)
	irp.IoStatus.Status = kernel.STATUS_CANCELLED
	q.k.IoCompleteRequest(irp, kernel.IO_NO_INCREMENT)
}

// csqCancelRace runs one insert racing one cancel with injected
// preemptions and a random cancel delay, with either the naive queue or
// IoCsq, and returns the outcome.
// A nil chooser means des.NewSeededBiased(seed, 3, 4).
func csqCancelRace(t *testing.T, seed uint64, naive bool, chooser des.Chooser) des.Outcome {
	cfg := kernel.DefaultConfig()
	cfg.InjectPreemption = true
	if chooser == nil {
		chooser = des.NewSeededBiased(seed, 3, 4)
	}
	r := newCsqRig(t, cfg, des.Config{Seed: seed, Chooser: chooser}, queues.CsqOrderMicrosoft, csqFastMutex)
	q := &naiveQueue{k: r.k, mutex: r.mutex}
	irp := r.k.IoAllocateIrp("read")
	delay := des.Duration(r.sim.Rand().IntN(6000)) * des.Nanosecond
	r.thread("inserter", func() {
		if naive {
			q.insert(irp)
		} else {
			queues.IoCsqInsertIrp(&r.csq, irp, nil)
		}
	})
	r.thread("canceller", func() {
		r.k.Compute(delay)
		r.k.IoCancelIrp(irp)
	})
	return r.k.Run()
}

// §2.2 ("why this order"), §2.7A, §6.1: over many seeds, a hand-rolled
// "test Cancel, then set the routine" insert loses a cancel (the IRP stays
// pending for good and the run ends with a *kernel.Leak) while the IoCsq
// insert never does.
func TestCsqInsertNeverLosesACancel(t *testing.T) {
	const seeds = 200
	lost := 0
	for seed := uint64(1); seed <= seeds; seed++ {
		out := csqCancelRace(t, seed, true, nil)
		var leak *kernel.Leak
		if errors.As(out.Err, &leak) {
			require.Contains(t, leak.Error(), "never completed (pending=true cancel=true)", "seed %d", seed)
			lost++
			continue
		}
		require.NoError(t, out.Err, "seed %d", seed)
	}
	t.Logf("naive insert lost the cancel in %d of %d seeds", lost, seeds)
	assert.Greater(t, lost, 0, "some schedule loses the cancel with the naive insert")
	for seed := uint64(1); seed <= seeds; seed++ {
		require.NoError(t, csqCancelRace(t, seed, false, nil).Err, "IoCsq insert, seed %d", seed)
	}
}

// STYLE 12: the same seed gives the same trace twice, and replaying the
// decision log gives it again.
func TestCsqDeterminism(t *testing.T) {
	a, b := csqCancelRace(t, 7, false, nil), csqCancelRace(t, 7, false, nil)
	require.NoError(t, a.Err)
	assert.Equal(t, a.Hash, b.Hash)
	assert.NotEmpty(t, a.Decisions)
	c := csqCancelRace(t, 7, false, des.NewReplay(a.Decisions))
	assert.Equal(t, a.Hash, c.Hash, "replaying the decision log reproduces the trace")
	for seed := uint64(1); seed < 20; seed++ {
		if c := csqCancelRace(t, seed, false, nil); c.Hash != a.Hash {
			return
		}
	}
	t.Fatal("different seeds never changed the trace: decisions are not reaching the queue")
}

// A driver queue on IoCsq: two IRPs queued, one cancelled (the library's
// cancel routine removes it and the driver's CompleteCanceledIrp completes
// it), the other dequeued (REFERENCE §2.2–§2.5).
func ExampleIoCsqInsertIrp() {
	sim := des.New(des.Config{})
	defer sim.Close()
	k := kernel.MustNew(sim, kernel.DefaultConfig())
	var list []*kernel.IRP
	lock := k.KeInitializeSpinLock("queue")
	var csq queues.IO_CSQ
	queues.IoCsqInitialize(k, &csq,
		func(_ *queues.IO_CSQ, irp *kernel.IRP) { list = append(list, irp) },
		func(_ *queues.IO_CSQ, irp *kernel.IRP) {
			list = slices.DeleteFunc(list, func(x *kernel.IRP) bool { return x == irp })
		},
		func(_ *queues.IO_CSQ, irp *kernel.IRP, _ any) *kernel.IRP {
			if i := slices.Index(list, irp) + 1; i < len(list) {
				return list[i]
			}
			return nil
		},
		func(*queues.IO_CSQ) kernel.IRQL { return k.KeAcquireSpinLock(lock) },
		func(_ *queues.IO_CSQ, irql kernel.IRQL) { k.KeReleaseSpinLock(lock, irql) },
		func(_ *queues.IO_CSQ, irp *kernel.IRP) {
			irp.IoStatus.Status = kernel.STATUS_CANCELLED
			k.IoCompleteRequest(irp, kernel.IO_NO_INCREMENT)
		})
	k.PsCreateSystemThread("driver", 8, func() {
		a, b := k.IoAllocateIrp("a"), k.IoAllocateIrp("b")
		queues.IoCsqInsertIrp(&csq, a, nil)
		queues.IoCsqInsertIrp(&csq, b, nil)
		fmt.Println("cancel b:", k.IoCancelIrp(b), b.IoStatus.Status)
		irp := queues.IoCsqRemoveNextIrp(&csq, nil)
		fmt.Println("dequeued:", irp.Name())
		irp.IoStatus.Status = kernel.STATUS_SUCCESS
		k.IoCompleteRequest(irp, kernel.IO_NO_INCREMENT)
		fmt.Println("empty:", queues.IoCsqRemoveNextIrp(&csq, nil) == nil)
	})
	fmt.Println("outcome:", k.Run().Err)
	// Output:
	// cancel b: true STATUS_CANCELLED (0xC0000120)
	// dequeued: irp 1 (a)
	// empty: true
	// outcome: <nil>
}
