package reports

import (
	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
)

// microsoft/ebpf-for-windows PR #4790 (fixes issue #4647, a bug check in
// _map_async_query_cancel's RemoveEntryList): a ring-buffer map keeps the
// contexts of pending async queries (an IOCTL the app can cancel) on a list
// under the map's lock. The completion path (new data) took a context off
// the list under the lock, dropped the lock, completed and freed it; the
// cancel callback took the lock and removed and freed the same context
// without checking that it was still on the list: a double remove (the
// 0x139 of #4647) or a use after free. The fix lets whichever path unlinks
// the context under the lock own it; the other leaves it alone.

func init() {
	model.Register(&model.Scenario{
		Name: "ebpf-4790",
		Doc: "A map's pending async query (an IRP with a cancel routine) has a context on the map's list. " +
			"A producer completes the query (unlink under the lock, complete, free) while the app may cancel " +
			"the IRP; the cancel routine also unlinks and frees the context. Without checking list membership " +
			"under the lock both paths remove and free it. Report: github.com/microsoft/ebpf-for-windows " +
			"pull #4790 (issue #4647).",
		Section: "report: ebpf-for-windows #4790",
		Variants: []model.Variant{
			{Name: "correct", Doc: "#4790: the path that unlinks the context under the lock owns it"},
			{Name: "double-remove", Bug: true, Doc: "before #4790: the cancel callback removes and frees without checking",
				Marks: []*model.Mark{markEbpf4790CancelCallbackRan}, Want: "0x139|0xD5|0xC2|0x44"},
		},
		Setup: setupEbpf,
	})
}

// Name names the context in list-corruption reports.
func (q *asyncQuery) Name() string { return "async query context" }

// asyncQuery is one pending query: its IRP, its context block and its
// entry on the map's list.
type asyncQuery struct {
	env     *model.Env
	k       *kernel.Kernel
	lock    *kernel.KSPIN_LOCK // the map's lock
	list    kernel.LIST_ENTRY  // the map's async query contexts
	irp     *kernel.IRP
	ctx     *kernel.PoolBlock
	e       kernel.LIST_ENTRY // the context's link
	claimed bool              // model-only: the completion path has unlinked it
}

func setupEbpf(env *model.Env) error {
	k := env.K
	q := &asyncQuery{env: env, k: k, lock: k.KeInitializeSpinLock("map lock")}
	k.PsCreateSystemThread("app", threadPriority, func() {
		q.issue()
		producer := k.PsCreateSystemThread("producer", threadPriority, func() {
			k.Compute(5 * des.Microsecond) // the ring buffer receives data
			q.complete()
		})
		arrive(env, "ebpf-4790: app cancels the query")
		k.IoCancelIrp(q.irp)
		k.KeWaitForSingleObject(q.irp.Done(), kernel.Infinite)
		k.KeWaitForSingleObject(producer.Object(), kernel.Infinite)
		k.IoFreeIrp(q.irp)
	})
	return nil
}

// issue is the IOCTL: allocate the context, put it on the list, pend the
// IRP with the cancel routine.
func (q *asyncQuery) issue() {
	k := q.k
	q.irp = k.IoAllocateIrp("EBPF")
	q.ctx = k.ExAllocatePoolWithTag(kernel.NonPagedPool, 64, "eBPF")
	q.e.Container = q
	k.InitializeListHead(&q.list)
	old := k.KeAcquireSpinLock(q.lock)
	k.InsertTailList(&q.list, &q.e)
	k.KeReleaseSpinLock(q.lock, old)
	k.IoMarkIrpPending(q.irp)
	k.IoSetCancelRoutine(q.irp, q.cancel)
}

// complete is _map_async_query_complete.
func (q *asyncQuery) complete() {
	k := q.k
	old := k.KeAcquireSpinLock(q.lock)
	mine := onList(k, &q.list, &q.e)
	if mine {
		k.RemoveEntryList(&q.e)
		q.claimed = true
	}
	k.KeReleaseSpinLock(q.lock, old)
	if !mine {
		return // the cancel callback took it
	}
	k.IoSetCancelRoutine(q.irp, nil) // ebpf_async_complete: the cancel callback may already be running
	k.AccessPool(q.ctx, "completion writes the query result")
	q.irp.IoStatus.Status = kernel.STATUS_SUCCESS
	k.IoCompleteRequest(q.irp, kernel.IO_NO_INCREMENT)
	k.ExFreePool(q.ctx)
}

// cancel is the cancel routine calling _map_async_query_cancel.
func (q *asyncQuery) cancel(irp *kernel.IRP) {
	k := q.k
	k.IoReleaseCancelSpinLock(irp.CancelIrql)
	old := k.KeAcquireSpinLock(q.lock)
	if q.env.Is("correct") && !onList(k, &q.list, &q.e) {
		k.KeReleaseSpinLock(q.lock, old)
		return // the completion path owns it and will complete the IRP
	}
	if q.claimed {
		q.env.Hit(markEbpf4790CancelCallbackRan)
	}
	k.AccessPool(q.ctx, "cancel reads the query context")
	k.RemoveEntryList(&q.e)
	k.KeReleaseSpinLock(q.lock, old)
	irp.IoStatus.Status = kernel.STATUS_CANCELLED
	k.IoCompleteRequest(irp, kernel.IO_NO_INCREMENT)
	k.ExFreePool(q.ctx)
}
