package kernel_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// REFERENCE §4.20: an EX_TIMER's callback runs at DISPATCH_LEVEL at each
// expiry; ExSetTimer on a set timer reports it was set; ExCancelTimer
// stops a periodic one; once deleted, set and cancel do nothing.
func TestExTimerPeriodicAndCancel(t *testing.T) {
	var fires []des.Time
	var irql kernel.IRQL
	var rearmed, cancelled, setAfterDelete, deleteAgain bool
	out := runOne(t, oneCPU(), func(k *kernel.Kernel) {
		tm := k.ExAllocateTimer("poll", func(_ *kernel.EX_TIMER, ctx any) {
			fires = append(fires, k.Now())
			irql = k.KeGetCurrentIrql()
		}, nil)
		k.ExSetTimer(tm, 10*des.Microsecond, 10*des.Microsecond)
		rearmed = k.ExSetTimer(tm, 10*des.Microsecond, 10*des.Microsecond)
		k.KeDelayExecutionThread(35 * des.Microsecond)
		cancelled = k.ExCancelTimer(tm)
		k.KeDelayExecutionThread(50 * des.Microsecond)
		k.ExDeleteTimer(tm, true, true)
		setAfterDelete = k.ExSetTimer(tm, des.Microsecond, 0)
		deleteAgain = k.ExDeleteTimer(tm, true, false)
	})
	require.NoError(t, out.Err)
	assert.True(t, rearmed, "ExSetTimer on a set timer")
	assert.True(t, cancelled)
	assert.Len(t, fires, 3, "expiries at about 10, 20 and 30 µs, none after the cancel")
	assert.Equal(t, kernel.DISPATCH_LEVEL, irql)
	assert.False(t, setAfterDelete)
	assert.False(t, deleteAgain)
}

// REFERENCE §4.20: ExDeleteTimer with Wait returns only once a callback
// already running on another processor has finished, so the driver may
// free the callback's context; without Wait it returns at once and the
// free races with the callback, which then touches freed pool (0xD5).
func TestExDeleteTimerWait(t *testing.T) {
	run := func(wait bool) (des.Outcome, des.Time, des.Time) {
		var callbackEnd, deleted des.Time
		out := runOne(t, twoCPUs(), func(k *kernel.Kernel) {
			ctx := k.ExAllocatePoolWithTag(kernel.NonPagedPool, 32, "TmCx")
			tm := k.ExAllocateTimer("flush", func(_ *kernel.EX_TIMER, c any) {
				k.KeStallExecutionProcessor(20)
				k.AccessPool(c.(*kernel.PoolBlock), "the callback context")
				callbackEnd = k.Now()
			}, ctx)
			k.KeSetSystemAffinityThreadEx(1) // run on processor 0; the timer fires there only if it was set there
			k.ExSetTimer(tm, 5*des.Microsecond, 0)
			k.KeRevertToUserAffinityThreadEx(3)
			k.KeSetSystemAffinityThreadEx(2) // move to processor 1 while the callback runs on 0
			k.KeDelayExecutionThread(10 * des.Microsecond)
			k.ExDeleteTimer(tm, true, wait)
			deleted = k.Now()
			k.ExFreePoolWithTag(ctx, "TmCx")
			k.KeRevertToUserAffinityThreadEx(3)
		})
		return out, callbackEnd, deleted
	}
	out, end, deleted := run(true)
	require.NoError(t, out.Err)
	assert.GreaterOrEqual(t, int64(deleted), int64(end), "ExDeleteTimer(Wait) returned before the callback ended")

	out, _, _ = run(false)
	requireBugCheck(t, out, kernel.DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL, 1)
}

// REFERENCE §4.20: Wait requires Cancel (a bug check whose code Microsoft
// does not name) and IRQL ≤ APC_LEVEL, so it cannot be used from the
// timer's own callback.
func TestExDeleteTimerMisuse(t *testing.T) {
	out := runOne(t, oneCPU(), func(k *kernel.Kernel) {
		tm := k.ExAllocateTimer("t", func(*kernel.EX_TIMER, any) {}, nil)
		k.ExDeleteTimer(tm, false, true)
	})
	bc := requireBugCheck(t, out, kernel.UNSPECIFIED_BUGCHECK, 0)
	assert.Contains(t, bc.Detail, "Wait TRUE and Cancel FALSE")

	out = runOne(t, oneCPU(), func(k *kernel.Kernel) {
		var tm *kernel.EX_TIMER
		tm = k.ExAllocateTimer("self", func(*kernel.EX_TIMER, any) { k.ExDeleteTimer(tm, true, true) }, nil)
		k.ExSetTimer(tm, des.Microsecond, 0)
	})
	bc = requireBugCheck(t, out, kernel.IRQL_NOT_LESS_OR_EQUAL, 0)
	assert.Equal(t, "ExDeleteTimer", bc.API)
}
