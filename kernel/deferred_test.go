package kernel_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// Each test here is an action the dispatcher must defer while dispatching
// is off (IRQL ≥ DISPATCH_LEVEL, or a DPC or ISR on top) and honour when it
// comes back on. Each ended in a false livelock before the fix.

// traceLines returns the trace lines containing every one of words.
func traceLines(m *machine, words ...string) []string {
	var out []string
	for _, l := range strings.Split(m.trace.String(), "\n") {
		ok := true
		for _, w := range words {
			ok = ok && strings.Contains(l, w)
		}
		if ok {
			out = append(out, l)
		}
	}
	return out
}

// REFERENCE §4.3, §4.5: a quantum that runs out while the thread holds a
// spin lock ends when the lock's release drops IRQL below DISPATCH_LEVEL;
// the thread runs its locked section to the end meanwhile. (The issue's
// repro: 31.2 ms, then 100 µs under a spin lock on one processor.)
func TestQuantumEndUnderSpinLockWaitsForRelease(t *testing.T) {
	m := newMachine(t, oneCPU(), nil)
	k := m.Kernel
	lock := k.KeInitializeSpinLock("L")
	var order []string
	var released des.Time
	k.PsCreateSystemThread("holder", 8, func() {
		k.Compute(31200 * des.Microsecond)
		old := k.KeAcquireSpinLock(lock)
		k.Compute(100 * des.Microsecond)
		order = append(order, "locked section done")
		k.KeReleaseSpinLock(lock, old)
		released = k.Now()
		order = append(order, "holder after release")
	})
	k.PsCreateSystemThread("peer", 8, func() { order = append(order, "peer") })
	o := k.Run()
	require.NoError(t, o.Err)
	assert.Equal(t, []string{"locked section done", "peer", "holder after release"}, order,
		"the round-robin to the equal-priority peer happens at the release, not inside the lock")
	assert.Len(t, traceLines(m, "round-robin", "peer"), 1)
	assert.Greater(t, released, des.Time(31300*des.Microsecond))
}

// REFERENCE §4.3, §4.5: the same at a raised IRQL without a lock, and a
// thread at DISPATCH_LEVEL across several quanta decays its priority once,
// when the quantum end is honoured, not once per elapsed quantum.
func TestQuantumEndAtDispatchDecaysOnce(t *testing.T) {
	m := newMachine(t, oneCPU(), nil)
	k := m.Kernel
	ev := k.KeInitializeEvent("go", kernel.SynchronizationEvent, false)
	var th *kernel.Thread
	var before, after int
	th = k.PsCreateSystemThread("boosted", 8, func() {
		k.KeWaitForSingleObject(ev, kernel.Infinite) // 8 + 6 = 14
		before = th.Priority()
		old := k.KeRaiseIrql(kernel.DISPATCH_LEVEL)
		k.Compute(3 * k.Layer().Config().Quantum()) // three quanta without dispatching
		k.KeLowerIrql(old)
		after = th.Priority()
	})
	k.PsCreateSystemThread("setter", 4, func() { k.KeSetEvent(ev, kernel.IO_KEYBOARD_INCREMENT, false) })
	require.NoError(t, k.Run().Err)
	assert.Equal(t, 14, before)
	assert.Equal(t, 13, after, "one quantum end honoured, one level of decay")
}

// REFERENCE §4.3, §4.5: a quantum end pending when IRQL drops waits for the
// DPCs queued meanwhile to drain (they run first, at DISPATCH_LEVEL), then
// takes effect.
func TestQuantumEndPendingWhileDPCsDrain(t *testing.T) {
	m := newMachine(t, oneCPU(), nil)
	k := m.Kernel
	lock := k.KeInitializeSpinLock("L")
	var order []string
	dpc := k.KeInitializeDpc("d", func(*kernel.KDPC, any, any, any) {
		k.Compute(50 * des.Microsecond)
		order = append(order, "dpc")
	}, nil)
	k.PsCreateSystemThread("holder", 8, func() {
		k.Compute(31200 * des.Microsecond)
		old := k.KeAcquireSpinLock(lock)
		k.KeInsertQueueDpc(dpc, nil, nil)
		k.Compute(100 * des.Microsecond) // the quantum ends in here
		k.KeReleaseSpinLock(lock, old)
		order = append(order, "holder after release")
	})
	k.PsCreateSystemThread("peer", 8, func() { order = append(order, "peer") })
	require.NoError(t, k.Run().Err)
	assert.Equal(t, []string{"dpc", "peer", "holder after release"}, order)
}

// REFERENCE §4.3, §4.5: an interrupt that arrives at the very instant a
// thread's quantum ends runs its ISR and DPC first; the quantum end is
// honoured when the processor returns to the thread.
func TestInterruptAtQuantumEnd(t *testing.T) {
	cfg := oneCPU()
	m := newMachine(t, cfg, nil)
	k := m.Kernel
	var order []string
	dpc := k.KeInitializeDpc("dev", func(*kernel.KDPC, any, any, any) { order = append(order, "dpc") }, nil)
	intr, err := k.IoConnectInterrupt("dev", 5, func(*kernel.KINTERRUPT, any) bool {
		order = append(order, "isr")
		k.KeInsertQueueDpc(dpc, nil, nil)
		return true
	}, nil)
	require.NoError(t, err)
	k.PsCreateSystemThread("spinner", 8, func() {
		k.Compute(40 * des.Millisecond)
		order = append(order, "spinner")
	})
	k.PsCreateSystemThread("peer", 8, func() { order = append(order, "peer") })
	// The spinner's first chunk starts at 0 and is cut at its quantum end;
	// the interrupt was scheduled first, so it fires first at that instant.
	k.DeviceInterrupt(intr, 0, des.Time(cfg.Quantum()))
	require.NoError(t, k.Run().Err)
	assert.Equal(t, []string{"isr", "dpc", "peer", "spinner"}, order)
}

// budgetMachine is a machine with a small step budget, for loops that
// must end as livelocks.
func budgetMachine(t *testing.T, cfg kernel.Config, budget uint64) *machine {
	m := &machine{}
	m.sim = des.New(des.Config{StepBudget: budget, DecisionBudget: budget, Chooser: des.NewSeeded(3)})
	t.Cleanup(m.sim.Close)
	m.Kernel = kernel.MustNew(m.sim, cfg)
	return m
}

// Every exported routine counts toward the step budget, so simulated code
// that loops over routines that never yield ends as a livelock naming the
// looping thread instead of hanging the tool; the thread is parked at the
// call that exhausted the budget and runs no further.
func TestLoopsOverKernelRoutinesEndAsLivelock(t *testing.T) {
	loops := map[string]func(k *kernel.Kernel){
		"KeGetCurrentIrql": func(k *kernel.Kernel) { k.KeGetCurrentIrql() },
		"Yield":            func(k *kernel.Kernel) { k.Layer().Yield() },
		"Now":              func(k *kernel.Kernel) { k.Now() },
		"KeInitializeEvent": func(k *kernel.Kernel) {
			k.KeInitializeEvent("e", kernel.NotificationEvent, false)
		},
		"KeReadStateEvent": func(k *kernel.Kernel) {
			k.KeReadStateEvent(k.KeInitializeEvent("e", kernel.NotificationEvent, false))
		},
		"Yield at DISPATCH_LEVEL": func(k *kernel.Kernel) {
			if k.KeGetCurrentIrql() < kernel.DISPATCH_LEVEL {
				k.KeRaiseIrql(kernel.DISPATCH_LEVEL)
			}
			k.Layer().Yield()
		},
	}
	for name, body := range loops {
		t.Run(name, func(t *testing.T) {
			m := budgetMachine(t, oneCPU(), 10_000)
			k := m.Kernel
			after := false
			k.PsCreateSystemThread("looper", 8, func() {
				for i := 0; i < 1_000_000_000; i++ {
					body(k)
				}
				after = true
			})
			o := k.Run()
			var ll *kernel.Livelock
			require.ErrorAs(t, o.Err, &ll)
			assert.Contains(t, ll.Error(), "looper")
			assert.LessOrEqual(t, o.Steps+o.Calls, uint64(10_001), "the budget, plus the call that found the run stopped")
			assert.False(t, after, "the looping thread is parked at the call")
		})
	}
}

// With perturbations on, each Yield is a decision: the decision budget
// ends the loop before the log grows without bound.
func TestYieldLoopWithInjectionHitsDecisionBudget(t *testing.T) {
	cfg := oneCPU()
	cfg.InjectPreemption = true
	m := &machine{}
	m.sim = des.New(des.Config{StepBudget: 1_000_000, DecisionBudget: 5_000, Chooser: des.NewSeededBiased(1, 7, 8)})
	t.Cleanup(m.sim.Close)
	k := kernel.MustNew(m.sim, cfg)
	k.PsCreateSystemThread("looper", 8, func() {
		for {
			k.Layer().Yield()
		}
	})
	o := k.Run()
	var be *des.BudgetError
	require.ErrorAs(t, o.Err, &be)
	assert.Equal(t, des.BudgetDecisions, be.Budget)
	assert.Len(t, o.Decisions, 5_000)
	var ll *kernel.Livelock
	assert.ErrorAs(t, o.Err, &ll, "reported as a livelock")
}

// REFERENCE §4.5: a DPC runs in the context of the thread its processor
// was running when the interrupt came; KeGetCurrentThread there returns
// that thread (not nil, not the thread that queued the DPC), and
// Layer.ThreadOrNil tells the DPC apart. On an idle processor the model
// has no thread to return.
func TestCurrentThreadInDpcIsTheInterruptedOne(t *testing.T) {
	m := newMachine(t, oneCPU(), nil)
	k := m.Kernel
	var inDpc, ownInDpc []*kernel.Thread
	dpc := k.KeInitializeDpc("dev", func(*kernel.KDPC, any, any, any) {
		inDpc = append(inDpc, k.KeGetCurrentThread())
		ownInDpc = append(ownInDpc, k.Layer().ThreadOrNil())
	}, nil)
	intr, err := k.IoConnectInterrupt("dev", 5, func(*kernel.KINTERRUPT, any) bool {
		k.KeInsertQueueDpc(dpc, nil, nil)
		return true
	}, nil)
	require.NoError(t, err)
	var spinner *kernel.Thread
	spinner = k.PsCreateSystemThread("spinner", 8, func() {
		assert.Same(t, spinner, k.KeGetCurrentThread())
		k.Compute(200 * des.Microsecond)
	})
	k.DeviceInterrupt(intr, 0, des.Time(50*des.Microsecond))  // interrupts the spinner
	k.DeviceInterrupt(intr, 0, des.Time(900*des.Microsecond)) // the processor is idle by then
	require.NoError(t, k.Run().Err)
	require.Len(t, inDpc, 2)
	assert.Same(t, spinner, inDpc[0], "the DPC borrows the interrupted thread")
	assert.Nil(t, inDpc[1], "idle processor: no thread object in the model")
	assert.Equal(t, []*kernel.Thread{nil, nil}, ownInDpc)
}
