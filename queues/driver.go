package queues

import (
	"fmt"

	"github.com/wqsim/wqsim/kernel"
)

// REFERENCE_BY_POINTER is bug check 0x18: an object's reference count went
// below zero (an ObDereferenceObject without a matching reference).
const REFERENCE_BY_POINTER = kernel.REFERENCE_BY_POINTER

// objectHeader is the object-manager part of a driver or device object: a
// name and a reference (pointer) count.
type objectHeader struct {
	name string
	refs int
}

// IoObject is an object an I/O work item can be tied to: a *DEVICE_OBJECT
// or a *DRIVER_OBJECT (DDI:IoInitializeWorkItem, DDI:IoQueueWorkItemEx). A
// reference on either keeps the driver's image loaded. Only this package's
// types implement it.
type IoObject interface {
	header() *objectHeader
	driverOf() *DRIVER_OBJECT
}

// DRIVER_INITIALIZE is a driver's DriverEntry: it sets DriverUnload,
// creates its devices, and returns STATUS_SUCCESS or a failure status.
type DRIVER_INITIALIZE func(d *DRIVER_OBJECT) kernel.NTSTATUS

// DRIVER_UNLOAD is a driver's unload routine: it must leave nothing of the
// driver pending (delete its devices, cancel or wait for its work) before
// it returns.
type DRIVER_UNLOAD func(d *DRIVER_OBJECT)

type driverState uint8

const (
	driverLoading driverState = iota
	driverLoaded
	driverUnloading // DriverUnload called; the image stays while references remain
	driverImageGone // the image is unmapped: its code must not run
)

// DRIVER_OBJECT is a loaded driver (REFERENCE §1.2, §6.8). Its reference
// count holds one reference for being loaded, one for each device object
// that still exists, and any taken with ObReferenceObject (an I/O work item
// queued on the driver object, say). When the count reaches zero after
// DriverUnload, the image is unloaded; a worker that then runs or returns
// into one of its Ex routines bug-checks with 0xCE, and so does a DPC of
// the driver that then runs or a thread of the driver that then runs again
// (REFERENCE §6.8). A thread or DPC belongs to the driver when DriverEntry,
// DriverUnload, a dispatch routine or a work routine of the driver created
// it (or a thread or DPC of the driver did), or when it was created with
// the driver's PsCreateSystemThread or KeInitializeDpc.
type DRIVER_OBJECT struct {
	hdr        objectHeader
	sys        *System
	DriverName string
	// DriverUnload is set by DriverEntry; a driver without one cannot be
	// unloaded.
	DriverUnload DRIVER_UNLOAD
	// DriverExtension is free for the driver's own state.
	DriverExtension any
	// MajorFunction holds the driver's dispatch routines, indexed by the
	// IRP's major function; IoCallDriver calls them (REFERENCE §5.6).
	MajorFunction [IRP_MJ_MAXIMUM_FUNCTION + 1]DRIVER_DISPATCH
	// DriverStartIo is the StartIo routine IoStartPacket and
	// IoStartNextPacket call (REFERENCE §1.12); nil for a driver that
	// queues its IRPs itself.
	DriverStartIo DRIVER_STARTIO
	devices       []*DEVICE_OBJECT
	state         driverState
	image         *kernel.Image // its code: threads and DPCs it creates are tied to it
}

func (d *DRIVER_OBJECT) header() *objectHeader    { return &d.hdr }
func (d *DRIVER_OBJECT) driverOf() *DRIVER_OBJECT { return d }

// References returns the object's reference count.
func (d *DRIVER_OBJECT) References() int { return d.hdr.refs }

// Devices returns the driver's device objects that still exist, in
// creation order.
func (d *DRIVER_OBJECT) Devices() []*DEVICE_OBJECT { return d.devices }

// ImageLoaded reports whether the driver's code is still mapped.
func (d *DRIVER_OBJECT) ImageLoaded() bool { return d.state != driverImageGone }

func (d *DRIVER_OBJECT) imageUnloaded() bool { return d.state == driverImageGone }

// Image returns the kernel's view of the driver's code (kernel.Image).
func (d *DRIVER_OBJECT) Image() *kernel.Image { return d.image }

// PsCreateSystemThread is kernel.PsCreateSystemThread for a thread whose
// start routine is in d's image, for setup code that stands for the
// driver (inside the driver's own routines the plain call already ties the
// thread to it): if the image is unloaded before body has returned, the
// thread's next instruction is in unmapped code, 0xCE (REFERENCE §6.8).
// DriverUnload must make the thread return and wait on th.Object().
// IRQL: PASSIVE_LEVEL, as kernel.PsCreateSystemThread.
func (d *DRIVER_OBJECT) PsCreateSystemThread(name string, prio int, body func()) *kernel.Thread {
	l := d.sys.k.Layer()
	prev := l.SwitchImage(d.image)
	t := d.sys.k.PsCreateSystemThread(name, prio, body)
	l.SwitchImage(prev)
	return t
}

// KeInitializeDpc is kernel.KeInitializeDpc for a routine in d's image
// (see PsCreateSystemThread): the DPC running after the image was
// unloaded, say from a timer DriverUnload did not cancel, is 0xCE
// (REFERENCE §6.8).
// IRQL: any, as kernel.KeInitializeDpc.
func (d *DRIVER_OBJECT) KeInitializeDpc(name string, routine func(dpc *kernel.KDPC, ctx, arg1, arg2 any), ctx any) *kernel.KDPC {
	l := d.sys.k.Layer()
	prev := l.SwitchImage(d.image)
	dpc := d.sys.k.KeInitializeDpc(name, routine, ctx)
	l.SwitchImage(prev)
	return dpc
}

// DEVICE_OBJECT is a device of a driver. It holds a reference on its driver
// while it exists; it exists until IoDeleteDevice has been called and its
// last reference is dropped (IoQueueWorkItem holds one until the routine
// has returned, REFERENCE §1.2).
type DEVICE_OBJECT struct {
	hdr          objectHeader
	DriverObject *DRIVER_OBJECT
	// DeviceExtension is free for the driver's per-device state.
	DeviceExtension any
	// StackSize is how many stack locations an IRP sent to this device
	// needs: 1, plus the stack below once attached (REFERENCE §5.6).
	StackSize int
	// AttachedDevice is the device attached on top of this one, if any.
	AttachedDevice *DEVICE_OBJECT
	// CurrentIrp is the IRP StartIo works on, set and cleared by
	// IoStartPacket and IoStartNextPacket (REFERENCE §1.12).
	CurrentIrp *kernel.IRP
	// DeviceQueue holds the IRPs IoStartPacket queued while the device
	// was busy.
	DeviceQueue kernel.KDEVICE_QUEUE
	deleted     bool
	timer       *ioTimer // IoInitializeTimer's, nil until then
}

func (d *DEVICE_OBJECT) header() *objectHeader    { return &d.hdr }
func (d *DEVICE_OBJECT) driverOf() *DRIVER_OBJECT { return d.DriverObject }

// Name returns the device's name.
func (d *DEVICE_OBJECT) Name() string { return d.hdr.name }

// References returns the object's reference count.
func (d *DEVICE_OBJECT) References() int { return d.hdr.refs }

// Deleted reports whether IoDeleteDevice was called.
func (d *DEVICE_OBJECT) Deleted() bool { return d.deleted }

// LoadDriver loads a driver named name and calls its DriverEntry in the
// calling thread, as the I/O manager does (IopLoadDriver; REFERENCE §6.8
// for why the image's lifetime matters). Caller IRQL =
// PASSIVE_LEVEL; a scheduling point. If DriverEntry fails, the load
// reference is dropped at once (DriverUnload is not called) and the image
// unloads when nothing else references it. Returns the driver object and
// DriverEntry's status.
func (s *System) LoadDriver(name string, entry DRIVER_INITIALIZE) (*DRIVER_OBJECT, kernel.NTSTATUS) {
	k := s.k
	k.Layer().Enter("LoadDriver")
	k.Layer().CheckIrqlAtMost("LoadDriver", kernel.PASSIVE_LEVEL)
	d := &DRIVER_OBJECT{hdr: objectHeader{name: "driver " + name, refs: 1}, sys: s, DriverName: name, image: kernel.NewImage(name)}
	s.drivers = append(s.drivers, d)
	k.Layer().TraceKind(KindDriver, WhatDriverLoad, d.hdr.name, 0, 0)
	prev := k.Layer().SwitchImage(d.image)
	st := entry(d)
	k.Layer().SwitchImage(prev)
	k.Layer().TraceKind(KindDriver, WhatDriverEntry, d.hdr.name, int64(st), 0)
	if !kernel.NT_SUCCESS(st) {
		d.state = driverUnloading
		s.deref(d, "LoadDriver")
		return d, st
	}
	d.state = driverLoaded
	return d, st
}

// Drivers returns every driver loaded so far, in load order.
func (s *System) Drivers() []*DRIVER_OBJECT { return s.drivers }

// UnloadDriver unloads d as the I/O manager does (IopUnloadDriver,
// REFERENCE §1.2, §6.8): it calls
// DriverUnload in the calling thread, then drops the load reference. The
// image is unloaded when the last reference goes: at once if DriverUnload
// deleted every device and nothing else holds one, otherwise when the last
// holder lets go (an I/O work item's wrapper, after its routine returned).
// Caller IRQL = PASSIVE_LEVEL; a scheduling point. Returns
// STATUS_INVALID_DEVICE_REQUEST for a driver without an unload routine or
// one already unloading.
func (s *System) UnloadDriver(d *DRIVER_OBJECT) kernel.NTSTATUS {
	k := s.k
	k.Layer().Enter("UnloadDriver")
	k.Layer().CheckIrqlAtMost("UnloadDriver", kernel.PASSIVE_LEVEL)
	if d.state != driverLoaded || d.DriverUnload == nil {
		return kernel.STATUS_INVALID_DEVICE_REQUEST
	}
	d.state = driverUnloading
	k.Layer().TraceKind(KindDriver, WhatDriverUnload, d.hdr.name, int64(d.hdr.refs), 0)
	prev := k.Layer().SwitchImage(d.image)
	d.DriverUnload(d)
	k.Layer().SwitchImage(prev)
	s.deref(d, "UnloadDriver")
	return kernel.STATUS_SUCCESS
}

// IoCreateDevice creates a device object of d named name; it references d
// until it is gone (REFERENCE §1.2). Caller IRQL = PASSIVE_LEVEL; a
// scheduling point.
func (s *System) IoCreateDevice(d *DRIVER_OBJECT, name string) (*DEVICE_OBJECT, kernel.NTSTATUS) {
	k := s.k
	k.Layer().Enter("IoCreateDevice")
	k.Layer().CheckIrqlAtMost("IoCreateDevice", kernel.PASSIVE_LEVEL)
	dev := &DEVICE_OBJECT{hdr: objectHeader{name: "device " + name, refs: 1}, DriverObject: d, StackSize: 1}
	dev.DeviceQueue.Name = "device queue " + name
	d.devices = append(d.devices, dev)
	d.hdr.refs++
	k.Layer().TraceKind(KindDriver, WhatDeviceCreate, dev.hdr.name, int64(dev.hdr.refs), int64(d.hdr.refs))
	return dev, kernel.STATUS_SUCCESS
}

// IoDeleteDevice marks dev deleted and drops its creation reference; the
// object goes (and releases its driver) when its last reference does
// (REFERENCE §1.2). Caller IRQL = PASSIVE_LEVEL; a scheduling point.
// Deleting twice drops a reference the caller does not own, as the second
// ObDereferenceObject of Windows' IoDeleteDevice does: REFERENCE_BY_POINTER
// 0x18 at once if none is left, else when the real last holder lets go.
func (s *System) IoDeleteDevice(dev *DEVICE_OBJECT) {
	k := s.k
	k.Layer().Enter("IoDeleteDevice")
	k.Layer().CheckIrqlAtMost("IoDeleteDevice", kernel.PASSIVE_LEVEL)
	if dev.deleted {
		k.Layer().TraceKind(KindDriver, WhatDeviceDelete, dev.hdr.name, int64(dev.hdr.refs), 1)
		s.deref(dev, "IoDeleteDevice")
		return
	}
	dev.deleted = true
	if t := dev.timer; t != nil { // IoDeleteDevice takes the device off the I/O timer list (REFERENCE §1.11)
		t.enabled = false
		k.KeCancelTimer(t.kt)
	}
	k.Layer().TraceKind(KindDriver, WhatDeviceDelete, dev.hdr.name, int64(dev.hdr.refs), 0)
	s.deref(dev, "IoDeleteDevice")
}

// ObReferenceObject adds a reference to obj (what IoQueueWorkItem does to
// keep the image loaded, REFERENCE §1.2). Caller IRQL ≤ DISPATCH_LEVEL; a
// scheduling point.
func (s *System) ObReferenceObject(obj IoObject) {
	s.k.Layer().Enter("ObReferenceObject")
	s.k.Layer().CheckIrqlAtMost("ObReferenceObject", kernel.DISPATCH_LEVEL)
	s.ref(obj)
}

// ObDereferenceObject drops a reference to obj; the last one deletes it (a
// deleted device goes and releases its driver; a driver's image unloads).
// Dropping a reference nobody holds is REFERENCE_BY_POINTER 0x18. Caller
// IRQL ≤ DISPATCH_LEVEL; a scheduling point.
//
// Called from the driver's own code (a DPC routine, a driver thread), a
// dereference that lets the driver's image go returns into the unloaded
// image: 0xCE. A reference the driver's code holds cannot keep that code
// loaded; unload must wait for the DPCs and threads themselves (REFERENCE
// §6.8). Windows defers the deletion to a worker when the count reaches zero
// at raised IRQL, which narrows the window to the routine's return without
// closing it; the model unloads at once.
func (s *System) ObDereferenceObject(obj IoObject) {
	l := s.k.Layer()
	l.Enter("ObDereferenceObject")
	l.CheckIrqlAtMost("ObDereferenceObject", kernel.DISPATCH_LEVEL)
	s.deref(obj, "ObDereferenceObject")
	if img := l.CurrentImage(); img != nil && !img.Loaded() {
		id := nameID(img.Name())
		l.BugCheckFrom("ObDereferenceObject", kernel.DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS, id, 0, id, 0,
			fmt.Sprintf("ObDereferenceObject of %s, called from driver %s's own code, dropped the last reference and unloaded the image: the call returns into unloaded code. "+
				"A reference held by the driver's own code cannot keep that code loaded: DriverUnload must cancel its timers and KeFlushQueuedDpcs, and wait on its threads' objects (REFERENCE §6.8)",
				obj.header().name, img.Name()))
	}
}

func (s *System) ref(obj IoObject) {
	h := obj.header()
	h.refs++
	s.k.Layer().TraceKind(KindObject, WhatReference, h.name, int64(h.refs), 0)
}

// deref drops one reference without a scheduling point (the caller passed
// one) and runs the delete procedure at zero.
func (s *System) deref(obj IoObject, api string) {
	h := obj.header()
	if h.refs <= 0 {
		s.k.Layer().BugCheckFrom(api, REFERENCE_BY_POINTER, 0, 0, uint64(h.refs), 0,
			fmt.Sprintf("%s dereferenced with no references left", h.name))
	}
	h.refs--
	s.k.Layer().TraceKind(KindObject, WhatDereference, h.name, int64(h.refs), 0)
	if h.refs > 0 {
		return
	}
	switch o := obj.(type) {
	case *DEVICE_OBJECT:
		d := o.DriverObject
		for i, x := range d.devices {
			if x == o {
				d.devices = append(d.devices[:i], d.devices[i+1:]...)
				break
			}
		}
		s.k.Layer().TraceKind(KindDriver, WhatDeviceGone, h.name, 0, 0)
		s.deref(d, api)
	case *DRIVER_OBJECT:
		o.state = driverImageGone
		s.k.Layer().UnloadImage(o.image)
		s.k.Layer().TraceKind(KindDriver, WhatImageUnloaded, h.name, 0, 0)
	}
}
