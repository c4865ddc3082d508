package model

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// Coverage marks of these scenarios (see Mark).
var (
	markTestThenSet       = NewMark("handrolled: cancel between test and set")
	markCancelRacedRemove = NewMark("cancel raced remove")
)

// A hand-rolled cancellable IRP queue of the kind REFERENCE §2.7 warns
// about: a list under a spin lock, a cancel routine, and the variants'
// mistakes. The device never services the queue by itself in the
// lost-cancel scenario, so a queued IRP completes only if its cancel works.

type irpQueue struct {
	env  *Env
	k    *kernel.Kernel
	lock *kernel.KSPIN_LOCK
	list []*kernel.IRP
}

func newIrpQueue(env *Env) *irpQueue {
	return &irpQueue{env: env, k: env.K, lock: env.K.KeInitializeSpinLock("queue")}
}

func (q *irpQueue) unlink(irp *kernel.IRP) { q.list = removeFirst(q.list, irp) }

// cancelRoutine runs at DISPATCH_LEVEL holding the cancel spin lock
// (§1.7): drop it, unlink under the queue lock, complete as cancelled.
func (q *irpQueue) cancelRoutine(irp *kernel.IRP) {
	k := q.k
	k.IoReleaseCancelSpinLock(irp.CancelIrql)
	old := k.KeAcquireSpinLock(q.lock)
	q.unlink(irp)
	k.KeReleaseSpinLock(q.lock, old)
	irp.IoStatus.Status = kernel.STATUS_CANCELLED
	k.IoCompleteRequest(irp, kernel.IO_NO_INCREMENT)
}

// insertTestThenSet is the broken insert of §2.7A: it tests Cancel first
// and sets the routine afterwards, so a cancel in between is lost.
func (q *irpQueue) insertTestThenSet(irp *kernel.IRP) bool {
	k := q.k
	old := k.KeAcquireSpinLock(q.lock)
	if k.IoIsCancelled(irp) {
		k.KeReleaseSpinLock(q.lock, old)
		return false
	}
	k.IoMarkIrpPending(irp)
	q.list = append(q.list, irp)
	k.KeReleaseSpinLock(q.lock, old)
	k.Compute(2 * des.Microsecond) // bookkeeping between the test and the set
	if irp.Cancelled() {
		q.env.Hit(markTestThenSet)
	}
	k.IoSetCancelRoutine(irp, q.cancelRoutine)
	return true
}

// insertSetThenTest is §2.2's order: set the routine, then test Cancel and
// decide ownership with the exchange.
func (q *irpQueue) insertSetThenTest(irp *kernel.IRP) bool {
	k := q.k
	old := k.KeAcquireSpinLock(q.lock)
	k.IoMarkIrpPending(irp)
	q.list = append(q.list, irp)
	k.IoSetCancelRoutine(irp, q.cancelRoutine)
	if k.IoIsCancelled(irp) && k.IoSetCancelRoutine(irp, nil) != nil {
		q.unlink(irp) // we own the cancelled IRP
		k.KeReleaseSpinLock(q.lock, old)
		return false
	}
	k.KeReleaseSpinLock(q.lock, old)
	return true
}

// removeNext dequeues for the device. Correct: skip an IRP whose exchange
// returns nil (the cancel routine owns it). The remove-ignores-swap bug
// takes it anyway (§2.7C).
func (q *irpQueue) removeNext() *kernel.IRP {
	k := q.k
	old := k.KeAcquireSpinLock(q.lock)
	defer k.KeReleaseSpinLock(q.lock, old)
	for _, irp := range q.list {
		if k.IoSetCancelRoutine(irp, nil) != nil {
			q.unlink(irp)
			return irp
		}
		q.env.Hit(markCancelRacedRemove)
		if q.env.Is("remove-ignores-swap") {
			q.unlink(irp)
			return irp
		}
	}
	return nil
}

func init() {
	Register(&Scenario{
		Name: "lostcancel",
		Doc: "A driver queues read IRPs in its own list for a device that is stalled, so only " +
			"cancellation completes them; the requester cancels each IRP and waits for it. The " +
			"hand-rolled insert tests Cancel before setting the cancel routine: a cancel in between " +
			"is lost and the requester hangs (§2.7A). The correct insert sets the routine first and " +
			"decides ownership with the exchange (§2.2).",
		Section: "§6.1, §2.2, §2.7A",
		Variants: []Variant{
			{Name: "correct", Doc: "set routine, then test Cancel with the exchange"},
			{Name: "test-then-set", Bug: true, Doc: "test Cancel, then set the routine", Marks: []*Mark{markTestThenSet}, Want: "hang"},
		},
		Setup: setupLostCancel,
	})
	Register(&Scenario{
		Name: "cancelremove",
		Doc: "A device thread dequeues IRPs while the requester cancels them. The dequeuer must " +
			"skip an IRP whose cancel-routine exchange returns NULL: the cancel routine owns it " +
			"(§2.5). The buggy dequeuer takes it anyway, so both complete it: 0x44.",
		Section: "§6.2, §2.5, §2.7C",
		Variants: []Variant{
			{Name: "correct", Doc: "skip entries whose exchange lost"},
			{Name: "remove-ignores-swap", Bug: true, Doc: "dequeue even when the exchange returned NULL", Marks: []*Mark{markCancelRacedRemove}, Want: "0x44"},
		},
		Setup: setupCancelRemove,
	})
}

func setupLostCancel(env *Env) error {
	k := env.K
	q := newIrpQueue(env)
	for i := 0; i < 2; i++ {
		irp := k.IoAllocateIrp(fmt.Sprintf("read%d", i))
		k.PsCreateSystemThread(fmt.Sprintf("dispatch%d", i), 8, func() {
			insert := q.insertSetThenTest
			if env.Is("test-then-set") {
				insert = q.insertTestThenSet
			}
			if !insert(irp) {
				irp.IoStatus.Status = kernel.STATUS_CANCELLED
				k.IoCompleteRequest(irp, kernel.IO_NO_INCREMENT)
			}
		})
		k.PsCreateSystemThread(fmt.Sprintf("requester%d", i), 8, func() {
			k.Compute(des.Duration(1+env.Choose("lostcancel: cancel delay", 3)) * des.Microsecond)
			k.IoCancelIrp(irp)
			k.KeWaitForSingleObject(irp.Done(), kernel.Infinite)
			env.BeginDrain()
		})
	}
	return nil
}

func setupCancelRemove(env *Env) error {
	k := env.K
	q := newIrpQueue(env)
	const n = 3
	irps := make([]*kernel.IRP, n)
	for i := range irps {
		irps[i] = k.IoAllocateIrp(fmt.Sprintf("read%d", i))
	}
	done := k.NewCell("completed", 0)
	k.PsCreateSystemThread("dispatch", 9, func() {
		for _, irp := range irps {
			if !q.insertSetThenTest(irp) {
				// Cancelled before it was queued: the inserter owns it.
				irp.IoStatus.Status = kernel.STATUS_CANCELLED
				k.IoCompleteRequest(irp, kernel.IO_NO_INCREMENT)
				k.InterlockedIncrement(done)
			}
		}
	})
	k.PsCreateSystemThread("device", 8, func() {
		for served := 0; served < n && k.Read(done) < n; {
			irp := q.removeNext()
			if irp == nil {
				k.KeDelayExecutionThread(5 * des.Microsecond)
				continue
			}
			served++
			irp.IoStatus.Status = kernel.STATUS_SUCCESS
			k.IoCompleteRequest(irp, kernel.IO_DISK_INCREMENT)
			k.InterlockedIncrement(done)
		}
		env.BeginDrain()
	})
	k.PsCreateSystemThread("canceller", 8, func() {
		victim := irps[env.Choose("cancelremove: which IRP to cancel", n)]
		k.Compute(des.Duration(1+env.Choose("cancelremove: cancel delay", 4)) * 2 * des.Microsecond)
		if k.IoCancelIrp(victim) {
			k.InterlockedIncrement(done)
		}
	})
	return nil
}
