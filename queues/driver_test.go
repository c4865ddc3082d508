package queues_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues"
)

// wiLoad loads a driver with one device whose unload routine deletes it
// (and first runs extra, if set).
func wiLoad(r *wiRig, name string, extra func()) (*queues.DRIVER_OBJECT, *queues.DEVICE_OBJECT) {
	var dev *queues.DEVICE_OBJECT
	drv, st := r.sys.LoadDriver(name, func(d *queues.DRIVER_OBJECT) kernel.NTSTATUS {
		dev, _ = r.sys.IoCreateDevice(d, name+"0")
		d.DriverUnload = func(d *queues.DRIVER_OBJECT) {
			if extra != nil {
				extra()
			}
			r.sys.IoDeleteDevice(dev)
		}
		return kernel.STATUS_SUCCESS
	})
	if st != kernel.STATUS_SUCCESS {
		panic(st)
	}
	return drv, dev
}

// REFERENCE §1.2, §6.8: references: a device references its driver; the
// image unloads when UnloadDriver has run and the last reference is gone.
func TestDriverReferenceCounting(t *testing.T) {
	r := newWIRig(t, wiCPUs(1), queues.DefaultPoolConfig())
	r.driver(8, func() {
		drv, dev := wiLoad(r, "refs", nil)
		assert.Equal(t, 2, drv.References(), "load + device")
		assert.Equal(t, 1, dev.References())
		r.sys.ObReferenceObject(dev)
		assert.Equal(t, kernel.STATUS_SUCCESS, r.sys.UnloadDriver(drv))
		assert.True(t, dev.Deleted())
		assert.True(t, drv.ImageLoaded(), "the extra device reference keeps the image")
		assert.Equal(t, kernel.STATUS_INVALID_DEVICE_REQUEST, r.sys.UnloadDriver(drv), "already unloading")
		r.sys.ObDereferenceObject(dev)
		assert.False(t, drv.ImageLoaded())
		assert.Empty(t, drv.Devices())
		assert.Equal(t, 0, drv.References())
	})
	require.NoError(t, r.run(t).Err)
	assert.Contains(t, r.trace.String(), "image-unloaded")
}

// A driver without an unload routine cannot be unloaded; a failing
// DriverEntry leaves no image behind.
func TestDriverLoadFailureAndNoUnloadRoutine(t *testing.T) {
	r := newWIRig(t, wiCPUs(1), queues.DefaultPoolConfig())
	r.driver(8, func() {
		d, st := r.sys.LoadDriver("stuck", func(*queues.DRIVER_OBJECT) kernel.NTSTATUS { return kernel.STATUS_SUCCESS })
		require.Equal(t, kernel.STATUS_SUCCESS, st)
		assert.Equal(t, kernel.STATUS_INVALID_DEVICE_REQUEST, r.sys.UnloadDriver(d))
		assert.True(t, d.ImageLoaded())
		f, st := r.sys.LoadDriver("fails", func(*queues.DRIVER_OBJECT) kernel.NTSTATUS { return kernel.STATUS_INSUFFICIENT_RESOURCES })
		assert.Equal(t, kernel.STATUS_INSUFFICIENT_RESOURCES, st)
		assert.False(t, f.ImageLoaded())
		assert.Len(t, r.sys.Drivers(), 2)
	})
	require.NoError(t, r.run(t).Err, "drivers never unloaded are fine")
}

// Dropping a reference nobody holds is REFERENCE_BY_POINTER 0x18.
func TestOverDereference(t *testing.T) {
	r := newWIRig(t, wiCPUs(1), queues.DefaultPoolConfig())
	r.driver(8, func() {
		_, dev := wiLoad(r, "over", nil)
		r.sys.ObDereferenceObject(dev)
		r.sys.ObDereferenceObject(dev)
	})
	wiRequireBugCheck(t, r.run(t), queues.REFERENCE_BY_POINTER, 0)
}

// REFERENCE §1.1, §6.8: an Ex item whose routine is in a driver, still
// queued when the driver unloads, makes the worker call unmapped code: 0xCE.
func TestUnloadWithQueuedExItemIs0xCE(t *testing.T) {
	r := newWIRig(t, wiCPUs(1), queues.DefaultPoolConfig())
	var item queues.WORK_QUEUE_ITEM
	r.driver(20, func() { // above the workers: the item stays queued until the driver is gone
		drv, _ := wiLoad(r, "exdrv", nil)
		drv.ExInitializeWorkItem(&item, func(any) {}, nil)
		r.sys.ExQueueWorkItem(&item, queues.DelayedWorkQueue)
		r.sys.UnloadDriver(drv)
		assert.False(t, drv.ImageLoaded(), "nothing holds the image")
	})
	bc := wiRequireBugCheck(t, r.run(t), kernel.DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS, wiAnyP1)
	assert.Contains(t, bc.Detail, "calls routine")
	assert.Contains(t, bc.Detail, "use IoQueueWorkItem")
	assert.Equal(t, bc.Params[0], bc.Params[2], "P3 the instruction that referenced P1")
}

// REFERENCE §6.8: even "wait in DriverUnload for my item to signal" is
// unsafe with an Ex item: after the signal the routine still returns
// through the driver's image, and the unload can get there first (the
// return is a scheduling point; here the routine is stretched past the
// unload by a short compute after the signal).
func TestUnloadWaitingForExItemStillRaces(t *testing.T) {
	r := newWIRig(t, wiCPUs(2), queues.DefaultPoolConfig())
	var item queues.WORK_QUEUE_ITEM
	r.driver(8, func() {
		done := r.k.KeInitializeEvent("item-done", kernel.NotificationEvent, false)
		drv, _ := wiLoad(r, "waiter", func() { r.k.KeWaitForSingleObject(done, kernel.Infinite) })
		drv.ExInitializeWorkItem(&item, func(any) {
			r.k.KeSetEvent(done, 0, false)
			r.k.Compute(100 * des.Microsecond) // the epilogue, still in the driver
		}, nil)
		r.sys.ExQueueWorkItem(&item, queues.DelayedWorkQueue)
		r.sys.UnloadDriver(drv)
	})
	bc := wiRequireBugCheck(t, r.run(t), kernel.DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS, wiAnyP1)
	assert.Contains(t, bc.Detail, "returns into routine")
}

// REFERENCE §1.2, §6.8: the same unload with an I/O work item is safe: the
// item's device reference keeps the image until the routine has returned
// and the kernel wrapper drops it; then the image unloads.
func TestUnloadWithQueuedIoItemIsSafe(t *testing.T) {
	r := newWIRig(t, wiCPUs(1), queues.DefaultPoolConfig())
	var drv *queues.DRIVER_OBJECT
	var loadedInRoutine bool
	r.driver(20, func() {
		var dev *queues.DEVICE_OBJECT
		drv, dev = wiLoad(r, "iodrv", nil)
		iw := r.sys.IoAllocateWorkItem(dev)
		r.sys.IoQueueWorkItem(iw, func(d *queues.DEVICE_OBJECT, _ any) {
			loadedInRoutine = d.DriverObject.ImageLoaded()
			assert.True(t, d.Deleted(), "deleted but alive: referenced")
			r.sys.IoFreeWorkItem(iw) // legal from the routine
		}, queues.DelayedWorkQueue, nil)
		r.sys.UnloadDriver(drv)
		assert.True(t, drv.ImageLoaded(), "held by the queued item")
	})
	require.NoError(t, r.run(t).Err)
	assert.True(t, loadedInRoutine)
	assert.False(t, drv.ImageLoaded(), "unloaded by the wrapper's dereference")
}

// REFERENCE §1.2: IoDeleteDevice drops the creation reference; calling it
// twice drops one the caller does not own. With nothing else holding the
// device that is REFERENCE_BY_POINTER 0x18 at the second call; with an I/O
// work item queued on it, the device goes too early and the work item's
// own dereference finds no reference left.
func TestDeletingADeviceTwiceIs0x18(t *testing.T) {
	t.Run("alone", func(t *testing.T) {
		r := newWIRig(t, wiCPUs(1), queues.DefaultPoolConfig())
		r.driver(8, func() {
			drv, dev := wiLoad(r, "twice", nil)
			r.sys.IoDeleteDevice(dev)
			r.sys.UnloadDriver(drv) // DriverUnload deletes it again
		})
		bc := wiRequireBugCheck(t, r.run(t), queues.REFERENCE_BY_POINTER, 0)
		assert.Equal(t, "IoDeleteDevice", bc.API)
	})
	t.Run("with a work item holding it", func(t *testing.T) {
		r := newWIRig(t, wiCPUs(1), queues.DefaultPoolConfig())
		r.driver(8, func() {
			_, dev := wiLoad(r, "twice", nil)
			iw := r.sys.IoAllocateWorkItem(dev)
			r.sys.IoQueueWorkItem(iw, func(*queues.DEVICE_OBJECT, any) { r.sys.IoFreeWorkItem(iw) }, queues.DelayedWorkQueue, nil)
			r.sys.IoDeleteDevice(dev)
			r.sys.IoDeleteDevice(dev) // the work item's reference
		})
		wiRequireBugCheck(t, r.run(t), queues.REFERENCE_BY_POINTER, 0)
	})
}
