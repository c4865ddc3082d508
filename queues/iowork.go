package queues

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// IO_WORKITEM_ROUTINE is an I/O work routine (DDI:IO_WORKITEM_ROUTINE):
// called at PASSIVE_LEVEL in a system worker thread with the item's device
// object and context. It must run only briefly or "the system can
// deadlock" (REFERENCE §1.2, §3.4).
type IO_WORKITEM_ROUTINE func(dev *DEVICE_OBJECT, context any)

// IO_WORKITEM_ROUTINE_EX is the IoQueueWorkItemEx routine: it also gets the
// item, so it can free or requeue it (DDI:IoQueueWorkItemEx).
type IO_WORKITEM_ROUTINE_EX func(ioObject IoObject, context any, item *IO_WORKITEM)

// sizeofIoWorkItem is what IoSizeofWorkItem returns in this model. The real
// size is opaque and version-dependent, which is why the routine exists.
const sizeofIoWorkItem = 0x58

// ioWorkItemTag is the pool tag of IoAllocateWorkItem's allocations.
const ioWorkItemTag = "IoWk"

// IO_WORKITEM is an I/O work item (REFERENCE §1.2): an executive item whose
// routine is kernel code (the I/O manager's wrapper) that calls the driver's
// routine and then drops the reference IoQueueWorkItem took on the item's
// device (or driver) object. That reference is what keeps the driver image
// loaded while the item is queued or running.
//
// Get one from IoAllocateWorkItem, or give caller storage (optionally in a
// pool block, Block) to IoInitializeWorkItem.
type IO_WORKITEM struct {
	// Block is the pool block holding the item: IoAllocateWorkItem's
	// allocation, or the caller's storage for IoInitializeWorkItem (nil if
	// not in pool).
	Block *kernel.PoolBlock

	item        WORK_QUEUE_ITEM // the executive item; routine = process
	sys         *System
	obj         IoObject
	routine     IO_WORKITEM_ROUTINE
	routineEx   IO_WORKITEM_ROUTINE_EX
	ctx         any
	allocated   bool // from IoAllocateWorkItem
	initialized bool // by IoInitializeWorkItem, not yet uninitialised
	freed       bool
	listIdx     int // position in sys.ioLive or sys.ioInit
	// who released the item with IoUninitializeWorkItem, and when, for
	// a report that it was queued afterwards (REFERENCE §3.5)
	uninitBy string
	uninitAt des.Time
}

// Queued reports whether the item is in a worker queue (its routine has not
// started yet).
func (iw *IO_WORKITEM) Queued() bool { return iw.item.linked }

// ID returns the number that stands in for the item's address.
func (iw *IO_WORKITEM) ID() uint64 { return iw.item.id }

// IoObject returns the device or driver object the item is tied to.
func (iw *IO_WORKITEM) IoObject() IoObject { return iw.obj }

// IoSizeofWorkItem returns the size of an IO_WORKITEM, for drivers that
// allocate the storage themselves (DDI:IoSizeofWorkItem, REFERENCE §1.2).
// Any IRQL.
func IoSizeofWorkItem() int { return sizeofIoWorkItem }

// setupIoItem makes iw an item of s tied to obj, with its wrapper routine.
func (s *System) setupIoItem(iw *IO_WORKITEM, obj IoObject) {
	iw.sys, iw.obj = s, obj
	ExInitializeWorkItem(&iw.item, iw.process, nil)
	iw.item.io = iw
	iw.item.Block = iw.Block
	s.assignID(&iw.item)
}

// IoAllocateWorkItem allocates and initialises an I/O work item for dev
// (DDI:IoAllocateWorkItem, RO:ntoskrnl/io/iomgr/iowork.c). Caller IRQL ≤
// DISPATCH_LEVEL; a scheduling point. Returns nil when nonpaged pool is
// short: with the kernel's InjectAllocFailures that is a decision. A nil
// dev is WORKER_INVALID 0xE4 P1=3 (invalid object). An item never freed
// with IoFreeWorkItem is reported as a leak at the end of the run.
func (s *System) IoAllocateWorkItem(dev *DEVICE_OBJECT) *IO_WORKITEM {
	k := s.k
	k.Layer().Enter("IoAllocateWorkItem")
	k.Layer().CheckIrqlAtMost("IoAllocateWorkItem", kernel.DISPATCH_LEVEL)
	if dev == nil {
		k.Layer().BugCheckFrom("IoAllocateWorkItem", kernel.WORKER_INVALID, 3, 0, 0, 0, "IoAllocateWorkItem with a NULL device object")
	}
	b := k.Layer().AllocateInternal(kernel.NonPagedPool, sizeofIoWorkItem, ioWorkItemTag)
	if b == nil {
		return nil
	}
	b.Owner = "IO_WORKITEM"
	b.Use = kernel.BlockUse{Kind: "IO_WORKITEM", Alloc: "IoAllocateWorkItem", Free: "IoFreeWorkItem", For: dev.hdr.name}
	iw := &IO_WORKITEM{Block: b, allocated: true}
	s.setupIoItem(iw, dev)
	iw.listIdx = len(s.ioLive)
	s.ioLive = append(s.ioLive, iw)
	k.Layer().TraceKind(KindIoWorkItem, WhatIoAllocateWorkItem, dev.hdr.name, int64(iw.item.id), 0)
	return iw
}

// IoFreeWorkItem frees an item from IoAllocateWorkItem (DDI:IoFreeWorkItem).
// Caller IRQL ≤ DISPATCH_LEVEL; a scheduling point. Legal from inside the
// item's own routine (the item is dequeued before the routine runs).
// Freeing a queued item is WORKER_INVALID 0xE4 P1=2 (P2 item, P3 routine);
// freeing twice is BAD_POOL_CALLER 0xC2 P1=7 from the pool; an item from
// IoInitializeWorkItem is a *ContractViolation (use IoUninitializeWorkItem).
func (s *System) IoFreeWorkItem(iw *IO_WORKITEM) {
	k := s.k
	k.Layer().Enter("IoFreeWorkItem")
	k.Layer().CheckIrqlAtMost("IoFreeWorkItem", kernel.DISPATCH_LEVEL)
	if !iw.allocated {
		s.ReportContract("IoFreeWorkItem", fmt.Sprintf("IoFreeWorkItem on IO_WORKITEM #%d, which IoInitializeWorkItem set up in caller storage", iw.item.id),
			"an item initialised by IoInitializeWorkItem is released with IoUninitializeWorkItem and its storage freed by its owner",
			"DDI:IoInitializeWorkItem, REFERENCE §1.2")
		return
	}
	if iw.item.linked {
		k.Layer().BugCheckFrom("IoFreeWorkItem", kernel.WORKER_INVALID, 2, iw.item.id, nameID(iw.routineName()), 0,
			fmt.Sprintf("IO_WORKITEM #%d (%s) freed while queued on %v", iw.item.id, shortFuncName(iw.routineName()), iw.item.typ))
	}
	k.Layer().FreeInternal(iw.Block, "IoFreeWorkItem")
	iw.freed = true
	s.ioLive = removeIoItem(s.ioLive, iw)
	k.Layer().TraceKind(KindIoWorkItem, WhatIoFreeWorkItem, iw.obj.header().name, int64(iw.item.id), 0)
}

// IoInitializeWorkItem sets up caller storage of IoSizeofWorkItem bytes as
// an I/O work item tied to obj, a device or driver object
// (DDI:IoInitializeWorkItem). Any IRQL; not a scheduling point. A nil
// object is WORKER_INVALID 0xE4 P1=3; an item from IoAllocateWorkItem is a
// *ContractViolation. The item must be uninitialised before its storage is
// freed; a Block freed without that is reported at the end of the run.
func (s *System) IoInitializeWorkItem(obj IoObject, iw *IO_WORKITEM) {
	if isNilObject(obj) {
		s.k.Layer().BugCheckFrom("IoInitializeWorkItem", kernel.WORKER_INVALID, 3, iw.item.id, 0, 0, "IoInitializeWorkItem with a NULL I/O object")
	}
	if iw.allocated {
		s.ReportContract("IoInitializeWorkItem", fmt.Sprintf("IoInitializeWorkItem on IO_WORKITEM #%d from IoAllocateWorkItem", iw.item.id),
			"do not call IoInitializeWorkItem on an item obtained from IoAllocateWorkItem", "DDI:IoAllocateWorkItem, REFERENCE §1.2")
		return
	}
	s.setupIoItem(iw, obj)
	if !iw.initialized {
		iw.initialized = true
		iw.listIdx = len(s.ioInit)
		s.ioInit = append(s.ioInit, iw)
	}
	s.k.Layer().TraceKind(KindIoWorkItem, WhatIoInitializeWorkItem, obj.header().name, int64(iw.item.id), 0)
}

// IoUninitializeWorkItem releases an item set up by IoInitializeWorkItem
// (DDI:IoUninitializeWorkItem). Any IRQL; not a scheduling point. Legal
// from inside the item's routine; while the item is queued it is
// WORKER_INVALID 0xE4 P1=2 (the closest BC:0xE4 case, "a queued I/O worker
// item was freed"). Queueing the item again needs a new
// IoInitializeWorkItem first (REFERENCE §3.5).
func (s *System) IoUninitializeWorkItem(iw *IO_WORKITEM) {
	if iw.item.linked {
		s.k.Layer().BugCheckFrom("IoUninitializeWorkItem", kernel.WORKER_INVALID, 2, iw.item.id, nameID(iw.routineName()), 0,
			fmt.Sprintf("IO_WORKITEM #%d (%s) uninitialised while queued on %v", iw.item.id, shortFuncName(iw.routineName()), iw.item.typ))
	}
	if !iw.initialized {
		return
	}
	iw.initialized = false
	iw.uninitBy, iw.uninitAt = s.actorName(), s.k.Now()
	s.ioInit = removeIoItem(s.ioInit, iw)
	s.k.Layer().TraceKind(KindIoWorkItem, WhatIoUninitializeWorkItem, iw.obj.header().name, int64(iw.item.id), 0)
}

// isNilObject reports a nil I/O object, typed or not.
func isNilObject(obj IoObject) bool {
	switch o := obj.(type) {
	case *DEVICE_OBJECT:
		return o == nil
	case *DRIVER_OBJECT:
		return o == nil
	}
	return obj == nil
}

func removeIoItem(list []*IO_WORKITEM, iw *IO_WORKITEM) []*IO_WORKITEM {
	i := iw.listIdx
	last := len(list) - 1
	list[i] = list[last]
	list[i].listIdx = i
	list[last] = nil
	return list[:last]
}

// IoQueueWorkItem queues iw to run routine(dev, context) (DDI:IoQueueWorkItem,
// RO:ntoskrnl/io/iomgr/iowork.c, REFERENCE §1.2). Caller IRQL ≤
// DISPATCH_LEVEL. It takes a reference on the item's device object, held
// until the routine has returned, so the driver may unload meanwhile
// without harm; then it queues the executive item (ExQueueWorkItem's
// checks and scheduling point apply: queueing a queued item is 0xE4 P1=1).
// Queueing a freed item is a use after free (0xD5); a nil routine is 0xE4
// P1=7; a queue type other than DelayedWorkQueue, an item tied to a
// driver object, or caller storage that IoUninitializeWorkItem released and
// IoInitializeWorkItem did not set up again (REFERENCE §3.5) is a
// *ContractViolation ("drivers must specify DelayedWorkQueue"; the routine
// takes a device object; the item must be allocated or initialised).
func (s *System) IoQueueWorkItem(iw *IO_WORKITEM, routine IO_WORKITEM_ROUTINE, typ WORK_QUEUE_TYPE, context any) {
	if _, isDev := iw.obj.(*DEVICE_OBJECT); iw.obj != nil && !isDev {
		s.ReportContract("IoQueueWorkItem", fmt.Sprintf("IoQueueWorkItem on IO_WORKITEM #%d, which is tied to a driver object", iw.item.id),
			"an item used with IoQueueWorkItem must be allocated for a device object; use IoQueueWorkItemEx for driver objects",
			"DDI:IoAllocateWorkItem, DDI:IoQueueWorkItemEx")
	}
	s.ioQueue("IoQueueWorkItem", iw, routine, nil, typ, context)
}

// IoQueueWorkItemEx is IoQueueWorkItem for a routine that also receives the
// item, and for items tied to a driver object (DDI:IoQueueWorkItemEx).
// Same checks and contract (REFERENCE §1.2, §3.5).
// IRQL: ≤ DISPATCH_LEVEL, checked.
func (s *System) IoQueueWorkItemEx(iw *IO_WORKITEM, routine IO_WORKITEM_ROUTINE_EX, typ WORK_QUEUE_TYPE, context any) {
	s.ioQueue("IoQueueWorkItemEx", iw, nil, routine, typ, context)
}

// IoTryQueueWorkItem is IoQueueWorkItemEx only when a worker thread of typ
// is free to take the item at once: one is waiting for work, nothing is
// queued ahead of it and the queue's concurrency allows it to run. Then it
// queues the item and returns true; otherwise it queues nothing and
// returns false, and the caller keeps the item (DDI:IoTryQueueWorkItem,
// REFERENCE §1.2). Windows searches every NUMA node; the model has one.
// Same IRQL, reference, checks and contract as IoQueueWorkItemEx. The
// check and the insert are not one atomic step in the model: the insert's
// scheduling point lies between them, so a worker taken meanwhile leaves
// an accepted item queued until one is free (where Windows hands it over
// under its queue lock).
// IRQL: ≤ DISPATCH_LEVEL, checked.
func (s *System) IoTryQueueWorkItem(iw *IO_WORKITEM, routine IO_WORKITEM_ROUTINE_EX, typ WORK_QUEUE_TYPE, context any) bool {
	k := s.k
	k.Layer().Enter("IoTryQueueWorkItem")
	k.Layer().CheckIrqlAtMost("IoTryQueueWorkItem", kernel.DISPATCH_LEVEL)
	if !s.workerFree(typ) {
		k.Layer().TraceKind(KindIoWorkItem, WhatIoTryQueueRefused, typ.String(), int64(iw.item.id), 0)
		return false
	}
	s.ioQueue("IoTryQueueWorkItem", iw, nil, routine, typ, context)
	return true
}

// workerFree reports whether a worker of typ waits for work with nothing
// queued ahead of it and room under the queue's concurrency limit.
func (s *System) workerFree(typ WORK_QUEUE_TYPE) bool {
	q := s.lookup(typ)
	if q == nil {
		return false // no thread of that type was ever started
	}
	kq := q.kq
	return kq.Waiting() > 0 && kq.Len() == 0 && kq.Active() < kq.Limit()
}

// ioQueue is IoQueueWorkItem[Ex]: exactly one of r and rx is the routine
// the caller passed (both nil when it passed none).
func (s *System) ioQueue(api string, iw *IO_WORKITEM, r IO_WORKITEM_ROUTINE, rx IO_WORKITEM_ROUTINE_EX, typ WORK_QUEUE_TYPE, ctx any) {
	k := s.k
	k.Layer().CheckIrqlAtMost(api, kernel.DISPATCH_LEVEL)
	if iw.freed {
		k.AccessPool(iw.Block, api+" on a freed IO_WORKITEM")
	}
	if iw.obj == nil || (r == nil && rx == nil) {
		k.Layer().BugCheckFrom(api, kernel.WORKER_INVALID, 7, iw.item.id, uint64(typ), 0,
			fmt.Sprintf("%s on IO_WORKITEM #%d without a routine or an I/O object (not allocated or initialised?)", api, iw.item.id))
	}
	if !iw.allocated && !iw.initialized {
		// Caller storage released by IoUninitializeWorkItem and not set up
		// again: the routines take only an item "allocated by
		// IoAllocateWorkItem or initialized by IoInitializeWorkItem"
		// (REFERENCE §3.5).
		s.ReportContract(api, fmt.Sprintf("%s on IO_WORKITEM #%d, which %s released with IoUninitializeWorkItem at t=%v, after its last IoInitializeWorkItem", api, iw.item.id, iw.uninitBy, iw.uninitAt),
			"queue only an item allocated by IoAllocateWorkItem or initialized by IoInitializeWorkItem (and not uninitialised since)",
			"DDI:IoQueueWorkItem, DDI:IoQueueWorkItemEx, REFERENCE §3.5")
		return
	}
	if typ != DelayedWorkQueue {
		s.ReportContract(api, fmt.Sprintf("IO_WORKITEM #%d queued to %v", iw.item.id, typ),
			"drivers must specify DelayedWorkQueue", "DDI:IoQueueWorkItem, REFERENCE §1.2")
	}
	s.ref(iw.obj)
	iw.routine, iw.routineEx, iw.ctx = r, rx, ctx
	s.queueItem(api, &iw.item, typ, false)
}

// process is the I/O manager's wrapper (IopProcessWorkItem), the routine of
// the executive item: kernel code that calls the driver's routine and,
// after it has returned, drops the reference IoQueueWorkItem took. That
// final dereference may unload the driver's image; it runs in kernel code,
// so that is safe (REFERENCE §1.2, §6.8). The item may be freed or requeued
// by the routine, so everything is read before the call.
func (iw *IO_WORKITEM) process(any) {
	s, obj, r, rx, ctx := iw.sys, iw.obj, iw.routine, iw.routineEx, iw.ctx
	if d := obj.driverOf(); d.imageUnloaded() {
		// Only reachable if the driver dropped references it did not own.
		s.k.Layer().BugCheckFrom("IopProcessWorkItem", kernel.DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS, nameID(iw.routineName()), 0, 0, 0,
			fmt.Sprintf("I/O work routine %s runs after driver %s's image was unloaded (its references were over-released)", shortFuncName(iw.routineName()), d.DriverName))
	}
	prev := s.k.Layer().SwitchImage(obj.driverOf().image)
	if rx != nil {
		rx(obj, ctx, iw)
	} else {
		dev, _ := obj.(*DEVICE_OBJECT)
		r(dev, ctx)
	}
	s.k.Layer().SwitchImage(prev)
	s.k.Layer().Enter("ObDereferenceObject")
	s.deref(obj, "IopProcessWorkItem")
}

// routineIdent returns the driver routine as a value for naming.
func (iw *IO_WORKITEM) routineIdent() any {
	if iw.routineEx != nil {
		return iw.routineEx
	}
	return iw.routine
}

func (iw *IO_WORKITEM) routineName() string { return funcName(iw.routineIdent()) }
