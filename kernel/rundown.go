package kernel

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
)

// EX_RUNDOWN_REF is run-down protection (REFERENCE §4.8): a count of
// holders of a shared object that its owner can shut off. Holders take it
// with ExAcquireRundownProtection and give it back with
// ExReleaseRundownProtection; the owner calls
// ExWaitForRundownProtectionRelease, after which every acquire fails, and
// which returns once the last holder has released. Windows keeps the count
// and the run-down bit in one pointer-sized word updated by
// compare-exchange; the model keeps them as two fields changed in one step
// at a scheduling point, which is what the word gives.
type EX_RUNDOWN_REF struct {
	aid     int32
	name    string
	count   int64
	rundown bool    // ExWaitForRundownProtectionRelease has begun
	waiter  *KEVENT // set when the count reaches zero during run-down
}

// ExInitializeRundownProtection returns run-down protection named name
// with no holder and run-down not begun (DDI:ExInitializeRundownProtection).
// IRQL: any (REFERENCE §4.8).
func (k *Kernel) ExInitializeRundownProtection(name string) *EX_RUNDOWN_REF {
	r := &EX_RUNDOWN_REF{name: "rundown " + name}
	r.waiter = k.KeInitializeEvent(name+" run down", NotificationEvent, false)
	k.numberAtBirth(&r.aid)
	return r
}

// ExAcquireRundownProtection takes one hold on r and reports true, or
// reports false without a hold once ExWaitForRundownProtectionRelease has
// begun: the caller must then not touch what r protects
// (DDI:ExAcquireRundownProtection). IRQL ≤ DISPATCH_LEVEL, checked
// (REFERENCE §4.8).
func (k *Kernel) ExAcquireRundownProtection(r *EX_RUNDOWN_REF) bool {
	x := k.enterOn("ExAcquireRundownProtection", &r.aid, des.AccessWrite)
	k.checkIrqlAtMost(x, "ExAcquireRundownProtection", DISPATCH_LEVEL)
	if r.rundown {
		k.emit(x, KindLock, WhatRundownRefused, r.name, r.count, 0)
		return false
	}
	r.count++
	k.emit(x, KindLock, WhatRundownAcquire, r.name, r.count, 0)
	return true
}

// ExReleaseRundownProtection gives back one hold taken by a successful
// ExAcquireRundownProtection; the last one during run-down wakes the owner
// waiting in ExWaitForRundownProtectionRelease
// (DDI:ExReleaseRundownProtection). A release with no hold outstanding
// corrupts the count on Windows (the free build does not check); the
// model stops there with a Go panic naming the reference, reported as a
// panic in driver code. IRQL ≤ DISPATCH_LEVEL, checked (REFERENCE §4.8).
func (k *Kernel) ExReleaseRundownProtection(r *EX_RUNDOWN_REF) {
	x := k.enterOn("ExReleaseRundownProtection", &r.aid, des.AccessWrite)
	k.checkIrqlAtMost(x, "ExReleaseRundownProtection", DISPATCH_LEVEL)
	if r.count == 0 {
		panic(fmt.Sprintf("kernel: ExReleaseRundownProtection on %s by %s with no hold outstanding (a release without a successful acquire)", r.name, x.name))
	}
	r.count--
	k.emit(x, KindLock, WhatRundownRelease, r.name, r.count, 0)
	if r.count == 0 && r.rundown {
		k.signal(&r.waiter.dispatcherHeader, 1, IO_NO_INCREMENT)
	}
}

// ExWaitForRundownProtectionRelease begins run-down — every later
// ExAcquireRundownProtection fails — and waits until every hold taken
// before it has been released (DDI:ExWaitForRundownProtectionRelease).
// Called again after that it returns at once, from
// a thread: IRQL ≤ APC_LEVEL, checked (REFERENCE §4.8).
func (k *Kernel) ExWaitForRundownProtectionRelease(r *EX_RUNDOWN_REF) {
	x := k.enterOn("ExWaitForRundownProtectionRelease", &r.aid, des.AccessWrite)
	k.checkIrqlAtMost(x, "ExWaitForRundownProtectionRelease", APC_LEVEL)
	r.rundown = true
	k.emit(x, KindLock, WhatRundownWait, r.name, r.count, 0)
	if r.count == 0 {
		return
	}
	k.KeWaitForSingleObject(r.waiter, Infinite)
}

// ExReInitializeRundownProtection makes r usable again after a completed
// run-down: no holder, run-down not begun (DDI:ExReInitializeRundownProtection).
// Calling it while holds are outstanding or an owner still waits is a
// mistake the model does not check. IRQL: any (REFERENCE §4.8).
func (k *Kernel) ExReInitializeRundownProtection(r *EX_RUNDOWN_REF) {
	x := k.enterOn("ExReInitializeRundownProtection", &r.aid, des.AccessWrite)
	r.rundown = false
	r.waiter.state = 0
	k.emit(x, KindLock, WhatRundownReinit, r.name, r.count, 0)
}

// Holders returns r's outstanding holds and whether run-down has begun,
// for a scenario's checks (not a scheduling point).
func (r *EX_RUNDOWN_REF) Holders() (count int64, rundown bool) { return r.count, r.rundown }
