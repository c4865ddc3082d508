package kernel_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// REFERENCE §4.21: a threaded DPC runs at PASSIVE_LEVEL in a priority-31
// thread of its processor, which preempts the thread that queued it; with
// threaded DPCs disabled it runs at DISPATCH_LEVEL as an ordinary DPC.
// KeFlushQueuedDpcs waits for it either way.
func TestThreadedDpcRunsAtPassive(t *testing.T) {
	for _, disabled := range []bool{false, true} {
		cfg := oneCPU()
		cfg.DisableThreadedDpcs = disabled
		var irql kernel.IRQL
		var prio int
		var ranBeforeFlushReturned bool
		out := runOne(t, cfg, func(k *kernel.Kernel) {
			ran := false
			d := k.KeInitializeThreadedDpc("tdpc", func(*kernel.KDPC, any, any, any) {
				irql = k.KeGetCurrentIrql()
				prio = k.KeGetCurrentThread().Priority()
				k.KeStallExecutionProcessor(5)
				ran = true
			}, nil)
			k.KeInsertQueueDpc(d, nil, nil)
			k.KeFlushQueuedDpcs()
			ranBeforeFlushReturned = ran
		})
		require.NoError(t, out.Err, "disabled=%v", disabled)
		assert.True(t, ranBeforeFlushReturned, "KeFlushQueuedDpcs returned before the threaded DPC ran (disabled=%v)", disabled)
		if disabled {
			assert.Equal(t, kernel.DISPATCH_LEVEL, irql)
		} else {
			assert.Equal(t, kernel.PASSIVE_LEVEL, irql)
			assert.Equal(t, 31, prio, "the threaded-DPC thread is real-time priority 31")
		}
	}
}

// REFERENCE §4.21: the classic threaded-DPC bug. A routine written for
// DISPATCH_LEVEL takes its lock with KeAcquireSpinLockAtDpcLevel; run as a
// threaded DPC it is at PASSIVE_LEVEL (Verifier 0xC4 P1=0x40).
// KeAcquireSpinLockForDpc is right at both levels; and a threaded DPC,
// being a thread, may be interrupted by an ordinary DPC on its processor.
func TestThreadedDpcSpinLockRules(t *testing.T) {
	out := runOne(t, oneCPU(), func(k *kernel.Kernel) {
		l := k.KeInitializeSpinLock("l")
		d := k.KeInitializeThreadedDpc("wrong", func(*kernel.KDPC, any, any, any) {
			k.KeAcquireSpinLockAtDpcLevel(l)
			k.KeReleaseSpinLockFromDpcLevel(l)
		}, nil)
		k.KeInsertQueueDpc(d, nil, nil)
	})
	requireBugCheck(t, out, kernel.DRIVER_VERIFIER_DETECTED_VIOLATION, 0x40)

	for _, disabled := range []bool{false, true} {
		cfg := oneCPU()
		cfg.DisableThreadedDpcs = disabled
		var order []string
		out = runOne(t, cfg, func(k *kernel.Kernel) {
			l := k.KeInitializeSpinLock("l")
			normal := k.KeInitializeDpc("normal", func(*kernel.KDPC, any, any, any) { order = append(order, "normal") }, nil)
			d := k.KeInitializeThreadedDpc("right", func(*kernel.KDPC, any, any, any) {
				old := k.KeAcquireSpinLockForDpc(l)
				k.KeReleaseSpinLockForDpc(l, old)
				order = append(order, "threaded start")
				k.KeInsertQueueDpc(normal, nil, nil) // runs at once only if we are below DISPATCH_LEVEL
				k.KeStallExecutionProcessor(1)
				order = append(order, "threaded end")
			}, nil)
			k.KeInsertQueueDpc(d, nil, nil)
			k.KeDelayExecutionThread(50 * des.Microsecond)
		})
		require.NoError(t, out.Err, "disabled=%v", disabled)
		if disabled {
			assert.Equal(t, []string{"threaded start", "threaded end", "normal"}, order)
		} else {
			assert.Equal(t, []string{"threaded start", "normal", "threaded end"}, order)
		}
	}
}

// REFERENCE §4.21: KeRemoveQueueDpc takes a queued threaded DPC off its
// queue before its thread gets to run it.
func TestThreadedDpcRemoveQueued(t *testing.T) {
	ran := false
	var removed bool
	out := runOne(t, oneCPU(), func(k *kernel.Kernel) {
		d := k.KeInitializeThreadedDpc("late", func(*kernel.KDPC, any, any, any) { ran = true }, nil)
		old := k.KeRaiseIrqlToDpcLevel() // the thread cannot run while we stay at DISPATCH_LEVEL
		k.KeInsertQueueDpc(d, nil, nil)
		removed = k.KeRemoveQueueDpc(d)
		k.KeLowerIrql(old)
		k.KeDelayExecutionThread(10 * des.Microsecond)
	})
	require.NoError(t, out.Err)
	assert.True(t, removed)
	assert.False(t, ran)
}

// REFERENCE §4.21: a threaded DPC runs at PASSIVE_LEVEL in a thread but
// keeps a DPC's restrictions: a blocking wait there is
// ATTEMPTED_SWITCH_FROM_DPC 0xB8, as it is when the DPC runs as an
// ordinary one; a zero-timeout poll is legal either way.
func TestThreadedDpcMustNotBlock(t *testing.T) {
	for _, disabled := range []bool{false, true} {
		cfg := oneCPU()
		cfg.DisableThreadedDpcs = disabled
		polled := kernel.NTSTATUS(1)
		out := runOne(t, cfg, func(k *kernel.Kernel) {
			ev := k.KeInitializeEvent("never", kernel.NotificationEvent, false)
			d := k.KeInitializeThreadedDpc("waits", func(*kernel.KDPC, any, any, any) {
				polled = k.KeWaitForSingleObject(ev, 0)
				k.KeWaitForSingleObject(ev, kernel.Infinite)
			}, nil)
			k.KeInsertQueueDpc(d, nil, nil)
			k.Compute(des.Microsecond)
		})
		bc := requireBugCheck(t, out, kernel.ATTEMPTED_SWITCH_FROM_DPC, 0)
		assert.Equal(t, kernel.STATUS_TIMEOUT, polled, "disabled=%v: the poll is legal", disabled)
		assert.Equal(t, "waits", bc.DPC, "disabled=%v", disabled)
	}
}

// REFERENCE §4.21: a threaded DPC runs at PASSIVE_LEVEL, but the same
// routine runs at DISPATCH_LEVEL wherever threaded DPCs are disabled, so
// its calls are checked against DISPATCH_LEVEL's rules in both modes: a
// fast mutex, an ERESOURCE, paged pool or a PASSIVE_LEVEL routine in one
// is the violation the disabled mode raises, with the same code.
func TestThreadedDpcKeepsDispatchLevelRules(t *testing.T) {
	cases := []struct {
		name string
		call func(k *kernel.Kernel)
		code uint32 // bug check
		p1   uint64
		api  string
	}{
		{"fast mutex", func(k *kernel.Kernel) { k.ExAcquireFastMutex(k.ExInitializeFastMutex("fm")) },
			kernel.DRIVER_VERIFIER_DETECTED_VIOLATION, 0x33, "ExAcquireFastMutex"},
		{"ERESOURCE", func(k *kernel.Kernel) {
			k.KeEnterCriticalRegion()
			k.ExAcquireResourceSharedLite(k.ExInitializeResourceLite("res"), true)
		}, kernel.DRIVER_VERIFIER_DETECTED_VIOLATION, 0x37, "ExAcquireResourceSharedLite"},
		{"paged pool", func(k *kernel.Kernel) { k.ExAllocatePoolWithTag(kernel.PagedPool, 64, "Tdpc") },
			kernel.DRIVER_VERIFIER_DETECTED_VIOLATION, 0x1, "ExAllocatePoolWithTag"},
		{"PASSIVE_LEVEL routine", func(k *kernel.Kernel) { k.KeFlushQueuedDpcs() },
			kernel.IRQL_NOT_LESS_OR_EQUAL, 0, "KeFlushQueuedDpcs"},
	}
	for _, tc := range cases {
		for _, disabled := range []bool{false, true} {
			cfg := oneCPU()
			cfg.DisableThreadedDpcs = disabled
			out := runOne(t, cfg, func(k *kernel.Kernel) {
				d := k.KeInitializeThreadedDpc("tdpc", func(*kernel.KDPC, any, any, any) { tc.call(k) }, nil)
				k.KeInsertQueueDpc(d, nil, nil)
				k.Compute(des.Microsecond)
			})
			bc := requireBugCheck(t, out, tc.code, tc.p1)
			assert.Equal(t, tc.api, bc.API, "%s, disabled=%v", tc.name, disabled)
			assert.Equal(t, uint64(kernel.DISPATCH_LEVEL), bc.Params[1], "%s, disabled=%v: checked at DISPATCH_LEVEL", tc.name, disabled)
			if !disabled {
				assert.Contains(t, bc.Error(), "in threaded DPC tdpc", tc.name)
			}
		}
	}
}
