package kernel

import "fmt"

// NPAGED_LOOKASIDE_LIST is a nonpaged lookaside list: a per-driver cache of
// fixed-size nonpaged pool entries (REFERENCE §4.14). The driver owns the
// structure's storage, typically its device extension: set Block to the
// pool block that holds it, and any call on the list after that block is
// freed is a use after free (0xD5). The zero value is uninitialised; call
// ExInitializeNPagedLookasideList first.
type NPAGED_LOOKASIDE_LIST struct {
	// Block is the pool block holding the list head, nil for static storage.
	Block *PoolBlock

	name    string
	size    int
	tag     string
	depth   int
	cached  []*PoolBlock // the S-list of free entries
	active  bool         // on the system's list of lookaside lists
	created bool         // initialised at least once
}

// Name returns the name the list was initialised with.
func (l *NPAGED_LOOKASIDE_LIST) Name() string { return l.name }

// Cached returns how many free entries the list holds.
func (l *NPAGED_LOOKASIDE_LIST) Cached() int { return len(l.cached) }

// LookasideDepth is how many freed entries a lookaside list keeps for
// reuse. Windows decides it (the Depth parameter is reserved, zero): it
// starts lists at the minimum depth, 4, and the balance-set manager moves it
// with the hit rate; the model keeps the minimum (REFERENCE §4.14).
const LookasideDepth = 4

// ExInitializeNPagedLookasideList sets l up for entries of size bytes
// allocated from nonpaged pool with tag (the default Allocate and Free
// routines: the C call's NULL Allocate/Free, zero Flags and Depth) and puts
// it on the system's list of lookaside lists; name labels it in traces.
// IRQL ≤ DISPATCH_LEVEL, checked. A scheduling point (REFERENCE §4.14).
func (k *Kernel) ExInitializeNPagedLookasideList(l *NPAGED_LOOKASIDE_LIST, name string, size int, tag string) {
	x := k.enter("ExInitializeNPagedLookasideList")
	k.checkIrqlAtMost(x, "ExInitializeNPagedLookasideList", DISPATCH_LEVEL)
	k.checkLive(x, l.Block, "ExInitializeNPagedLookasideList on "+name)
	*l = NPAGED_LOOKASIDE_LIST{Block: l.Block, name: name, size: size, tag: tag, depth: LookasideDepth, active: true, created: true}
	k.emit(x, KindPool, WhatLookasideInit, name, int64(size), int64(l.depth))
}

// ExAllocateFromNPagedLookasideList returns a cached entry of l, or a new
// nonpaged pool block of the list's size and tag when none is cached (nil
// when the allocation fails: with InjectAllocFailures a decision). A deleted
// list still allocates, as on Windows, where the call only pops the list's
// S-list and falls back on its Allocate routine. IRQL ≤ DISPATCH_LEVEL,
// checked; an uninitialised list is a NULL Allocate routine (0x7E/0x1E);
// a freed list head is 0xD5. A scheduling point (REFERENCE §4.14).
func (k *Kernel) ExAllocateFromNPagedLookasideList(l *NPAGED_LOOKASIDE_LIST) *PoolBlock {
	x := k.enter("ExAllocateFromNPagedLookasideList")
	k.lookasideCall(x, l, "ExAllocateFromNPagedLookasideList")
	if n := len(l.cached); n > 0 {
		b := l.cached[n-1]
		l.cached = l.cached[:n-1]
		b.cachedIn = nil
		k.emit(x, KindPool, WhatLookasideHit, b.item, int64(b.Size), int64(n-1))
		return b
	}
	return k.allocate(x, NonPagedPool, l.size, l.tag)
}

// ExFreeToNPagedLookasideList returns entry b to l: it is cached for reuse
// while the list holds fewer than LookasideDepth, otherwise freed to pool. On a
// list already deleted it is still cached, as on Windows (the S-list push
// does not know the list is gone), and so never freed: a leak at the end of
// the run. IRQL ≤ DISPATCH_LEVEL, checked; a freed list head is 0xD5; an
// entry already freed to pool is BAD_POOL_CALLER 0xC2 P1=7 when it
// overflows to pool, and a use after free otherwise. A scheduling point
// (REFERENCE §4.14).
func (k *Kernel) ExFreeToNPagedLookasideList(l *NPAGED_LOOKASIDE_LIST, b *PoolBlock) {
	x := k.enter("ExFreeToNPagedLookasideList")
	k.lookasideCall(x, l, "ExFreeToNPagedLookasideList")
	if len(l.cached) >= l.depth {
		k.free(x, b, b.Tag, "ExFreeToNPagedLookasideList")
		return
	}
	k.checkLive(x, b, "ExFreeToNPagedLookasideList (the S-list push)")
	l.cached = append(l.cached, b)
	b.cachedIn = l
	k.emit(x, KindPool, WhatLookasideFree, b.item, int64(b.Size), int64(len(l.cached)))
}

// ExDeleteNPagedLookasideList takes l off the system's list of lookaside
// lists and frees every entry it caches; the caller then frees the list's
// storage. Entries still allocated are the caller's to free. Deleting a list
// twice unlinks its list entry twice: the checked RemoveEntryList fast fail,
// 0x139 P1=3 (REFERENCE §4.14). IRQL ≤ DISPATCH_LEVEL, checked; a freed
// list head is 0xD5. A scheduling point.
func (k *Kernel) ExDeleteNPagedLookasideList(l *NPAGED_LOOKASIDE_LIST) {
	x := k.enter("ExDeleteNPagedLookasideList")
	k.lookasideCall(x, l, "ExDeleteNPagedLookasideList")
	if !l.active {
		k.bugCheck(x, "ExDeleteNPagedLookasideList", KERNEL_SECURITY_CHECK_FAILURE, FAST_FAIL_CORRUPT_LIST_ENTRY, 0, 0, 0,
			fmt.Sprintf("corrupted LIST_ENTRY: lookaside list %s deleted twice (its entry on the system's list of lookaside lists unlinked again)", l.name))
	}
	l.active = false
	for _, b := range l.cached {
		b.cachedIn = nil
		k.free(x, b, b.Tag, "ExDeleteNPagedLookasideList")
	}
	l.cached = l.cached[:0]
	k.emit(x, KindPool, WhatLookasideDelete, l.name, 0, 0)
}

// lookasideCall is the checks every lookaside routine makes first.
func (k *Kernel) lookasideCall(x *exec, l *NPAGED_LOOKASIDE_LIST, api string) {
	k.checkIrqlAtMost(x, api, DISPATCH_LEVEL)
	name := l.name
	if name == "" {
		name = "(uninitialised)"
	}
	k.checkLive(x, l.Block, api+" on lookaside list "+name)
	if !l.created {
		k.raiseUnhandled(x, api, STATUS_ACCESS_VIOLATION, api+" on a lookaside list never initialised (a NULL Allocate/Free routine)")
	}
}

// leakNote says, for a leak report, why an entry l caches was never freed
// ("" for a block no list holds).
func (l *NPAGED_LOOKASIDE_LIST) leakNote() string {
	switch {
	case l == nil:
		return ""
	case l.active:
		return fmt.Sprintf("; a free entry of lookaside list %s, never deleted (ExDeleteNPagedLookasideList frees them)", l.name)
	default:
		return fmt.Sprintf("; freed to lookaside list %s after ExDeleteNPagedLookasideList deleted it", l.name)
	}
}
