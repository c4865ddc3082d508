package kernel

import "github.com/wqsim/wqsim/des"

func desPoint(kind des.PointKind, label string, x *exec) des.Point {
	p := des.Point{Kind: kind, Label: label}
	if x != nil {
		p.Actor = x.actorID()
	}
	return p
}

// Cell is a word of shared memory the simulated code races on. Every access
// through the kernel is a scheduling point, so the explorer can interleave
// other processors between a read and a write.
type Cell struct {
	Name  string
	v     int64
	Block *PoolBlock // if set, access after the block is freed is a UAF
	aid   int32      // access number (access.go)
}

// NewCell returns a cell named name holding v.
func (k *Kernel) NewCell(name string, v int64) *Cell {
	k.tick()
	c := k.rc.cells.Take(k.sim)
	*c = Cell{Name: name, v: v} // recycled: see recycler
	k.numberAtBirth(&c.aid)
	return c
}

// Peek returns the value without a scheduling point (for invariants and
// tests, not for simulated code).
func (c *Cell) Peek() int64 { return c.v }

func (k *Kernel) access(c *Cell, what string, op des.AccessOp) *exec {
	x := k.cur(what)
	k.pointOn(x, k.cfg.Costs.Interlocked, &c.aid, op)
	write := op != des.AccessRead
	if b := c.Block; b != nil {
		if b.freed { // build the message only on failure
			k.checkLive(x, b, what+" "+c.Name)
		}
		if b.Type == PagedPool && x.irql >= DISPATCH_LEVEL {
			k.pagedAccess(x, b, what+" "+c.Name, write)
		}
	}
	return x
}

// Read is a plain load of c.
func (k *Kernel) Read(c *Cell) int64 {
	k.access(c, "read", des.AccessRead)
	return c.v
}

// Write is a plain store to c.
func (k *Kernel) Write(c *Cell, v int64) {
	x := k.access(c, "write", des.AccessWrite)
	c.v = v
	k.emit(x, KindMemory, WhatWrite, c.Name, v, 0)
}

// InterlockedIncrement atomically adds one and returns the new value.
// IRQL: any (REFERENCE §9).
func (k *Kernel) InterlockedIncrement(c *Cell) int64 { return k.InterlockedAdd(c, 1) }

// InterlockedDecrement atomically subtracts one and returns the new value.
// IRQL: any (REFERENCE §9).
func (k *Kernel) InterlockedDecrement(c *Cell) int64 { return k.InterlockedAdd(c, -1) }

// InterlockedAdd atomically adds d and returns the new value.
// IRQL: any (REFERENCE §9).
func (k *Kernel) InterlockedAdd(c *Cell, d int64) int64 {
	x := k.access(c, "InterlockedAdd", des.AccessWrite)
	c.v += d
	k.emit(x, KindMemory, WhatInterlockedAdd, c.Name, c.v, d)
	return c.v
}

// InterlockedExchange atomically stores v and returns the old value.
// IRQL: any (REFERENCE §9).
func (k *Kernel) InterlockedExchange(c *Cell, v int64) int64 {
	x := k.access(c, "InterlockedExchange", des.AccessWrite)
	old := c.v
	c.v = v
	k.emit(x, KindMemory, WhatInterlockedXchg, c.Name, v, old)
	return old
}

// InterlockedCompareExchange stores exchange if c holds comparand and
// returns the old value.
// IRQL: any (REFERENCE §9).
func (k *Kernel) InterlockedCompareExchange(c *Cell, exchange, comparand int64) int64 {
	x := k.access(c, "InterlockedCompareExchange", des.AccessWrite)
	old := c.v
	if old == comparand {
		c.v = exchange
	}
	k.emit(x, KindMemory, WhatInterlockedCmpxchg, c.Name, c.v, old)
	return old
}

// InterlockedExchangeAdd atomically adds d and returns the old value (the
// value before the add, unlike InterlockedAdd).
// IRQL: any (REFERENCE §9).
func (k *Kernel) InterlockedExchangeAdd(c *Cell, d int64) int64 {
	x := k.access(c, "InterlockedExchangeAdd", des.AccessWrite)
	old := c.v
	c.v += d
	k.emit(x, KindMemory, WhatInterlockedAdd, c.Name, c.v, d)
	return old
}

// InterlockedOr atomically ORs mask into c and returns the old value.
// IRQL: any (REFERENCE §9).
func (k *Kernel) InterlockedOr(c *Cell, mask int64) int64 {
	return k.interlockedBits(c, "InterlockedOr", func(v int64) int64 { return v | mask })
}

// InterlockedAnd atomically ANDs mask into c and returns the old value.
// IRQL: any (REFERENCE §9).
func (k *Kernel) InterlockedAnd(c *Cell, mask int64) int64 {
	return k.interlockedBits(c, "InterlockedAnd", func(v int64) int64 { return v & mask })
}

// InterlockedXor atomically XORs mask into c and returns the old value.
// IRQL: any (REFERENCE §9).
func (k *Kernel) InterlockedXor(c *Cell, mask int64) int64 {
	return k.interlockedBits(c, "InterlockedXor", func(v int64) int64 { return v ^ mask })
}

// InterlockedBitTestAndSet atomically sets bit b of c and reports whether
// it was set before.
// IRQL: any (REFERENCE §9).
func (k *Kernel) InterlockedBitTestAndSet(c *Cell, b uint) bool {
	return k.interlockedBits(c, "InterlockedBitTestAndSet", func(v int64) int64 { return v | 1<<b })&(1<<b) != 0
}

// InterlockedBitTestAndReset atomically clears bit b of c and reports
// whether it was set before.
// IRQL: any (REFERENCE §9).
func (k *Kernel) InterlockedBitTestAndReset(c *Cell, b uint) bool {
	return k.interlockedBits(c, "InterlockedBitTestAndReset", func(v int64) int64 { return v &^ (1 << b) })&(1<<b) != 0
}

// interlockedBits applies op to c atomically and returns the old value;
// the trace shows it as an exchange (A new value, B old).
func (k *Kernel) interlockedBits(c *Cell, api string, op func(int64) int64) int64 {
	x := k.access(c, api, des.AccessWrite)
	old := c.v
	c.v = op(old)
	k.emit(x, KindMemory, WhatInterlockedXchg, c.Name, c.v, old)
	return old
}
