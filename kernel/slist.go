package kernel

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
)

// Sequenced singly linked lists (S-lists, REFERENCE §4.8). On 64-bit
// Windows every push, pop and flush is one compare-exchange on the list
// header, which holds the first entry and the depth; the ExInterlocked…
// forms that take a spin lock expand to the same routine as the
// Interlocked… forms and never use the lock. The model makes each
// operation one scheduling point, the call, after which it changes the
// header in one step, so operations on other processors interleave
// between calls, never inside one. No IRQL is raised and no lock is
// taken: any caller IRQL is legal, an ISR included.
//
// Each push, pop and flush is a trace record naming the list ("S-list 1",
// numbered in the order the lists were initialised), and a hang report
// names every list that still holds entries (REFERENCE §3.6).

// SLIST_ENTRY is the link of an S-list. A driver may read Next; only the
// S-list routines change it. Container stands in for CONTAINING_RECORD,
// as in LIST_ENTRY.
type SLIST_ENTRY struct {
	Next      *SLIST_ENTRY
	Container any
}

// SLIST_HEADER is the head of an S-list; initialise it with
// ExInitializeSListHead. Its fields are the kernel's: the first entry and
// the depth change together in each operation.
type SLIST_HEADER struct {
	first *SLIST_ENTRY
	depth uint16 // USHORT, as ExQueryDepthSList returns it
	aid   int32  // access number (access.go)
	name  string // "S-list N", for traces and hang reports
	// the last push, for a hang report
	pushedBy string
	pushedAt des.Time
}

// ExInitializeSListHead makes h an empty S-list (depth 0).
// IRQL: any (REFERENCE §4.8).
func (k *Kernel) ExInitializeSListHead(h *SLIST_HEADER) {
	h.first, h.depth = nil, 0
	for _, o := range k.slists {
		if o == h {
			return // initialised again in this run: keeps its name
		}
	}
	// A header may outlive a run (a package variable): it is named and
	// listed afresh in each run, so every run reports the same.
	k.slists = append(k.slists, h)
	h.name = fmt.Sprintf("S-list %d", len(k.slists))
	h.pushedBy, h.pushedAt = "", 0
}

// Name returns the list's name in traces and reports ("S-list 1"; empty
// before ExInitializeSListHead).
func (h *SLIST_HEADER) Name() string { return h.name }

// strandedSListNotes names, for a hang report, each S-list that still
// holds entries: work handed over that nobody took, or just a free list
// that is not empty, so the note states the fact and claims nothing
// (REFERENCE §3.6).
func (k *Kernel) strandedSListNotes() []string {
	var out []string
	for _, h := range k.slists {
		if h.first == nil {
			continue
		}
		out = append(out, fmt.Sprintf("%s still holds %d %s (last pushed by %s at t=%v)",
			h.name, h.depth, plural(int(h.depth), "entry", "entries"), h.pushedBy, h.pushedAt))
	}
	return out
}

// ExInterlockedPushEntrySList links e at the front of the S-list h and
// returns the entry that was first, nil if the list was empty. lock is
// accepted for the documented signature and not used, as on 64-bit
// Windows. IRQL: any (REFERENCE §4.8).
func (k *Kernel) ExInterlockedPushEntrySList(h *SLIST_HEADER, e *SLIST_ENTRY, lock *KSPIN_LOCK) *SLIST_ENTRY {
	return k.slistPush("ExInterlockedPushEntrySList", h, e)
}

// InterlockedPushEntrySList is ExInterlockedPushEntrySList without the
// lock argument. IRQL: any (REFERENCE §4.8).
func (k *Kernel) InterlockedPushEntrySList(h *SLIST_HEADER, e *SLIST_ENTRY) *SLIST_ENTRY {
	return k.slistPush("InterlockedPushEntrySList", h, e)
}

// ExInterlockedPopEntrySList unlinks and returns the first entry of the
// S-list h, nil if it is empty. lock is not used, as on 64-bit Windows.
// IRQL: any (REFERENCE §4.8).
func (k *Kernel) ExInterlockedPopEntrySList(h *SLIST_HEADER, lock *KSPIN_LOCK) *SLIST_ENTRY {
	return k.slistPop("ExInterlockedPopEntrySList", h)
}

// InterlockedPopEntrySList is ExInterlockedPopEntrySList without the lock
// argument. IRQL: any (REFERENCE §4.8).
func (k *Kernel) InterlockedPopEntrySList(h *SLIST_HEADER) *SLIST_ENTRY {
	return k.slistPop("InterlockedPopEntrySList", h)
}

// ExInterlockedFlushSList empties the S-list h and returns what was its
// first entry (the entries stay chained through Next), nil if it was
// empty. IRQL: any (REFERENCE §4.8).
func (k *Kernel) ExInterlockedFlushSList(h *SLIST_HEADER) *SLIST_ENTRY {
	return k.slistFlush("ExInterlockedFlushSList", h)
}

// InterlockedFlushSList is the same routine as ExInterlockedFlushSList.
// IRQL: any (REFERENCE §4.8).
func (k *Kernel) InterlockedFlushSList(h *SLIST_HEADER) *SLIST_ENTRY {
	return k.slistFlush("InterlockedFlushSList", h)
}

// ExQueryDepthSList returns the number of entries on the S-list h, modulo
// 65,536 (the depth is a USHORT). It reads the header without a lock, so
// the answer may be stale as soon as it returns.
// IRQL: ≤ DISPATCH_LEVEL, checked (IRQL_NOT_LESS_OR_EQUAL 0xA above it;
// REFERENCE §4.8).
func (k *Kernel) ExQueryDepthSList(h *SLIST_HEADER) uint16 {
	x := k.enterOn("ExQueryDepthSList", &h.aid, des.AccessRead)
	k.checkIrqlAtMost(x, "ExQueryDepthSList", DISPATCH_LEVEL)
	return h.depth
}

func (k *Kernel) slistPush(api string, h *SLIST_HEADER, e *SLIST_ENTRY) *SLIST_ENTRY {
	x := k.enterOn(api, &h.aid, des.AccessWrite)
	first := h.first
	e.Next = first
	h.first = e
	h.depth++
	h.pushedBy, h.pushedAt = x.name, k.sim.Now()
	wasEmpty := int64(0)
	if first == nil {
		wasEmpty = 1
	}
	k.emit(x, KindMemory, WhatSListPush, h.name, int64(h.depth), wasEmpty)
	return first
}

func (k *Kernel) slistPop(api string, h *SLIST_HEADER) *SLIST_ENTRY {
	x := k.enterOn(api, &h.aid, des.AccessWrite)
	e := h.first
	took := int64(0)
	if e != nil {
		h.first = e.Next
		h.depth--
		took = 1
	}
	k.emit(x, KindMemory, WhatSListPop, h.name, int64(h.depth), took)
	return e
}

func (k *Kernel) slistFlush(api string, h *SLIST_HEADER) *SLIST_ENTRY {
	x := k.enterOn(api, &h.aid, des.AccessWrite)
	first, taken := h.first, int64(h.depth)
	h.first, h.depth = nil, 0
	k.emit(x, KindMemory, WhatSListFlush, h.name, taken, 0)
	return first
}
