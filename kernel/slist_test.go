package kernel_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// REFERENCE §4.8: the S-list routines' return values (the entry that was
// first for a push, the entry taken for a pop, the old first entry for a
// flush, nil for an empty list), last-in-first-out order, the depth
// ExQueryDepthSList reports, a flush leaving the entries chained, and the
// Ex… and plain Interlocked… forms working on the same list; pushes and
// pops are legal at any IRQL (here PASSIVE_LEVEL, HIGH_LEVEL and a DPC).
func TestSListRoutines(t *testing.T) {
	var h kernel.SLIST_HEADER
	var a, b, c kernel.SLIST_ENTRY
	var got []*kernel.SLIST_ENTRY
	var depths []uint16
	out := runOne(t, oneCPU(), func(k *kernel.Kernel) {
		lock := k.KeInitializeSpinLock("unused")
		k.ExInitializeSListHead(&h)
		depths = append(depths, k.ExQueryDepthSList(&h))
		got = append(got, k.InterlockedPopEntrySList(&h), k.ExInterlockedFlushSList(&h))
		got = append(got, k.ExInterlockedPushEntrySList(&h, &a, lock))
		got = append(got, k.InterlockedPushEntrySList(&h, &b))
		old := k.KeRaiseIrql(kernel.HIGH_LEVEL)
		got = append(got, k.ExInterlockedPushEntrySList(&h, &c, lock))
		k.KeLowerIrql(old)
		depths = append(depths, k.ExQueryDepthSList(&h))
		dpc := k.KeInitializeDpc("pop", func(*kernel.KDPC, any, any, any) {
			got = append(got, k.ExInterlockedPopEntrySList(&h, lock))
			depths = append(depths, k.ExQueryDepthSList(&h))
			got = append(got, k.InterlockedFlushSList(&h))
			depths = append(depths, k.ExQueryDepthSList(&h))
		}, nil)
		k.KeInsertQueueDpc(dpc, nil, nil)
	})
	require.NoError(t, out.Err)
	want := []*kernel.SLIST_ENTRY{nil, nil, nil, &a, &b, &c, &b}
	require.Len(t, got, len(want))
	for i := range want {
		assert.Same(t, want[i], got[i], "result %d", i)
	}
	assert.Equal(t, []uint16{0, 3, 2, 0}, depths)
	assert.Same(t, &a, b.Next, "the flushed entries stay chained")
	assert.Nil(t, a.Next)
}

// REFERENCE §4.8: each push is one atomic step, so pushes racing on two
// processors lose nothing (fails if a push reads the header at its call's
// scheduling point and writes it after another push got in).
func TestSListPushesOnTwoProcessorsLoseNothing(t *testing.T) {
	cfg := kernel.DefaultConfig()
	cfg.Processors = 2
	const each = 40
	var h kernel.SLIST_HEADER
	var depth uint16
	chained := 0
	out := runOne(t, cfg, func(k *kernel.Kernel) {
		k.ExInitializeSListHead(&h)
		done := k.KeInitializeEvent("done", kernel.NotificationEvent, false)
		// Different periods make the two pushers' calls drift across
		// each other, so some land at the same instant.
		push := func(period des.Duration) {
			for range each {
				k.InterlockedPushEntrySList(&h, &kernel.SLIST_ENTRY{})
				k.Compute(period)
			}
		}
		k.PsCreateSystemThread("other", 8, func() { push(1300 * des.Nanosecond); k.KeSetEvent(done, 0, false) })
		push(des.Microsecond)
		k.KeWaitForSingleObject(done, kernel.Infinite)
		depth = k.ExQueryDepthSList(&h)
		for e := k.InterlockedFlushSList(&h); e != nil; e = e.Next {
			chained++
		}
	})
	require.NoError(t, out.Err)
	assert.Equal(t, uint16(2*each), depth)
	assert.Equal(t, 2*each, chained)
}

// REFERENCE §4.8: ExQueryDepthSList requires IRQL ≤ DISPATCH_LEVEL; above
// it the model reports IRQL_NOT_LESS_OR_EQUAL 0xA, while the pushes and
// pops before it are legal at HIGH_LEVEL.
func TestQueryDepthSListAboveDispatchIs0xA(t *testing.T) {
	out := runOne(t, oneCPU(), func(k *kernel.Kernel) {
		var h kernel.SLIST_HEADER
		k.ExInitializeSListHead(&h)
		k.KeRaiseIrql(kernel.HIGH_LEVEL)
		k.InterlockedPushEntrySList(&h, &kernel.SLIST_ENTRY{})
		k.InterlockedPopEntrySList(&h)
		k.ExQueryDepthSList(&h)
	})
	bc := requireBugCheck(t, out, kernel.IRQL_NOT_LESS_OR_EQUAL, 0)
	assert.Equal(t, "ExQueryDepthSList", bc.API)
}

// REFERENCE §3.6: each S-list operation is a trace record naming the list
// (A = depth after; B = 1 when a push found the list empty, or when a pop
// took an entry; a flush's A = entries taken), and a hang report names a
// list that still holds entries, with its last push. An empty list is not
// named.
func TestSListTracedAndNamedInHang(t *testing.T) {
	m := newMachine(t, oneCPU(), nil)
	k := m.Kernel
	var work, spare kernel.SLIST_HEADER
	k.PsCreateSystemThread("producer", 8, func() {
		k.ExInitializeSListHead(&spare)
		k.ExInitializeSListHead(&work)
		k.ExInitializeSListHead(&work) // again: keeps its name
		done := k.KeInitializeEvent("done", kernel.NotificationEvent, false)
		k.InterlockedPushEntrySList(&work, &kernel.SLIST_ENTRY{})
		k.InterlockedPushEntrySList(&work, &kernel.SLIST_ENTRY{})
		k.InterlockedFlushSList(&work)
		k.InterlockedPopEntrySList(&spare)
		k.InterlockedPushEntrySList(&work, &kernel.SLIST_ENTRY{})
		k.KeWaitForSingleObject(done, kernel.Infinite) // no consumer ever sets it
	})
	out := k.Run()
	var d *kernel.Deadlock
	require.ErrorAs(t, out.Err, &d)
	require.Len(t, d.Pending, 1, d.Error())
	assert.Regexp(t, `^S-list 2 still holds 1 entry \(last pushed by producer at t=\S+s\)$`, d.Pending[0])
	assert.Equal(t, "S-list 2", work.Name())
	trace := m.trace.String()
	for _, line := range []string{
		`slist-push\s+S-list 2\s+1 1\n`,
		`slist-push\s+S-list 2\s+2 0\n`,
		`slist-flush\s+S-list 2\s+2 0\n`,
		`slist-pop\s+S-list 1\s+0 0\n`,
	} {
		assert.Regexp(t, line, trace)
	}
}
