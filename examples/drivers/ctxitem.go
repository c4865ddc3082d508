package drivers

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/queues"
)

// CtxItem is a driver that commits each write in an I/O work item whose
// storage it owns: DriverEntry preallocates a few request contexts from
// nonpaged pool, each with room for an IO_WORKITEM (IoSizeofWorkItem
// bytes), so that the write path never fails an allocation. A semaphore
// counts the free contexts. A write takes one, sets its item up with
// IoInitializeWorkItem and queues it with IoQueueWorkItemEx; the routine
// commits, IoUninitializeWorkItem's the item (legal from its own routine,
// REFERENCE §1.2) and puts the context back. DriverUnload takes every
// context back through the semaphore, then frees them and deletes the
// device; the queued items hold the device, so the image stays until their
// wrappers have returned.
//
// The bugs: the routine puts its context back first and uninitialises the
// item after, so a write that takes the context in between has its freshly
// queued item uninitialised under it; DriverUnload uninitialises and frees
// the contexts still in use, as if the device reference the I/O manager
// holds for a queued item also kept the driver's storage.
var CtxItem = &model.Scenario{
	Name: "ctxitem",
	Doc: "Writes are committed in I/O work items kept in preallocated request contexts " +
		"(IoSizeofWorkItem storage, IoInitializeWorkItem per use, IoQueueWorkItemEx, IoUninitializeWorkItem " +
		"in the routine); unload takes every context back before freeing them. The bugs recycle the context " +
		"before uninitialising its item, or free the contexts of queued items at unload.",
	Section: "REFERENCE §1.2, §3.5, §6.8",
	Variants: []model.Variant{
		{Name: "correct", Doc: "the routine uninitialises its item, then returns the context; unload waits for every context before freeing"},
		{Name: "recycle-then-uninit", Bug: true,
			Doc:  "the routine returns its context to the free list, then calls IoUninitializeWorkItem: a write that took the context meanwhile has queued the item again (0xE4 P1=2), or queues it just after (a contract violation, REFERENCE §3.5)",
			Want: "bugcheck 0xE4|released with IoUninitializeWorkItem"},
		{Name: "free-at-unload", Bug: true,
			Doc:  "DriverUnload uninitialises and frees the contexts still in use without waiting: a queued item is uninitialised (0xE4 P1=2), or a running routine touches freed pool (0xD5)",
			Want: "bugcheck 0xE4|bugcheck 0xD5"},
	},
	Setup: ctxItemSetup,
}

const (
	ciContexts = 2
	ciWrites   = 5
	ciCtxSize  = 48 // the driver's own fields, before the IO_WORKITEM
)

// ciContext is one request context; item lives in block.
type ciContext struct {
	block *kernel.PoolBlock
	item  queues.IO_WORKITEM
	inUse bool // guarded by the free-list lock
	write int
	next  *ciContext // free list link, guarded by the lock
}

// ciExt is the device extension.
type ciExt struct {
	env       *model.Env
	k         *kernel.Kernel
	sys       *queues.System
	dev       *queues.DEVICE_OBJECT
	lock      *kernel.KSPIN_LOCK // guards free and the contexts' inUse
	free      *ciContext
	freeCount *kernel.KSEMAPHORE // free contexts
	ctxs      [ciContexts]*ciContext
	committed *kernel.Cell
}

func ctxItemSetup(env *model.Env) error {
	k := env.K
	sys, err := queues.NewSystem(k, queues.DefaultPoolConfig())
	if err != nil {
		return err
	}
	x := &ciExt{env: env, k: k, sys: sys}
	k.PsCreateSystemThread("app", 8, func() {
		drv, st := sys.LoadDriver("ctxitem", x.driverEntry)
		if st != kernel.STATUS_SUCCESS {
			env.Violation("driver loads", "%v", st)
			return
		}
		for i := range ciWrites {
			k.KeDelayExecutionThread(des.Duration(1+env.Choose("write gap", 4)*3) * des.Microsecond)
			x.write(i)
		}
		// The service control manager unloads the driver a little later,
		// or at once.
		unloadAfter := [...]des.Duration{60, 0, 6, 12}
		k.KeDelayExecutionThread(unloadAfter[env.Choose("unload after", len(unloadAfter))] * des.Microsecond)
		env.BeginDrain()
		sys.UnloadDriver(drv)
	})
	env.AtEnd("every write committed", func() error {
		if n := x.committed.Peek(); n != ciWrites && !env.Is("free-at-unload") {
			return fmt.Errorf("%d of %d writes committed", n, ciWrites)
		}
		return nil
	})
	return nil
}

func (x *ciExt) driverEntry(d *queues.DRIVER_OBJECT) kernel.NTSTATUS {
	k := x.k
	dev, st := x.sys.IoCreateDevice(d, "ctxitem0")
	if st != kernel.STATUS_SUCCESS {
		return st
	}
	x.dev = dev
	dev.DeviceExtension = x
	x.lock = k.KeInitializeSpinLock("context lock")
	x.committed = k.NewCell("committed", 0)
	for i := range x.ctxs {
		b := k.ExAllocatePoolWithTag(kernel.NonPagedPool, ciCtxSize+queues.IoSizeofWorkItem(), "CiCx")
		if b == nil {
			x.freeContexts(i)
			x.sys.IoDeleteDevice(dev)
			return kernel.STATUS_INSUFFICIENT_RESOURCES
		}
		c := &ciContext{block: b}
		c.item.Block = b
		c.next = x.free
		x.free = c
		x.ctxs[i] = c
	}
	x.freeCount = k.KeInitializeSemaphore("free contexts", ciContexts, ciContexts)
	d.DriverUnload = x.unload
	return kernel.STATUS_SUCCESS
}

// write is the write dispatch path (PASSIVE_LEVEL): take a free context,
// set its work item up and queue it.
func (x *ciExt) write(i int) {
	k := x.k
	k.KeWaitForSingleObject(x.freeCount, kernel.Infinite)
	old := k.KeAcquireSpinLock(x.lock)
	c := x.free
	x.free = c.next
	c.inUse = true
	k.KeReleaseSpinLock(x.lock, old)
	x.sys.IoInitializeWorkItem(x.dev, &c.item)
	c.write = i
	k.AccessPool(c.block, "fill request context")
	x.sys.IoQueueWorkItemEx(&c.item, x.commit, queues.DelayedWorkQueue, c)
}

// commit is the work routine.
func (x *ciExt) commit(_ queues.IoObject, ctx any, item *queues.IO_WORKITEM) {
	k := x.k
	c := ctx.(*ciContext)
	k.AccessPool(c.block, "commit write")
	k.Compute(des.Duration(2+x.env.Choose("commit time", 3)*3) * des.Microsecond)
	k.InterlockedIncrement(x.committed)
	if x.env.Is("recycle-then-uninit") {
		x.recycle(c)
		x.sys.IoUninitializeWorkItem(item)
		return
	}
	x.sys.IoUninitializeWorkItem(item)
	x.recycle(c)
}

// recycle puts c back on the free list.
func (x *ciExt) recycle(c *ciContext) {
	k := x.k
	old := k.KeAcquireSpinLock(x.lock)
	c.inUse = false
	c.next = x.free
	x.free = c
	k.KeReleaseSpinLock(x.lock, old)
	k.KeReleaseSemaphore(x.freeCount, kernel.IO_NO_INCREMENT, 1, false)
}

// freeContexts frees the first n contexts.
func (x *ciExt) freeContexts(n int) {
	for _, c := range x.ctxs[:n] {
		x.k.ExFreePoolWithTag(c.block, "CiCx")
	}
}

func (x *ciExt) unload(*queues.DRIVER_OBJECT) {
	k := x.k
	if x.env.Is("free-at-unload") {
		old := k.KeAcquireSpinLock(x.lock)
		for _, c := range x.ctxs {
			if c.inUse {
				x.sys.IoUninitializeWorkItem(&c.item)
			}
		}
		k.KeReleaseSpinLock(x.lock, old)
	} else {
		for range ciContexts {
			k.KeWaitForSingleObject(x.freeCount, kernel.Infinite)
		}
	}
	x.freeContexts(ciContexts)
	x.sys.IoDeleteDevice(x.dev)
}
