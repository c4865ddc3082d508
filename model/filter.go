package model

import (
	"fmt"

	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues"
	"github.com/wqsim/wqsim/queues/fltmgr"
)

// What the minifilter scenarios (cancelsafe, postpaging, postopqueue,
// teardownpend) share: the system they run on, the filter's registration,
// start and unload, and the list a cancel-safe queue keeps its requests in.

// fltFilter is what every scenario minifilter keeps: the run, its kernel,
// the filter manager and, once register has succeeded, the filter.
type fltFilter struct {
	env *Env
	k   *kernel.Kernel
	fm  *fltmgr.FilterManager
	f   *fltmgr.FLT_FILTER
}

// newFltFilter builds what a minifilter scenario runs on: the executive
// worker queues, the filter manager and one volume C:.
func newFltFilter(env *Env) (fltFilter, *fltmgr.FLT_VOLUME, error) {
	sys, err := queues.NewSystem(env.K, queues.DefaultPoolConfig())
	if err != nil {
		return fltFilter{}, nil, err
	}
	fm, err := fltmgr.New(env.K, sys, fltmgr.DefaultConfig())
	if err != nil {
		return fltFilter{}, nil, err
	}
	return fltFilter{env: env, k: env.K, fm: fm}, fm.MountVolume("C:"), nil
}

// register registers reg the usual minifilter way and keeps the filter:
// unless reg has its own, the unload callback unregisters the filter
// (FltUnregisterFilter waits for teardown and outstanding rundown
// references, §5.5).
func (b *fltFilter) register(name string, altitude uint32, reg *fltmgr.FLT_REGISTRATION) error {
	if reg.FilterUnloadCallback == nil {
		reg.FilterUnloadCallback = func(fltmgr.FLT_FILTER_UNLOAD_FLAGS) kernel.NTSTATUS {
			b.fm.FltUnregisterFilter(b.f)
			return kernel.STATUS_SUCCESS
		}
	}
	f, st := b.fm.FltRegisterFilter(name, altitude, reg)
	if st != kernel.STATUS_SUCCESS {
		return fmt.Errorf("FltRegisterFilter(%q): %v", name, st)
	}
	b.f = f
	return nil
}

// startFiltering starts the filter from the calling thread; a failure is
// an invariant violation (the scenarios' filters only fail to start if the
// model is broken).
func (b *fltFilter) startFiltering() {
	if st := b.fm.FltStartFiltering(b.f); st != kernel.STATUS_SUCCESS {
		b.env.Violation("start", "FltStartFiltering: %v", st)
	}
}

// unload unloads the filter from the calling thread (fltmc unload).
func (b *fltFilter) unload() {
	if st := b.fm.FltUnloadFilter(b.f); st != kernel.STATUS_SUCCESS {
		b.env.Violation("unload", "FltUnloadFilter: %v", st)
	}
}

// unloadWhenDone creates the thread that unloads the filter once the
// workload is done, with perturbations off.
func (b *fltFilter) unloadWhenDone(apps *countdown) {
	b.k.PsCreateSystemThread("unloader", 8, func() {
		b.k.KeWaitForSingleObject(apps.done, kernel.Infinite)
		b.env.BeginDrain()
		b.unload()
	})
}

// cbdqList is a cancel-safe callback-data queue's storage in the usual
// form (the cancelSafe sample's): the requests linked through QueueLinks
// on a list head, under a fast mutex, so callers must be at ≤ APC_LEVEL.
// Its methods are the FltCbdq callbacks that need nothing else; the queue
// callbacks run with the lock held, except acquire and release.
type cbdqList struct {
	k     *kernel.Kernel
	head  fltmgr.LIST_ENTRY // initialise in the instance setup callback
	mutex *kernel.FAST_MUTEX
}

// removeIo unlinks data.
func (l *cbdqList) removeIo(_ *fltmgr.FLT_CALLBACK_DATA_QUEUE, data *fltmgr.FLT_CALLBACK_DATA) {
	l.k.RemoveEntryList(&data.QueueLinks)
}

// peekNextIo returns the request after data (the first one when data is
// nil), or nil at the end of the list.
func (l *cbdqList) peekNextIo(_ *fltmgr.FLT_CALLBACK_DATA_QUEUE, data *fltmgr.FLT_CALLBACK_DATA, _ any) *fltmgr.FLT_CALLBACK_DATA {
	e := l.head.Flink
	if data != nil {
		e = data.QueueLinks.Flink
	}
	if e == &l.head {
		return nil
	}
	return fltmgr.CbdFromQueueLinks(e)
}

func (l *cbdqList) acquire(*fltmgr.FLT_CALLBACK_DATA_QUEUE) kernel.IRQL {
	l.k.ExAcquireFastMutex(l.mutex)
	return kernel.APC_LEVEL
}

func (l *cbdqList) release(*fltmgr.FLT_CALLBACK_DATA_QUEUE, kernel.IRQL) {
	l.k.ExReleaseFastMutex(l.mutex)
}
