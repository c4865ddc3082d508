package kernel

import "fmt"

// Threaded DPCs (REFERENCE §4.21). Windows runs a threaded DPC at
// PASSIVE_LEVEL in a real-time thread of the processor it is queued to
// (priority 31), which normal DPCs and interrupts preempt but threads do
// not; with threaded DPCs disabled it runs as an ordinary DPC at
// DISPATCH_LEVEL. Its routine must therefore be correct at either IRQL:
// take spin locks with KeAcquireSpinLockForDpc, not
// KeAcquireSpinLockAtDpcLevel.

// threadedDpcPriority is the priority of a processor's threaded-DPC thread.
const threadedDpcPriority = HIGH_PRIORITY

// KeInitializeThreadedDpc returns a threaded DPC: KeInsertQueueDpc queues
// it to its processor's threaded-DPC thread, which runs its routine at
// PASSIVE_LEVEL (at DISPATCH_LEVEL when Config.DisableThreadedDpcs is set).
// Everything else — importance, target processor, KeRemoveQueueDpc,
// KeFlushQueuedDpcs — works as for KeInitializeDpc's DPCs.
// IRQL: any (REFERENCE §4.21).
func (k *Kernel) KeInitializeThreadedDpc(name string, routine func(dpc *KDPC, ctx, arg1, arg2 any), ctx any) *KDPC {
	d := k.KeInitializeDpc(name, routine, ctx)
	d.threaded = true
	return d
}

// queueThreadedDpc queues d (already marked queued on c) for c's
// threaded-DPC thread and wakes the thread.
func (k *Kernel) queueThreadedDpc(x *exec, d *KDPC, c *Processor) {
	c.tdpcQueue = enqueueDpc(c.tdpcQueue, d)
	k.emit(x, KindDPC, WhatQueueDpc, d.objName(), int64(c.id), 1)
	if c.tdpcThread == nil {
		k.startThreadedDpcThread(c)
	}
	k.signal(&c.tdpcWake.dispatcherHeader, 1, 0)
}

// startThreadedDpcThread creates c's threaded-DPC thread: priority 31,
// bound to c, belonging to no driver.
func (k *Kernel) startThreadedDpcThread(c *Processor) {
	name := "tdpc/" + c.name
	c.tdpcWake = k.KeInitializeEvent(name+" wake", SynchronizationEvent, false)
	t := k.newThread(name, threadedDpcPriority, func() { k.drainThreadedDpcs(c) })
	t.dpcThread = true
	t.ideal, t.lastCPU = c.id, c.id
	t.affinity, t.userAff = 1<<uint(c.id), 1<<uint(c.id)
	c.tdpcThread = t // before it starts: its body reads it
	k.startThread(t)
}

// drainThreadedDpcs is the body of c's threaded-DPC thread: it runs the
// queued threaded DPCs in order at PASSIVE_LEVEL, then waits for more.
func (k *Kernel) drainThreadedDpcs(c *Processor) {
	t := c.tdpcThread
	e := &t.exec
	for {
		for len(c.tdpcQueue) > 0 {
			d := c.tdpcQueue[0]
			copy(c.tdpcQueue, c.tdpcQueue[1:])
			c.tdpcQueue = c.tdpcQueue[:len(c.tdpcQueue)-1]
			k.runThreadedDpc(e, c, d)
		}
		if k.dpcFlush != nil && len(k.dpcFlush.waiters) > 0 {
			k.signal(&k.dpcFlush.dispatcherHeader, 1, 0)
		}
		k.waitObjects(e, "KiExecuteDpc", KernelMode, false, WaitAny, Infinite, c.tdpcWake)
	}
}

// runThreadedDpc runs one threaded DPC in its driver's image and checks
// that it returns at PASSIVE_LEVEL.
func (k *Kernel) runThreadedDpc(e *exec, c *Processor, d *KDPC) {
	d.queued = false
	k.emit(e, KindDPC, WhatRunDpc, d.objName(), 1, 0)
	if d.image != nil && d.image.unloaded {
		k.unloadedDpc(e, d) // REFERENCE §6.8
	}
	c.tdpcRunning = true
	e.image, e.dpcRunning = d.image, d
	d.Routine(d, d.Context, d.arg1, d.arg2)
	e.image, e.dpcRunning = nil, nil
	c.tdpcRunning = false
	if e.irql != PASSIVE_LEVEL {
		k.bugCheck(e, "threaded DPC return", IRQL_NOT_LESS_OR_EQUAL, 0, uint64(e.irql), 0, 0,
			fmt.Sprintf("threaded DPC %s returned at %v, not PASSIVE_LEVEL", d.Name, e.irql))
	}
}

// KeAcquireSpinLockForDpc acquires l from a threaded DPC routine: at
// PASSIVE_LEVEL it raises to DISPATCH_LEVEL first, at DISPATCH_LEVEL (the
// routine running as an ordinary DPC) it leaves IRQL alone. It returns
// the IRQL to pass to KeReleaseSpinLockForDpc.
// IRQL: ≤ DISPATCH_LEVEL, checked (REFERENCE §4.21).
func (k *Kernel) KeAcquireSpinLockForDpc(l *KSPIN_LOCK) IRQL {
	return k.acquireRaising(k.enter("KeAcquireSpinLockForDpc"), l, "KeAcquireSpinLockForDpc")
}

// KeReleaseSpinLockForDpc releases l and returns to old, the IRQL
// KeAcquireSpinLockForDpc returned.
// IRQL: DISPATCH_LEVEL, checked (REFERENCE §4.21).
func (k *Kernel) KeReleaseSpinLockForDpc(l *KSPIN_LOCK, old IRQL) {
	x := k.enter("KeReleaseSpinLockForDpc")
	if x.irql != DISPATCH_LEVEL {
		k.verifierOr0A(x, "KeReleaseSpinLockForDpc", 0x32, fmt.Sprintf("called at %v, not DISPATCH_LEVEL", x.irql))
	}
	k.spinRelease(x, l, "KeReleaseSpinLockForDpc")
	k.lowerTo(x, old)
}

// KeAcquireInStackQueuedSpinLockForDpc is KeAcquireSpinLockForDpc for a
// queued spin lock, saving the IRQL to return to in h.
// IRQL: ≤ DISPATCH_LEVEL, checked (REFERENCE §4.21).
func (k *Kernel) KeAcquireInStackQueuedSpinLockForDpc(l *KSPIN_LOCK, h *KLOCK_QUEUE_HANDLE) {
	h.OldIrql = k.KeAcquireSpinLockForDpc(l)
	h.lock = l
}

// KeReleaseInStackQueuedSpinLockForDpc releases the lock h holds and
// returns to the IRQL its acquire saved.
// IRQL: DISPATCH_LEVEL, checked (REFERENCE §4.21).
func (k *Kernel) KeReleaseInStackQueuedSpinLockForDpc(h *KLOCK_QUEUE_HANDLE) {
	k.KeReleaseInStackQueuedSpinLock(h)
}
