package queues

// The cancel-safe IRP queue library (IoCsq*, REFERENCE §1.6, §2).
//
// IoCsq is a library a driver links with (Csq.lib on XP, in the kernel
// since), not a system service, so its routines are package functions that
// take the queue; the queue remembers the kernel it was initialised with.
//
// Every step of §2.2–§2.5 is a scheduling point (a kernel call or
// k.Yield), is traced as a KindCsqStep record and is offered to
// IO_CSQ.Hook, so the explorer — or a test that wants one exact
// interleaving — can put another processor between "set cancel routine"
// and "test Cancel", between "unlock" and "complete cancelled", and so on.
// Which path ran is counted (IO_CSQ.Hits) and traced as KindCsqMark.

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// Trace record kinds of the IoCsq library (stable numbers, part of trace
// hashes; 250–259 belong to IoCsq, 260–279 to queues/fltmgr).
const (
	KindCsqStep des.Kind = 250 // one step of §2.2–§2.5; What is the CsqStep, Object the IRP
	KindCsqMark des.Kind = 251 // a coverage mark: which path ran; What is the CsqMark
)

// Object type tags stored in IO_CSQ.Type and IO_CSQ_IRP_CONTEXT.Type
// (values of RO:csq.h).
const (
	IO_TYPE_CSQ_IRP_CONTEXT uint32 = 1
	IO_TYPE_CSQ             uint32 = 2
	IO_TYPE_CSQ_EX          uint32 = 3
)

// CsqOrder selects the step order of the library where Microsoft's flow
// diagrams and ReactOS differ (REFERENCE §2.2, §2.3).
type CsqOrder uint8

const (
	// CsqOrderMicrosoft follows IMG:iocsqinsertirp: associate the context,
	// lock, insert callback, mark pending, set the cancel routine, test
	// Cancel; a cancelled IRP the inserter owns is removed under the lock
	// and completed after unlocking; an Ex insert fails on !NT_SUCCESS and
	// leaves the IRP untouched. The cancel routine breaks the association
	// inside the lock. The default.
	CsqOrderMicrosoft CsqOrder = iota
	// CsqOrderReactOS follows RO:csq.c: lock, mark pending, associate,
	// insert callback (an Ex insert fails on any status other than
	// STATUS_SUCCESS, leaving the IRP marked pending), set routine, test
	// Cancel; a cancelled IRP the inserter owns is removed and completed
	// while the lock is held. The cancel routine clears the context's IRP
	// before it takes the lock.
	CsqOrderReactOS
)

func (o CsqOrder) String() string {
	if o == CsqOrderReactOS {
		return "ReactOS"
	}
	return "Microsoft"
}

// The six driver callbacks (REFERENCE §1.6). Insert, Remove and PeekNext
// are called with the queue lock held and must not take it; AcquireLock
// returns the IRQL to hand back to ReleaseLock (the KIRQL out-parameter of
// the C signature). CompleteCanceledIrp is called after the library has
// called RemoveIrp, normally sets STATUS_CANCELLED and completes the IRP.
type (
	CsqInsertIrp           func(csq *IO_CSQ, irp *kernel.IRP)
	CsqInsertIrpEx         func(csq *IO_CSQ, irp *kernel.IRP, insertContext any) kernel.NTSTATUS
	CsqRemoveIrp           func(csq *IO_CSQ, irp *kernel.IRP)
	CsqPeekNextIrp         func(csq *IO_CSQ, irp *kernel.IRP, peekContext any) *kernel.IRP
	CsqAcquireLock         func(csq *IO_CSQ) kernel.IRQL
	CsqReleaseLock         func(csq *IO_CSQ, irql kernel.IRQL)
	CsqCompleteCanceledIrp func(csq *IO_CSQ, irp *kernel.IRP)
)

// IO_CSQ is a cancel-safe queue: the driver's six callbacks plus the
// library's cancel routine. The driver owns the list and the lock; the
// library owns the protocol (REFERENCE §2.1: ownership of a queued IRP is
// decided by one atomic swap of its cancel routine).
//
// Allocate it in the driver's state, set Order (and Hook in tests), then
// call IoCsqInitialize or IoCsqInitializeEx. Like every simulated object
// it is used from one simulation only.
type IO_CSQ struct {
	// Type is IO_TYPE_CSQ or IO_TYPE_CSQ_EX after initialisation.
	Type uint32
	// Name labels the queue in findings.
	Name string
	// Order selects the Microsoft (default) or ReactOS step order.
	Order CsqOrder
	// Hook, if set, is called after each step, in the thread executing it,
	// with the IRP concerned (nil where there is none). It may call kernel
	// routines: tests use it to hold a thread at one step while another
	// processor runs the racing party. It must not re-enter the queue.
	Hook func(step CsqStep, irp *kernel.IRP)
	// Owner is free for the code that embeds the queue, for callbacks that
	// need the enclosing object without a closure per queue (what
	// CONTAINING_RECORD does in C; fltmgr keeps its callback data queue
	// here). The library never reads it.
	Owner any

	k                *kernel.Kernel
	insert           CsqInsertIrp
	insertEx         CsqInsertIrpEx
	remove           CsqRemoveIrp
	peek             CsqPeekNextIrp
	acquire          CsqAcquireLock
	release          CsqReleaseLock
	completeCanceled CsqCompleteCanceledIrp
	slot             *csqSlot // the library's per-queue state, recycled per Sim (csqSlot)
}

// csqSlot is what the library keeps per initialised queue: its cancel
// routine and its path counters. It lives apart from the IO_CSQ, which the
// driver allocates (often anew each run), and is recycled from run to run
// of a Sim like the kernel's objects (kernel/recycle.go): the i-th queue a
// run initialises gets the i-th slot of the previous run, whose cancel
// routine, bound to the slot, needs no new closure, and whose counters
// keep their storage. So a queue costs no allocation per run.
type csqSlot struct {
	c      *IO_CSQ
	cancel kernel.DriverCancel // calls c's cancelRoutine
	hits   kernel.MarkCounts
}

var csqSpareKey = des.NewSpareKey("queues csq")

// takeCsqSlot returns a reset slot for c on k's Sim.
func takeCsqSlot(k *kernel.Kernel, c *IO_CSQ) *csqSlot {
	sim := k.Layer().Sim()
	st, _ := sim.Spare(csqSpareKey).(*des.Stock[csqSlot])
	if st == nil {
		st = new(des.Stock[csqSlot])
		sim.SetSpare(csqSpareKey, st)
	}
	s := st.Take(sim)
	s.c = c
	s.hits.Reset()
	if s.cancel == nil {
		s.cancel = func(irp *kernel.IRP) { s.c.cancelRoutine(irp) }
	}
	return s
}

// IO_CSQ_IRP_CONTEXT is the optional per-IRP token filled by an insert and
// passed to IoCsqRemoveIrp. It must outlive every removal attempt: after
// the first removal (or a cancel) Irp is nil and later removals return nil
// (REFERENCE §1.5, §2.7G).
type IO_CSQ_IRP_CONTEXT struct {
	Type uint32
	Irp  *kernel.IRP
	Csq  *IO_CSQ
}

// IoCsqInitialize sets up csq with a plain insert callback and returns
// STATUS_SUCCESS. Any IRQL; no scheduling point. Unlike Windows (which
// does not check), a nil callback gives STATUS_INVALID_PARAMETER instead
// of a crash at first use. REFERENCE §1.6.
func IoCsqInitialize(k *kernel.Kernel, csq *IO_CSQ, insert CsqInsertIrp, remove CsqRemoveIrp, peek CsqPeekNextIrp,
	acquire CsqAcquireLock, release CsqReleaseLock, complete CsqCompleteCanceledIrp) kernel.NTSTATUS {
	if insert == nil {
		return kernel.STATUS_INVALID_PARAMETER
	}
	csq.insert, csq.insertEx = insert, nil
	return csq.init(k, IO_TYPE_CSQ, remove, peek, acquire, release, complete)
}

// IoCsqInitializeEx is IoCsqInitialize with an insert callback that returns
// a status (Server 2003+). REFERENCE §1.6.
// IRQL: ≤ DISPATCH_LEVEL.
func IoCsqInitializeEx(k *kernel.Kernel, csq *IO_CSQ, insert CsqInsertIrpEx, remove CsqRemoveIrp, peek CsqPeekNextIrp,
	acquire CsqAcquireLock, release CsqReleaseLock, complete CsqCompleteCanceledIrp) kernel.NTSTATUS {
	if insert == nil {
		return kernel.STATUS_INVALID_PARAMETER
	}
	csq.insert, csq.insertEx = nil, insert
	return csq.init(k, IO_TYPE_CSQ_EX, remove, peek, acquire, release, complete)
}

func (c *IO_CSQ) init(k *kernel.Kernel, typ uint32, remove CsqRemoveIrp, peek CsqPeekNextIrp,
	acquire CsqAcquireLock, release CsqReleaseLock, complete CsqCompleteCanceledIrp) kernel.NTSTATUS {
	if k == nil || remove == nil || peek == nil || acquire == nil || release == nil || complete == nil {
		return kernel.STATUS_INVALID_PARAMETER
	}
	c.k, c.Type = k, typ
	c.remove, c.peek, c.acquire, c.release, c.completeCanceled = remove, peek, acquire, release, complete
	c.slot = takeCsqSlot(k, c)
	return kernel.STATUS_SUCCESS
}

// Kernel returns the kernel the queue was initialised with.
func (c *IO_CSQ) Kernel() *kernel.Kernel { return c.k }

// Hits returns how many times the path m ran on this queue.
func (c *IO_CSQ) Hits(m *kernel.Mark) int {
	if c.slot == nil {
		return 0
	}
	return c.slot.hits.Count(m)
}

// IoCsqInsertIrp inserts irp (REFERENCE §2.2) and returns nothing: a
// cancelled IRP is completed as cancelled instead of staying queued.
// Caller IRQL ≤ DISPATCH_LEVEL (and what the lock callbacks allow). The
// IRP is marked pending. For an Ex queue the insert status is dropped.
func IoCsqInsertIrp(csq *IO_CSQ, irp *kernel.IRP, ctx *IO_CSQ_IRP_CONTEXT) {
	csq.insertIrp("IoCsqInsertIrp", irp, ctx, nil)
}

// IoCsqInsertIrpEx inserts irp (REFERENCE §2.2) and returns STATUS_SUCCESS
// for a plain queue, otherwise the insert callback's status. An error
// means the IRP was not queued and the caller still owns it; a success
// does not mean it is still queued — a cancelled IRP has already been
// removed and completed inside this call (§1.5). Caller IRQL ≤
// DISPATCH_LEVEL.
func IoCsqInsertIrpEx(csq *IO_CSQ, irp *kernel.IRP, ctx *IO_CSQ_IRP_CONTEXT, insertContext any) kernel.NTSTATUS {
	return csq.insertIrp("IoCsqInsertIrpEx", irp, ctx, insertContext)
}

func (c *IO_CSQ) insertIrp(api string, irp *kernel.IRP, ctx *IO_CSQ_IRP_CONTEXT, insertContext any) kernel.NTSTATUS {
	c.mustInit(api)
	c.k.Layer().CheckIrqlAtMost(api, kernel.DISPATCH_LEVEL)
	if c.Order == CsqOrderReactOS {
		return c.insertReactOS(irp, ctx, insertContext)
	}
	c.associate(irp, ctx) // §2.2 step 1
	c.step(CsqInsertAssociate, irp)
	irql := c.acquire(c) // step 2
	c.step(CsqInsertLocked, irp)
	status := c.callInsert(irp, insertContext) // step 3
	c.step(CsqInsertCallback, irp)
	if !kernel.NT_SUCCESS(status) {
		c.disassociate(irp)
		c.markHit(CsqMarkInsertRejected, irp)
		c.release(c, irql)
		c.step(CsqInsertUnlocked, irp)
		return status
	}
	c.k.IoMarkIrpPending(irp) // step 4
	c.step(CsqInsertMarkPending, irp)
	if !c.armAndOwnCancelled(irp) { // steps 5–7
		c.release(c, irql) // step 9
		c.step(CsqInsertUnlocked, irp)
		return status
	}
	c.remove(c, irp) // step 8
	c.disassociate(irp)
	c.step(CsqInsertRemoveCancelled, irp)
	c.release(c, irql)
	c.step(CsqInsertUnlocked, irp)
	c.completeCanceled(c, irp)
	c.step(CsqInsertCompleteCancelled, irp)
	c.markHit(CsqMarkInsertCompletedCancelled, irp)
	return status
}

// insertReactOS is the RO:csq.c order: mark pending before the insert
// callback, and remove + complete a cancelled IRP with the lock held.
func (c *IO_CSQ) insertReactOS(irp *kernel.IRP, ctx *IO_CSQ_IRP_CONTEXT, insertContext any) kernel.NTSTATUS {
	irql := c.acquire(c)
	c.step(CsqInsertLocked, irp)
	c.k.IoMarkIrpPending(irp)
	c.step(CsqInsertMarkPending, irp)
	c.associate(irp, ctx)
	c.step(CsqInsertAssociate, irp)
	status := c.callInsert(irp, insertContext)
	c.step(CsqInsertCallback, irp)
	switch {
	case status != kernel.STATUS_SUCCESS:
		// RO breaks out here: the IRP stays marked pending and associated.
		c.markHit(CsqMarkInsertRejected, irp)
	case c.armAndOwnCancelled(irp):
		irp.DriverContext[3] = nil
		c.remove(c, irp)
		c.step(CsqInsertRemoveCancelled, irp)
		c.completeCanceled(c, irp)
		c.step(CsqInsertCompleteCancelled, irp)
		if ctx != nil {
			ctx.Irp = nil
		}
		c.markHit(CsqMarkInsertCompletedCancelled, irp)
	}
	c.release(c, irql)
	c.step(CsqInsertUnlocked, irp)
	return status
}

// armAndOwnCancelled runs §2.2 steps 5–7: install the cancel routine, test
// Cancel, and if it is set, swap the routine back out. It reports whether
// the inserter owns a cancelled IRP (the swap returned our routine); if
// the swap returned nil, the cancel routine owns it and will remove it
// once it gets the lock.
func (c *IO_CSQ) armAndOwnCancelled(irp *kernel.IRP) bool {
	c.k.IoSetCancelRoutine(irp, c.slot.cancel)
	c.step(CsqInsertSetRoutine, irp)
	cancelled := c.k.IoIsCancelled(irp)
	c.step(CsqInsertTestCancel, irp)
	if !cancelled {
		return false
	}
	if c.k.IoSetCancelRoutine(irp, nil) == nil {
		c.markHit(CsqMarkCancelRacedInsert, irp)
		return false
	}
	c.step(CsqInsertSwapBack, irp)
	return true
}

func (c *IO_CSQ) callInsert(irp *kernel.IRP, insertContext any) kernel.NTSTATUS {
	if c.insertEx != nil {
		return c.insertEx(c, irp, insertContext)
	}
	c.insert(c, irp)
	return kernel.STATUS_SUCCESS
}

// associate links irp and the caller's context through
// Irp->Tail.Overlay.DriverContext[3], as RO:csq.c does: the context if
// there is one, else the queue itself (REFERENCE §1.6).
func (c *IO_CSQ) associate(irp *kernel.IRP, ctx *IO_CSQ_IRP_CONTEXT) {
	if ctx != nil {
		ctx.Type, ctx.Irp, ctx.Csq = IO_TYPE_CSQ_IRP_CONTEXT, irp, c
		irp.DriverContext[3] = ctx
		return
	}
	irp.DriverContext[3] = c
}

// disassociate breaks the IRP↔context link: the context no longer names an
// IRP, so a later IoCsqRemoveIrp with it returns nil (§2.4 step 2).
func (c *IO_CSQ) disassociate(irp *kernel.IRP) {
	if ctx, ok := irp.DriverContext[3].(*IO_CSQ_IRP_CONTEXT); ok {
		ctx.Irp = nil
	}
	irp.DriverContext[3] = nil
}

// cancelRoutine is the library's DRIVER_CANCEL (REFERENCE §2.3). IoCancelIrp
// calls it at DISPATCH_LEVEL holding the cancel spin lock, in the
// canceller's thread.
func (c *IO_CSQ) cancelRoutine(irp *kernel.IRP) {
	c.k.IoReleaseCancelSpinLock(irp.CancelIrql) // step 3: IRQL back to the canceller's
	c.step(CsqCancelEnter, irp)
	ctx := c.owner(irp)
	if c.Order == CsqOrderReactOS && ctx != nil {
		ctx.Irp = nil // RO clears the context before taking the lock (§2.3 step 6)
	}
	c.step(CsqCancelLocking, irp)
	irql := c.acquire(c) // step 4
	c.step(CsqCancelLocked, irp)
	c.remove(c, irp) // step 5
	if c.Order == CsqOrderMicrosoft {
		c.disassociate(irp) // step 6, inside the lock
	}
	c.step(CsqCancelRemoved, irp)
	c.release(c, irql) // step 7
	c.step(CsqCancelUnlocked, irp)
	c.completeCanceled(c, irp) // step 8
	c.step(CsqCancelCompleted, irp)
	c.markHit(CsqMarkCancelRoutineCompleted, irp)
}

// owner reads DriverContext[3] the way the cancel routine must: it holds
// either this queue or a context of this queue. Anything else means the
// driver overwrote the library's slot (§1.6); Windows would dereference
// garbage, the model stops with a *CsqCorruption.
func (c *IO_CSQ) owner(irp *kernel.IRP) *IO_CSQ_IRP_CONTEXT {
	switch v := irp.DriverContext[3].(type) {
	case *IO_CSQ:
		if v == c {
			return nil
		}
	case *IO_CSQ_IRP_CONTEXT:
		if v.Csq == c && v.Type == IO_TYPE_CSQ_IRP_CONTEXT {
			return v
		}
	}
	c.k.Layer().Fail(&CsqCorruption{Queue: c.Name, Irp: irp.Name(),
		Detail: fmt.Sprintf("Irp->Tail.Overlay.DriverContext[3] holds %T, not this queue or one of its contexts; the slot belongs to the IoCsq library (REFERENCE §1.6)", irp.DriverContext[3])})
	return nil
}

// IoCsqRemoveIrp removes the IRP that ctx names and returns it, or nil if
// the context names none (already removed, or a cancel broke the link) or
// the IRP is being cancelled (REFERENCE §2.4). A removed IRP belongs to the
// caller, who must complete or forward it. Caller IRQL ≤ DISPATCH_LEVEL.
func IoCsqRemoveIrp(csq *IO_CSQ, ctx *IO_CSQ_IRP_CONTEXT) *kernel.IRP {
	c := csq
	c.mustInit("IoCsqRemoveIrp")
	c.k.Layer().CheckIrqlAtMost("IoCsqRemoveIrp", kernel.DISPATCH_LEVEL)
	irql := c.acquire(c) // step 1
	irp := ctx.Irp
	c.step(CsqRemoveLocked, irp)
	switch {
	case irp == nil: // step 2
		c.markHit(CsqMarkRemoveNoIrp, nil)
	case c.k.IoSetCancelRoutine(irp, nil) == nil: // step 3: the cancel routine owns it
		c.markHit(CsqMarkRemoveLostToCancel, irp)
		irp = nil
	default: // step 4
		c.step(CsqRemoveSwapped, irp)
		c.remove(c, irp)
		c.disassociate(irp)
		c.step(CsqRemoveRemoved, irp)
	}
	c.release(c, irql)
	c.step(CsqRemoveUnlocked, irp)
	return irp
}

// IoCsqRemoveNextIrp removes and returns the first queued IRP matching
// peekContext whose cancel routine it can swap out, or nil (REFERENCE
// §2.5). Entries whose swap returns nil are being cancelled: they are
// skipped and left in the list for the cancel routine. Caller IRQL ≤
// DISPATCH_LEVEL.
func IoCsqRemoveNextIrp(csq *IO_CSQ, peekContext any) *kernel.IRP {
	c := csq
	c.mustInit("IoCsqRemoveNextIrp")
	c.k.Layer().CheckIrqlAtMost("IoCsqRemoveNextIrp", kernel.DISPATCH_LEVEL)
	irql := c.acquire(c) // step 1
	c.step(CsqRemoveNextLocked, nil)
	var irp *kernel.IRP
	for {
		irp = c.peek(c, irp, peekContext) // steps 2–3
		if irp == nil {
			break
		}
		c.step(CsqRemoveNextPeeked, irp)
		if c.k.IoSetCancelRoutine(irp, nil) == nil {
			c.markHit(CsqMarkRemoveSkippedCancelled, irp)
			continue
		}
		c.remove(c, irp)
		c.disassociate(irp)
		c.step(CsqRemoveNextRemoved, irp)
		break
	}
	c.release(c, irql)
	c.step(CsqRemoveNextUnlocked, irp)
	return irp
}

func (c *IO_CSQ) mustInit(api string) {
	if c.k == nil {
		panic(fmt.Sprintf("queues: %s on queue %q before IoCsqInitialize", api, c.Name))
	}
}

// step traces one protocol step, runs the hook and passes a scheduling
// point, so another processor or an injected preemption can come between
// this step and the next.
func (c *IO_CSQ) step(s CsqStep, irp *kernel.IRP) {
	c.k.Layer().TraceKind(KindCsqStep, des.What(s.String()), csqIrpName(irp), int64(c.Order), 0)
	if c.Hook != nil {
		c.Hook(s, irp)
	}
	c.k.Layer().Yield()
}

func (c *IO_CSQ) markHit(m *kernel.Mark, irp *kernel.IRP) {
	c.slot.hits.Add(m)
	c.k.Layer().HitMark(m)
	c.k.Layer().TraceKind(KindCsqMark, des.What(m.String()), csqIrpName(irp), int64(c.Order), 0)
}

func csqIrpName(irp *kernel.IRP) string {
	if irp == nil {
		return ""
	}
	return irp.Name()
}

// CsqStep names one step of the protocol, as traced and passed to
// IO_CSQ.Hook. Each is reported after its effect.
type CsqStep uint8

// Steps, in Microsoft order within each routine (§2.2–§2.5).
const (
	CsqInsertAssociate         CsqStep = iota // context ↔ IRP linked (DriverContext[3])
	CsqInsertLocked                           // queue lock acquired
	CsqInsertMarkPending                      // IoMarkIrpPending done
	CsqInsertCallback                         // driver insert callback returned
	CsqInsertSetRoutine                       // library cancel routine installed
	CsqInsertTestCancel                       // Irp->Cancel read
	CsqInsertSwapBack                         // cancelled: routine swapped back out, inserter owns the IRP
	CsqInsertRemoveCancelled                  // driver remove callback done for the owned cancelled IRP
	CsqInsertUnlocked                         // queue lock released
	CsqInsertCompleteCancelled                // driver complete-cancelled callback returned
	CsqCancelEnter                            // cancel routine released the cancel spin lock
	CsqCancelLocking                          // about to take the queue lock (ReactOS: context cleared)
	CsqCancelLocked                           // queue lock acquired
	CsqCancelRemoved                          // driver remove callback done
	CsqCancelUnlocked                         // queue lock released
	CsqCancelCompleted                        // driver complete-cancelled callback returned
	CsqRemoveLocked                           // IoCsqRemoveIrp: lock acquired, context read
	CsqRemoveSwapped                          // cancel routine swapped out: the caller owns the IRP
	CsqRemoveRemoved                          // driver remove callback done, link broken
	CsqRemoveUnlocked                         // lock released (IRP = the result)
	CsqRemoveNextLocked                       // IoCsqRemoveNextIrp: lock acquired
	CsqRemoveNextPeeked                       // peek returned a candidate
	CsqRemoveNextRemoved                      // candidate swapped, removed and unlinked
	CsqRemoveNextUnlocked                     // lock released (IRP = the result)
	numCsqSteps
)

var csqStepNames = [numCsqSteps]string{
	"csq insert: associate", "csq insert: locked", "csq insert: mark pending", "csq insert: callback",
	"csq insert: set routine", "csq insert: test cancel", "csq insert: swap back", "csq insert: remove cancelled",
	"csq insert: unlocked", "csq insert: complete cancelled",
	"csq cancel: enter", "csq cancel: locking", "csq cancel: locked", "csq cancel: removed",
	"csq cancel: unlocked", "csq cancel: completed",
	"csq remove: locked", "csq remove: swapped", "csq remove: removed", "csq remove: unlocked",
	"csq remove-next: locked", "csq remove-next: peeked", "csq remove-next: removed", "csq remove-next: unlocked",
}

func (s CsqStep) String() string {
	if s < numCsqSteps {
		return csqStepNames[s]
	}
	return fmt.Sprintf("CsqStep(%d)", uint8(s))
}

// Coverage marks of the library: paths through the protocol that tests and
// explorers want to see reached (see kernel.Mark). IO_CSQ.Hits counts them
// per queue; each hit is also a KindCsqMark trace record.
var (
	CsqMarkInsertCompletedCancelled = kernel.NewMark("csq: insert completed cancelled irp") // insert saw Cancel, won the swap, completed the IRP itself
	CsqMarkCancelRacedInsert        = kernel.NewMark("csq: cancel raced insert")            // insert saw Cancel but the cancel routine had the IRP (§2.2 step 7)
	CsqMarkInsertRejected           = kernel.NewMark("csq: insert rejected")                // Ex insert callback failed: not queued
	CsqMarkCancelRoutineCompleted   = kernel.NewMark("csq: cancel routine completed irp")   // the library cancel routine completed an IRP
	CsqMarkRemoveNoIrp              = kernel.NewMark("csq: remove found no irp")            // IoCsqRemoveIrp: the context named no IRP
	CsqMarkRemoveLostToCancel       = kernel.NewMark("csq: remove lost to cancel")          // IoCsqRemoveIrp: swap returned nil, left to the cancel routine
	CsqMarkRemoveSkippedCancelled   = kernel.NewMark("csq: remove skipped cancelled entry") // IoCsqRemoveNextIrp skipped an entry being cancelled
)

// CsqCorruption reports that the library's slot Irp->Tail.Overlay.
// DriverContext[3] was overwritten while the IRP was queued (REFERENCE
// §1.6); on Windows the cancel routine would dereference garbage.
type CsqCorruption struct {
	Queue  string
	Irp    string
	Detail string
}

func (e *CsqCorruption) Error() string {
	return fmt.Sprintf("IoCsq queue %q, %s: %s", e.Queue, e.Irp, e.Detail)
}

// Class implements des.Finding.
func (e *CsqCorruption) Class() des.Class { return des.ClassCsqCorruption }

// Signature implements des.Finding: the queue, not the IRP (a smaller
// schedule may corrupt another one).
func (e *CsqCorruption) Signature() string { return "csq corruption " + e.Queue }
