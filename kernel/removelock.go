package kernel

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
)

// IO_REMOVE_LOCK is a remove lock (REFERENCE §5.6): a count of the I/O
// operations using a device, which the driver's IRP_MN_REMOVE_DEVICE code
// drains with IoReleaseRemoveLockAndWait before it detaches and deletes the
// device. The model keeps the free build's arithmetic (WDK remlock.c, the
// "Common" block): the count starts at 1, a bias only
// IoReleaseRemoveLockAndWait takes away, so the remove event can be set
// only after the removal has begun. The checked build's per-tag tracking
// is not modelled; the tag is accepted and ignored.
type IO_REMOVE_LOCK struct {
	aid     int32
	name    string
	ioCount int64
	removed bool
	event   *KEVENT // RemoveEvent: set when the count reaches zero
}

// IoInitializeRemoveLock returns a remove lock named name with no
// acquisition outstanding (DDI:IoInitializeRemoveLock; its AllocateTag,
// MaxLockedMinutes and HighWatermark serve the checked build only and are
// left out). IRQL: PASSIVE_LEVEL as Microsoft documents; the model does not
// check it (REFERENCE §5.6).
func (k *Kernel) IoInitializeRemoveLock(name string) *IO_REMOVE_LOCK {
	l := &IO_REMOVE_LOCK{name: "remove lock " + name, ioCount: 1}
	// Named after the lock, so that a removal that never drains is reported
	// as a wait for the remove lock, not for an anonymous event.
	l.event = k.KeInitializeEvent(l.name+" drained", NotificationEvent, false)
	k.numberAtBirth(&l.aid)
	return l
}

// IoAcquireRemoveLock adds an acquisition and returns STATUS_SUCCESS, or,
// once IoReleaseRemoveLockAndWait has begun, takes it back and returns
// STATUS_DELETE_PENDING: the caller must then fail the request without
// touching the device (DDI:IoAcquireRemoveLock). The increment and the
// check of the removed flag are one step here, two interlocked steps in
// Windows; the protocol's outcome is the same. IRQL ≤ DISPATCH_LEVEL,
// checked (REFERENCE §5.6).
func (k *Kernel) IoAcquireRemoveLock(l *IO_REMOVE_LOCK, tag any) NTSTATUS {
	x := k.enterOn("IoAcquireRemoveLock", &l.aid, des.AccessWrite)
	k.checkIrqlAtMost(x, "IoAcquireRemoveLock", DISPATCH_LEVEL)
	if l.removed {
		k.emit(x, KindLock, WhatRemoveLockRefused, l.name, l.ioCount, 0)
		return STATUS_DELETE_PENDING
	}
	l.ioCount++
	k.emit(x, KindLock, WhatRemoveLockAcquire, l.name, l.ioCount, 0)
	return STATUS_SUCCESS
}

// IoReleaseRemoveLock gives back one acquisition; the one that brings the
// count to zero (possible only after the removal has begun) sets the
// remove event IoReleaseRemoveLockAndWait waits on
// (DDI:IoReleaseRemoveLock). A release with nothing outstanding before
// the removal is a mistake the free build does not catch; the model stops
// there with a Go panic naming the lock (a panic in driver code). After a
// removal that took away a count it did not own (see
// IoReleaseRemoveLockAndWait) the count just goes on down, as in the free
// build. IRQL ≤ DISPATCH_LEVEL, checked (REFERENCE §5.6).
func (k *Kernel) IoReleaseRemoveLock(l *IO_REMOVE_LOCK, tag any) {
	x := k.enterOn("IoReleaseRemoveLock", &l.aid, des.AccessWrite)
	k.checkIrqlAtMost(x, "IoReleaseRemoveLock", DISPATCH_LEVEL)
	if l.ioCount == 1 && !l.removed {
		panic(fmt.Sprintf("kernel: IoReleaseRemoveLock on %s by %s with no acquisition outstanding", l.name, x.name))
	}
	l.ioCount--
	k.emit(x, KindLock, WhatRemoveLockRelease, l.name, l.ioCount, 0)
	if l.ioCount == 0 {
		k.signal(&l.event.dispatcherHeader, 1, IO_NO_INCREMENT)
	}
}

// IoReleaseRemoveLockAndWait marks the removal begun (later acquires fail),
// releases the caller's own acquisition and the initial bias, and waits
// until every other acquisition has been released
// (DDI:IoReleaseRemoveLockAndWait). The caller must hold an acquisition:
// one that does not takes away a count some other holder owns, and the
// call can return while that holder still uses the device — the free
// build's behaviour, which the model keeps so that the consequence (a use
// of the freed device) is what gets reported.
// IRQL: PASSIVE_LEVEL, checked as ≤ APC_LEVEL, the most a wait allows
// (REFERENCE §5.6).
func (k *Kernel) IoReleaseRemoveLockAndWait(l *IO_REMOVE_LOCK, tag any) {
	x := k.enterOn("IoReleaseRemoveLockAndWait", &l.aid, des.AccessWrite)
	k.checkIrqlAtMost(x, "IoReleaseRemoveLockAndWait", APC_LEVEL)
	l.removed = true
	l.ioCount -= 2 // the caller's acquisition, then the initial bias
	k.emit(x, KindLock, WhatRemoveLockWait, l.name, l.ioCount, 0)
	if l.ioCount > 0 {
		k.KeWaitForSingleObject(l.event, Infinite)
	}
}

// Outstanding returns the lock's count as the free build keeps it (1 plus
// the acquisitions while not removed) and whether removal has begun, for a
// scenario's checks (not a scheduling point).
func (l *IO_REMOVE_LOCK) Outstanding() (count int64, removed bool) { return l.ioCount, l.removed }
