package kernel_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/kernel"
)

// REFERENCE §1.12: a device queue. The first insert finds the device idle
// (FALSE, now busy); later inserts queue — by key, after every entry with
// a key ≤ theirs. KeRemoveByKeyDeviceQueue takes the first entry with a
// key ≥ the one given (the head when none is), KeRemoveEntryDeviceQueue a
// given one, and the removal from an empty queue leaves the device idle.
func TestDeviceQueueByKey(t *testing.T) {
	var got []string
	var queued []bool
	var entryRemoved, entryMissing, busyAfter bool
	out := runOne(t, oneCPU(), func(k *kernel.Kernel) {
		var q kernel.KDEVICE_QUEUE
		k.KeInitializeDeviceQueue(&q)
		tags := []string{"first", "k30", "k10", "k20", "k10b"}
		irps := map[string]*kernel.IRP{}
		for _, tag := range tags {
			irps[tag] = k.IoAllocateIrp(tag)
		}
		old := k.KeRaiseIrqlToDpcLevel()
		queued = append(queued, k.KeInsertDeviceQueue(&q, irps["first"]))
		queued = append(queued, k.KeInsertByKeyDeviceQueue(&q, irps["k30"], 30))
		queued = append(queued, k.KeInsertByKeyDeviceQueue(&q, irps["k10"], 10))
		queued = append(queued, k.KeInsertByKeyDeviceQueue(&q, irps["k20"], 20))
		queued = append(queued, k.KeInsertByKeyDeviceQueue(&q, irps["k10b"], 10))
		// queue order now: k10, k10b, k20, k30
		entryRemoved = k.KeRemoveEntryDeviceQueue(&q, irps["k20"])
		entryMissing = k.KeRemoveEntryDeviceQueue(&q, irps["first"])
		got = append(got, k.KeRemoveByKeyDeviceQueue(&q, 15).Tag) // first key ≥ 15: k30
		got = append(got, k.KeRemoveByKeyDeviceQueue(&q, 99).Tag) // none ≥ 99: the head, k10
		got = append(got, k.KeRemoveDeviceQueue(&q).Tag)          // k10b
		if irp := k.KeRemoveDeviceQueue(&q); irp != nil {
			got = append(got, irp.Tag)
		}
		busyAfter = q.Busy
		k.KeLowerIrql(old)
		for _, tag := range tags { // in a fixed order: the frees are traced
			k.IoFreeIrp(irps[tag])
		}
	})
	require.NoError(t, out.Err)
	assert.Equal(t, []bool{false, true, true, true, true}, queued)
	assert.True(t, entryRemoved)
	assert.False(t, entryMissing, "the IRP the device took first was never queued")
	assert.Equal(t, []string{"k30", "k10", "k10b"}, got)
	assert.False(t, busyAfter, "removing from the empty queue makes the device idle")
}

// REFERENCE §1.12: the insert and remove routines run at DISPATCH_LEVEL
// (Verifier 0xC4 P1=0x40 below it).
func TestDeviceQueueNeedsDispatchLevel(t *testing.T) {
	out := runOne(t, oneCPU(), func(k *kernel.Kernel) {
		var q kernel.KDEVICE_QUEUE
		k.KeInsertDeviceQueue(&q, k.IoAllocateIrp("passive"))
	})
	requireBugCheck(t, out, kernel.DRIVER_VERIFIER_DETECTED_VIOLATION, 0x40)
}
