package fltmgr

import (
	"slices"

	"github.com/wqsim/wqsim/kernel"
)

// Callback types of a registration (fltkernel.h; §5.3–§5.5). Pre- and
// post-operation callbacks receive the callback data and the related
// objects; the pre-op may store a completion context for its post-op
// through completionContext.
type (
	PFLT_PRE_OPERATION_CALLBACK func(data *FLT_CALLBACK_DATA, objs *FLT_RELATED_OBJECTS,
		completionContext *any) FLT_PREOP_CALLBACK_STATUS
	PFLT_POST_OPERATION_CALLBACK func(data *FLT_CALLBACK_DATA, objs *FLT_RELATED_OBJECTS,
		completionContext any, flags FLT_POST_OPERATION_FLAGS) FLT_POSTOP_CALLBACK_STATUS
	PFLT_FILTER_UNLOAD_CALLBACK           func(flags FLT_FILTER_UNLOAD_FLAGS) kernel.NTSTATUS
	PFLT_INSTANCE_SETUP_CALLBACK          func(objs *FLT_RELATED_OBJECTS, flags FLT_INSTANCE_SETUP_FLAGS) kernel.NTSTATUS
	PFLT_INSTANCE_QUERY_TEARDOWN_CALLBACK func(objs *FLT_RELATED_OBJECTS, flags FLT_INSTANCE_QUERY_TEARDOWN_FLAGS) kernel.NTSTATUS
	PFLT_INSTANCE_TEARDOWN_CALLBACK       func(objs *FLT_RELATED_OBJECTS, reason FLT_INSTANCE_TEARDOWN_FLAGS)
)

// FLT_OPERATION_REGISTRATION registers callbacks for one major function.
type FLT_OPERATION_REGISTRATION struct {
	MajorFunction UCHAR
	Flags         uint32 // FLTFL_OPERATION_REGISTRATION_SKIP_*
	PreOperation  PFLT_PRE_OPERATION_CALLBACK
	PostOperation PFLT_POST_OPERATION_CALLBACK
}

// FLT_REGISTRATION is what a minifilter passes to FltRegisterFilter.
// Context registration is not modelled; FLT_INSTANCE.Context stands in
// for an instance context.
type FLT_REGISTRATION struct {
	Flags                            uint32 // FLTFL_REGISTRATION_*
	OperationRegistration            []FLT_OPERATION_REGISTRATION
	FilterUnloadCallback             PFLT_FILTER_UNLOAD_CALLBACK
	InstanceSetupCallback            PFLT_INSTANCE_SETUP_CALLBACK
	InstanceQueryTeardownCallback    PFLT_INSTANCE_QUERY_TEARDOWN_CALLBACK
	InstanceTeardownStartCallback    PFLT_INSTANCE_TEARDOWN_CALLBACK
	InstanceTeardownCompleteCallback PFLT_INSTANCE_TEARDOWN_CALLBACK
}

// FLT_RELATED_OBJECTS is passed to every callback.
type FLT_RELATED_OBJECTS struct {
	Filter     *FLT_FILTER
	Instance   *FLT_INSTANCE
	Volume     *FLT_VOLUME
	FileObject any
}

type filterState uint8

const (
	filterRegistered filterState = iota
	filterUnregistering
	filterUnregistered
)

// FLT_FILTER is a registered minifilter.
type FLT_FILTER struct {
	fm        *FilterManager
	Name      string
	Altitude  uint32
	reg       FLT_REGISTRATION
	instances []*FLT_INSTANCE
	objName   string // "filter Name"
	// Copies of instances and of the manager's volumes to iterate over
	// while they may change (kept from run to run: no allocation).
	snapshot    []*FLT_INSTANCE
	volSnapshot []*FLT_VOLUME
	started     bool
	state       filterState
	unloading   FLT_FILTER_UNLOAD_FLAGS
	rundown     rundown
	// image is the minifilter driver's code (REFERENCE §5.11): the image of
	// the driver whose code registered it (DriverEntry of a driver loaded
	// with queues.System.LoadDriver), or, registered from code of no
	// driver (a scenario's setup or thread), an image of its own that the
	// filter manager unmaps once the filter has unloaded (ownImage).
	image    *kernel.Image
	ownImage bool
}

// FltRegisterFilter registers a minifilter. name and altitude stand in for
// the driver object and the altitude of its INF; instances of higher
// altitude see operations first. Returns STATUS_SUCCESS and the filter, or
// STATUS_INVALID_PARAMETER for a nil registration or an operation
// registered twice. No scheduling point; any context. REFERENCE §5.
// IRQL: PASSIVE_LEVEL as Microsoft documents; the model does not check it.
//
// The filter's code is a driver image (REFERENCE §5.11): the image of the
// driver whose DriverEntry calls FltRegisterFilter, or, from code of no
// driver, an image of the filter's own that is unmapped once an unload
// (FltUnloadFilter, ServiceStop) has unregistered the filter. DPCs and
// threads created in the filter's callbacks and routines belong to it, and
// one that runs after the unmapping is 0xCE.
func (fm *FilterManager) FltRegisterFilter(name string, altitude uint32, reg *FLT_REGISTRATION) (*FLT_FILTER, kernel.NTSTATUS) {
	if reg == nil {
		return nil, kernel.STATUS_INVALID_PARAMETER
	}
	for i, op := range reg.OperationRegistration {
		for _, other := range reg.OperationRegistration[:i] {
			if other.MajorFunction == op.MajorFunction {
				return nil, kernel.STATUS_INVALID_PARAMETER
			}
		}
	}
	f := fm.sp.filters.Take(fm.k.Layer().Sim())
	old := *f // recycled: keep buffers, and names that come out equal
	*f = FLT_FILTER{fm: fm, Name: name, Altitude: altitude, reg: *reg,
		instances: reuse(old.instances), snapshot: reuse(old.snapshot), volSnapshot: reuse(old.volSnapshot),
		objName: fm.sp.concat(old.objName, "filter ", name)}
	f.reg.OperationRegistration = append(reuse(old.reg.OperationRegistration), reg.OperationRegistration...)
	f.rundown.init(fm.k, fm.sp.concat(old.rundown.name, "flt filter ", name, " rundown"))
	if img := fm.k.Layer().CurrentImage(); img != nil {
		f.image = img // the registering driver's own; its unload unmaps it
	} else if old.ownImage && old.image.Name() == name {
		f.image, f.ownImage = old.image, true // recycled: allocate nothing
		fm.k.Layer().RemapImage(f.image)
	} else {
		f.image, f.ownImage = kernel.NewImage(name), true
		f.image.SetStandalone()
		f.image.SetUnloadRoutine("the minifilter's InstanceTeardownStart or InstanceTeardownComplete (or its FilterUnloadCallback, before it returns; REFERENCE §5.11)")
	}
	fm.filters = append(fm.filters, f)
	fm.trace(KindFltObject, WhatFltRegisterFilter, name, int64(altitude), 0)
	return f, kernel.STATUS_SUCCESS
}

// Instances returns the filter's attached instances, in attach order.
func (f *FLT_FILTER) Instances() []*FLT_INSTANCE { return f.instances }

// Unregistered reports whether FltUnregisterFilter has finished.
func (f *FLT_FILTER) Unregistered() bool { return f.state == filterUnregistered }

func (f *FLT_FILTER) opReg(major UCHAR) *FLT_OPERATION_REGISTRATION {
	for i := range f.reg.OperationRegistration {
		if f.reg.OperationRegistration[i].MajorFunction == major {
			return &f.reg.OperationRegistration[i]
		}
	}
	return nil
}

// FltStartFiltering attaches the filter to every mounted volume: for each,
// an instance is created and InstanceSetup called (PASSIVE_LEVEL, in the
// caller's thread); an instance whose setup fails (e.g.
// STATUS_FLT_DO_NOT_ATTACH) is not attached. Returns STATUS_SUCCESS, or
// STATUS_INVALID_PARAMETER if the filter was already started or is
// unregistering. Caller IRQL PASSIVE_LEVEL. REFERENCE §5.5.
func (fm *FilterManager) FltStartFiltering(f *FLT_FILTER) kernel.NTSTATUS {
	fm.k.Layer().CheckIrqlAtMost("FltStartFiltering", kernel.PASSIVE_LEVEL)
	if f.started || f.state != filterRegistered {
		return kernel.STATUS_INVALID_PARAMETER
	}
	f.started = true
	fm.trace(KindFltObject, WhatFltStartFiltering, f.Name, 0, 0)
	f.volSnapshot = append(f.volSnapshot[:0], fm.volumes...)
	for _, v := range f.volSnapshot {
		if !v.dismounted {
			fm.attach(f, v, FLTFL_INSTANCE_SETUP_AUTOMATIC_ATTACHMENT)
		}
	}
	return kernel.STATUS_SUCCESS
}

// FltUnregisterFilter unregisters the filter, blocking the caller until it
// is done (REFERENCE §5.5): new references to the filter fail with
// STATUS_FLT_DELETING_OBJECT; every instance is torn down (reason
// FILTER_UNLOAD, plus MANDATORY_FILTER_UNLOAD when the unload was
// mandatory), each waiting for its outstanding operations and
// references; then it waits for the filter's rundown references (generic
// work items not yet returned, FltObjectReference not dereferenced). If
// any never goes away the caller waits forever and the kernel reports the
// hang when the run quiesces. Caller IRQL PASSIVE_LEVEL, normally from
// FilterUnloadCallback.
func (fm *FilterManager) FltUnregisterFilter(f *FLT_FILTER) {
	fm.k.Layer().CheckIrqlAtMost("FltUnregisterFilter", kernel.PASSIVE_LEVEL)
	if f.state != filterRegistered {
		fm.violation("FltUnregisterFilter", f, "a filter is unregistered once (§5.5)", "filter %s unregistered twice", f.Name)
		return
	}
	f.state = filterUnregistering
	f.rundown.begin()
	fm.trace(KindFltObject, WhatFltUnregisterFilter, f.Name, 0, 0)
	reason := FLTFL_INSTANCE_TEARDOWN_FILTER_UNLOAD
	if f.unloading&FLTFL_FILTER_UNLOAD_MANDATORY != 0 {
		reason |= FLTFL_INSTANCE_TEARDOWN_MANDATORY_FILTER_UNLOAD
	}
	f.snapshot = append(f.snapshot[:0], f.instances...)
	for _, inst := range f.snapshot {
		fm.teardown(inst, reason)
	}
	f.rundown.wait()
	fm.deleteVolumeContexts(f, nil) // REFERENCE §5.8: the filter's contexts go with it
	f.state = filterUnregistered
	fm.filters = slices.DeleteFunc(fm.filters, func(x *FLT_FILTER) bool { return x == f })
	fm.trace(KindFltObject, WhatUnregistered, f.Name, 0, 0)
}

// FltUnloadFilter is a non-mandatory unload request (fltmc unload): it
// calls the filter's FilterUnloadCallback, which normally calls
// FltUnregisterFilter, and returns its status; the filter may refuse with
// an error such as STATUS_FLT_DO_NOT_DETACH. A filter without an unload
// callback cannot be unloaded: STATUS_FLT_DO_NOT_DETACH (the status is the
// model's choice; the docs only say it cannot). Caller IRQL PASSIVE_LEVEL.
// REFERENCE §5.5 item 7.
func (fm *FilterManager) FltUnloadFilter(f *FLT_FILTER) kernel.NTSTATUS {
	return fm.unload(f, 0)
}

// ServiceStop is a mandatory unload (the filter's service is stopped): the
// unload callback's refusal is ignored. Only a filter registered with
// FLTFL_REGISTRATION_DO_NOT_SUPPORT_SERVICE_STOP, or one without an unload
// callback, is not unloaded (STATUS_FLT_DO_NOT_DETACH). Caller IRQL
// PASSIVE_LEVEL. REFERENCE §5.5 item 7.
func (fm *FilterManager) ServiceStop(f *FLT_FILTER) kernel.NTSTATUS {
	return fm.unload(f, FLTFL_FILTER_UNLOAD_MANDATORY)
}

func (fm *FilterManager) unload(f *FLT_FILTER, flags FLT_FILTER_UNLOAD_FLAGS) kernel.NTSTATUS {
	fm.k.Layer().CheckIrqlAtMost("FltUnloadFilter", kernel.PASSIVE_LEVEL)
	cb := f.reg.FilterUnloadCallback
	mandatory := flags&FLTFL_FILTER_UNLOAD_MANDATORY != 0
	if cb == nil || f.state != filterRegistered ||
		(mandatory && f.reg.Flags&FLTFL_REGISTRATION_DO_NOT_SUPPORT_SERVICE_STOP != 0) {
		return kernel.STATUS_FLT_DO_NOT_DETACH
	}
	f.unloading = flags
	fm.trace(KindFltCallback, WhatFilterUnload, f.Name, int64(flags), 0)
	prev := fm.enter(f)
	st := cb(flags)
	fm.leave(prev)
	fm.trace(KindFltCallback, WhatFilterUnloadReturned, f.Name, int64(st), 0)
	if !mandatory && !kernel.NT_SUCCESS(st) {
		f.unloading = 0
		return st
	}
	if f.ownImage && f.state == filterUnregistered {
		// The unload is done: the I/O manager unmaps the driver's image
		// (REFERENCE §5.11). Its DPCs and threads must be gone by now.
		fm.k.Layer().UnloadImage(f.image)
	}
	return kernel.STATUS_SUCCESS
}

// FltObject is a filter-manager object that carries rundown protection:
// *FLT_FILTER or *FLT_INSTANCE.
type FltObject interface {
	rundownRef() *rundown
	objectName() string
}

func (f *FLT_FILTER) rundownRef() *rundown   { return &f.rundown }
func (f *FLT_FILTER) objectName() string     { return f.objName }
func (i *FLT_INSTANCE) rundownRef() *rundown { return &i.rundown }
func (i *FLT_INSTANCE) objectName() string   { return i.objName }

// FltObjectReference adds a rundown reference to a filter or instance, so
// that unregistration (or instance deletion) waits for it. Returns
// STATUS_SUCCESS, or STATUS_FLT_DELETING_OBJECT once the object is being
// torn down. Caller IRQL ≤ DISPATCH_LEVEL. REFERENCE §5.5 item 6.
func (fm *FilterManager) FltObjectReference(obj FltObject) kernel.NTSTATUS {
	fm.k.Layer().CheckIrqlAtMost("FltObjectReference", kernel.DISPATCH_LEVEL)
	fm.k.Layer().Yield()
	if !obj.rundownRef().acquire() {
		fm.mark(MarkDeletingObject, obj.objectName())
		return kernel.STATUS_FLT_DELETING_OBJECT
	}
	fm.trace(KindFltObject, WhatFltObjectReference, obj.objectName(), int64(obj.rundownRef().refs), 0)
	return kernel.STATUS_SUCCESS
}

// FltObjectDereference drops a reference taken by FltObjectReference (or
// FltGetFilterFromInstance); the last one lets a waiting unregistration
// proceed. Caller IRQL ≤ DISPATCH_LEVEL.
func (fm *FilterManager) FltObjectDereference(obj FltObject) {
	fm.k.Layer().CheckIrqlAtMost("FltObjectDereference", kernel.DISPATCH_LEVEL)
	r := obj.rundownRef()
	if r.refs == 0 {
		fm.violation("FltObjectDereference", nil, "dereference only what was referenced (§5.5)", "%s dereferenced more often than referenced", obj.objectName())
		return
	}
	r.release()
	fm.trace(KindFltObject, WhatFltObjectDereference, obj.objectName(), int64(r.refs), 0)
}

// FltGetFilterFromInstance returns the instance's filter with a rundown
// reference the caller must drop with FltObjectDereference (forgetting it
// hangs unregistration, §5.5 item 6). STATUS_FLT_DELETING_OBJECT if the
// filter is unregistering. Caller IRQL ≤ APC_LEVEL.
func (fm *FilterManager) FltGetFilterFromInstance(inst *FLT_INSTANCE) (*FLT_FILTER, kernel.NTSTATUS) {
	fm.k.Layer().CheckIrqlAtMost("FltGetFilterFromInstance", kernel.APC_LEVEL)
	if st := fm.FltObjectReference(inst.filter); st != kernel.STATUS_SUCCESS {
		return nil, st
	}
	return inst.filter, kernel.STATUS_SUCCESS
}

// rundown is rundown protection (ExAcquireRundownProtection and
// ExWaitForRundownProtectionRelease): references succeed until the
// rundown begins; the waiter sleeps until the last one is released.
type rundown struct {
	k       *kernel.Kernel
	name    string
	refs    int
	active  bool // rundown begun: new references fail
	waiting bool
	done    *kernel.KEVENT
}

func (r *rundown) init(k *kernel.Kernel, name string) { r.k, r.name = k, name }

func (r *rundown) acquire() bool {
	if r.active {
		return false
	}
	r.refs++
	return true
}

func (r *rundown) release() {
	r.refs--
	if r.refs == 0 && r.waiting {
		r.k.KeSetEvent(r.done, kernel.IO_NO_INCREMENT, false)
	}
}

func (r *rundown) begin() { r.active = true }

// wait blocks the calling thread until no reference is left. Call it after
// begin, so that no new reference can be taken meanwhile.
func (r *rundown) wait() {
	if r.refs == 0 {
		return
	}
	if r.done == nil {
		r.done = r.k.KeInitializeEvent(r.name, kernel.NotificationEvent, false)
	}
	r.waiting = true
	r.k.KeWaitForSingleObject(r.done, kernel.Infinite)
	r.waiting = false
}

// enter makes f's image the one whose code runs, for a call into the
// filter's code (a callback or a routine it passed to the filter
// manager), so that the DPCs and threads that code creates belong to the
// filter's driver (REFERENCE §5.11); it returns the previous image for
// leave. Not a scheduling point; allocates nothing.
func (fm *FilterManager) enter(f *FLT_FILTER) *kernel.Image {
	if f == nil {
		return fm.k.Layer().CurrentImage()
	}
	return fm.k.Layer().SwitchImage(f.image)
}

// leave restores the image enter returned.
func (fm *FilterManager) leave(prev *kernel.Image) { fm.k.Layer().SwitchImage(prev) }
