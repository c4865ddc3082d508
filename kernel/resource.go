package kernel

import (
	"fmt"
	"strings"

	"github.com/wqsim/wqsim/des"
)

// ERESOURCE is a reader/writer lock (REFERENCE §4.6): exclusive ownership
// is recursive for its owner; a shared owner may re-acquire shared; a new
// sharer is admitted while nobody owns it exclusively or waits to.
// Callers must be at ≤ APC_LEVEL with normal kernel APCs disabled
// (KeEnterCriticalRegion) — Verifier 0xC4 P1=0x37 on acquire, 0x38 on
// release otherwise.
//
// Waiters are granted as WRK's ExReleaseResourceLite does, not FIFO: when
// an exclusive owner lets go, every waiting sharer is granted at once if
// there is any, else the first exclusive waiter; when the last sharer
// lets go, the first exclusive waiter is granted (REFERENCE §4.6).
type ERESOURCE struct {
	Name      string
	obj       string // "resource NAME", built once
	exclusive *Thread
	exclCount int
	shared    []sharedOwner
	sharedW   []*Thread // waiting sharers (WRK: a semaphore, all released together)
	exclW     []*Thread // waiting exclusive acquirers (WRK: an event, one at a time)
}

type sharedOwner struct {
	t     *Thread
	count int
}

// ExInitializeResourceLite returns a resource named name.
// IRQL: ≤ DISPATCH_LEVEL as Microsoft documents; the model does not check it (REFERENCE §4.6).
func (k *Kernel) ExInitializeResourceLite(name string) *ERESOURCE {
	k.tick()
	return &ERESOURCE{Name: name, obj: "resource " + name}
}

// ExDeleteResourceLite deletes r from the system's resource list, after
// which the driver may free its storage; it returns STATUS_SUCCESS. The
// model keeps no such list, so the call only checks its IRQL; deleting a
// resource that is still owned or waited for is not reported (Windows
// documents no check for it either).
// IRQL: ≤ APC_LEVEL, checked (REFERENCE §4.6).
func (k *Kernel) ExDeleteResourceLite(r *ERESOURCE) NTSTATUS {
	x := k.enter("ExDeleteResourceLite")
	k.checkIrqlAtMost(x, "ExDeleteResourceLite", APC_LEVEL)
	return STATUS_SUCCESS
}

func (r *ERESOURCE) objName() string {
	if r.obj == "" {
		r.obj = "resource " + r.Name
	}
	return r.obj
}

// ExAcquireResourceExclusiveLite acquires r exclusively; with wait false it
// returns false instead of blocking. A shared owner that asks for
// exclusive access waits for itself for ever, whoever else shares r: a
// deadlock, reported when it starts to wait (see resourceWait).
// IRQL: ≤ APC_LEVEL from a thread, checked (REFERENCE §4.6).
func (k *Kernel) ExAcquireResourceExclusiveLite(r *ERESOURCE, wait bool) bool {
	x := k.enter("ExAcquireResourceExclusiveLite")
	t := k.resourceCaller(x, r, "ExAcquireResourceExclusiveLite", 0x37)
	switch {
	case r.exclusive == t:
		r.exclCount++
		return true
	case r.exclusive == nil && len(r.shared) == 0:
		r.grantExclusive(t)
		k.emit(x, KindLock, WhatAcquireExcl, r.objName(), 0, 0)
		return true
	case !wait:
		return false
	}
	r.exclW = append(r.exclW, t)
	k.resourceWait(x, r, "ExAcquireResourceExclusiveLite")
	return true
}

// ExAcquireResourceSharedLite acquires r shared; with wait false it
// returns false instead of blocking. It is granted at once when r is free,
// when the caller already owns it (either way), or when r is shared and no
// exclusive acquirer waits.
// IRQL: ≤ APC_LEVEL from a thread, checked (REFERENCE §4.6).
func (k *Kernel) ExAcquireResourceSharedLite(r *ERESOURCE, wait bool) bool {
	x := k.enter("ExAcquireResourceSharedLite")
	t := k.resourceCaller(x, r, "ExAcquireResourceSharedLite", 0x37)
	if r.exclusive == t {
		r.exclCount++
		return true
	}
	if i := r.sharedIndex(t); i >= 0 {
		r.shared[i].count++
		return true
	}
	if r.exclusive == nil && len(r.exclW) == 0 {
		r.grantShared(t)
		k.emit(x, KindLock, WhatAcquireShared, r.objName(), 0, 0)
		return true
	}
	if !wait {
		return false
	}
	r.sharedW = append(r.sharedW, t)
	k.resourceWait(x, r, "ExAcquireResourceSharedLite")
	return true
}

// ExReleaseResourceLite releases one acquisition of r by the caller.
// Releasing a resource the caller does not own is bug check 0xE3
// RESOURCE_NOT_OWNED (P2 = the thread, REFERENCE §4.6).
// IRQL: ≤ APC_LEVEL from a thread, checked (Microsoft documents ≤ DISPATCH_LEVEL; REFERENCE §4.6).
func (k *Kernel) ExReleaseResourceLite(r *ERESOURCE) {
	x := k.enter("ExReleaseResourceLite")
	t := k.resourceCaller(x, r, "ExReleaseResourceLite", 0x38)
	if r.exclusive == t {
		r.exclCount--
		if r.exclCount > 0 {
			return
		}
		r.exclusive = nil
		t.dropOwned(r)
		k.emit(x, KindLock, WhatRelease, r.objName(), 0, 0)
		k.grantAfterExclusive(r)
		return
	}
	i := r.sharedIndex(t)
	if i < 0 {
		k.bugCheck(x, "ExReleaseResourceLite", RESOURCE_NOT_OWNED, 0, uint64(t.id), 0, 0,
			fmt.Sprintf("%s releases resource %s it does not own (owner %s)", x.name, r.Name, r.ownerName()))
	}
	r.shared[i].count--
	if r.shared[i].count > 0 {
		return
	}
	r.shared = append(r.shared[:i], r.shared[i+1:]...)
	t.dropOwned(r)
	k.emit(x, KindLock, WhatRelease, r.objName(), 0, 0)
	if len(r.shared) == 0 {
		k.grantOneExclusive(r)
	}
}

// ExConvertExclusiveToSharedLite turns the caller's exclusive ownership
// of r into shared ownership with the same number of acquisitions, and
// grants every waiting sharer at once, as WRK's routine does; exclusive
// waiters go on waiting (DDI:ExConvertExclusiveToSharedLite). It is the
// legal way down; there is no way up (an ERESOURCE cannot be upgraded). A
// caller that does not own r exclusively is stopped with
// RESOURCE_NOT_OWNED 0xE3 (P2 = the thread), the model's choice: Windows
// only asserts it in checked builds. IRQL: ≤ APC_LEVEL from a thread,
// checked (REFERENCE §4.6).
func (k *Kernel) ExConvertExclusiveToSharedLite(r *ERESOURCE) {
	x := k.enter("ExConvertExclusiveToSharedLite")
	t := k.resourceCaller(x, r, "ExConvertExclusiveToSharedLite", 0x37)
	if r.exclusive != t {
		k.bugCheck(x, "ExConvertExclusiveToSharedLite", RESOURCE_NOT_OWNED, 0, uint64(t.id), 0, 0,
			fmt.Sprintf("%s converts resource %s it does not own exclusively (owner %s)", x.name, r.Name, r.ownerName()))
	}
	n := r.exclCount
	r.exclusive, r.exclCount = nil, 0
	r.shared = append(r.shared, sharedOwner{t, n}) // t.owned keeps its entry: still an owner
	k.emit(x, KindLock, WhatConvertToShared, r.objName(), int64(n), 0)
	ws := r.sharedW
	r.sharedW = nil
	for _, w := range ws {
		r.grantShared(w)
	}
	for _, w := range ws {
		k.satisfy(w, STATUS_SUCCESS, 1)
	}
}

func (k *Kernel) resourceCaller(x *exec, r *ERESOURCE, api string, code uint64) *Thread {
	if x.kind != execThread || x.ruleIrql() > APC_LEVEL {
		k.verifierOr0A(x, api, code, fmt.Sprintf("resource %s used at %v", r.Name, x.ruleIrql()))
	}
	t := x.thread
	if t.criticalRegion == 0 && t.guardedRegion == 0 && x.irql < APC_LEVEL && k.cfg.Verifier {
		k.bugCheck(x, api, DRIVER_VERIFIER_DETECTED_VIOLATION, code, 0, 0, 0,
			fmt.Sprintf("resource %s used with normal kernel APCs enabled; call KeEnterCriticalRegion first", r.Name))
	}
	return t
}

func (r *ERESOURCE) grantExclusive(t *Thread) {
	r.exclusive, r.exclCount = t, 1
	t.owned = append(t.owned, ownedLock{r.objName(), r})
}

func (r *ERESOURCE) grantShared(t *Thread) {
	if i := r.sharedIndex(t); i >= 0 {
		r.shared[i].count++ // a sharer that waited behind an exclusive waiter (ExAcquireSharedWaitForExclusive)
		return
	}
	r.shared = append(r.shared, sharedOwner{t, 1})
	t.owned = append(t.owned, ownedLock{r.objName(), r})
}

func (r *ERESOURCE) sharedIndex(t *Thread) int {
	for i, s := range r.shared {
		if s.t == t {
			return i
		}
	}
	return -1
}

// ownerName names r's owner: the exclusive owner, or every sharer.
func (r *ERESOURCE) ownerName() string {
	if r.exclusive != nil {
		return r.exclusive.name
	}
	if len(r.shared) > 0 {
		var b strings.Builder
		for i, s := range r.shared {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(s.t.name)
		}
		b.WriteString(" (shared)")
		return b.String()
	}
	return "nobody"
}

func (r *ERESOURCE) ownerThread() *Thread {
	if r.exclusive != nil {
		return r.exclusive
	}
	if len(r.shared) > 0 {
		return r.shared[0].t
	}
	return nil
}

// resourceWait blocks the caller, already on one of r's waiter lists, until
// a release grants it r. With ResourceOwnerBoost it first arms the
// priority-inversion check (see resourceTimeout).
//
// A caller that owns r shared can never be granted (REFERENCE §4.6): an
// exclusive grant needs every sharer gone, and the waiting sharers of
// ExAcquireSharedWaitForExclusive are only let in after an exclusive owner
// has come and gone; its own hold stays while it waits, and nobody else can
// release it (ExReleaseResourceForThreadLite is not modelled). Its wait is
// an edge to itself, so the check below reports the deadlock at once,
// whoever else shares r; other owners' releases would change nothing.
func (k *Kernel) resourceWait(x *exec, r *ERESOURCE, api string) {
	t := x.thread
	t.wait.lock = lockWait{name: r.objName(), owner: r.ownerName, next: r.ownerThread, self: r.sharedIndex(t) >= 0}
	t.wait.api, t.wait.since = api, k.sim.Now()
	k.emit(x, KindWait, WhatExAcquireResource, r.objName(), 0, 0)
	if k.lockCycle(t) {
		k.halt(x, k.deadlockFrom(x))
	}
	if k.cfg.ResourceOwnerBoost {
		k.armResourceTimeout(t, r, t.waitSeq+1) // the wait block is about to start
	}
	k.block(t)
	// Granted: the owner-boost check is moot. Stop it, so that it does not
	// keep the event queue (and the run's end time) four seconds longer.
	t.resTimer.Stop()
}

// grantAfterExclusive is WRK's exclusive release: all waiting sharers at
// once if there are any, else one exclusive waiter.
func (k *Kernel) grantAfterExclusive(r *ERESOURCE) {
	if len(r.sharedW) == 0 {
		k.grantOneExclusive(r)
		return
	}
	ws := r.sharedW
	r.sharedW = nil
	for _, w := range ws {
		r.grantShared(w)
	}
	for _, w := range ws {
		k.satisfy(w, STATUS_SUCCESS, 1)
	}
}

// grantOneExclusive hands a free r to its first exclusive waiter.
func (k *Kernel) grantOneExclusive(r *ERESOURCE) {
	if len(r.exclW) == 0 {
		return
	}
	w := r.exclW[0]
	r.exclW = r.exclW[1:]
	r.grantExclusive(w)
	k.satisfy(w, STATUS_SUCCESS, 1)
}

// ResourceTimeout is how long a thread waits for an ERESOURCE before it
// boosts the owners (WRK ExpTimeout: 4 s).
const ResourceTimeout = 4 * des.Second

// armResourceTimeout schedules the owner boost of WRK's
// ExpWaitForResource for t's wait on r: each time the wait lasts
// ResourceTimeout, every owner whose priority is below both the waiter's
// and 14 is raised to 14 with a fresh quantum, the extra decaying at
// quantum ends (REFERENCE §4.6). It re-arms only after a boost that
// changed something, so a deadlock still quiesces.
func (k *Kernel) armResourceTimeout(t *Thread, r *ERESOURCE, seq uint32) {
	t.resTimer = k.sim.After(ResourceTimeout, func() {
		if t.state != Waiting || t.waitSeq != seq {
			return
		}
		if k.boostResourceOwners(t, r) {
			k.armResourceTimeout(t, r, seq)
		}
	})
}

func (k *Kernel) boostResourceOwners(waiter *Thread, r *ERESOURCE) bool {
	boosted := false
	boost := func(o *Thread) {
		if o.priority >= waiter.priority || o.priority >= 14 || o.RealTime() {
			return
		}
		k.setPriority(o, 14)
		o.quantumLeft = k.quantum
		k.emit(&o.exec, KindReady, WhatResourceBoost, o.name, 14, int64(waiter.id))
		boosted = true
	}
	if r.exclusive != nil {
		boost(r.exclusive)
	}
	for _, s := range r.shared {
		boost(s.t)
	}
	return boosted
}
