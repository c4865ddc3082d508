package kernel

import "fmt"

// POOL_FLAGS selects the pool and the attributes of an ExAllocatePool2
// allocation (REFERENCE §4.17). The low 32 bits are required flags, the
// high 32 optional ones; the values are wdm.h's.
type POOL_FLAGS uint64

// The pool flags the model distinguishes. The others (quota, session,
// cache alignment, the reserved ones) are accepted and change nothing.
const (
	POOL_FLAG_USE_QUOTA         POOL_FLAGS = 0x1
	POOL_FLAG_UNINITIALIZED     POOL_FLAGS = 0x2
	POOL_FLAG_CACHE_ALIGNED     POOL_FLAGS = 0x8
	POOL_FLAG_RAISE_ON_FAILURE  POOL_FLAGS = 0x20
	POOL_FLAG_NON_PAGED         POOL_FLAGS = 0x40
	POOL_FLAG_NON_PAGED_EXECUTE POOL_FLAGS = 0x80
	POOL_FLAG_PAGED             POOL_FLAGS = 0x100
)

// poolTypeOf maps the flags to a pool: exactly one of the three pool-type
// flags must be set (REFERENCE §4.17).
func (f POOL_FLAGS) poolType() (POOL_TYPE, bool) {
	switch f & (POOL_FLAG_NON_PAGED | POOL_FLAG_NON_PAGED_EXECUTE | POOL_FLAG_PAGED) {
	case POOL_FLAG_NON_PAGED, POOL_FLAG_NON_PAGED_EXECUTE:
		return NonPagedPool, true
	case POOL_FLAG_PAGED:
		return PagedPool, true
	}
	return NonPagedPool, false
}

// ExAllocatePool2 allocates a pool block as the Windows 10 2004 routine
// does (REFERENCE §4.17): the pool comes from flags, which must name
// exactly one pool type, and the tag must not be empty; otherwise the
// result is nil. A failed allocation (with InjectAllocFailures, a decision)
// returns nil, or raises STATUS_INSUFFICIENT_RESOURCES when flags has
// POOL_FLAG_RAISE_ON_FAILURE — unhandled in the model, so bug check 0x7E
// in a thread, 0x1E in a DPC. Paged pool requires IRQL ≤ APC_LEVEL
// (Verifier 0xC4 P1=0x1, as ExAllocatePoolWithTag).
// IRQL: ≤ DISPATCH_LEVEL; ≤ APC_LEVEL for paged pool, which is checked.
func (k *Kernel) ExAllocatePool2(flags POOL_FLAGS, size int, tag string) *PoolBlock {
	x := k.enter("ExAllocatePool2")
	typ, ok := flags.poolType()
	if !ok || tag == "" || size <= 0 {
		k.emit(x, KindPool, WhatAllocFail, tag, int64(size), 0)
		return nil
	}
	if typ == PagedPool && x.ruleIrql() > APC_LEVEL {
		k.verifierOr0A(x, "ExAllocatePool2", 0x1, fmt.Sprintf("paged pool allocated at %v", x.ruleIrql()))
	}
	b := k.allocate(x, typ, size, tag)
	if b == nil && flags&POOL_FLAG_RAISE_ON_FAILURE != 0 {
		k.raiseUnhandled(x, "ExAllocatePool2", STATUS_INSUFFICIENT_RESOURCES,
			fmt.Sprintf("ExAllocatePool2(POOL_FLAG_RAISE_ON_FAILURE) of %d bytes tag %q failed", size, tag))
	}
	return b
}
