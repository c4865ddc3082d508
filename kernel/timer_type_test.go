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
