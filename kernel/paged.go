package kernel

import "fmt"

// Page-fault kinds in P3 of bug check 0xD1 (BC:0xD1): bit 0 a write, bit 3
// an instruction fetch.
const (
	faultRead    = 0
	faultWrite   = 1
	faultExecute = 8
)

// pageResident decides whether pageable memory touched at raised IRQL is
// in the working set. Windows does not say; the model makes it a decision
// whose choice 0 is "resident" (the bug stays latent, as it usually does),
// unless Config.ForcePageableOut — Driver Verifier's Force IRQL Checking,
// which trims all pageable memory whenever a verified driver raises to
// DISPATCH_LEVEL — makes every such access fault (REFERENCE §4.9).
func (k *Kernel) pageResident(x *exec, what string) bool {
	if k.cfg.ForcePageableOut {
		return false
	}
	return k.sim.Choose(desPoint(PointPageIn, "memory: pageable page is out ("+what+")", x), 2) == 0
}

// pagedAccess is an access to paged pool at IRQL ≥ DISPATCH_LEVEL: if the
// page is out the fault cannot be serviced, bug check 0xD1
// DRIVER_IRQL_NOT_LESS_OR_EQUAL (P1 the block, P2 the IRQL, P3 read or
// write). REFERENCE §4.9.
func (k *Kernel) pagedAccess(x *exec, b *PoolBlock, what string, write bool) {
	if k.pageResident(x, what) {
		return
	}
	kind := uint64(faultRead)
	if write {
		kind = faultWrite
	}
	k.bugCheck(x, "memory access", DRIVER_IRQL_NOT_LESS_OR_EQUAL, uint64(b.id), uint64(x.irql), kind, 0,
		fmt.Sprintf("%s touched paged pool block %s tag %q at %v and the page was out", what, b.name, b.Tag, x.irql))
}

// PAGED_CODE marks the calling routine as pageable, as the wdm.h macro
// does when it is the routine's first statement; call it at the top of a
// simulated driver routine that would live in a PAGE section. Running
// pageable code at IRQL ≥ DISPATCH_LEVEL faults when the code page is out
// — a decision, choice 0 resident, or always with ForcePageableOut — as
// bug check 0xD1 with P3 = 8 (an instruction fetch). It costs nothing and
// is not a scheduling point.
// IRQL: ≤ APC_LEVEL for pageable code (REFERENCE §4.9).
func (k *Kernel) PAGED_CODE(routine string) {
	x := k.cur("PAGED_CODE")
	if x.irql < DISPATCH_LEVEL || k.pageResident(x, "code of "+routine) {
		return
	}
	k.bugCheck(x, routine, DRIVER_IRQL_NOT_LESS_OR_EQUAL, 0, uint64(x.irql), faultExecute, 0,
		fmt.Sprintf("pageable routine %s ran at %v and its code page was out", routine, x.irql))
}

// pagedFree is a free of paged pool above APC_LEVEL: Verifier 0xC4
// P1=0x11; without Verifier the free touches the pool header, which may be
// paged out (REFERENCE §4.9).
func (k *Kernel) pagedFree(x *exec, b *PoolBlock, api string) {
	if k.cfg.Verifier {
		k.bugCheck(x, api, DRIVER_VERIFIER_DETECTED_VIOLATION, 0x11, uint64(x.irql), uint64(b.Type), uint64(b.id),
			fmt.Sprintf("paged pool block %s tag %q freed at %v", b.name, b.Tag, x.irql))
	}
	if x.irql >= DISPATCH_LEVEL {
		k.pagedAccess(x, b, api+" of "+b.name, true)
	}
}
