package fltmgr

import (
	"fmt"
	"slices"

	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues"
)

// FLT_CONTEXT_TYPE says what object a context attaches to (fltkernel.h).
type FLT_CONTEXT_TYPE uint16

// Context types (fltkernel.h); the model attaches volume, instance, file
// and stream contexts.
const (
	FLT_VOLUME_CONTEXT   FLT_CONTEXT_TYPE = 0x0001
	FLT_INSTANCE_CONTEXT FLT_CONTEXT_TYPE = 0x0002
	FLT_FILE_CONTEXT     FLT_CONTEXT_TYPE = 0x0004
	FLT_STREAM_CONTEXT   FLT_CONTEXT_TYPE = 0x0008
)

// FLT_SET_CONTEXT_OPERATION chooses what Flt*SetContext does when a
// context is already attached.
type FLT_SET_CONTEXT_OPERATION uint8

// Set-context operations (fltkernel.h).
const (
	FLT_SET_CONTEXT_REPLACE_IF_EXISTS FLT_SET_CONTEXT_OPERATION = 0
	FLT_SET_CONTEXT_KEEP_IF_EXISTS    FLT_SET_CONTEXT_OPERATION = 1
)

// Status codes of the context routines (ntstatus.h).
const (
	STATUS_FLT_CONTEXT_ALREADY_DEFINED kernel.NTSTATUS = 0xC01C0002
	STATUS_FLT_CONTEXT_ALREADY_LINKED  kernel.NTSTATUS = 0xC01C002C
	STATUS_NOT_FOUND                   kernel.NTSTATUS = 0xC0000225
)

// PFLT_CONTEXT_CLEANUP_CALLBACK is called once a context's last reference
// is gone, before its memory is freed (REFERENCE §5.8).
type PFLT_CONTEXT_CLEANUP_CALLBACK func(ctx *FLT_CONTEXT, typ FLT_CONTEXT_TYPE)

// FLT_CONTEXT is a filter context (REFERENCE §5.8): a reference-counted
// block the filter manager attaches to a volume, an instance, a file or a
// stream. Data is the filter's own content. The context lives in a pool
// block (Block, tag FMct): driver code that reads or writes the content
// calls Kernel.AccessPool(c.Block(), what) there, the way it dereferences
// any pool memory, so that a use after the last release is reported (0xD5)
// instead of silently reading Go memory. A context still allocated when its
// filter has unregistered is reported as a leak at the end of the run, as
// Filter Verifier reports leaked context references at unload.
type FLT_CONTEXT struct {
	Type FLT_CONTEXT_TYPE
	Data any

	fm       *FilterManager
	filter   *FLT_FILTER
	block    *kernel.PoolBlock
	nm       string // "stream context 3", for traces and reports
	cleanup  PFLT_CONTEXT_CLEANUP_CALLBACK
	id       int
	refs     int
	attached bool
	freed    bool
}

// References returns the context's reference count (for tests).
func (c *FLT_CONTEXT) References() int { return c.refs }

// Freed reports whether the context's memory has been freed.
func (c *FLT_CONTEXT) Freed() bool { return c.freed }

// Block returns the pool block the context lives in: pass it to
// Kernel.AccessPool where driver code touches the context's content.
func (c *FLT_CONTEXT) Block() *kernel.PoolBlock { return c.block }

// contextTag is the pool tag of contexts in the model (a real filter names
// its own in FLT_CONTEXT_REGISTRATION, which is not modelled), and
// contextSize the size of their block.
const (
	contextTag  = "FMct"
	contextSize = 64
)

// kindName names a context type in leak reports.
func (t FLT_CONTEXT_TYPE) kindName() string {
	switch t {
	case FLT_VOLUME_CONTEXT:
		return "volume context"
	case FLT_INSTANCE_CONTEXT:
		return "instance context"
	case FLT_FILE_CONTEXT:
		return "file context"
	case FLT_STREAM_CONTEXT:
		return "stream context"
	}
	return "context"
}

// ctxKey names the object a context attaches to: an instance (instance
// context), an instance and a file object's stream (stream) or file
// (file), or a filter's view of a volume (volume context).
type ctxKey struct {
	typ    FLT_CONTEXT_TYPE
	filter *FLT_FILTER
	inst   *FLT_INSTANCE
	vol    *FLT_VOLUME
	file   any
}

// ctxSlot is one attached context, kept in attach order (a slice, not a
// map: teardown walks them in a deterministic order).
type ctxSlot struct {
	key ctxKey
	ctx *FLT_CONTEXT
}

// ctxSlot returns the index of the slot for key, or -1.
func (fm *FilterManager) ctxSlot(key ctxKey) int {
	for i := range fm.contexts {
		if fm.contexts[i].key == key {
			return i
		}
	}
	return -1
}

// FltAllocateContext allocates a context of typ for filter with one
// reference (the caller's), which cleanup — may be nil — runs for once the
// last reference is gone. Caller IRQL ≤ APC_LEVEL (paged pool) in the
// model's use. REFERENCE §5.8.
//
// The context lives in a nonpaged pool block (FLT_CONTEXT.Block, tag FMct);
// STATUS_INSUFFICIENT_RESOURCES when that allocation fails (kernel
// Config.InjectAllocFailures). Once filter has unregistered, a context not
// yet freed is a leaked reference, reported at the end of the run naming
// the context, the thread that allocated it and the filter.
func (fm *FilterManager) FltAllocateContext(filter *FLT_FILTER, typ FLT_CONTEXT_TYPE, cleanup PFLT_CONTEXT_CLEANUP_CALLBACK) (*FLT_CONTEXT, kernel.NTSTATUS) {
	fm.k.Layer().CheckIrqlAtMost("FltAllocateContext", kernel.APC_LEVEL)
	b := fm.k.Layer().AllocateInternal(kernel.NonPagedPool, contextSize, contextTag)
	if b == nil {
		return nil, kernel.STATUS_INSUFFICIENT_RESOURCES
	}
	fm.lastContext++
	c := &FLT_CONTEXT{Type: typ, fm: fm, filter: filter, block: b, cleanup: cleanup, id: fm.lastContext, refs: 1}
	c.nm = fmt.Sprintf("%s %d", typ.kindName(), c.id)
	b.Owner = c.name()
	b.Use = kernel.BlockUse{Kind: "FLT_CONTEXT", Alloc: "FltAllocateContext", Free: "its last FltReleaseContext"}
	if filter != nil {
		b.Use.For = "filter " + filter.Name
		b.Live = func() bool { return !filter.Unregistered() } // judged at unload (REFERENCE §5.8)
	}
	fm.trace(KindFltObject, WhatContextAllocate, c.name(), int64(typ), 1)
	return c, kernel.STATUS_SUCCESS
}

// name is the context's name in traces and reports: "stream context 3".
func (c *FLT_CONTEXT) name() string { return c.nm }

// FltReferenceContext adds a reference. Referencing a context that was
// already freed is FLTMGR_FILE_SYSTEM 0xF5 P1=0x6E. Any IRQL ≤
// DISPATCH_LEVEL. REFERENCE §5.8.
func (fm *FilterManager) FltReferenceContext(c *FLT_CONTEXT) {
	if c == nil {
		fm.k.Layer().NullDereference("FltReferenceContext", "Context", true)
	}
	fm.k.Layer().CheckIrqlAtMost("FltReferenceContext", kernel.DISPATCH_LEVEL)
	if c.freed || c.refs <= 0 {
		fm.k.Layer().BugCheckFrom("FltReferenceContext", kernel.FLTMGR_FILE_SYSTEM, 0x6E, uint64(c.id), uint64(c.id), 0,
			c.name()+" referenced after it was freed")
	}
	c.refs++
}

// FltReleaseContext drops a reference; at zero the cleanup callback runs
// and the context is freed — at once at ≤ APC_LEVEL, from a system work
// item (at PASSIVE_LEVEL, so the cleanup may touch paged memory) when the
// last release happens at DISPATCH_LEVEL. The caller must not use the
// context after its release returns. A release that takes the count below
// what the attachment holds — to zero while still attached, or past zero
// — is 0xF5 P1=0x6D (released too many times); releasing a freed context
// is 0xF5 P1=0x6E. Caller IRQL ≤ DISPATCH_LEVEL (post-ops may release).
// REFERENCE §5.8.
func (fm *FilterManager) FltReleaseContext(c *FLT_CONTEXT) {
	const api = "FltReleaseContext"
	if c == nil {
		fm.k.Layer().NullDereference(api, "Context", true)
	}
	fm.k.Layer().CheckIrqlAtMost(api, kernel.DISPATCH_LEVEL)
	fm.k.Layer().Yield()
	switch {
	case c.freed:
		fm.k.Layer().BugCheckFrom(api, kernel.FLTMGR_FILE_SYSTEM, 0x6E, uint64(c.id), uint64(c.id), 0, c.name()+" released after it was freed")
	case c.refs <= 1 && c.attached:
		fm.k.Layer().BugCheckFrom(api, kernel.FLTMGR_FILE_SYSTEM, 0x6D, uint64(c.id), uint64(c.id), 0,
			c.name()+" released too many times: its count reached zero while it is still attached")
	case c.refs <= 0:
		fm.k.Layer().BugCheckFrom(api, kernel.FLTMGR_FILE_SYSTEM, 0x6D, uint64(c.id), uint64(c.id), 0,
			c.name()+" released too many times: its last reference was already released")
	}
	c.refs--
	fm.trace(KindFltObject, WhatContextRelease, c.name(), int64(c.refs), 0)
	if c.refs > 0 {
		return
	}
	if fm.sys != nil && fm.k.KeGetCurrentIrql() > kernel.APC_LEVEL {
		fm.freeLater(c)
		return
	}
	fm.freeContext(c)
}

// freeLater frees c from a system worker: the last release happened at
// DISPATCH_LEVEL, where the filter manager does not free a context but
// schedules a work item to, so that the cleanup callback runs at ≤
// APC_LEVEL as documented (DDI:FltReleaseContext,
// DDI:PFLT_CONTEXT_CLEANUP_CALLBACK; REFERENCE §5.8).
func (fm *FilterManager) freeLater(c *FLT_CONTEXT) {
	item := &queues.WORK_QUEUE_ITEM{}
	queues.ExInitializeWorkItem(item, func(any) { fm.freeContext(c) }, nil)
	prev := fm.k.Layer().SwitchImage(nil) // the filter manager's item (§5.11)
	fm.sys.ExQueueWorkItem(item, queues.DelayedWorkQueue)
	fm.k.Layer().SwitchImage(prev)
}

func (fm *FilterManager) freeContext(c *FLT_CONTEXT) {
	if c.cleanup != nil {
		prev := fm.enter(c.filter)
		c.cleanup(c, c.Type)
		fm.leave(prev)
	}
	c.freed = true
	fm.trace(KindFltObject, WhatContextFree, c.name(), 0, 0)
	fm.k.Layer().FreeInternal(c.block, "FltReleaseContext")
}

// setContext is the common body of the Flt*SetContext routines (REFERENCE
// §5.8): with KEEP_IF_EXISTS and a context already attached at key it
// returns STATUS_FLT_CONTEXT_ALREADY_DEFINED and, if old is not nil, the
// existing context with a reference for the caller; with REPLACE_IF_EXISTS
// it replaces it, handing the old one to old (the attachment's reference
// passes to the caller) or releasing it. The attachment holds its own
// reference to c. A context of another type is STATUS_INVALID_PARAMETER,
// one already attached somewhere STATUS_FLT_CONTEXT_ALREADY_LINKED, an
// object being torn down STATUS_FLT_DELETING_OBJECT. Caller IRQL ≤
// APC_LEVEL; a scheduling point.
func (fm *FilterManager) setContext(api string, key ctxKey, dying bool, op FLT_SET_CONTEXT_OPERATION, c *FLT_CONTEXT, old **FLT_CONTEXT) kernel.NTSTATUS {
	fm.k.Layer().CheckIrqlAtMost(api, kernel.APC_LEVEL)
	fm.k.Layer().Yield()
	if old != nil {
		*old = nil
	}
	switch {
	case c == nil || c.Type != key.typ:
		return kernel.STATUS_INVALID_PARAMETER
	case c.freed || c.refs <= 0:
		fm.k.Layer().BugCheckFrom(api, kernel.FLTMGR_FILE_SYSTEM, 0x6E, uint64(c.id), uint64(c.id), 0, c.name()+" set after it was freed")
	case c.attached:
		return STATUS_FLT_CONTEXT_ALREADY_LINKED
	case dying:
		return kernel.STATUS_FLT_DELETING_OBJECT
	}
	i := fm.ctxSlot(key)
	if i >= 0 {
		cur := fm.contexts[i].ctx
		if op == FLT_SET_CONTEXT_KEEP_IF_EXISTS {
			if old != nil {
				cur.refs++
				*old = cur
			}
			return STATUS_FLT_CONTEXT_ALREADY_DEFINED
		}
		cur.attached = false
		if old != nil {
			*old = cur // the attachment's reference passes to the caller
		} else {
			fm.FltReleaseContext(cur)
		}
	}
	c.refs++
	c.attached = true
	if i >= 0 {
		fm.contexts[i].ctx = c
	} else {
		fm.contexts = append(fm.contexts, ctxSlot{key, c})
	}
	fm.trace(KindFltObject, WhatContextSet, c.name(), int64(c.refs), int64(key.typ))
	return kernel.STATUS_SUCCESS
}

// getContext is the common body of the Flt*GetContext routines: the
// context attached at key with a reference for the caller, or
// STATUS_NOT_FOUND. Caller IRQL ≤ APC_LEVEL; a scheduling point.
func (fm *FilterManager) getContext(api string, key ctxKey) (*FLT_CONTEXT, kernel.NTSTATUS) {
	fm.k.Layer().CheckIrqlAtMost(api, kernel.APC_LEVEL)
	fm.k.Layer().Yield()
	i := fm.ctxSlot(key)
	if i < 0 {
		return nil, STATUS_NOT_FOUND
	}
	c := fm.contexts[i].ctx
	fm.FltReferenceContext(c)
	return c, kernel.STATUS_SUCCESS
}

func streamKey(inst *FLT_INSTANCE, file any) ctxKey {
	return ctxKey{typ: FLT_STREAM_CONTEXT, filter: inst.filter, inst: inst, file: file}
}

func fileKey(inst *FLT_INSTANCE, file any) ctxKey {
	return ctxKey{typ: FLT_FILE_CONTEXT, filter: inst.filter, inst: inst, file: file}
}

func instanceKey(inst *FLT_INSTANCE) ctxKey {
	return ctxKey{typ: FLT_INSTANCE_CONTEXT, filter: inst.filter, inst: inst}
}

func volumeKey(filter *FLT_FILTER, vol *FLT_VOLUME) ctxKey {
	return ctxKey{typ: FLT_VOLUME_CONTEXT, filter: filter, vol: vol}
}

// FltSetStreamContext attaches c to the stream of fileObject for inst
// (setContext's rules). Caller IRQL ≤ APC_LEVEL. REFERENCE §5.8.
func (fm *FilterManager) FltSetStreamContext(inst *FLT_INSTANCE, fileObject any, op FLT_SET_CONTEXT_OPERATION, c *FLT_CONTEXT, old **FLT_CONTEXT) kernel.NTSTATUS {
	return fm.setContext("FltSetStreamContext", streamKey(inst, fileObject), inst.TearingDown(), op, c, old)
}

// FltGetStreamContext returns the context attached to fileObject's stream
// for inst with a reference for the caller, or STATUS_NOT_FOUND. Caller
// IRQL ≤ APC_LEVEL. REFERENCE §5.8.
func (fm *FilterManager) FltGetStreamContext(inst *FLT_INSTANCE, fileObject any) (*FLT_CONTEXT, kernel.NTSTATUS) {
	return fm.getContext("FltGetStreamContext", streamKey(inst, fileObject))
}

// FltSetFileContext attaches c to the file of fileObject for inst
// (setContext's rules). Caller IRQL ≤ APC_LEVEL. REFERENCE §5.8.
func (fm *FilterManager) FltSetFileContext(inst *FLT_INSTANCE, fileObject any, op FLT_SET_CONTEXT_OPERATION, c *FLT_CONTEXT, old **FLT_CONTEXT) kernel.NTSTATUS {
	return fm.setContext("FltSetFileContext", fileKey(inst, fileObject), inst.TearingDown(), op, c, old)
}

// FltGetFileContext returns the file context of fileObject for inst with
// a reference, or STATUS_NOT_FOUND. Caller IRQL ≤ APC_LEVEL. REFERENCE §5.8.
func (fm *FilterManager) FltGetFileContext(inst *FLT_INSTANCE, fileObject any) (*FLT_CONTEXT, kernel.NTSTATUS) {
	return fm.getContext("FltGetFileContext", fileKey(inst, fileObject))
}

// FltSetInstanceContext attaches c to inst — one instance context per
// instance (setContext's rules: KEEP_IF_EXISTS answers
// STATUS_FLT_CONTEXT_ALREADY_DEFINED, REPLACE_IF_EXISTS replaces). Caller
// IRQL ≤ APC_LEVEL. REFERENCE §5.8.
func (fm *FilterManager) FltSetInstanceContext(inst *FLT_INSTANCE, op FLT_SET_CONTEXT_OPERATION, c *FLT_CONTEXT, old **FLT_CONTEXT) kernel.NTSTATUS {
	return fm.setContext("FltSetInstanceContext", instanceKey(inst), inst.TearingDown(), op, c, old)
}

// FltGetInstanceContext returns inst's instance context with a reference
// for the caller, or STATUS_NOT_FOUND (also once teardown has deleted it).
// Caller IRQL ≤ APC_LEVEL. REFERENCE §5.8.
func (fm *FilterManager) FltGetInstanceContext(inst *FLT_INSTANCE) (*FLT_CONTEXT, kernel.NTSTATUS) {
	return fm.getContext("FltGetInstanceContext", instanceKey(inst))
}

// FltSetVolumeContext attaches c, allocated by its filter, to vol for that
// filter (setContext's rules); refused with STATUS_FLT_DELETING_OBJECT
// once the volume is dismounted or the filter unregistering. Caller IRQL
// ≤ APC_LEVEL. REFERENCE §5.8.
func (fm *FilterManager) FltSetVolumeContext(vol *FLT_VOLUME, op FLT_SET_CONTEXT_OPERATION, c *FLT_CONTEXT, old **FLT_CONTEXT) kernel.NTSTATUS {
	var f *FLT_FILTER
	if c != nil {
		f = c.filter
	}
	dying := vol.dismounted || f == nil || f.state != filterRegistered
	return fm.setContext("FltSetVolumeContext", volumeKey(f, vol), dying, op, c, old)
}

// FltGetVolumeContext returns filter's context on vol with a reference, or
// STATUS_NOT_FOUND. Caller IRQL ≤ APC_LEVEL. REFERENCE §5.8.
func (fm *FilterManager) FltGetVolumeContext(filter *FLT_FILTER, vol *FLT_VOLUME) (*FLT_CONTEXT, kernel.NTSTATUS) {
	return fm.getContext("FltGetVolumeContext", volumeKey(filter, vol))
}

// FltDeleteContext detaches c from its object and drops the attachment's
// reference; the context is freed once the last holder releases it.
// Deleting a context that is not attached does nothing. Caller IRQL ≤
// APC_LEVEL. REFERENCE §5.8.
func (fm *FilterManager) FltDeleteContext(c *FLT_CONTEXT) {
	if c == nil {
		fm.k.Layer().NullDereference("FltDeleteContext", "Context", true)
	}
	fm.k.Layer().CheckIrqlAtMost("FltDeleteContext", kernel.APC_LEVEL)
	if c.freed || c.refs <= 0 {
		fm.k.Layer().BugCheckFrom("FltDeleteContext", kernel.FLTMGR_FILE_SYSTEM, 0x6E, uint64(c.id), uint64(c.id), 0, c.name()+" deleted after it was freed")
	}
	fm.contexts = slices.DeleteFunc(fm.contexts, func(sl ctxSlot) bool { return sl.ctx == c })
	if !c.attached {
		return
	}
	c.attached = false
	fm.FltReleaseContext(c)
}

// deleteContexts detaches, in attach order, every context whose key
// matches and drops the attachment references; holders keep theirs, so a
// context a filter still references outlives its object until released.
func (fm *FilterManager) deleteContexts(match func(ctxKey) bool) {
	var gone []*FLT_CONTEXT
	fm.contexts = slices.DeleteFunc(fm.contexts, func(sl ctxSlot) bool {
		if match(sl.key) {
			gone = append(gone, sl.ctx)
			return true
		}
		return false
	})
	for _, c := range gone {
		c.attached = false
		fm.FltReleaseContext(c)
	}
}

// deleteInstanceContexts is the filter manager's part of instance
// teardown (§5.5 item 5): the instance context and every stream and file
// context of inst go.
func (fm *FilterManager) deleteInstanceContexts(inst *FLT_INSTANCE) {
	fm.deleteContexts(func(k ctxKey) bool { return k.inst == inst })
}

// deleteVolumeContexts drops the volume contexts of filter (nil: of every
// filter) on vol (nil: on every volume): at unregistration and dismount.
func (fm *FilterManager) deleteVolumeContexts(filter *FLT_FILTER, vol *FLT_VOLUME) {
	fm.deleteContexts(func(k ctxKey) bool {
		return k.typ == FLT_VOLUME_CONTEXT && (filter == nil || k.filter == filter) && (vol == nil || k.vol == vol)
	})
}

// FltGetFileNameInformation returns the name of the file data targets.
// Callers must be at ≤ APC_LEVEL: from a post-op at DISPATCH_LEVEL (a
// completion in a DPC) it is IRQL_NOT_LESS_OR_EQUAL (REFERENCE §5.8).
// IRQL: ≤ APC_LEVEL, checked.
func (fm *FilterManager) FltGetFileNameInformation(data *FLT_CALLBACK_DATA) (string, kernel.NTSTATUS) {
	fm.k.Layer().CheckIrqlAtMost("FltGetFileNameInformation", kernel.APC_LEVEL)
	fm.k.Layer().Yield()
	return fmt.Sprintf("\\Device\\%s\\%v", data.op.vol.Name, data.Iopb.TargetFileObject), kernel.STATUS_SUCCESS
}
