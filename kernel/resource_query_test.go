package kernel_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// REFERENCE §4.11: ExIsResourceAcquiredSharedLite counts the caller's
// acquisitions in either mode (an exclusive owner is also a shared one),
// ExIsResourceAcquiredExclusiveLite is true for the exclusive owner only,
// and neither sees another thread's ownership.
func TestResourceOwnershipQueries(t *testing.T) {
	m := newMachine(t, kernel.DefaultConfig(), nil)
	k := m.Kernel
	r := k.ExInitializeResourceLite("r")
	type seen struct {
		excl   bool
		shared uint32
	}
	var got []seen
	look := func() {
		got = append(got, seen{k.ExIsResourceAcquiredExclusiveLite(r), k.ExIsResourceAcquiredSharedLite(r)})
	}
	k.PsCreateSystemThread("owner", 8, func() {
		k.KeEnterCriticalRegion()
		look() // nothing yet
		k.ExAcquireResourceExclusiveLite(r, true)
		k.ExAcquireResourceSharedLite(r, true) // recursion of the exclusive hold
		look()
		k.ExReleaseResourceLite(r)
		look()
		k.ExConvertExclusiveToSharedLite(r)
		k.ExAcquireResourceSharedLite(r, true)
		k.ExAcquireSharedStarveExclusive(r, true)
		look()
		k.KeDelayExecutionThread(100 * des.Microsecond) // the other thread looks meanwhile
		for range 3 {
			k.ExReleaseResourceLite(r)
		}
		look()
		k.KeLeaveCriticalRegion()
	})
	k.PsCreateSystemThread("other", 8, func() {
		k.KeDelayExecutionThread(50 * des.Microsecond)
		look()
	})
	require.NoError(t, k.Run().Err)
	assert.Equal(t, []seen{
		{false, 0}, // owner before acquiring
		{true, 2},  // exclusive, two acquisitions
		{true, 1},
		{false, 3}, // converted, then two more shared
		{false, 0}, // other: the owner's holds are not its own
		{false, 0}, // owner after releasing all
	}, got)

	out := runOne(t, kernel.DefaultConfig(), func(k *kernel.Kernel) {
		k.KeRaiseIrql(kernel.MinDIRQL)
		k.ExIsResourceAcquiredSharedLite(k.ExInitializeResourceLite("r"))
	})
	requireBugCheck(t, out, kernel.IRQL_NOT_LESS_OR_EQUAL, 0)
}

// REFERENCE §4.11: with the resource owned shared and an exclusive
// acquirer waiting, a new sharer gets in at once through
// ExAcquireSharedStarveExclusive, waits through ExAcquireResourceSharedLite
// and ExAcquireSharedWaitForExclusive, and is granted (with the
// other waiting sharers) when the exclusive waiter has had the resource
// and released it. While another thread owns it exclusively even
// StarveExclusive waits.
func TestResourceSharedAcquireVariantsWhomTheyWaitFor(t *testing.T) {
	m := newMachine(t, kernel.DefaultConfig(), nil)
	k := m.Kernel
	r := k.ExInitializeResourceLite("r")
	var order []string
	tries := map[string]bool{}
	k.PsCreateSystemThread("reader", 9, func() {
		k.KeEnterCriticalRegion()
		k.ExAcquireResourceSharedLite(r, true)
		k.KeDelayExecutionThread(200 * des.Microsecond)
		order = append(order, "reader leaves")
		k.ExReleaseResourceLite(r)
		k.KeLeaveCriticalRegion()
	})
	k.PsCreateSystemThread("writer", 9, func() {
		k.KeEnterCriticalRegion()
		k.KeDelayExecutionThread(10 * des.Microsecond)
		k.ExAcquireResourceExclusiveLite(r, true)
		order = append(order, "writer")
		k.ExReleaseResourceLite(r)
		k.KeLeaveCriticalRegion()
	})
	sharer := func(name string, acquire func(*kernel.ERESOURCE, bool) bool) {
		k.PsCreateSystemThread(name, 8, func() {
			k.KeEnterCriticalRegion()
			k.KeDelayExecutionThread(20 * des.Microsecond) // the writer waits by now
			tries[name] = acquire(r, false)
			if !tries[name] {
				acquire(r, true)
			}
			order = append(order, name)
			k.ExReleaseResourceLite(r)
			k.KeLeaveCriticalRegion()
		})
	}
	sharer("lite", k.ExAcquireResourceSharedLite)
	sharer("starve", k.ExAcquireSharedStarveExclusive)
	sharer("waitfor", k.ExAcquireSharedWaitForExclusive)
	require.NoError(t, k.Run().Err)
	assert.Equal(t, map[string]bool{"lite": false, "starve": true, "waitfor": false}, tries, "only StarveExclusive passes the waiting writer")
	assert.Equal(t, []string{"starve", "reader leaves", "writer", "lite", "waitfor"}, order)

	var starved []bool
	out := runOne(t, kernel.DefaultConfig(), func(k *kernel.Kernel) {
		r := k.ExInitializeResourceLite("r")
		k.KeEnterCriticalRegion()
		k.ExAcquireResourceExclusiveLite(r, true)
		k.PsCreateSystemThread("starver", 8, func() {
			k.KeEnterCriticalRegion()
			starved = append(starved, k.ExAcquireSharedStarveExclusive(r, false))
			k.KeLeaveCriticalRegion()
		})
		k.KeDelayExecutionThread(des.Millisecond)
		k.ExReleaseResourceLite(r)
		k.KeLeaveCriticalRegion()
	})
	require.NoError(t, out.Err)
	assert.Equal(t, []bool{false}, starved, "an exclusive owner holds StarveExclusive off")
}

// REFERENCE §4.11: a thread that already owns the resource shared is
// granted again by ExAcquireResourceSharedLite and
// ExAcquireSharedStarveExclusive even while an exclusive acquirer waits,
// but ExAcquireSharedWaitForExclusive defers to the waiter: with wait
// false it fails, with wait true the sharer waits for the writer that
// waits for it, a deadlock.
func TestResourceWaitForExclusiveDefersEvenToOwnShare(t *testing.T) {
	run := func(final bool) (des.Outcome, []bool) {
		m := newMachine(t, kernel.DefaultConfig(), nil)
		k := m.Kernel
		r := k.ExInitializeResourceLite("r")
		var got []bool
		k.PsCreateSystemThread("reader", 8, func() {
			k.KeEnterCriticalRegion()
			k.ExAcquireResourceSharedLite(r, true)
			k.KeDelayExecutionThread(50 * des.Microsecond) // the writer queues
			got = append(got, k.ExAcquireResourceSharedLite(r, false),
				k.ExAcquireSharedStarveExclusive(r, false),
				k.ExAcquireSharedWaitForExclusive(r, final))
			for range 3 {
				k.ExReleaseResourceLite(r)
			}
			k.KeLeaveCriticalRegion()
		})
		k.PsCreateSystemThread("writer", 8, func() {
			k.KeEnterCriticalRegion()
			k.KeDelayExecutionThread(10 * des.Microsecond)
			k.ExAcquireResourceExclusiveLite(r, true)
			k.ExReleaseResourceLite(r)
			k.KeLeaveCriticalRegion()
		})
		return k.Run(), got
	}
	out, got := run(false)
	require.NoError(t, out.Err)
	assert.Equal(t, []bool{true, true, false}, got)

	out, _ = run(true)
	var d *kernel.Deadlock
	require.ErrorAs(t, out.Err, &d, "the reader waits for the writer, which waits for the reader")
}
