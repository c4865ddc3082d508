package fltmgr

import (
	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues"
)

// The six callbacks of a callback-data queue (REFERENCE §1.5). InsertIo,
// RemoveIo and PeekNextIo are called with the queue lock held and must not
// take it. Acquire returns the IRQL to hand back to Release (the PKIRQL
// out-parameter of the C signature). CompleteCanceledIo is called after
// RemoveIo; it normally sets STATUS_CANCELLED and calls
// FltCompletePendedPreOperation(data, FLT_PREOP_COMPLETE, nil).
type (
	PFLT_CALLBACK_DATA_QUEUE_INSERT_IO            func(q *FLT_CALLBACK_DATA_QUEUE, data *FLT_CALLBACK_DATA, insertContext any) kernel.NTSTATUS
	PFLT_CALLBACK_DATA_QUEUE_REMOVE_IO            func(q *FLT_CALLBACK_DATA_QUEUE, data *FLT_CALLBACK_DATA)
	PFLT_CALLBACK_DATA_QUEUE_PEEK_NEXT_IO         func(q *FLT_CALLBACK_DATA_QUEUE, data *FLT_CALLBACK_DATA, peekContext any) *FLT_CALLBACK_DATA
	PFLT_CALLBACK_DATA_QUEUE_ACQUIRE              func(q *FLT_CALLBACK_DATA_QUEUE) kernel.IRQL
	PFLT_CALLBACK_DATA_QUEUE_RELEASE              func(q *FLT_CALLBACK_DATA_QUEUE, irql kernel.IRQL)
	PFLT_CALLBACK_DATA_QUEUE_COMPLETE_CANCELED_IO func(q *FLT_CALLBACK_DATA_QUEUE, data *FLT_CALLBACK_DATA)
)

// FLT_CALLBACK_DATA_QUEUE_IO_CONTEXT is the per-item token of FltCbdqInsertIo
// and FltCbdqRemoveIo: an IO_CSQ_IRP_CONTEXT (§1.5). Keep it alive as long
// as a removal with it may happen (§2.7G).
type FLT_CALLBACK_DATA_QUEUE_IO_CONTEXT = queues.IO_CSQ_IRP_CONTEXT

// FLT_CALLBACK_DATA_QUEUE is a cancel-safe queue of pended callback data:
// an IO_CSQ plus a disabled flag, the instance and the six minifilter
// callbacks (RO:fltkernel.h layout, §1.5). The cancel protocol is IoCsq's:
// Csq.Order and Csq.Hook may be set after FltCbdqInitialize (tests force
// interleavings through the hook).
type FLT_CALLBACK_DATA_QUEUE struct {
	Csq      queues.IO_CSQ
	Instance *FLT_INSTANCE
	disabled bool

	fm         *FilterManager
	insertIo   PFLT_CALLBACK_DATA_QUEUE_INSERT_IO
	removeIo   PFLT_CALLBACK_DATA_QUEUE_REMOVE_IO
	peekNextIo PFLT_CALLBACK_DATA_QUEUE_PEEK_NEXT_IO
	acquire    PFLT_CALLBACK_DATA_QUEUE_ACQUIRE
	release    PFLT_CALLBACK_DATA_QUEUE_RELEASE
	complete   PFLT_CALLBACK_DATA_QUEUE_COMPLETE_CANCELED_IO
}

// Disabled reports whether inserts are refused. No scheduling point: for
// tests and invariants.
func (q *FLT_CALLBACK_DATA_QUEUE) Disabled() bool { return q.disabled }

// FltCbdqInitialize sets up q for inst with the six callbacks; the queue
// starts enabled, with the IoCsq step order of Config.CsqOrder. Returns
// STATUS_SUCCESS, or STATUS_INVALID_PARAMETER for a nil instance or
// callback. Any IRQL; no scheduling point. REFERENCE §1.5.
func (fm *FilterManager) FltCbdqInitialize(inst *FLT_INSTANCE, q *FLT_CALLBACK_DATA_QUEUE,
	insertIo PFLT_CALLBACK_DATA_QUEUE_INSERT_IO, removeIo PFLT_CALLBACK_DATA_QUEUE_REMOVE_IO,
	peekNextIo PFLT_CALLBACK_DATA_QUEUE_PEEK_NEXT_IO, acquire PFLT_CALLBACK_DATA_QUEUE_ACQUIRE,
	release PFLT_CALLBACK_DATA_QUEUE_RELEASE, complete PFLT_CALLBACK_DATA_QUEUE_COMPLETE_CANCELED_IO) kernel.NTSTATUS {
	if inst == nil || insertIo == nil || removeIo == nil || peekNextIo == nil || acquire == nil || release == nil || complete == nil {
		return kernel.STATUS_INVALID_PARAMETER
	}
	q.fm, q.Instance, q.disabled = fm, inst, false
	q.insertIo, q.removeIo, q.peekNextIo = insertIo, removeIo, peekNextIo
	q.acquire, q.release, q.complete = acquire, release, complete
	q.Csq.Name, q.Csq.Order, q.Csq.Owner = inst.cbdqName, fm.cfg.CsqOrder, q
	return queues.IoCsqInitializeEx(fm.k, &q.Csq, cbdqInsert, cbdqRemove, cbdqPeek, cbdqAcquire, cbdqRelease, cbdqComplete)
}

// The IoCsq callbacks are functions, not method values, so that a queue
// costs no allocation per initialisation: each finds its queue in
// Csq.Owner.
func cbdqOf(c *queues.IO_CSQ) *FLT_CALLBACK_DATA_QUEUE { return c.Owner.(*FLT_CALLBACK_DATA_QUEUE) }

func cbdqInsert(c *queues.IO_CSQ, irp *kernel.IRP, insertContext any) kernel.NTSTATUS {
	return cbdqOf(c).csqInsert(c, irp, insertContext)
}
func cbdqRemove(c *queues.IO_CSQ, irp *kernel.IRP) { cbdqOf(c).csqRemove(c, irp) }
func cbdqPeek(c *queues.IO_CSQ, irp *kernel.IRP, peekContext any) *kernel.IRP {
	return cbdqOf(c).csqPeek(c, irp, peekContext)
}
func cbdqAcquire(c *queues.IO_CSQ) kernel.IRQL       { return cbdqOf(c).csqAcquire(c) }
func cbdqRelease(c *queues.IO_CSQ, irql kernel.IRQL) { cbdqOf(c).csqRelease(c, irql) }
func cbdqComplete(c *queues.IO_CSQ, irp *kernel.IRP) { cbdqOf(c).csqComplete(c, irp) }

// The IoCsq callbacks: translate IRPs to callback data (the filter
// manager's link in DriverContext[2]) and check the disabled flag under
// the queue lock, so that FltCbdqDisable (which takes the lock) and an
// insert are ordered.
func (q *FLT_CALLBACK_DATA_QUEUE) csqInsert(_ *queues.IO_CSQ, irp *kernel.IRP, insertContext any) kernel.NTSTATUS {
	d := cbdOf(irp)
	if q.disabled {
		q.fm.mark(MarkCbdqDisabledInsert, d.name)
		return kernel.STATUS_FLT_CBDQ_DISABLED
	}
	return q.insertIo(q, d, insertContext)
}

func (q *FLT_CALLBACK_DATA_QUEUE) csqRemove(_ *queues.IO_CSQ, irp *kernel.IRP) {
	q.removeIo(q, cbdOf(irp))
}

func (q *FLT_CALLBACK_DATA_QUEUE) csqPeek(_ *queues.IO_CSQ, irp *kernel.IRP, peekContext any) *kernel.IRP {
	var d *FLT_CALLBACK_DATA
	if irp != nil {
		d = cbdOf(irp)
	}
	if next := q.peekNextIo(q, d, peekContext); next != nil {
		return next.irp
	}
	return nil
}

func (q *FLT_CALLBACK_DATA_QUEUE) csqAcquire(*queues.IO_CSQ) kernel.IRQL { return q.acquire(q) }

func (q *FLT_CALLBACK_DATA_QUEUE) csqRelease(_ *queues.IO_CSQ, irql kernel.IRQL) { q.release(q, irql) }

func (q *FLT_CALLBACK_DATA_QUEUE) csqComplete(_ *queues.IO_CSQ, irp *kernel.IRP) {
	d := cbdOf(irp)
	q.fm.trace(KindFltCbdq, WhatCompleteCanceledIo, d.name, 0, 0)
	q.complete(q, d)
}

func cbdOf(irp *kernel.IRP) *FLT_CALLBACK_DATA { return irp.DriverContext[2].(*FLT_CALLBACK_DATA) }

// cbdqEnter enforces the caller IRQL of the FltCbdq* routines: ≤
// DISPATCH_LEVEL; a mutex-locked queue additionally needs ≤ APC_LEVEL,
// which the kernel enforces when Acquire takes the fast mutex (0xC4
// P1=0x33 above APC_LEVEL, §1.5, §6.14).
func (q *FLT_CALLBACK_DATA_QUEUE) cbdqEnter(api string) {
	if q.fm == nil {
		panic("fltmgr: " + api + " on a callback data queue before FltCbdqInitialize")
	}
	q.fm.k.Layer().CheckIrqlAtMost(api, kernel.DISPATCH_LEVEL)
}

// FltCbdqInsertIo inserts data into q (REFERENCE §1.5, §2.2) and returns
// what InsertIo returned (STATUS_SUCCESS or STATUS_PENDING); the IRP is
// marked pending. STATUS_FLT_CBDQ_DISABLED (0xC01C000E) if the queue is
// disabled: data was not inserted and the caller still owns it.
// STATUS_INVALID_PARAMETER if data is not IRP-based (the model's status;
// the docs only say it must be). If the IRP is already cancelled it is
// inserted, removed and completed through CompleteCanceledIo inside this
// call, which still returns success — the caller must not touch data
// after a successful insert (§2.7H). Caller IRQL ≤ DISPATCH_LEVEL for a
// spin-lock queue, ≤ APC_LEVEL for a mutex or resource queue.
func (fm *FilterManager) FltCbdqInsertIo(q *FLT_CALLBACK_DATA_QUEUE, data *FLT_CALLBACK_DATA,
	ctx *FLT_CALLBACK_DATA_QUEUE_IO_CONTEXT, insertContext any) kernel.NTSTATUS {
	q.cbdqEnter("FltCbdqInsertIo")
	if !FLT_IS_IRP_OPERATION(data) || data.irp == nil {
		return kernel.STATUS_INVALID_PARAMETER
	}
	data.op.exposeData()
	before := q.Csq.Hits(queues.CsqMarkInsertCompletedCancelled)
	st := queues.IoCsqInsertIrpEx(&q.Csq, data.irp, ctx, insertContext)
	if q.Csq.Hits(queues.CsqMarkInsertCompletedCancelled) != before {
		fm.mark(MarkCbdqInsertCancelled, data.name)
	}
	fm.trace(KindFltCbdq, WhatFltCbdqInsertIo, data.name, int64(st), 0)
	return st
}

// FltCbdqRemoveIo removes the item ctx names and returns its data, or nil
// if it is no longer queued (already removed, or being cancelled — the
// second of two racing removals fails, §1.5 issue #55). Caller IRQL as
// FltCbdqInsertIo. REFERENCE §2.4.
func (fm *FilterManager) FltCbdqRemoveIo(q *FLT_CALLBACK_DATA_QUEUE, ctx *FLT_CALLBACK_DATA_QUEUE_IO_CONTEXT) *FLT_CALLBACK_DATA {
	q.cbdqEnter("FltCbdqRemoveIo")
	irp := queues.IoCsqRemoveIrp(&q.Csq, ctx)
	return q.traced("FltCbdqRemoveIo", irp)
}

// FltCbdqRemoveNextIo removes and returns the next item matching
// peekContext (nil: any) that is not being cancelled, or nil. Caller IRQL
// as FltCbdqInsertIo. REFERENCE §2.5.
func (fm *FilterManager) FltCbdqRemoveNextIo(q *FLT_CALLBACK_DATA_QUEUE, peekContext any) *FLT_CALLBACK_DATA {
	q.cbdqEnter("FltCbdqRemoveNextIo")
	irp := queues.IoCsqRemoveNextIrp(&q.Csq, peekContext)
	return q.traced("FltCbdqRemoveNextIo", irp)
}

func (q *FLT_CALLBACK_DATA_QUEUE) traced(api string, irp *kernel.IRP) *FLT_CALLBACK_DATA {
	if irp == nil {
		q.fm.trace(KindFltCbdq, des.What(api), "", 0, 0)
		return nil
	}
	d := cbdOf(irp)
	q.fm.trace(KindFltCbdq, des.What(api), d.name, 1, 0)
	return d
}

// FltCbdqDisable makes later inserts fail with STATUS_FLT_CBDQ_DISABLED;
// queued items stay queued and cancellable (drain them with
// FltCbdqRemoveNextIo). It takes the queue lock, so an insert in progress
// finishes first. Caller IRQL as FltCbdqInsertIo. REFERENCE §1.5.
func (fm *FilterManager) FltCbdqDisable(q *FLT_CALLBACK_DATA_QUEUE) {
	q.setDisabled("FltCbdqDisable", true)
}

// FltCbdqEnable re-enables inserts (a plain flag, no counting). Caller
// IRQL as FltCbdqInsertIo. REFERENCE §1.5.
func (fm *FilterManager) FltCbdqEnable(q *FLT_CALLBACK_DATA_QUEUE) {
	q.setDisabled("FltCbdqEnable", false)
}

func (q *FLT_CALLBACK_DATA_QUEUE) setDisabled(api string, v bool) {
	q.cbdqEnter(api)
	irql := q.acquire(q)
	q.disabled = v
	q.fm.trace(KindFltCbdq, des.What(api), q.Csq.Name, 0, 0)
	q.release(q, irql)
}
