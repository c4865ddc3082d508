package queues_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues"
)

// timerDriver loads a driver whose DriverEntry arms a one-shot timer with a
// DPC due in 1 ms; its unload routine runs unload (with the timer) and then
// deletes its device.
func timerDriver(r *wiRig, unload func(*kernel.KTIMER)) (*queues.DRIVER_OBJECT, *kernel.KDPC) {
	var dpc *kernel.KDPC
	drv, st := r.sys.LoadDriver("ticker", func(d *queues.DRIVER_OBJECT) kernel.NTSTATUS {
		dev, _ := r.sys.IoCreateDevice(d, "ticker0")
		timer := r.k.KeInitializeTimer("tick")
		dpc = r.k.KeInitializeDpc("tick-dpc", func(*kernel.KDPC, any, any, any) {}, nil)
		r.k.KeSetTimer(timer, des.Millisecond, dpc)
		d.DriverUnload = func(*queues.DRIVER_OBJECT) {
			unload(timer)
			r.sys.IoDeleteDevice(dev)
		}
		return kernel.STATUS_SUCCESS
	})
	if st != kernel.STATUS_SUCCESS {
		panic(st)
	}
	return drv, dpc
}

// REFERENCE §6.8: a timer armed by the driver and not cancelled at unload
// fires into the unloaded image: its DPC routine faults, 0xCE.
func TestTimerDpcAfterUnloadIs0xCE(t *testing.T) {
	r := newWIRig(t, wiCPUs(1), queues.DefaultPoolConfig())
	var drv *queues.DRIVER_OBJECT
	var dpc *kernel.KDPC
	r.driver(8, func() {
		drv, dpc = timerDriver(r, func(*kernel.KTIMER) {})
		r.sys.UnloadDriver(drv)
	})
	bc := wiRequireBugCheck(t, r.run(t), kernel.DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS, wiAnyP1)
	assert.Equal(t, "KiExecuteDpc", bc.API)
	assert.Contains(t, bc.Detail, "DPC tick-dpc of driver ticker")
	assert.Same(t, drv.Image(), dpc.Image(), "a DPC initialised in DriverEntry belongs to the driver")
	assert.False(t, drv.ImageLoaded())
}

// REFERENCE §6.8: the fix — cancel the timer, then flush queued DPCs (one
// may already be queued or running) — leaves nothing to run.
func TestCancelledTimerAndFlushedDpcsAreSafe(t *testing.T) {
	r := newWIRig(t, wiCPUs(2), queues.DefaultPoolConfig())
	var drv *queues.DRIVER_OBJECT
	r.driver(8, func() {
		drv, _ = timerDriver(r, func(timer *kernel.KTIMER) {
			r.k.KeCancelTimer(timer)
			r.k.KeFlushQueuedDpcs()
		})
		r.k.Compute(2 * des.Millisecond) // the timer would have fired by now
		r.sys.UnloadDriver(drv)
	})
	require.NoError(t, r.run(t).Err)
	assert.False(t, drv.ImageLoaded())
}

// threadDriver loads a driver whose DriverEntry starts a system thread that
// waits for stop, sets done, and spends 100 µs on its way out (still in the
// driver's code). DriverUnload sets stop and waits as wait says.
func threadDriver(r *wiRig, wait func(th *kernel.Thread, done *kernel.KEVENT)) (*queues.DRIVER_OBJECT, *kernel.Thread) {
	var th *kernel.Thread
	drv, _ := r.sys.LoadDriver("threaded", func(d *queues.DRIVER_OBJECT) kernel.NTSTATUS {
		dev, _ := r.sys.IoCreateDevice(d, "threaded0")
		stop := r.k.KeInitializeEvent("stop", kernel.NotificationEvent, false)
		done := r.k.KeInitializeEvent("done", kernel.NotificationEvent, false)
		th = r.k.PsCreateSystemThread("poller", 8, func() {
			r.k.KeWaitForSingleObject(stop, kernel.Infinite)
			r.k.KeSetEvent(done, 0, false)
			r.k.Compute(100 * des.Microsecond)
		})
		d.DriverUnload = func(*queues.DRIVER_OBJECT) {
			r.k.KeSetEvent(stop, 0, false)
			wait(th, done)
			r.sys.IoDeleteDevice(dev)
		}
		return kernel.STATUS_SUCCESS
	})
	return drv, th
}

// REFERENCE §6.8: a driver thread that signals "done" and then returns
// still runs driver code after the event is set; an unload that waits for
// the event lets the image go first, and the thread faults, 0xCE.
func TestDriverThreadSignallingDoneStillRaces(t *testing.T) {
	r := newWIRig(t, wiCPUs(2), queues.DefaultPoolConfig())
	var th *kernel.Thread
	r.driver(8, func() {
		var drv *queues.DRIVER_OBJECT
		drv, th = threadDriver(r, func(_ *kernel.Thread, done *kernel.KEVENT) {
			r.k.KeWaitForSingleObject(done, kernel.Infinite)
		})
		r.k.Compute(10 * des.Microsecond) // the poller is waiting
		r.sys.UnloadDriver(drv)
	})
	bc := wiRequireBugCheck(t, r.run(t), kernel.DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS, wiAnyP1)
	assert.Equal(t, "poller", bc.Actor)
	assert.Contains(t, bc.Detail, "thread poller of driver threaded returns into its code")
	assert.Equal(t, "threaded", th.Image().Name())
}

// REFERENCE §6.8: waiting on the thread object instead is the fix: it is
// signalled only when the thread has left the driver's code.
func TestDriverThreadWaitedOnObjectIsSafe(t *testing.T) {
	r := newWIRig(t, wiCPUs(2), queues.DefaultPoolConfig())
	var drv *queues.DRIVER_OBJECT
	r.driver(8, func() {
		drv, _ = threadDriver(r, func(th *kernel.Thread, _ *kernel.KEVENT) {
			r.k.KeWaitForSingleObject(th.Object(), kernel.Infinite)
		})
		r.k.Compute(10 * des.Microsecond)
		r.sys.UnloadDriver(drv)
	})
	require.NoError(t, r.run(t).Err)
	assert.False(t, drv.ImageLoaded())
}

// REFERENCE §6.8: a driver thread that has not even started when the image
// goes faults on its start routine.
func TestDriverThreadStartingAfterUnloadIs0xCE(t *testing.T) {
	r := newWIRig(t, wiCPUs(1), queues.DefaultPoolConfig())
	r.driver(8, func() {
		drv, _ := wiLoad(r, "early", nil)
		drv.PsCreateSystemThread("late", 1, func() {}) // cannot run before the unload below
		r.sys.UnloadDriver(drv)
	})
	bc := wiRequireBugCheck(t, r.run(t), kernel.DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS, wiAnyP1)
	assert.Contains(t, bc.Detail, "thread late of driver early starts its start routine")
}

// Threads and DPCs created outside any driver's code (a scenario's own
// actors) belong to no image and are never checked; the driver's explicit
// KeInitializeDpc ties one from such code.
func TestOwnershipFollowsTheCreatingCode(t *testing.T) {
	r := newWIRig(t, wiCPUs(1), queues.DefaultPoolConfig())
	plain := r.k.KeInitializeDpc("plain", func(*kernel.KDPC, any, any, any) {}, nil)
	assert.Nil(t, plain.Image())
	r.driver(8, func() {
		drv, _ := wiLoad(r, "owner", nil)
		tied := drv.KeInitializeDpc("tied", func(*kernel.KDPC, any, any, any) {}, nil)
		assert.Same(t, drv.Image(), tied.Image())
		assert.Nil(t, r.k.Layer().CurrentImage(), "the scenario's thread is back outside the driver")
		r.sys.UnloadDriver(drv)
		r.k.KeInsertQueueDpc(plain, nil, nil) // not driver code: runs without a finding
	})
	require.NoError(t, r.run(t).Err)
}

// interruptDriver loads a driver whose DriverEntry connects an interrupt
// whose ISR queues a DPC; its unload routine runs unload first. The device
// interrupts 100 µs after the unload, on processor 1.
func interruptDriver(r *wiRig, unload func(*kernel.KINTERRUPT)) *queues.DRIVER_OBJECT {
	drv, _ := r.sys.LoadDriver("irqdev", func(d *queues.DRIVER_OBJECT) kernel.NTSTATUS {
		dev, _ := r.sys.IoCreateDevice(d, "irqdev0")
		dpc := r.k.KeInitializeDpc("irqdev-dpc", func(*kernel.KDPC, any, any, any) {}, nil)
		intr, err := r.k.IoConnectInterrupt("irqdev", 5, func(*kernel.KINTERRUPT, any) bool {
			r.k.KeInsertQueueDpc(dpc, nil, nil)
			return true
		}, nil)
		if err != nil {
			panic(err)
		}
		d.DriverUnload = func(*queues.DRIVER_OBJECT) {
			unload(intr)
			r.sys.IoDeleteDevice(dev)
			r.k.DeviceInterrupt(intr, 1, r.k.Now().Add(100*des.Microsecond))
		}
		return kernel.STATUS_SUCCESS
	})
	return drv
}

// REFERENCE §6.8: an interrupt left connected at unload calls the ISR in
// the unmapped image, 0xCE; disconnecting it (DDI:IoDisconnectInterrupt)
// leaves the line with no routine, and the late interrupt does nothing.
func TestInterruptLeftConnectedAfterUnloadIs0xCE(t *testing.T) {
	r := newWIRig(t, wiCPUs(2), queues.DefaultPoolConfig())
	r.driver(8, func() { r.sys.UnloadDriver(interruptDriver(r, func(*kernel.KINTERRUPT) {})) })
	bc := wiRequireBugCheck(t, r.run(t), kernel.DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS, wiAnyP1)
	assert.Equal(t, "KiInterruptDispatch", bc.API)
	assert.Contains(t, bc.Detail, "interrupt irqdev of driver irqdev is still connected")

	r = newWIRig(t, wiCPUs(2), queues.DefaultPoolConfig())
	var drv *queues.DRIVER_OBJECT
	r.driver(8, func() {
		drv = interruptDriver(r, func(intr *kernel.KINTERRUPT) {
			r.k.IoDisconnectInterrupt(intr)
			r.k.KeFlushQueuedDpcs()
		})
		r.sys.UnloadDriver(drv)
	})
	require.NoError(t, r.run(t).Err)
	assert.False(t, drv.ImageLoaded())
}

// rearmDriver loads a driver whose system thread re-arms a one-shot timer
// every 5 µs until told to stop; DriverUnload runs unload.
func rearmDriver(r *wiRig, unload func(timer *kernel.KTIMER, stop *kernel.KEVENT, th *kernel.Thread)) *queues.DRIVER_OBJECT {
	drv, _ := r.sys.LoadDriver("rearm", func(d *queues.DRIVER_OBJECT) kernel.NTSTATUS {
		dev, _ := r.sys.IoCreateDevice(d, "rearm0")
		timer := r.k.KeInitializeTimer("tick")
		dpc := r.k.KeInitializeDpc("tick-dpc", func(*kernel.KDPC, any, any, any) {}, nil)
		stop := r.k.KeInitializeEvent("stop", kernel.NotificationEvent, false)
		th := r.k.PsCreateSystemThread("armer", 8, func() {
			for r.k.KeWaitForSingleObject(stop, 5*des.Microsecond) == kernel.STATUS_TIMEOUT {
				r.k.KeSetTimer(timer, 20*des.Microsecond, dpc)
			}
			r.k.KeSetTimer(timer, 20*des.Microsecond, dpc) // one last sample on the way out
		})
		d.DriverUnload = func(*queues.DRIVER_OBJECT) {
			unload(timer, stop, th)
			r.sys.IoDeleteDevice(dev)
		}
		return kernel.STATUS_SUCCESS
	})
	return drv
}

// REFERENCE §6.8: KeCancelTimer and KeFlushQueuedDpcs protect the unload
// only once nothing can arm the timer again. A thread that re-arms it and
// is stopped afterwards arms it behind the cancel: 0xCE, and the report
// says to stop the arming code first.
func TestTimerRearmedByThreadAfterCancelIs0xCE(t *testing.T) {
	r := newWIRig(t, wiCPUs(2), queues.DefaultPoolConfig())
	r.driver(8, func() {
		drv := rearmDriver(r, func(timer *kernel.KTIMER, stop *kernel.KEVENT, th *kernel.Thread) {
			r.k.KeCancelTimer(timer)
			r.k.KeFlushQueuedDpcs()
			r.k.KeSetEvent(stop, 0, false)
			r.k.KeWaitForSingleObject(th.Object(), kernel.Infinite)
		})
		r.k.Compute(12 * des.Microsecond)
		r.sys.UnloadDriver(drv)
	})
	bc := wiRequireBugCheck(t, r.run(t), kernel.DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS, wiAnyP1)
	assert.Equal(t, "KiExecuteDpc", bc.API)
	assert.Contains(t, bc.Detail, "first stop whatever arms its timers")
}

// REFERENCE §6.8: stopping the arming thread first (and waiting on its
// object), then cancelling and flushing, is safe.
func TestStopArmingThreadThenCancelTimerIsSafe(t *testing.T) {
	r := newWIRig(t, wiCPUs(2), queues.DefaultPoolConfig())
	var drv *queues.DRIVER_OBJECT
	r.driver(8, func() {
		drv = rearmDriver(r, func(timer *kernel.KTIMER, stop *kernel.KEVENT, th *kernel.Thread) {
			r.k.KeSetEvent(stop, 0, false)
			r.k.KeWaitForSingleObject(th.Object(), kernel.Infinite)
			r.k.KeCancelTimer(timer)
			r.k.KeFlushQueuedDpcs()
		})
		r.k.Compute(12 * des.Microsecond)
		r.sys.UnloadDriver(drv)
	})
	require.NoError(t, r.run(t).Err)
	assert.False(t, drv.ImageLoaded())
}

// DDI:IoDetachDevice (REFERENCE §5.6): attaching references the device
// attached to, so a lower driver whose device has an upper device on it
// stays loaded after its own unload; the upper driver's IoDetachDevice
// drops that reference and the lower image goes. Detaching twice is a
// contract violation.
func TestDetachReleasesTheLowerDevice(t *testing.T) {
	r := newWIRig(t, wiCPUs(1), queues.DefaultPoolConfig())
	var lower, upper *queues.DRIVER_OBJECT
	var lowerLoadedAfterUnload bool
	r.driver(8, func() {
		var lowerDev, upperDev *queues.DEVICE_OBJECT
		lower, lowerDev = wiLoad(r, "lower", nil)
		upper, upperDev = wiLoad(r, "upper", nil)
		below := r.sys.IoAttachDeviceToDeviceStack(upperDev, lowerDev)
		assert.Same(t, lowerDev, below)
		assert.Equal(t, 2, lowerDev.References(), "creation + attachment")
		r.sys.UnloadDriver(lower)
		lowerLoadedAfterUnload = lower.ImageLoaded()
		upper.DriverUnload = func(*queues.DRIVER_OBJECT) {
			r.sys.IoDetachDevice(below)
			r.sys.IoDeleteDevice(upperDev)
		}
		r.sys.UnloadDriver(upper)
		r.sys.IoDetachDevice(below)
	})
	var cv *queues.ContractViolation
	require.ErrorAs(t, r.run(t).Err, &cv, "the second detach")
	assert.Equal(t, "IoDetachDevice", cv.API)
	assert.True(t, lowerLoadedAfterUnload, "held by the attachment")
	assert.False(t, lower.ImageLoaded(), "released by the detach")
	assert.False(t, upper.ImageLoaded())
}

// REFERENCE §6.8, §9: a request in flight holds its device (the model's
// stand-in for the file object it is issued on), so an unload while a
// read is pending leaves the image mapped until the read completes: the
// timer DPC that completes it is driver code running in a loaded image,
// not a finding; the image goes with the completion.
func TestPendingIrpKeepsTheImage(t *testing.T) {
	r := newWIRig(t, wiCPUs(1), queues.DefaultPoolConfig())
	var drv *queues.DRIVER_OBJECT
	var loadedAfterUnload bool
	r.driver(8, func() {
		var pending *kernel.IRP
		drv, _ = r.sys.LoadDriver("slow", func(d *queues.DRIVER_OBJECT) kernel.NTSTATUS {
			dev, _ := r.sys.IoCreateDevice(d, "slow0")
			timer := r.k.KeInitializeTimer("slow")
			dpc := r.k.KeInitializeDpc("slow-done", func(*kernel.KDPC, any, any, any) {
				pending.IoStatus = kernel.IO_STATUS_BLOCK{Status: kernel.STATUS_SUCCESS}
				r.k.IoCompleteRequest(pending, kernel.IO_NO_INCREMENT)
			}, nil)
			d.MajorFunction[queues.IRP_MJ_READ] = func(_ *queues.DEVICE_OBJECT, irp *kernel.IRP) kernel.NTSTATUS {
				pending = irp
				r.k.IoMarkIrpPending(irp)
				r.k.KeSetTimer(timer, 200*des.Microsecond, dpc)
				return kernel.STATUS_PENDING
			}
			d.DriverUnload = func(*queues.DRIVER_OBJECT) { r.sys.IoDeleteDevice(dev) }
			return kernel.STATUS_SUCCESS
		})
		var iosb kernel.IO_STATUS_BLOCK
		irp := r.sys.IoBuildAsynchronousFsdRequest(queues.IRP_MJ_READ, drv.Devices()[0], &iosb, "read")
		assert.Equal(t, kernel.STATUS_PENDING, r.sys.IoCallDriver(drv.Devices()[0], irp))
		r.sys.UnloadDriver(drv)
		loadedAfterUnload = drv.ImageLoaded()
	})
	require.NoError(t, r.run(t).Err)
	assert.True(t, loadedAfterUnload, "held by the pending read")
	assert.False(t, drv.ImageLoaded(), "released by its completion")
}

// REFERENCE §6.8: a reference the driver's own code holds does not keep
// that code loaded. A timer DPC whose last act drops the last reference on
// the driver's (deleted) device lets the image go inside its own call, and
// the routine's return runs in the unmapped image: 0xCE, even though no
// scheduling point follows the call. (A DPC that completes the last pending
// IRP is not this case: Windows would not have called DriverUnload yet,
// TestPendingIrpKeepsTheImage.)
func TestDpcDroppingLastReferenceIs0xCE(t *testing.T) {
	r := newWIRig(t, wiCPUs(1), queues.DefaultPoolConfig())
	var drv *queues.DRIVER_OBJECT
	r.driver(8, func() {
		drv, _ = r.sys.LoadDriver("holder", func(d *queues.DRIVER_OBJECT) kernel.NTSTATUS {
			dev, _ := r.sys.IoCreateDevice(d, "holder0")
			r.sys.ObReferenceObject(dev) // for the DPC
			timer := r.k.KeInitializeTimer("late")
			dpc := r.k.KeInitializeDpc("late-dpc", func(*kernel.KDPC, any, any, any) { r.sys.ObDereferenceObject(dev) }, nil)
			r.k.KeSetTimer(timer, des.Millisecond, dpc)
			d.DriverUnload = func(*queues.DRIVER_OBJECT) { r.sys.IoDeleteDevice(dev) }
			return kernel.STATUS_SUCCESS
		})
		r.sys.UnloadDriver(drv)
		assert.True(t, drv.ImageLoaded(), "the DPC's reference keeps the device and the image")
	})
	bc := wiRequireBugCheck(t, r.run(t), kernel.DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS, wiAnyP1)
	assert.Equal(t, "ObDereferenceObject", bc.API)
	assert.Contains(t, bc.Detail, "called from driver holder's own code, dropped the last reference and unloaded the image")
	assert.False(t, drv.ImageLoaded())
}

// REFERENCE §6.8: the same for a driver thread whose start routine drops
// the last reference as its last act before returning.
func TestThreadDroppingLastReferenceIs0xCE(t *testing.T) {
	r := newWIRig(t, wiCPUs(1), queues.DefaultPoolConfig())
	r.driver(8, func() {
		drv, _ := r.sys.LoadDriver("holder", func(d *queues.DRIVER_OBJECT) kernel.NTSTATUS {
			dev, _ := r.sys.IoCreateDevice(d, "holder0")
			r.sys.ObReferenceObject(dev) // for the thread
			r.k.PsCreateSystemThread("worker", 8, func() {
				r.k.KeDelayExecutionThread(100 * des.Microsecond)
				r.sys.ObDereferenceObject(dev)
			})
			d.DriverUnload = func(*queues.DRIVER_OBJECT) { r.sys.IoDeleteDevice(dev) }
			return kernel.STATUS_SUCCESS
		})
		r.sys.UnloadDriver(drv)
	})
	bc := wiRequireBugCheck(t, r.run(t), kernel.DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS, wiAnyP1)
	assert.Equal(t, "worker", bc.Actor)
	assert.Contains(t, bc.Detail, "called from driver holder's own code, dropped the last reference and unloaded the image")
}

// REFERENCE §4.21, §6.8: a threaded DPC of a driver whose image was
// unloaded (its timer not cancelled) is 0xCE, as an ordinary DPC is.
func TestThreadedDpcOfUnloadedDriver(t *testing.T) {
	r := newWIRig(t, wiCPUs(1), queues.DefaultPoolConfig())
	r.driver(8, func() {
		k := r.k
		var tm *kernel.KTIMER
		drv, st := r.sys.LoadDriver("tdpc", func(d *queues.DRIVER_OBJECT) kernel.NTSTATUS {
			tm = k.KeInitializeTimer("poll")
			dpc := k.KeInitializeThreadedDpc("poll", func(*kernel.KDPC, any, any, any) {}, nil)
			k.KeSetTimer(tm, 20*des.Microsecond, dpc)
			d.DriverUnload = func(*queues.DRIVER_OBJECT) {} // forgets KeCancelTimer
			return kernel.STATUS_SUCCESS
		})
		require.Equal(t, kernel.STATUS_SUCCESS, st)
		r.sys.UnloadDriver(drv)
		k.KeDelayExecutionThread(50 * des.Microsecond)
	})
	bc := wiRequireBugCheck(t, r.run(t), kernel.DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS, wiAnyP1)
	assert.Contains(t, bc.Detail, "DPC poll")
}
