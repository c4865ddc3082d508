package kernel

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
)

type objKind uint8

const (
	objEvent objKind = iota
	objSemaphore
	objTimer
	objThread
	objQueue
	objMutex
)

// dispatcherHeader is the waitable part of a dispatcher object.
type dispatcherHeader struct {
	kind    objKind
	name    string
	state   int32        // > 0: signalled (events 0/1, semaphore count)
	autoClr bool         // synchronization objects: satisfying a wait consumes the signal
	limit   int32        // semaphore limit
	waiters []*waitBlock // FIFO
	thread  *Thread      // for thread objects: whose termination it is
	mutex   *KMUTEX      // for mutex objects: the owner bookkeeping
	aid     int32        // access number (access.go)
}

func (h *dispatcherHeader) init(kind objKind, name string, autoClr bool, state int32) {
	h.kind, h.name, h.autoClr, h.state = kind, name, autoClr, state
}

func (h *dispatcherHeader) hdr() *dispatcherHeader { return h }

// Waitable is a dispatcher object a thread can wait on: *KEVENT,
// *KSEMAPHORE, *KTIMER, a thread's Object().
type Waitable interface {
	hdr() *dispatcherHeader
}

// waitBlock links one waiting thread to one object.
type waitBlock struct {
	t     *Thread
	obj   *dispatcherHeader
	index int
}

// waitState is a thread's current wait.
type waitState struct {
	blocks    []waitBlock
	all       bool
	status    NTSTATUS
	timer     des.Timer
	onTimeout des.Handler // created once per thread: arming a timeout allocates nothing
	api       string
	since     des.Time // when this wait began (for deadlock reports)
	lock      lockWait // set when blocked on a lock instead of objects
	queued    any      // the entry handed over by KeInsertQueue
	inQueue   bool     // blocked in KeRemoveQueue

	// REFERENCE §4.10: how the wait reacts to APCs and alerts.
	mode          KPROCESSOR_MODE
	alertable     bool
	interruptible bool // a dispatcher-object wait a kernel APC may interrupt
	irql          IRQL // the IRQL the thread waits at (WaitIrql)
}

// WAIT_TYPE for KeWaitForMultipleObjects.
type WAIT_TYPE uint8

// Wait types.
const (
	WaitAll WAIT_TYPE = iota
	WaitAny
)

// Timeout values for waits: Infinite waits forever; a zero timeout polls.
// Any other timeout, delay or timer due time is relative: a positive
// duration, or a negative one read as NT's relative form (the LARGE_INTEGER
// of KeWaitForSingleObject, KeDelayExecutionThread and KeSetTimer is
// negative for "this long from now"), so -5*des.Millisecond waits 5 ms
// (REFERENCE §3.7).
const Infinite des.Duration = -1

// ntRelative reads a wait timeout or delay written in NT's relative form
// (negative) as the model's positive duration; Infinite stays Infinite
// (REFERENCE §3.7).
func ntRelative(d des.Duration) des.Duration {
	if d < 0 && d != Infinite {
		return -d
	}
	return d
}

// EVENT_TYPE for KeInitializeEvent.
type EVENT_TYPE uint8

// Event types (REFERENCE §1.1 context; KEVENT).
const (
	NotificationEvent EVENT_TYPE = iota
	SynchronizationEvent
)

// Priority increments for waits satisfied by a signal (REFERENCE §4.4).
const (
	IO_NO_INCREMENT       = 0
	EVENT_INCREMENT       = 1
	SEMAPHORE_INCREMENT   = 1
	IO_CD_ROM_INCREMENT   = 1
	IO_DISK_INCREMENT     = 1
	IO_NETWORK_INCREMENT  = 2
	IO_SERIAL_INCREMENT   = 2
	IO_KEYBOARD_INCREMENT = 6
	IO_MOUSE_INCREMENT    = 6
	IO_SOUND_INCREMENT    = 8
)

// KEVENT is a kernel event: notification (stays signalled, wakes all) or
// synchronization (wakes one, resets itself).
type KEVENT struct{ dispatcherHeader }

// KeInitializeEvent returns an event named name.
// IRQL: any (REFERENCE §4.5).
func (k *Kernel) KeInitializeEvent(name string, typ EVENT_TYPE, signalled bool) *KEVENT {
	k.tick()
	e := k.rc.events.Take(k.sim)
	k.resetEvent(e, k.joined(e.name, "event ", name), typ, signalled)
	return e
}

// resetEvent makes e, new or recycled, a fresh event named name, keeping
// only its waiter buffer (see recycler).
func (k *Kernel) resetEvent(e *KEVENT, name string, typ EVENT_TYPE, signalled bool) {
	s := int32(0)
	if signalled {
		s = 1
	}
	*e = KEVENT{dispatcherHeader{waiters: e.waiters[:0]}}
	e.init(objEvent, name, typ == SynchronizationEvent, s)
	k.numberAtBirth(&e.aid)
}

// KeSetEvent signals e, waking waiters with the given priority increment,
// and returns the previous state. With wait true the caller, a thread at
// PASSIVE_LEVEL, returns at DISPATCH_LEVEL and must call a KeWaitXxx routine
// next, which restores its IRQL (wait true above PASSIVE_LEVEL is checked
// as an IRQL violation, from a DPC it is ATTEMPTED_SWITCH_FROM_DPC 0xB8).
// IRQL: ≤ DISPATCH_LEVEL, checked (REFERENCE §4.5).
func (k *Kernel) KeSetEvent(e *KEVENT, increment int, wait bool) bool {
	if e == nil {
		k.nilObject("KeSetEvent", "Event", touchAtCaller)
	}
	x := k.enterOn("KeSetEvent", &e.aid, des.AccessSync)
	k.checkIrqlAtMost(x, "KeSetEvent", DISPATCH_LEVEL)
	prev := e.state > 0
	k.emit(x, KindSignal, WhatKeSetEvent, e.name, int64(increment), 0)
	e.state = 1
	k.wakeWaiters(&e.dispatcherHeader, increment)
	k.holdForWait(x, wait)
	return prev
}

// holdForWait implements the Wait argument of the signalling routines
// (KeSetEvent, KeReleaseSemaphore, KeReleaseMutex): the caller, a thread at
// PASSIVE_LEVEL, returns at DISPATCH_LEVEL so that it can start its wait
// atomically; the next wait restores the saved IRQL (WRK WaitNext and
// WaitIrql, REFERENCE §4.5). Until then dispatching and DPCs are off on
// its processor, and anything illegal at DISPATCH_LEVEL fails as such.
func (k *Kernel) holdForWait(x *exec, wait bool) {
	if !wait {
		return
	}
	if x.kind != execThread || x.irql != PASSIVE_LEVEL {
		k.checkIrqlAtMost(x, "Wait=TRUE signal", PASSIVE_LEVEL)
		if x.kind != execThread {
			k.bugCheck(x, "Wait=TRUE signal", ATTEMPTED_SWITCH_FROM_DPC, 0, 0, 0, 0, "Wait=TRUE from a DPC or ISR")
		}
	}
	t := x.thread
	t.waitNext, t.waitIrql = true, x.irql
	k.setIrql(x, DISPATCH_LEVEL)
}

// KeResetEvent clears e and returns the previous state.
// IRQL: ≤ DISPATCH_LEVEL, checked (REFERENCE §4.5).
func (k *Kernel) KeResetEvent(e *KEVENT) bool {
	if e == nil {
		k.nilObject("KeResetEvent", "Event", touchUnderDispatch)
	}
	x := k.enterOn("KeResetEvent", &e.aid, des.AccessSync)
	k.checkIrqlAtMost(x, "KeResetEvent", DISPATCH_LEVEL)
	k.progressed()
	prev := e.state > 0
	e.state = 0
	return prev
}

// KeClearEvent clears e.
// IRQL: ≤ DISPATCH_LEVEL, checked (REFERENCE §4.5).
func (k *Kernel) KeClearEvent(e *KEVENT) {
	if e == nil {
		k.nilObject("KeClearEvent", "Event", writeAtCaller)
	}
	k.KeResetEvent(e)
}

// KeReadStateEvent returns whether e is signalled.
// IRQL: ≤ DISPATCH_LEVEL as Microsoft documents; the model does not check it (REFERENCE §4.5).
func (k *Kernel) KeReadStateEvent(e *KEVENT) bool {
	if e == nil {
		k.nilObject("KeReadStateEvent", "Event", touchAtCaller)
	}
	k.enter("KeReadStateEvent")
	return e.state > 0
}

// KSEMAPHORE is a counting semaphore.
type KSEMAPHORE struct{ dispatcherHeader }

// KeInitializeSemaphore returns a semaphore with count and limit.
// IRQL: PASSIVE_LEVEL as Microsoft documents; the model does not check it (REFERENCE §4.5).
func (k *Kernel) KeInitializeSemaphore(name string, count, limit int) *KSEMAPHORE {
	k.tick()
	s := k.rc.semaphores.Take(k.sim)
	full := k.joined(s.name, "semaphore ", name)
	*s = KSEMAPHORE{dispatcherHeader{waiters: s.waiters[:0]}} // recycled: keep only the waiter buffer
	s.init(objSemaphore, full, true, int32(count))
	s.limit = int32(limit)
	k.numberAtBirth(&s.aid)
	return s
}

// KeReleaseSemaphore adds adjustment to the count and returns the previous
// count. Exceeding the limit raises STATUS_SEMAPHORE_LIMIT_EXCEEDED, which
// nothing in a system thread handles: SYSTEM_THREAD_EXCEPTION_NOT_HANDLED
// 0x7E with P1 = 0xC0000047 (0x1E from a DPC or ISR), as for
// KeReleaseMutex (REFERENCE §4.8).
// IRQL: ≤ DISPATCH_LEVEL, checked (REFERENCE §4.5).
func (k *Kernel) KeReleaseSemaphore(s *KSEMAPHORE, increment, adjustment int, wait bool) int {
	if s == nil {
		k.nilObject("KeReleaseSemaphore", "Semaphore", touchUnderDispatch)
	}
	x := k.enterOn("KeReleaseSemaphore", &s.aid, des.AccessSync)
	k.checkIrqlAtMost(x, "KeReleaseSemaphore", DISPATCH_LEVEL)
	prev := int(s.state)
	if int64(s.state)+int64(adjustment) > int64(s.limit) {
		k.raiseUnhandled(x, "KeReleaseSemaphore", STATUS_SEMAPHORE_LIMIT_EXCEEDED,
			fmt.Sprintf("%s released %s beyond its limit (count %d + %d > limit %d)", x.name, s.name, s.state, adjustment, s.limit))
	}
	s.state += int32(adjustment)
	k.emit(x, KindSignal, WhatKeReleaseSemaphore, s.name, int64(adjustment), int64(s.state))
	k.wakeWaiters(&s.dispatcherHeader, increment)
	k.holdForWait(x, wait)
	return prev
}

// KeReadStateSemaphore returns the current count.
// IRQL: ≤ DISPATCH_LEVEL as Microsoft documents; the model does not check it (REFERENCE §4.5).
func (k *Kernel) KeReadStateSemaphore(s *KSEMAPHORE) int {
	k.tick()
	return int(s.state)
}

// signal sets h's state without a call cost (used by the kernel itself:
// timers, thread exit, IRP completion events).
func (k *Kernel) signal(h *dispatcherHeader, state int32, increment int) {
	h.state = state
	k.wakeWaiters(h, increment)
}

// wakeWaiters satisfies waits on h in FIFO order while it stays signalled.
func (k *Kernel) wakeWaiters(h *dispatcherHeader, increment int) {
	for i := 0; i < len(h.waiters) && h.state > 0; {
		wb := h.waiters[i]
		t := wb.t
		if t.wait.all {
			if !allSignalled(t) {
				i++
				continue
			}
			for j := range t.wait.blocks {
				t.wait.blocks[j].obj.acquire(t)
			}
			k.satisfy(t, STATUS_SUCCESS, increment)
		} else {
			h.acquire(t)
			k.satisfy(t, STATUS_WAIT_0+NTSTATUS(wb.index), increment)
		}
		// satisfy unlinked t from h.waiters, so index i is now the next one.
	}
}

// consume takes the signal a satisfied wait block uses: a unit of a
// semaphore, the whole signal of a synchronization event or timer. A
// semaphore loses a unit per satisfied block even below zero, as WRK's
// KiWaitSatisfyOther does; that happens only when one WaitAll array
// lists the semaphore more than once (REFERENCE §4.8).
func (h *dispatcherHeader) consume() {
	switch {
	case h.kind == objSemaphore:
		h.state--
	case h.autoClr && h.state > 0:
		h.state--
	}
}

// signalledFor reports whether a wait by t on h is satisfied now: h is
// signalled, or h is a mutex t already owns (recursion, REFERENCE §4.8).
// A mutex is never satisfied for a DPC's zero-timeout poll (t nil): a DPC
// cannot own one.
func (h *dispatcherHeader) signalledFor(t *Thread) bool {
	if h.mutex != nil {
		return t != nil && (h.state > 0 || h.mutex.owner == t)
	}
	return h.state > 0
}

// acquire satisfies t's wait on h: it consumes the signal of a
// synchronization object and makes t the owner of a mutex.
func (h *dispatcherHeader) acquire(t *Thread) {
	if h.mutex != nil {
		h.mutex.take(t)
		return
	}
	h.consume()
}

func allSignalled(t *Thread) bool {
	for i := range t.wait.blocks {
		if !t.wait.blocks[i].obj.signalledFor(t) {
			return false
		}
	}
	return true
}

// satisfy ends t's wait with status and readies it.
func (k *Kernel) satisfy(t *Thread, status NTSTATUS, increment int) {
	t.unlinkWaitBlocks()
	t.wait.timer.Stop()
	t.wait.lock = lockWait{}
	t.wait.status = status
	if t.queue != nil {
		t.queue.threadWoke(t)
	}
	k.adjustAfterWait(t)
	t.req = reqCompute
	k.makeReady(t, increment)
	// One record for "wait satisfied, thread ready": A = status, B = the
	// priority it is ready at (after any boost).
	k.emit(&t.exec, KindWake, WhatWake, t.name, int64(status), int64(t.priority))
	k.placeReady(t)
}

// unlinkWaitBlocks takes t off every object it waits on.
func (t *Thread) unlinkWaitBlocks() {
	for i := range t.wait.blocks {
		t.wait.blocks[i].obj.unlink(&t.wait.blocks[i])
	}
	t.wait.blocks = t.wait.blocks[:0]
}

func (h *dispatcherHeader) unlink(wb *waitBlock) {
	for i, w := range h.waiters {
		if w == wb {
			copy(h.waiters[i:], h.waiters[i+1:])
			h.waiters[len(h.waiters)-1] = nil
			h.waiters = h.waiters[:len(h.waiters)-1]
			return
		}
	}
}

// KeWaitForMutexObject is wdm.h's other name for KeWaitForSingleObject,
// used on a KMUTEX (DDI:KeWaitForMutexObject).
// IRQL: as KeWaitForSingleObject (REFERENCE §4.5, §4.8).
func (k *Kernel) KeWaitForMutexObject(m *KMUTEX, timeout des.Duration) NTSTATUS {
	return k.KeWaitForSingleObject(m, timeout)
}

// KeWaitForSingleObject waits for obj up to timeout (Infinite, or 0 to
// poll; a negative timeout is NT's relative form, REFERENCE §3.7): a
// non-alertable kernel-mode wait. Returns STATUS_WAIT_0 or
// STATUS_TIMEOUT. IRQL ≤ APC_LEVEL for a blocking wait; a zero-timeout poll
// is legal at DISPATCH_LEVEL; waiting in a DPC is ATTEMPTED_SWITCH_FROM_DPC
// 0xB8 (REFERENCE §4.5, §6.13). A kernel APC queued to the waiting thread
// runs (if deliverable) and the wait resumes (REFERENCE §4.10).
func (k *Kernel) KeWaitForSingleObject(obj Waitable, timeout des.Duration) NTSTATUS {
	if nilWaitable(obj) {
		k.nilObject("KeWaitForSingleObject", "Object", touchUnderDispatch)
	}
	x := k.enterOn("KeWaitForSingleObject", &obj.hdr().aid, des.AccessSync)
	return k.waitObjects(x, "KeWaitForSingleObject", KernelMode, false, WaitAny, timeout, obj)
}

// KeWaitForSingleObjectEx is KeWaitForSingleObject with the WaitMode and
// Alertable arguments of the real routine. An alertable wait also returns
// STATUS_ALERTED (KeAlertThread) and, in user mode, STATUS_USER_APC after
// running the thread's user APCs (REFERENCE §4.10).
// IRQL: < DISPATCH_LEVEL from a thread; at DISPATCH_LEVEL only with a zero timeout (checked, REFERENCE §4.5).
func (k *Kernel) KeWaitForSingleObjectEx(obj Waitable, mode KPROCESSOR_MODE, alertable bool, timeout des.Duration) NTSTATUS {
	if nilWaitable(obj) {
		k.nilObject("KeWaitForSingleObject", "Object", touchUnderDispatch)
	}
	x := k.enterOn("KeWaitForSingleObject", &obj.hdr().aid, des.AccessSync)
	return k.waitObjects(x, "KeWaitForSingleObject", mode, alertable, WaitAny, timeout, obj)
}

// MAXIMUM_WAIT_OBJECTS is the most objects one KeWaitForMultipleObjects may
// wait on (wdm.h).
const MAXIMUM_WAIT_OBJECTS = 64

// KeWaitForMultipleObjects waits for any or all of objs. The call stands
// for one with a WaitBlockArray (without one C allows THREAD_WAIT_OBJECTS,
// 3): more than MAXIMUM_WAIT_OBJECTS (64) objects is bug check 0xC
// MAXIMUM_WAIT_OBJECTS_EXCEEDED (BC:0xC; REFERENCE §1.8).
// IRQL: < DISPATCH_LEVEL from a thread; at DISPATCH_LEVEL only with a zero timeout (checked, REFERENCE §4.5).
func (k *Kernel) KeWaitForMultipleObjects(objs []Waitable, typ WAIT_TYPE, timeout des.Duration) NTSTATUS {
	k.checkWaitObjects("KeWaitForMultipleObjects", objs)
	x := k.enterOn("KeWaitForMultipleObjects", waitID(objs), des.AccessSync)
	if len(objs) > MAXIMUM_WAIT_OBJECTS {
		k.bugCheck(x, "KeWaitForMultipleObjects", MAXIMUM_WAIT_OBJECTS_EXCEEDED, 0, 0, 0, 0,
			fmt.Sprintf("KeWaitForMultipleObjects on %d objects: at most MAXIMUM_WAIT_OBJECTS (%d) with a wait block array", len(objs), MAXIMUM_WAIT_OBJECTS))
	}
	return k.waitObjects(x, "KeWaitForMultipleObjects", KernelMode, false, typ, timeout, objs...)
}

// KeDelayExecutionThread suspends the calling thread for interval (a
// negative interval is NT's relative form: the same length; REFERENCE §3.7).
// IRQL: < DISPATCH_LEVEL from a thread, checked as for a wait (Microsoft documents ≤ APC_LEVEL; REFERENCE §4.5, §3.7).
func (k *Kernel) KeDelayExecutionThread(interval des.Duration) NTSTATUS {
	return k.KeDelayExecutionThreadEx(KernelMode, false, interval)
}

// KeDelayExecutionThreadEx is KeDelayExecutionThread with WaitMode and
// Alertable: an alertable delay ends early with STATUS_ALERTED or
// STATUS_USER_APC like an alertable wait (REFERENCE §4.10).
// IRQL: < DISPATCH_LEVEL from a thread, checked as for a wait (Microsoft documents ≤ APC_LEVEL; REFERENCE §4.5).
func (k *Kernel) KeDelayExecutionThreadEx(mode KPROCESSOR_MODE, alertable bool, interval des.Duration) NTSTATUS {
	x := k.enter("KeDelayExecutionThread")
	if interval = ntRelative(interval); interval < 0 {
		interval = 0
	}
	return k.waitObjects(x, "KeDelayExecutionThread", mode, alertable, WaitAny, interval)
}

func (k *Kernel) waitObjects(x *exec, api string, mode KPROCESSOR_MODE, alertable bool, typ WAIT_TYPE, timeout des.Duration, objs ...Waitable) NTSTATUS {
	timeout = ntRelative(timeout)
	if t := x.thread; t != nil && t.waitNext {
		t.waitNext = false
		k.lowerTo(x, t.waitIrql) // the wait a Wait=TRUE signal promised
	}
	if timeout != 0 {
		k.checkCanBlock(x, api, timeout)
	}
	t := x.thread
	start, left := k.sim.Now(), timeout
	for {
		if st, ok := k.trySatisfy(t, typ, objs); ok {
			// "satisfied": the wait returned at once (B = the status).
			k.emit(x, KindWait, WhatSatisfied, firstName(objs), int64(timeout), int64(st))
			return st
		}
		if t != nil {
			if st, ok := t.waitAbort(mode, alertable); ok {
				return k.waitAborted(x, st)
			}
		}
		if left == 0 {
			return STATUS_TIMEOUT
		}
		if t.apcPending && t.kernelApcDeliverable(x.irql) {
			k.deliverApcs(x) // WRK: a pending kernel APC runs before the thread blocks
			left = k.remainingTimeout(start, timeout)
			continue
		}
		k.blockOn(x, api, typ, left, objs)
		t.wait.mode, t.wait.alertable, t.wait.interruptible, t.wait.irql = mode, alertable, true, x.irql
		k.block(t)
		t.wait.interruptible = false
		if t.wait.status != STATUS_KERNEL_APC {
			if t.wait.status == STATUS_USER_APC || t.wait.status == STATUS_ALERTED {
				return k.waitAborted(x, t.wait.status)
			}
			return t.wait.status
		}
		k.deliverApcs(x) // then wait again for what is left (REFERENCE §4.10)
		left = k.remainingTimeout(start, timeout)
	}
}

// waitAborted ends an alertable wait early: STATUS_USER_APC after running
// the user APCs, or STATUS_ALERTED.
func (k *Kernel) waitAborted(x *exec, st NTSTATUS) NTSTATUS {
	k.emit(x, KindAPC, WhatWaitAborted, x.name, int64(st), 0)
	if st == STATUS_USER_APC {
		k.deliverUserApcs(x)
	}
	return st
}

// blockOn links the calling thread's wait blocks to objs and arms its
// timeout; the caller then blocks.
func (k *Kernel) blockOn(x *exec, api string, typ WAIT_TYPE, timeout des.Duration, objs []Waitable) {
	t := x.thread
	if cap(t.wait.blocks) < len(objs) {
		t.wait.blocks = make([]waitBlock, 0, len(objs))
	}
	t.wait.blocks = t.wait.blocks[:len(objs)]
	for i, o := range objs {
		h := o.hdr()
		t.wait.blocks[i] = waitBlock{t: t, obj: h, index: i}
		h.waiters = append(h.waiters, &t.wait.blocks[i])
	}
	t.wait.all = typ == WaitAll
	t.wait.api, t.wait.since = api, k.sim.Now()
	name := "delay"
	if len(objs) > 0 {
		name = objs[0].hdr().name
	}
	k.emit(x, KindWait, des.What(api), name, int64(timeout), int64(len(objs))) // the blocking routine's name
	t.polling = false
	k.armWaitTimeout(t, timeout)
}

// trySatisfy completes a wait at once if its objects allow.
func (k *Kernel) trySatisfy(t *Thread, typ WAIT_TYPE, objs []Waitable) (NTSTATUS, bool) {
	if len(objs) == 0 {
		return 0, false
	}
	if typ == WaitAny {
		for i, o := range objs {
			if h := o.hdr(); h.signalledFor(t) {
				h.acquire(t)
				return STATUS_WAIT_0 + NTSTATUS(i), true
			}
		}
		return 0, false
	}
	for _, o := range objs {
		if !o.hdr().signalledFor(t) {
			return 0, false
		}
	}
	for _, o := range objs {
		o.hdr().acquire(t)
	}
	return STATUS_SUCCESS, true
}

// armWaitTimeout schedules the end of t's wait after timeout (> 0 only;
// Infinite and polls arm nothing).
func (k *Kernel) armWaitTimeout(t *Thread, timeout des.Duration) {
	if timeout <= 0 {
		return
	}
	if t.wait.onTimeout == nil {
		t.wait.onTimeout = func() { t.k.waitTimedOut(t) } // t.k: kept by a recycled t
	}
	t.wait.timer = k.sim.After(timeout, t.wait.onTimeout)
	t.pollEvery = timeout
}

// waitTimedOut ends t's wait with STATUS_TIMEOUT. From the timeout until t
// blocks again it is polling: its wake, dispatch and next wait are its
// period, not progress (stall.go).
func (k *Kernel) waitTimedOut(t *Thread) {
	if t.state != Waiting {
		return
	}
	if k.pollFiring(t) {
		return
	}
	t.polling = true
	k.satisfy(t, STATUS_TIMEOUT, 0)
}

// block takes the calling thread off its processor until satisfy readies
// it. A thread associated with a KQUEUE releases its concurrency slot.
func (k *Kernel) block(t *Thread) {
	t.state = Waiting
	t.waitSeq++
	if t.queue != nil {
		t.queue.threadBlocked(t)
	}
	t.req = reqBlock
	t.proc.Yield()
}

// checkCanBlock enforces that blocking waits happen below DISPATCH_LEVEL
// in a thread (REFERENCE §4.5 and §1.8: 0xB8 from a DPC; Verifier 0xC4
// 0x120 above DISPATCH, 0x121 at DISPATCH with no timeout, 0x122 with one).
func (k *Kernel) checkCanBlock(x *exec, api string, timeout des.Duration) {
	if x.kind != execThread {
		k.bugCheck(x, api, ATTEMPTED_SWITCH_FROM_DPC, 0, 0, 0, 0, "blocking wait from a DPC or ISR")
	}
	if x.dpcRunning != nil {
		// A threaded DPC runs in a thread at PASSIVE_LEVEL, but keeps the
		// restrictions of a DPC: it must not block (REFERENCE §4.21).
		k.bugCheck(x, api, ATTEMPTED_SWITCH_FROM_DPC, 0, 0, 0, 0, "blocking wait from threaded DPC "+x.dpcRunning.Name)
	}
	if x.irql < DISPATCH_LEVEL {
		return
	}
	if !k.cfg.Verifier {
		k.bugCheck(x, api, IRQL_NOT_LESS_OR_EQUAL, 0, uint64(x.irql), 0, 0, "blocking wait at IRQL ≥ DISPATCH_LEVEL")
	}
	code := uint64(0x122)
	switch {
	case x.irql > DISPATCH_LEVEL:
		code = 0x120
	case timeout == Infinite:
		code = 0x121
	}
	k.bugCheck(x, api, DRIVER_VERIFIER_DETECTED_VIOLATION, code, uint64(x.irql), 0, 0,
		fmt.Sprintf("wait at %v (only a zero-timeout poll is legal at DISPATCH_LEVEL)", x.irql))
}

// checkIrqlAtMost enforces a routine's maximum caller IRQL.
func (k *Kernel) checkIrqlAtMost(x *exec, api string, max IRQL) {
	if irql := x.ruleIrql(); irql > max {
		k.bugCheck(x, api, IRQL_NOT_LESS_OR_EQUAL, 0, uint64(irql), 0, 0,
			fmt.Sprintf("%s called at %v; it requires IRQL ≤ %v%s", api, irql, max, threadedDpcNote(x)))
	}
}

func firstName(objs []Waitable) string {
	if len(objs) == 0 {
		return "delay"
	}
	return objs[0].hdr().name
}
