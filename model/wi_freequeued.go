package model

import (
	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues"
)

// Coverage marks of these scenarios (see Mark).
var (
	markIoItemFreedQueued = NewMark("freequeued: IO_WORKITEM freed while queued")
	markExPoolFreedQueued = NewMark("freequeued: pool holding a queued work item freed")
)

// A driver finishes reads in an I/O work item and logs writes in an
// executive work item embedded in a pool-allocated context (REFERENCE
// §6.7). The application closes each handle after its request: the buggy
// IRP_MJ_CLEANUP frees the per-handle work item (or the log context) on
// the assumption that the routine has run by then. If the handle is closed
// before a worker took the item: WORKER_INVALID 0xE4 P1=2 (an I/O work
// item freed while queued) or P1=0 (pool freed that holds an active work
// item). The correct driver frees each item, or its context, in the work
// routine, which is legal because the worker dequeues the item before the
// call (REFERENCE §1.2, §3.3 item 5).

const (
	fqTag      = "FqLg" // the log context's pool tag
	fqRequests = 2      // one read, one write
)

func init() {
	Register(&Scenario{
		Name: "freequeued",
		Doc: "A driver completes a read through an I/O work item and logs a write through an executive " +
			"work item embedded in a pool context; the application closes each handle after its request. " +
			"The buggy cleanup frees the item (or the context) assuming the routine has run: closing the " +
			"handle before a worker took the item is 0xE4 P1=2 (I/O item) or P1=0 (pool with an active " +
			"Ex item). The correct driver frees both in the work routines.",
		Section: "§6.7, §1.1, §1.2, §3.3",
		Variants: []Variant{
			{Name: "correct", Doc: "each work routine frees its own item or context"},
			{Name: "io-free-queued", Bug: true, Doc: "IRP_MJ_CLEANUP calls IoFreeWorkItem on the read's item",
				Marks: []*Mark{markIoItemFreedQueued}, Want: "0xE4 WORKER_INVALID (0x2,"},
			{Name: "ex-pool-freed", Bug: true, Doc: "IRP_MJ_CLEANUP frees the pool context holding the write's WORK_QUEUE_ITEM",
				Marks: []*Mark{markExPoolFreedQueued}, Want: "0xE4 WORKER_INVALID (0x0,"},
		},
		Setup: setupFreeQueued,
	})
}

// fqExtension is the device extension. The per-handle fields stand for
// the handles' file-object contexts.
type fqExtension struct {
	wiDriver
	drv    *queues.DRIVER_OBJECT
	served *kernel.Cell

	readItem *queues.IO_WORKITEM // handle A's read completion
	writeLog *fqLogContext       // handle B's write log
}

// fqLogContext is the pool block a write's log entry is queued in: the
// WORK_QUEUE_ITEM first, then the entry.
type fqLogContext struct {
	item  queues.WORK_QUEUE_ITEM
	ext   *fqExtension
	bytes int
}

func setupFreeQueued(env *Env) error {
	k := env.K
	w, err := newWiDriver(env, queues.DefaultPoolConfig())
	if err != nil {
		return err
	}
	x := &fqExtension{wiDriver: w, served: k.NewCell("served", 0)}
	env.AtEnd("every request served", wiCountCheck("freequeued", fqRequests, func() int { return int(x.served.Peek()) }))
	k.PsCreateSystemThread("app", 8, func() {
		x.drv = x.loadDriver("fq", x.driverEntry)
		// Plainly the application closes a handle once its request is
		// done; otherwise at once (inside the window before a worker takes
		// the item) or 1µs later.
		think := []des.Duration{wiLateArrival, 0, des.Microsecond}
		x.dispatchRead()
		k.Compute(think[env.Choose("freequeued: think time before closing the read handle", len(think))])
		x.dispatchCleanupRead()
		x.dispatchWrite(512)
		k.Compute(think[env.Choose("freequeued: think time before closing the write handle", len(think))])
		x.dispatchCleanupWrite()
		env.BeginDrain()
	})
	return nil
}

func (x *fqExtension) driverEntry(d *queues.DRIVER_OBJECT) kernel.NTSTATUS {
	return x.createDevice(d, x)
}

// dispatchRead pends the read and completes it at PASSIVE_LEVEL in an I/O
// work item.
func (x *fqExtension) dispatchRead() kernel.NTSTATUS {
	iw := x.sys.IoAllocateWorkItem(x.dev)
	if iw == nil {
		return kernel.STATUS_INSUFFICIENT_RESOURCES
	}
	x.readItem = iw
	x.sys.IoQueueWorkItem(iw, x.readWorker, queues.DelayedWorkQueue, iw)
	return kernel.STATUS_PENDING
}

func (x *fqExtension) readWorker(_ *queues.DEVICE_OBJECT, context any) {
	iw := context.(*queues.IO_WORKITEM)
	x.k.Compute(wiServiceTime)
	x.k.InterlockedIncrement(x.served)
	if !x.env.Is("io-free-queued") {
		x.readItem = nil
		x.sys.IoFreeWorkItem(iw) // legal: dequeued before this call
	}
}

// dispatchCleanupRead is IRP_MJ_CLEANUP for handle A. The bug frees the
// work item it believes is done.
func (x *fqExtension) dispatchCleanupRead() {
	if !x.env.Is("io-free-queued") || x.readItem == nil {
		return
	}
	if x.readItem.Queued() {
		x.env.Hit(markIoItemFreedQueued)
	}
	x.sys.IoFreeWorkItem(x.readItem)
	x.readItem = nil
}

// dispatchWrite completes the write at once and queues a log entry, an
// executive work item inside its own pool context.
func (x *fqExtension) dispatchWrite(n int) kernel.NTSTATUS {
	k := x.k
	b := k.ExAllocatePoolWithTag(kernel.NonPagedPool, queues.SizeofWorkQueueItem+16, fqTag)
	if b == nil {
		return kernel.STATUS_INSUFFICIENT_RESOURCES
	}
	lc := &fqLogContext{ext: x, bytes: n}
	lc.item.Block = b
	x.drv.ExInitializeWorkItem(&lc.item, x.logWorker, lc)
	x.writeLog = lc
	x.sys.ExQueueWorkItem(&lc.item, queues.DelayedWorkQueue)
	return kernel.STATUS_SUCCESS
}

func (x *fqExtension) logWorker(p any) {
	lc := p.(*fqLogContext)
	x.k.Compute(wiServiceTime)
	x.k.InterlockedIncrement(x.served)
	if !x.env.Is("ex-pool-freed") {
		x.writeLog = nil
		x.k.ExFreePoolWithTag(lc.item.Block, fqTag) // legal: dequeued before this call
	}
}

// dispatchCleanupWrite is IRP_MJ_CLEANUP for handle B. The bug frees the
// log context it believes is done.
func (x *fqExtension) dispatchCleanupWrite() {
	lc := x.writeLog
	if !x.env.Is("ex-pool-freed") || lc == nil {
		return
	}
	if lc.item.Queued() {
		x.env.Hit(markExPoolFreedQueued)
	}
	x.k.ExFreePoolWithTag(lc.item.Block, fqTag)
	x.writeLog = nil
}
