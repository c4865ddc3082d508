package kernel_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// REFERENCE §4.8: the ExInterlocked…List routines return the entry that
// was first (insert at head), last (insert at tail) or removed, nil for an
// empty list, keep the list's order, and leave the caller's IRQL as it was
// (they may be called at any IRQL, here from PASSIVE_LEVEL and a DPC).
func TestInterlockedListRoutines(t *testing.T) {
	var got []*kernel.LIST_ENTRY
	var irqls []kernel.IRQL
	out := runOne(t, oneCPU(), func(k *kernel.Kernel) {
		lock := k.KeInitializeSpinLock("list")
		var head, a, b, c kernel.LIST_ENTRY
		k.InitializeListHead(&head)
		got = append(got, k.ExInterlockedRemoveHeadList(&head, lock))
		got = append(got, k.ExInterlockedInsertTailList(&head, &b, lock))
		got = append(got, k.ExInterlockedInsertHeadList(&head, &a, lock))
		got = append(got, k.ExInterlockedInsertTailList(&head, &c, lock))
		irqls = append(irqls, k.KeGetCurrentIrql())
		dpc := k.KeInitializeDpc("drain", func(*kernel.KDPC, any, any, any) {
			for e := k.ExInterlockedRemoveHeadList(&head, lock); e != nil; e = k.ExInterlockedRemoveHeadList(&head, lock) {
				got = append(got, e)
			}
			irqls = append(irqls, k.KeGetCurrentIrql())
		}, nil)
		k.KeInsertQueueDpc(dpc, nil, nil)
	})
	require.NoError(t, out.Err)
	require.Len(t, got, 7)
	assert.Nil(t, got[0], "removing from an empty list")
	assert.Nil(t, got[1], "inserting into an empty list")
	assert.Equal(t, []kernel.IRQL{kernel.PASSIVE_LEVEL, kernel.DISPATCH_LEVEL}, irqls, "the caller's IRQL is restored")
	// got[2] is the entry that was first (b), got[3] the one that was last (b);
	// then the DPC drains a, b, c in order.
	for i := 2; i < 7; i++ {
		require.NotNil(t, got[i])
	}
	assert.Same(t, got[2], got[3], "b was both first and last before a and c came")
	assert.NotSame(t, got[4], got[5])
	assert.Same(t, got[3], got[5], "b is drained second, after a")
}

// REFERENCE §4.8: the routine's spin lock serializes it with whoever else
// holds that lock: a call on the second processor waits until the holder
// on the first releases it (a test that fails if the lock is not taken).
func TestInterlockedListWaitsForTheLock(t *testing.T) {
	cfg := kernel.DefaultConfig()
	cfg.Processors = 2
	var released, inserted des.Time
	out := runOne(t, cfg, func(k *kernel.Kernel) {
		lock := k.KeInitializeSpinLock("list")
		var head, e kernel.LIST_ENTRY
		k.InitializeListHead(&head)
		k.PsCreateSystemThread("inserter", 8, func() {
			k.KeDelayExecutionThread(2 * des.Microsecond)
			k.ExInterlockedInsertTailList(&head, &e, lock)
			inserted = k.Now()
		})
		old := k.KeAcquireSpinLock(lock)
		k.Compute(20 * des.Microsecond)
		released = k.Now()
		k.KeReleaseSpinLock(lock, old)
	})
	require.NoError(t, out.Err)
	require.NotZero(t, inserted)
	assert.GreaterOrEqual(t, int64(inserted), int64(released), "the insert waited for the holder's release")
}

// REFERENCE §4.8: ExInterlockedPushEntryList returns the entry that was
// first, ExInterlockedPopEntryList the entry it took (nil for an empty
// list); the list is last in, first out; the caller's IRQL is left as it
// was (any IRQL: here PASSIVE_LEVEL and a DPC).
func TestInterlockedSingleListRoutines(t *testing.T) {
	var head, a, b kernel.SINGLE_LIST_ENTRY
	var got []*kernel.SINGLE_LIST_ENTRY
	var irqls []kernel.IRQL
	out := runOne(t, oneCPU(), func(k *kernel.Kernel) {
		lock := k.KeInitializeSpinLock("slist")
		got = append(got, k.ExInterlockedPopEntryList(&head, lock))
		got = append(got, k.ExInterlockedPushEntryList(&head, &a, lock))
		got = append(got, k.ExInterlockedPushEntryList(&head, &b, lock))
		irqls = append(irqls, k.KeGetCurrentIrql())
		dpc := k.KeInitializeDpc("drain", func(*kernel.KDPC, any, any, any) {
			for range 3 {
				got = append(got, k.ExInterlockedPopEntryList(&head, lock))
			}
			irqls = append(irqls, k.KeGetCurrentIrql())
		}, nil)
		k.KeInsertQueueDpc(dpc, nil, nil)
	})
	require.NoError(t, out.Err)
	want := []*kernel.SINGLE_LIST_ENTRY{nil, nil, &a, &b, &a, nil}
	require.Len(t, got, len(want))
	for i := range want {
		assert.Same(t, want[i], got[i], "result %d", i)
	}
	assert.Equal(t, []kernel.IRQL{kernel.PASSIVE_LEVEL, kernel.DISPATCH_LEVEL}, irqls, "the caller's IRQL is restored")
	assert.Nil(t, head.Next, "the list is empty again")
}

// REFERENCE §4.8: ExInterlockedPushEntryList takes the routine's spin
// lock, so a push on the second processor waits until the holder on the
// first releases it (fails if the lock is not taken).
func TestInterlockedSingleListWaitsForTheLock(t *testing.T) {
	cfg := kernel.DefaultConfig()
	cfg.Processors = 2
	var released, pushed des.Time
	out := runOne(t, cfg, func(k *kernel.Kernel) {
		lock := k.KeInitializeSpinLock("slist")
		var head, e kernel.SINGLE_LIST_ENTRY
		k.PsCreateSystemThread("pusher", 8, func() {
			k.KeDelayExecutionThread(2 * des.Microsecond)
			k.ExInterlockedPushEntryList(&head, &e, lock)
			pushed = k.Now()
		})
		old := k.KeAcquireSpinLock(lock)
		k.Compute(20 * des.Microsecond)
		released = k.Now()
		k.KeReleaseSpinLock(lock, old)
	})
	require.NoError(t, out.Err)
	require.NotZero(t, pushed)
	assert.GreaterOrEqual(t, int64(pushed), int64(released), "the push waited for the holder's release")
}
