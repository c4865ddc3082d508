package fltmgr

import "github.com/wqsim/wqsim/kernel"

// The filter manager's lock wrappers (REFERENCE §4.25): push locks and
// ERESOURCEs acquired inside a critical region that the wrapper enters and
// its release leaves, so a minifilter need not call KeEnterCriticalRegion
// itself (DDI:FltAcquirePushLockExclusive, DDI:FltAcquireResourceExclusive).

// FltInitializePushLock returns a free push lock named name
// (DDI:FltInitializePushLock).
// IRQL: any; not a scheduling point (REFERENCE §4.25).
func (fm *FilterManager) FltInitializePushLock(name string) *kernel.EX_PUSH_LOCK {
	return fm.k.ExInitializePushLock(name)
}

// FltDeletePushLock deletes a push lock nobody holds; the model has
// nothing to free, and does not check that nobody holds it.
// IRQL: ≤ APC_LEVEL, checked (REFERENCE §4.25).
func (fm *FilterManager) FltDeletePushLock(l *kernel.EX_PUSH_LOCK) {
	fm.k.Layer().CheckIrqlAtMost("FltDeletePushLock", kernel.APC_LEVEL)
}

// FltAcquirePushLockExclusive enters a critical region and acquires l
// exclusively, waiting while anyone holds it or waits for it. Acquiring a
// push lock the caller holds hangs it, reported as a deadlock.
// IRQL: ≤ APC_LEVEL, checked (REFERENCE §4.25).
func (fm *FilterManager) FltAcquirePushLockExclusive(l *kernel.EX_PUSH_LOCK) {
	fm.k.Layer().CheckIrqlAtMost("FltAcquirePushLockExclusive", kernel.APC_LEVEL)
	fm.k.KeEnterCriticalRegion()
	fm.k.ExAcquirePushLockExclusive(l)
}

// FltAcquirePushLockShared enters a critical region and acquires l
// shared (see kernel.Kernel.ExAcquirePushLockShared for when it waits).
// IRQL: ≤ APC_LEVEL, checked (REFERENCE §4.25).
func (fm *FilterManager) FltAcquirePushLockShared(l *kernel.EX_PUSH_LOCK) {
	fm.k.Layer().CheckIrqlAtMost("FltAcquirePushLockShared", kernel.APC_LEVEL)
	fm.k.KeEnterCriticalRegion()
	fm.k.ExAcquirePushLockShared(l)
}

// FltReleasePushLock releases the caller's hold of l, exclusive or
// shared, and leaves the critical region its acquisition entered. A hold
// the caller does not have is RESOURCE_NOT_OWNED 0xE3 (the model's
// choice; Windows corrupts the lock).
// IRQL: ≤ APC_LEVEL, checked (REFERENCE §4.25).
func (fm *FilterManager) FltReleasePushLock(l *kernel.EX_PUSH_LOCK) {
	fm.k.Layer().CheckIrqlAtMost("FltReleasePushLock", kernel.APC_LEVEL)
	fm.k.ExReleasePushLock(l)
	fm.k.KeLeaveCriticalRegion()
}

// FltAcquireResourceExclusive enters a critical region and acquires r
// exclusively, waiting if need be (ExAcquireResourceExclusiveLite's rules).
// IRQL: ≤ APC_LEVEL, checked (REFERENCE §4.25).
func (fm *FilterManager) FltAcquireResourceExclusive(r *kernel.ERESOURCE) {
	fm.k.Layer().CheckIrqlAtMost("FltAcquireResourceExclusive", kernel.APC_LEVEL)
	fm.k.KeEnterCriticalRegion()
	fm.k.ExAcquireResourceExclusiveLite(r, true)
}

// FltAcquireResourceShared enters a critical region and acquires r
// shared, waiting if need be (ExAcquireResourceSharedLite's rules).
// IRQL: ≤ APC_LEVEL, checked (REFERENCE §4.25).
func (fm *FilterManager) FltAcquireResourceShared(r *kernel.ERESOURCE) {
	fm.k.Layer().CheckIrqlAtMost("FltAcquireResourceShared", kernel.APC_LEVEL)
	fm.k.KeEnterCriticalRegion()
	fm.k.ExAcquireResourceSharedLite(r, true)
}

// FltReleaseResource releases one acquisition of r and leaves the
// critical region its acquisition entered.
// IRQL: ≤ APC_LEVEL, checked (REFERENCE §4.25).
func (fm *FilterManager) FltReleaseResource(r *kernel.ERESOURCE) {
	fm.k.Layer().CheckIrqlAtMost("FltReleaseResource", kernel.APC_LEVEL)
	fm.k.ExReleaseResourceLite(r)
	fm.k.KeLeaveCriticalRegion()
}
