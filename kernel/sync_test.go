package kernel_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// REFERENCE §4.8: a KMUTEX is acquired by waiting on it, is recursive for
// its owner (signal state 1 − n), disables the owner's normal kernel APCs
// (an ERESOURCE needs no KeEnterCriticalRegion while one is held), and the
// last release hands it to the first waiter.
func TestKMutexRecursionAndHandoff(t *testing.T) {
	m := newMachine(t, oneCPU(), nil)
	k := m.Kernel
	mu := k.KeInitializeMutex("m", 0)
	var states []int32
	var order []string
	k.PsCreateSystemThread("owner", 8, func() {
		require.Equal(t, kernel.STATUS_SUCCESS, k.KeWaitForSingleObject(mu, kernel.Infinite))
		k.KeWaitForMutexObject(mu, kernel.Infinite) // wdm.h's other name for the same wait
		states = append(states, k.KeReadStateMutex(mu))
		r := k.ExInitializeResourceLite("r") // legal: the mutex disabled normal kernel APCs
		k.ExAcquireResourceExclusiveLite(r, true)
		k.ExReleaseResourceLite(r)
		k.Compute(100 * des.Microsecond) // the waiter blocks meanwhile
		states = append(states, k.KeReleaseMutex(mu, false), k.KeReleaseMutex(mu, false))
		order = append(order, "owner released")
	})
	k.PsCreateSystemThread("waiter", 8, func() {
		k.KeWaitForSingleObject(mu, kernel.Infinite)
		order = append(order, "waiter owns")
		assert.Same(t, k.KeGetCurrentThread(), mu.Owner())
		k.KeReleaseMutex(mu, false)
	})
	require.NoError(t, k.Run().Err)
	assert.Equal(t, []int32{-1, -1, 0}, states, "owned twice: 1−2; the releases return the previous state")
	assert.Equal(t, []string{"owner released", "waiter owns"}, order)
	assert.Nil(t, mu.Owner())
}

// REFERENCE §4.8: releasing a KMUTEX the caller does not own raises
// STATUS_MUTANT_NOT_OWNED, unhandled in a system thread: 0x7E.
func TestKMutexReleaseNotOwnedIs0x7E(t *testing.T) {
	out := runOne(t, kernel.DefaultConfig(), func(k *kernel.Kernel) {
		k.KeReleaseMutex(k.KeInitializeMutex("m", 0), false)
	})
	requireBugCheck(t, out, kernel.SYSTEM_THREAD_EXCEPTION_NOT_HANDLED, uint64(kernel.STATUS_MUTANT_NOT_OWNED))
}

// REFERENCE §4.8: a thread that exits owning a KMUTEX (the kernel's
// abandoned mutex) is THREAD_TERMINATE_HELD_MUTEX 0x4000008A.
func TestKMutexHeldAtExitIs0x4000008A(t *testing.T) {
	out := runOne(t, kernel.DefaultConfig(), func(k *kernel.Kernel) {
		k.KeWaitForSingleObject(k.KeInitializeMutex("m", 0), kernel.Infinite)
	})
	bc := requireBugCheck(t, out, kernel.THREAD_TERMINATE_HELD_MUTEX, 1)
	assert.Contains(t, bc.Detail, "mutex m")
}

// REFERENCE §4.8: two threads taking two KMUTEXes in opposite orders
// deadlock, and the report follows mutex ownership round the cycle.
func TestKMutexCycleIsReported(t *testing.T) {
	m := newMachine(t, kernel.DefaultConfig(), nil)
	k := m.Kernel
	a, b := k.KeInitializeMutex("A", 0), k.KeInitializeMutex("B", 0)
	take := func(first, second *kernel.KMUTEX) func() {
		return func() {
			k.KeWaitForSingleObject(first, kernel.Infinite)
			k.Compute(50 * des.Microsecond)
			k.KeWaitForSingleObject(second, kernel.Infinite)
		}
	}
	k.PsCreateSystemThread("t1", 8, take(a, b))
	k.PsCreateSystemThread("t2", 8, take(b, a))
	var d *kernel.Deadlock
	require.ErrorAs(t, k.Run().Err, &d)
	require.Len(t, d.Cycle, 2, d.Error())
	assert.Equal(t, "t2", d.Cycle[0].Owner, d.Error())
}

// REFERENCE §4.8: a guarded mutex leaves IRQL alone but puts the owner in
// a guarded region; a try-acquire of a held one fails; misuse is Verifier
// 0xC4 0x33 (at DISPATCH) and 0x34 (release by a non-owner).
func TestGuardedMutex(t *testing.T) {
	m := newMachine(t, oneCPU(), nil)
	k := m.Kernel
	g := k.KeInitializeGuardedMutex("g")
	k.PsCreateSystemThread("a", 8, func() {
		k.KeAcquireGuardedMutex(g)
		assert.Equal(t, kernel.PASSIVE_LEVEL, k.KeGetCurrentIrql())
		r := k.ExInitializeResourceLite("r") // legal in a guarded region
		k.ExAcquireResourceSharedLite(r, true)
		k.ExReleaseResourceLite(r)
		assert.False(t, k.KeTryToAcquireGuardedMutex(g), "not recursive")
		k.KeReleaseGuardedMutex(g)
		assert.True(t, k.KeTryToAcquireGuardedMutex(g))
		k.KeReleaseGuardedMutex(g)
	})
	require.NoError(t, k.Run().Err)

	out := runOne(t, kernel.DefaultConfig(), func(k *kernel.Kernel) {
		k.KeRaiseIrql(kernel.DISPATCH_LEVEL)
		k.KeAcquireGuardedMutex(k.KeInitializeGuardedMutex("g"))
	})
	requireBugCheck(t, out, kernel.DRIVER_VERIFIER_DETECTED_VIOLATION, 0x33)
	out = runOne(t, kernel.DefaultConfig(), func(k *kernel.Kernel) {
		k.KeReleaseGuardedMutex(k.KeInitializeGuardedMutex("g"))
	})
	requireBugCheck(t, out, kernel.DRIVER_VERIFIER_DETECTED_VIOLATION, 0x34)
}

// REFERENCE §4.6: ExAcquireFastMutexUnsafe leaves IRQL where the caller
// put it (APC_LEVEL here) and is refused above APC_LEVEL.
func TestFastMutexUnsafe(t *testing.T) {
	out := runOne(t, kernel.DefaultConfig(), func(k *kernel.Kernel) {
		fm := k.ExInitializeFastMutex("f")
		old := k.KeRaiseIrql(kernel.APC_LEVEL)
		k.ExAcquireFastMutexUnsafe(fm)
		assert.Equal(t, kernel.APC_LEVEL, k.KeGetCurrentIrql())
		k.ExReleaseFastMutexUnsafe(fm)
		assert.Equal(t, kernel.APC_LEVEL, k.KeGetCurrentIrql())
		k.KeLowerIrql(old)
	})
	require.NoError(t, out.Err)
	out = runOne(t, kernel.DefaultConfig(), func(k *kernel.Kernel) {
		k.KeRaiseIrql(kernel.DISPATCH_LEVEL)
		k.ExAcquireFastMutexUnsafe(k.ExInitializeFastMutex("f"))
	})
	requireBugCheck(t, out, kernel.DRIVER_VERIFIER_DETECTED_VIOLATION, 0x33)
}

// REFERENCE §4.8: an in-stack queued spin lock raises to DISPATCH_LEVEL,
// its handle restores the old IRQL, contenders spin and get it in order;
// releasing through an empty handle is 0x10.
func TestInStackQueuedSpinLock(t *testing.T) {
	m := newMachine(t, kernel.DefaultConfig(), nil)
	k := m.Kernel
	l := k.KeInitializeSpinLock("q")
	var order []string
	for _, n := range []string{"a", "b"} {
		k.PsCreateSystemThread(n, 8, func() {
			var h kernel.KLOCK_QUEUE_HANDLE
			k.KeAcquireInStackQueuedSpinLock(l, &h)
			assert.Equal(t, kernel.DISPATCH_LEVEL, k.KeGetCurrentIrql())
			order = append(order, n)
			k.Compute(20 * des.Microsecond)
			k.KeReleaseInStackQueuedSpinLock(&h)
			assert.Equal(t, kernel.PASSIVE_LEVEL, k.KeGetCurrentIrql())
		})
	}
	require.NoError(t, k.Run().Err)
	assert.Equal(t, []string{"a", "b"}, order)
	assert.Contains(t, m.trace.String(), "spin", "b spun while a held it")

	out := runOne(t, kernel.DefaultConfig(), func(k *kernel.Kernel) {
		var h kernel.KLOCK_QUEUE_HANDLE
		k.KeReleaseInStackQueuedSpinLock(&h)
	})
	requireBugCheck(t, out, kernel.SPIN_LOCK_NOT_OWNED, 0)
}

// REFERENCE §4.8: a DPC targeted at another processor runs there; with
// MediumImportance it waits for that processor's next scheduling point
// (choice 0 of the drain decision), with HighImportance it interrupts it
// at once.
func TestTargetedDpcAndImportance(t *testing.T) {
	run := func(imp kernel.KDPC_IMPORTANCE) (cpu int, at des.Time) {
		m := newMachine(t, kernel.DefaultConfig(), nil)
		k := m.Kernel
		d := k.KeInitializeDpc("d", func(*kernel.KDPC, any, any, any) {
			cpu, at = k.KeGetCurrentProcessorNumber(), k.Now()
		}, nil)
		k.KeSetTargetProcessorDpc(d, 0)
		k.KeSetImportanceDpc(d, imp)
		k.PsCreateSystemThread("busy", 8, func() { k.Compute(des.Millisecond) }) // cpu0
		k.PsCreateSystemThread("queuer", 8, func() {                             // cpu1
			k.KeInsertQueueDpc(d, nil, nil)
		})
		require.NoError(t, k.Run().Err)
		return cpu, at
	}
	cpu, late := run(kernel.MediumImportance)
	assert.Equal(t, 0, cpu)
	assert.GreaterOrEqual(t, late, des.Time(des.Millisecond), "deferred until busy's compute ends")
	cpu, early := run(kernel.HighImportance)
	assert.Equal(t, 0, cpu)
	assert.Less(t, early, late, "high importance interrupts the target at once")
}

// REFERENCE §4.8: a timer's expiry queues its DPC as KeInsertQueueDpc
// would, so a DPC that KeSetTargetProcessorDpc ties to a processor runs
// there, whichever processor set the timer (WRK KiTimerListExpire). The
// model queued a timer's DPC on the setter's processor whatever its target
// (found writing the rsscount driver). Untargeted, it stays on the
// setter's processor.
func TestTimerDpcRunsOnItsTargetProcessor(t *testing.T) {
	run := func(target int) []int {
		m := newMachine(t, kernel.DefaultConfig(), nil)
		k := m.Kernel
		var on []int
		d := k.KeInitializeDpc("tick", func(*kernel.KDPC, any, any, any) {
			on = append(on, k.KeGetCurrentProcessorNumber())
		}, nil)
		if target >= 0 {
			k.KeSetTargetProcessorDpc(d, target)
			k.KeSetImportanceDpc(d, kernel.HighImportance)
		}
		timer := k.KeInitializeTimerEx("watchdog", kernel.NotificationTimer)
		k.PsCreateSystemThread("setter", 8, func() {
			k.KeSetSystemAffinityThreadEx(1 << 0)
			k.KeSetTimerEx(timer, 10*des.Microsecond, 10*des.Microsecond, d)
			k.KeDelayExecutionThread(35 * des.Microsecond)
			k.KeCancelTimer(timer)
			k.KeFlushQueuedDpcs()
		})
		require.NoError(t, k.Run().Err)
		return on
	}
	assert.Equal(t, []int{1, 1, 1}, run(1), "targeted at cpu1, set from cpu0")
	assert.Equal(t, []int{0, 0, 0}, run(-1), "untargeted: the setter's processor")
}

// REFERENCE §4.8: HighImportance puts a DPC at the head of its queue.
func TestHighImportanceDpcRunsFirst(t *testing.T) {
	var order []string
	out := runOne(t, oneCPU(), func(k *kernel.Kernel) {
		mk := func(n string) *kernel.KDPC {
			return k.KeInitializeDpc(n, func(*kernel.KDPC, any, any, any) { order = append(order, n) }, nil)
		}
		a, b := mk("a"), mk("b")
		k.KeSetImportanceDpc(b, kernel.HighImportance)
		old := k.KeRaiseIrql(kernel.DISPATCH_LEVEL)
		k.KeInsertQueueDpc(a, nil, nil)
		k.KeInsertQueueDpc(b, nil, nil)
		k.KeLowerIrql(old)
	})
	require.NoError(t, out.Err)
	assert.Equal(t, []string{"b", "a"}, order)
}

// REFERENCE §4.8: KeFlushQueuedDpcs returns only after a DPC queued on
// another processor has run — the unload-versus-DPC fix: without the
// flush the "unload" would free the context under the DPC.
func TestFlushQueuedDpcsWaitsForOtherProcessor(t *testing.T) {
	m := newMachine(t, kernel.DefaultConfig(), nil)
	k := m.Kernel
	var events []string
	d := k.KeInitializeDpc("d", func(*kernel.KDPC, any, any, any) {
		k.Compute(200 * des.Microsecond)
		events = append(events, "dpc done")
	}, nil)
	k.KeSetTargetProcessorDpc(d, 1)
	k.KeSetImportanceDpc(d, kernel.HighImportance)
	k.PsCreateSystemThread("unloader", 8, func() { // cpu0
		k.Compute(10 * des.Microsecond) // cpu1's thread starts meanwhile
		k.KeInsertQueueDpc(d, nil, nil)
		k.KeFlushQueuedDpcs()
		events = append(events, "flushed")
	})
	k.PsCreateSystemThread("other", 8, func() { k.Compute(des.Millisecond) }) // cpu1
	require.NoError(t, k.Run().Err)
	assert.Equal(t, []string{"dpc done", "flushed"}, events)
}

// REFERENCE §4.8: a periodic timer expires every period, signalling and
// queueing its DPC each time, until it is cancelled.
func TestPeriodicTimer(t *testing.T) {
	var ticks []des.Time
	out := runOne(t, oneCPU(), func(k *kernel.Kernel) {
		tm := k.KeInitializeTimerEx("p", kernel.SynchronizationEvent)
		d := k.KeInitializeDpc("tick", func(*kernel.KDPC, any, any, any) { ticks = append(ticks, k.Now()) }, nil)
		k.KeSetTimerEx(tm, des.Millisecond, 2*des.Millisecond, d)
		for i := 0; i < 3; i++ {
			require.Equal(t, kernel.STATUS_SUCCESS, k.KeWaitForSingleObject(tm, kernel.Infinite))
		}
		assert.True(t, k.KeCancelTimer(tm))
	})
	require.NoError(t, out.Err, "a cancelled periodic timer lets the run quiesce")
	require.Len(t, ticks, 3)
	assert.Equal(t, 2*des.Millisecond, ticks[2].Sub(ticks[1]))
	assert.Equal(t, 2*des.Millisecond, ticks[1].Sub(ticks[0]))
}

// REFERENCE §4.8: the kernel's LIST_ENTRY keeps order, RemoveHeadList
// takes the first entry and RemoveTailList the last, and a second unlink of any entry is the fast
// fail 0x139 P1=3 at the call.
func TestListEntry(t *testing.T) {
	out := runOne(t, oneCPU(), func(k *kernel.Kernel) {
		var head, a, b, c kernel.LIST_ENTRY
		k.InitializeListHead(&head)
		assert.True(t, k.IsListEmpty(&head))
		assert.Same(t, &head, k.RemoveTailList(&head), "an empty list gives back its head")
		k.InsertTailList(&head, &b)
		k.InsertHeadList(&head, &a)
		k.InsertTailList(&head, &c)
		want := []*kernel.LIST_ENTRY{&a, &b, &c}
		i := 0
		for e := head.Flink; e != &head; e = e.Flink {
			require.Less(t, i, len(want))
			assert.Same(t, want[i], e)
			i++
		}
		assert.Same(t, &a, k.RemoveHeadList(&head))
		assert.Same(t, &c, k.RemoveTailList(&head), "RemoveTailList takes the last entry")
		k.InsertTailList(&head, &c)
		assert.False(t, k.RemoveEntryList(&b))
		assert.True(t, k.RemoveEntryList(&c), "the last entry leaves the list empty")
		k.RemoveEntryList(&c)
	})
	requireBugCheck(t, out, kernel.KERNEL_SECURITY_CHECK_FAILURE, kernel.FAST_FAIL_CORRUPT_LIST_ENTRY)
}

// A workload that dereferences a NULL pointer (AccessPool on a nil block)
// raises STATUS_ACCESS_VIOLATION, unhandled in a system thread: 0x7E with
// the exception code as P1; in a DPC, at DISPATCH_LEVEL, the fault cannot
// be taken: 0xD1 with P2 the IRQL (REFERENCE §1.8).
func TestAccessNullPoolIs0x7E(t *testing.T) {
	out := runOne(t, kernel.DefaultConfig(), func(k *kernel.Kernel) {
		k.AccessPool(nil, "context")
	})
	requireBugCheck(t, out, kernel.SYSTEM_THREAD_EXCEPTION_NOT_HANDLED, uint64(kernel.STATUS_ACCESS_VIOLATION))

	out = runOne(t, kernel.DefaultConfig(), func(k *kernel.Kernel) {
		dpc := k.KeInitializeDpc("deref", func(*kernel.KDPC, any, any, any) { k.AccessPool(nil, "context") }, nil)
		k.KeInsertQueueDpc(dpc, nil, nil)
		k.Compute(des.Microsecond)
	})
	bc := requireBugCheck(t, out, kernel.DRIVER_IRQL_NOT_LESS_OR_EQUAL, 0)
	assert.Equal(t, uint64(kernel.DISPATCH_LEVEL), bc.Params[1])
}

// REFERENCE §4.8: KeWaitForMultipleObjects does not reject the same object
// twice in a WaitAll array (only the handle-based system service does); as
// in WRK's KeWaitForMultipleObjects the wait tests every entry and then
// satisfies each one, so a semaphore listed twice gives up two units (even
// below zero), and a synchronization event listed twice releases the
// waiter once it is set.
// Neither is a finding.
func TestWaitAllWithTheSameObjectTwice(t *testing.T) {
	m := newMachine(t, oneCPU(), nil)
	k := m.Kernel
	sem := k.KeInitializeSemaphore("s", 2, 2)
	one := k.KeInitializeSemaphore("one", 1, 1)
	ev := k.KeInitializeEvent("e", kernel.SynchronizationEvent, false)
	var got []kernel.NTSTATUS
	var semLeft, oneLeft int
	var evLeft bool
	k.PsCreateSystemThread("w", 8, func() {
		got = append(got, k.KeWaitForMultipleObjects([]kernel.Waitable{sem, sem}, kernel.WaitAll, 0))
		semLeft = k.KeReadStateSemaphore(sem)
		got = append(got, k.KeWaitForMultipleObjects([]kernel.Waitable{one, one}, kernel.WaitAll, 0))
		oneLeft = k.KeReadStateSemaphore(one)
		got = append(got, k.KeWaitForMultipleObjects([]kernel.Waitable{ev, ev}, kernel.WaitAll, kernel.Infinite))
		evLeft = k.KeReadStateEvent(ev)
	})
	k.PsCreateSystemThread("s", 8, func() {
		k.KeDelayExecutionThread(des.Millisecond)
		k.KeSetEvent(ev, 0, false)
	})
	require.NoError(t, k.Run().Err)
	assert.Equal(t, []kernel.NTSTATUS{kernel.STATUS_SUCCESS, kernel.STATUS_SUCCESS, kernel.STATUS_SUCCESS}, got)
	assert.Equal(t, 0, semLeft, "each entry took a unit")
	assert.Equal(t, -1, oneLeft, "a count of one listed twice goes below zero, as in WRK")
	assert.False(t, evLeft, "the wait consumed the event's signal")
}

// namedJob is a queue entry with a name, as a driver's work packet.
type namedJob string

func (j namedJob) Name() string { return string(j) }

// REFERENCE §3.4: a hang with a KQUEUE still holding entries names the
// queue, how many entries it holds and the first one, besides the thread
// waiting for their results (fails without the queue note: the report
// named only the waiter).
func TestHangNamesAKQueuesStrandedEntries(t *testing.T) {
	m := newMachine(t, oneCPU(), nil)
	k := m.Kernel
	k.PsCreateSystemThread("producer", 8, func() {
		q := k.KeInitializeQueue("jobs", 0)
		done := k.KeInitializeEvent("done", kernel.NotificationEvent, false)
		k.KeInsertQueue(q, namedJob("job 1"))
		k.KeInsertQueue(q, namedJob("job 2"))
		k.KeWaitForSingleObject(done, kernel.Infinite) // no consumer ever sets it
	})
	out := k.Run()
	var d *kernel.Deadlock
	require.ErrorAs(t, out.Err, &d)
	require.Len(t, d.Pending, 1)
	assert.Equal(t, "queue jobs holds 2 entries nobody will remove (first: job 1; 0 threads wait in KeRemoveQueue)", d.Pending[0])
	assert.Contains(t, d.Error(), "producer")
}
