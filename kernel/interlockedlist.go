package kernel

import "github.com/wqsim/wqsim/des"

// The ExInterlocked…List routines do a LIST_ENTRY or SINGLE_LIST_ENTRY
// operation atomically
// under a spin lock of their own (REFERENCE §4.8). Windows takes the lock
// with interrupts disabled, which is why they may be called at any IRQL;
// the model raises the caller to HIGH_LEVEL for the operation (no ISR,
// DPC or dispatch can come between acquire and release on that
// processor), spins on the lock like any spin lock when another processor
// holds it, and restores the caller's IRQL. The whole operation is one
// scheduling point, the call. Microsoft requires the lock to be used with
// these routines only.

// ExInterlockedInsertHeadList links e at the head of the list at head
// under lock and returns the entry that was first, nil if the list was
// empty. IRQL: any (REFERENCE §4.8).
func (k *Kernel) ExInterlockedInsertHeadList(head, e *LIST_ENTRY, lock *KSPIN_LOCK) *LIST_ENTRY {
	return interlocked(k, "ExInterlockedInsertHeadList", lock, func() *LIST_ENTRY {
		first := head.Flink
		k.InsertHeadList(head, e)
		return notHead(head, first)
	})
}

// ExInterlockedInsertTailList links e at the tail of the list at head
// under lock and returns the entry that was last, nil if the list was
// empty. IRQL: any (REFERENCE §4.8).
func (k *Kernel) ExInterlockedInsertTailList(head, e *LIST_ENTRY, lock *KSPIN_LOCK) *LIST_ENTRY {
	return interlocked(k, "ExInterlockedInsertTailList", lock, func() *LIST_ENTRY {
		last := head.Blink
		k.InsertTailList(head, e)
		return notHead(head, last)
	})
}

// ExInterlockedRemoveHeadList unlinks and returns the first entry of the
// list at head under lock, nil if the list is empty. IRQL: any
// (REFERENCE §4.8).
func (k *Kernel) ExInterlockedRemoveHeadList(head *LIST_ENTRY, lock *KSPIN_LOCK) *LIST_ENTRY {
	return interlocked(k, "ExInterlockedRemoveHeadList", lock, func() *LIST_ENTRY {
		if head.Flink == head {
			return nil
		}
		return k.RemoveHeadList(head)
	})
}

// ExInterlockedPushEntryList links e at the front of the singly linked
// list at head under lock and returns the entry that was first, nil if
// the list was empty. IRQL: any (REFERENCE §4.8).
func (k *Kernel) ExInterlockedPushEntryList(head, e *SINGLE_LIST_ENTRY, lock *KSPIN_LOCK) *SINGLE_LIST_ENTRY {
	return interlocked(k, "ExInterlockedPushEntryList", lock, func() *SINGLE_LIST_ENTRY {
		first := head.Next
		k.PushEntryList(head, e)
		return first
	})
}

// ExInterlockedPopEntryList unlinks and returns the first entry of the
// singly linked list at head under lock, nil if the list is empty.
// IRQL: any (REFERENCE §4.8).
func (k *Kernel) ExInterlockedPopEntryList(head *SINGLE_LIST_ENTRY, lock *KSPIN_LOCK) *SINGLE_LIST_ENTRY {
	return interlocked(k, "ExInterlockedPopEntryList", lock, func() *SINGLE_LIST_ENTRY {
		return k.PopEntryList(head)
	})
}

// notHead is e, or nil when e is the list head itself (the list was empty).
func notHead(head, e *LIST_ENTRY) *LIST_ENTRY {
	if e == head {
		return nil
	}
	return e
}

// interlocked runs op at HIGH_LEVEL holding lock and returns its result.
func interlocked[T any](k *Kernel, api string, lock *KSPIN_LOCK, op func() T) T {
	x := k.enterOn(api, &lock.aid, des.AccessLock)
	old := x.irql
	k.setIrql(x, HIGH_LEVEL)
	k.spinAcquire(x, lock, api)
	r := op()
	k.spinRelease(x, lock, api)
	k.lowerTo(x, old)
	return r
}
