package kernel_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// pushLockUser runs body in a thread inside a critical region, as the Ex
// push lock routines require.
func pushLockUser(k *kernel.Kernel, name string, delay des.Duration, body func()) {
	k.PsCreateSystemThread(name, 8, func() {
		k.KeEnterCriticalRegion()
		k.KeDelayExecutionThread(delay)
		body()
		k.KeLeaveCriticalRegion()
	})
}

// REFERENCE §4.25: sharers hold a push lock together; a writer waits for
// them, and a sharer that comes after the writer waits behind it (writers
// do not starve); when the writer releases, the sharers waiting behind it
// are granted together.
func TestPushLockSharersWriterOrder(t *testing.T) {
	m := newMachine(t, kernel.DefaultConfig(), nil)
	k := m.Kernel
	l := k.ExInitializePushLock("table")
	var order []string
	hold := func(name string, delay, length des.Duration, exclusive bool) {
		pushLockUser(k, name, delay, func() {
			if exclusive {
				k.ExAcquirePushLockExclusive(l)
			} else {
				k.ExAcquirePushLockShared(l)
			}
			order = append(order, name)
			k.KeDelayExecutionThread(length)
			if exclusive {
				k.ExReleasePushLockExclusive(l)
			} else {
				k.ExReleasePushLockShared(l)
			}
		})
	}
	hold("reader1", 0, 50*des.Microsecond, false)
	hold("reader2", 5*des.Microsecond, 50*des.Microsecond, false)
	hold("writer", 10*des.Microsecond, 20*des.Microsecond, true)
	hold("reader3", 15*des.Microsecond, 10*des.Microsecond, false) // behind the writer
	hold("reader4", 20*des.Microsecond, 10*des.Microsecond, false)
	out := k.Run()
	require.NoError(t, out.Err)
	assert.Equal(t, []string{"reader1", "reader2", "writer", "reader3", "reader4"}, order)
}

// REFERENCE §4.25: a push lock is not recursive. Acquiring it exclusively
// while holding it either way hangs the thread; acquiring it shared again
// while holding it shared succeeds while nobody waits, and hangs once a
// writer waits in between. Each hang is reported as a deadlock at once.
func TestPushLockRecursionHangs(t *testing.T) {
	t.Run("exclusive twice", func(t *testing.T) {
		out := runOne(t, oneCPU(), func(k *kernel.Kernel) {
			l := k.ExInitializePushLock("l")
			k.KeEnterCriticalRegion()
			k.ExAcquirePushLockExclusive(l)
			k.ExAcquirePushLockExclusive(l)
		})
		var d *kernel.Deadlock
		require.ErrorAs(t, out.Err, &d)
		assert.Contains(t, d.Error(), "pushlock l owned by driver itself")
	})
	t.Run("shared twice, nobody waiting", func(t *testing.T) {
		out := runOne(t, oneCPU(), func(k *kernel.Kernel) {
			l := k.ExInitializePushLock("l")
			k.KeEnterCriticalRegion()
			k.ExAcquirePushLockShared(l)
			k.ExAcquirePushLockShared(l)
			k.ExReleasePushLockShared(l)
			k.ExReleasePushLockShared(l)
			k.KeLeaveCriticalRegion()
		})
		require.NoError(t, out.Err)
	})
	t.Run("shared twice, a writer in between", func(t *testing.T) {
		m := newMachine(t, kernel.DefaultConfig(), nil)
		k := m.Kernel
		l := k.ExInitializePushLock("l")
		pushLockUser(k, "reader", 0, func() {
			k.ExAcquirePushLockShared(l)
			k.KeDelayExecutionThread(20 * des.Microsecond) // the writer queues meanwhile
			k.ExAcquirePushLockShared(l)
		})
		pushLockUser(k, "writer", 5*des.Microsecond, func() { k.ExAcquirePushLockExclusive(l) })
		var d *kernel.Deadlock
		require.ErrorAs(t, k.Run().Err, &d)
		assert.Contains(t, d.Error(), "reader waits for pushlock l owned by reader itself")
		assert.Contains(t, d.Error(), "waiting for it exclusively first: writer", "names the writer it waits behind")
	})
}

// REFERENCE §4.25: the try forms never wait; releasing a hold the caller
// does not have is RESOURCE_NOT_OWNED 0xE3 (P2 = the thread), the model's
// choice where Windows corrupts the lock silently; the routines are for
// threads at ≤ APC_LEVEL.
func TestPushLockMisuse(t *testing.T) {
	t.Run("try", func(t *testing.T) {
		m := newMachine(t, kernel.DefaultConfig(), nil)
		k := m.Kernel
		l := k.ExInitializePushLock("l")
		var got []bool
		pushLockUser(k, "holder", 0, func() {
			got = append(got, k.ExTryAcquirePushLockShared(l))
			k.KeDelayExecutionThread(20 * des.Microsecond)
			k.ExReleasePushLockShared(l)
		})
		pushLockUser(k, "trier", 5*des.Microsecond, func() {
			got = append(got, k.ExTryAcquirePushLockExclusive(l), k.ExTryAcquirePushLockShared(l))
			k.ExReleasePushLockShared(l)
		})
		require.NoError(t, k.Run().Err)
		assert.Equal(t, []bool{true, false, true}, got)
	})
	t.Run("release not held", func(t *testing.T) {
		out := runOne(t, oneCPU(), func(k *kernel.Kernel) {
			l := k.ExInitializePushLock("l")
			k.KeEnterCriticalRegion()
			k.ExAcquirePushLockShared(l)
			k.ExReleasePushLockExclusive(l)
		})
		bc := requireBugCheck(t, out, kernel.RESOURCE_NOT_OWNED, 0)
		assert.Contains(t, bc.Error(), "does not hold exclusively")
	})
	t.Run("at DISPATCH_LEVEL", func(t *testing.T) {
		out := runOne(t, oneCPU(), func(k *kernel.Kernel) {
			l := k.ExInitializePushLock("l")
			k.KeRaiseIrqlToDpcLevel()
			k.ExAcquirePushLockShared(l)
		})
		requireBugCheck(t, out, kernel.IRQL_NOT_LESS_OR_EQUAL, 0)
	})
}
