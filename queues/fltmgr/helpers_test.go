package fltmgr_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues"
	"github.com/wqsim/wqsim/queues/fltmgr"
)

// rig is a machine with worker pools and a filter manager with one volume.
type rig struct {
	t     *testing.T
	sim   *des.Sim
	k     *kernel.Kernel
	sys   *queues.System
	fm    *fltmgr.FilterManager
	vol   *fltmgr.FLT_VOLUME
	rec   *des.RecordSink
	trace *bytes.Buffer
}

// rigOpts tunes a rig; the zero value is DefaultConfig everywhere, a
// natural schedule and a 100µs file system completing at DISPATCH_LEVEL.
type rigOpts struct {
	kcfg    *kernel.Config
	fcfg    *fltmgr.Config
	seed    uint64
	chooser des.Chooser
}

func newRig(t *testing.T, o rigOpts) *rig {
	t.Helper()
	r := &rig{t: t, rec: &des.RecordSink{}, trace: &bytes.Buffer{}}
	r.sim = des.New(des.Config{Seed: o.seed, Chooser: o.chooser, StepBudget: 5_000_000,
		Sink: des.MultiSink{r.rec, &des.TextSink{W: r.trace}}})
	t.Cleanup(r.sim.Close)
	kcfg, fcfg := kernel.DefaultConfig(), fltmgr.DefaultConfig()
	if o.kcfg != nil {
		kcfg = *o.kcfg
	}
	if o.fcfg != nil {
		fcfg = *o.fcfg
	}
	r.k = kernel.MustNew(r.sim, kcfg)
	r.sys = queues.MustNewSystem(r.k, queues.DefaultPoolConfig())
	r.fm = fltmgr.MustNew(r.k, r.sys, fcfg)
	r.vol = r.fm.MountVolume("C:")
	return r
}

// run runs to quiescence and logs the trace tail if the test fails.
func (r *rig) run() des.Outcome {
	out := r.k.Run()
	r.t.Cleanup(func() {
		if r.t.Failed() {
			lines := strings.Split(r.trace.String(), "\n")
			if len(lines) > 120 {
				lines = lines[len(lines)-120:]
			}
			r.t.Logf("outcome: %v\ntrace tail:\n%s", out.Err, strings.Join(lines, "\n"))
		}
	})
	return out
}

func (r *rig) thread(name string, body func()) *kernel.Thread {
	return r.k.PsCreateSystemThread(name, 8, body)
}

// register registers a filter (FltStartFiltering must then run in a thread).
func (r *rig) register(name string, altitude uint32, reg *fltmgr.FLT_REGISTRATION) *fltmgr.FLT_FILTER {
	f, st := r.fm.FltRegisterFilter(name, altitude, reg)
	require.Equal(r.t, kernel.STATUS_SUCCESS, st)
	return f
}

// gate is a one-shot flag in shared memory; wait spins on it (each read a
// scheduling point), which on two processors lets the other party run.
func (r *rig) gate(name string) *kernel.Cell { return r.k.NewCell(name, 0) }
func (r *rig) open(g *kernel.Cell)           { r.k.Write(g, 1) }
func (r *rig) wait(g *kernel.Cell) {
	for r.k.Read(g) == 0 {
	}
}

// startAndIssue starts f filtering and issues req from a thread named
// app, runs to the end and returns the operation (nil if the thread never
// issued it) and the outcome.
func (r *rig) startAndIssue(f *fltmgr.FLT_FILTER, req fltmgr.IoRequest) (*fltmgr.IoOp, des.Outcome) {
	var io *fltmgr.IoOp
	r.thread("app", func() {
		r.fm.FltStartFiltering(f)
		io = r.vol.Issue(req)
	})
	out := r.run()
	return io, out
}

func (r *rig) threadName() string {
	if t := r.k.Layer().ThreadOrNil(); t != nil {
		return t.Name()
	}
	return "dpc"
}

func read(length uint32) fltmgr.IoRequest {
	return fltmgr.IoRequest{MajorFunction: fltmgr.IRP_MJ_READ, Length: length, Tag: "read"}
}

func requireBugCheck(t *testing.T, out des.Outcome, code uint32, p1 uint64) *kernel.BugCheck {
	t.Helper()
	var bc *kernel.BugCheck
	require.ErrorAs(t, out.Err, &bc, "want bug check 0x%X", code)
	assert.Equal(t, code, bc.Code, bc.Error())
	assert.Equal(t, p1, bc.Params[0], bc.Error())
	return bc
}

func requireViolation(t *testing.T, out des.Outcome, contains string) *fltmgr.VerifierViolation {
	t.Helper()
	var v *fltmgr.VerifierViolation
	require.ErrorAs(t, out.Err, &v)
	assert.Contains(t, v.Error(), contains)
	return v
}

// lockKind is the kind of lock a test filter's queue uses.
type lockKind uint8

const (
	spinLocked  lockKind = iota // callers at ≤ DISPATCH_LEVEL
	mutexLocked                 // fast mutex: callers at ≤ APC_LEVEL
)

func (l lockKind) String() string { return [...]string{"spin lock", "fast mutex"}[l] }

// cbdqFilter is a minifilter in the style of the cancelSafe sample (§7.1):
// its pre-read inserts every read into a cancel-safe queue and pends it;
// others dequeue and complete. It works on one volume.
type cbdqFilter struct {
	r      *rig
	f      *fltmgr.FLT_FILTER
	inst   *fltmgr.FLT_INSTANCE
	lock   lockKind
	q      fltmgr.FLT_CALLBACK_DATA_QUEUE
	head   fltmgr.LIST_ENTRY
	spin   *kernel.KSPIN_LOCK
	mutex  *kernel.FAST_MUTEX
	locked bool

	inserts     []kernel.NTSTATUS // FltCbdqInsertIo results, in order
	cancelledBy []string          // threads that ran CompleteCanceledIo
	torndown    []string          // teardown callbacks seen, with reasons
	// beforeInsert, if set, runs in the pre-op before FltCbdqInsertIo.
	beforeInsert func(data *fltmgr.FLT_CALLBACK_DATA)
	// drainOnTeardown makes InstanceTeardownStart disable and drain the
	// queue (the documented duty, §5.5 item 2).
	drainOnTeardown bool
	// insertReturns is what InsertIo returns on success (STATUS_SUCCESS or
	// STATUS_PENDING, §1.5); the pre-op pends when the insert returns it.
	insertReturns kernel.NTSTATUS
	// afterInsert, if set, runs in InsertIo after linking data (lock
	// held); a failure unlinks it again and is returned (§7.1 step 3).
	afterInsert func(data *fltmgr.FLT_CALLBACK_DATA, wasEmpty bool) kernel.NTSTATUS
	// insertFastIo makes the pre-op insert non-IRP data too (a bug).
	insertFastIo bool
	// ignoreDisabled makes the pre-op return PENDING whatever the insert
	// returned (the bug of §2.7I).
	ignoreDisabled bool
	// onTeardownStart, if set, runs first in InstanceTeardownStart.
	onTeardownStart func()
	// hooks run once at their IoCsq step, in whichever thread reaches it.
	hooks map[queues.CsqStep]func()
}

func newCbdqFilter(r *rig, lock lockKind) *cbdqFilter {
	c := &cbdqFilter{r: r, lock: lock, drainOnTeardown: true, hooks: map[queues.CsqStep]func(){}}
	c.spin = r.k.KeInitializeSpinLock("cbdq")
	c.mutex = r.k.ExInitializeFastMutex("cbdq")
	c.f = r.register("cancelsafe", 100, &fltmgr.FLT_REGISTRATION{
		OperationRegistration: []fltmgr.FLT_OPERATION_REGISTRATION{{
			MajorFunction: fltmgr.IRP_MJ_READ, Flags: fltmgr.FLTFL_OPERATION_REGISTRATION_SKIP_PAGING_IO,
			PreOperation: c.preRead,
		}},
		FilterUnloadCallback: func(fltmgr.FLT_FILTER_UNLOAD_FLAGS) kernel.NTSTATUS {
			r.fm.FltUnregisterFilter(c.f)
			return kernel.STATUS_SUCCESS
		},
		InstanceSetupCallback: c.setup,
		InstanceQueryTeardownCallback: func(*fltmgr.FLT_RELATED_OBJECTS, fltmgr.FLT_INSTANCE_QUERY_TEARDOWN_FLAGS) kernel.NTSTATUS {
			return kernel.STATUS_SUCCESS
		},
		InstanceTeardownStartCallback: c.teardownStart,
		InstanceTeardownCompleteCallback: func(objs *fltmgr.FLT_RELATED_OBJECTS, reason fltmgr.FLT_INSTANCE_TEARDOWN_FLAGS) {
			c.torndown = append(c.torndown, "complete")
		},
	})
	return c
}

func (c *cbdqFilter) setup(objs *fltmgr.FLT_RELATED_OBJECTS, _ fltmgr.FLT_INSTANCE_SETUP_FLAGS) kernel.NTSTATUS {
	c.inst = objs.Instance
	c.r.k.InitializeListHead(&c.head)
	st := c.r.fm.FltCbdqInitialize(objs.Instance, &c.q, c.insertIo, c.removeIo, c.peekNextIo, c.acquire, c.release, c.completeCanceledIo)
	c.q.Csq.Hook = func(s queues.CsqStep, _ *kernel.IRP) {
		if f := c.hooks[s]; f != nil {
			delete(c.hooks, s)
			f()
		}
	}
	return st
}

func (c *cbdqFilter) preRead(data *fltmgr.FLT_CALLBACK_DATA, _ *fltmgr.FLT_RELATED_OBJECTS, _ *any) fltmgr.FLT_PREOP_CALLBACK_STATUS {
	if !fltmgr.FLT_IS_IRP_OPERATION(data) && !c.insertFastIo {
		return fltmgr.FLT_PREOP_DISALLOW_FASTIO
	}
	if c.beforeInsert != nil {
		c.beforeInsert(data)
	}
	tok := &fltmgr.FLT_CALLBACK_DATA_QUEUE_IO_CONTEXT{}
	data.QueueContext[0] = tok
	st := c.r.fm.FltCbdqInsertIo(&c.q, data, tok, nil)
	c.inserts = append(c.inserts, st)
	if st == c.insertReturns || c.ignoreDisabled {
		return fltmgr.FLT_PREOP_PENDING // and data is not touched again (§2.7H)
	}
	return fltmgr.FLT_PREOP_SUCCESS_NO_CALLBACK
}

func (c *cbdqFilter) insertIo(_ *fltmgr.FLT_CALLBACK_DATA_QUEUE, data *fltmgr.FLT_CALLBACK_DATA, _ any) kernel.NTSTATUS {
	assert.True(c.r.t, c.locked, "InsertIo runs under the queue lock (§1.5)")
	wasEmpty := c.r.k.IsListEmpty(&c.head)
	c.r.k.InsertTailList(&c.head, &data.QueueLinks)
	if c.afterInsert != nil {
		if st := c.afterInsert(data, wasEmpty); !kernel.NT_SUCCESS(st) {
			c.r.k.RemoveEntryList(&data.QueueLinks)
			return st
		}
	}
	return c.insertReturns
}

func (c *cbdqFilter) removeIo(_ *fltmgr.FLT_CALLBACK_DATA_QUEUE, data *fltmgr.FLT_CALLBACK_DATA) {
	assert.True(c.r.t, c.locked, "RemoveIo runs under the queue lock (§1.5)")
	c.r.k.RemoveEntryList(&data.QueueLinks)
}

func (c *cbdqFilter) peekNextIo(_ *fltmgr.FLT_CALLBACK_DATA_QUEUE, data *fltmgr.FLT_CALLBACK_DATA, _ any) *fltmgr.FLT_CALLBACK_DATA {
	e := c.head.Flink
	if data != nil {
		e = data.QueueLinks.Flink
	}
	if e == &c.head {
		return nil
	}
	return fltmgr.CbdFromQueueLinks(e)
}

func (c *cbdqFilter) acquire(*fltmgr.FLT_CALLBACK_DATA_QUEUE) kernel.IRQL {
	var old kernel.IRQL
	if c.lock == spinLocked {
		old = c.r.k.KeAcquireSpinLock(c.spin)
	} else {
		c.r.k.ExAcquireFastMutex(c.mutex)
	}
	c.locked = true
	return old
}

func (c *cbdqFilter) release(_ *fltmgr.FLT_CALLBACK_DATA_QUEUE, old kernel.IRQL) {
	c.locked = false
	if c.lock == spinLocked {
		c.r.k.KeReleaseSpinLock(c.spin, old)
	} else {
		c.r.k.ExReleaseFastMutex(c.mutex)
	}
}

func (c *cbdqFilter) completeCanceledIo(_ *fltmgr.FLT_CALLBACK_DATA_QUEUE, data *fltmgr.FLT_CALLBACK_DATA) {
	c.cancelledBy = append(c.cancelledBy, c.r.threadName())
	data.IoStatus = kernel.IO_STATUS_BLOCK{Status: kernel.STATUS_CANCELLED}
	c.r.fm.FltCompletePendedPreOperation(data, fltmgr.FLT_PREOP_COMPLETE, nil)
}

func (c *cbdqFilter) teardownStart(_ *fltmgr.FLT_RELATED_OBJECTS, reason fltmgr.FLT_INSTANCE_TEARDOWN_FLAGS) {
	c.torndown = append(c.torndown, "start")
	if c.onTeardownStart != nil {
		c.onTeardownStart()
	}
	if !c.drainOnTeardown {
		return
	}
	c.r.fm.FltCbdqDisable(&c.q)
	for d := c.r.fm.FltCbdqRemoveNextIo(&c.q, nil); d != nil; d = c.r.fm.FltCbdqRemoveNextIo(&c.q, nil) {
		c.r.fm.FltCompletePendedPreOperation(d, fltmgr.FLT_PREOP_SUCCESS_NO_CALLBACK, nil)
	}
}

// completeNext dequeues the next read and lets it continue down
// (FLT_PREOP_SUCCESS_NO_CALLBACK); it returns the data, nil if none.
func (c *cbdqFilter) completeNext() *fltmgr.FLT_CALLBACK_DATA {
	d := c.r.fm.FltCbdqRemoveNextIo(&c.q, nil)
	if d != nil {
		c.r.fm.FltCompletePendedPreOperation(d, fltmgr.FLT_PREOP_SUCCESS_NO_CALLBACK, nil)
	}
	return d
}

// start registers nothing more; it starts filtering from the calling thread.
func (c *cbdqFilter) start() {
	require.Equal(c.r.t, kernel.STATUS_SUCCESS, c.r.fm.FltStartFiltering(c.f))
}
