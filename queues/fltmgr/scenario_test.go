package fltmgr_test

// The cancelSafe minifilter sample re-created (REFERENCE §7.1), explored
// over seeds with injected preemptions, for both IoCsq step orders.

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues"
	"github.com/wqsim/wqsim/queues/fltmgr"
)

// cancelSafe adds the sample's worker to cbdqFilter: InsertIo starts a
// generic work item when the list goes non-empty and no worker is present
// (an interlocked counter); the worker sleeps OperatingDelay on the
// teardown event, collapses the counter to 1, dequeues one read and
// completes it, and exits when the queue was empty and the counter drops
// to 0. InstanceTeardownStart disables, drains and signals teardown.
type cancelSafe struct {
	*cbdqFilter
	workers  *kernel.Cell
	teardown *kernel.KEVENT
	delay    des.Duration
}

func newCancelSafe(r *rig, lock lockKind, delay des.Duration) *cancelSafe {
	cs := &cancelSafe{cbdqFilter: newCbdqFilter(r, lock), delay: delay}
	cs.workers = r.k.NewCell("worker present", 0)
	cs.teardown = r.k.KeInitializeEvent("cancelsafe teardown", kernel.NotificationEvent, false)
	cs.afterInsert = cs.startWorker
	cs.onTeardownStart = func() {
		r.fm.FltCbdqDisable(&cs.q)
		for cs.completeNext() != nil {
		}
		r.k.KeSetEvent(cs.teardown, kernel.IO_NO_INCREMENT, false)
	}
	return cs
}

// startWorker is §7.1 step 3, inside InsertIo (the queue lock is held).
func (cs *cancelSafe) startWorker(_ *fltmgr.FLT_CALLBACK_DATA, wasEmpty bool) kernel.NTSTATUS {
	r := cs.r
	if !wasEmpty || r.k.InterlockedIncrement(cs.workers) != 1 {
		return kernel.STATUS_SUCCESS
	}
	item := r.fm.FltAllocateGenericWorkItem()
	if item == nil {
		r.k.InterlockedDecrement(cs.workers) // the 2016 fix (§6.16)
		return kernel.STATUS_INSUFFICIENT_RESOURCES
	}
	st := r.fm.FltQueueGenericWorkItem(item, cs.inst, cs.worker, queues.DelayedWorkQueue, nil)
	if st != kernel.STATUS_SUCCESS {
		r.fm.FltFreeGenericWorkItem(item)
		r.k.InterlockedDecrement(cs.workers)
	}
	return st
}

// worker is §7.1 step 4.
func (cs *cancelSafe) worker(item *fltmgr.FLT_GENERIC_WORKITEM, _ fltmgr.FltObject, _ any) {
	r := cs.r
	for {
		r.k.KeWaitForSingleObject(cs.teardown, cs.delay)
		r.k.InterlockedExchange(cs.workers, 1)
		if cs.completeNext() != nil {
			continue
		}
		if r.k.InterlockedDecrement(cs.workers) == 0 {
			break
		}
	}
	r.fm.FltFreeGenericWorkItem(item)
}

// cancelSafeRun is one run: three applications issue reads, one of them is
// cancelled after a random delay, and the filter is unloaded while reads
// may still be queued. It returns the outcome and the cancelled read's
// final status.
func cancelSafeRun(t *testing.T, seed uint64, order queues.CsqOrder, lock lockKind, chooser des.Chooser) (des.Outcome, []kernel.NTSTATUS) {
	kcfg := kernel.DefaultConfig()
	kcfg.InjectPreemption = true
	fcfg := fltmgr.DefaultConfig()
	fcfg.CsqOrder = order
	if chooser == nil {
		chooser = des.NewSeededBiased(seed, 7, 8)
	}
	r := newRig(t, rigOpts{kcfg: &kcfg, fcfg: &fcfg, seed: seed, chooser: chooser})
	cs := newCancelSafe(r, lock, 2*des.Millisecond)
	var finals []kernel.NTSTATUS
	issued := r.gate("issued")
	var victim *fltmgr.IoOp
	started := r.gate("started")
	r.thread("app0", func() {
		cs.start()
		r.open(started)
		victim = r.vol.Issue(read(100))
		r.open(issued)
		finals = append(finals, victim.Wait().Status)
	})
	for i := 1; i <= 2; i++ {
		r.thread(fmt.Sprintf("app%d", i), func() {
			r.wait(started)
			for j := 0; j < 2; j++ {
				finals = append(finals, r.vol.Send(read(uint32(10*i+j))).Status)
			}
		})
	}
	cancelAfter := des.Duration(r.sim.Rand().IntN(5000)) * des.Microsecond
	r.thread("canceller", func() {
		r.wait(issued)
		r.k.KeDelayExecutionThread(cancelAfter)
		victim.Cancel()
	})
	unloadAfter := 3*des.Millisecond + des.Duration(r.sim.Rand().IntN(5000))*des.Microsecond
	r.thread("unloader", func() {
		r.wait(started)
		r.k.KeDelayExecutionThread(unloadAfter)
		assert.Equal(t, kernel.STATUS_SUCCESS, r.fm.FltUnloadFilter(cs.f))
	})
	out := r.run()
	return out, finals
}

// §7.1: across seeds, both step orders and both lock kinds, every read
// completes exactly once (a second completion would be 0x44), with
// STATUS_SUCCESS or — only a cancelled one — STATUS_CANCELLED; the unload
// finishes, the worker's work item and rundown reference are gone, and
// nothing leaks.
func TestCancelSafeSampleExplored(t *testing.T) {
	seeds := uint64(40)
	if testing.Short() {
		seeds = 8
	}
	for _, order := range []queues.CsqOrder{queues.CsqOrderMicrosoft, queues.CsqOrderReactOS} {
		for _, lock := range []lockKind{spinLocked, mutexLocked} {
			cancelled := 0
			for seed := uint64(1); seed <= seeds; seed++ {
				out, finals := cancelSafeRun(t, seed, order, lock, nil)
				require.NoError(t, out.Err, "seed %d %v %v", seed, order, lock)
				require.Len(t, finals, 5)
				for i, st := range finals {
					if st == kernel.STATUS_CANCELLED {
						cancelled++
						continue
					}
					require.Equal(t, kernel.STATUS_SUCCESS, st, "seed %d read %d", seed, i)
				}
			}
			t.Logf("%v/%v: the cancel won in %d of %d seeds", order, lock, cancelled, seeds)
			assert.Greater(t, cancelled, 0, "some schedule cancels the victim while it is queued")
			assert.Less(t, uint64(cancelled), seeds, "some schedule completes it first")
		}
	}
}

// STYLE 12: the same seed gives the same trace twice; replaying the
// decision log reproduces it; another seed gives another trace.
func TestCancelSafeDeterminism(t *testing.T) {
	a, _ := cancelSafeRun(t, 11, queues.CsqOrderMicrosoft, mutexLocked, nil)
	b, _ := cancelSafeRun(t, 11, queues.CsqOrderMicrosoft, mutexLocked, nil)
	require.NoError(t, a.Err)
	assert.Equal(t, a.Hash, b.Hash)
	assert.Equal(t, a.Decisions, b.Decisions)
	c, _ := cancelSafeRun(t, 11, queues.CsqOrderMicrosoft, mutexLocked, des.NewReplay(a.Decisions))
	assert.Equal(t, a.Hash, c.Hash, "replay reproduces the run")
	d, _ := cancelSafeRun(t, 12, queues.CsqOrderMicrosoft, mutexLocked, nil)
	assert.NotEqual(t, a.Hash, d.Hash)
}
