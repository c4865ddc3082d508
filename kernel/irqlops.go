package kernel

import "fmt"

// KeRaiseIrql raises the caller's IRQL to newIrql and returns the old one.
// Raising to a lower IRQL is Verifier 0xC4 P1=0x30, without Verifier the
// HAL's 0x9 (REFERENCE §4.5, §1.8).
// IRQL: any not above newIrql, checked.
func (k *Kernel) KeRaiseIrql(newIrql IRQL) IRQL {
	x := k.enter("KeRaiseIrql")
	old := x.irql
	if newIrql < old {
		k.irqlViolation(x, "KeRaiseIrql", 0x30, old, newIrql)
	}
	k.setIrql(x, newIrql)
	return old
}

// KeRaiseIrqlToDpcLevel raises to DISPATCH_LEVEL and returns the old IRQL.
// IRQL: ≤ DISPATCH_LEVEL, as for KeRaiseIrql (REFERENCE §4.5).
func (k *Kernel) KeRaiseIrqlToDpcLevel() IRQL { return k.KeRaiseIrql(DISPATCH_LEVEL) }

// KeLowerIrql lowers the caller's IRQL to newIrql. Lowering to a higher
// IRQL is Verifier 0xC4 P1=0x31, without Verifier the HAL's
// IRQL_NOT_GREATER_OR_EQUAL 0x9 (REFERENCE §4.5). Dropping below DISPATCH_LEVEL runs pending
// DPCs and a deferred thread switch before the caller continues (§4.5).
// IRQL: any not below newIrql, checked.
func (k *Kernel) KeLowerIrql(newIrql IRQL) {
	x := k.enter("KeLowerIrql")
	if newIrql > x.irql {
		k.irqlViolation(x, "KeLowerIrql", 0x31, x.irql, newIrql)
	}
	k.lowerTo(x, newIrql)
}

// irqlViolation reports a raise to a lower or a lower to a higher IRQL:
// Driver Verifier's 0xC4 (P1 = code, P2 = current, P3 = requested), or
// without it the HAL's own check, IRQL_NOT_GREATER_OR_EQUAL 0x9 with P1 =
// the requested and P2 = the current IRQL (REFERENCE §4.5).
func (k *Kernel) irqlViolation(x *exec, api string, code uint64, cur, req IRQL) {
	if !k.cfg.Verifier {
		k.bugCheck(x, api, IRQL_NOT_GREATER_OR_EQUAL, uint64(req), uint64(cur), 0, 0, fmt.Sprintf("%s from %v to %v", api, cur, req))
	}
	k.bugCheck(x, api, DRIVER_VERIFIER_DETECTED_VIOLATION, code, uint64(cur), uint64(req), 0,
		fmt.Sprintf("%s from %v to %v", api, cur, req))
}

func (k *Kernel) setIrql(x *exec, l IRQL) {
	if l != x.irql {
		x.irql = l
		k.emit(x, KindIrql, WhatIrql, "", int64(l), 0)
	}
}

// lowerTo drops IRQL and, when it crosses below DISPATCH_LEVEL or below
// the IRQL of an interrupt pending on the caller's processor, passes a
// scheduling point so deferred DPCs, switches and ISRs happen now.
func (k *Kernel) lowerTo(x *exec, l IRQL) {
	was := x.irql
	k.setIrql(x, l)
	if x.cpu != nil && (was >= DISPATCH_LEVEL && l < DISPATCH_LEVEL || was > DISPATCH_LEVEL && x.cpu.isrPendingAbove(l)) {
		x.cpu.needSettle = true
		k.point(x, 0)
	}
	if l == PASSIVE_LEVEL && was > PASSIVE_LEVEL {
		k.deliverIfPending(x) // the APC interrupt fires as IRQL drops (REFERENCE §4.10)
	}
}
