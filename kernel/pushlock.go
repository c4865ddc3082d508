package kernel

import (
	"fmt"
	"strings"

	"github.com/wqsim/wqsim/des"
)

// EX_PUSH_LOCK is a push lock (REFERENCE §4.25): a reader/writer lock
// like an ERESOURCE, but never recursive and with no owner bookkeeping
// in Windows. A thread that acquires a push lock it already holds, either
// way, hangs; a second shared acquisition happens to succeed only while
// nobody waits for the lock, so the hang needs a writer to arrive in
// between. Waiters queue in arrival order and a shared acquirer waits
// behind any waiter, so writers do not starve. The filter manager's
// FltAcquirePushLock… routines wrap these with KeEnterCriticalRegion.
type EX_PUSH_LOCK struct {
	Name      string
	obj       string // "pushlock NAME", built once
	exclusive *Thread
	shared    []*Thread // one entry per shared acquisition (a thread may appear twice)
	waiters   []pushWaiter
	aid       int32 // access number (access.go)
	ownerFn   func() string
	nextFn    func() *Thread
}

type pushWaiter struct {
	t         *Thread
	exclusive bool
}

// ExInitializePushLock returns a free push lock named name.
// IRQL: any; not a scheduling point (REFERENCE §4.25).
func (k *Kernel) ExInitializePushLock(name string) *EX_PUSH_LOCK {
	k.tick()
	l := &EX_PUSH_LOCK{Name: name, obj: "pushlock " + name}
	l.ownerFn, l.nextFn = l.ownerName, l.ownerThread
	return l
}

// ExAcquirePushLockExclusive acquires l for exclusive access, waiting
// while anyone holds it or waits for it. The caller must have disabled
// normal kernel APCs (KeEnterCriticalRegion); the model does not check
// that. Acquiring a push lock the caller already holds hangs the caller,
// which is reported as a deadlock at once.
// IRQL: ≤ APC_LEVEL from a thread, checked (REFERENCE §4.25).
func (k *Kernel) ExAcquirePushLockExclusive(l *EX_PUSH_LOCK) {
	x := k.pushLockCaller(l, "ExAcquirePushLockExclusive")
	if l.free() && len(l.waiters) == 0 {
		l.grant(x.thread, true)
		k.emit(x, KindLock, WhatAcquireExcl, l.obj, 0, 0)
		return
	}
	k.pushLockWait(x, l, true, "ExAcquirePushLockExclusive")
}

// ExAcquirePushLockShared acquires l for shared access: at once when
// nobody holds it exclusively and nobody waits, otherwise after the
// waiters ahead. A caller that already holds l shared is granted again
// while nobody waits (Windows has no owner list to refuse it), and hangs
// behind a waiting writer otherwise: reported as a deadlock.
// IRQL: ≤ APC_LEVEL from a thread, checked (REFERENCE §4.25).
func (k *Kernel) ExAcquirePushLockShared(l *EX_PUSH_LOCK) {
	x := k.pushLockCaller(l, "ExAcquirePushLockShared")
	if l.exclusive == nil && len(l.waiters) == 0 {
		l.grant(x.thread, false)
		k.emit(x, KindLock, WhatAcquireShared, l.obj, int64(len(l.shared)), 0)
		return
	}
	k.pushLockWait(x, l, false, "ExAcquirePushLockShared")
}

// ExTryAcquirePushLockExclusive acquires l exclusively if it is free and
// nobody waits, and reports whether it did; it never waits.
// IRQL: ≤ APC_LEVEL from a thread, checked (REFERENCE §4.25).
func (k *Kernel) ExTryAcquirePushLockExclusive(l *EX_PUSH_LOCK) bool {
	x := k.pushLockCaller(l, "ExTryAcquirePushLockExclusive")
	if !l.free() || len(l.waiters) > 0 {
		return false
	}
	l.grant(x.thread, true)
	k.emit(x, KindLock, WhatAcquireExcl, l.obj, 0, 0)
	return true
}

// ExTryAcquirePushLockShared acquires l shared if nobody holds it
// exclusively and nobody waits, and reports whether it did.
// IRQL: ≤ APC_LEVEL from a thread, checked (REFERENCE §4.25).
func (k *Kernel) ExTryAcquirePushLockShared(l *EX_PUSH_LOCK) bool {
	x := k.pushLockCaller(l, "ExTryAcquirePushLockShared")
	if l.exclusive != nil || len(l.waiters) > 0 {
		return false
	}
	l.grant(x.thread, false)
	k.emit(x, KindLock, WhatAcquireShared, l.obj, int64(len(l.shared)), 0)
	return true
}

// ExReleasePushLockExclusive releases the caller's exclusive hold of l.
// Windows keeps no owner, so releasing a hold the caller does not have
// corrupts the lock silently; the model stops the run with
// RESOURCE_NOT_OWNED 0xE3 (P2 = the thread), as for an ERESOURCE.
// IRQL: ≤ APC_LEVEL from a thread, checked (REFERENCE §4.25).
func (k *Kernel) ExReleasePushLockExclusive(l *EX_PUSH_LOCK) {
	x := k.pushLockCaller(l, "ExReleasePushLockExclusive")
	k.pushLockRelease(x, l, 1, "ExReleasePushLockExclusive")
}

// ExReleasePushLockShared releases one shared hold of l by the caller;
// as ExReleasePushLockExclusive, a hold the caller does not have is 0xE3.
// IRQL: ≤ APC_LEVEL from a thread, checked (REFERENCE §4.25).
func (k *Kernel) ExReleasePushLockShared(l *EX_PUSH_LOCK) {
	x := k.pushLockCaller(l, "ExReleasePushLockShared")
	k.pushLockRelease(x, l, 0, "ExReleasePushLockShared")
}

// ExReleasePushLock releases the caller's hold of l, exclusive or shared,
// as FltReleasePushLock does.
// IRQL: ≤ APC_LEVEL from a thread, checked (REFERENCE §4.25).
func (k *Kernel) ExReleasePushLock(l *EX_PUSH_LOCK) {
	x := k.pushLockCaller(l, "ExReleasePushLock")
	k.pushLockRelease(x, l, -1, "ExReleasePushLock")
}

// pushLockCaller enters api and checks its caller: a thread at ≤
// APC_LEVEL (0xA otherwise), and a lock that exists (§4.15).
func (k *Kernel) pushLockCaller(l *EX_PUSH_LOCK, api string) *exec {
	if l == nil {
		k.nilObject(api, "PushLock", touchAtApc)
	}
	x := k.enterOn(api, &l.aid, des.AccessLock)
	k.checkIrqlAtMost(x, api, APC_LEVEL)
	if x.kind != execThread {
		k.bugCheck(x, api, IRQL_NOT_LESS_OR_EQUAL, 0, uint64(x.irql), 0, 0, api+" from a DPC or ISR")
	}
	return x
}

// pushLockWait queues the caller behind l's waiters and blocks it until
// a release grants it l. A caller that holds l itself can never be
// granted: its wait is an edge to itself, reported at once.
func (k *Kernel) pushLockWait(x *exec, l *EX_PUSH_LOCK, exclusive bool, api string) {
	t := x.thread
	l.waiters = append(l.waiters, pushWaiter{t, exclusive})
	t.wait.lock = lockWait{name: l.obj, owner: l.ownerFn, next: l.nextFn, self: l.holds(t)}
	t.wait.api, t.wait.since = api, k.sim.Now()
	k.emit(x, KindWait, des.What(api), l.obj, 0, 0) // the blocking routine's name
	if k.lockCycle(t) {
		k.halt(x, k.deadlockFrom(x))
	}
	k.block(t) // the releaser granted the lock before waking us
}

// pushLockRelease drops one hold of l by the caller: exclusive (want 1),
// shared (0) or whichever it has (-1), then grants l to the waiters it
// can now have.
func (k *Kernel) pushLockRelease(x *exec, l *EX_PUSH_LOCK, want int, api string) {
	t := x.thread
	switch i := l.sharedIndex(t); {
	case l.exclusive == t && want != 0:
		l.exclusive = nil
	case i >= 0 && want != 1:
		l.shared = append(l.shared[:i], l.shared[i+1:]...)
	default:
		k.bugCheck(x, api, RESOURCE_NOT_OWNED, 0, uint64(t.id), 0, 0,
			fmt.Sprintf("%s releases push lock %s, which it does not hold %s (held by %s); Windows would corrupt the lock silently",
				x.name, l.Name, [...]string{"either way", "shared", "exclusively"}[want+1], l.ownerName()))
	}
	if !l.holds(t) {
		t.dropOwned(l)
	}
	k.emit(x, KindLock, WhatRelease, l.obj, int64(len(l.shared)), 0)
	k.grantPushLock(l)
}

// grantPushLock hands a lock that became free, or shared, to its waiters
// in arrival order: the first waiter if it wants exclusive access and the
// lock is free; otherwise every shared waiter up to the first exclusive
// one, while nobody holds it exclusively.
func (k *Kernel) grantPushLock(l *EX_PUSH_LOCK) {
	n := 0
	for _, w := range l.waiters {
		if w.exclusive && !l.holds(w.t) {
			if n > 0 || !l.free() {
				break
			}
			l.grant(w.t, true)
			n++
			break
		}
		if l.exclusive != nil {
			break
		}
		l.grant(w.t, false)
		n++
	}
	granted := l.waiters[:n]
	l.waiters = l.waiters[n:]
	for _, w := range granted {
		k.satisfy(w.t, STATUS_SUCCESS, 1)
	}
}

func (l *EX_PUSH_LOCK) free() bool { return l.exclusive == nil && len(l.shared) == 0 }

func (l *EX_PUSH_LOCK) grant(t *Thread, exclusive bool) {
	if !l.holds(t) {
		t.owned = append(t.owned, ownedLock{l.obj, l})
	}
	if exclusive {
		l.exclusive = t
		return
	}
	l.shared = append(l.shared, t)
}

func (l *EX_PUSH_LOCK) holds(t *Thread) bool { return l.exclusive == t || l.sharedIndex(t) >= 0 }

func (l *EX_PUSH_LOCK) sharedIndex(t *Thread) int {
	for i, s := range l.shared {
		if s == t {
			return i
		}
	}
	return -1
}

// ownerName names l's holders for reports, and the exclusive waiters
// queued first, which a new shared request waits behind.
func (l *EX_PUSH_LOCK) ownerName() string {
	var b strings.Builder
	switch {
	case l.exclusive != nil:
		b.WriteString(l.exclusive.name)
	case len(l.shared) == 0:
		b.WriteString("nobody")
	default:
		for i, t := range l.shared {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(t.name)
		}
		b.WriteString(" (shared)")
	}
	for _, w := range l.waiters {
		if w.exclusive && !l.holds(w.t) {
			b.WriteString("; waiting for it exclusively first: ")
			b.WriteString(w.t.name)
			break
		}
	}
	return b.String()
}

func (l *EX_PUSH_LOCK) ownerThread() *Thread {
	if l.exclusive != nil {
		return l.exclusive
	}
	if len(l.shared) > 0 {
		return l.shared[0]
	}
	return nil
}
