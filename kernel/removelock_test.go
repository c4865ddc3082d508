package kernel_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// REFERENCE §5.6: a remove lock. The remove path's own acquisition plus
// one held by an I/O keep IoReleaseRemoveLockAndWait waiting until the I/O
// releases (here from a DPC); after the removal has begun acquires return
// STATUS_DELETE_PENDING.
func TestRemoveLock(t *testing.T) {
	m := newMachine(t, kernel.DefaultConfig(), nil)
	k := m.Kernel
	l := k.IoInitializeRemoveLock("dev")
	var log []string
	k.PsCreateSystemThread("pnp", 8, func() {
		require.Equal(t, kernel.STATUS_SUCCESS, k.IoAcquireRemoveLock(l, "io"))
		dpc := k.KeInitializeDpc("io done", func(*kernel.KDPC, any, any, any) {
			log = append(log, "io releases")
			k.IoReleaseRemoveLock(l, "io")
		}, nil)
		k.KeSetTimer(k.KeInitializeTimer("io"), 20*des.Microsecond, dpc)
		require.Equal(t, kernel.STATUS_SUCCESS, k.IoAcquireRemoveLock(l, "remove"))
		k.IoReleaseRemoveLockAndWait(l, "remove")
		log = append(log, "removed")
		assert.Equal(t, kernel.STATUS_DELETE_PENDING, k.IoAcquireRemoveLock(l, "late"))
		n, removed := l.Outstanding()
		assert.Equal(t, int64(0), n)
		assert.True(t, removed)
	})
	require.NoError(t, k.Run().Err)
	assert.Equal(t, []string{"io releases", "removed"}, log)
}

// REFERENCE §5.6: the free build's arithmetic. A remove path that calls
// IoReleaseRemoveLockAndWait without its own acquisition takes away the
// count of an I/O still in progress and returns at once; releasing with
// nothing acquired is a panic naming the lock.
func TestRemoveLockWithoutAcquireReturnsEarly(t *testing.T) {
	m := newMachine(t, kernel.DefaultConfig(), nil)
	k := m.Kernel
	l := k.IoInitializeRemoveLock("dev")
	var log []string
	k.PsCreateSystemThread("pnp", 8, func() {
		require.Equal(t, kernel.STATUS_SUCCESS, k.IoAcquireRemoveLock(l, "io"))
		k.IoReleaseRemoveLockAndWait(l, "remove") // no acquisition of its own
		log = append(log, "returned with the I/O still holding")
		k.IoReleaseRemoveLock(l, "io")
	})
	require.NoError(t, k.Run().Err)
	assert.Equal(t, []string{"returned with the I/O still holding"}, log)

	out := runOne(t, kernel.DefaultConfig(), func(k *kernel.Kernel) {
		k.IoReleaseRemoveLock(k.IoInitializeRemoveLock("dev"), nil)
	})
	var pe *des.PanicError
	require.ErrorAs(t, out.Err, &pe)
	assert.Contains(t, out.Err.Error(), "no acquisition outstanding")
}

// REFERENCE §5.6: an acquisition never released leaves the removal waiting
// for ever; the hang names the remove lock it waits on.
func TestRemoveLockNeverReleasedHangNamesTheLock(t *testing.T) {
	m := newMachine(t, kernel.DefaultConfig(), nil)
	k := m.Kernel
	l := k.IoInitializeRemoveLock("dev")
	k.PsCreateSystemThread("pnp", 8, func() {
		k.IoAcquireRemoveLock(l, "io") // an I/O that never releases
		k.IoAcquireRemoveLock(l, "remove")
		k.IoReleaseRemoveLockAndWait(l, "remove")
	})
	var dl *kernel.Deadlock
	require.ErrorAs(t, k.Run().Err, &dl)
	assert.Contains(t, dl.Error(), "pnp waits for event remove lock dev drained")
}
