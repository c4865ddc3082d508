package kernel_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// REFERENCE §3.7: a negative wait timeout, delay or timer due time is NT's
// relative form and means the same length as the positive duration: the
// wait times out after 5 ms (before, it waited for ever), the delay lasts
// 3 ms (before, none) and the timer expires after 2 ms (before, at once).
// kernel.Infinite still waits for ever.
func TestNegativeTimesAreNTRelative(t *testing.T) {
	var waited, delayed, fired des.Duration
	var st kernel.NTSTATUS
	var removed bool
	out := runOne(t, oneCPU(), func(k *kernel.Kernel) {
		ev := k.KeInitializeEvent("never", kernel.NotificationEvent, false)
		start := k.Now()
		st = k.KeWaitForSingleObject(ev, -5*des.Millisecond)
		waited = k.Now().Sub(start)

		start = k.Now()
		k.KeDelayExecutionThread(-3 * des.Millisecond)
		delayed = k.Now().Sub(start)

		q := k.KeInitializeQueue("empty", 0)
		_, removed = k.KeRemoveQueue(q, -des.Millisecond)

		timer := k.KeInitializeTimer("due")
		start = k.Now()
		k.KeSetTimer(timer, -2*des.Millisecond, nil)
		k.KeWaitForSingleObject(timer, kernel.Infinite)
		fired = k.Now().Sub(start)
	})
	require.NoError(t, out.Err)
	assert.Equal(t, kernel.STATUS_TIMEOUT, st)
	assert.InDelta(t, float64(5*des.Millisecond), float64(waited), float64(10*des.Microsecond))
	assert.InDelta(t, float64(3*des.Millisecond), float64(delayed), float64(10*des.Microsecond))
	assert.False(t, removed)
	assert.InDelta(t, float64(2*des.Millisecond), float64(fired), float64(10*des.Microsecond))

	// Infinite is not a relative time: nothing sets the event, so it hangs.
	out = runOne(t, oneCPU(), func(k *kernel.Kernel) {
		k.KeWaitForSingleObject(k.KeInitializeEvent("never", kernel.NotificationEvent, false), kernel.Infinite)
	})
	var d *kernel.Deadlock
	require.ErrorAs(t, out.Err, &d)
}
