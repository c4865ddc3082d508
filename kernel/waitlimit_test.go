package kernel_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// BC:0xC (REFERENCE §1.8): a wait on more than MAXIMUM_WAIT_OBJECTS
// objects is MAXIMUM_WAIT_OBJECTS_EXCEEDED; 64 is still a wait.
func TestTooManyWaitObjectsIs0xC(t *testing.T) {
	wait := func(n int) des.Outcome {
		m := newMachine(t, oneCPU(), nil)
		m.PsCreateSystemThread("waiter", 8, func() {
			objs := make([]kernel.Waitable, n)
			for i := range objs {
				objs[i] = m.KeInitializeEvent("e", kernel.NotificationEvent, true)
			}
			m.KeWaitForMultipleObjects(objs, kernel.WaitAll, kernel.Infinite)
		})
		return m.Run()
	}
	require.NoError(t, wait(kernel.MAXIMUM_WAIT_OBJECTS).Err)
	var bc *kernel.BugCheck
	require.ErrorAs(t, wait(kernel.MAXIMUM_WAIT_OBJECTS+1).Err, &bc)
	assert.Equal(t, kernel.MAXIMUM_WAIT_OBJECTS_EXCEEDED, bc.Code)
	assert.Contains(t, bc.Error(), "MAXIMUM_WAIT_OBJECTS_EXCEEDED")
}

// A device interrupt on a processor the machine does not have is a
// programming error named as such, not an index-out-of-range panic.
func TestDeviceInterruptOnMissingProcessor(t *testing.T) {
	m := newMachine(t, oneCPU(), nil)
	m.PsCreateSystemThread("driver", 8, func() {
		intr, err := m.IoConnectInterrupt("dev", 5, func(*kernel.KINTERRUPT, any) bool { return true }, nil)
		require.NoError(t, err)
		m.DeviceInterrupt(intr, 3, m.Now())
	})
	out := m.Run()
	require.Error(t, out.Err)
	assert.Contains(t, out.Err.Error(), "DeviceInterrupt(dev, 3): the machine has processors 0..0")
}
