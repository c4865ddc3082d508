package kernel_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// REFERENCE §4.15: a NULL object passed to a kernel routine is reported
// as the routine's fault on it, naming the routine and its caller (not as
// a Go panic): an unhandled access violation (0x7E, P1 0xC0000005) when
// the routine touches the object below DISPATCH_LEVEL, IRQL_NOT_LESS_OR_EQUAL
// 0xA with P2 the IRQL of the touch at or above it (the caller's IRQL, or
// the one the routine raises to before its first touch).
func TestNilObjectIsTheRoutinesFault(t *testing.T) {
	const av = uint64(kernel.STATUS_ACCESS_VIOLATION)
	cases := []struct {
		api  string
		call func(k *kernel.Kernel)
		code uint32
		p1   uint64
		p2   uint64 // 0xA only: the IRQL of the touch
	}{
		{"KeSetEvent", func(k *kernel.Kernel) { k.KeSetEvent(nil, 0, false) }, kernel.SYSTEM_THREAD_EXCEPTION_NOT_HANDLED, av, 0},
		{"KeSetEvent", func(k *kernel.Kernel) { k.KeRaiseIrql(kernel.DISPATCH_LEVEL); k.KeSetEvent(nil, 0, false) }, kernel.IRQL_NOT_LESS_OR_EQUAL, 0, 2},
		{"KeClearEvent", func(k *kernel.Kernel) { k.KeClearEvent(nil) }, kernel.SYSTEM_THREAD_EXCEPTION_NOT_HANDLED, av, 0},
		{"KeReadStateEvent", func(k *kernel.Kernel) { k.KeReadStateEvent(nil) }, kernel.SYSTEM_THREAD_EXCEPTION_NOT_HANDLED, av, 0},
		{"KeResetEvent", func(k *kernel.Kernel) { k.KeResetEvent(nil) }, kernel.IRQL_NOT_LESS_OR_EQUAL, 0, 12},
		{"KeWaitForSingleObject", func(k *kernel.Kernel) { k.KeWaitForSingleObject(nil, kernel.Infinite) }, kernel.IRQL_NOT_LESS_OR_EQUAL, 0, 12},
		{"KeWaitForSingleObject", func(k *kernel.Kernel) {
			var e *kernel.KEVENT
			k.KeWaitForSingleObjectEx(e, kernel.KernelMode, false, kernel.Infinite)
		}, kernel.IRQL_NOT_LESS_OR_EQUAL, 0, 12},
		{"KeWaitForMultipleObjects", func(k *kernel.Kernel) {
			var tm *kernel.KTIMER
			e := k.KeInitializeEvent("e", kernel.NotificationEvent, true)
			k.KeWaitForMultipleObjects([]kernel.Waitable{e, tm}, kernel.WaitAny, kernel.Infinite)
		}, kernel.IRQL_NOT_LESS_OR_EQUAL, 0, 12},
		{"KeReleaseSemaphore", func(k *kernel.Kernel) { k.KeReleaseSemaphore(nil, 0, 1, false) }, kernel.IRQL_NOT_LESS_OR_EQUAL, 0, 12},
		{"KeReleaseMutex", func(k *kernel.Kernel) { k.KeReleaseMutex(nil, false) }, kernel.IRQL_NOT_LESS_OR_EQUAL, 0, 12},
		{"KeSetTimer", func(k *kernel.Kernel) { k.KeSetTimer(nil, des.Millisecond, nil) }, kernel.IRQL_NOT_LESS_OR_EQUAL, 0, 12},
		{"KeSetTimerEx", func(k *kernel.Kernel) { k.KeSetTimerEx(nil, des.Millisecond, 0, nil) }, kernel.IRQL_NOT_LESS_OR_EQUAL, 0, 12},
		{"KeCancelTimer", func(k *kernel.Kernel) { k.KeCancelTimer(nil) }, kernel.IRQL_NOT_LESS_OR_EQUAL, 0, 12},
		{"KeInsertQueue", func(k *kernel.Kernel) { k.KeInsertQueue(nil, 1) }, kernel.IRQL_NOT_LESS_OR_EQUAL, 0, 12},
		{"KeRemoveQueue", func(k *kernel.Kernel) { k.KeRemoveQueue(nil, kernel.Infinite) }, kernel.IRQL_NOT_LESS_OR_EQUAL, 0, 12},
		{"KeInsertQueueDpc", func(k *kernel.Kernel) { k.KeInsertQueueDpc(nil, nil, nil) }, kernel.IRQL_NOT_LESS_OR_EQUAL, 0, 15},
		{"KeAcquireSpinLock", func(k *kernel.Kernel) { k.KeAcquireSpinLock(nil) }, kernel.IRQL_NOT_LESS_OR_EQUAL, 0, 2},
		{"KeReleaseSpinLock", func(k *kernel.Kernel) { k.KeReleaseSpinLock(nil, kernel.PASSIVE_LEVEL) }, kernel.IRQL_NOT_LESS_OR_EQUAL, 0, 2},
		{"KeAcquireSpinLockAtDpcLevel", func(k *kernel.Kernel) { k.KeRaiseIrql(kernel.DISPATCH_LEVEL); k.KeAcquireSpinLockAtDpcLevel(nil) }, kernel.IRQL_NOT_LESS_OR_EQUAL, 0, 2},
		{"KeReleaseSpinLockFromDpcLevel", func(k *kernel.Kernel) { k.KeRaiseIrql(kernel.DISPATCH_LEVEL); k.KeReleaseSpinLockFromDpcLevel(nil) }, kernel.IRQL_NOT_LESS_OR_EQUAL, 0, 2},
		{"ExAcquireFastMutex", func(k *kernel.Kernel) { k.ExAcquireFastMutex(nil) }, kernel.SYSTEM_THREAD_EXCEPTION_NOT_HANDLED, av, 0},
		{"ExReleaseFastMutex", func(k *kernel.Kernel) { k.ExReleaseFastMutex(nil) }, kernel.SYSTEM_THREAD_EXCEPTION_NOT_HANDLED, av, 0},
		{"IoCompleteRequest", func(k *kernel.Kernel) { k.IoCompleteRequest(nil, 0) }, kernel.SYSTEM_THREAD_EXCEPTION_NOT_HANDLED, av, 0},
	}
	for _, c := range cases {
		t.Run(c.api, func(t *testing.T) {
			out := runOne(t, oneCPU(), c.call)
			bc := requireBugCheck(t, out, c.code, c.p1)
			assert.Equal(t, c.api, bc.API, "the report names the routine")
			assert.Equal(t, "driver", bc.Actor, "the report names the caller")
			assert.Contains(t, bc.Detail, "NULL")
			if c.code == kernel.IRQL_NOT_LESS_OR_EQUAL {
				assert.Equal(t, c.p2, bc.Params[1], "P2 is the IRQL of the touch")
			}
		})
	}
}

// REFERENCE §4.15: in a DPC the caller named is the DPC, and a routine
// touching the object at the caller's IRQL faults at DISPATCH_LEVEL (0xA).
func TestNilObjectInADpcNamesTheDpc(t *testing.T) {
	out := runOne(t, oneCPU(), func(k *kernel.Kernel) {
		dpc := k.KeInitializeDpc("completer", func(*kernel.KDPC, any, any, any) { k.IoCompleteRequest(nil, 0) }, nil)
		k.KeInsertQueueDpc(dpc, nil, nil)
	})
	bc := requireBugCheck(t, out, kernel.IRQL_NOT_LESS_OR_EQUAL, 0)
	assert.Equal(t, "IoCompleteRequest", bc.API)
	assert.Equal(t, "completer", bc.DPC)
	assert.Equal(t, uint64(kernel.DISPATCH_LEVEL), bc.Params[1])
	require.Contains(t, bc.Error(), "IoCompleteRequest")
}
