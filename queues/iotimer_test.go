package queues_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues"
)

// REFERENCE §1.11: after IoStartTimer the IoTimer routine runs at each
// whole second at DISPATCH_LEVEL, with the device and context given to
// IoInitializeTimer, until IoStopTimer; IoStartTimer re-enables it.
func TestIoTimerTicksEverySecond(t *testing.T) {
	r := newWIRig(t, wiCPUs(1), queues.DefaultPoolConfig())
	var ticks []des.Time
	var irql kernel.IRQL
	var gotDev *queues.DEVICE_OBJECT
	var gotCtx any
	r.driver(8, func() {
		drv, dev := wiLoad(r, "tick", nil)
		r.sys.IoInitializeTimer(dev, func(d *queues.DEVICE_OBJECT, ctx any) {
			ticks = append(ticks, r.k.Now())
			irql, gotDev, gotCtx = r.k.KeGetCurrentIrql(), d, ctx
		}, "ctx")
		r.k.KeDelayExecutionThread(300 * des.Millisecond)
		r.sys.IoStartTimer(dev)
		r.k.KeDelayExecutionThread(2500 * des.Millisecond) // ticks at 1 s and 2 s
		r.sys.IoStopTimer(dev)
		r.k.KeDelayExecutionThread(2 * des.Second) // none at 3 s or 4 s
		r.sys.IoStartTimer(dev)
		r.k.KeDelayExecutionThread(1500 * des.Millisecond) // at 5 s and 6 s
		r.sys.IoStopTimer(dev)
		r.sys.UnloadDriver(drv)
	})
	require.NoError(t, r.run(t).Err)
	require.Len(t, ticks, 4)
	for i, want := range []des.Duration{1, 2, 5, 6} {
		assert.InDelta(t, float64(want*des.Second), float64(ticks[i]), float64(10*des.Microsecond), "tick %d at a whole second (plus call costs)", i)
	}
	assert.Equal(t, kernel.DISPATCH_LEVEL, irql)
	assert.Equal(t, "ctx", gotCtx)
	assert.Equal(t, "device tick0", gotDev.Name())
}

// REFERENCE §1.11, §6.8: IoDeleteDevice takes the device off the timer
// list, so a driver that unloads with its timer started is safe; but
// IoStopTimer does not wait for a routine already running on another
// processor, and an image unloaded under it is 0xCE.
func TestIoTimerAtUnload(t *testing.T) {
	r := newWIRig(t, wiCPUs(1), queues.DefaultPoolConfig())
	r.driver(8, func() {
		drv, dev := wiLoad(r, "left", nil)
		r.sys.IoInitializeTimer(dev, func(*queues.DEVICE_OBJECT, any) {}, nil)
		r.sys.IoStartTimer(dev)
		r.k.KeDelayExecutionThread(1500 * des.Millisecond)
		r.sys.UnloadDriver(drv) // deletes the device while the timer is started
		r.k.KeDelayExecutionThread(3 * des.Second)
	})
	require.NoError(t, r.run(t).Err)

	r = newWIRig(t, wiCPUs(2), queues.DefaultPoolConfig())
	r.driver(8, func() {
		drv, dev := wiLoad(r, "racy", nil)
		r.sys.IoInitializeTimer(dev, func(*queues.DEVICE_OBJECT, any) {
			r.k.KeStallExecutionProcessor(40) // still running when the image goes
		}, nil)
		r.k.KeSetSystemAffinityThreadEx(2) // start the timer from processor 1: its DPC runs there
		r.sys.IoStartTimer(dev)
		r.k.KeRevertToUserAffinityThreadEx(3)
		r.k.KeSetSystemAffinityThreadEx(1)
		r.k.KeDelayExecutionThread(des.Second - des.Duration(int64(r.k.Now())%int64(des.Second)) + 10*des.Microsecond)
		r.sys.IoStopTimer(dev)
		r.sys.UnloadDriver(drv)
		r.k.KeRevertToUserAffinityThreadEx(3)
	})
	bc := wiRequireBugCheck(t, r.run(t), kernel.DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS, wiAnyP1)
	assert.Contains(t, bc.Detail, "returns into its routine, code of driver racy")
}

// REFERENCE §1.11: IoStartTimer without IoInitializeTimer dereferences
// the device's NULL timer.
func TestIoStartTimerWithoutInitialize(t *testing.T) {
	r := newWIRig(t, wiCPUs(1), queues.DefaultPoolConfig())
	r.driver(8, func() {
		_, dev := wiLoad(r, "none", nil)
		r.sys.IoStartTimer(dev)
	})
	wiRequireBugCheck(t, r.run(t), kernel.SYSTEM_THREAD_EXCEPTION_NOT_HANDLED, uint64(kernel.STATUS_ACCESS_VIOLATION))
}
