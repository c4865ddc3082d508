package kernel

import "fmt"

// ERESOURCE is a reader/writer lock (REFERENCE §4.6): exclusive ownership
// is recursive for its owner; shared ownership is granted while no thread
// owns or waits for it exclusively (a shared owner may re-acquire shared).
// Callers must be at ≤ APC_LEVEL with normal kernel APCs disabled
// (KeEnterCriticalRegion) — Verifier 0xC4 P1=0x37 on acquire, 0x38 on
// release otherwise.
type ERESOURCE struct {
	Name      string
	obj       string // "resource NAME", built once
	exclusive *Thread
	exclCount int
	shared    []sharedOwner
	waiters   []resWaiter
}

type sharedOwner struct {
	t     *Thread
	count int
}

type resWaiter struct {
	t         *Thread
	exclusive bool
}

// ExInitializeResourceLite returns a resource named name.
func (k *Kernel) ExInitializeResourceLite(name string) *ERESOURCE {
	return &ERESOURCE{Name: name, obj: "resource " + name}
}

func (r *ERESOURCE) objName() string {
	if r.obj == "" {
		r.obj = "resource " + r.Name
	}
	return r.obj
}

// ExAcquireResourceExclusiveLite acquires r exclusively; with wait false it
// returns false instead of blocking.
func (k *Kernel) ExAcquireResourceExclusiveLite(r *ERESOURCE, wait bool) bool {
	x := k.enter("ExAcquireResourceExclusiveLite")
	t := k.resourceCaller(x, r, "ExAcquireResourceExclusiveLite", 0x37)
	switch {
	case r.exclusive == t:
		r.exclCount++
		return true
	case r.exclusive == nil && len(r.shared) == 0:
		r.grantExclusive(t)
		k.emit(x, KindLock, "acquire-excl", r.objName(), 0, 0)
		return true
	case !wait:
		return false
	}
	k.resourceWait(x, r, true)
	return true
}

// ExAcquireResourceSharedLite acquires r shared; with wait false it
// returns false instead of blocking.
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
	if r.exclusive == nil && !r.exclusiveWaiting() {
		r.shared = append(r.shared, sharedOwner{t, 1})
		t.owned = append(t.owned, ownedLock{r.objName(), r})
		k.emit(x, KindLock, "acquire-shared", r.objName(), 0, 0)
		return true
	}
	if !wait {
		return false
	}
	k.resourceWait(x, r, false)
	return true
}

// ExReleaseResourceLite releases one acquisition of r by the caller.
func (k *Kernel) ExReleaseResourceLite(r *ERESOURCE) {
	x := k.enter("ExReleaseResourceLite")
	t := k.resourceCaller(x, r, "ExReleaseResourceLite", 0x38)
	switch {
	case r.exclusive == t:
		r.exclCount--
		if r.exclCount > 0 {
			return
		}
		r.exclusive = nil
		t.dropOwned(r)
	default:
		i := r.sharedIndex(t)
		if i < 0 {
			k.halt(x, fmt.Errorf("ExReleaseResourceLite: %s releases resource %s it does not own", x.name, r.Name))
		}
		r.shared[i].count--
		if r.shared[i].count > 0 {
			return
		}
		r.shared = append(r.shared[:i], r.shared[i+1:]...)
		t.dropOwned(r)
	}
	k.emit(x, KindLock, "release", r.objName(), 0, 0)
	k.grantResourceWaiters(r)
}

func (k *Kernel) resourceCaller(x *exec, r *ERESOURCE, api string, code uint64) *Thread {
	if x.kind != execThread || x.irql > APC_LEVEL {
		k.verifierOr0A(x, api, code, fmt.Sprintf("resource %s used at %v", r.Name, x.irql))
	}
	t := x.thread
	if t.criticalRegion == 0 && x.irql < APC_LEVEL && k.cfg.Verifier {
		k.bugCheck(x, api, DRIVER_VERIFIER_DETECTED_VIOLATION, code, 0, 0, 0,
			fmt.Sprintf("resource %s used with normal kernel APCs enabled; call KeEnterCriticalRegion first", r.Name))
	}
	return t
}

func (r *ERESOURCE) grantExclusive(t *Thread) {
	r.exclusive, r.exclCount = t, 1
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

func (r *ERESOURCE) exclusiveWaiting() bool {
	for _, w := range r.waiters {
		if w.exclusive {
			return true
		}
	}
	return false
}

func (r *ERESOURCE) ownerName() string {
	if r.exclusive != nil {
		return r.exclusive.name
	}
	if len(r.shared) > 0 {
		return r.shared[0].t.name + " (shared)"
	}
	return ""
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

func (k *Kernel) resourceWait(x *exec, r *ERESOURCE, exclusive bool) {
	t := x.thread
	r.waiters = append(r.waiters, resWaiter{t, exclusive})
	t.wait.lock = lockWait{name: "resource " + r.Name, owner: r.ownerName, next: r.ownerThread}
	t.wait.api = "ExAcquireResource"
	k.emit(x, KindWait, "ExAcquireResource", r.objName(), 0, 0)
	if k.lockCycle(t) {
		k.halt(x, k.deadlockFrom(x))
	}
	k.block(t)
}

// grantResourceWaiters hands a free resource to the head waiter, or to
// every shared waiter at the head.
func (k *Kernel) grantResourceWaiters(r *ERESOURCE) {
	for len(r.waiters) > 0 {
		w := r.waiters[0]
		if w.exclusive {
			if r.exclusive != nil || len(r.shared) > 0 {
				return
			}
			r.waiters = r.waiters[1:]
			r.grantExclusive(w.t)
			k.satisfy(w.t, STATUS_SUCCESS, 1)
			return
		}
		if r.exclusive != nil {
			return
		}
		r.waiters = r.waiters[1:]
		r.shared = append(r.shared, sharedOwner{w.t, 1})
		w.t.owned = append(w.t.owned, ownedLock{r.objName(), r})
		k.satisfy(w.t, STATUS_SUCCESS, 1)
	}
}
