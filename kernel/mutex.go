package kernel

import "fmt"

// KMUTEX is a kernel mutex (REFERENCE §4.8): a dispatcher object a thread
// acquires by waiting on it (KeWaitForSingleObject and friends) and
// releases with KeReleaseMutex. Ownership is recursive; each acquisition
// needs its own release. While a thread owns one its normal kernel APCs are
// disabled, as if it were in a critical region. Its signal state follows
// WRK: 1 when free, 1 − n when owned n times.
type KMUTEX struct {
	dispatcherHeader
	owner *Thread
}

// KeInitializeMutex returns a free mutex named name. level is accepted for
// the routine's shape and ignored, as Windows ignores it.
// IRQL: any (REFERENCE §4.8).
func (k *Kernel) KeInitializeMutex(name string, level uint32) *KMUTEX {
	m := &KMUTEX{}
	m.init(objMutex, "mutex "+name, false, 1)
	m.mutex = m
	return m
}

// take makes t the owner (or adds one recursion) when its wait is
// satisfied.
func (m *KMUTEX) take(t *Thread) {
	m.state--
	if m.owner == t {
		return
	}
	m.owner = t
	t.criticalRegion++ // the owner runs with normal kernel APCs off
	t.owned = append(t.owned, ownedLock{m.name, m})
}

// Owner returns the owning thread, nil when free (for assertions).
func (m *KMUTEX) Owner() *Thread { return m.owner }

// KeReadStateMutex returns the signal state: 1 when free, ≤ 0 when owned.
// IRQL: ≤ DISPATCH_LEVEL as Microsoft documents; the model does not check it (REFERENCE §4.8).
func (k *Kernel) KeReadStateMutex(m *KMUTEX) int32 {
	k.enter("KeReadStateMutex")
	return m.state
}

// KeReleaseMutex releases one acquisition of m by the calling thread and
// returns the previous signal state. IRQL ≤ DISPATCH_LEVEL. A caller that
// does not own m gets the exception STATUS_MUTANT_NOT_OWNED, which nothing
// in a system thread handles: SYSTEM_THREAD_EXCEPTION_NOT_HANDLED 0x7E
// with P1 = 0xC0000046 (KMODE_EXCEPTION_NOT_HANDLED 0x1E from a DPC or
// ISR). The last release wakes the first waiter, which becomes the owner
// (REFERENCE §4.8). With wait true the caller stays at DISPATCH_LEVEL
// until its next wait, as KeSetEvent does (REFERENCE §4.5).
func (k *Kernel) KeReleaseMutex(m *KMUTEX, wait bool) int32 {
	if m == nil {
		k.nilObject("KeReleaseMutex", "Mutex", touchUnderDispatch)
	}
	x := k.enter("KeReleaseMutex")
	k.checkIrqlAtMost(x, "KeReleaseMutex", DISPATCH_LEVEL)
	t := x.thread
	if t == nil || m.owner != t {
		k.raiseUnhandled(x, "KeReleaseMutex", STATUS_MUTANT_NOT_OWNED,
			fmt.Sprintf("%s released %s, owned by %s", x.name, m.name, m.ownerName()))
	}
	prev := m.state
	m.state++
	k.emit(x, KindLock, WhatRelease, m.name, int64(m.state), 0)
	if m.state == 1 {
		m.owner = nil
		t.criticalRegion--
		t.dropOwned(m)
		k.wakeWaiters(&m.dispatcherHeader, MUTANT_INCREMENT)
	}
	k.holdForWait(x, wait)
	k.deliverIfPending(x) // normal kernel APCs are enabled again (REFERENCE §4.10)
	return prev
}

// MUTANT_INCREMENT is the priority increment a mutex release gives the
// thread it wakes (WRK KeReleaseMutex passes 1).
const MUTANT_INCREMENT = 1

func (m *KMUTEX) ownerName() string {
	if m.owner == nil {
		return "nobody"
	}
	return m.owner.name
}

// raiseUnhandled models an exception raised by a kernel routine that the
// simulated caller does not handle: in a thread it is bug check 0x7E, in a
// DPC or ISR 0x1E, with the exception code as P1.
func (k *Kernel) raiseUnhandled(x *exec, api string, st NTSTATUS, detail string) {
	code := SYSTEM_THREAD_EXCEPTION_NOT_HANDLED
	if x.kind != execThread {
		code = KMODE_EXCEPTION_NOT_HANDLED
	}
	k.bugCheck(x, api, code, uint64(st), 0, 0, 0, fmt.Sprintf("%v raised: %s", st, detail))
}

// heldMutex returns a KMUTEX t still owns, or nil.
func (t *Thread) heldMutex() *KMUTEX {
	for _, o := range t.owned {
		if m, ok := o.obj.(*KMUTEX); ok {
			return m
		}
	}
	return nil
}
