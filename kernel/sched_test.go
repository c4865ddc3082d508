package kernel_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// REFERENCE §4.1/§4.2: a real-time thread is never preempted by a
// variable-priority one, even one boosted to the top of the variable range.
func TestRealTimeNeverPreemptedByVariable(t *testing.T) {
	m := newMachine(t, oneCPU(), nil)
	k := m.Kernel
	ev := k.KeInitializeEvent("go", kernel.NotificationEvent, false)
	var order []string
	k.PsCreateSystemThread("variable", 15, func() {
		k.KeWaitForSingleObject(ev, kernel.Infinite) // woken with a big boost
		order = append(order, "variable runs")
	})
	k.PsCreateSystemThread("realtime", 16, func() {
		k.KeSetEvent(ev, kernel.IO_SOUND_INCREMENT, false)
		k.Compute(10 * des.Millisecond)
		order = append(order, "realtime done")
	})
	require.NoError(t, k.Run().Err)
	assert.Equal(t, []string{"realtime done", "variable runs"}, order)
}

// REFERENCE §4.2/§4.3: equal priorities never preempt each other; they
// round-robin at quantum end (client quantum: 6 units = 2 ticks = 31.25ms).
func TestEqualPriorityRoundRobinsAtQuantumEnd(t *testing.T) {
	cfg := oneCPU()
	m := newMachine(t, cfg, nil)
	k := m.Kernel
	var switches []string
	for _, name := range []string{"a", "b"} {
		k.PsCreateSystemThread(name, 8, func() {
			for i := 0; i < 4; i++ {
				k.Compute(20 * des.Millisecond)
				switches = append(switches, name)
			}
		})
	}
	require.NoError(t, k.Run().Err)
	// Quantum 31.25ms, computes of 20ms: a finishes one (a), is cut 11.25ms
	// into the next; b likewise (b); a finishes its cut compute (8.75ms) and
	// a whole one (a a) before its quantum ends 2.5ms into the third; b the
	// same (b b); then a, b finish.
	assert.Equal(t, []string{"a", "b", "a", "a", "b", "b", "a", "b"}, switches)
	assert.Equal(t, 4, strings.Count(m.trace.String(), "round-robin"), "80ms each = two full quanta each, then they finish")
	assert.Equal(t, 31250*des.Microsecond, cfg.Quantum())
	assert.Contains(t, m.trace.String(), "round-robin")
}

// REFERENCE §4.2: a higher-priority thread preempts at once; the preempted
// thread goes to the head of its list so it runs before an equal-priority
// thread that was already waiting.
func TestPreemptedThreadReturnsToHeadOfList(t *testing.T) {
	m := newMachine(t, oneCPU(), nil)
	k := m.Kernel
	var order []string
	k.PsCreateSystemThread("low1", 8, func() {
		k.KeDelayExecutionThread(0) // let everyone get created
		k.Compute(5 * des.Millisecond)
		order = append(order, "low1")
	})
	k.PsCreateSystemThread("low2", 8, func() { order = append(order, "low2") })
	k.PsCreateSystemThread("high", 20, func() {
		k.KeDelayExecutionThread(1 * des.Millisecond)
		order = append(order, "high")
	})
	require.NoError(t, k.Run().Err)
	assert.Equal(t, []string{"high", "low1", "low2"}, order)
}

// REFERENCE §4.4: a wait boost is base + increment capped at 15, and decays
// one level per quantum end back to base; real-time threads get none.
func TestBoostAndDecay(t *testing.T) {
	m := newMachine(t, oneCPU(), nil)
	k := m.Kernel
	ev := k.KeInitializeEvent("e", kernel.SynchronizationEvent, false)
	var seen []int
	var th *kernel.Thread
	th = k.PsCreateSystemThread("io", 8, func() {
		k.KeWaitForSingleObject(ev, kernel.Infinite)
		seen = append(seen, th.Priority()) // 8 + IO_KEYBOARD 6 = 14
		for i := 0; i < 7; i++ {
			k.Compute(k.Layer().Config().Quantum())
			seen = append(seen, th.Priority())
		}
	})
	k.PsCreateSystemThread("setter", 4, func() { k.KeSetEvent(ev, kernel.IO_KEYBOARD_INCREMENT, false) })
	require.NoError(t, k.Run().Err)
	require.NotEmpty(t, seen)
	assert.Equal(t, 14, seen[0])
	assert.Equal(t, []int{13, 12, 11, 10, 9, 8, 8}, seen[1:], "one level per quantum, floored at base")

	m2 := newMachine(t, oneCPU(), nil)
	k2 := m2.Kernel
	ev2 := k2.KeInitializeEvent("e", kernel.SynchronizationEvent, false)
	var capped, rt *kernel.Thread
	var cappedPrio, rtPrio int
	capped = k2.PsCreateSystemThread("capped", 12, func() {
		k2.KeWaitForSingleObject(ev2, kernel.Infinite)
		cappedPrio = capped.Priority()
	})
	rt = k2.PsCreateSystemThread("rt", 18, func() {
		k2.KeWaitForSingleObject(ev2, kernel.Infinite)
		rtPrio = rt.Priority()
	})
	k2.PsCreateSystemThread("setter", 4, func() {
		k2.KeSetEvent(ev2, kernel.IO_SOUND_INCREMENT, false)
		k2.KeSetEvent(ev2, kernel.IO_SOUND_INCREMENT, false)
	})
	require.NoError(t, k2.Run().Err)
	assert.Equal(t, 15, cappedPrio, "12 + 8 is capped at 15")
	assert.Equal(t, 18, rtPrio, "real-time threads are never boosted")
}

// REFERENCE §4.5: at DISPATCH_LEVEL the processor does not switch; a
// higher-priority thread readied meanwhile runs only when IRQL drops.
func TestDispatchLevelDefersPreemption(t *testing.T) {
	m := newMachine(t, oneCPU(), nil)
	k := m.Kernel
	ev := k.KeInitializeEvent("wake", kernel.NotificationEvent, false)
	var order []string
	k.PsCreateSystemThread("high", 20, func() {
		k.KeWaitForSingleObject(ev, kernel.Infinite)
		order = append(order, "high runs")
	})
	k.PsCreateSystemThread("low", 8, func() {
		old := k.KeRaiseIrql(kernel.DISPATCH_LEVEL)
		k.KeSetEvent(ev, 0, false)
		k.Compute(1 * des.Millisecond)
		order = append(order, "low still at DISPATCH")
		k.KeLowerIrql(old)
		order = append(order, "low after lowering")
	})
	require.NoError(t, k.Run().Err)
	assert.Equal(t, []string{"low still at DISPATCH", "high runs", "low after lowering"}, order)
}

// REFERENCE §4.5: DPCs queued to a processor run when its IRQL drops below
// DISPATCH_LEVEL, before the thread continues, at DISPATCH_LEVEL.
func TestDPCRunsWhenIrqlDrops(t *testing.T) {
	m := newMachine(t, oneCPU(), nil)
	k := m.Kernel
	var order []string
	var dpcIrql kernel.IRQL
	dpc := k.KeInitializeDpc("d", func(*kernel.KDPC, any, any, any) {
		dpcIrql = k.KeGetCurrentIrql()
		order = append(order, "dpc")
	}, nil)
	k.PsCreateSystemThread("t", 8, func() {
		old := k.KeRaiseIrql(kernel.DISPATCH_LEVEL)
		k.KeInsertQueueDpc(dpc, nil, nil)
		order = append(order, "queued at DISPATCH")
		k.KeLowerIrql(old)
		order = append(order, "thread continues")
	})
	require.NoError(t, k.Run().Err)
	assert.Equal(t, []string{"queued at DISPATCH", "dpc", "thread continues"}, order)
	assert.Equal(t, kernel.DISPATCH_LEVEL, dpcIrql)
}

// An interrupt runs its ISR at DIRQL, interrupting a thread mid-compute;
// the ISR's DPC runs after it; the thread's compute resumes with the time
// it had left (REFERENCE §4.5).
func TestInterruptISRQueuesDPC(t *testing.T) {
	m := newMachine(t, oneCPU(), nil)
	k := m.Kernel
	var isrIrql kernel.IRQL
	var order []string
	dpc := k.KeInitializeDpc("dev", func(*kernel.KDPC, any, any, any) { order = append(order, "dpc") }, nil)
	intr, err := k.IoConnectInterrupt("dev", 5, func(*kernel.KINTERRUPT, any) bool {
		isrIrql = k.KeGetCurrentIrql()
		order = append(order, "isr")
		k.KeInsertQueueDpc(dpc, nil, nil)
		return true
	}, nil)
	require.NoError(t, err)
	_, err = k.IoConnectInterrupt("bad", 2, nil, nil)
	assert.Error(t, err, "DISPATCH_LEVEL is not a device IRQL")
	var end des.Time
	k.PsCreateSystemThread("t", 8, func() {
		k.Compute(10 * des.Millisecond)
		order = append(order, "compute done")
		end = k.Now()
	})
	k.DeviceInterrupt(intr, 0, des.Time(2*des.Millisecond))
	require.NoError(t, k.Run().Err)
	assert.Equal(t, []string{"isr", "dpc", "compute done"}, order)
	assert.Equal(t, kernel.IRQL(5), isrIrql)
	assert.Greater(t, end, des.Time(10*des.Millisecond), "the interrupt's time was not charged to the thread's compute")
}

// A kernel timer signals waiters and queues its DPC at its due time.
func TestKernelTimerWithDPC(t *testing.T) {
	m := newMachine(t, oneCPU(), nil)
	k := m.Kernel
	var dpcAt, wokeAt des.Time
	dpc := k.KeInitializeDpc("timer", func(*kernel.KDPC, any, any, any) { dpcAt = k.Now() }, nil)
	tm := k.KeInitializeTimerEx("t", kernel.NotificationEvent)
	k.PsCreateSystemThread("t", 8, func() {
		k.KeSetTimer(tm, 5*des.Millisecond, dpc)
		k.KeWaitForSingleObject(tm, kernel.Infinite)
		wokeAt = k.Now()
	})
	require.NoError(t, k.Run().Err)
	assert.GreaterOrEqual(t, dpcAt, des.Time(5*des.Millisecond))
	assert.GreaterOrEqual(t, wokeAt, des.Time(5*des.Millisecond))
}

func TestWaitTimeoutsAndMultipleObjects(t *testing.T) {
	m := newMachine(t, oneCPU(), nil)
	k := m.Kernel
	a := k.KeInitializeEvent("a", kernel.NotificationEvent, false)
	b := k.KeInitializeEvent("b", kernel.NotificationEvent, false)
	sem := k.KeInitializeSemaphore("s", 0, 2)
	var got []kernel.NTSTATUS
	k.PsCreateSystemThread("w", 8, func() {
		got = append(got, k.KeWaitForSingleObject(a, 0))                                                        // poll: timeout
		got = append(got, k.KeWaitForSingleObject(a, des.Millisecond))                                          // times out
		got = append(got, k.KeWaitForMultipleObjects([]kernel.Waitable{a, b}, kernel.WaitAny, kernel.Infinite)) // b set
		got = append(got, k.KeWaitForMultipleObjects([]kernel.Waitable{a, b}, kernel.WaitAll, kernel.Infinite)) // a set later
		got = append(got, k.KeWaitForSingleObject(sem, kernel.Infinite))
	})
	k.PsCreateSystemThread("s", 8, func() {
		k.KeDelayExecutionThread(5 * des.Millisecond)
		k.KeSetEvent(b, 0, false)
		k.KeDelayExecutionThread(5 * des.Millisecond)
		k.KeSetEvent(a, 0, false)
		k.KeReleaseSemaphore(sem, 0, 1, false)
	})
	require.NoError(t, k.Run().Err)
	assert.Equal(t, []kernel.NTSTATUS{kernel.STATUS_TIMEOUT, kernel.STATUS_TIMEOUT, kernel.STATUS_WAIT_0 + 1, kernel.STATUS_SUCCESS, kernel.STATUS_SUCCESS}, got)
}

func TestSemaphoreLimitExceededIsAFinding(t *testing.T) {
	m := newMachine(t, oneCPU(), nil)
	k := m.Kernel
	sem := k.KeInitializeSemaphore("s", 1, 1)
	k.PsCreateSystemThread("w", 8, func() { k.KeReleaseSemaphore(sem, 0, 1, false) })
	out := k.Run()
	require.Error(t, out.Err)
	assert.Contains(t, out.Err.Error(), "STATUS_SEMAPHORE_LIMIT_EXCEEDED (0xC0000047)")
	// REFERENCE §4.8: the exception is unhandled in a system thread, as
	// KeReleaseMutex's STATUS_MUTANT_NOT_OWNED is: 0x7E, P1 the status.
	var bc *kernel.BugCheck
	require.ErrorAs(t, out.Err, &bc)
	assert.Equal(t, kernel.SYSTEM_THREAD_EXCEPTION_NOT_HANDLED, bc.Code)
	assert.Equal(t, uint64(kernel.STATUS_SEMAPHORE_LIMIT_EXCEEDED), bc.Params[0])
	assert.Equal(t, 1, strings.Count(out.Err.Error(), "KeReleaseSemaphore"), "the routine is named once: %v", out.Err)
}

// Two processors run two threads in parallel in virtual time.
func TestProcessorsAdvanceInParallel(t *testing.T) {
	cfg := kernel.DefaultConfig()
	m := newMachine(t, cfg, nil)
	k := m.Kernel
	for _, n := range []string{"a", "b"} {
		k.PsCreateSystemThread(n, 8, func() { k.Compute(10 * des.Millisecond) })
	}
	out := k.Run()
	require.NoError(t, out.Err)
	assert.Less(t, out.End, des.Time(11*des.Millisecond), "both computed at once")
}

// REFERENCE §3.3: KQUEUE entries are FIFO, waiters LIFO, and a blocked
// worker frees its concurrency slot.
func TestKQueueLIFOWaitersAndConcurrency(t *testing.T) {
	m := newMachine(t, oneCPU(), nil)
	k := m.Kernel
	q := k.KeInitializeQueue("work", 1)
	gate := k.KeInitializeEvent("gate", kernel.NotificationEvent, false)
	var got []string
	for _, name := range []string{"w1", "w2"} {
		k.PsCreateSystemThread(name, 12, func() {
			for {
				e, ok := k.KeRemoveQueue(q, kernel.Infinite)
				if !ok {
					return
				}
				got = append(got, name+":"+e.(string))
				if e.(string) == "block" {
					k.KeWaitForSingleObject(gate, kernel.Infinite)
				}
			}
		})
	}
	k.PsCreateSystemThread("producer", 4, func() {
		k.KeDelayExecutionThread(des.Millisecond)
		k.KeInsertQueue(q, "block") // w2 blocked last: LIFO → w2
		k.KeInsertQueue(q, "x")     // w2 active (limit 1): x waits ... until w2 blocks on gate
		k.KeDelayExecutionThread(des.Millisecond)
		assert.Equal(t, 0, q.Len(), "the blocked worker freed its slot, w1 took x")
		k.KeSetEvent(gate, 0, false)
	})
	out := k.Run()
	require.NoError(t, out.Err, "workers idle in KeRemoveQueue are not a hang")
	assert.Equal(t, []string{"w2:block", "w1:x"}, got)
}

// Choosing the idle processor is a decision: choice 0 is the lowest
// number; replaying another choice moves the thread.
func TestPickIdleProcessorIsADecision(t *testing.T) {
	run := func(c des.Chooser) int {
		m := newMachine(t, kernel.DefaultConfig(), c)
		k := m.Kernel
		cpu := -1
		k.PsCreateSystemThread("t", 8, func() { cpu = k.KeGetCurrentProcessorNumber() })
		require.NoError(t, k.Run().Err)
		return cpu
	}
	assert.Equal(t, 0, run(nil))
	assert.Equal(t, 1, run(des.NewReplay([]des.Decision{{Kind: kernel.PointPickCPU, N: 2, Choice: 1}})))
}

func TestFIFOPolicyNeverPreempts(t *testing.T) {
	cfg := oneCPU()
	cfg.Policy = kernel.NewFIFODispatcher()
	m := newMachine(t, cfg, nil)
	k := m.Kernel
	var order []string
	k.PsCreateSystemThread("low", 2, func() {
		k.PsCreateSystemThread("high", 30, func() { order = append(order, "high") })
		k.Compute(100 * des.Millisecond)
		order = append(order, "low")
	})
	require.NoError(t, k.Run().Err)
	assert.Equal(t, []string{"low", "high"}, order)
}

func TestStarvationBoost(t *testing.T) {
	cfg := oneCPU()
	cfg.StarvationBoost = true
	m := newMachine(t, cfg, nil)
	k := m.Kernel
	var ranAt des.Time
	k.PsCreateSystemThread("hog", 10, func() { k.Compute(8 * des.Second) })
	k.PsCreateSystemThread("starved", 4, func() { ranAt = k.Now() })
	require.NoError(t, k.Run().Err)
	// 300 ticks × 15.625ms = 4.6875s, seen by the next 1-second scan.
	assert.Greater(t, ranAt, des.Time(4687500*des.Microsecond))
	assert.Less(t, ranAt, des.Time(6*des.Second), "boosted to 15 it preempts the hog long before 8s")
}

func TestConfigValidate(t *testing.T) {
	good := kernel.DefaultConfig()
	require.NoError(t, good.Validate())
	bad := good
	bad.Processors = 0
	bad.QuantumUnits = 0
	bad.Costs.Call = -1
	err := bad.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Processors = 0")
	assert.Contains(t, err.Error(), "QuantumUnits = 0")
	assert.Contains(t, err.Error(), "must not be negative")
	_, err = kernel.New(des.New(des.Config{}), bad)
	assert.Error(t, err)
	assert.Equal(t, 36, kernel.ServerConfig().QuantumUnits)
}

func TestStatusAndIrqlStrings(t *testing.T) {
	assert.Equal(t, "STATUS_FLT_NOT_SAFE_TO_POST_OPERATION (0xC01C0006)", kernel.STATUS_FLT_NOT_SAFE_TO_POST_OPERATION.String())
	assert.Equal(t, "STATUS_CANCELLED (0xC0000120)", kernel.STATUS_CANCELLED.String())
	assert.Equal(t, "STATUS_WAIT_1 (0x00000001)", (kernel.STATUS_WAIT_0 + 1).String())
	assert.Equal(t, "NTSTATUS(0xDEADBEEF)", kernel.NTSTATUS(0xDEADBEEF).String())
	assert.False(t, kernel.NT_SUCCESS(kernel.STATUS_CANCELLED))
	assert.True(t, kernel.NT_SUCCESS(kernel.STATUS_PENDING))
	assert.Equal(t, "DISPATCH_LEVEL", kernel.DISPATCH_LEVEL.String())
	assert.Equal(t, "DIRQL5", kernel.IRQL(5).String())
	assert.Equal(t, "MULTIPLE_IRP_COMPLETE_REQUESTS", kernel.BugCheckName(0x44))
}

// REFERENCE §3.3: any wake of a thread associated with a KQUEUE makes it
// active, a KeRemoveQueue timeout included; its exit releases the slot.
func TestKQueueTimeoutCountsActive(t *testing.T) {
	m := newMachine(t, oneCPU(), nil)
	k := m.Kernel
	q := k.KeInitializeQueue("work", 1)
	var afterTimeout int
	k.PsCreateSystemThread("dynamic", 12, func() {
		_, ok := k.KeRemoveQueue(q, des.Millisecond)
		assert.False(t, ok, "nothing queued: the wait times out")
		afterTimeout = q.Active()
	})
	require.NoError(t, k.Run().Err)
	assert.Equal(t, 1, afterTimeout, "the timed-out thread runs, so it is active")
	assert.Equal(t, 0, q.Active(), "its exit released the slot")
}
