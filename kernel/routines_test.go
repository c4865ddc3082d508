package kernel_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// REFERENCE §4.16: the clock queries read the virtual clock in Windows'
// units (100 ns for interrupt and system time, PerformanceFrequency counts
// per second, TimeIncrement ticks), the same in every run.
func TestClockQueries(t *testing.T) {
	type reading struct {
		interrupt, tick uint64
		system, counter int64
		freq            int64
		count           int
		mask            uint64
	}
	var r reading
	cfg := kernel.DefaultConfig()
	cfg.Processors = 3
	out := runOne(t, cfg, func(k *kernel.Kernel) {
		k.KeDelayExecutionThread(40*des.Millisecond + 250*des.Microsecond)
		r.interrupt = k.KeQueryInterruptTime()
		r.system = k.KeQuerySystemTime()
		r.counter, r.freq = k.KeQueryPerformanceCounter()
		r.tick = k.KeQueryTickCount()
		r.count, r.mask = k.KeQueryActiveProcessorCount()
	})
	require.NoError(t, out.Err)
	// The readings come a few call costs after the delay ends.
	assert.InDelta(t, 402_500, float64(r.interrupt), 50, "100-ns units since boot")
	assert.Equal(t, kernel.SystemTimeAtBoot+int64(r.interrupt), r.system)
	assert.Equal(t, kernel.PerformanceFrequency, r.freq)
	assert.InDelta(t, 402_500, float64(r.counter), 50, "10 MHz counter")
	assert.Equal(t, uint64(2), r.tick, "40.25 ms is two whole 15.625 ms ticks")
	assert.Equal(t, 3, r.count)
	assert.Equal(t, uint64(0b111), r.mask)
}

// REFERENCE §4.16: KeStallExecutionProcessor busy-waits at the caller's
// IRQL. Stalling 30 µs in a DPC keeps the processor: a thread made ready
// on it meanwhile runs only after the stall.
func TestStallExecutionProcessorKeepsTheProcessor(t *testing.T) {
	var stallStart, stallEnd, threadRan des.Time
	out := runOne(t, oneCPU(), func(k *kernel.Kernel) {
		ev := k.KeInitializeEvent("go", kernel.NotificationEvent, false)
		k.PsCreateSystemThread("waiter", 15, func() {
			k.KeWaitForSingleObject(ev, kernel.Infinite)
			threadRan = k.Now()
		})
		dpc := k.KeInitializeDpc("stall", func(*kernel.KDPC, any, any, any) {
			k.KeSetEvent(ev, 0, false) // the waiter outranks us, but DPCs are not preempted
			stallStart = k.Now()
			k.KeStallExecutionProcessor(30)
			stallEnd = k.Now()
		}, nil)
		k.KeInsertQueueDpc(dpc, nil, nil)
	})
	require.NoError(t, out.Err)
	assert.Equal(t, 30*des.Microsecond, stallEnd.Sub(stallStart), "the stall's length")
	assert.GreaterOrEqual(t, int64(threadRan), int64(stallEnd), "the waiter ran after the stalled DPC")
}

// REFERENCE §4.18: PsTerminateSystemThread does not return; the thread
// exits with the status given, and a waiter on the thread object wakes.
func TestPsTerminateSystemThreadEndsTheThread(t *testing.T) {
	afterCall := false
	var worker *kernel.Thread
	var waited kernel.NTSTATUS = 1
	out := runOne(t, oneCPU(), func(k *kernel.Kernel) {
		worker = k.PsCreateSystemThread("quitter", 8, func() {
			k.PsTerminateSystemThread(kernel.STATUS_CANCELLED)
			afterCall = true
		})
		waited = k.KeWaitForSingleObject(worker.Object(), kernel.Infinite)
	})
	require.NoError(t, out.Err)
	assert.False(t, afterCall, "PsTerminateSystemThread returned")
	assert.Equal(t, kernel.STATUS_SUCCESS, waited, "the thread object was signalled at exit")
	assert.Equal(t, kernel.STATUS_CANCELLED, worker.ExitStatus())
	assert.Equal(t, kernel.Terminated, worker.State())
}

// REFERENCE §4.18: the exit checks apply to a terminated thread as to one
// whose body returned (here a KMUTEX still held, 0x4000008A), and a DPC is
// not a thread it may terminate (0x0A: the routine requires PASSIVE_LEVEL).
func TestPsTerminateSystemThreadChecks(t *testing.T) {
	out := runOne(t, oneCPU(), func(k *kernel.Kernel) {
		m := k.KeInitializeMutex("held", 0)
		k.KeWaitForSingleObject(m, kernel.Infinite)
		k.PsTerminateSystemThread(kernel.STATUS_SUCCESS)
	})
	requireBugCheck(t, out, kernel.THREAD_TERMINATE_HELD_MUTEX, 1)

	out = runOne(t, oneCPU(), func(k *kernel.Kernel) {
		dpc := k.KeInitializeDpc("rogue", func(*kernel.KDPC, any, any, any) {
			k.PsTerminateSystemThread(kernel.STATUS_SUCCESS)
		}, nil)
		k.KeInsertQueueDpc(dpc, nil, nil)
	})
	bc := requireBugCheck(t, out, kernel.IRQL_NOT_LESS_OR_EQUAL, 0)
	assert.Equal(t, "PsTerminateSystemThread", bc.API)
}

// REFERENCE §4.17: ExAllocatePool2 takes its pool from the flags (exactly
// one pool type) and refuses an empty tag with nil; paged pool at
// DISPATCH_LEVEL is the same violation as with ExAllocatePoolWithTag
// (§4.9).
func TestExAllocatePool2(t *testing.T) {
	var np, pg, none, both, untagged *kernel.PoolBlock
	out := runOne(t, oneCPU(), func(k *kernel.Kernel) {
		np = k.ExAllocatePool2(kernel.POOL_FLAG_NON_PAGED, 64, "Np2a")
		pg = k.ExAllocatePool2(kernel.POOL_FLAG_PAGED|kernel.POOL_FLAG_UNINITIALIZED, 32, "Pg2a")
		none = k.ExAllocatePool2(kernel.POOL_FLAG_USE_QUOTA, 8, "None")
		both = k.ExAllocatePool2(kernel.POOL_FLAG_PAGED|kernel.POOL_FLAG_NON_PAGED, 8, "Both")
		untagged = k.ExAllocatePool2(kernel.POOL_FLAG_NON_PAGED, 8, "")
		k.ExFreePoolWithTag(np, "Np2a")
		k.ExFreePoolWithTag(pg, "Pg2a")
	})
	require.NoError(t, out.Err)
	require.NotNil(t, np)
	require.NotNil(t, pg)
	assert.Equal(t, kernel.NonPagedPool, np.Type)
	assert.Equal(t, kernel.PagedPool, pg.Type)
	assert.Nil(t, none, "no pool type")
	assert.Nil(t, both, "two pool types")
	assert.Nil(t, untagged, "a zero tag")

	out = runOne(t, oneCPU(), func(k *kernel.Kernel) {
		l := k.KeInitializeSpinLock("l")
		old := k.KeAcquireSpinLock(l)
		k.ExAllocatePool2(kernel.POOL_FLAG_PAGED, 8, "Bad!")
		k.KeReleaseSpinLock(l, old)
	})
	requireBugCheck(t, out, kernel.DRIVER_VERIFIER_DETECTED_VIOLATION, 0x1) // Verifier is on by default
}

// REFERENCE §4.17: with POOL_FLAG_RAISE_ON_FAILURE a failed allocation
// raises STATUS_INSUFFICIENT_RESOURCES, which the driver does not handle
// (0x7E in a thread); without it the result is nil.
func TestExAllocatePool2RaiseOnFailure(t *testing.T) {
	cfg := oneCPU()
	cfg.InjectAllocFailures = true
	fail := failAllocations{}
	run := func(flags kernel.POOL_FLAGS) (des.Outcome, *kernel.PoolBlock) {
		m := newMachine(t, cfg, fail)
		var b *kernel.PoolBlock
		m.PsCreateSystemThread("driver", 8, func() { b = m.ExAllocatePool2(flags, 16, "Fail") })
		return m.Run(), b
	}
	out, b := run(kernel.POOL_FLAG_NON_PAGED)
	require.NoError(t, out.Err)
	assert.Nil(t, b)
	out, _ = run(kernel.POOL_FLAG_NON_PAGED | kernel.POOL_FLAG_RAISE_ON_FAILURE)
	requireBugCheck(t, out, kernel.SYSTEM_THREAD_EXCEPTION_NOT_HANDLED, uint64(kernel.STATUS_INSUFFICIENT_RESOURCES))
}

// REFERENCE §4.6: the try variants take a free lock (raising IRQL as the
// plain acquire does) and return false, without waiting, for a held one.
func TestTryAcquireRoutines(t *testing.T) {
	cfg := kernel.DefaultConfig()
	cfg.Processors = 2
	var gotFM, gotFMBusy, gotSL, gotSLBusy bool
	var irqlFM kernel.IRQL
	out := runOne(t, cfg, func(k *kernel.Kernel) {
		fm := k.ExInitializeFastMutex("fm")
		sl := k.KeInitializeSpinLock("sl")
		holding := k.KeInitializeEvent("holding", kernel.NotificationEvent, false)
		done := k.KeInitializeEvent("done", kernel.NotificationEvent, false)
		k.PsCreateSystemThread("holder", 8, func() {
			k.ExAcquireFastMutex(fm)
			old := k.KeAcquireSpinLock(sl)
			k.KeSetEvent(holding, 0, false)
			k.KeStallExecutionProcessor(50)
			k.KeReleaseSpinLock(sl, old)
			k.KeWaitForSingleObject(done, kernel.Infinite)
			k.ExReleaseFastMutex(fm)
		})
		k.KeWaitForSingleObject(holding, kernel.Infinite)
		gotFMBusy = k.ExTryToAcquireFastMutex(fm)
		old := k.KeRaiseIrqlToDpcLevel()
		gotSLBusy = k.KeTryToAcquireSpinLockAtDpcLevel(sl)
		k.KeLowerIrql(old)
		k.KeSetEvent(done, 0, false)
		k.KeDelayExecutionThread(100 * des.Microsecond)
		gotFM = k.ExTryToAcquireFastMutex(fm)
		irqlFM = k.KeGetCurrentIrql()
		k.ExReleaseFastMutex(fm)
		old = k.KeRaiseIrqlToDpcLevel()
		gotSL = k.KeTryToAcquireSpinLockAtDpcLevel(sl)
		k.KeReleaseSpinLockFromDpcLevel(sl)
		k.KeLowerIrql(old)
	})
	require.NoError(t, out.Err)
	assert.False(t, gotFMBusy, "fast mutex held by another thread")
	assert.False(t, gotSLBusy, "spin lock held on the other processor")
	assert.True(t, gotFM)
	assert.Equal(t, kernel.APC_LEVEL, irqlFM, "a successful ExTryToAcquireFastMutex raises to APC_LEVEL")
	assert.True(t, gotSL)
}

// REFERENCE §1.8: KeBugCheckEx stops the run with the driver's own code
// and parameters, naming the caller.
func TestKeBugCheckEx(t *testing.T) {
	out := runOne(t, oneCPU(), func(k *kernel.Kernel) {
		k.KeBugCheckEx(0xDEAD, 1, 2, 3, 4)
	})
	bc := requireBugCheck(t, out, 0xDEAD, 1)
	assert.Equal(t, [4]uint64{1, 2, 3, 4}, bc.Params)
	assert.Equal(t, "KeBugCheckEx", bc.API)
	assert.Equal(t, "driver", bc.Actor)
}

// failAllocations makes every allocation-failure decision fail.
type failAllocations struct{}

func (failAllocations) Choose(p des.Point, n int) int {
	if p.Kind == kernel.PointAllocFail {
		return 1
	}
	return 0
}

// REFERENCE §4.18: PsGetCurrentThread(Id) name the calling thread, and in
// a DPC the thread it interrupted. REFERENCE §4.6: ExDeleteResourceLite
// is allowed up to APC_LEVEL only.
func TestCurrentThreadQueriesAndDeleteResource(t *testing.T) {
	var self *kernel.Thread
	var id, inDpc int32
	out := runOne(t, oneCPU(), func(k *kernel.Kernel) {
		self = k.PsGetCurrentThread()
		id = k.PsGetCurrentThreadId()
		r := k.ExInitializeResourceLite("cache")
		require.Equal(t, kernel.STATUS_SUCCESS, k.ExDeleteResourceLite(r))
		dpc := k.KeInitializeDpc("who", func(*kernel.KDPC, any, any, any) { inDpc = k.PsGetCurrentThreadId() }, nil)
		k.KeInsertQueueDpc(dpc, nil, nil)
		k.Compute(des.Microsecond) // the DPC interrupts this
	})
	require.NoError(t, out.Err)
	require.NotNil(t, self)
	assert.Equal(t, "driver", self.Name())
	assert.Equal(t, self.ID(), id)
	assert.Equal(t, id, inDpc, "the DPC ran on the driver thread's processor, interrupting it")

	out = runOne(t, oneCPU(), func(k *kernel.Kernel) {
		r := k.ExInitializeResourceLite("cache")
		old := k.KeRaiseIrqlToDpcLevel()
		k.ExDeleteResourceLite(r)
		k.KeLowerIrql(old)
	})
	requireBugCheck(t, out, kernel.IRQL_NOT_LESS_OR_EQUAL, 0)
}

// REFERENCE §9: the interlocked bit and exchange-add operations return the
// value before the operation (or the bit's old state) and leave the
// combined value behind.
func TestInterlockedBitOperations(t *testing.T) {
	var got []int64
	var bits []bool
	var final int64
	out := runOne(t, oneCPU(), func(k *kernel.Kernel) {
		c := k.NewCell("flags", 0b0101)
		got = append(got, k.InterlockedExchangeAdd(c, 2)) // 5 → 7
		got = append(got, k.InterlockedOr(c, 0b1000))     // 7 → 15
		got = append(got, k.InterlockedAnd(c, 0b0110))    // 15 → 6
		got = append(got, k.InterlockedXor(c, 0b0011))    // 6 → 5
		bits = append(bits, k.InterlockedBitTestAndSet(c, 1), k.InterlockedBitTestAndSet(c, 1))
		bits = append(bits, k.InterlockedBitTestAndReset(c, 0), k.InterlockedBitTestAndReset(c, 0))
		final = k.Read(c)
	})
	require.NoError(t, out.Err)
	assert.Equal(t, []int64{5, 7, 15, 6}, got)
	assert.Equal(t, []bool{false, true, true, false}, bits)
	assert.Equal(t, int64(0b0110), final)
}

// REFERENCE §4.16, §4.6, §4.20, §4.21: the aliases behave as the routines
// they stand for — the precise system time is the system time, the
// processor number is the same in both forms, KeAcquireSpinLockRaiseToDpc
// raises like KeAcquireSpinLock, the in-stack ForDpc pair raises from
// PASSIVE_LEVEL only, and a coalescable timer expires on time.
func TestRoutineAliases(t *testing.T) {
	var sys, precise int64
	var inc uint32
	var cpu, cpuEx int
	var irqls []kernel.IRQL
	var fired des.Time
	out := runOne(t, oneCPU(), func(k *kernel.Kernel) {
		sys, precise = k.KeQuerySystemTime(), k.KeQuerySystemTimePrecise()
		inc = k.KeQueryTimeIncrement()
		cpu, cpuEx = k.KeGetCurrentProcessorNumber(), k.KeGetCurrentProcessorNumberEx()
		l := k.KeInitializeSpinLock("l")
		old := k.KeAcquireSpinLockRaiseToDpc(l)
		irqls = append(irqls, old, k.KeGetCurrentIrql())
		k.KeReleaseSpinLock(l, old)
		var h kernel.KLOCK_QUEUE_HANDLE
		k.KeAcquireInStackQueuedSpinLockForDpc(l, &h) // from PASSIVE_LEVEL: raises
		irqls = append(irqls, h.OldIrql, k.KeGetCurrentIrql())
		k.KeReleaseInStackQueuedSpinLockForDpc(&h)
		irqls = append(irqls, k.KeGetCurrentIrql())
		raised := k.KeRaiseIrqlToDpcLevel()
		k.KeAcquireInStackQueuedSpinLockForDpc(l, &h) // at DISPATCH_LEVEL: stays
		k.KeReleaseInStackQueuedSpinLockForDpc(&h)
		irqls = append(irqls, k.KeGetCurrentIrql())
		k.KeLowerIrql(raised)
		tm := k.KeInitializeTimer("coalescable")
		dpc := k.KeInitializeDpc("fired", func(*kernel.KDPC, any, any, any) { fired = k.Now() }, nil)
		set := k.Now()
		k.KeSetCoalescableTimer(tm, 10*des.Microsecond, 0, 5*des.Microsecond, dpc)
		k.KeDelayExecutionThread(30 * des.Microsecond)
		fired -= des.Time(set)
	})
	require.NoError(t, out.Err)
	assert.Equal(t, sys, precise)
	assert.Equal(t, kernel.TimeIncrement, inc)
	assert.Equal(t, cpu, cpuEx)
	assert.Equal(t, []kernel.IRQL{kernel.PASSIVE_LEVEL, kernel.DISPATCH_LEVEL, kernel.PASSIVE_LEVEL, kernel.DISPATCH_LEVEL,
		kernel.PASSIVE_LEVEL, kernel.DISPATCH_LEVEL}, irqls)
	assert.InDelta(t, float64(10*des.Microsecond), float64(fired), float64(2*des.Microsecond), "expired at its due time (plus the DPC's start)")
}

// REFERENCE §1.8: the statuses drivers complete with are named in reports.
func TestDriverStatusNames(t *testing.T) {
	assert.Equal(t, "STATUS_IO_TIMEOUT (0xC00000B5)", kernel.STATUS_IO_TIMEOUT.String())
	assert.Equal(t, "STATUS_DEVICE_REMOVED (0xC00002B6)", kernel.STATUS_DEVICE_REMOVED.String())
}
