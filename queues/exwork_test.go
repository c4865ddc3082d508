package queues_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues"
)

// REFERENCE §3.1: queue-type values and names from wdm.h.
func TestWorkQueueTypeValues(t *testing.T) {
	assert.EqualValues(t, 0, queues.CriticalWorkQueue)
	assert.EqualValues(t, 1, queues.DelayedWorkQueue)
	assert.EqualValues(t, 2, queues.HyperCriticalWorkQueue)
	assert.EqualValues(t, 3, queues.NormalWorkQueue)
	assert.EqualValues(t, 4, queues.BackgroundWorkQueue)
	assert.EqualValues(t, 5, queues.RealTimeWorkQueue)
	assert.EqualValues(t, 6, queues.SuperCriticalWorkQueue)
	assert.EqualValues(t, 7, queues.MaximumWorkQueue)
	assert.EqualValues(t, 32, queues.CustomPriorityWorkQueue)
	assert.Equal(t, [7]int{13, 12, 15, 8, 7, 18, 14}, queues.DocumentedPriority)
	assert.Equal(t, "DelayedWorkQueue", queues.DelayedWorkQueue.String())
	assert.Equal(t, "CustomPriorityWorkQueue+10", (queues.CustomPriorityWorkQueue + 10).String())
	assert.Equal(t, "WORK_QUEUE_TYPE(9)", queues.WORK_QUEUE_TYPE(9).String())
	assert.False(t, queues.MaximumWorkQueue.Valid())
	assert.False(t, queues.WORK_QUEUE_TYPE(-1).Valid())
	assert.True(t, (queues.CustomPriorityWorkQueue + 31).Valid())
	assert.False(t, (queues.CustomPriorityWorkQueue + 32).Valid())
}

// REFERENCE §1.1, §3.3: the routine runs once, in a delayed worker thread at
// PASSIVE_LEVEL with its parameter; the item is unlinked before it runs; the
// trace shows queue, dequeue, run and return.
func TestExWorkItemRunsInWorkerAtPassive(t *testing.T) {
	r := newWIRig(t, wiCPUs(2), queues.DefaultPoolConfig())
	k, sys := r.k, r.sys
	var item queues.WORK_QUEUE_ITEM
	var ran []string
	r.driver(8, func() {
		queues.ExInitializeWorkItem(&item, func(p any) {
			assert.False(t, item.Queued(), "unlinked before the routine runs")
			assert.Equal(t, kernel.PASSIVE_LEVEL, k.KeGetCurrentIrql())
			ran = append(ran, fmt.Sprint(wiCurrent(k), " ", p))
		}, 42)
		sys.ExQueueWorkItem(&item, queues.DelayedWorkQueue)
		assert.True(t, item.Queued() || len(ran) == 1)
	})
	out := r.run(t)
	require.NoError(t, out.Err)
	require.Len(t, ran, 1)
	assert.Regexp(t, `^worker\.delayed\.\d 42$`, ran[0])
	for _, what := range []string{"ExQueueWorkItem", "dequeue", "run", "return"} {
		assert.Contains(t, r.trace.String(), " "+what+" ")
	}
	assert.EqualValues(t, 1, sys.Queue(queues.DelayedWorkQueue).Processed)
}

// REFERENCE §3.3 item 1: items are FIFO.
func TestItemsRunFIFO(t *testing.T) {
	pcfg := wiPool(queues.Fixed())
	pcfg.Static[queues.DelayedWorkQueue] = 1
	r := newWIRig(t, wiCPUs(1), pcfg)
	k, sys := r.k, r.sys
	items := make([]queues.WORK_QUEUE_ITEM, 6)
	var order []int
	r.driver(20, func() { // above the worker: everything is queued before it runs
		for i := range items {
			queues.ExInitializeWorkItem(&items[i], func(p any) { order = append(order, p.(int)); k.Compute(des.Microsecond) }, i)
			sys.ExQueueWorkItem(&items[i], queues.DelayedWorkQueue)
		}
		assert.Equal(t, 6, sys.Queue(queues.DelayedWorkQueue).Depth)
	})
	require.NoError(t, r.run(t).Err)
	assert.Equal(t, []int{0, 1, 2, 3, 4, 5}, order)
}

// REFERENCE §3.3 item 1: idle workers are woken LIFO: the worker that
// blocked last gets the next item, and gets it again after it went back.
func TestIdleWorkersWokenLIFO(t *testing.T) {
	r := newWIRig(t, wiCPUs(1), queues.DefaultPoolConfig())
	k, sys := r.k, r.sys
	var a, b queues.WORK_QUEUE_ITEM
	var who []string
	routine := func(any) { who = append(who, wiCurrent(k)) }
	r.driver(8, func() {
		queues.ExInitializeWorkItem(&a, routine, nil)
		sys.ExQueueWorkItem(&a, queues.DelayedWorkQueue)
		k.KeDelayExecutionThread(des.Millisecond)
		queues.ExInitializeWorkItem(&b, routine, nil)
		sys.ExQueueWorkItem(&b, queues.DelayedWorkQueue)
	})
	require.NoError(t, r.run(t).Err)
	// On one processor the three delayed workers block in creation order.
	assert.Equal(t, []string{"worker.delayed.2", "worker.delayed.2"}, who)
}

// wiStartTimes queues three delayed items from a driver thread above the
// workers, on two processors with the static threads only; each routine
// notes when it started, then runs body. It returns the rig after the run
// and the start times, in start order.
func wiStartTimes(t *testing.T, body func(k *kernel.Kernel)) (*wiRig, []des.Time) {
	t.Helper()
	r := newWIRig(t, wiCPUs(2), wiPool(queues.Fixed()))
	k, sys := r.k, r.sys
	items := make([]queues.WORK_QUEUE_ITEM, 3)
	var starts []des.Time
	r.driver(20, func() {
		for i := range items {
			queues.ExInitializeWorkItem(&items[i], func(any) {
				starts = append(starts, k.Now())
				body(k)
			}, nil)
			sys.ExQueueWorkItem(&items[i], queues.DelayedWorkQueue)
		}
	})
	require.NoError(t, r.run(t).Err)
	return r, starts
}

// REFERENCE §3.2–3.3: the concurrency limit is the processor count: with 2
// processors only 2 of 3 computing routines run at once.
func TestConcurrencyLimitIsProcessorCount(t *testing.T) {
	r, starts := wiStartTimes(t, func(k *kernel.Kernel) { k.Compute(10 * des.Millisecond) })
	assert.Equal(t, 2, r.sys.Queue(queues.DelayedWorkQueue).Limit)
	require.Len(t, starts, 3)
	assert.Less(t, starts[1], des.Time(des.Millisecond))
	assert.GreaterOrEqual(t, starts[2], des.Time(10*des.Millisecond), "the third waits for a slot")
}

// REFERENCE §3.3 item 3: a worker that blocks frees its slot, so a blocked
// routine does not hold up the queue while idle workers exist.
func TestBlockedWorkerFreesItsSlot(t *testing.T) {
	_, starts := wiStartTimes(t, func(k *kernel.Kernel) { k.KeDelayExecutionThread(10 * des.Millisecond) })
	require.Len(t, starts, 3)
	assert.Less(t, starts[2], des.Time(des.Millisecond), "all three run while the first two wait")
}

// REFERENCE §3.3 item 5, §1.2: the item is unlinked before its routine is
// called, so the routine may requeue it.
func TestRoutineMayRequeueItself(t *testing.T) {
	r := newWIRig(t, wiCPUs(2), queues.DefaultPoolConfig())
	k, sys := r.k, r.sys
	var item queues.WORK_QUEUE_ITEM
	n := 0
	r.driver(8, func() {
		queues.ExInitializeWorkItem(&item, func(any) {
			n++
			if n < 5 {
				sys.ExQueueWorkItem(&item, queues.DelayedWorkQueue)
			}
			k.Compute(des.Microsecond)
		}, nil)
		sys.ExQueueWorkItem(&item, queues.DelayedWorkQueue)
	})
	require.NoError(t, r.run(t).Err)
	assert.Equal(t, 5, n)
}

// The bug checks of ExQueueWorkItem and of the worker's checks.
func TestExWorkItemBugChecks(t *testing.T) {
	nop := func(any) {}
	cases := []struct {
		name    string
		section string
		cfg     func(*queues.PoolConfig)
		body    func(r *wiRig)
		code    uint32
		p1      uint64
	}{
		{"routine returns at DISPATCH", "§1.1, §6.12: 0xE1 P2=IRQL", nil, func(r *wiRig) {
			var it queues.WORK_QUEUE_ITEM
			l := r.k.KeInitializeSpinLock("forgotten")
			queues.ExInitializeWorkItem(&it, func(any) { r.k.KeAcquireSpinLock(l) }, nil)
			r.sys.ExQueueWorkItem(&it, queues.DelayedWorkQueue)
		}, kernel.WORKER_THREAD_RETURNED_AT_BAD_IRQL, wiAnyP1},
		{"routine returns in a critical region", "§1.1, §1.8: 0x01 P4=1", nil, func(r *wiRig) {
			var it queues.WORK_QUEUE_ITEM
			queues.ExInitializeWorkItem(&it, func(any) { r.k.KeEnterCriticalRegion() }, nil)
			r.sys.ExQueueWorkItem(&it, queues.DelayedWorkQueue)
		}, kernel.APC_INDEX_MISMATCH, wiAnyP1},
		{"routine terminates its worker", "§1.1, §4.18: 0xE9", nil, func(r *wiRig) {
			var it queues.WORK_QUEUE_ITEM
			queues.ExInitializeWorkItem(&it, func(any) { r.k.PsTerminateSystemThread(kernel.STATUS_SUCCESS) }, nil)
			r.sys.ExQueueWorkItem(&it, queues.DelayedWorkQueue)
		}, kernel.ACTIVE_EX_WORKER_THREAD_TERMINATION, wiAnyP1},
		{"item queued twice", "§1.1, §6.6: 0xE4 P1=1", nil, func(r *wiRig) {
			var it queues.WORK_QUEUE_ITEM
			queues.ExInitializeWorkItem(&it, nop, nil)
			r.sys.ExQueueWorkItem(&it, queues.DelayedWorkQueue)
			r.sys.ExQueueWorkItem(&it, queues.DelayedWorkQueue)
		}, kernel.WORKER_INVALID, 1},
		{"item queued twice, corrupting", "§6.6: second removal 0x96", func(c *queues.PoolConfig) {
			c.DoubleQueue = queues.DoubleQueueCorrupt
		}, func(r *wiRig) {
			var it queues.WORK_QUEUE_ITEM
			queues.ExInitializeWorkItem(&it, nop, nil)
			r.sys.ExQueueWorkItem(&it, queues.DelayedWorkQueue)
			r.sys.ExQueueWorkItem(&it, queues.DelayedWorkQueue)
		}, kernel.INVALID_WORK_QUEUE_ITEM, 1},
		{"re-initialised while queued", "§1.1: the macro nulls the link → 0x96", nil, func(r *wiRig) {
			var it queues.WORK_QUEUE_ITEM
			queues.ExInitializeWorkItem(&it, nop, nil)
			r.sys.ExQueueWorkItem(&it, queues.DelayedWorkQueue)
			queues.ExInitializeWorkItem(&it, nop, nil)
		}, kernel.INVALID_WORK_QUEUE_ITEM, 1},
		{"invalid queue type", "§1.1: 0xE4 P1=6", nil, func(r *wiRig) {
			var it queues.WORK_QUEUE_ITEM
			queues.ExInitializeWorkItem(&it, nop, nil)
			r.sys.ExQueueWorkItem(&it, queues.MaximumWorkQueue)
		}, kernel.WORKER_INVALID, 6},
		{"no routine", "§1.1: 0xE4 P1=7", nil, func(r *wiRig) {
			var it queues.WORK_QUEUE_ITEM
			r.sys.ExQueueWorkItem(&it, queues.DelayedWorkQueue)
		}, kernel.WORKER_INVALID, 7},
		{"pool holding a queued item freed", "§1.1, §6.7: 0xE4 P1=0", nil, func(r *wiRig) {
			b := r.k.ExAllocatePoolWithTag(kernel.NonPagedPool, queues.SizeofWorkQueueItem, "Wrk1")
			it := &queues.WORK_QUEUE_ITEM{Block: b}
			queues.ExInitializeWorkItem(it, nop, nil)
			r.sys.ExQueueWorkItem(it, queues.DelayedWorkQueue)
			r.k.ExFreePoolWithTag(b, "Wrk1")
		}, kernel.WORKER_INVALID, 0},
		{"queueing an item whose pool was freed", "§6.7: use after free 0xD5", nil, func(r *wiRig) {
			b := r.k.ExAllocatePoolWithTag(kernel.NonPagedPool, queues.SizeofWorkQueueItem, "Wrk1")
			it := &queues.WORK_QUEUE_ITEM{Block: b}
			queues.ExInitializeWorkItem(it, nop, nil)
			r.k.ExFreePoolWithTag(b, "Wrk1")
			r.sys.ExQueueWorkItem(it, queues.DelayedWorkQueue)
		}, kernel.DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL, 1},
		{"item in paged pool", "§1.1: Verifier 0xC4 P1=0x131", nil, func(r *wiRig) {
			b := r.k.ExAllocatePoolWithTag(kernel.PagedPool, queues.SizeofWorkQueueItem, "Wrk1")
			it := &queues.WORK_QUEUE_ITEM{Block: b}
			queues.ExInitializeWorkItem(it, nop, nil)
			r.sys.ExQueueWorkItem(it, queues.DelayedWorkQueue)
		}, kernel.DRIVER_VERIFIER_DETECTED_VIOLATION, 0x131},
		{"ExQueueWorkItem above DISPATCH", "§1.1: caller IRQL ≤ DISPATCH", nil, func(r *wiRig) {
			var it queues.WORK_QUEUE_ITEM
			queues.ExInitializeWorkItem(&it, nop, nil)
			r.k.KeRaiseIrql(kernel.IRQL(5))
			r.sys.ExQueueWorkItem(&it, queues.DelayedWorkQueue)
		}, kernel.IRQL_NOT_LESS_OR_EQUAL, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pcfg := queues.DefaultPoolConfig()
			if tc.cfg != nil {
				tc.cfg(&pcfg)
			}
			r := newWIRig(t, wiCPUs(1), pcfg)
			r.driver(20, func() { tc.body(r) }) // above the workers: they run when it is done
			out := r.run(t)
			bc := wiRequireBugCheck(t, out, tc.code, tc.p1)
			assert.NotEmpty(t, bc.Detail, tc.section)
			if tc.name == "pool holding a queued item freed" {
				assert.Contains(t, bc.Detail, "was freed (pool block #1, by driver at t=", "the report names who freed it, not only the worker that found it")
			}
		})
	}
}

// REFERENCE §1.1, §6.12: 0xE1 parameters: P1 routine, P2 IRQL, P3 parameter,
// P4 item; raised by the worker, not the driver.
func TestBadIrqlParameters(t *testing.T) {
	r := newWIRig(t, wiCPUs(1), queues.DefaultPoolConfig())
	var it queues.WORK_QUEUE_ITEM
	r.driver(8, func() {
		queues.ExInitializeWorkItem(&it, func(any) { r.k.KeRaiseIrql(kernel.DISPATCH_LEVEL) }, 7)
		r.sys.ExQueueWorkItem(&it, queues.DelayedWorkQueue)
	})
	out := r.run(t)
	var bc *kernel.BugCheck
	require.ErrorAs(t, out.Err, &bc)
	assert.Equal(t, kernel.WORKER_THREAD_RETURNED_AT_BAD_IRQL, bc.Code)
	assert.NotZero(t, bc.Params[0], "P1 identifies the routine")
	assert.EqualValues(t, kernel.DISPATCH_LEVEL, bc.Params[1])
	assert.EqualValues(t, 7, bc.Params[2], "P3 the parameter")
	assert.Equal(t, it.ID(), bc.Params[3], "P4 the item")
	assert.Equal(t, "worker.delayed.2", bc.Actor)
	assert.Contains(t, bc.Detail, "TestBadIrqlParameters", "the detail names the routine's Go symbol")
}

// REFERENCE §1.1: the other reading of a routine that leaves APCs disabled
// (ReactOS warns and repairs) is a config switch.
func TestRepairApcDisable(t *testing.T) {
	pcfg := queues.DefaultPoolConfig()
	pcfg.RepairApcDisable = true
	r := newWIRig(t, wiCPUs(1), pcfg)
	var it queues.WORK_QUEUE_ITEM
	r.driver(8, func() {
		queues.ExInitializeWorkItem(&it, func(any) { r.k.KeEnterCriticalRegion() }, nil)
		r.sys.ExQueueWorkItem(&it, queues.DelayedWorkQueue)
	})
	require.NoError(t, r.run(t).Err)
	assert.Contains(t, r.trace.String(), "apc-disable-repaired")
}

// REFERENCE §6.6: the double-queue check and the insert are separate
// steps; two threads queueing the same item on two processors both pass
// the check, and the second removal finds the nulled link (0x96).
func TestDoubleQueueRaceEndsIn0x96(t *testing.T) {
	pcfg := wiPool(queues.Fixed())
	pcfg.Static[queues.DelayedWorkQueue] = 1
	r := newWIRig(t, wiCPUs(2), pcfg)
	k, sys := r.k, r.sys
	var it queues.WORK_QUEUE_ITEM
	queues.ExInitializeWorkItem(&it, func(any) { k.Compute(des.Millisecond) }, nil)
	for _, name := range []string{"t1", "t2"} {
		k.PsCreateSystemThread(name, 20, func() { sys.ExQueueWorkItem(&it, queues.DelayedWorkQueue) })
	}
	wiRequireBugCheck(t, r.run(t), kernel.INVALID_WORK_QUEUE_ITEM, 1)
}

// REFERENCE §3.1, DDI:ExQueueWorkItem: a driver's item on a system queue is
// a contract violation, not a bug check; kernel-owned items may use any
// valid type; with ContractChecks off the item just runs there.
func TestDriverOnSystemQueueIsContractViolation(t *testing.T) {
	for _, typ := range []queues.WORK_QUEUE_TYPE{queues.HyperCriticalWorkQueue, queues.NormalWorkQueue, queues.RealTimeWorkQueue} {
		t.Run(typ.String(), func(t *testing.T) {
			r := newWIRig(t, wiCPUs(1), queues.DefaultPoolConfig())
			r.driver(8, func() {
				drv, _ := r.sys.LoadDriver("drv", func(*queues.DRIVER_OBJECT) kernel.NTSTATUS { return kernel.STATUS_SUCCESS })
				var it queues.WORK_QUEUE_ITEM
				drv.ExInitializeWorkItem(&it, func(any) {}, nil)
				r.sys.ExQueueWorkItem(&it, typ)
			})
			var cv *queues.ContractViolation
			require.ErrorAs(t, r.run(t).Err, &cv)
			assert.Equal(t, "ExQueueWorkItem", cv.API)
			assert.Contains(t, cv.Error(), "reserved")
		})
	}
	t.Run("kernel code may", func(t *testing.T) {
		r := newWIRig(t, wiCPUs(1), queues.DefaultPoolConfig())
		var who string
		r.driver(8, func() {
			var it queues.WORK_QUEUE_ITEM
			queues.ExInitializeWorkItem(&it, func(any) { who = wiCurrent(r.k) }, nil)
			r.sys.ExQueueWorkItem(&it, queues.HyperCriticalWorkQueue)
		})
		require.NoError(t, r.run(t).Err)
		assert.Equal(t, "worker.hypercritical.0", who)
	})
	t.Run("checks off", func(t *testing.T) {
		pcfg := queues.DefaultPoolConfig()
		pcfg.ContractChecks = false
		r := newWIRig(t, wiCPUs(1), pcfg)
		var who string
		r.driver(8, func() {
			drv, _ := r.sys.LoadDriver("drv", func(*queues.DRIVER_OBJECT) kernel.NTSTATUS { return kernel.STATUS_SUCCESS })
			var it queues.WORK_QUEUE_ITEM
			drv.ExInitializeWorkItem(&it, func(any) { who = wiCurrent(r.k) }, nil)
			r.sys.ExQueueWorkItem(&it, queues.NormalWorkQueue)
		})
		require.NoError(t, r.run(t).Err)
		assert.Equal(t, "worker.normal.0", who, "lazily created queue with one thread")
	})
}

// REFERENCE §3.1: custom-priority queues (Windows 8.1+) are served at the
// given priority, created at first use.
func TestCustomPriorityQueue(t *testing.T) {
	r := newWIRig(t, wiCPUs(1), queues.DefaultPoolConfig())
	var prio int
	var who string
	r.driver(8, func() {
		drv, _ := r.sys.LoadDriver("drv", func(*queues.DRIVER_OBJECT) kernel.NTSTATUS { return kernel.STATUS_SUCCESS })
		var it queues.WORK_QUEUE_ITEM
		drv.ExInitializeWorkItem(&it, func(any) {
			who = wiCurrent(r.k)
			prio = r.k.KeGetCurrentThread().BasePriority()
		}, nil)
		r.sys.ExQueueWorkItem(&it, queues.CustomPriorityWorkQueue+10)
	})
	require.NoError(t, r.run(t).Err)
	assert.Equal(t, "worker.custom10.0", who)
	assert.Equal(t, 10, prio)
}

// REFERENCE §1.1 (end of run): an item no worker ever took is reported.
func TestItemStillQueuedAtEndIsReported(t *testing.T) {
	pcfg := wiPool(queues.Fixed())
	pcfg.LazyThreads = 0
	r := newWIRig(t, wiCPUs(1), pcfg)
	r.driver(8, func() {
		var it queues.WORK_QUEUE_ITEM
		queues.ExInitializeWorkItem(&it, func(any) {}, nil)
		r.sys.ExQueueWorkItem(&it, queues.BackgroundWorkQueue)
	})
	var leak *kernel.Leak
	require.ErrorAs(t, r.run(t).Err, &leak)
	assert.Contains(t, leak.Error(), "still queued on BackgroundWorkQueue with 0 worker threads")
}

// stallOnce answers "stall" at the first injection point of the thread
// whose id it is armed with, and choice 0 everywhere else.
type stallOnce struct{ actor int32 }

func (c *stallOnce) Choose(p des.Point, n int) int {
	if p.Kind == kernel.PointInject && c.actor != 0 && p.Actor == c.actor {
		c.actor = 0
		return 2
	}
	return 0
}

// REFERENCE §6.7: an item freed on another processor while the call that
// queues it sits in KeInsertQueue's scheduling point (after the checks) is
// written into freed memory by the insert: 0xD5 in ExQueueWorkItem, by the
// queueing thread, not a later "freed while queued" 0xE4 from the worker
// that dequeues it.
func TestQueueingAnItemFreedMidCallIs0xD5(t *testing.T) {
	kcfg := wiCPUs(2)
	kcfg.InjectPreemption = true
	ch := &stallOnce{}
	r := newWIRigOpts(t, kcfg, queues.DefaultPoolConfig(), wiOpts{chooser: ch})
	k, sys := r.k, r.sys
	var it queues.WORK_QUEUE_ITEM
	var queuer *kernel.Thread
	queuer = k.PsCreateSystemThread("queuer", 8, func() {
		it.Block = k.ExAllocatePoolWithTag(kernel.NonPagedPool, queues.SizeofWorkQueueItem, "Work")
		queues.ExInitializeWorkItem(&it, func(any) {}, nil)
		ch.actor = queuer.ID()
		sys.ExQueueWorkItem(&it, queues.DelayedWorkQueue) // stalled between its checks and the insert
	})
	k.PsCreateSystemThread("freer", 8, func() {
		k.KeDelayExecutionThread(10 * des.Microsecond)
		k.ExFreePool(it.Block)
	})
	bc := wiRequireBugCheck(t, r.run(t), kernel.DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL, wiAnyP1)
	assert.Contains(t, bc.Error(), "ExQueueWorkItem wrote the list entry of work item")
	assert.Contains(t, bc.Error(), "by queuer")
}
