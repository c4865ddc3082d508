package kernel

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
)

// EX_TIMER is a timer object the system allocates for a driver
// (ExAllocateTimer, Windows 8.1 and later; REFERENCE §4.20). Its callback
// runs at DISPATCH_LEVEL when it expires, like a KTIMER's DPC, which is
// how the model runs it.
type EX_TIMER struct {
	Name     string
	k        *Kernel
	callback func(t *EX_TIMER, ctx any)
	ctx      any
	kt       *KTIMER
	dpc      *KDPC
	deleted  bool    // ExDeleteTimer disabled it
	running  bool    // its callback is running now
	idle     *KEVENT // signalled when a callback ends while ExDeleteTimer waits
	waitedOn bool
}

// ExAllocateTimer allocates a timer whose callback runs at DISPATCH_LEVEL
// each time it expires, with ctx. The attributes (high resolution, no
// wake) change nothing in the model's exact clock; it never fails.
// IRQL: ≤ DISPATCH_LEVEL, checked (REFERENCE §4.20).
func (k *Kernel) ExAllocateTimer(name string, callback func(t *EX_TIMER, ctx any), ctx any) *EX_TIMER {
	x := k.enter("ExAllocateTimer")
	k.checkIrqlAtMost(x, "ExAllocateTimer", DISPATCH_LEVEL)
	t := &EX_TIMER{Name: name, k: k, callback: callback, ctx: ctx}
	t.kt = k.KeInitializeTimerEx("ex "+name, NotificationEvent)
	t.dpc = k.KeInitializeDpc("ex timer "+name, t.expired, nil)
	return t
}

// expired is the timer's DPC: it runs the driver's callback.
func (t *EX_TIMER) expired(_ *KDPC, _, _, _ any) {
	t.running = true
	t.callback(t, t.ctx)
	t.running = false
	if t.waitedOn {
		t.k.KeSetEvent(t.idle, 0, false)
	}
}

// ExSetTimer arms t to expire after due and then every period if period >
// 0 (REFERENCE §4.20). A timer already set is cancelled first; the result
// reports whether it was. On a timer ExDeleteTimer has disabled it does
// nothing and returns false.
// IRQL: ≤ DISPATCH_LEVEL, checked (REFERENCE §4.20).
func (k *Kernel) ExSetTimer(t *EX_TIMER, due, period des.Duration) bool {
	x := k.enter("ExSetTimer")
	k.checkIrqlAtMost(x, "ExSetTimer", DISPATCH_LEVEL)
	if t.deleted {
		return false
	}
	if period < 0 {
		panic(fmt.Sprintf("kernel: ExSetTimer(%s): negative period %v", t.Name, period))
	}
	return k.setTimer(x, "ExSetTimer", t.kt, due, period, t.dpc)
}

// ExCancelTimer cancels t if it is set and reports whether it was; an
// expiry already under way (its callback queued or running) still
// completes. On a disabled timer it returns false.
// IRQL: ≤ DISPATCH_LEVEL, checked (REFERENCE §4.20).
func (k *Kernel) ExCancelTimer(t *EX_TIMER) bool {
	x := k.enter("ExCancelTimer")
	k.checkIrqlAtMost(x, "ExCancelTimer", DISPATCH_LEVEL)
	if t.deleted {
		return false
	}
	return k.cancelTimer(t.kt)
}

// ExDeleteTimer disables t and deletes it (REFERENCE §4.20). With cancel
// it cancels a set timer first and reports whether it did (false: it was
// not set, or already expired); without cancel it returns false, and a set
// timer still expires once more (the model stops a periodic one
// repeating). With wait — which requires cancel and IRQL ≤ APC_LEVEL, so
// never from the timer's own callback — it returns only after a callback
// already under way has finished; without wait that callback may still be
// running, and the driver must not free what it uses. A second
// ExDeleteTimer returns false and does nothing.
// IRQL: ≤ APC_LEVEL with wait, else ≤ DISPATCH_LEVEL; checked (REFERENCE §4.20).
func (k *Kernel) ExDeleteTimer(t *EX_TIMER, cancel, wait bool) bool {
	x := k.enter("ExDeleteTimer")
	if wait {
		k.checkIrqlAtMost(x, "ExDeleteTimer", APC_LEVEL)
		if !cancel {
			k.bugCheck(x, "ExDeleteTimer", UNSPECIFIED_BUGCHECK, 0, 0, 0, 0,
				fmt.Sprintf("ExDeleteTimer(%s) with Wait TRUE and Cancel FALSE (Microsoft documents a bug check without naming its code)", t.Name))
		}
	} else {
		k.checkIrqlAtMost(x, "ExDeleteTimer", DISPATCH_LEVEL)
	}
	if t.deleted {
		return false
	}
	t.deleted = true
	cancelled := false
	if cancel {
		cancelled = k.cancelTimer(t.kt)
	} else {
		t.kt.period = 0
	}
	if wait {
		if t.idle == nil {
			t.idle = k.KeInitializeEvent("ex timer "+t.Name+" idle", NotificationEvent, false)
		}
		for {
			// Reset, then test, then wait, with no scheduling point
			// between the reset and the test: a callback that ends in
			// between sets the event after the reset and the wait sees it.
			t.idle.state = 0
			if !t.dpc.queued && !t.running {
				break
			}
			t.waitedOn = true
			k.waitObjects(x, "ExDeleteTimer", KernelMode, false, WaitAny, Infinite, t.idle)
		}
		t.waitedOn = false
	}
	return cancelled
}

// KeSetCoalescableTimer is KeSetTimerEx with a tolerable delay, which lets
// Windows expire the timer up to that much late to save power; the model
// expires it on time, one of the behaviours the tolerance allows.
// IRQL: ≤ DISPATCH_LEVEL (REFERENCE §4.20).
func (k *Kernel) KeSetCoalescableTimer(t *KTIMER, due, period, tolerable des.Duration, dpc *KDPC) bool {
	return k.KeSetTimerEx(t, due, period, dpc)
}
