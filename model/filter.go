package model

import (
	"fmt"

	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues"
	"github.com/wqsim/wqsim/queues/fltmgr"
)

// Minifilter is the harness a minifilter scenario runs on: the executive
// worker queues (System), the filter manager (FM) and one volume C:
// (Volume), plus the filter once Register has succeeded (Filter). The
// built-in minifilter scenarios (cancelsafe, postpaging, postopqueue,
// teardownpend) embed it; a scenario of your own uses it the same way:
//
//	func setup(env *model.Env) error {
//		mf, err := model.NewMinifilter(env)
//		if err != nil {
//			return err
//		}
//		err = mf.Register("myfilter", 370000, &fltmgr.FLT_REGISTRATION{
//			OperationRegistration: []fltmgr.FLT_OPERATION_REGISTRATION{{MajorFunction: fltmgr.IRP_MJ_READ, PreOperation: preRead}},
//		})
//		if err != nil {
//			return err
//		}
//		env.K.PsCreateSystemThread("app", 8, func() {
//			mf.StartFiltering()
//			mf.Volume.Send(fltmgr.IoRequest{MajorFunction: fltmgr.IRP_MJ_READ, Tag: "read"})
//			mf.Unload() // or mf.UnloadWhenDone(done) from setup
//		})
//		return nil
//	}
//
// The filter's callbacks call the filter manager's routines on mf.FM
// (FltCbdqInsertIo, FltCompletePendedPreOperation, ...).
type Minifilter struct {
	Env    *Env
	K      *kernel.Kernel
	System *queues.System
	FM     *fltmgr.FilterManager
	Volume *fltmgr.FLT_VOLUME
	Filter *fltmgr.FLT_FILTER // the first filter Register registered

	unload fltmgr.PFLT_FILTER_UNLOAD_CALLBACK // Register's default for Filter, bound to m once
}

// NewMinifilter builds what a minifilter scenario runs on: the executive
// worker queues (default pool configuration), the filter manager (default
// configuration) and one volume C:. Call it from Setup.
func NewMinifilter(env *Env) (*Minifilter, error) {
	sys, err := queues.NewSystem(env.K, queues.DefaultPoolConfig())
	if err != nil {
		return nil, err
	}
	fm, err := fltmgr.New(env.K, sys, fltmgr.DefaultConfig())
	if err != nil {
		return nil, err
	}
	m := sparesOf(env.Sim).minifilters.Take(env.Sim)
	unload := m.unload // recycled (see runSpares): keep the callback bound to m
	*m = Minifilter{Env: env, K: env.K, System: sys, FM: fm, Volume: fm.MountVolume("C:"), unload: unload}
	return m, nil
}

// Register registers a filter (FltRegisterFilter). The first filter it
// registers is kept in Filter, the one StartFiltering and Unload act on.
// Unless reg has its own, the unload callback unregisters the filter it
// was registered with, the usual minifilter way (FltUnregisterFilter waits
// for teardown and outstanding rundown references, REFERENCE §5.5). Call
// it from Setup or from a thread. A scenario with several filters calls
// RegisterFilter for each.
func (m *Minifilter) Register(name string, altitude uint32, reg *fltmgr.FLT_REGISTRATION) error {
	_, err := m.RegisterFilter(name, altitude, reg)
	return err
}

// RegisterFilter is Register that also returns the filter: the way to
// register a second filter (start it with FM.FltStartFiltering, unload it
// with FM.FltUnloadFilter). reg is not modified (the filter manager keeps
// a copy), so one FLT_REGISTRATION may serve several filters.
func (m *Minifilter) RegisterFilter(name string, altitude uint32, reg *fltmgr.FLT_REGISTRATION) (*fltmgr.FLT_FILTER, error) {
	if m.Filter != nil {
		return m.registerMore(name, altitude, reg)
	}
	r := *reg // the filter manager keeps a copy; the caller's stays as it was
	if r.FilterUnloadCallback == nil {
		r.FilterUnloadCallback = m.firstUnload()
	}
	f, st := m.FM.FltRegisterFilter(name, altitude, &r)
	if st != kernel.STATUS_SUCCESS {
		return nil, fmt.Errorf("FltRegisterFilter(%q): %v", name, st)
	}
	m.Filter = f
	return f, nil
}

// firstUnload is the default unload callback of Filter: bound to m once
// and recycled with it, so registering allocates nothing per execution.
func (m *Minifilter) firstUnload() fltmgr.PFLT_FILTER_UNLOAD_CALLBACK {
	if m.unload == nil {
		m.unload = func(fltmgr.FLT_FILTER_UNLOAD_FLAGS) kernel.NTSTATUS {
			m.FM.FltUnregisterFilter(m.Filter)
			return kernel.STATUS_SUCCESS
		}
	}
	return m.unload
}

// registerMore registers a filter after the first; its default unload
// callback captures the filter it unregisters.
func (m *Minifilter) registerMore(name string, altitude uint32, reg *fltmgr.FLT_REGISTRATION) (*fltmgr.FLT_FILTER, error) {
	var self *fltmgr.FLT_FILTER
	r := *reg
	if r.FilterUnloadCallback == nil {
		r.FilterUnloadCallback = func(fltmgr.FLT_FILTER_UNLOAD_FLAGS) kernel.NTSTATUS {
			m.FM.FltUnregisterFilter(self)
			return kernel.STATUS_SUCCESS
		}
	}
	f, st := m.FM.FltRegisterFilter(name, altitude, &r)
	if st != kernel.STATUS_SUCCESS {
		return nil, fmt.Errorf("FltRegisterFilter(%q): %v", name, st)
	}
	self = f
	return f, nil
}

// StartFiltering starts the filter (FltStartFiltering) from the calling
// thread; a failure stops the run as an invariant violation named
// "start".
func (m *Minifilter) StartFiltering() {
	if st := m.FM.FltStartFiltering(m.Filter); st != kernel.STATUS_SUCCESS {
		m.Env.Violation("start", "FltStartFiltering: %v", st)
	}
}

// Unload unloads the filter from the calling thread, as `fltmc unload`
// does (FltUnloadFilter); a failure stops the run as an invariant
// violation named "unload".
func (m *Minifilter) Unload() {
	if st := m.FM.FltUnloadFilter(m.Filter); st != kernel.STATUS_SUCCESS {
		m.Env.Violation("unload", "FltUnloadFilter: %v", st)
	}
}

// UnloadWhenDone creates a thread "unloader" that waits for done, ends
// the perturbation phase (Env.BeginDrain: the unload and everything after
// it take natural choices) and unloads the filter. Call it from Setup.
func (m *Minifilter) UnloadWhenDone(done *kernel.KEVENT) {
	m.K.PsCreateSystemThread("unloader", 8, func() {
		m.K.KeWaitForSingleObject(done, kernel.Infinite)
		m.Env.BeginDrain()
		m.Unload()
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
