package kernel_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// REFERENCE §4.19: two readers hold an EX_SPIN_LOCK together at
// DISPATCH_LEVEL; a writer spins until both have released it, and the IRQL
// each acquire saved is restored by its release.
func TestExSpinLockReadersShareWriterWaits(t *testing.T) {
	var lock kernel.EX_SPIN_LOCK
	lock.Name = "table"
	var bothIn, writerIn des.Time
	readers := 0
	var irqls []kernel.IRQL
	out := runOne(t, twoCPUs(), func(k *kernel.Kernel) {
		in := k.KeInitializeEvent("reader-in", kernel.NotificationEvent, false)
		k.PsCreateSystemThread("reader2", 8, func() {
			old := k.ExAcquireSpinLockShared(&lock)
			readers++
			k.KeSetEvent(in, 0, false)
			k.KeStallExecutionProcessor(20)
			readers--
			k.ExReleaseSpinLockShared(&lock, old)
		})
		old := k.ExAcquireSpinLockShared(&lock)
		irqls = append(irqls, k.KeGetCurrentIrql())
		readers++
		for readers < 2 {
			k.KeStallExecutionProcessor(1)
		}
		bothIn = k.Now()
		dpc := k.KeInitializeDpc("writer", func(*kernel.KDPC, any, any, any) {
			k.ExAcquireSpinLockExclusiveAtDpcLevel(&lock)
			writerIn = k.Now()
			assert.Equal(t, 0, readers, "the writer got the lock while a reader held it")
			k.ExReleaseSpinLockExclusiveFromDpcLevel(&lock)
		}, nil)
		k.KeSetTargetProcessorDpc(dpc, 0)
		k.KeInsertQueueDpc(dpc, nil, nil)
		k.KeStallExecutionProcessor(10)
		readers--
		k.ExReleaseSpinLockShared(&lock, old)
		irqls = append(irqls, k.KeGetCurrentIrql())
	})
	require.NoError(t, out.Err)
	assert.NotZero(t, bothIn, "two readers held the lock at once")
	assert.Greater(t, int64(writerIn), int64(bothIn))
	assert.Equal(t, []kernel.IRQL{kernel.DISPATCH_LEVEL, kernel.PASSIVE_LEVEL}, irqls)
	assert.False(t, lock.Owned())
}

// REFERENCE §4.19: a reader that arrives while a writer spins queues
// behind the writer (the writer is not starved by a stream of readers),
// and the try routines never spin.
func TestExSpinLockWriterIsNotStarved(t *testing.T) {
	var lock kernel.EX_SPIN_LOCK
	var order []string
	var tryShared, tryExcl bool
	cfg := kernel.DefaultConfig()
	cfg.Processors = 3
	out := runOne(t, cfg, func(k *kernel.Kernel) {
		old := k.ExAcquireSpinLockShared(&lock)
		w := k.KeInitializeDpc("writer", func(*kernel.KDPC, any, any, any) {
			k.ExAcquireSpinLockExclusiveAtDpcLevel(&lock)
			order = append(order, "writer")
			k.ExReleaseSpinLockExclusiveFromDpcLevel(&lock)
		}, nil)
		r := k.KeInitializeDpc("late reader", func(*kernel.KDPC, any, any, any) {
			k.KeStallExecutionProcessor(5) // arrives after the writer started spinning
			tryShared = k.ExTryAcquireSpinLockSharedAtDpcLevel(&lock)
			tryExcl = k.ExTryAcquireSpinLockExclusiveAtDpcLevel(&lock)
			k.ExAcquireSpinLockSharedAtDpcLevel(&lock)
			order = append(order, "late reader")
			k.ExReleaseSpinLockSharedFromDpcLevel(&lock)
		}, nil)
		k.KeSetTargetProcessorDpc(w, 1)
		k.KeSetTargetProcessorDpc(r, 2)
		k.KeInsertQueueDpc(w, nil, nil)
		k.KeInsertQueueDpc(r, nil, nil)
		k.KeStallExecutionProcessor(30)
		k.ExReleaseSpinLockShared(&lock, old)
	})
	require.NoError(t, out.Err)
	assert.Equal(t, []string{"writer", "late reader"}, order)
	assert.False(t, tryShared, "a shared try while a writer waits")
	assert.False(t, tryExcl, "an exclusive try while a reader holds it")
}

// REFERENCE §4.19: converting succeeds only for the sole sharer.
func TestExSpinLockTryConvert(t *testing.T) {
	var lock kernel.EX_SPIN_LOCK
	var sole, shared bool
	out := runOne(t, twoCPUs(), func(k *kernel.Kernel) {
		old := k.ExAcquireSpinLockShared(&lock)
		sole = k.ExTryConvertSharedSpinLockExclusive(&lock)
		k.ExReleaseSpinLockExclusive(&lock, old)

		in := k.KeInitializeEvent("in", kernel.NotificationEvent, false)
		out := k.KeInitializeEvent("out", kernel.NotificationEvent, false)
		k.PsCreateSystemThread("other reader", 8, func() {
			o := k.ExAcquireSpinLockShared(&lock)
			k.KeSetEvent(in, 0, false)
			k.KeStallExecutionProcessor(20)
			k.ExReleaseSpinLockShared(&lock, o)
			k.KeSetEvent(out, 0, false)
		})
		k.KeWaitForSingleObject(in, kernel.Infinite)
		old = k.ExAcquireSpinLockShared(&lock)
		shared = k.ExTryConvertSharedSpinLockExclusive(&lock)
		k.ExReleaseSpinLockShared(&lock, old)
		k.KeWaitForSingleObject(out, kernel.Infinite)
	})
	require.NoError(t, out.Err)
	assert.True(t, sole)
	assert.False(t, shared, "another sharer holds it")
}

// REFERENCE §4.19: recursive acquisition is not allowed: a reader asking
// again (here for exclusive access) waits for itself, a deadlock reported
// at once; releasing a hold one does not have is 0x10.
func TestExSpinLockMisuse(t *testing.T) {
	var lock kernel.EX_SPIN_LOCK
	lock.Name = "twice"
	out := runOne(t, oneCPU(), func(k *kernel.Kernel) {
		k.ExAcquireSpinLockShared(&lock)
		k.ExAcquireSpinLockExclusiveAtDpcLevel(&lock)
	})
	var dl *kernel.Deadlock
	require.ErrorAs(t, out.Err, &dl)
	require.Len(t, dl.Cycle, 1)
	assert.Equal(t, "ex spinlock twice", dl.Cycle[0].Object)
	assert.Equal(t, "driver", dl.Cycle[0].Owner)

	var other kernel.EX_SPIN_LOCK
	out = runOne(t, oneCPU(), func(k *kernel.Kernel) {
		old := k.ExAcquireSpinLockShared(&other)
		k.ExReleaseSpinLockExclusive(&other, old)
	})
	requireBugCheck(t, out, kernel.SPIN_LOCK_NOT_OWNED, 0)

	out = runOne(t, oneCPU(), func(k *kernel.Kernel) {
		k.ExAcquireSpinLockSharedAtDpcLevel(&other) // at PASSIVE_LEVEL
	})
	requireBugCheck(t, out, kernel.DRIVER_VERIFIER_DETECTED_VIOLATION, 0x40)
}

// REFERENCE §4.19: a cycle through a reader/writer spin lock and an
// ordinary one is found when the second spinner starts.
func TestExSpinLockCycleWithSpinLock(t *testing.T) {
	var rw kernel.EX_SPIN_LOCK
	rw.Name = "rw"
	out := runOne(t, twoCPUs(), func(k *kernel.Kernel) {
		sl := k.KeInitializeSpinLock("plain")
		go1 := k.KeInitializeEvent("go", kernel.NotificationEvent, false)
		k.PsCreateSystemThread("other", 8, func() {
			old := k.KeAcquireSpinLock(sl)
			k.KeSetEvent(go1, 0, false)
			k.KeStallExecutionProcessor(10)
			k.ExAcquireSpinLockExclusiveAtDpcLevel(&rw)
			k.KeReleaseSpinLock(sl, old)
		})
		old := k.ExAcquireSpinLockShared(&rw)
		for !sl.Owned() {
			k.KeStallExecutionProcessor(1)
		}
		k.KeAcquireSpinLockAtDpcLevel(sl)
		k.ExReleaseSpinLockShared(&rw, old)
	})
	var dl *kernel.Deadlock
	require.ErrorAs(t, out.Err, &dl)
	assert.Len(t, dl.Cycle, 2, "%v", dl)
}
