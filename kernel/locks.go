package kernel

import (
	"fmt"
	"strings"

	"github.com/wqsim/wqsim/des"
)

// lockWait records what a thread or exec is blocked on when it is a lock,
// for wait-for graphs.
type lockWait struct {
	name  string
	owner func() string
	next  func() *Thread // the owner thread, to follow cycles
	// self is set when the waiter itself holds what keeps the lock from
	// it (an ERESOURCE sharer asking for more, REFERENCE §4.6): its edge
	// leads back to itself whoever else owns the lock.
	self bool
}

// KSPIN_LOCK is a spin lock. Acquiring it raises to DISPATCH_LEVEL;
// contenders spin, keeping their processor busy, and get it in FIFO order.
type KSPIN_LOCK struct {
	Name     string
	obj      string // "spinlock NAME", built once for traces
	owner    *exec
	spinners []*exec
	aid      int32 // access number (access.go)
}

// spinLocksHeldBy names, for a report, the spin locks x holds:
// " holding spinlock a, spinlock b (never released)", or "".
func (k *Kernel) spinLocksHeldBy(x *exec) string {
	var held []string
	for _, l := range k.rc.spinLocks.Taken(k.sim) {
		if l.owner == x {
			held = append(held, l.obj)
		}
	}
	if len(held) == 0 {
		return ""
	}
	return " holding " + strings.Join(held, ", ") + " (acquired and never released)"
}

// KeInitializeSpinLock returns a spin lock named name.
// IRQL: any (REFERENCE §4.6).
func (k *Kernel) KeInitializeSpinLock(name string) *KSPIN_LOCK {
	k.tick()
	l := k.rc.spinLocks.Take(k.sim)
	*l = KSPIN_LOCK{Name: name, obj: k.joined(l.obj, "spinlock ", name), spinners: l.spinners[:0]} // recycled: see recycler
	k.numberAtBirth(&l.aid)
	return l
}

func (l *KSPIN_LOCK) objName() string {
	if l.obj == "" { // a lock built as a literal
		l.obj = "spinlock " + l.Name
	}
	return l.obj
}

// KeAcquireSpinLock raises to DISPATCH_LEVEL, acquires l and returns the
// old IRQL (REFERENCE §4.6). Caller IRQL ≤ DISPATCH_LEVEL (Verifier 0xC4
// P1=0x42 above it, §1.8). Re-acquiring a lock the caller holds is
// SPIN_LOCK_ALREADY_OWNED 0x0F.
func (k *Kernel) KeAcquireSpinLock(l *KSPIN_LOCK) IRQL {
	if l == nil {
		k.nilObject("KeAcquireSpinLock", "SpinLock", touchAtDispatch)
	}
	x := k.enterOn("KeAcquireSpinLock", &l.aid, des.AccessLock)
	if x.irql > DISPATCH_LEVEL {
		k.verifierOr0A(x, "KeAcquireSpinLock", 0x42, "KeAcquireSpinLock above DISPATCH_LEVEL")
	}
	old := x.irql
	k.setIrql(x, DISPATCH_LEVEL)
	k.spinAcquire(x, l, "KeAcquireSpinLock")
	return old
}

// KeAcquireSpinLockAtDpcLevel acquires l without changing IRQL; the caller
// must already be at DISPATCH_LEVEL (Verifier 0xC4 P1=0x40).
// IRQL: DISPATCH_LEVEL, checked (REFERENCE §4.6).
func (k *Kernel) KeAcquireSpinLockAtDpcLevel(l *KSPIN_LOCK) {
	if l == nil {
		k.nilObject("KeAcquireSpinLockAtDpcLevel", "SpinLock", touchAtDispatch)
	}
	x := k.enterOn("KeAcquireSpinLockAtDpcLevel", &l.aid, des.AccessLock)
	if x.irql != DISPATCH_LEVEL {
		k.verifierOr0A(x, "KeAcquireSpinLockAtDpcLevel", 0x40, fmt.Sprintf("called at %v, not DISPATCH_LEVEL", x.irql))
	}
	k.spinAcquire(x, l, "KeAcquireSpinLockAtDpcLevel")
}

// KeReleaseSpinLock releases l and lowers IRQL to old. Releasing a lock the
// caller does not hold is SPIN_LOCK_NOT_OWNED 0x10; releasing when not at
// DISPATCH_LEVEL is Verifier 0xC4 P1=0x32.
// IRQL: DISPATCH_LEVEL, checked (REFERENCE §4.6).
func (k *Kernel) KeReleaseSpinLock(l *KSPIN_LOCK, old IRQL) {
	if l == nil {
		k.nilObject("KeReleaseSpinLock", "SpinLock", touchAtDispatch)
	}
	x := k.enterOn("KeReleaseSpinLock", &l.aid, des.AccessLock)
	if x.irql != DISPATCH_LEVEL {
		k.verifierOr0A(x, "KeReleaseSpinLock", 0x32, fmt.Sprintf("called at %v, not DISPATCH_LEVEL", x.irql))
	}
	k.spinRelease(x, l, "KeReleaseSpinLock")
	k.lowerTo(x, old)
}

// KeReleaseSpinLockFromDpcLevel releases l without changing IRQL (Verifier
// 0xC4 P1=0x41 if not at DISPATCH_LEVEL).
// IRQL: DISPATCH_LEVEL, checked (REFERENCE §4.6).
func (k *Kernel) KeReleaseSpinLockFromDpcLevel(l *KSPIN_LOCK) {
	if l == nil {
		k.nilObject("KeReleaseSpinLockFromDpcLevel", "SpinLock", touchAtDispatch)
	}
	x := k.enterOn("KeReleaseSpinLockFromDpcLevel", &l.aid, des.AccessLock)
	if x.irql != DISPATCH_LEVEL {
		k.verifierOr0A(x, "KeReleaseSpinLockFromDpcLevel", 0x41, fmt.Sprintf("called at %v, not DISPATCH_LEVEL", x.irql))
	}
	k.spinRelease(x, l, "KeReleaseSpinLockFromDpcLevel")
}

func (k *Kernel) verifierOr0A(x *exec, api string, code uint64, detail string) {
	irql := x.ruleIrql()
	detail += threadedDpcNote(x)
	if k.cfg.Verifier {
		k.bugCheck(x, api, DRIVER_VERIFIER_DETECTED_VIOLATION, code, uint64(irql), 0, 0, detail)
	}
	k.bugCheck(x, api, IRQL_NOT_LESS_OR_EQUAL, 0, uint64(irql), 0, 0, detail)
}

// threadedDpcNote explains, in a report, why a call from a threaded DPC
// at PASSIVE_LEVEL was checked against DISPATCH_LEVEL's rules.
func threadedDpcNote(x *exec) string {
	if name := x.inThreadedDpc(); name != "" && x.irql < DISPATCH_LEVEL {
		return fmt.Sprintf(" (in threaded DPC %s: it runs at %v here, but at DISPATCH_LEVEL wherever threaded DPCs are disabled, so it must keep DISPATCH_LEVEL's rules, REFERENCE §4.21)", name, x.irql)
	}
	return ""
}

func (k *Kernel) spinAcquire(x *exec, l *KSPIN_LOCK, api string) {
	switch {
	case l.owner == x:
		k.bugCheck(x, api, SPIN_LOCK_ALREADY_OWNED, 0, 0, 0, 0, "recursive acquire of spin lock "+l.Name)
	case l.owner == nil:
		l.owner = x
		k.emit(x, KindLock, WhatAcquire, l.objName(), 0, 0)
		return
	}
	k.emit(x, KindLock, WhatSpin, l.objName(), 0, 0)
	l.spinners = append(l.spinners, x)
	x.spinOn = l
	if k.spinCycle(x) {
		k.halt(x, k.deadlockFrom(x))
	}
	x.req = reqSpin
	x.proc.Yield()
}

func (k *Kernel) spinRelease(x *exec, l *KSPIN_LOCK, api string) {
	if l.owner != x {
		k.bugCheck(x, api, SPIN_LOCK_NOT_OWNED, 0, 0, 0, 0, "release of spin lock "+l.Name+" not owned by the caller")
	}
	k.emit(x, KindLock, WhatRelease, l.objName(), 0, 0)
	if len(l.spinners) == 0 {
		l.owner = nil
		return
	}
	next := l.spinners[0]
	copy(l.spinners, l.spinners[1:])
	l.spinners = l.spinners[:len(l.spinners)-1]
	l.owner = next
	next.spinOn = nil
	next.req = reqCompute
	if c := next.cpu; c != nil && c.top() == next {
		c.startChunk(next)
	}
}

// Owned reports whether l is held (for assertions in tests and scenarios).
func (l *KSPIN_LOCK) Owned() bool { return l.owner != nil }

// FAST_MUTEX is a non-recursive mutex that raises to APC_LEVEL
// (REFERENCE §4.6). Waiters block (a real wait) in FIFO order.
type FAST_MUTEX struct {
	Name    string
	obj     string // "fast mutex NAME", built once
	owner   *Thread
	oldIrql IRQL
	waiters []*Thread
	aid     int32 // access number (access.go)

	ownerNameFn   func() string  // m.ownerName, bound at the first contention
	ownerThreadFn func() *Thread // m.ownerThread, likewise
}

// ExInitializeFastMutex returns a fast mutex named name.
// IRQL: ≤ DISPATCH_LEVEL as Microsoft documents; the model does not check it (REFERENCE §4.6).
func (k *Kernel) ExInitializeFastMutex(name string) *FAST_MUTEX {
	k.tick()
	m := k.rc.fastMutexes.Take(k.sim)
	*m = FAST_MUTEX{Name: name, obj: k.joined(m.obj, "fast mutex ", name), waiters: m.waiters[:0], // recycled: see recycler
		ownerNameFn: m.ownerNameFn, ownerThreadFn: m.ownerThreadFn}
	k.numberAtBirth(&m.aid)
	return m
}

func (m *FAST_MUTEX) objName() string {
	if m.obj == "" {
		m.obj = "fast mutex " + m.Name
	}
	return m.obj
}

// ExAcquireFastMutex acquires m and raises to APC_LEVEL. Caller IRQL ≤
// APC_LEVEL (Verifier 0xC4 P1=0x33, REFERENCE §1.8, §6.14). Recursion
// self-deadlocks and is reported as a deadlock.
func (k *Kernel) ExAcquireFastMutex(m *FAST_MUTEX) {
	if m == nil {
		k.nilObject("ExAcquireFastMutex", "FastMutex", touchAtApc)
	}
	x := k.enterOn("ExAcquireFastMutex", &m.aid, des.AccessLock)
	if x.ruleIrql() > APC_LEVEL || x.kind != execThread {
		k.verifierOr0A(x, "ExAcquireFastMutex", 0x33, fmt.Sprintf("fast mutex %s acquired at %v", m.Name, x.ruleIrql()))
	}
	old := x.irql
	k.setIrql(x, APC_LEVEL)
	k.mutexAcquire(x, m, "ExAcquireFastMutex")
	m.oldIrql = old
}

// ExAcquireFastMutexUnsafe acquires m without changing IRQL: the caller
// has already blocked APCs (APC_LEVEL or a guarded region) and must be a
// thread at ≤ APC_LEVEL (Verifier 0xC4 P1=0x33 above it, REFERENCE §4.6).
// Release it with ExReleaseFastMutexUnsafe.
func (k *Kernel) ExAcquireFastMutexUnsafe(m *FAST_MUTEX) {
	x := k.enter("ExAcquireFastMutexUnsafe")
	if x.ruleIrql() > APC_LEVEL || x.kind != execThread {
		k.verifierOr0A(x, "ExAcquireFastMutexUnsafe", 0x33, fmt.Sprintf("fast mutex %s acquired at %v", m.Name, x.ruleIrql()))
	}
	k.mutexAcquire(x, m, "ExAcquireFastMutexUnsafe")
	m.oldIrql = x.irql
}

// ExReleaseFastMutexUnsafe releases m acquired with
// ExAcquireFastMutexUnsafe, leaving IRQL unchanged. IRQL ≤ APC_LEVEL;
// releasing a mutex the caller does not own is Verifier 0xC4 P1=0x34.
// IRQL: ≤ APC_LEVEL, checked (REFERENCE §4.6).
func (k *Kernel) ExReleaseFastMutexUnsafe(m *FAST_MUTEX) {
	x := k.enter("ExReleaseFastMutexUnsafe")
	if x.irql > APC_LEVEL || x.thread == nil || m.owner != x.thread {
		k.verifierOr0A(x, "ExReleaseFastMutexUnsafe", 0x34, fmt.Sprintf("fast mutex %s released by %s at %v, owner %s", m.Name, x.name, x.irql, m.ownerName()))
	}
	k.mutexRelease(x, m)
}

// mutexAcquire grants m to the calling thread or blocks it in FIFO order
// until a release hands m over.
func (k *Kernel) mutexAcquire(x *exec, m *FAST_MUTEX, api string) {
	t := x.thread
	if m.owner == nil {
		m.owner = t
		t.owned = append(t.owned, ownedLock{m.objName(), m})
		k.emit(x, KindLock, WhatAcquire, m.objName(), 0, 0)
		return
	}
	m.waiters = append(m.waiters, t)
	if m.ownerNameFn == nil {
		m.ownerNameFn, m.ownerThreadFn = m.ownerName, m.ownerThread
	}
	t.wait.lock = lockWait{name: m.objName(), owner: m.ownerNameFn, next: m.ownerThreadFn}
	t.wait.api, t.wait.since = api, k.sim.Now()
	k.emit(x, KindWait, des.What(api), m.objName(), 0, 0) // the blocking routine's name
	if k.lockCycle(t) {
		k.halt(x, k.deadlockFrom(x))
	}
	k.block(t) // ownership was handed to us by the releaser
}

// mutexRelease gives m up and hands it to the first waiter.
func (k *Kernel) mutexRelease(x *exec, m *FAST_MUTEX) {
	x.thread.dropOwned(m)
	k.emit(x, KindLock, WhatRelease, m.objName(), 0, 0)
	m.owner = nil
	if len(m.waiters) > 0 {
		w := m.waiters[0]
		copy(m.waiters, m.waiters[1:])
		m.waiters = m.waiters[:len(m.waiters)-1]
		m.owner = w
		w.owned = append(w.owned, ownedLock{m.objName(), m})
		k.satisfy(w, STATUS_SUCCESS, 1)
	}
}

func (m *FAST_MUTEX) ownerName() string {
	if m.owner == nil {
		return ""
	}
	return m.owner.name
}

func (m *FAST_MUTEX) ownerThread() *Thread { return m.owner }

// ExReleaseFastMutex releases m and restores the IRQL saved at acquire.
// The caller must be at APC_LEVEL (Verifier 0xC4 P1=0x34) and the owner.
// IRQL: APC_LEVEL, checked (REFERENCE §4.6).
func (k *Kernel) ExReleaseFastMutex(m *FAST_MUTEX) {
	if m == nil {
		k.nilObject("ExReleaseFastMutex", "FastMutex", touchAtApc)
	}
	x := k.enterOn("ExReleaseFastMutex", &m.aid, des.AccessLock)
	if x.irql != APC_LEVEL {
		k.verifierOr0A(x, "ExReleaseFastMutex", 0x34, fmt.Sprintf("fast mutex %s released at %v", m.Name, x.irql))
	}
	if x.thread == nil || m.owner != x.thread {
		k.verifierOr0A(x, "ExReleaseFastMutex", 0x34, fmt.Sprintf("fast mutex %s released by %s, owner %s", m.Name, x.name, m.ownerName()))
	}
	old := m.oldIrql
	k.mutexRelease(x, m)
	k.lowerTo(x, old)
}

func (t *Thread) dropOwned(obj any) {
	for i := len(t.owned) - 1; i >= 0; i-- {
		if t.owned[i].obj == obj {
			t.owned = append(t.owned[:i], t.owned[i+1:]...)
			return
		}
	}
}

// KeEnterCriticalRegion disables normal kernel APCs for the caller.
// IRQL: ≤ APC_LEVEL as Microsoft documents; the model does not check it (REFERENCE §4.10).
func (k *Kernel) KeEnterCriticalRegion() {
	x := k.enter("KeEnterCriticalRegion")
	if x.thread != nil {
		x.thread.criticalRegion++
	}
}

// KeLeaveCriticalRegion re-enables them. Leaving more often than entering
// is APC_INDEX_MISMATCH 0x01 (REFERENCE §1.8).
// IRQL: ≤ APC_LEVEL as Microsoft documents; the model does not check it (REFERENCE §4.10).
func (k *Kernel) KeLeaveCriticalRegion() {
	x := k.enter("KeLeaveCriticalRegion")
	if x.thread == nil || x.thread.criticalRegion == 0 {
		k.bugCheck(x, "KeLeaveCriticalRegion", APC_INDEX_MISMATCH, 0, 0, 0, 0, "KeLeaveCriticalRegion without a matching KeEnterCriticalRegion")
	}
	x.thread.criticalRegion--
	k.deliverIfPending(x) // normal kernel APCs held off by the region run now (REFERENCE §4.10)
}

// KGUARDED_MUTEX is a guarded mutex (REFERENCE §4.8): a non-recursive
// mutex whose owner runs inside a guarded region (all kernel APCs off) at
// an unchanged IRQL. Waiters block in FIFO order.
type KGUARDED_MUTEX struct{ m FAST_MUTEX }

// KeInitializeGuardedMutex returns a guarded mutex named name.
// IRQL: ≤ DISPATCH_LEVEL as Microsoft documents; the model does not check it (REFERENCE §4.8).
func (k *Kernel) KeInitializeGuardedMutex(name string) *KGUARDED_MUTEX {
	return &KGUARDED_MUTEX{m: FAST_MUTEX{Name: name, obj: "guarded mutex " + name}}
}

// Owned reports whether g is held (for assertions).
func (g *KGUARDED_MUTEX) Owned() bool { return g.m.owner != nil }

// KeAcquireGuardedMutex enters a guarded region and acquires g. Caller
// IRQL ≤ APC_LEVEL (Verifier 0xC4 P1=0x33 otherwise, as for fast mutexes,
// which Windows 8 and later implement identically). Recursion
// self-deadlocks and is reported as a deadlock.
// IRQL: ≤ APC_LEVEL, checked (REFERENCE §4.8).
func (k *Kernel) KeAcquireGuardedMutex(g *KGUARDED_MUTEX) {
	x := k.enter("KeAcquireGuardedMutex")
	k.guardedCaller(x, g, "KeAcquireGuardedMutex", 0x33)
	x.thread.guardedRegion++
	k.mutexAcquire(x, &g.m, "KeAcquireGuardedMutex")
}

// KeTryToAcquireGuardedMutex acquires g if it is free and reports whether
// it did; it never waits.
// IRQL: ≤ APC_LEVEL, checked (REFERENCE §4.8).
func (k *Kernel) KeTryToAcquireGuardedMutex(g *KGUARDED_MUTEX) bool {
	x := k.enter("KeTryToAcquireGuardedMutex")
	k.guardedCaller(x, g, "KeTryToAcquireGuardedMutex", 0x33)
	if g.m.owner != nil {
		return false
	}
	x.thread.guardedRegion++
	k.mutexAcquire(x, &g.m, "KeTryToAcquireGuardedMutex")
	return true
}

// KeReleaseGuardedMutex releases g and leaves the guarded region its
// acquisition entered. The caller must own g (Verifier 0xC4 P1=0x34).
// IRQL: ≤ APC_LEVEL, checked (REFERENCE §4.8).
func (k *Kernel) KeReleaseGuardedMutex(g *KGUARDED_MUTEX) {
	x := k.enter("KeReleaseGuardedMutex")
	k.guardedCaller(x, g, "KeReleaseGuardedMutex", 0x34)
	if g.m.owner != x.thread {
		k.verifierOr0A(x, "KeReleaseGuardedMutex", 0x34, fmt.Sprintf("%s released by %s, owner %s", g.m.obj, x.name, g.m.ownerName()))
	}
	k.mutexRelease(x, &g.m)
	x.thread.guardedRegion--
	k.deliverIfPending(x) // APCs are enabled again (REFERENCE §4.10)
}

func (k *Kernel) guardedCaller(x *exec, g *KGUARDED_MUTEX, api string, code uint64) {
	if x.ruleIrql() > APC_LEVEL || x.kind != execThread {
		k.verifierOr0A(x, api, code, fmt.Sprintf("%s used at %v", g.m.obj, x.ruleIrql()))
	}
}

// KLOCK_QUEUE_HANDLE is the caller-allocated handle of an in-stack queued
// spin lock acquisition (REFERENCE §4.8): it records the lock and the IRQL
// to return to. Contenders get the lock in FIFO order, as every spin lock
// in the model does.
type KLOCK_QUEUE_HANDLE struct {
	lock    *KSPIN_LOCK
	OldIrql IRQL
}

// KeAcquireInStackQueuedSpinLock raises to DISPATCH_LEVEL and acquires l,
// saving the old IRQL in h. Caller IRQL ≤ DISPATCH_LEVEL (Verifier 0xC4
// P1=0x42 above it); re-acquiring a lock the caller holds is 0x0F.
// IRQL: ≤ DISPATCH_LEVEL, checked (REFERENCE §4.8).
func (k *Kernel) KeAcquireInStackQueuedSpinLock(l *KSPIN_LOCK, h *KLOCK_QUEUE_HANDLE) {
	old := k.acquireRaising(k.enter("KeAcquireInStackQueuedSpinLock"), l, "KeAcquireInStackQueuedSpinLock")
	h.lock, h.OldIrql = l, old
}

// acquireRaising raises the caller to DISPATCH_LEVEL and acquires l,
// returning the old IRQL; above DISPATCH_LEVEL it is Verifier 0xC4 P1=0x42
// (REFERENCE §4.6).
func (k *Kernel) acquireRaising(x *exec, l *KSPIN_LOCK, api string) IRQL {
	old := k.raiseForSpinLock(x, api)
	k.spinAcquire(x, l, api)
	return old
}

// raiseForSpinLock checks the IRQL of a spin-lock acquire that raises
// (≤ DISPATCH_LEVEL; Verifier 0xC4 P1=0x42 above it, REFERENCE §4.6), then
// raises to DISPATCH_LEVEL and returns the old IRQL.
func (k *Kernel) raiseForSpinLock(x *exec, api string) IRQL {
	if x.irql > DISPATCH_LEVEL {
		k.verifierOr0A(x, api, 0x42, api+" above DISPATCH_LEVEL")
	}
	old := x.irql
	k.setIrql(x, DISPATCH_LEVEL)
	return old
}

// KeAcquireInStackQueuedSpinLockAtDpcLevel acquires l at DISPATCH_LEVEL
// without changing IRQL (Verifier 0xC4 P1=0x40 if not at DISPATCH_LEVEL).
// IRQL: DISPATCH_LEVEL, checked (REFERENCE §4.8).
func (k *Kernel) KeAcquireInStackQueuedSpinLockAtDpcLevel(l *KSPIN_LOCK, h *KLOCK_QUEUE_HANDLE) {
	x := k.enter("KeAcquireInStackQueuedSpinLockAtDpcLevel")
	if x.irql != DISPATCH_LEVEL {
		k.verifierOr0A(x, "KeAcquireInStackQueuedSpinLockAtDpcLevel", 0x40, fmt.Sprintf("called at %v, not DISPATCH_LEVEL", x.irql))
	}
	k.spinAcquire(x, l, "KeAcquireInStackQueuedSpinLockAtDpcLevel")
	h.lock, h.OldIrql = l, x.irql
}

// KeReleaseInStackQueuedSpinLock releases the lock h holds and returns to
// the IRQL saved at acquire. A handle that holds nothing, or a lock the
// caller does not own, is SPIN_LOCK_NOT_OWNED 0x10.
// IRQL: DISPATCH_LEVEL, as the acquire left it (REFERENCE §4.8).
func (k *Kernel) KeReleaseInStackQueuedSpinLock(h *KLOCK_QUEUE_HANDLE) {
	x := k.enter("KeReleaseInStackQueuedSpinLock")
	l := k.handleLock(x, h, "KeReleaseInStackQueuedSpinLock")
	k.spinRelease(x, l, "KeReleaseInStackQueuedSpinLock")
	k.lowerTo(x, h.OldIrql)
}

// KeReleaseInStackQueuedSpinLockFromDpcLevel releases the lock h holds
// without changing IRQL.
// IRQL: DISPATCH_LEVEL, as Microsoft documents; the model does not check it (REFERENCE §4.8).
func (k *Kernel) KeReleaseInStackQueuedSpinLockFromDpcLevel(h *KLOCK_QUEUE_HANDLE) {
	x := k.enter("KeReleaseInStackQueuedSpinLockFromDpcLevel")
	l := k.handleLock(x, h, "KeReleaseInStackQueuedSpinLockFromDpcLevel")
	k.spinRelease(x, l, "KeReleaseInStackQueuedSpinLockFromDpcLevel")
}

func (k *Kernel) handleLock(x *exec, h *KLOCK_QUEUE_HANDLE, api string) *KSPIN_LOCK {
	l := h.lock
	if l == nil {
		k.bugCheck(x, api, SPIN_LOCK_NOT_OWNED, 0, 0, 0, 0, "release through a lock queue handle that holds no lock")
	}
	h.lock = nil
	return l
}
