package queues

import (
	"fmt"
	"reflect"
	"runtime"
	"strings"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// WORKER_THREAD_ROUTINE is an executive work routine. It is called once per
// queueing, at PASSIVE_LEVEL in a system worker thread, with the item's
// parameter (DDI:ExInitializeWorkItem, REFERENCE §1.1).
type WORKER_THREAD_ROUTINE func(parameter any)

// SizeofWorkQueueItem is sizeof(WORK_QUEUE_ITEM) on x64: a LIST_ENTRY, the
// routine pointer and the parameter. Use it to allocate the pool block an
// item lives in.
const SizeofWorkQueueItem = 32

// WORK_QUEUE_ITEM is an executive work item (REFERENCE §1.1). The caller
// owns its storage; put the item in a pool block by setting Block, and the
// model then catches the item's memory being freed while it is queued.
// The zero value is an uninitialised item: initialise it with
// ExInitializeWorkItem (or the driver-owned variant) before queueing.
type WORK_QUEUE_ITEM struct {
	// Block is the pool allocation holding the item, nil for static or
	// stack storage.
	Block *kernel.PoolBlock

	routine WORKER_THREAD_ROUTINE
	param   any
	owner   *DRIVER_OBJECT // the image holding routine; nil for kernel code
	// image holds routine when no DRIVER_OBJECT stands for it: a minifilter's
	// own image (kernel.Image.Standalone), recorded by ExQueueWorkItem
	// called from that code (REFERENCE §5.11).
	image    *kernel.Image
	linked   bool   // List.Flink != NULL: queued, not yet removed
	id       uint64 // stands in for the item's address in bug checks and traces
	typ      WORK_QUEUE_TYPE
	queuedAt des.Time
	io       *IO_WORKITEM // set for the internal item of an I/O work item
}

// ExInitializeWorkItem fills item with routine and parameter and nulls its
// list link (DDI:ExInitializeWorkItem, REFERENCE §1.1). Any IRQL; not a
// scheduling point (it is a macro). This form is for routines of kernel
// components (the filter manager's wrappers, system code): the routine
// belongs to no driver image, so nothing checks that an image is still
// loaded when it runs. Driver code uses DRIVER_OBJECT.ExInitializeWorkItem.
//
// Initialising an item that is still queued nulls the link of a live queue
// entry, as the real macro does; the worker then finds that entry invalid
// (INVALID_WORK_QUEUE_ITEM 0x96) when it removes it.
//
// Queued (ExQueueWorkItem) from the code of a minifilter that no
// DRIVER_OBJECT stands for (a filter registered from scenario code,
// REFERENCE §5.11), the item belongs to the filter's image: ExQueueWorkItem
// holds no reference on it, and a worker that calls or returns into the
// routine after the filter has unloaded is 0xCE (FltQueueGenericWorkItem is
// the filter's way: the unload waits for it).
func ExInitializeWorkItem(item *WORK_QUEUE_ITEM, routine WORKER_THREAD_ROUTINE, parameter any) {
	item.routine, item.param, item.owner, item.linked, item.image = routine, parameter, nil, false, nil
}

// ExInitializeWorkItem is ExInitializeWorkItem for a routine in d's image:
// the item records d as its owner, and a worker that calls the routine (or
// returns into it) after d's image was unloaded bug-checks with
// DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS 0xCE (REFERENCE
// §1.1, §6.8). Any IRQL; not a scheduling point.
func (d *DRIVER_OBJECT) ExInitializeWorkItem(item *WORK_QUEUE_ITEM, routine WORKER_THREAD_ROUTINE, parameter any) {
	ExInitializeWorkItem(item, routine, parameter)
	item.owner = d
}

// Queued reports whether item is in a queue (its list link is set): from
// ExQueueWorkItem until a worker removes it, which happens before the
// routine is called (REFERENCE §3.3 item 5).
func (item *WORK_QUEUE_ITEM) Queued() bool { return item.linked }

// ID returns the number that stands in for the item's address in bug-check
// parameters and trace records (assigned at its first queueing, 0 before).
func (item *WORK_QUEUE_ITEM) ID() uint64 { return item.id }

// Driver returns the driver whose image holds the routine, nil for kernel
// code.
func (item *WORK_QUEUE_ITEM) Driver() *DRIVER_OBJECT { return item.owner }

// ExQueueWorkItem inserts item into the system worker queue of type typ
// (DDI:ExQueueWorkItem, RO:ntoskrnl/ex/work.c, REFERENCE §1.1). Caller IRQL
// ≤ DISPATCH_LEVEL (IRQL_NOT_LESS_OR_EQUAL 0xA above it). It is a
// scheduling point: KeInsertQueue's, which comes after the checks below
// and before the insert, so two threads queueing the same item can both
// pass the check (then the second removal raises 0x96, REFERENCE §6.6).
//
// Checks, in order:
//   - item memory already freed: the access is a use after free (0xD5);
//   - item in paged pool, with Verifier: 0xC4 P1=0x131;
//   - typ not a queue type: WORKER_INVALID 0xE4 P1=6 (P2 item, P3 type);
//   - no routine: 0xE4 P1=7;
//   - item still queued: 0xE4 P1=1 (P2 item, P3 type), or with
//     DoubleQueueCorrupt a second entry and a later 0x96;
//   - a driver-owned item sent to a queue other than Critical, Delayed or a
//     custom-priority one: *ContractViolation. HyperCriticalWorkQueue is
//     "reserved for the system" (DDI:ExQueueWorkItem) and types 3–6 are
//     documented as system priority levels, but Windows checks neither, and
//     0xE4 P1=6 is for values that are not queue types at all (BC:0xE4).
//
// After the insert it applies the pool's growth policy (REFERENCE §1.1
// step (d)) and arms the balance manager when items wait.
func (s *System) ExQueueWorkItem(item *WORK_QUEUE_ITEM, typ WORK_QUEUE_TYPE) {
	if item.owner == nil && item.io == nil {
		item.image = nil
		if img := s.k.Layer().CurrentImage(); img != nil && img.Standalone() {
			item.image = img // a minifilter's own routine (REFERENCE §5.11)
		}
	}
	s.queueItem("ExQueueWorkItem", item, typ, item.owner != nil)
}

// queueItem is ExQueueWorkItem on behalf of api; driverCall enables the
// queue-type contract check.
func (s *System) queueItem(api string, item *WORK_QUEUE_ITEM, typ WORK_QUEUE_TYPE, driverCall bool) {
	k := s.k
	k.Layer().CheckIrqlAtMost(api, kernel.DISPATCH_LEVEL)
	s.assignID(item)
	s.checkQueueable(api, item, typ)
	if driverCall && !typ.driverAllowed() {
		s.ReportContract(api, fmt.Sprintf("a driver queued work item #%d (%s) to %v", item.id, item.routineLabel(), typ),
			"drivers use CriticalWorkQueue or DelayedWorkQueue (or CustomPriorityWorkQueue+P from Windows 8.1); the other types are for the system, HyperCriticalWorkQueue explicitly reserved",
			"DDI:ExQueueWorkItem, DDI:WORK_QUEUE_TYPE, REFERENCE §3.1")
	}
	q := s.queueFor(typ)
	item.typ = typ
	k.KeInsertQueue(q.kq, item)
	if b := item.Block; b != nil && b.Freed() {
		// Freed by another processor during KeInsertQueue's scheduling
		// point, after checkQueueable: the insert writes the item's list
		// entry into freed memory, which special pool catches at the write
		// (REFERENCE §1.1, §6.7). Reported here, by the queueing thread,
		// rather than later as a worker's "freed while queued".
		k.Layer().BugCheckFrom(api, kernel.DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL, item.id, 1, 0, 0,
			fmt.Sprintf("%s wrote the list entry of work item #%d (%s) into pool block %s, freed while the call ran", api, item.id, item.routineLabel(), b.Name()))
	}
	item.linked = true
	item.queuedAt = k.Now()
	k.Layer().TraceKind(KindWorkQueue, des.What(api), q.name, int64(item.id), int64(q.kq.Len()))
	s.afterInsert(q)
}

// assignID gives item the number that stands in for its address, once:
// at its first queueing, or when an I/O work item is set up.
func (s *System) assignID(item *WORK_QUEUE_ITEM) {
	if item.id == 0 {
		s.lastItem++
		item.id = s.lastItem
	}
}

// checkQueueable raises the bug checks ExQueueWorkItem raises for the item
// itself (see ExQueueWorkItem).
func (s *System) checkQueueable(api string, item *WORK_QUEUE_ITEM, typ WORK_QUEUE_TYPE) {
	k := s.k
	if b := item.Block; b != nil {
		if b.Freed() {
			k.AccessPool(b, api+" on work item #"+fmt.Sprint(item.id))
		}
		if b.Type == kernel.PagedPool && k.Layer().Config().Verifier {
			k.Layer().BugCheckFrom(api, kernel.DRIVER_VERIFIER_DETECTED_VIOLATION, 0x131, item.id, 0, 0,
				fmt.Sprintf("work item #%d lives in paged pool block %s; work items must be nonpaged", item.id, b.Name()))
		}
	}
	if !typ.Valid() {
		k.Layer().BugCheckFrom(api, kernel.WORKER_INVALID, 6, item.id, uint64(typ), 0,
			fmt.Sprintf("invalid queue type %d for work item #%d", int32(typ), item.id))
	}
	if item.routine == nil {
		k.Layer().BugCheckFrom(api, kernel.WORKER_INVALID, 7, item.id, uint64(typ), 0,
			fmt.Sprintf("work item #%d has no worker routine (not initialised?)", item.id))
	}
	if item.linked && s.cfg.DoubleQueue == DoubleQueueBugCheck {
		k.Layer().BugCheckFrom(api, kernel.WORKER_INVALID, 1, item.id, uint64(typ), 0,
			fmt.Sprintf("work item #%d (%s) queued to %v while still queued on %v", item.id, item.routineLabel(), typ, item.typ))
	}
}

// ReportContract stops the run with a *ContractViolation of api, naming the
// calling thread (or DPC), when PoolConfig.ContractChecks is on; otherwise
// it returns and the call goes on as Windows lets it. detail says what the
// caller did, rule what the documentation says and source where. Besides
// this package's routines, layers that queue work on these pools and
// enforce documented rules of their own (the filter manager's
// FltQueue*WorkItem) report through it, under the same switch. Any IRQL;
// not a scheduling point.
func (s *System) ReportContract(api, detail, rule, source string) {
	if !s.cfg.ContractChecks {
		return
	}
	s.k.Layer().Fail(&ContractViolation{API: api, Actor: s.actorName(), At: s.k.Now(), Rule: rule, Source: source, Detail: detail})
}

// actorName names the calling simulated code for reports.
func (s *System) actorName() string {
	if t := s.k.Layer().ThreadOrNil(); t != nil {
		return t.Name()
	}
	return fmt.Sprintf("dpc/cpu%d", s.k.KeGetCurrentProcessorNumber())
}

// runItem is one iteration of a worker after KeRemoveQueue handed it item
// (REFERENCE §3.3): validate the removed entry, unlink the item, call the
// routine, count it, check the thread's state.
func (s *System) runItem(w *worker, it *WORK_QUEUE_ITEM) {
	k, q := s.k, w.q
	if !it.linked {
		// The entry's link was nulled by an earlier removal (or by
		// re-initialisation): KeRemoveQueue's check (RO:ntoskrnl/ke/queue.c,
		// BC:0x96). P1 the entry, P2 the queue, P4 the routine.
		k.Layer().BugCheckFrom("KeRemoveQueue", kernel.INVALID_WORK_QUEUE_ITEM, it.id, uint64(q.typ), 0, it.routineID(),
			fmt.Sprintf("removed work item #%d (%s) from %s with a NULL link: it was queued twice (or re-initialised while queued)", it.id, it.routineLabel(), q.name))
	}
	it.linked = false
	if b := it.Block; b != nil && b.Freed() {
		// Windows catches this when the pool is freed (ExFreePool checks for
		// active work items); the kernel model has no free hook, so the
		// worker reports it when it removes the item.
		by, at := b.FreedBy()
		if by != "" {
			by = fmt.Sprintf(", by %s at t=%v", by, at)
		}
		k.Layer().BugCheckFrom("ExFreePool", kernel.WORKER_INVALID, 0, it.id, 0, uint64(b.Size),
			fmt.Sprintf("work item #%d (%s) was freed (pool block %s%s) while queued on %s; found when %s dequeued it",
				it.id, it.routineLabel(), b.Name(), by, q.name, w.name))
	}
	// Everything is read before the call: the routine may free, requeue or
	// re-initialise the item (REFERENCE §3.3 item 5).
	id, routine, param, owner, img := it.id, it.routine, it.param, it.owner, it.image
	ident, shown := any(routine), param // what reports name: the driver's routine and context
	if io := it.io; io != nil {
		ident, shown = io.routineIdent(), io.ctx
	}
	start := k.Now()
	k.Layer().TraceKind(KindWorkDequeue, WhatDequeue, q.name, int64(id), int64(start.Sub(it.queuedAt)))
	if owner != nil && owner.imageUnloaded() {
		s.unloadedCode(id, ident, owner, "calls")
	}
	if img != nil && !img.Loaded() {
		s.unloadedFilterCode(id, ident, img, "calls")
	}
	k.Layer().TraceKind(KindWorkRun, WhatRun, q.name, int64(id), b2i(w.dynamic))
	switch {
	case owner != nil:
		prev := k.Layer().SwitchImage(owner.image)
		routine(param)
		k.Layer().SwitchImage(prev)
	case img != nil:
		prev := k.Layer().SwitchImage(img)
		routine(param)
		k.Layer().SwitchImage(prev)
	default:
		routine(param)
	}
	if owner != nil {
		// The return path executes in the driver's image: a scheduling
		// point, so an unload can overtake it (REFERENCE §6.8).
		k.Layer().Yield()
		if owner.imageUnloaded() {
			s.unloadedCode(id, ident, owner, "returns into")
		}
	}
	if img != nil {
		k.Layer().Yield() // the return path, in the filter's image
		if !img.Loaded() {
			s.unloadedFilterCode(id, ident, img, "returns into")
		}
	}
	q.processed++
	k.Layer().TraceKind(KindWorkReturn, WhatReturn, q.name, int64(id), int64(k.Now().Sub(start)))
	s.checkWorkerState(w, id, ident, shown)
}

// unloadedCode raises 0xCE for a worker executing an Ex routine of an
// unloaded image (BC:0xCE P1 address referenced, P2 0 = read/execute, P3
// the referencing instruction).
func (s *System) unloadedCode(id uint64, routine any, d *DRIVER_OBJECT, how string) {
	rid := routineID(routine)
	s.k.Layer().BugCheckFrom("ExpWorkerThread", kernel.DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS, rid, 0, rid, 0,
		fmt.Sprintf("worker %s routine %s of work item #%d after driver %s's image was unloaded: ExQueueWorkItem keeps no reference on the driver; use IoQueueWorkItem (REFERENCE §1.2, §6.8)",
			how, shortFuncName(funcName(routine)), id, d.DriverName))
}

// unloadedFilterCode raises 0xCE for a worker executing an Ex routine of a
// minifilter's image after the filter unloaded (REFERENCE §5.11).
func (s *System) unloadedFilterCode(id uint64, routine any, img *kernel.Image, how string) {
	rid := routineID(routine)
	s.k.Layer().BugCheckFrom("ExpWorkerThread", kernel.DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS, rid, 0, rid, 0,
		fmt.Sprintf("worker %s routine %s of work item #%d after minifilter %s's image was unloaded: ExQueueWorkItem keeps no reference on the filter, "+
			"and its unload does not wait for the item; use FltQueueGenericWorkItem, which FltUnregisterFilter waits for (REFERENCE §1.3, §5.11)",
			how, shortFuncName(funcName(routine)), id, img.Name()))
}

// checkWorkerState is the worker's check after each routine (REFERENCE
// §1.1, §3.3 item 4): back at PASSIVE_LEVEL (else
// WORKER_THREAD_RETURNED_AT_BAD_IRQL 0xE1: P1 routine, P2 IRQL, P3
// parameter, P4 item), and not inside a critical region (else
// APC_INDEX_MISMATCH 0x01: P1 routine, P2 ApcStateIndex, P3
// CombinedApcDisable, P4 1 = worker routine, BC:0x1; or, with
// RepairApcDisable, the ReactOS warning and repair). Impersonation is not
// modelled, so 0xDF cannot occur.
func (s *System) checkWorkerState(w *worker, id uint64, routine, param any) {
	k := s.k
	if irql := k.KeGetCurrentIrql(); irql != kernel.PASSIVE_LEVEL {
		k.Layer().BugCheckFrom("ExpWorkerThread", kernel.WORKER_THREAD_RETURNED_AT_BAD_IRQL, routineID(routine), uint64(irql), paramID(param), id,
			fmt.Sprintf("work routine %s of item #%d returned at %v", shortFuncName(funcName(routine)), id, irql))
	}
	if d := w.t.CriticalRegionDepth(); d != 0 {
		if s.cfg.RepairApcDisable {
			k.Layer().TraceKind(KindWorkReturn, WhatApcDisableRepaired, w.q.name, int64(id), int64(d))
			w.t.RepairCriticalRegion()
			return
		}
		combined := uint64(uint16(-int16(d))) // KernelApcDisable in the low 16 bits
		k.Layer().BugCheckFrom("ExpWorkerThread", kernel.APC_INDEX_MISMATCH, routineID(routine), 0, combined, 1,
			fmt.Sprintf("work routine %s of item #%d returned inside %d critical region(s) (KeEnterCriticalRegion without KeLeaveCriticalRegion)", shortFuncName(funcName(routine)), id, d))
	}
}

// routineName names the routine a worker would call for it: for the
// internal item of an I/O work item, the driver's routine.
func (it *WORK_QUEUE_ITEM) routineName() string {
	if it.io != nil {
		return it.io.routineName()
	}
	return funcName(it.routine)
}

func (it *WORK_QUEUE_ITEM) routineID() uint64 { return nameID(it.routineName()) }

// routineLabel is routineName as reports print it: without the module's
// import path and Go's "-fm" method-value suffix
// ("drivers.(*stripeFlush).flushRoutine"). routineID keeps hashing the full
// symbol, so bug-check parameters do not change.
func (it *WORK_QUEUE_ITEM) routineLabel() string { return shortFuncName(it.routineName()) }

// shortFuncName trims a Go symbol to its last path element and drops the
// method-value suffix.
func shortFuncName(sym string) string {
	if i := strings.LastIndexByte(sym, '/'); i >= 0 {
		sym = sym[i+1:]
	}
	return strings.TrimSuffix(sym, "-fm")
}

// funcName returns the Go symbol of a function value, "<nil>" for nil. It
// is computed only for reports.
func funcName(fn any) string {
	v := reflect.ValueOf(fn)
	if !v.IsValid() || v.Kind() != reflect.Func || v.IsNil() {
		return "<nil>"
	}
	if f := runtime.FuncForPC(v.Pointer()); f != nil {
		return f.Name()
	}
	return "<unknown>"
}

// routineID stands in for a routine's address in bug-check parameters: a
// 32-bit FNV-1a hash of its Go symbol, the same for every closure of one
// function literal, stable across runs and builds.
func routineID(fn any) uint64 { return nameID(funcName(fn)) }

func nameID(name string) uint64 {
	h := uint32(2166136261)
	for i := 0; i < len(name); i++ {
		h ^= uint32(name[i])
		h *= 16777619
	}
	return uint64(h)
}

// paramID stands in for a parameter's address: its ID when it has one
// (IRPs, threads, items), an integer parameter itself, else 0.
func paramID(p any) uint64 {
	switch v := p.(type) {
	case interface{ ID() int }:
		return uint64(v.ID())
	case interface{ ID() int32 }:
		return uint64(v.ID())
	case interface{ ID() uint64 }:
		return v.ID()
	case int:
		return uint64(v)
	}
	return 0
}
