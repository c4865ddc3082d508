package sct

import (
	"github.com/wqsim/wqsim/kernel"
)

// ref is a shared pointer to a pool block: a cell holding 1 (points to
// block) or 0 (NULL), so loading it is a scheduling point the explorer can
// interleave with the store that clears it.
type ref struct {
	p     *prog
	cell  *kernel.Cell
	block *kernel.PoolBlock
}

// newRef allocates a block and a pointer to it.
func (p *prog) newRef(name, tag string) *ref {
	return &ref{p: p, cell: p.cell(name, 1), block: p.k.ExAllocatePoolWithTag(kernel.NonPagedPool, 64, tag)}
}

// load reads the pointer: the block, or nil for NULL.
func (r *ref) load() *kernel.PoolBlock {
	if r.p.k.Read(r.cell) == 0 {
		return nil
	}
	return r.block
}

// clearAndFree stores NULL and frees the block (the teardown path).
func (r *ref) clearAndFree() {
	r.p.k.Write(r.cell, 0)
	r.p.k.ExFreePool(r.block)
}

// deref touches what b points to: a NULL b is bug check 0x7E (access
// violation), a freed b is Verifier's special-pool 0xD5.
func (p *prog) deref(b *kernel.PoolBlock, what string) {
	p.k.AccessPool(b, what) // a NULL b is bug check 0x7E
}
