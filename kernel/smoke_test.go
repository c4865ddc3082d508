package kernel_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

func TestSmokePingPong(t *testing.T) {
	m := newMachine(t, oneCPU(), nil)
	k := m.Kernel
	ping := k.KeInitializeEvent("ping", kernel.SynchronizationEvent, false)
	pong := k.KeInitializeEvent("pong", kernel.SynchronizationEvent, false)
	n := 0
	k.PsCreateSystemThread("a", 8, func() {
		for i := 0; i < 3; i++ {
			k.KeSetEvent(ping, 0, false)
			k.KeWaitForSingleObject(pong, kernel.Infinite)
			n++
		}
	})
	k.PsCreateSystemThread("b", 8, func() {
		for i := 0; i < 3; i++ {
			k.KeWaitForSingleObject(ping, kernel.Infinite)
			k.KeSetEvent(pong, 0, false)
		}
	})
	out := k.Run()
	t.Log(m.trace.String())
	require.NoError(t, out.Err)
	assert.Equal(t, 3, n)
	assert.Greater(t, out.End, des.Time(0))
}
