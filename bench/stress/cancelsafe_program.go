//go:build stress

package stress

import "sync"

// cancelSafeLostCancel is model's cancelsafe:lost-cancel (REFERENCE §2.7A)
// in Go, the README's headline race: the filter's read path tests whether
// the IRP was cancelled, queues it in its own list, and only then sets its
// cancel routine. A cancel that lands between the test and the set finds
// no routine, so nobody completes the cancelled IRP.
func cancelSafeLostCancel(e *env) {
	var listLock sync.Mutex
	var list []*irp
	read := &irp{}
	cancelled := e.word(0)
	remove := func(i *irp) bool {
		listLock.Lock()
		defer listLock.Unlock()
		for k, x := range list {
			if x == i {
				list = append(list[:k], list[k+1:]...)
				return true
			}
		}
		return false
	}
	e.goes(func() { // the application thread's read, pended by the filter
		listLock.Lock()
		if e.ld(cancelled) != 0 { // FltIsIoCanceled
			listLock.Unlock()
			e.complete(read, "read path")
			return
		}
		list = append(list, read)
		listLock.Unlock()
		e.yield()
		routine := func() { // the cancel callback: take it off the list, complete it
			if remove(read) {
				e.complete(read, "cancel routine")
			}
		}
		read.cancel.Store(&routine) // too late: the cancel may already have run
	})
	e.goes(func() { // the canceller: IoCancelIrp
		e.st(cancelled, 1)
		cancelIrp(read)
	})
	e.wg.Wait()
	if read.completed.Load() == 0 {
		e.fail("irp was cancelled but never completed (lost cancel)")
	}
}
