package model

import (
	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues/fltmgr"
)

// The lost-cancel variant replaces the cbdq with a hand-rolled list and
// FltSetCancelCompletion, in the test-then-set order that REFERENCE §2.7A
// shows losing a cancel (the NameChanger sample closes the same window by
// holding the cancel spin lock around both steps, §7.3).

func (cs *csFilter) preReadOwnList(data *fltmgr.FLT_CALLBACK_DATA) fltmgr.FLT_PREOP_CALLBACK_STATUS {
	k, fm := cs.K, cs.FM
	if fm.FltIsIoCanceled(data) {
		cs.freeContext(data)
		data.IoStatus = kernel.IO_STATUS_BLOCK{Status: kernel.STATUS_CANCELLED}
		return fltmgr.FLT_PREOP_COMPLETE
	}
	old := k.KeAcquireSpinLock(cs.spin)
	if cs.ownDisabled { // teardown drained the list: pass the read down (the variant's one bug is the lost cancel)
		k.KeReleaseSpinLock(cs.spin, old)
		cs.freeContext(data)
		return fltmgr.FLT_PREOP_SUCCESS_NO_CALLBACK
	}
	wasEmpty := len(cs.own) == 0
	cs.own = append(cs.own, data)
	k.KeReleaseSpinLock(cs.spin, old)
	k.Compute(2 * des.Microsecond) // bookkeeping between the test and the set
	fm.FltSetCancelCompletion(data, cs.fn.cancelOwn)
	// Start the worker under the list's spin lock (at DISPATCH_LEVEL); a
	// failure leaves the read for the next worker (the counter is restored).
	old = k.KeAcquireSpinLock(cs.spin)
	if cs.ownDisabled && fm.FltClearCancelCompletion(data) == kernel.STATUS_SUCCESS {
		// Teardown drained the list while this read had no cancel callback
		// yet (its drain skips those): take it back and pass it down.
		cs.own = removeFirst(cs.own, data)
		k.KeReleaseSpinLock(cs.spin, old)
		cs.freeContext(data)
		return fltmgr.FLT_PREOP_SUCCESS_NO_CALLBACK
	}
	cs.startWorker(wasEmpty)
	k.KeReleaseSpinLock(cs.spin, old)
	return fltmgr.FLT_PREOP_PENDING
}

// popOwnList takes the first read whose cancel callback we could clear;
// a read being cancelled belongs to the callback (§2.1).
func (cs *csFilter) popOwnList() *fltmgr.FLT_CALLBACK_DATA {
	k := cs.K
	old := k.KeAcquireSpinLock(cs.spin)
	defer k.KeReleaseSpinLock(cs.spin, old)
	for i, d := range cs.own {
		if cs.FM.FltClearCancelCompletion(d) == kernel.STATUS_SUCCESS {
			cs.own = append(cs.own[:i], cs.own[i+1:]...)
			return d
		}
	}
	return nil
}

// cancelOwn is the cancel callback: unlink, complete as cancelled.
func (cs *csFilter) cancelOwn(data *fltmgr.FLT_CALLBACK_DATA) {
	k := cs.K
	old := k.KeAcquireSpinLock(cs.spin)
	cs.own = removeFirst(cs.own, data)
	k.KeReleaseSpinLock(cs.spin, old)
	data.IoStatus = kernel.IO_STATUS_BLOCK{Status: kernel.STATUS_CANCELLED}
	cs.freeContext(data)
	cs.FM.FltCompletePendedPreOperation(data, fltmgr.FLT_PREOP_COMPLETE, nil)
}
