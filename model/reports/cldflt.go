package reports

import (
	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
)

// The cldflt.sys cancel-safe-queue lifetime race (Windows Cloud Files mini
// filter, used by Viettel Cyber Security at Pwn2Own Desktop 2026; write-up
// "Pwn2Own with Microslop", dungnm.hashnode.dev, summarised in
// github.com/HackTricks-wiki/hacktricks pull #2543): code processing a
// request queue takes the queue's cancel-safe-queue lock, completes an
// operation and frees the queue object once it is empty, while another
// path that removed an operation still holds the queue and takes its lock
// again: a use after free of the queue object (the lock lives inside it).
// The fix here is the usual one: the remover holds a reference on the
// queue object and the last reference frees it.

func init() {
	model.Register(&model.Scenario{
		Name: "cldflt-csq",
		Doc: "A per-file queue object (pool, holding its cancel-safe-queue lock) has two pending operations. A " +
			"cleanup path removes one under the lock, completes it, and takes the lock again to finish; the " +
			"normal completion of the other removes it and frees the queue object once empty. If the completion " +
			"runs between the cleanup's two lock sections, the cleanup takes a lock inside freed pool. Report: " +
			"the 2026 cldflt.sys race (Pwn2Own Desktop 2026, dungnm.hashnode.dev/pwn2own-with-microslop; " +
			"github.com/HackTricks-wiki/hacktricks pull #2543).",
		Section: "report: cldflt.sys cancel-safe queue lifetime (2026)",
		Variants: []model.Variant{
			{Name: "correct", Doc: "the remover holds a reference; the last reference frees the queue object"},
			{Name: "free-while-held", Bug: true, Doc: "completion frees the queue object when it empties it",
				Marks: []*model.Mark{markCldfltCsqQueueFreedWhile}, Want: "0xD5"},
		},
		Setup: setupCldflt,
	})
}

// cfQueue is the queue object: pool block, lock, pending count and (the
// fix) a reference count.
type cfQueue struct {
	env     *model.Env
	k       *kernel.Kernel
	block   *kernel.PoolBlock
	lock    *kernel.KSPIN_LOCK
	pending *kernel.Cell
	refs    *kernel.Cell
	holding bool // model-only: the remover is between its lock sections
}

// acquire takes the lock inside the queue object (touching the object).
func (q *cfQueue) acquire() kernel.IRQL {
	q.k.AccessPool(q.block, "acquire the queue's csq lock")
	return q.k.KeAcquireSpinLock(q.lock)
}

func (q *cfQueue) release(old kernel.IRQL) { q.k.KeReleaseSpinLock(q.lock, old) }

// deref drops a reference; the last one frees the queue object.
func (q *cfQueue) deref() {
	if q.k.InterlockedDecrement(q.refs) == 0 {
		q.k.ExFreePool(q.block)
	}
}

// take removes one pending operation under the lock and reports whether
// the queue is now empty.
func (q *cfQueue) take() bool {
	old := q.acquire()
	n := q.k.Read(q.pending) - 1
	q.k.Write(q.pending, n)
	q.release(old)
	return n == 0
}

func setupCldflt(env *model.Env) error {
	k := env.K
	q := &cfQueue{env: env, k: k, lock: k.KeInitializeSpinLock("csq lock"), pending: k.NewCell("queued operations", 2),
		refs: k.NewCell("queue references", 1)}
	k.PsCreateSystemThread("filter", threadPriority, func() {
		q.block = k.ExAllocatePoolWithTag(kernel.NonPagedPool, 128, "CfQu")
		ops := []*kernel.IRP{k.IoAllocateIrp("CfOp"), k.IoAllocateIrp("CfOp")}
		for _, op := range ops {
			k.IoMarkIrpPending(op)
		}
		if env.Is("correct") {
			k.InterlockedIncrement(q.refs) // the cleanup path's reference, taken where it gets the pointer
		}
		cleanup := k.PsCreateSystemThread("cleanup", threadPriority, func() { q.cleanup(ops[1]) })
		complete := k.PsCreateSystemThread("completion", threadPriority, func() {
			arrive(env, "cldflt-csq: the operation's data arrives")
			q.complete(ops[0])
		})
		for _, t := range []*kernel.Thread{cleanup, complete} {
			k.KeWaitForSingleObject(t.Object(), kernel.Infinite)
		}
		for _, op := range ops {
			k.IoFreeIrp(op)
		}
	})
	return nil
}

// cleanup removes and cancels one operation, then takes the lock again to
// record that the handle's operations are gone.
func (q *cfQueue) cleanup(op *kernel.IRP) {
	k := q.k
	q.holding = true
	q.take()
	op.IoStatus.Status = kernel.STATUS_CANCELLED
	k.IoCompleteRequest(op, kernel.IO_NO_INCREMENT)
	k.Compute(2 * des.Microsecond)
	old := q.acquire()
	q.release(old)
	q.holding = false
	if q.env.Is("correct") {
		q.deref()
	}
}

// complete is the normal completion of op: remove it, complete it, and
// when the queue is empty drop the queue object.
func (q *cfQueue) complete(op *kernel.IRP) {
	k := q.k
	empty := q.take()
	op.IoStatus.Status = kernel.STATUS_SUCCESS
	k.IoCompleteRequest(op, kernel.IO_NO_INCREMENT)
	if !empty {
		k.Compute(10 * des.Microsecond) // wait for the rest (modelled: the cleanup empties it)
	}
	if q.env.Is("correct") {
		q.deref()
		return
	}
	if q.holding {
		q.env.Hit(markCldfltCsqQueueFreedWhile)
	}
	k.ExFreePool(q.block)
}
