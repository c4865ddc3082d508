package kernel_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// REFERENCE §4.6: an exclusive release grants every waiting sharer at once
// even when an exclusive waiter queued first (WRK ExReleaseResourceLite);
// the last sharer's release then grants the exclusive waiter.
func TestResourceExclusiveReleasePrefersSharers(t *testing.T) {
	m := newMachine(t, oneCPU(), nil)
	k := m.Kernel
	r := k.ExInitializeResourceLite("r")
	var order []string
	acquire := func(name string, exclusive bool, delay des.Duration) {
		k.PsCreateSystemThread(name, 8, func() {
			k.KeEnterCriticalRegion()
			k.Compute(delay)
			if exclusive {
				k.ExAcquireResourceExclusiveLite(r, true)
			} else {
				k.ExAcquireResourceSharedLite(r, true)
			}
			order = append(order, name)
			k.Compute(10 * des.Microsecond)
			k.ExReleaseResourceLite(r)
			k.KeLeaveCriticalRegion()
		})
	}
	k.PsCreateSystemThread("owner", 9, func() {
		k.KeEnterCriticalRegion()
		k.ExAcquireResourceExclusiveLite(r, true)
		order = append(order, "owner")
		k.KeDelayExecutionThread(des.Millisecond) // the others queue up meanwhile
		k.ExReleaseResourceLite(r)
		k.KeLeaveCriticalRegion()
	})
	acquire("excl", true, 0)
	acquire("shared1", false, 10*des.Microsecond)
	acquire("shared2", false, 20*des.Microsecond)
	require.NoError(t, k.Run().Err)
	assert.Equal(t, []string{"owner", "shared1", "shared2", "excl"}, order, "FIFO would have granted excl first")
}

// REFERENCE §4.6: releasing a resource the caller does not own is
// RESOURCE_NOT_OWNED 0xE3.
func TestResourceReleaseNotOwnedIs0xE3(t *testing.T) {
	out := runOne(t, kernel.DefaultConfig(), func(k *kernel.Kernel) {
		k.KeEnterCriticalRegion()
		k.ExReleaseResourceLite(k.ExInitializeResourceLite("r"))
	})
	bc := requireBugCheck(t, out, kernel.RESOURCE_NOT_OWNED, 0)
	assert.EqualValues(t, 1, bc.Params[1], "P2 the releasing thread")
}

// REFERENCE §4.6: with ResourceOwnerBoost a thread that waited 4 s for a
// resource raises its low-priority owner to 14, so a CPU-bound
// middle-priority thread no longer starves it (priority inversion);
// without the switch the waiter gets the resource only when the middle
// thread is done.
func TestResourceOwnerBoostEndsPriorityInversion(t *testing.T) {
	run := func(boost bool) des.Time {
		cfg := oneCPU()
		cfg.ResourceOwnerBoost = boost
		m := newMachine(t, cfg, nil)
		k := m.Kernel
		r := k.ExInitializeResourceLite("r")
		var got des.Time
		k.PsCreateSystemThread("low", 4, func() {
			k.KeEnterCriticalRegion()
			k.ExAcquireResourceExclusiveLite(r, true)
			k.Compute(100 * des.Millisecond)
			k.ExReleaseResourceLite(r)
			k.KeLeaveCriticalRegion()
		})
		k.PsCreateSystemThread("high", 12, func() {
			k.KeDelayExecutionThread(10 * des.Millisecond)
			k.KeEnterCriticalRegion()
			k.ExAcquireResourceSharedLite(r, true)
			got = k.Now()
			k.ExReleaseResourceLite(r)
			k.KeLeaveCriticalRegion()
		})
		k.PsCreateSystemThread("middle", 8, func() {
			k.KeDelayExecutionThread(20 * des.Millisecond)
			k.Compute(10 * des.Second)
		})
		require.NoError(t, k.Run().Err)
		return got
	}
	with, without := run(true), run(false)
	assert.Less(t, with, des.Time(5*des.Second), "boosted after 4 s, low finishes its 100 ms")
	assert.Greater(t, without, des.Time(10*des.Second), "middle runs its 10 s first")
}

// REFERENCE §4.6: ExConvertExclusiveToSharedLite keeps the owner's
// acquisitions as shared ones and lets the waiting sharers in at once,
// while an exclusive waiter goes on waiting until every sharer has left;
// converting without exclusive ownership is 0xE3.
func TestResourceConvertExclusiveToShared(t *testing.T) {
	m := newMachine(t, kernel.DefaultConfig(), nil)
	k := m.Kernel
	r := k.ExInitializeResourceLite("r")
	var order []string
	k.PsCreateSystemThread("owner", 9, func() {
		k.KeEnterCriticalRegion()
		k.ExAcquireResourceExclusiveLite(r, true)
		k.ExAcquireResourceExclusiveLite(r, true) // two acquisitions
		k.KeDelayExecutionThread(50 * des.Microsecond)
		k.ExConvertExclusiveToSharedLite(r)
		order = append(order, "owner converted")
		k.KeDelayExecutionThread(50 * des.Microsecond)
		order = append(order, "owner leaves")
		k.ExReleaseResourceLite(r)
		k.ExReleaseResourceLite(r)
		k.KeLeaveCriticalRegion()
	})
	user := func(name string, exclusive bool, delay des.Duration) {
		k.PsCreateSystemThread(name, 8, func() {
			k.KeEnterCriticalRegion()
			k.KeDelayExecutionThread(delay)
			if exclusive {
				k.ExAcquireResourceExclusiveLite(r, true)
			} else {
				k.ExAcquireResourceSharedLite(r, true)
			}
			order = append(order, name)
			k.ExReleaseResourceLite(r)
			k.KeLeaveCriticalRegion()
		})
	}
	user("reader", false, 10*des.Microsecond)
	user("writer", true, 20*des.Microsecond)
	require.NoError(t, k.Run().Err)
	assert.Equal(t, []string{"owner converted", "reader", "owner leaves", "writer"}, order)

	out := runOne(t, kernel.DefaultConfig(), func(k *kernel.Kernel) {
		r := k.ExInitializeResourceLite("r")
		k.KeEnterCriticalRegion()
		k.ExAcquireResourceSharedLite(r, true)
		k.ExConvertExclusiveToSharedLite(r)
	})
	requireBugCheck(t, out, kernel.RESOURCE_NOT_OWNED, 0)
}
