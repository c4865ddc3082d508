package model

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues"
)

// The general/cancel WDM sample of Windows-driver-samples (REFERENCE §7.2),
// re-created: read IRPs go into an IoCsq protected by a spin lock; a
// counting semaphore counts them for a driver-owned polling thread (not a
// system worker) that takes the next IRP, polls the device until it is
// ready and completes the IRP; per-file cleanup completes the file's
// queued IRPs with STATUS_CANCELLED; unload stops the thread.
//
// The two open issues of the sample are the bug variants (§6.17):
//   - #489 "cleanup-vs-poll": the read dispatch releases the file's remove
//     lock right after queueing, so cleanup's IoReleaseRemoveLockAndWait
//     does not wait for the IRP the polling thread has already dequeued
//     (no longer cancellable, no longer in the queue). Cleanup frees the
//     file context; the polling thread then uses it.
//   - #512 "null-irp": the semaphore count can exceed the queue (a queued
//     IRP was cancelled, or cleanup took it), so IoCsqRemoveNextIrp returns
//     NULL; the polling thread dereferences it anyway.
//
// The fix of #489 modelled by the correct variant: the read keeps its
// IoAcquireRemoveLock until whoever completes it (polling thread, cleanup,
// cancel) releases it, and cleanup completes the queued IRPs before it
// waits, so the wait covers exactly the IRP the polling thread holds.
//
// Scaled down: the sample polls every second; here every 50µs.

const (
	csampPollingInterval = 50 * des.Microsecond
	csampPollsPerRead    = 2 // the device reports "not ready" once, then is ready
	csampFileContextTag  = "Csfc"
	csampMaxLong         = 0x7FFFFFFF
)

var (
	markIocsqCleanupVsPoll = NewMark("iocsq: cleanup while the polling thread holds a read of the file")
	markIocsqNullIrp       = NewMark("iocsq: semaphore wake found no irp (cancelled or cleaned up)")
)

func init() {
	Register(&Scenario{
		Name: "iocsq",
		Doc: "The general/cancel WDM sample: reads queued in an IoCsq (spin lock), counted by a semaphore, " +
			"served by a driver-owned polling thread that polls the device; cleanup cancels the file's queued " +
			"reads; unload stops the thread. Two applications read; one may close its handle early or cancel a " +
			"read. Variants plant the sample's open issues #489 and #512.",
		Section: "§7.2, §1.6, §2.4, §2.5, §6.17",
		Variants: []Variant{
			{Name: "correct", Doc: "remove lock held per IRP until completion; NULL from IoCsqRemoveNextIrp means back to waiting"},
			{Name: "cleanup-vs-poll", Bug: true,
				Doc:   "the read releases the file's remove lock after queueing (as the sample does): cleanup frees the file context under the polling thread (#489)",
				Marks: []*Mark{markIocsqCleanupVsPoll}, Want: "0xD5"},
			{Name: "null-irp", Bug: true,
				Doc:   "the polling thread uses the result of IoCsqRemoveNextIrp without checking for NULL (#512)",
				Marks: []*Mark{markIocsqNullIrp}, Want: "panic"},
		},
		Setup: setupIocsq,
	})
}

// csampDevice is the device extension: the queue, its lock and list, the
// semaphore and the polling thread.
type csampDevice struct {
	env *Env
	k   *kernel.Kernel

	csq     queues.IO_CSQ
	lock    *kernel.KSPIN_LOCK
	pending []*kernel.IRP // the driver's PendingIrpQueue
	sem     *kernel.KSEMAPHORE
	stop    *kernel.Cell // ThreadShouldStop
	thread  *kernel.Thread

	// inService is the IRP the polling thread has dequeued and not yet
	// completed: model bookkeeping for the coverage mark only.
	inService *kernel.IRP
}

// csampFileObject stands in for the FILE_OBJECT; FsContext points to the
// driver's per-file context.
type csampFileObject struct {
	Name      string
	FsContext *csampFileContext
}

// csampFileContext is the sample's FILE_CONTEXT: a remove lock ("file
// rundown lock") and the per-file statistics the polling thread updates.
// It lives in a pool block so that a use after free is caught.
type csampFileContext struct {
	block     *kernel.PoolBlock
	rundown   ioRemoveLock
	bytesRead uint64
}

// ioRemoveLock is IO_REMOVE_LOCK (the kernel model has none): a count
// biased by one, a Removed flag and an event set when the count drops to
// zero. Every access touches the block it lives in.
type ioRemoveLock struct {
	k       *kernel.Kernel
	block   *kernel.PoolBlock
	count   *kernel.Cell
	removed *kernel.Cell
	event   *kernel.KEVENT
}

// IoInitializeRemoveLock.
func ioInitializeRemoveLock(k *kernel.Kernel, l *ioRemoveLock, block *kernel.PoolBlock, name string) {
	l.k, l.block = k, block
	l.count = k.NewCell(name+" remove lock count", 1)
	l.removed = k.NewCell(name+" remove lock removed", 0)
	l.event = k.KeInitializeEvent(name+" remove lock released", kernel.NotificationEvent, false)
}

// IoAcquireRemoveLock: STATUS_DELETE_PENDING once IoReleaseRemoveLockAndWait
// has begun.
func (l *ioRemoveLock) acquire(who string) kernel.NTSTATUS {
	l.k.AccessPool(l.block, who+": IoAcquireRemoveLock")
	l.k.InterlockedIncrement(l.count)
	if l.k.Read(l.removed) != 0 {
		l.release(who)
		return kernel.STATUS_DELETE_PENDING
	}
	return kernel.STATUS_SUCCESS
}

// IoReleaseRemoveLock.
func (l *ioRemoveLock) release(who string) {
	l.k.AccessPool(l.block, who+": IoReleaseRemoveLock")
	if l.k.InterlockedDecrement(l.count) == 0 {
		l.k.KeSetEvent(l.event, kernel.IO_NO_INCREMENT, false)
	}
}

// IoReleaseRemoveLockAndWait: the caller holds one acquisition; drop it
// and the initial bias, then wait until every other holder has released.
func (l *ioRemoveLock) releaseAndWait(who string) {
	l.k.AccessPool(l.block, who+": IoReleaseRemoveLockAndWait")
	l.k.InterlockedExchange(l.removed, 1)
	l.k.InterlockedDecrement(l.count)
	if l.k.InterlockedDecrement(l.count) > 0 {
		l.k.KeWaitForSingleObject(l.event, kernel.Infinite)
	}
}

func setupIocsq(env *Env) error {
	k := env.K
	dev := &csampDevice{env: env, k: k}
	if st := dev.driverEntry(); st != kernel.STATUS_SUCCESS {
		return fmt.Errorf("DriverEntry: %v", st)
	}
	iocsqWorkload(env, dev)
	return nil
}

// driverEntry initialises the queue, its spin lock, the semaphore and the
// polling thread (REFERENCE §7.2).
func (dev *csampDevice) driverEntry() kernel.NTSTATUS {
	k := dev.k
	dev.lock = k.KeInitializeSpinLock("csamp queue")
	dev.sem = k.KeInitializeSemaphore("csamp irp queue", 0, csampMaxLong)
	dev.stop = k.NewCell("csamp thread should stop", 0)
	dev.csq.Name = "csamp"
	st := queues.IoCsqInitialize(k, &dev.csq, dev.insertIrp, dev.removeIrp, dev.peekNextIrp, dev.acquireLock, dev.releaseLock, dev.completeCanceledIrp)
	if st != kernel.STATUS_SUCCESS {
		return st
	}
	// The sample raises its polling thread to LOW_REALTIME_PRIORITY.
	dev.thread = k.PsCreateSystemThread("csamp polling", kernel.LOW_REALTIME_PRIORITY, dev.pollingThread)
	return kernel.STATUS_SUCCESS
}

// The IoCsq callbacks (the queue lock is held in insert, remove and peek).

func (dev *csampDevice) insertIrp(_ *queues.IO_CSQ, irp *kernel.IRP) {
	dev.pending = append(dev.pending, irp)
}

func (dev *csampDevice) removeIrp(_ *queues.IO_CSQ, irp *kernel.IRP) {
	for i, x := range dev.pending {
		if x == irp {
			dev.pending = append(dev.pending[:i], dev.pending[i+1:]...)
			return
		}
	}
	panic("csamp: RemoveIrp of an IRP not in the list")
}

// peekNextIrp returns the first IRP after irp (from the head when nil)
// whose file object is peekContext, or any IRP when peekContext is nil.
func (dev *csampDevice) peekNextIrp(_ *queues.IO_CSQ, irp *kernel.IRP, peekContext any) *kernel.IRP {
	i := 0
	if irp != nil {
		for i < len(dev.pending) && dev.pending[i] != irp {
			i++
		}
		i++
	}
	for ; i < len(dev.pending); i++ {
		if next := dev.pending[i]; peekContext == nil || next.FileObject == peekContext {
			return next
		}
	}
	return nil
}

func (dev *csampDevice) acquireLock(*queues.IO_CSQ) kernel.IRQL {
	return dev.k.KeAcquireSpinLock(dev.lock)
}

func (dev *csampDevice) releaseLock(_ *queues.IO_CSQ, irql kernel.IRQL) {
	dev.k.KeReleaseSpinLock(dev.lock, irql)
}

// completeCanceledIrp completes a cancelled IRP; the fixed driver also
// releases the remove lock the IRP holds.
func (dev *csampDevice) completeCanceledIrp(_ *queues.IO_CSQ, irp *kernel.IRP) {
	fc := irp.FileObject.(*csampFileObject).FsContext
	irp.IoStatus = kernel.IO_STATUS_BLOCK{Status: kernel.STATUS_CANCELLED}
	dev.k.IoCompleteRequest(irp, kernel.IO_NO_INCREMENT)
	dev.releaseIrpRundown(fc, "CsampCompleteCanceledIrp")
}

// releaseIrpRundown releases, after an IRP's completion, the file's remove
// lock the IRP held: in every variant but cleanup-vs-poll, where the read
// released it right after queueing.
func (dev *csampDevice) releaseIrpRundown(fc *csampFileContext, who string) {
	if !dev.env.Is("cleanup-vs-poll") {
		fc.rundown.release(who)
	}
}

// create is IRP_MJ_CREATE: allocate the file context.
func (dev *csampDevice) create(fo *csampFileObject) kernel.NTSTATUS {
	k := dev.k
	b := k.ExAllocatePoolWithTag(kernel.NonPagedPool, 64, csampFileContextTag)
	if b == nil {
		return kernel.STATUS_INSUFFICIENT_RESOURCES
	}
	fc := &csampFileContext{block: b}
	ioInitializeRemoveLock(k, &fc.rundown, b, fo.Name)
	fo.FsContext = fc
	return kernel.STATUS_SUCCESS
}

// read is IRP_MJ_READ: queue the IRP and count it for the polling thread.
func (dev *csampDevice) read(irp *kernel.IRP) kernel.NTSTATUS {
	k := dev.k
	fc := irp.FileObject.(*csampFileObject).FsContext
	if st := fc.rundown.acquire("CsampRead"); st != kernel.STATUS_SUCCESS {
		irp.IoStatus = kernel.IO_STATUS_BLOCK{Status: st}
		k.IoCompleteRequest(irp, kernel.IO_NO_INCREMENT)
		return st
	}
	queues.IoCsqInsertIrp(&dev.csq, irp, nil) // marks it pending
	k.KeReleaseSemaphore(dev.sem, 0, 1, false)
	if dev.env.Is("cleanup-vs-poll") {
		// The sample: the remove lock only covers the dispatch routine,
		// not the IRP's life in the driver (#489).
		fc.rundown.release("CsampRead")
	}
	return kernel.STATUS_PENDING
}

// cleanup is IRP_MJ_CLEANUP for one file: complete the file's queued IRPs
// as cancelled, wait for the file's remove lock, free the file context.
func (dev *csampDevice) cleanup(irp *kernel.IRP) kernel.NTSTATUS {
	k := dev.k
	fo := irp.FileObject.(*csampFileObject)
	fc := fo.FsContext
	if cur := dev.inService; cur != nil && cur.FileObject == fo {
		dev.env.Hit(markIocsqCleanupVsPoll)
	}
	fc.rundown.acquire("CsampCleanup")
	if dev.env.Is("cleanup-vs-poll") {
		// The sample's order: wait for the remove lock, then empty the
		// queue. The wait returns at once: no read holds the lock.
		fc.rundown.releaseAndWait("CsampCleanup")
		dev.cancelQueued(fo)
	} else {
		// With the remove lock held per IRP the queued IRPs go first, or
		// the wait would last until the polling thread had served them.
		dev.cancelQueued(fo)
		fc.rundown.releaseAndWait("CsampCleanup")
	}
	// FsContext is left dangling, as after the sample's close.
	k.ExFreePoolWithTag(fc.block, csampFileContextTag)
	irp.IoStatus = kernel.IO_STATUS_BLOCK{Status: kernel.STATUS_SUCCESS}
	k.IoCompleteRequest(irp, kernel.IO_NO_INCREMENT)
	return kernel.STATUS_SUCCESS
}

// cancelQueued completes every queued IRP of fo as cancelled.
func (dev *csampDevice) cancelQueued(fo *csampFileObject) {
	for {
		irp := queues.IoCsqRemoveNextIrp(&dev.csq, fo)
		if irp == nil {
			return
		}
		irp.IoStatus = kernel.IO_STATUS_BLOCK{Status: kernel.STATUS_CANCELLED}
		dev.k.IoCompleteRequest(irp, kernel.IO_NO_INCREMENT)
		dev.releaseIrpRundown(fo.FsContext, "CsampCleanup")
	}
}

// pollingThread is the sample's CsampPollingThread.
func (dev *csampDevice) pollingThread() {
	k := dev.k
	for {
		k.KeWaitForSingleObject(dev.sem, kernel.Infinite)
		if k.Read(dev.stop) != 0 {
			return // PsTerminateSystemThread
		}
		irp := queues.IoCsqRemoveNextIrp(&dev.csq, nil)
		if irp == nil {
			dev.env.Hit(markIocsqNullIrp)
			if !dev.env.Is("null-irp") {
				continue // a queued IRP got cancelled: back to waiting
			}
		}
		// #512: with no NULL check this reads through a nil IRP.
		fo := irp.FileObject.(*csampFileObject)
		dev.inService = irp
		fc := fo.FsContext
		dev.pollDevice()
		if fc.block.Freed() {
			dev.env.Hit(markIocsqCleanupVsPoll)
		}
		k.AccessPool(fc.block, "CsampPollingThread: FileContext->BytesRead")
		fc.bytesRead += uint64(4096)
		irp.IoStatus = kernel.IO_STATUS_BLOCK{Status: kernel.STATUS_SUCCESS, Information: 4096}
		dev.inService = nil
		k.IoCompleteRequest(irp, kernel.IO_NO_INCREMENT)
		dev.releaseIrpRundown(fc, "CsampPollingThread")
	}
}

// pollDevice reads the device's status register until it reports ready,
// sleeping a polling interval in between.
func (dev *csampDevice) pollDevice() {
	k := dev.k
	for polls := 1; ; polls++ {
		k.Compute(2 * des.Microsecond) // READ_PORT_UCHAR on the status register
		if polls >= csampPollsPerRead {
			return
		}
		k.KeDelayExecutionThread(csampPollingInterval)
	}
}

// unload is DriverUnload: stop the thread and wait for it to exit.
func (dev *csampDevice) unload() {
	k := dev.k
	k.InterlockedExchange(dev.stop, 1)
	k.KeReleaseSemaphore(dev.sem, 0, 1, false)
	k.KeWaitForSingleObject(dev.thread.Object(), kernel.Infinite)
}

// iocsqWorkload: application A opens a file and issues two reads; B opens
// another and issues one. A closes its handle (cleanup) after its reads
// complete, or — a decision — while they are in flight, as when the
// program crashes; a canceller may cancel A's second read. The driver
// unloads when both applications are done.
func iocsqWorkload(env *Env, dev *csampDevice) {
	k := env.K
	var readA1 *kernel.IRP
	issuedA := k.KeInitializeEvent("app A issued its reads", kernel.NotificationEvent, false)
	apps := newCountdown(k, 3, "apps running", "apps done")
	// open, read (asynchronously), close — as the I/O manager would send them.
	open := func(name string) *csampFileObject {
		fo := &csampFileObject{Name: name}
		if st := dev.create(fo); st != kernel.STATUS_SUCCESS {
			env.Violation("create", "IRP_MJ_CREATE: %v", st)
		}
		return fo
	}
	issue := func(fo *csampFileObject, tag string) *kernel.IRP {
		irp := k.IoAllocateIrp(tag)
		irp.FileObject = fo
		dev.read(irp)
		return irp
	}
	closeHandle := func(fo *csampFileObject) {
		irp := k.IoAllocateIrp("cleanup " + fo.Name)
		irp.FileObject = fo
		dev.cleanup(irp)
	}
	k.PsCreateSystemThread("app A", 8, func() {
		fo := open("A")
		r0 := issue(fo, "read A0")
		readA1 = issue(fo, "read A1")
		k.KeSetEvent(issuedA, 0, false)
		if c := env.Choose("iocsq: app A closes its handle early (×20µs; 0 = after its reads)", 6); c > 0 {
			k.KeDelayExecutionThread(des.Duration(c) * 20 * des.Microsecond)
			closeHandle(fo)
			// Thread rundown still waits for the IRPs it issued.
			k.KeWaitForSingleObject(r0.Done(), kernel.Infinite)
			k.KeWaitForSingleObject(readA1.Done(), kernel.Infinite)
		} else {
			k.KeWaitForSingleObject(r0.Done(), kernel.Infinite)
			k.KeWaitForSingleObject(readA1.Done(), kernel.Infinite)
			closeHandle(fo)
		}
		apps.finish()
	})
	k.PsCreateSystemThread("app B", 8, func() {
		fo := open("B")
		r := issue(fo, "read B0")
		k.KeWaitForSingleObject(r.Done(), kernel.Infinite)
		closeHandle(fo)
		apps.finish()
	})
	k.PsCreateSystemThread("canceller", 8, func() {
		k.KeWaitForSingleObject(issuedA, kernel.Infinite)
		cancelAfterChoice(env, "iocsq: cancel read A1 (×20µs; 0 = never)", 6, func() { k.IoCancelIrp(readA1) })
		apps.finish()
	})
	k.PsCreateSystemThread("unloader", 8, func() {
		k.KeWaitForSingleObject(apps.done, kernel.Infinite)
		env.BeginDrain()
		dev.unload()
	})
}
