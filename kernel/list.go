package kernel

// LIST_ENTRY is the doubly linked list link of wdm.h, for any list a
// driver keeps (REFERENCE §4.8). Container stands in for CONTAINING_RECORD:
// the object the entry is embedded in, set by whoever embeds it.
//
// The list routines are the checked inline functions of current wdm.h:
// inserting next to a head whose neighbour does not point back, or
// unlinking an entry whose neighbours do not point back at it (removed
// twice, never inserted, or a list corrupted under a race) is the fast
// fail KERNEL_SECURITY_CHECK_FAILURE 0x139 with P1 = 3
// (FAST_FAIL_CORRUPT_LIST_ENTRY), raised at the calling simulated code.
// They cost no CPU time and are not scheduling points; the lock that
// protects the list is what the explorer interleaves around.
type LIST_ENTRY struct {
	Flink, Blink *LIST_ENTRY
	Container    any
}

// FAST_FAIL_CORRUPT_LIST_ENTRY is P1 of bug check 0x139 for a corrupted
// list link.
const FAST_FAIL_CORRUPT_LIST_ENTRY = 3

// InitializeListHead makes head an empty list.
// IRQL: any (REFERENCE §4.8).
func (k *Kernel) InitializeListHead(head *LIST_ENTRY) { head.Flink, head.Blink = head, head }

// IsListEmpty reports whether the list at head is empty.
// IRQL: any (REFERENCE §4.8).
func (k *Kernel) IsListEmpty(head *LIST_ENTRY) bool { return head.Flink == head }

// InsertTailList links e at the tail of the list at head (0x139 if the
// tail's forward link does not point at head).
// IRQL: any; the caller synchronises the list itself (REFERENCE §4.8).
func (k *Kernel) InsertTailList(head, e *LIST_ENTRY) {
	prev := head.Blink
	if prev == nil || prev.Flink != head {
		k.listCorrupt("InsertTailList", e, "the list head's tail does not point back at the head (uninitialised or corrupted list)")
		return
	}
	e.Flink, e.Blink = head, prev
	prev.Flink = e
	head.Blink = e
}

// InsertHeadList links e at the head of the list at head (0x139 if the
// first entry's back link does not point at head).
// IRQL: any; the caller synchronises the list itself (REFERENCE §4.8).
func (k *Kernel) InsertHeadList(head, e *LIST_ENTRY) {
	next := head.Flink
	if next == nil || next.Blink != head {
		k.listCorrupt("InsertHeadList", e, "the list head's first entry does not point back at the head (uninitialised or corrupted list)")
		return
	}
	e.Flink, e.Blink = next, head
	next.Blink = e
	head.Flink = e
}

// RemoveEntryList unlinks e and reports whether the list is now empty
// (0x139 if e is not properly linked).
// IRQL: any; the caller synchronises the list itself (REFERENCE §4.8).
func (k *Kernel) RemoveEntryList(e *LIST_ENTRY) bool {
	next, prev := e.Flink, e.Blink
	if next == nil || prev == nil || next.Blink != e || prev.Flink != e {
		k.listCorrupt("RemoveEntryList", e, "unlink of an entry whose neighbours do not point back at it (removed twice or never inserted)")
		return false
	}
	prev.Flink, next.Blink = next, prev
	return next == prev
}

// RemoveHeadList unlinks and returns the first entry of a non-empty list
// (0x139 if the first entry is not properly linked).
// IRQL: any; the caller synchronises the list itself (REFERENCE §4.8).
func (k *Kernel) RemoveHeadList(head *LIST_ENTRY) *LIST_ENTRY {
	e := head.Flink
	if e == nil || e.Blink != head || e.Flink == nil || e.Flink.Blink != e {
		k.listCorrupt("RemoveHeadList", e, "the first entry's links do not point back (corrupted list)")
		return nil
	}
	head.Flink, e.Flink.Blink = e.Flink, head
	return e
}

// RemoveTailList unlinks and returns the last entry of a non-empty list
// (0x139 if the last entry is not properly linked). On an empty list it
// returns head, as wdm.h's does.
// IRQL: any; the caller synchronises the list itself (REFERENCE §4.8).
func (k *Kernel) RemoveTailList(head *LIST_ENTRY) *LIST_ENTRY {
	e := head.Blink
	if e == nil || e.Flink != head || e.Blink == nil || e.Blink.Flink != e {
		k.listCorrupt("RemoveTailList", e, "the last entry's links do not point back (corrupted list)")
		return nil
	}
	head.Blink, e.Blink.Flink = e.Blink, head
	return e
}

func (k *Kernel) listCorrupt(api string, e *LIST_ENTRY, detail string) {
	if e != nil {
		if n, ok := e.Container.(interface{ Name() string }); ok {
			detail = n.Name() + ": " + detail
		}
	}
	x := k.curOrNil()
	if x == nil {
		panic("kernel: " + api + " outside simulated code: " + detail)
	}
	k.bugCheck(x, api, KERNEL_SECURITY_CHECK_FAILURE, FAST_FAIL_CORRUPT_LIST_ENTRY, 0, 0, 0, "corrupted LIST_ENTRY: "+detail)
}

// SINGLE_LIST_ENTRY is the singly linked list link of wdm.h: a list head
// whose Next is nil is an empty list, and each entry's Next is the one
// after it (REFERENCE §4.8). Container stands in for CONTAINING_RECORD, as
// in LIST_ENTRY. A driver may read Next; only the list routines change it.
type SINGLE_LIST_ENTRY struct {
	Next      *SINGLE_LIST_ENTRY
	Container any
}

// PushEntryList links e at the front of the singly linked list at head.
// IRQL: any; the caller synchronises the list itself (REFERENCE §4.8).
func (k *Kernel) PushEntryList(head, e *SINGLE_LIST_ENTRY) {
	e.Next = head.Next
	head.Next = e
}

// PopEntryList unlinks and returns the first entry of the singly linked
// list at head, nil if the list is empty.
// IRQL: any; the caller synchronises the list itself (REFERENCE §4.8).
func (k *Kernel) PopEntryList(head *SINGLE_LIST_ENTRY) *SINGLE_LIST_ENTRY {
	e := head.Next
	if e != nil {
		head.Next = e.Next
	}
	return e
}
