package kernel

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
)

// POOL_TYPE selects nonpaged or paged pool.
type POOL_TYPE uint8

// Pool types.
const (
	NonPagedPool POOL_TYPE = iota
	PagedPool
)

// PoolBlock is a tagged pool allocation. Higher layers put simulated
// objects in blocks so that use after free, double free and leaks are
// detected.
type PoolBlock struct {
	id    int
	name  string
	Tag   string
	Size  int
	Type  POOL_TYPE
	freed bool
	item  string // "Tag #id", its trace records' object
	// freedBy and freedAt say whose code freed the block, and when.
	freedBy string
	freedAt des.Time
	// cachedIn is the lookaside list holding the block as a free entry.
	cachedIn *NPAGED_LOOKASIDE_LIST
	// Owner names what the block holds, for reports ("flt work item 3").
	Owner string
	// Use says which routine allocated the block on a driver's behalf
	// (zero for the driver's own ExAllocatePoolWithTag), so that a leak
	// names the object and its routines, not only a pool tag the driver
	// never chose (REFERENCE §1.3).
	Use BlockUse
	// Live, when set, tells the end-of-run leak check that the block is
	// not leaked while it returns true: an object a layer keeps for a
	// component that is still loaded (a filter context of a registered
	// filter, REFERENCE §5.8). It is called outside simulated code.
	Live func() bool
	// by and image say whose code allocated the block: the thread, DPC
	// or ISR ("" from setup code) and the driver image (nil for none).
	by    string
	image *Image
}

// BlockUse is what a routine that allocates pool on a driver's behalf
// (FltAllocateGenericWorkItem, IoAllocateWorkItem, …) records about the
// block, for the leak report.
type BlockUse struct {
	Kind  string // the object's type: "FLT_GENERIC_WORKITEM"
	Alloc string // the routine that allocated it
	Free  string // the routine that frees it
	For   string // the object it serves, when known: "filter f", "device d"
}

// leakText is the leak report's line for b, never freed: its tag, and
// what allocated it, where known.
func (b *PoolBlock) leakText() string { return b.allocText() + b.cachedIn.leakNote() }

// allocText is leakText without what a lookaside list says.
func (b *PoolBlock) allocText() string {
	s := fmt.Sprintf("pool block %s tag %q (%d bytes) never freed", b.name, b.Tag, b.Size)
	where := ""
	if b.by != "" {
		where = " in " + b.by
	}
	if b.image != nil {
		where += " (driver " + b.image.Name() + ")"
	}
	u := b.Use
	if u.Kind == "" {
		if where != "" {
			s += ": allocated" + where
		}
		return s
	}
	s += ": " + u.Kind
	if b.Owner != "" && b.Owner != u.Kind {
		s += " " + b.Owner
	}
	s += " allocated by " + u.Alloc + where
	if u.For != "" {
		s += " for " + u.For
	}
	if u.Free != "" {
		s += ", without " + u.Free
	}
	return s
}

// Freed reports whether the block was freed.
func (b *PoolBlock) Freed() bool { return b.freed }

// Name returns the block's readable name.
func (b *PoolBlock) Name() string { return b.name }

// ExAllocatePoolWithTag allocates a block. Paged pool requires IRQL ≤
// APC_LEVEL (Verifier 0xC4 P1=0x1 otherwise; §4.5). With
// InjectAllocFailures it is a decision whether the allocation fails (nil).
// IRQL: ≤ DISPATCH_LEVEL; ≤ APC_LEVEL for paged pool, which is checked (REFERENCE §4.9).
func (k *Kernel) ExAllocatePoolWithTag(typ POOL_TYPE, size int, tag string) *PoolBlock {
	return k.allocateChecked("ExAllocatePoolWithTag", typ, size, tag)
}

// allocateChecked is the pool allocation routines' common body: paged
// pool above APC_LEVEL is Verifier 0xC4 P1=0x1 (0xA without Verifier).
func (k *Kernel) allocateChecked(api string, typ POOL_TYPE, size int, tag string) *PoolBlock {
	x := k.enter(api)
	if typ == PagedPool && x.ruleIrql() > APC_LEVEL {
		k.verifierOr0A(x, api, 0x1, fmt.Sprintf("paged pool allocated at %v", x.ruleIrql()))
	}
	return k.allocate(x, typ, size, tag)
}

func (k *Kernel) allocate(x *exec, typ POOL_TYPE, size int, tag string) *PoolBlock {
	if k.cfg.InjectAllocFailures &&
		k.sim.Choose(desPoint(PointAllocFail, "pool: allocation fails", x), 2) == 1 {
		k.emit(x, KindPool, WhatAllocFail, tag, int64(size), 0)
		return nil
	}
	b := k.rc.blocks.Take(k.sim)
	old := *b // recycled: keep its name when the number is the same (see recycler)
	*b = PoolBlock{id: len(k.pool) + 1, Tag: tag, Size: size, Type: typ, image: k.currentImage()}
	if x != nil {
		b.by = x.name
	}
	if old.id == b.id && old.name != "" {
		b.name = old.name
	} else {
		b.name = fmt.Sprintf("#%d", b.id)
	}
	key := nameKey{namePoolItem, b.id, tag}
	var ok bool
	if b.item, ok = k.rc.cachedName(key); !ok {
		b.item = k.rc.keepName(key, tag+" "+b.name)
	}
	k.pool = append(k.pool, b)
	k.emit(x, KindPool, WhatAlloc, b.item, int64(size), 0)
	return b
}

// ExFreePoolWithTag frees b. A double free is BAD_POOL_CALLER 0xC2 P1=0x7;
// a tag mismatch is 0xC2 P1=0xA. Freeing paged pool above APC_LEVEL is
// Verifier 0xC4 P1=0x11 (P2 the IRQL, P3 the pool type, P4 the block);
// without Verifier it touches the block's pool header, a paged access
// (REFERENCE §4.9).
// IRQL: ≤ DISPATCH_LEVEL; ≤ APC_LEVEL for paged pool (REFERENCE §4.9).
func (k *Kernel) ExFreePoolWithTag(b *PoolBlock, tag string) {
	x := k.enter("ExFreePoolWithTag")
	k.free(x, b, tag, "ExFreePoolWithTag")
}

// ExAllocatePoolZero is ExAllocatePoolWithTag for a block the caller
// wants zeroed (DDI:ExAllocatePoolZero); the model's blocks carry no
// contents, so the two behave the same.
// IRQL: ≤ DISPATCH_LEVEL; ≤ APC_LEVEL for paged pool, which is checked (REFERENCE §4.9).
func (k *Kernel) ExAllocatePoolZero(typ POOL_TYPE, size int, tag string) *PoolBlock {
	return k.allocateChecked("ExAllocatePoolZero", typ, size, tag)
}

// ExAllocatePoolUninitialized is ExAllocatePoolWithTag under its newer
// name (DDI:ExAllocatePoolUninitialized).
// IRQL: ≤ DISPATCH_LEVEL; ≤ APC_LEVEL for paged pool, which is checked (REFERENCE §4.9).
func (k *Kernel) ExAllocatePoolUninitialized(typ POOL_TYPE, size int, tag string) *PoolBlock {
	return k.allocateChecked("ExAllocatePoolUninitialized", typ, size, tag)
}

// ExAllocatePool is the obsolete untagged allocation (DDI:ExAllocatePool):
// the block gets the tag "None", as Windows gives it.
// IRQL: ≤ DISPATCH_LEVEL; ≤ APC_LEVEL for paged pool, which is checked (REFERENCE §4.9).
func (k *Kernel) ExAllocatePool(typ POOL_TYPE, size int) *PoolBlock {
	return k.allocateChecked("ExAllocatePool", typ, size, "None")
}

// ExFreePool frees b without a tag check.
// IRQL: ≤ DISPATCH_LEVEL; ≤ APC_LEVEL for paged pool, which is checked (REFERENCE §4.9).
func (k *Kernel) ExFreePool(b *PoolBlock) {
	x := k.enter("ExFreePool")
	k.free(x, b, b.Tag, "ExFreePool")
}

func (k *Kernel) free(x *exec, b *PoolBlock, tag, api string) {
	if x != nil && b.Type == PagedPool && x.irql > APC_LEVEL {
		k.pagedFree(x, b, api)
	}
	if b.freed {
		k.bugCheck(x, api, BAD_POOL_CALLER, 0x7, 0, 0, uint64(b.id), fmt.Sprintf("double free of pool block %s tag %q", b.name, b.Tag))
	}
	if tag != b.Tag {
		k.bugCheck(x, api, BAD_POOL_CALLER, 0xA, 0, 0, uint64(b.id), fmt.Sprintf("pool block %s freed with tag %q, allocated with %q", b.name, tag, b.Tag))
	}
	b.freed = true
	if x != nil {
		b.freedBy = x.name
	}
	b.freedAt = k.sim.Now()
	k.emit(x, KindPool, WhatFree, b.item, int64(b.Size), 0)
}

// FreedBy says which thread, DPC or ISR freed b and when ("" for a block
// still live or freed from setup code), for reports that find the free
// later, as a worker dequeuing an item whose pool was freed does.
func (b *PoolBlock) FreedBy() (by string, at des.Time) { return b.freedBy, b.freedAt }

// AccessPool is a workload helper: it models driver code dereferencing
// memory in b (reading or writing a field of a pool allocation). It costs
// as much as an interlocked operation and is a scheduling point. After the
// block is freed the access is a use-after-free, reported as Driver
// Verifier's special pool does (DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL
// 0xD5); what names the access in that report. A nil b is a NULL-pointer
// dereference: below DISPATCH_LEVEL an unhandled STATUS_ACCESS_VIOLATION,
// bug check 0x7E in a thread with the exception code as P1; at or above
// it the page fault cannot be taken, DRIVER_IRQL_NOT_LESS_OR_EQUAL 0xD1
// (P1 the address 0, P2 the IRQL; REFERENCE §1.8). Any IRQL.
func (k *Kernel) AccessPool(b *PoolBlock, what string) {
	x := k.cur("AccessPool")
	k.point(x, k.cfg.Costs.Interlocked)
	if b == nil {
		if x.irql >= DISPATCH_LEVEL {
			k.bugCheck(x, "memory access", DRIVER_IRQL_NOT_LESS_OR_EQUAL, 0, uint64(x.irql), 0, 0,
				fmt.Sprintf("%s dereferenced a NULL pointer at %v", what, x.irql))
			return
		}
		k.raiseUnhandled(x, "memory access", STATUS_ACCESS_VIOLATION, what+" dereferenced a NULL pointer")
		return
	}
	k.checkLive(x, b, what)
	if b.Type == PagedPool && x.irql >= DISPATCH_LEVEL {
		k.pagedAccess(x, b, what, false)
	}
}

func (k *Kernel) checkLive(x *exec, b *PoolBlock, what string) {
	if b != nil && b.freed {
		k.bugCheck(x, "memory access", DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL, uint64(b.id), 0, 0, 0,
			fmt.Sprintf("%s touched pool block %s tag %q%s after it was freed%s", what, b.name, b.Tag, b.ownerNote(), b.freedNote()))
	}
}

// ownerNote names what the block holds, for a use-after-free report
// (" (stream context 1)"), or "".
func (b *PoolBlock) ownerNote() string {
	if b.Owner == "" {
		return ""
	}
	return " (" + b.Owner + ")"
}

// freedNote says who freed the block and when (" by unloader at
// t=…"), or "" when setup code freed it.
func (b *PoolBlock) freedNote() string {
	if b.freedBy == "" {
		return ""
	}
	return fmt.Sprintf(" by %s at t=%v", b.freedBy, b.freedAt)
}
