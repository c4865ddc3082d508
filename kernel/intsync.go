package kernel

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
)

// Synchronizing with an ISR (REFERENCE §4.13). Every interrupt object has
// an interrupt spin lock, its own or one several objects share
// (IoConnectInterruptEx's SpinLock), and a synchronize IRQL at which its
// ISR runs and KeSynchronizeExecution holds the lock. The ISR context takes it before it calls the
// service routine and drops it after, so a KeSynchronizeExecution routine
// or a KeAcquireInterruptSpinLock section running on one processor makes
// the ISR spin at DIRQL on every other processor until it is done; on the
// holder's own processor the ISR cannot start at all, because the holder
// runs at the interrupt's IRQL.

// KeSynchronizeExecution runs routine(ctx) serialized with intr's ISR: it
// raises the caller to intr's synchronize IRQL (SynchronizeIrql),
// acquires intr's interrupt spin lock — spinning while an ISR for intr
// runs on another processor —, calls routine, releases the lock, lowers
// to the caller's IRQL and returns routine's result. routine runs at
// DIRQL, so everything illegal at DIRQL fails inside it as such (a wait,
// a DISPATCH_LEVEL spin lock, paged pool); it must be short. An
// interrupt delivered to the caller's processor meanwhile runs its ISR as
// soon as the IRQL drops, before KeSynchronizeExecution returns.
//
// IRQL: ≤ intr's DIRQL (DDI:KeSynchronizeExecution); above it the model
// reports IRQL_NOT_LESS_OR_EQUAL 0xA (REFERENCE §4.13). After
// IoDisconnectInterrupt freed intr it is a use after free, 0xD5. Calling it from
// intr's own ISR, or while holding intr's lock, is a recursive acquire,
// SPIN_LOCK_ALREADY_OWNED 0x0F. A scheduling point.
func (k *Kernel) KeSynchronizeExecution(intr *KINTERRUPT, routine func(ctx any) bool, ctx any) bool {
	x := k.enterOn("KeSynchronizeExecution", &intr.lock.aid, des.AccessLock)
	old := k.raiseToSynchronize(x, intr, "KeSynchronizeExecution")
	result := routine(ctx)
	k.spinRelease(x, intr.lock, "KeSynchronizeExecution")
	k.lowerTo(x, old)
	return result
}

// KeAcquireInterruptSpinLock raises the caller to intr's synchronize IRQL
// (SynchronizeIrql), acquires intr's interrupt spin lock, spinning while intr's
// ISR runs on another processor, and returns the caller's previous IRQL
// for KeReleaseInterruptSpinLock. The code in between runs at DIRQL,
// serialized with the ISR on every processor (REFERENCE §4.13);
// KeSynchronizeExecution is the preferred form.
//
// IRQL: ≤ intr's DIRQL (DDI:KeAcquireInterruptSpinLock); above it
// IRQL_NOT_LESS_OR_EQUAL 0xA. Acquiring a lock the caller already holds
// is SPIN_LOCK_ALREADY_OWNED 0x0F (REFERENCE §4.13). A scheduling point.
func (k *Kernel) KeAcquireInterruptSpinLock(intr *KINTERRUPT) IRQL {
	x := k.enterOn("KeAcquireInterruptSpinLock", &intr.lock.aid, des.AccessLock)
	return k.raiseToSynchronize(x, intr, "KeAcquireInterruptSpinLock")
}

// KeReleaseInterruptSpinLock releases intr's interrupt spin lock and
// lowers the caller to old, the value KeAcquireInterruptSpinLock returned
// (DDI:KeReleaseInterruptSpinLock). An ISR pending on the caller's
// processor runs as the IRQL drops.
//
// IRQL: intr's DIRQL, as the acquire left it (REFERENCE §4.13). Releasing
// a lock the caller does not hold is SPIN_LOCK_NOT_OWNED 0x10; an old
// IRQL above the current one is the KeLowerIrql misuse (Verifier 0xC4
// P1=0x31, else 0x9).
func (k *Kernel) KeReleaseInterruptSpinLock(intr *KINTERRUPT, old IRQL) {
	x := k.enterOn("KeReleaseInterruptSpinLock", &intr.lock.aid, des.AccessLock)
	k.spinRelease(x, intr.lock, "KeReleaseInterruptSpinLock")
	if old > x.irql {
		k.irqlViolation(x, "KeReleaseInterruptSpinLock", 0x31, x.irql, old)
	}
	k.lowerTo(x, old)
}

// raiseToSynchronize checks the caller's IRQL against intr's DIRQL,
// raises to it and takes intr's lock; it returns the caller's IRQL.
func (k *Kernel) raiseToSynchronize(x *exec, intr *KINTERRUPT, api string) IRQL {
	if intr.disconnected {
		k.bugCheck(x, api, DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL, 0, 0, 0, 0,
			fmt.Sprintf("%s(%s) after IoDisconnectInterrupt, which freed the interrupt object", api, intr.Name))
	}
	if x.irql > intr.syncIrql {
		k.bugCheck(x, api, IRQL_NOT_LESS_OR_EQUAL, 0, uint64(x.irql), 0, 0,
			fmt.Sprintf("%s(%s) called at %v, above the interrupt's synchronize IRQL %v", api, intr.Name, x.irql, intr.syncIrql))
	}
	old := x.irql
	k.setIrql(x, intr.syncIrql)
	k.spinAcquire(x, intr.lock, api)
	return old
}

// isrLock takes intr's interrupt spin lock for its ISR on e. Uncontended
// it is silent (every ISR takes it, and a trace line per ISR would say
// nothing); contended, the ISR spins at DIRQL and the trace shows it.
func (k *Kernel) isrLock(e *exec, intr *KINTERRUPT) {
	if intr.lock.owner == nil {
		intr.lock.owner = e
		return
	}
	k.spinAcquire(e, intr.lock, "KiInterruptDispatch")
}

// isrUnlock drops the lock isrLock took, handing it to a spinner if any
// (a KeSynchronizeExecution caller, or the ISR on another processor).
func (k *Kernel) isrUnlock(e *exec, intr *KINTERRUPT) {
	if intr.lock.owner == e && len(intr.lock.spinners) == 0 {
		intr.lock.owner = nil
		return
	}
	k.spinRelease(e, intr.lock, "KiInterruptDispatch")
}
