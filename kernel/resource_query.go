package kernel

// The ERESOURCE ownership queries and the two shared-acquire variants that
// differ from ExAcquireResourceSharedLite only in whom a new sharer waits
// for (REFERENCE §4.11).

// ExIsResourceAcquiredExclusiveLite reports whether the current thread
// owns r exclusively. The current thread is KeGetCurrentThread's: in a DPC
// or ISR, the thread it interrupted (REFERENCE §4.5).
// IRQL: ≤ DISPATCH_LEVEL, checked (IRQL_NOT_LESS_OR_EQUAL 0xA above it;
// REFERENCE §4.11).
func (k *Kernel) ExIsResourceAcquiredExclusiveLite(r *ERESOURCE) bool {
	t := k.resourceQueryCaller("ExIsResourceAcquiredExclusiveLite")
	return t != nil && r.exclusive == t
}

// ExIsResourceAcquiredSharedLite returns how many times the current
// thread has acquired r and not yet released it, counting exclusive
// acquisitions too: Windows treats exclusive access as a kind of shared
// access, so the count is non-zero (true, in C) for an exclusive owner as
// well, and 0 for a thread that does not own r. Same current thread as
// ExIsResourceAcquiredExclusiveLite.
// IRQL: ≤ DISPATCH_LEVEL, checked (0xA above it; REFERENCE §4.11).
func (k *Kernel) ExIsResourceAcquiredSharedLite(r *ERESOURCE) uint32 {
	t := k.resourceQueryCaller("ExIsResourceAcquiredSharedLite")
	switch {
	case t == nil:
		return 0
	case r.exclusive == t:
		return uint32(r.exclCount)
	}
	if i := r.sharedIndex(t); i >= 0 {
		return uint32(r.shared[i].count)
	}
	return 0
}

// resourceQueryCaller is the scheduling point and IRQL check of the two
// queries; it returns the current thread, nil on an idle processor.
func (k *Kernel) resourceQueryCaller(api string) *Thread {
	x := k.enter(api)
	k.checkIrqlAtMost(x, api, DISPATCH_LEVEL)
	if x.thread != nil {
		return x.thread
	}
	return x.cpu.cur
}

// ExAcquireSharedStarveExclusive acquires r shared without letting
// waiting exclusive acquirers go first: granted at once when r is free,
// when the caller already owns it (either way, recursively), and when r is
// owned shared even if exclusive acquirers wait — they starve while new
// sharers keep arriving. It waits (or, with wait false, returns false)
// only while another thread owns r exclusively.
// IRQL: ≤ APC_LEVEL from a thread inside a critical or guarded region,
// checked as for ExAcquireResourceSharedLite (Verifier 0xC4 P1=0x37;
// REFERENCE §4.11).
func (k *Kernel) ExAcquireSharedStarveExclusive(r *ERESOURCE, wait bool) bool {
	const api = "ExAcquireSharedStarveExclusive"
	x := k.enter(api)
	t := k.resourceCaller(x, r, api, 0x37)
	if k.resourceRecurse(r, t) {
		return true
	}
	if r.exclusive == nil {
		r.grantShared(t)
		k.emit(x, KindLock, WhatAcquireShared, r.objName(), 0, 0)
		return true
	}
	return k.resourceSharedWait(x, r, api, wait)
}

// ExAcquireSharedWaitForExclusive acquires r shared, but defers to any
// waiting exclusive acquirer even when the caller already owns r shared:
// granted at once when r is free, when the caller owns it exclusively
// (recursively), and when r is owned shared and no exclusive acquirer
// waits (recursively if the caller is one of the sharers). Otherwise it
// waits (or, with wait false, returns false) until the exclusive waiters
// have had r and released it. A sharer that calls it with wait true while
// an exclusive acquirer waits therefore waits for a thread that waits for
// it: unless another thread releases the caller's shared hold for it, that
// is a deadlock, which Microsoft's page warns of (REFERENCE §4.11).
// IRQL: ≤ APC_LEVEL from a thread inside a critical or guarded region,
// checked (Verifier 0xC4 P1=0x37; REFERENCE §4.11).
func (k *Kernel) ExAcquireSharedWaitForExclusive(r *ERESOURCE, wait bool) bool {
	const api = "ExAcquireSharedWaitForExclusive"
	x := k.enter(api)
	t := k.resourceCaller(x, r, api, 0x37)
	if r.exclusive == t {
		r.exclCount++
		return true
	}
	if r.exclusive == nil && len(r.exclW) == 0 {
		if i := r.sharedIndex(t); i >= 0 {
			r.shared[i].count++
			return true
		}
		r.grantShared(t)
		k.emit(x, KindLock, WhatAcquireShared, r.objName(), 0, 0)
		return true
	}
	return k.resourceSharedWait(x, r, api, wait)
}

// resourceRecurse grants t one more acquisition of r if it already owns r
// in either mode, and reports whether it did.
func (k *Kernel) resourceRecurse(r *ERESOURCE, t *Thread) bool {
	if r.exclusive == t {
		r.exclCount++
		return true
	}
	if i := r.sharedIndex(t); i >= 0 {
		r.shared[i].count++
		return true
	}
	return false
}

// resourceSharedWait queues the caller as a waiting sharer of r and blocks
// until a release grants it (REFERENCE §4.6), or returns false at once
// when wait is false.
func (k *Kernel) resourceSharedWait(x *exec, r *ERESOURCE, api string, wait bool) bool {
	if !wait {
		return false
	}
	r.sharedW = append(r.sharedW, x.thread)
	k.resourceWait(x, r, api)
	return true
}
