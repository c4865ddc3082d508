package kernel

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
)

// Try-acquire variants and aliases of the lock routines (REFERENCE §4.6).

// ExTryToAcquireFastMutex acquires m and raises to APC_LEVEL if m is free,
// and reports whether it did; it never waits. Caller IRQL ≤ APC_LEVEL
// (Verifier 0xC4 P1=0x33, as ExAcquireFastMutex).
// IRQL: ≤ APC_LEVEL, checked (REFERENCE §4.6).
func (k *Kernel) ExTryToAcquireFastMutex(m *FAST_MUTEX) bool {
	x := k.enterOn("ExTryToAcquireFastMutex", &m.aid, des.AccessLock)
	if x.ruleIrql() > APC_LEVEL || x.kind != execThread {
		k.verifierOr0A(x, "ExTryToAcquireFastMutex", 0x33, fmt.Sprintf("fast mutex %s acquired at %v", m.Name, x.ruleIrql()))
	}
	if m.owner != nil {
		return false
	}
	old := x.irql
	k.setIrql(x, APC_LEVEL)
	k.mutexAcquire(x, m, "ExTryToAcquireFastMutex")
	m.oldIrql = old
	return true
}

// KeTryToAcquireSpinLockAtDpcLevel acquires l if it is free and reports
// whether it did; it never spins. The caller must be at DISPATCH_LEVEL
// (Verifier 0xC4 P1=0x40, as KeAcquireSpinLockAtDpcLevel); trying a lock
// the caller already holds is SPIN_LOCK_ALREADY_OWNED 0x0F.
// IRQL: DISPATCH_LEVEL, checked (REFERENCE §4.6).
func (k *Kernel) KeTryToAcquireSpinLockAtDpcLevel(l *KSPIN_LOCK) bool {
	x := k.enterOn("KeTryToAcquireSpinLockAtDpcLevel", &l.aid, des.AccessLock)
	if x.irql != DISPATCH_LEVEL {
		k.verifierOr0A(x, "KeTryToAcquireSpinLockAtDpcLevel", 0x40, fmt.Sprintf("called at %v, not DISPATCH_LEVEL", x.irql))
	}
	if l.owner != nil && l.owner != x {
		return false
	}
	k.spinAcquire(x, l, "KeTryToAcquireSpinLockAtDpcLevel") // free, or 0x0F for the owner
	return true
}

// KeAcquireSpinLockRaiseToDpc is KeAcquireSpinLock, which x64 Windows
// defines as this routine: it raises to DISPATCH_LEVEL, acquires l and
// returns the old IRQL.
// IRQL: ≤ DISPATCH_LEVEL, checked (REFERENCE §4.6).
func (k *Kernel) KeAcquireSpinLockRaiseToDpc(l *KSPIN_LOCK) IRQL { return k.KeAcquireSpinLock(l) }

// KeBugCheckEx is the driver stopping the system on purpose, with its own
// code and parameters: the run ends with that bug check, reported like any
// other, naming the caller.
// IRQL: any (REFERENCE §1.8).
func (k *Kernel) KeBugCheckEx(code uint32, p1, p2, p3, p4 uint64) {
	x := k.cur("KeBugCheckEx")
	k.bugCheck(x, "KeBugCheckEx", code, p1, p2, p3, p4, "the driver called KeBugCheckEx")
}
