package sct

import (
	"github.com/wqsim/wqsim/kernel"
)

// nullDereference names the finding for a NULL-pointer dereference. On
// Windows the access violation in a system thread ends in bug check 0x7E
// (SYSTEM_THREAD_EXCEPTION_NOT_HANDLED, P1 = 0xC0000005); the kernel model
// has no page tables to fault in, so the scenario reports it itself.
const nullDereference = "NULL pointer dereference"

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

// deref touches what b points to: a NULL b stops the run with a
// nullDereference violation, a freed b is Verifier's special-pool 0xD5.
func (p *prog) deref(b *kernel.PoolBlock, what string) {
	if b == nil {
		p.env.Violation(nullDereference, "%s dereferenced a NULL pointer (on Windows: bug check 0x7E, access violation)", what)
		return
	}
	p.k.AccessPool(b, what)
}
