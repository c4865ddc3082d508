package fltmgr

import (
	"slices"

	"github.com/wqsim/wqsim/kernel"
)

type instanceState uint8

const (
	instanceSettingUp instanceState = iota
	instanceAttached
	instanceTearingDown
	instanceDetached
)

// FLT_INSTANCE is a filter attached to one volume.
type FLT_INSTANCE struct {
	fm      *FilterManager
	filter  *FLT_FILTER
	volume  *FLT_VOLUME
	name    string
	objName string // "instance filter@volume"
	// cbdqName names a callback data queue of the instance.
	cbdqName string
	state    instanceState
	// Context is free for the minifilter (a plain pointer the scenario
	// owns); a reference-counted instance context is FltSetInstanceContext's.
	Context any

	active  []*frame // operations at this instance: in a callback, pended, below, post-pended
	drained []*frame // drain's snapshot of active, a kept buffer
	quiet   *kernel.KEVENT
	waiting bool // teardown waits for active to empty
	gone    *kernel.KEVENT
	rundown rundown
	objs    FLT_RELATED_OBJECTS // what objects returns, rewritten at every call
}

// Name returns "filter@volume".
func (i *FLT_INSTANCE) Name() string { return i.name }

// Filter returns the instance's filter.
func (i *FLT_INSTANCE) Filter() *FLT_FILTER { return i.filter }

// Volume returns the instance's volume.
func (i *FLT_INSTANCE) Volume() *FLT_VOLUME { return i.volume }

// TearingDown reports whether teardown has started (or finished).
func (i *FLT_INSTANCE) TearingDown() bool { return i.state >= instanceTearingDown }

// Detached reports whether teardown has finished.
func (i *FLT_INSTANCE) Detached() bool { return i.state == instanceDetached }

// Outstanding returns how many operations the instance still has: in one
// of its callbacks, pended by it, waiting below for its post-op, or pended
// in its post-op.
func (i *FLT_INSTANCE) Outstanding() int { return len(i.active) }

func (i *FLT_INSTANCE) objects() *FLT_RELATED_OBJECTS {
	// One per instance, rewritten each time: the callbacks get it read-only
	// (PCFLT_RELATED_OBJECTS) and a call per operation need not allocate.
	i.objs = FLT_RELATED_OBJECTS{Filter: i.filter, Instance: i, Volume: i.volume}
	return &i.objs
}

// attach creates an instance of f on v and runs its InstanceSetup; the
// instance sees I/O only once setup succeeded (§5.5).
func (fm *FilterManager) attach(f *FLT_FILTER, v *FLT_VOLUME, flags FLT_INSTANCE_SETUP_FLAGS) kernel.NTSTATUS {
	inst := fm.sp.instances.Take(fm.k.Layer().Sim())
	old := *inst // recycled: keep buffers, and names that come out equal
	name := fm.sp.concat(old.name, f.Name, "@", v.Name)
	*inst = FLT_INSTANCE{fm: fm, filter: f, volume: v, name: name, objName: fm.sp.concat(old.objName, "instance ", name),
		cbdqName: fm.sp.concat(old.cbdqName, "cbdq ", name), active: reuse(old.active), drained: reuse(old.drained)}
	inst.rundown.init(fm.k, fm.sp.concat(old.rundown.name, "flt instance ", name, " rundown"))
	st := kernel.STATUS_SUCCESS
	if cb := f.reg.InstanceSetupCallback; cb != nil {
		fm.trace(KindFltCallback, WhatInstanceSetup, inst.name, int64(flags), 0)
		prev := fm.enter(f)
		st = cb(inst.objects(), flags)
		fm.leave(prev)
		fm.trace(KindFltCallback, WhatInstanceSetupReturned, inst.name, int64(st), 0)
	}
	if !kernel.NT_SUCCESS(st) {
		inst.state = instanceDetached
		return st
	}
	inst.state = instanceAttached
	v.insertInstance(inst)
	f.instances = append(f.instances, inst)
	fm.trace(KindFltObject, WhatAttach, inst.name, int64(f.Altitude), 0)
	return kernel.STATUS_SUCCESS
}

// FltAttachVolume attaches f to v (a manual attachment: InstanceSetup with
// MANUAL_ATTACHMENT) and returns the instance, or the setup's failure
// status; STATUS_FLT_DELETING_OBJECT if the filter is unregistering,
// STATUS_FLT_FILTER_NOT_READY if it has not started filtering. Caller IRQL
// PASSIVE_LEVEL. REFERENCE §5.5.
func (fm *FilterManager) FltAttachVolume(f *FLT_FILTER, v *FLT_VOLUME) (*FLT_INSTANCE, kernel.NTSTATUS) {
	fm.k.Layer().CheckIrqlAtMost("FltAttachVolume", kernel.PASSIVE_LEVEL)
	switch {
	case f.state != filterRegistered:
		return nil, kernel.STATUS_FLT_DELETING_OBJECT
	case !f.started:
		return nil, kernel.STATUS_FLT_FILTER_NOT_READY
	}
	if st := fm.attach(f, v, FLTFL_INSTANCE_SETUP_MANUAL_ATTACHMENT); st != kernel.STATUS_SUCCESS {
		return nil, st
	}
	return f.instances[len(f.instances)-1], kernel.STATUS_SUCCESS
}

// FltDetachVolume detaches f's instance from v (a manual detach, reason
// MANUAL): InstanceQueryTeardown may veto it (its failure status is
// returned, typically STATUS_FLT_DO_NOT_DETACH); a filter without that
// callback cannot be detached manually (STATUS_FLT_DO_NOT_DETACH — the
// model's status for the documented refusal). Otherwise the instance is
// torn down and the call blocks until teardown completes. Returns
// STATUS_INVALID_PARAMETER if f has no instance on v. Caller IRQL
// PASSIVE_LEVEL. REFERENCE §5.5.
func (fm *FilterManager) FltDetachVolume(f *FLT_FILTER, v *FLT_VOLUME) kernel.NTSTATUS {
	fm.k.Layer().CheckIrqlAtMost("FltDetachVolume", kernel.PASSIVE_LEVEL)
	i := slices.IndexFunc(f.instances, func(x *FLT_INSTANCE) bool { return x.volume == v })
	if i < 0 {
		return kernel.STATUS_INVALID_PARAMETER
	}
	inst := f.instances[i]
	qt := f.reg.InstanceQueryTeardownCallback
	if qt == nil {
		return kernel.STATUS_FLT_DO_NOT_DETACH
	}
	fm.trace(KindFltCallback, WhatInstanceQueryTeardown, inst.name, 0, 0)
	prev := fm.enter(f)
	st := qt(inst.objects(), 0)
	fm.leave(prev)
	fm.trace(KindFltCallback, WhatInstanceQueryTeardownReturned, inst.name, int64(st), 0)
	if !kernel.NT_SUCCESS(st) {
		return st
	}
	fm.teardown(inst, FLTFL_INSTANCE_TEARDOWN_MANUAL)
	return kernel.STATUS_SUCCESS
}

// DismountVolume tears down every instance on v (reason VOLUME_DISMOUNT;
// no query, it cannot be vetoed) and marks v dismounted. Caller IRQL
// PASSIVE_LEVEL; blocks until every teardown completes. REFERENCE §5.5
// item 1.
func (fm *FilterManager) DismountVolume(v *FLT_VOLUME) {
	fm.k.Layer().CheckIrqlAtMost("DismountVolume", kernel.PASSIVE_LEVEL)
	v.dismounted = true
	for _, inst := range slices.Clone(v.instances) {
		fm.teardown(inst, FLTFL_INSTANCE_TEARDOWN_VOLUME_DISMOUNT)
	}
	fm.deleteVolumeContexts(nil, v) // REFERENCE §5.8: contexts go with their volume
}

// teardown runs §5.5 items 2–5 for inst in the calling thread:
// TeardownStart; drain the post-ops of operations waiting below; wait
// until no operation is outstanding (pended pre-ops, post-pended ops,
// callbacks in progress) — forever if the filter never completes its
// pended operations; TeardownComplete; wait for the instance's rundown
// references; detach. A second teardown of the same instance waits for
// the first.
func (fm *FilterManager) teardown(inst *FLT_INSTANCE, reason FLT_INSTANCE_TEARDOWN_FLAGS) {
	if inst.state != instanceAttached {
		inst.waitGone()
		return
	}
	inst.state = instanceTearingDown
	inst.rundown.begin()
	objs := inst.objects()
	fm.trace(KindFltObject, WhatTeardownStart, inst.name, int64(reason), int64(len(inst.active)))
	if cb := inst.filter.reg.InstanceTeardownStartCallback; cb != nil {
		prev := fm.enter(inst.filter)
		cb(objs, reason)
		fm.leave(prev)
	}
	fm.drain(inst)
	inst.waitQuiet()
	fm.trace(KindFltObject, WhatTeardownComplete, inst.name, int64(reason), 0)
	if cb := inst.filter.reg.InstanceTeardownCompleteCallback; cb != nil {
		prev := fm.enter(inst.filter)
		cb(objs, reason)
		fm.leave(prev)
	}
	inst.rundown.wait()
	fm.deleteInstanceContexts(inst) // REFERENCE §5.5 item 5, §5.8
	inst.state = instanceDetached
	inst.volume.removeInstance(inst)
	f := inst.filter
	f.instances = slices.DeleteFunc(f.instances, func(x *FLT_INSTANCE) bool { return x == inst })
	fm.trace(KindFltObject, WhatDetached, inst.name, 0, 0)
	if inst.gone != nil {
		fm.k.KeSetEvent(inst.gone, kernel.IO_NO_INCREMENT, false)
	}
}

func (i *FLT_INSTANCE) waitGone() {
	if i.state == instanceDetached {
		return
	}
	if i.gone == nil {
		i.gone = i.fm.k.KeInitializeEvent("flt instance "+i.name+" detached", kernel.NotificationEvent, false)
	}
	i.fm.k.KeWaitForSingleObject(i.gone, kernel.Infinite)
}

// waitQuiet blocks until the instance has no outstanding operation. The
// event is named after the instance so a hang report says what teardown
// waits for.
func (i *FLT_INSTANCE) waitQuiet() {
	if len(i.active) == 0 {
		return
	}
	i.fm.mark(MarkTeardownWaited, i.name)
	if i.quiet == nil {
		i.quiet = i.fm.k.KeInitializeEvent(i.fm.sp.concat("", "flt instance ", i.name, " teardown: pended operations"), kernel.SynchronizationEvent, false)
	}
	i.waiting = true
	for len(i.active) > 0 {
		i.fm.k.KeWaitForSingleObject(i.quiet, kernel.Infinite)
	}
	i.waiting = false
}

// track records that op is now at the instance (its pre-op is called).
func (i *FLT_INSTANCE) track(f *frame) { i.active = append(i.active, f) }

// untrack records that op has left the instance, waking a waiting
// teardown when it was the last.
func (i *FLT_INSTANCE) untrack(f *frame) {
	n := len(i.active)
	i.active = slices.DeleteFunc(i.active, func(x *frame) bool { return x == f })
	if len(i.active) < n && len(i.active) == 0 && i.waiting {
		i.fm.k.KeSetEvent(i.quiet, kernel.IO_NO_INCREMENT, false)
	}
}

// drain calls, in the teardown thread, the post-op of every operation of
// inst that waits below for it, with FLTFL_POST_OPERATION_DRAINING and a
// copy of the callback data (§5.4); the real completion will skip it.
func (fm *FilterManager) drain(inst *FLT_INSTANCE) {
	inst.drained = append(inst.drained[:0], inst.active...) // untrack changes active
	for _, f := range inst.drained {
		if f.state != frameBelow {
			continue
		}
		f.state = frameDrained
		cp := *f.op.data
		iopb := *cp.Iopb
		cp.Iopb = &iopb
		cp.Flags |= FLTFL_CALLBACK_DATA_DRAINING_IO
		fm.mark(MarkPostDrained, f.op.data.name)
		st := fm.callPostCallback(f, &cp, FLTFL_POST_OPERATION_DRAINING)
		if st != FLT_POSTOP_FINISHED_PROCESSING {
			fm.violation("post-operation callback", inst.filter, "a draining post-op must return FLT_POSTOP_FINISHED_PROCESSING (§5.4)",
				"%s returned %v while draining %s", inst.name, st, f.op.data.name)
		}
		inst.untrack(f)
	}
}
