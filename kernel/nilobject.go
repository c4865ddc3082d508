package kernel

import "fmt"

// A NULL object pointer passed to a kernel routine (REFERENCE §4.15). The
// routine's first touch of the object reads or writes near address 0,
// which is never mapped in kernel mode. What Windows then does depends on
// the IRQL of that touch: below DISPATCH_LEVEL the page fault becomes an
// access violation exception that nothing in a system thread handles
// (0x7E, P1 = 0xC0000005); at DISPATCH_LEVEL or above the fault handler
// cannot run and the system stops with IRQL_NOT_LESS_OR_EQUAL 0xA (P1 the
// address, P2 the IRQL of the touch, P3 0 for a read, 1 for a write). A
// routine that raises IRQL or takes the dispatcher lock before its first
// touch faults at that raised IRQL, whatever its caller's.
//
// The check is one comparison at the top of each covered routine, before
// the call's scheduling point; it replaces the Go nil-pointer panic the
// routine would otherwise hit, which named neither the routine nor the
// driver's mistake.

// nilTouch says how a routine first touches its object: at which IRQL at
// least (the caller's when higher) and whether it writes.
type nilTouch struct {
	irql  IRQL
	write bool
}

var (
	touchAtCaller      = nilTouch{irql: PASSIVE_LEVEL}
	writeAtCaller      = nilTouch{irql: PASSIVE_LEVEL, write: true}
	touchAtApc         = nilTouch{irql: APC_LEVEL, write: true}      // fast mutexes: raise to APC_LEVEL first
	touchAtDispatch    = nilTouch{irql: DISPATCH_LEVEL, write: true} // spin locks: raise to DISPATCH_LEVEL first
	touchUnderDispatch = nilTouch{irql: SYNCH_LEVEL}                 // under the dispatcher lock (WRK: SYNCH_LEVEL)
	touchAtHigh        = nilTouch{irql: HIGH_LEVEL}                  // KeInsertQueueDpc raises to HIGH_LEVEL first
)

// nilObject stops the run for a NULL param passed to api, as the routine's
// touch of it would (see above). It does not return to the caller.
func (k *Kernel) nilObject(api, param string, how nilTouch) {
	x := k.cur(api)
	irql := max(x.irql, how.irql)
	detail := fmt.Sprintf("%s called with a NULL %s: the routine dereferences it at %v", api, param, irql)
	if irql >= DISPATCH_LEVEL {
		rw := uint64(0)
		if how.write {
			rw = 1
		}
		k.bugCheck(x, api, IRQL_NOT_LESS_OR_EQUAL, 0, uint64(irql), rw, 0, detail)
		return
	}
	k.raiseUnhandled(x, api, STATUS_ACCESS_VIOLATION, detail)
}

// nilWaitable reports whether w is no object: a nil interface, or a nil
// pointer of one of the kernel's dispatcher object types (which the
// interface does not compare equal to nil).
func nilWaitable(w Waitable) bool {
	switch o := w.(type) {
	case nil:
		return true
	case *KEVENT:
		return o == nil
	case *KSEMAPHORE:
		return o == nil
	case *KTIMER:
		return o == nil
	case *KMUTEX:
		return o == nil
	case *KQUEUE:
		return o == nil
	case *dispatcherHeader:
		return o == nil
	}
	return false
}

// checkWaitObjects reports a NULL entry in a wait's object array
// (KeWaitForMultipleObjects' Object[i]) as the wait's touch of it would.
func (k *Kernel) checkWaitObjects(api string, objs []Waitable) {
	for i, o := range objs {
		if nilWaitable(o) {
			k.nilObject(api, fmt.Sprintf("object (Object[%d])", i), touchUnderDispatch)
		}
	}
}
