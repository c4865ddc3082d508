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

// REFERENCE §4.6: the owner-boost check a resource wait arms (WRK
// ExpTimeout, 4 s) is stopped when the wait is granted, so a run whose
// threads contend briefly ends when they are done, not four seconds later
// when the moot check would have fired (the run's end time, its timeline
// and "end: t=…" used to stretch to 4 s).
func TestResourceGrantStopsOwnerBoostCheck(t *testing.T) {
	m := newMachine(t, oneCPU(), nil)
	k := m.Kernel
	r := k.ExInitializeResourceLite("r")
	for i, name := range []string{"first", "second"} {
		k.PsCreateSystemThread(name, 8, func() {
			k.KeEnterCriticalRegion()
			k.Compute(des.Duration(i) * des.Microsecond)
			k.ExAcquireResourceExclusiveLite(r, true)
			k.KeDelayExecutionThread(10 * des.Microsecond) // the other waits meanwhile
			k.ExReleaseResourceLite(r)
			k.KeLeaveCriticalRegion()
		})
	}
	out := k.Run()
	require.NoError(t, out.Err)
	assert.Less(t, out.End, des.Time(des.Millisecond), "the run ends when the threads are done")
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

// REFERENCE §4.6: a thread that owns a resource shared and asks for it
// exclusively waits for its own shared hold to go, which it cannot release
// while it waits: a deadlock, reported at the moment it waits and naming
// the resource and the thread, however many other sharers there are and
// whichever of them acquired first. The other sharer here goes on running
// for 10 ms and then releases; that changes nothing, so the report does
// not wait for it.
func TestResourceSharedOwnerAskingExclusiveDeadlocksAtOnce(t *testing.T) {
	for _, upgraderFirst := range []bool{false, true} {
		m := newMachine(t, kernel.DefaultConfig(), nil)
		k := m.Kernel
		r := k.ExInitializeResourceLite("r")
		var asked des.Time
		sharer := func(name string, delay des.Duration, body func()) {
			k.PsCreateSystemThread(name, 8, func() {
				k.KeEnterCriticalRegion()
				k.KeDelayExecutionThread(delay)
				k.ExAcquireResourceSharedLite(r, true)
				body()
				k.ExReleaseResourceLite(r)
				k.KeLeaveCriticalRegion()
			})
		}
		otherDelay, upDelay := 10*des.Microsecond, 20*des.Microsecond
		if upgraderFirst {
			otherDelay, upDelay = upDelay, otherDelay
		}
		sharer("reader", otherDelay, func() { k.KeDelayExecutionThread(10 * des.Millisecond) })
		sharer("upgrader", upDelay, func() {
			k.KeDelayExecutionThread(30 * des.Microsecond) // both share now
			asked = k.Now()
			k.ExAcquireResourceExclusiveLite(r, true)
			k.ExReleaseResourceLite(r)
		})
		out := k.Run()
		var d *kernel.Deadlock
		require.ErrorAs(t, out.Err, &d, "upgrader first: %v", upgraderFirst)
		assert.Less(t, d.At, asked+des.Time(des.Microsecond), "reported when the upgrader waits, not when the reader leaves: %v", d)
		require.Len(t, d.Cycle, 1, "%v", d)
		assert.Equal(t, "upgrader", d.Cycle[0].Waiter)
		assert.Equal(t, "resource r", d.Cycle[0].Object)
		assert.Contains(t, d.Error(), "upgrader waits for resource r owned by upgrader itself")
	}
}

// REFERENCE §4.6, §4.11: waits that the other owners' releases can still
// grant are not deadlocks: an exclusive request by a thread that does not
// own the resource while two others share it, and a new sharer's
// ExAcquireSharedWaitForExclusive queued behind it. Both are granted once
// the sharers leave. A sharer asking for exclusive access with wait FALSE
// gets FALSE and nothing is reported.
func TestResourceWaitsOthersCanGrantAreNoDeadlock(t *testing.T) {
	m := newMachine(t, kernel.DefaultConfig(), nil)
	k := m.Kernel
	r := k.ExInitializeResourceLite("r")
	var got []string
	for i, name := range []string{"reader1", "reader2"} {
		k.PsCreateSystemThread(name, 8, func() {
			k.KeEnterCriticalRegion()
			k.KeDelayExecutionThread(des.Duration(i+1) * des.Microsecond)
			k.ExAcquireResourceSharedLite(r, true)
			k.KeDelayExecutionThread(100 * des.Microsecond)
			if k.ExAcquireResourceExclusiveLite(r, false) {
				got = append(got, name+" upgraded")
			}
			k.ExReleaseResourceLite(r)
			k.KeLeaveCriticalRegion()
		})
	}
	k.PsCreateSystemThread("writer", 8, func() {
		k.KeEnterCriticalRegion()
		k.KeDelayExecutionThread(20 * des.Microsecond)
		k.ExAcquireResourceExclusiveLite(r, true)
		got = append(got, "writer")
		k.ExReleaseResourceLite(r)
		k.KeLeaveCriticalRegion()
	})
	k.PsCreateSystemThread("late", 8, func() {
		k.KeEnterCriticalRegion()
		k.KeDelayExecutionThread(30 * des.Microsecond)
		k.ExAcquireSharedWaitForExclusive(r, true)
		got = append(got, "late")
		k.ExReleaseResourceLite(r)
		k.KeLeaveCriticalRegion()
	})
	require.NoError(t, k.Run().Err)
	assert.Equal(t, []string{"writer", "late"}, got)
}
