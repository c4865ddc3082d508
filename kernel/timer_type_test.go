package kernel_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// REFERENCE §4.8: a notification timer (KeInitializeTimer, or
// KeInitializeTimerEx with NotificationTimer) stays signalled after it
// expires and releases every waiter; a synchronization timer releases one
// waiter and resets, like the event types the wdm.h names mirror.
func TestTimerTypesReleaseLikeTheirEventTypes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		typ   kernel.EVENT_TYPE
		plain bool // use KeInitializeTimer
		woken int
	}{
		{"KeInitializeTimer", kernel.NotificationTimer, true, 2},
		{"NotificationTimer", kernel.NotificationTimer, false, 2},
		{"SynchronizationTimer", kernel.SynchronizationTimer, false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMachine(t, kernel.DefaultConfig(), nil)
			var timer *kernel.KTIMER
			if tc.plain {
				timer = m.KeInitializeTimer("t")
			} else {
				timer = m.KeInitializeTimerEx("t", tc.typ)
			}
			woken := 0
			for _, name := range []string{"a", "b"} {
				m.PsCreateSystemThread(name, 8, func() {
					if m.KeWaitForSingleObject(timer, des.Millisecond) == kernel.STATUS_WAIT_0 {
						woken++
					}
				})
			}
			m.PsCreateSystemThread("arm", 8, func() { m.KeSetTimer(timer, 10*des.Microsecond, nil) })
			m.sim.Run()
			require.NoError(t, m.sim.Outcome().Err)
			assert.Equal(t, tc.woken, woken)
		})
	}
}

// REFERENCE §4.12: KeReadStateTimer is false until the timer expires and
// true after; re-arming clears the state and cancelling keeps it; a
// synchronization timer's signal is consumed by the wait it satisfies,
// while a notification timer stays signalled; above DISPATCH_LEVEL it is
// 0xA.
func TestReadStateTimer(t *testing.T) {
	m := newMachine(t, kernel.DefaultConfig(), nil)
	k := m.Kernel
	note := k.KeInitializeTimer("note")
	sync := k.KeInitializeTimerEx("sync", kernel.SynchronizationTimer)
	var got []bool
	read := func(t *kernel.KTIMER) { got = append(got, k.KeReadStateTimer(t)) }
	k.PsCreateSystemThread("driver", 8, func() {
		read(note) // never armed
		k.KeSetTimer(note, 10*des.Microsecond, nil)
		read(note) // armed, not yet due
		k.KeDelayExecutionThread(20 * des.Microsecond)
		read(note) // expired
		k.KeCancelTimer(note)
		read(note) // cancelling an expired timer keeps the state
		k.KeWaitForSingleObject(note, 0)
		read(note) // a notification timer stays signalled after a wait
		k.KeSetTimer(note, des.Millisecond, nil)
		read(note) // re-armed: cleared
		k.KeCancelTimer(note)
		read(note)

		k.KeSetTimer(sync, 10*des.Microsecond, nil)
		k.KeDelayExecutionThread(20 * des.Microsecond)
		read(sync) // expired with nobody waiting: signalled
		k.KeWaitForSingleObject(sync, 0)
		read(sync) // the wait consumed it
	})
	require.NoError(t, k.Run().Err)
	assert.Equal(t, []bool{false, false, true, true, true, false, false, true, false}, got)

	out := runOne(t, kernel.DefaultConfig(), func(k *kernel.Kernel) {
		timer := k.KeInitializeTimer("t")
		k.KeRaiseIrql(kernel.MinDIRQL)
		k.KeReadStateTimer(timer)
	})
	requireBugCheck(t, out, kernel.IRQL_NOT_LESS_OR_EQUAL, 0)
}
