package kernel

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
)

// EX_SPIN_LOCK is a reader/writer spin lock (REFERENCE §4.19): any number
// of shared owners or one exclusive owner; contenders spin at
// DISPATCH_LEVEL. As on Windows it needs no initialisation: the zero value
// is a free lock, and a driver declares it in its device extension (Name
// is only for traces and reports).
//
// Contenders are served in arrival order, and a shared acquirer that
// arrives while an exclusive acquirer spins waits behind it, so readers
// cannot starve a writer.
type EX_SPIN_LOCK struct {
	Name      string
	obj       string
	exclusive *exec
	shared    []*exec
	waiting   []rwWaiter
	aid       int32 // access number (access.go)
}

// rwWaiter is one spinning acquirer of an EX_SPIN_LOCK.
type rwWaiter struct {
	x         *exec
	exclusive bool
}

func (l *EX_SPIN_LOCK) objName() string {
	if l.obj == "" {
		l.obj = "ex spinlock " + l.Name
	}
	return l.obj
}

// Owned reports whether l is held, shared or exclusive (for assertions).
func (l *EX_SPIN_LOCK) Owned() bool { return l.exclusive != nil || len(l.shared) > 0 }

// owns reports whether x holds l in either mode.
func (l *EX_SPIN_LOCK) owns(x *exec) bool {
	if l.exclusive == x {
		return true
	}
	for _, s := range l.shared {
		if s == x {
			return true
		}
	}
	return false
}

// blocker returns the exec whose ownership keeps l from x (an exclusive
// owner, else the first sharer), for wait-for edges.
func (l *EX_SPIN_LOCK) blocker(x *exec) *exec {
	if l.exclusive != nil {
		return l.exclusive
	}
	if l.owns(x) {
		return x // a recursive acquire waits for itself
	}
	if len(l.shared) > 0 {
		return l.shared[0]
	}
	if len(l.waiting) > 0 && l.waiting[0].x != x {
		return l.waiting[0].x // a shared acquirer queued behind a writer
	}
	return nil
}

// ExAcquireSpinLockShared raises to DISPATCH_LEVEL, acquires l for shared
// access and returns the old IRQL. Caller IRQL ≤ DISPATCH_LEVEL (Verifier
// 0xC4 P1=0x42, as KeAcquireSpinLock). Acquiring a lock the caller already
// holds is a deadlock (Microsoft: recursive acquisition is not allowed).
// IRQL: ≤ DISPATCH_LEVEL, checked (REFERENCE §4.19).
func (k *Kernel) ExAcquireSpinLockShared(l *EX_SPIN_LOCK) IRQL {
	return k.exAcquireRaising(l, false, "ExAcquireSpinLockShared")
}

// ExAcquireSpinLockExclusive raises to DISPATCH_LEVEL, acquires l for
// exclusive access and returns the old IRQL. Rules as for
// ExAcquireSpinLockShared.
// IRQL: ≤ DISPATCH_LEVEL, checked (REFERENCE §4.19).
func (k *Kernel) ExAcquireSpinLockExclusive(l *EX_SPIN_LOCK) IRQL {
	return k.exAcquireRaising(l, true, "ExAcquireSpinLockExclusive")
}

// ExAcquireSpinLockSharedAtDpcLevel acquires l for shared access without
// changing IRQL; the caller must be at DISPATCH_LEVEL (Verifier 0xC4
// P1=0x40).
// IRQL: DISPATCH_LEVEL, checked (REFERENCE §4.19).
func (k *Kernel) ExAcquireSpinLockSharedAtDpcLevel(l *EX_SPIN_LOCK) {
	k.exAcquireAtDpc(l, false, "ExAcquireSpinLockSharedAtDpcLevel")
}

// ExAcquireSpinLockExclusiveAtDpcLevel acquires l for exclusive access
// without changing IRQL; the caller must be at DISPATCH_LEVEL.
// IRQL: DISPATCH_LEVEL, checked (REFERENCE §4.19).
func (k *Kernel) ExAcquireSpinLockExclusiveAtDpcLevel(l *EX_SPIN_LOCK) {
	k.exAcquireAtDpc(l, true, "ExAcquireSpinLockExclusiveAtDpcLevel")
}

// ExTryAcquireSpinLockSharedAtDpcLevel acquires l for shared access if no
// one holds or waits for it exclusively, and reports whether it did; it
// never spins. The caller must be at DISPATCH_LEVEL.
// IRQL: DISPATCH_LEVEL, checked (REFERENCE §4.19).
func (k *Kernel) ExTryAcquireSpinLockSharedAtDpcLevel(l *EX_SPIN_LOCK) bool {
	return k.exTryAtDpc(l, false, "ExTryAcquireSpinLockSharedAtDpcLevel")
}

// ExTryAcquireSpinLockExclusiveAtDpcLevel acquires l for exclusive access
// if it is free, and reports whether it did; it never spins. The caller
// must be at DISPATCH_LEVEL.
// IRQL: DISPATCH_LEVEL, checked (REFERENCE §4.19).
func (k *Kernel) ExTryAcquireSpinLockExclusiveAtDpcLevel(l *EX_SPIN_LOCK) bool {
	return k.exTryAtDpc(l, true, "ExTryAcquireSpinLockExclusiveAtDpcLevel")
}

// ExTryConvertSharedSpinLockExclusive turns the caller's shared hold of l
// into an exclusive one when the caller is its only sharer, and reports
// whether it did; otherwise the caller keeps its shared hold.
// IRQL: DISPATCH_LEVEL, checked (REFERENCE §4.19).
func (k *Kernel) ExTryConvertSharedSpinLockExclusive(l *EX_SPIN_LOCK) bool {
	api := "ExTryConvertSharedSpinLockExclusive"
	x := k.enterOn(api, &l.aid, des.AccessLock)
	k.exAtDispatch(x, api, 0x40)
	if l.exclusive != nil || !l.owns(x) {
		k.bugCheck(x, api, SPIN_LOCK_NOT_OWNED, 0, 0, 0, 0, l.objName()+" converted by "+x.name+", which does not hold it shared")
	}
	if len(l.shared) != 1 {
		return false
	}
	l.shared = l.shared[:0]
	l.exclusive = x
	k.emit(x, KindLock, WhatAcquireExcl, l.objName(), 1, 0)
	return true
}

// ExReleaseSpinLockShared releases the caller's shared hold of l and
// lowers IRQL to old. Releasing a hold the caller does not have is
// SPIN_LOCK_NOT_OWNED 0x10 (REFERENCE §4.19: Windows does not check; the
// count would go wrong).
// IRQL: DISPATCH_LEVEL, checked (REFERENCE §4.19).
func (k *Kernel) ExReleaseSpinLockShared(l *EX_SPIN_LOCK, old IRQL) {
	x := k.exRelease(l, false, "ExReleaseSpinLockShared", 0x32)
	k.lowerTo(x, old)
}

// ExReleaseSpinLockExclusive releases the caller's exclusive hold of l and
// lowers IRQL to old.
// IRQL: DISPATCH_LEVEL, checked (REFERENCE §4.19).
func (k *Kernel) ExReleaseSpinLockExclusive(l *EX_SPIN_LOCK, old IRQL) {
	x := k.exRelease(l, true, "ExReleaseSpinLockExclusive", 0x32)
	k.lowerTo(x, old)
}

// ExReleaseSpinLockSharedFromDpcLevel releases the caller's shared hold of
// l without changing IRQL.
// IRQL: DISPATCH_LEVEL, checked (REFERENCE §4.19).
func (k *Kernel) ExReleaseSpinLockSharedFromDpcLevel(l *EX_SPIN_LOCK) {
	k.exRelease(l, false, "ExReleaseSpinLockSharedFromDpcLevel", 0x41)
}

// ExReleaseSpinLockExclusiveFromDpcLevel releases the caller's exclusive
// hold of l without changing IRQL.
// IRQL: DISPATCH_LEVEL, checked (REFERENCE §4.19).
func (k *Kernel) ExReleaseSpinLockExclusiveFromDpcLevel(l *EX_SPIN_LOCK) {
	k.exRelease(l, true, "ExReleaseSpinLockExclusiveFromDpcLevel", 0x41)
}

func (k *Kernel) exAcquireRaising(l *EX_SPIN_LOCK, exclusive bool, api string) IRQL {
	x := k.enterOn(api, &l.aid, des.AccessLock)
	old := k.raiseForSpinLock(x, api)
	k.exAcquire(x, l, exclusive)
	return old
}

func (k *Kernel) exAcquireAtDpc(l *EX_SPIN_LOCK, exclusive bool, api string) {
	x := k.enterOn(api, &l.aid, des.AccessLock)
	k.exAtDispatch(x, api, 0x40)
	k.exAcquire(x, l, exclusive)
}

func (k *Kernel) exTryAtDpc(l *EX_SPIN_LOCK, exclusive bool, api string) bool {
	x := k.enterOn(api, &l.aid, des.AccessLock)
	k.exAtDispatch(x, api, 0x40)
	if l.owns(x) || !l.grantable(exclusive) {
		return false
	}
	k.exGrant(x, l, exclusive)
	return true
}

// exAtDispatch checks a routine that requires exactly DISPATCH_LEVEL.
func (k *Kernel) exAtDispatch(x *exec, api string, code uint64) {
	if x.irql != DISPATCH_LEVEL {
		k.verifierOr0A(x, api, code, fmt.Sprintf("called at %v, not DISPATCH_LEVEL", x.irql))
	}
}

// grantable reports whether a new acquirer in the given mode gets l now:
// nobody queued ahead, and no owner it conflicts with.
func (l *EX_SPIN_LOCK) grantable(exclusive bool) bool {
	if len(l.waiting) > 0 || l.exclusive != nil {
		return false
	}
	return !exclusive || len(l.shared) == 0
}

func (k *Kernel) exGrant(x *exec, l *EX_SPIN_LOCK, exclusive bool) {
	if exclusive {
		l.exclusive = x
		k.emit(x, KindLock, WhatAcquireExcl, l.objName(), 0, 0)
		return
	}
	l.shared = append(l.shared, x)
	k.emit(x, KindLock, WhatAcquireShared, l.objName(), int64(len(l.shared)), 0)
}

// exAcquire grants l to x or makes x spin until a release grants it.
func (k *Kernel) exAcquire(x *exec, l *EX_SPIN_LOCK, exclusive bool) {
	if !l.owns(x) && l.grantable(exclusive) {
		k.exGrant(x, l, exclusive)
		return
	}
	k.emit(x, KindLock, WhatSpin, l.objName(), b2i(exclusive), 0)
	l.waiting = append(l.waiting, rwWaiter{x, exclusive})
	x.spinOnRW = l
	if k.spinCycle(x) { // a recursive acquire, or a cycle through other locks
		k.halt(x, k.deadlockFrom(x))
	}
	x.req = reqSpin
	x.proc.Yield()
}

// exRelease drops x's hold of l in the given mode and grants the lock to
// the spinners at the head of the queue that can have it now.
func (k *Kernel) exRelease(l *EX_SPIN_LOCK, exclusive bool, api string, code uint64) *exec {
	x := k.enterOn(api, &l.aid, des.AccessLock)
	k.exAtDispatch(x, api, code)
	if !l.drop(x, exclusive) {
		mode := "shared"
		if exclusive {
			mode = "exclusive"
		}
		k.bugCheck(x, api, SPIN_LOCK_NOT_OWNED, 0, 0, 0, 0, fmt.Sprintf("%s released by %s, which does not hold it %s", l.objName(), x.name, mode))
	}
	k.emit(x, KindLock, WhatRelease, l.objName(), int64(len(l.shared)), 0)
	for len(l.waiting) > 0 {
		w := l.waiting[0]
		if !(w.exclusive && l.exclusive == nil && len(l.shared) == 0 || !w.exclusive && l.exclusive == nil) {
			break
		}
		l.waiting = l.waiting[1:]
		k.exGrant(w.x, l, w.exclusive)
		w.x.spinOnRW = nil
		w.x.req = reqCompute
		if c := w.x.cpu; c != nil && c.top() == w.x {
			c.startChunk(w.x)
		}
		if w.exclusive {
			break
		}
	}
	return x
}

// drop removes x's hold in the given mode and reports whether it had one.
func (l *EX_SPIN_LOCK) drop(x *exec, exclusive bool) bool {
	if exclusive {
		if l.exclusive != x {
			return false
		}
		l.exclusive = nil
		return true
	}
	for i, s := range l.shared {
		if s == x {
			l.shared = append(l.shared[:i], l.shared[i+1:]...)
			return true
		}
	}
	return false
}
