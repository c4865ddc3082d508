package kernel_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

func twoCPUs() kernel.Config {
	c := kernel.DefaultConfig()
	c.Processors = 2
	return c
}

// critWindow records whether an ISR ever ran while a critical section of
// the same interrupt was open, and when each ran.
type critWindow struct {
	open            bool
	overlapped      bool
	isrAt, critEnd  des.Time
	isrCPU, critCPU int
}

// REFERENCE §4.13: a KeSynchronizeExecution routine on processor 0 holds
// the interrupt spin lock, so the ISR delivered to processor 1 in the
// middle of it spins and runs only after the routine returns. Without the
// lock the ISR would run at 0.1 ms, inside the 0.5 ms routine.
func TestSynchronizeExecutionSerializesWithISROnOtherProcessor(t *testing.T) {
	m := newMachine(t, twoCPUs(), nil)
	k := m.Kernel
	var w critWindow
	var routineIrql kernel.IRQL
	intr, err := k.IoConnectInterrupt("dev", 7, func(*kernel.KINTERRUPT, any) bool {
		w.overlapped = w.overlapped || w.open
		w.isrAt, w.isrCPU = k.Now(), k.KeGetCurrentProcessorNumber()
		return true
	}, nil)
	require.NoError(t, err)
	var got bool
	var after kernel.IRQL
	k.PsCreateSystemThread("driver", 8, func() {
		k.KeSetSystemAffinityThreadEx(1) // processor 0
		k.DeviceInterrupt(intr, 1, k.Now().Add(100*des.Microsecond))
		got = k.KeSynchronizeExecution(intr, func(ctx any) bool {
			routineIrql = k.KeGetCurrentIrql()
			w.critCPU = k.KeGetCurrentProcessorNumber()
			w.open = true
			k.Compute(500 * des.Microsecond)
			w.open = false
			w.critEnd = k.Now()
			return ctx.(bool)
		}, true)
		after = k.KeGetCurrentIrql()
	})
	require.NoError(t, k.Run().Err)
	assert.False(t, w.overlapped, "the ISR ran inside the synchronized routine")
	assert.Equal(t, 0, w.critCPU)
	assert.Equal(t, 1, w.isrCPU)
	assert.GreaterOrEqual(t, w.isrAt, w.critEnd, "the ISR did not wait for the routine")
	assert.True(t, got, "KeSynchronizeExecution returns the routine's result")
	assert.Equal(t, kernel.IRQL(7), routineIrql, "the routine runs at the interrupt's DIRQL")
	assert.Equal(t, kernel.PASSIVE_LEVEL, after, "the caller's IRQL is restored")
	assert.Contains(t, m.trace.String(), "spin", "the trace shows the ISR spinning on the interrupt lock")
}

// REFERENCE §4.13: the converse — an ISR running on processor 1 holds the
// lock, so KeSynchronizeExecution on processor 0 spins until it returns;
// and a FALSE from the routine is returned as FALSE.
func TestSynchronizeExecutionWaitsForRunningISR(t *testing.T) {
	m := newMachine(t, twoCPUs(), nil)
	k := m.Kernel
	var isrOpen, overlapped bool
	var isrEnd, critAt des.Time
	intr, err := k.IoConnectInterrupt("dev", 5, func(*kernel.KINTERRUPT, any) bool {
		isrOpen = true
		k.Compute(300 * des.Microsecond)
		isrOpen = false
		isrEnd = k.Now()
		return true
	}, nil)
	require.NoError(t, err)
	k.DeviceInterrupt(intr, 1, des.Time(50*des.Microsecond))
	got := true
	k.PsCreateSystemThread("driver", 8, func() {
		k.KeSetSystemAffinityThreadEx(1)
		k.Compute(100 * des.Microsecond) // the ISR is running on processor 1 by now
		got = k.KeSynchronizeExecution(intr, func(any) bool {
			overlapped = isrOpen
			critAt = k.Now()
			return false
		}, nil)
	})
	require.NoError(t, k.Run().Err)
	assert.False(t, overlapped, "the routine ran while the ISR held the lock")
	assert.GreaterOrEqual(t, critAt, isrEnd)
	assert.False(t, got, "a FALSE from the routine is returned")
}

// REFERENCE §4.13: on the caller's own processor the interrupt is masked
// by the raised IRQL, and it fires as soon as KeSynchronizeExecution
// lowers it — here from a DPC, where the drop is to DISPATCH_LEVEL, so
// the ISR runs before KeSynchronizeExecution returns to the DPC.
func TestSynchronizeExecutionSameProcessorISRRunsAtRelease(t *testing.T) {
	m := newMachine(t, oneCPU(), nil)
	k := m.Kernel
	var order []string
	intr, err := k.IoConnectInterrupt("dev", 6, func(*kernel.KINTERRUPT, any) bool {
		order = append(order, "isr")
		return true
	}, nil)
	require.NoError(t, err)
	dpc := k.KeInitializeDpc("d", func(*kernel.KDPC, any, any, any) {
		k.KeSynchronizeExecution(intr, func(any) bool {
			k.DeviceInterrupt(intr, 0, k.Now())
			k.Compute(100 * des.Microsecond)
			order = append(order, "routine")
			return true
		}, nil)
		order = append(order, "dpc after")
	}, nil)
	k.PsCreateSystemThread("t", 8, func() { k.KeInsertQueueDpc(dpc, nil, nil) })
	require.NoError(t, k.Run().Err)
	assert.Equal(t, []string{"routine", "isr", "dpc after"}, order)
}

// REFERENCE §4.13: KeAcquireInterruptSpinLock / KeReleaseInterruptSpinLock
// take the same lock as the ISR: the section raises to DIRQL, holds off
// the ISR on the other processor, and the release restores the IRQL the
// acquire returned.
func TestInterruptSpinLockPair(t *testing.T) {
	m := newMachine(t, twoCPUs(), nil)
	k := m.Kernel
	var open, overlapped bool
	var inside, old, after kernel.IRQL
	intr, err := k.IoConnectInterrupt("dev", 9, func(*kernel.KINTERRUPT, any) bool {
		overlapped = overlapped || open
		return true
	}, nil)
	require.NoError(t, err)
	k.PsCreateSystemThread("driver", 8, func() {
		k.KeSetSystemAffinityThreadEx(1)
		k.DeviceInterrupt(intr, 1, k.Now().Add(20*des.Microsecond))
		old = k.KeAcquireInterruptSpinLock(intr)
		inside = k.KeGetCurrentIrql()
		open = true
		k.Compute(200 * des.Microsecond)
		open = false
		k.KeReleaseInterruptSpinLock(intr, old)
		after = k.KeGetCurrentIrql()
	})
	require.NoError(t, k.Run().Err)
	assert.False(t, overlapped, "the ISR ran inside the interrupt-spin-lock section")
	assert.Equal(t, kernel.PASSIVE_LEVEL, old)
	assert.Equal(t, kernel.IRQL(9), inside)
	assert.Equal(t, kernel.PASSIVE_LEVEL, after)
}

// REFERENCE §4.13: the misuse the routines report — a caller above the
// interrupt's DIRQL (0xA), KeSynchronizeExecution from the interrupt's own
// ISR (a recursive acquire, 0x0F), and a release of a lock not held (0x10).
func TestInterruptSynchronizationMisuse(t *testing.T) {
	cases := []struct {
		name string
		body func(k *kernel.Kernel, intr *kernel.KINTERRUPT)
		code uint32
	}{
		{"caller above DIRQL", func(k *kernel.Kernel, intr *kernel.KINTERRUPT) {
			k.KeRaiseIrql(kernel.IRQL(8))
			k.KeSynchronizeExecution(intr, func(any) bool { return true }, nil)
		}, kernel.IRQL_NOT_LESS_OR_EQUAL},
		{"acquire above DIRQL", func(k *kernel.Kernel, intr *kernel.KINTERRUPT) {
			k.KeRaiseIrql(kernel.IRQL(8))
			k.KeAcquireInterruptSpinLock(intr)
		}, kernel.IRQL_NOT_LESS_OR_EQUAL},
		{"synchronize inside a held interrupt lock", func(k *kernel.Kernel, intr *kernel.KINTERRUPT) {
			k.KeAcquireInterruptSpinLock(intr)
			k.KeSynchronizeExecution(intr, func(any) bool { return true }, nil)
		}, kernel.SPIN_LOCK_ALREADY_OWNED},
		{"release not held", func(k *kernel.Kernel, intr *kernel.KINTERRUPT) {
			old := k.KeRaiseIrql(kernel.IRQL(6))
			k.KeReleaseInterruptSpinLock(intr, old)
		}, kernel.SPIN_LOCK_NOT_OWNED},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := newMachine(t, oneCPU(), nil)
			k := m.Kernel
			intr, err := k.IoConnectInterrupt("dev", 6, func(*kernel.KINTERRUPT, any) bool { return true }, nil)
			require.NoError(t, err)
			k.PsCreateSystemThread("t", 8, func() { c.body(k, intr) })
			requireBugCheck(t, k.Run(), c.code, 0)
		})
	}
	t.Run("from its own ISR", func(t *testing.T) {
		m := newMachine(t, oneCPU(), nil)
		k := m.Kernel
		intr, err := k.IoConnectInterrupt("dev", 6, func(intr *kernel.KINTERRUPT, _ any) bool {
			return k.KeSynchronizeExecution(intr, func(any) bool { return true }, nil)
		}, nil)
		require.NoError(t, err)
		k.PsCreateSystemThread("t", 8, func() { k.Compute(des.Millisecond) })
		k.DeviceInterrupt(intr, 0, des.Time(100*des.Microsecond))
		requireBugCheck(t, k.Run(), kernel.SPIN_LOCK_ALREADY_OWNED, 0)
	})
}

// REFERENCE §4.13: IoDisconnectInterrupt returns only once an ISR already
// running on another processor has finished, so what the ISR uses can be
// freed right after it; an interrupt arriving later runs nothing.
func TestDisconnectInterruptWaitsForRunningISR(t *testing.T) {
	m := newMachine(t, twoCPUs(), nil)
	k := m.Kernel
	var isrs int
	var isrEnd, back des.Time
	intr, err := k.IoConnectInterrupt("dev", 5, func(*kernel.KINTERRUPT, any) bool {
		isrs++
		k.Compute(100 * des.Microsecond)
		isrEnd = k.Now()
		return true
	}, nil)
	require.NoError(t, err)
	k.DeviceInterrupt(intr, 1, des.Time(20*des.Microsecond))
	k.DeviceInterrupt(intr, 1, des.Time(300*des.Microsecond))
	k.PsCreateSystemThread("unload", 8, func() {
		k.KeSetSystemAffinityThreadEx(1)
		k.KeDelayExecutionThread(50 * des.Microsecond) // the ISR is running on processor 1
		k.IoDisconnectInterrupt(intr)
		back = k.Now()
	})
	require.NoError(t, k.Run().Err)
	assert.GreaterOrEqual(t, back, isrEnd, "IoDisconnectInterrupt returned while the ISR still ran")
	assert.Equal(t, 1, isrs, "an interrupt after the disconnect runs no ISR")
}

// REFERENCE §4.13: IoDisconnectInterrupt also waits for a
// KeSynchronizeExecution routine running on another processor, and the
// interrupt object it frees cannot be used afterwards (0xD5).
func TestDisconnectInterruptWaitsForHolderAndFreesTheObject(t *testing.T) {
	m := newMachine(t, twoCPUs(), nil)
	k := m.Kernel
	intr, err := k.IoConnectInterrupt("dev", 5, func(*kernel.KINTERRUPT, any) bool { return true }, nil)
	require.NoError(t, err)
	var routineEnd des.Time
	var doneAtReturn bool
	k.PsCreateSystemThread("holder", 8, func() {
		k.KeSetSystemAffinityThreadEx(2) // processor 1
		k.KeSynchronizeExecution(intr, func(any) bool {
			k.Compute(100 * des.Microsecond)
			routineEnd = k.Now()
			return true
		}, nil)
	})
	k.PsCreateSystemThread("unload", 8, func() {
		k.KeSetSystemAffinityThreadEx(1) // processor 0
		k.KeDelayExecutionThread(20 * des.Microsecond)
		k.IoDisconnectInterrupt(intr)
		doneAtReturn = routineEnd != 0
		k.KeSynchronizeExecution(intr, func(any) bool { return true }, nil)
	})
	requireBugCheck(t, k.Run(), kernel.DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL, 0)
	assert.True(t, doneAtReturn, "IoDisconnectInterrupt returned while the routine still held the lock")
}

// sharedPair connects two interrupts sharing one interrupt spin lock, as a
// multi-vector device does (IoConnectInterruptEx with the same SpinLock and
// SynchronizeIrql the higher Irql), each ISR computing for isrTime and
// noting overlap with the other.
type sharedPair struct {
	lo, hi        *kernel.KINTERRUPT
	open          int
	overlapped    bool
	isrIrqls      []kernel.IRQL
	loEnd, hiFrom des.Time
}

func connectSharedPair(t *testing.T, k *kernel.Kernel, lock *kernel.KSPIN_LOCK, isrTime des.Duration) *sharedPair {
	p := &sharedPair{}
	isr := func(intr *kernel.KINTERRUPT, _ any) bool {
		p.overlapped = p.overlapped || p.open > 0
		p.open++
		p.isrIrqls = append(p.isrIrqls, k.KeGetCurrentIrql())
		if intr == p.hi {
			p.hiFrom = k.Now()
		}
		k.Compute(isrTime)
		if intr == p.lo {
			p.loEnd = k.Now()
		}
		p.open--
		return true
	}
	var err error
	p.lo, err = k.IoConnectInterruptEx(&kernel.IO_CONNECT_INTERRUPT_FULLY_SPECIFIED_PARAMETERS{
		Name: "msg0", ServiceRoutine: isr, SpinLock: lock, Irql: 5, SynchronizeIrql: 7})
	require.NoError(t, err)
	p.hi, err = k.IoConnectInterruptEx(&kernel.IO_CONNECT_INTERRUPT_FULLY_SPECIFIED_PARAMETERS{
		Name: "msg1", ServiceRoutine: isr, SpinLock: lock, Irql: 7, SynchronizeIrql: 7})
	require.NoError(t, err)
	return p
}

// REFERENCE §4.13: two interrupt objects given the same SpinLock are
// serialized: the second ISR, delivered to processor 1 while the first
// runs on processor 0, spins until the first returns; and each ISR runs at
// the SynchronizeIrql, not its own Irql. Fails with a lock per object (the
// ISRs overlap) or with the ISR at its own Irql.
func TestSharedInterruptSpinLockSerializesTwoInterrupts(t *testing.T) {
	m := newMachine(t, twoCPUs(), nil)
	k := m.Kernel
	p := connectSharedPair(t, k, k.KeInitializeSpinLock("device isr"), 300*des.Microsecond)
	k.DeviceInterrupt(p.lo, 0, des.Time(0).Add(50*des.Microsecond))
	k.DeviceInterrupt(p.hi, 1, des.Time(0).Add(100*des.Microsecond))
	require.NoError(t, k.Run().Err)
	assert.False(t, p.overlapped, "the two ISRs ran at the same time")
	assert.GreaterOrEqual(t, p.hiFrom, p.loEnd, "the second ISR did not wait for the first")
	assert.Equal(t, []kernel.IRQL{7, 7}, p.isrIrqls, "both ISRs run at the synchronize IRQL")
	assert.Equal(t, kernel.IRQL(7), p.lo.SynchronizeIrql())
}

// REFERENCE §4.13: KeSynchronizeExecution on the lower interrupt raises to
// the shared SynchronizeIrql and takes the shared lock, so the higher
// interrupt's ISR waits for the routine: on another processor it spins, on
// the caller's own it is masked until the IRQL drops.
func TestSynchronizeExecutionOnASharedLockHoldsOffTheOtherISR(t *testing.T) {
	for _, cpu := range []int{0, 1} {
		m := newMachine(t, twoCPUs(), nil)
		k := m.Kernel
		p := connectSharedPair(t, k, k.KeInitializeSpinLock("device isr"), 10*des.Microsecond)
		var routineIrql kernel.IRQL
		var critEnd des.Time
		k.PsCreateSystemThread("driver", 8, func() {
			k.KeSetSystemAffinityThreadEx(1) // processor 0
			k.DeviceInterrupt(p.hi, cpu, k.Now().Add(100*des.Microsecond))
			k.KeSynchronizeExecution(p.lo, func(any) bool {
				routineIrql = k.KeGetCurrentIrql()
				p.open++
				k.Compute(500 * des.Microsecond)
				p.open--
				critEnd = k.Now()
				return true
			}, nil)
		})
		require.NoError(t, k.Run().Err)
		assert.Equal(t, kernel.IRQL(7), routineIrql, "cpu%d: the routine runs at the shared SynchronizeIrql", cpu)
		assert.False(t, p.overlapped, "cpu%d: the other interrupt's ISR ran inside the routine", cpu)
		assert.GreaterOrEqual(t, p.hiFrom, critEnd, "cpu%d", cpu)
	}
}

// REFERENCE §4.13: IoConnectInterruptEx refuses a SynchronizeIrql below the
// interrupt's Irql or above the device range, and a missing service
// routine; IoConnectInterrupt is the call with the object's own lock and
// SynchronizeIrql = Irql.
func TestConnectInterruptExParameters(t *testing.T) {
	m := newMachine(t, oneCPU(), nil)
	k := m.Kernel
	isr := func(*kernel.KINTERRUPT, any) bool { return true }
	for _, p := range []kernel.IO_CONNECT_INTERRUPT_FULLY_SPECIFIED_PARAMETERS{
		{Name: "below", ServiceRoutine: isr, Irql: 7, SynchronizeIrql: 5},
		{Name: "above", ServiceRoutine: isr, Irql: 7, SynchronizeIrql: 12},
		{Name: "noisr", Irql: 7, SynchronizeIrql: 7},
		{Name: "notdevice", ServiceRoutine: isr, Irql: 2, SynchronizeIrql: 2},
	} {
		intr, err := k.IoConnectInterruptEx(&p)
		assert.Error(t, err, p.Name)
		assert.Nil(t, intr, p.Name)
	}
	intr, err := k.IoConnectInterrupt("plain", 6, isr, nil)
	require.NoError(t, err)
	assert.Equal(t, kernel.IRQL(6), intr.SynchronizeIrql())
}
