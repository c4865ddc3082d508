package fltmgr_test

// Flt work items and rundown protection (REFERENCE §1.3, §5.5 item 6,
// §6.6–§6.8).

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues"
	"github.com/wqsim/wqsim/queues/fltmgr"
)

// unloadableFilter is a filter with only an unload callback, and hooks
// for the teardown callbacks.
func unloadableFilter(r *rig, name string, onStart func(inst *fltmgr.FLT_INSTANCE)) *fltmgr.FLT_FILTER {
	var f *fltmgr.FLT_FILTER
	f = r.register(name, 100, &fltmgr.FLT_REGISTRATION{
		FilterUnloadCallback: func(fltmgr.FLT_FILTER_UNLOAD_FLAGS) kernel.NTSTATUS {
			r.fm.FltUnregisterFilter(f)
			return kernel.STATUS_SUCCESS
		},
		InstanceTeardownStartCallback: func(objs *fltmgr.FLT_RELATED_OBJECTS, _ fltmgr.FLT_INSTANCE_TEARDOWN_FLAGS) {
			if onStart != nil {
				onStart(objs.Instance)
			}
		},
	})
	return f
}

// §1.3, §6.8: FltQueueGenericWorkItem holds a rundown reference on the
// filter until the routine returns, so an unload issued while the routine
// runs waits for it.
func TestGenericWorkItemHoldsRundown(t *testing.T) {
	r := newRig(t, rigOpts{})
	f := unloadableFilter(r, "gen", nil)
	queued := r.gate("queued")
	var st kernel.NTSTATUS
	var returnedAt, unloadedAt des.Time
	var ranAt kernel.IRQL
	r.thread("driver", func() {
		r.fm.FltStartFiltering(f)
		item := r.fm.FltAllocateGenericWorkItem()
		st = r.fm.FltQueueGenericWorkItem(item, f, func(item *fltmgr.FLT_GENERIC_WORKITEM, obj fltmgr.FltObject, ctx any) {
			ranAt = r.k.KeGetCurrentIrql()
			assert.Same(t, f, obj)
			assert.Equal(t, "ctx", ctx)
			r.k.KeDelayExecutionThread(5 * des.Millisecond)
			r.fm.FltFreeGenericWorkItem(item)
			returnedAt = r.k.Now()
		}, queues.DelayedWorkQueue, "ctx")
		r.open(queued)
	})
	r.thread("unloader", func() {
		r.wait(queued)
		r.fm.FltUnloadFilter(f)
		unloadedAt = r.k.Now()
	})
	require.NoError(t, r.run().Err)
	assert.Equal(t, kernel.STATUS_SUCCESS, st)
	require.NotZero(t, returnedAt, "the routine ran (ranAt's zero value is PASSIVE_LEVEL)")
	assert.Equal(t, kernel.PASSIVE_LEVEL, ranAt)
	assert.Greater(t, unloadedAt, returnedAt, "FltUnregisterFilter waited for the work routine")
}

// §1.3, §5.5 item 3: while the filter unloads (or the instance detaches),
// FltQueueGenericWorkItem fails with STATUS_FLT_DELETING_OBJECT
// (0xC01C000B) and queues nothing; FltObjectReference fails the same way.
func TestGenericWorkItemDeletingObject(t *testing.T) {
	for _, onInstance := range []bool{false, true} {
		r := newRig(t, rigOpts{})
		var f *fltmgr.FLT_FILTER
		var before, during, ref kernel.NTSTATUS
		f = unloadableFilter(r, "gen", func(inst *fltmgr.FLT_INSTANCE) {
			var obj fltmgr.FltObject = f
			if onInstance {
				obj = inst
			}
			item := r.fm.FltAllocateGenericWorkItem()
			during = r.fm.FltQueueGenericWorkItem(item, obj, func(*fltmgr.FLT_GENERIC_WORKITEM, fltmgr.FltObject, any) {
				t.Error("a refused item must not run")
			}, queues.DelayedWorkQueue, nil)
			ref = r.fm.FltObjectReference(obj)
			r.fm.FltFreeGenericWorkItem(item)
		})
		r.thread("driver", func() {
			r.fm.FltStartFiltering(f)
			var obj fltmgr.FltObject = f
			if onInstance {
				obj = f.Instances()[0]
			}
			item := r.fm.FltAllocateGenericWorkItem()
			before = r.fm.FltQueueGenericWorkItem(item, obj, func(item *fltmgr.FLT_GENERIC_WORKITEM, _ fltmgr.FltObject, _ any) {
				r.fm.FltFreeGenericWorkItem(item)
			}, queues.CriticalWorkQueue, nil)
			r.k.KeDelayExecutionThread(des.Millisecond)
			r.fm.FltUnloadFilter(f)
		})
		require.NoError(t, r.run().Err)
		assert.Equal(t, kernel.STATUS_SUCCESS, before)
		assert.Equal(t, kernel.STATUS_FLT_DELETING_OBJECT, during, "instance=%v", onInstance)
		assert.Equal(t, kernel.NTSTATUS(0xC01C000B), during)
		assert.Equal(t, kernel.STATUS_FLT_DELETING_OBJECT, ref)
	}
}

// §1.3: FltQueueDeferredIoWorkItem fails with STATUS_FLT_DELETING_OBJECT
// (0xC01C000B) when the operation's target instance is being torn down —
// here for an operation whose pre-op started before the teardown.
func TestDeferredWorkItemDeletingObject(t *testing.T) {
	r := newRig(t, rigOpts{})
	df := buildDeferredFilter(r, false)
	inPreOp, tornDown := r.gate("in pre-op"), r.gate("teardown started")
	inner := df.pre
	var unloaded bool
	df.f = r.register("late", 200, &fltmgr.FLT_REGISTRATION{
		OperationRegistration: []fltmgr.FLT_OPERATION_REGISTRATION{{MajorFunction: fltmgr.IRP_MJ_READ,
			PreOperation: func(d *fltmgr.FLT_CALLBACK_DATA, o *fltmgr.FLT_RELATED_OBJECTS, c *any) fltmgr.FLT_PREOP_CALLBACK_STATUS {
				r.open(inPreOp)
				r.wait(tornDown)
				return inner(d, o, c)
			}}},
		FilterUnloadCallback: func(fltmgr.FLT_FILTER_UNLOAD_FLAGS) kernel.NTSTATUS {
			r.fm.FltUnregisterFilter(df.f)
			return kernel.STATUS_SUCCESS
		},
		InstanceTeardownStartCallback: func(*fltmgr.FLT_RELATED_OBJECTS, fltmgr.FLT_INSTANCE_TEARDOWN_FLAGS) { r.open(tornDown) },
	})
	var final kernel.IO_STATUS_BLOCK
	r.thread("app", func() {
		r.fm.FltStartFiltering(df.f)
		final = r.vol.Send(read(3))
	})
	r.thread("unloader", func() {
		r.wait(inPreOp)
		unloaded = r.fm.FltUnloadFilter(df.f) == kernel.STATUS_SUCCESS
	})
	require.NoError(t, r.run().Err)
	assert.Equal(t, []kernel.NTSTATUS{kernel.STATUS_FLT_DELETING_OBJECT}, df.statuses)
	assert.Equal(t, kernel.STATUS_SUCCESS, final.Status, "the pre-op passed the read down itself")
	assert.True(t, unloaded, "teardown waited for the pre-op in progress, then completed")
}

// §5.5 item 6: a rundown reference that is never dropped (here from
// FltObjectReference, and from FltGetFilterFromInstance) makes
// FltUnregisterFilter wait forever: the kernel reports the hang.
func TestLeakedReferenceHangsUnregister(t *testing.T) {
	for _, viaInstance := range []bool{false, true} {
		r := newRig(t, rigOpts{})
		f := unloadableFilter(r, "leaky", nil)
		r.thread("driver", func() {
			r.fm.FltStartFiltering(f)
			if viaInstance {
				_, st := r.fm.FltGetFilterFromInstance(f.Instances()[0])
				require.Equal(t, kernel.STATUS_SUCCESS, st)
			} else {
				require.Equal(t, kernel.STATUS_SUCCESS, r.fm.FltObjectReference(f))
			}
			r.fm.FltUnloadFilter(f)
		})
		var d *kernel.Deadlock
		require.ErrorAs(t, r.run().Err, &d)
		assert.Contains(t, d.Error(), "driver waits for event flt filter leaky rundown")
	}
}

// The matching dereference lets it finish.
func TestReferenceDereferenceUnregisters(t *testing.T) {
	r := newRig(t, rigOpts{})
	f := unloadableFilter(r, "tidy", nil)
	r.thread("driver", func() {
		r.fm.FltStartFiltering(f)
		g, st := r.fm.FltGetFilterFromInstance(f.Instances()[0])
		require.Equal(t, kernel.STATUS_SUCCESS, st)
		r.fm.FltObjectDereference(g)
		r.fm.FltUnloadFilter(f)
	})
	require.NoError(t, r.run().Err)
	assert.True(t, f.Unregistered())
}

// §1.3: HyperCriticalWorkQueue is reserved for the system: a contract
// violation (the pool's ContractChecks).
func TestFltWorkItemReservedQueue(t *testing.T) {
	r := newRig(t, rigOpts{})
	f := unloadableFilter(r, "f", nil)
	r.thread("driver", func() {
		r.fm.FltStartFiltering(f)
		item := r.fm.FltAllocateGenericWorkItem()
		r.fm.FltQueueGenericWorkItem(item, f, func(*fltmgr.FLT_GENERIC_WORKITEM, fltmgr.FltObject, any) {}, queues.HyperCriticalWorkQueue, nil)
	})
	var cv *queues.ContractViolation
	require.ErrorAs(t, r.run().Err, &cv)
	assert.Contains(t, cv.Error(), "HyperCriticalWorkQueue")
}

// §1.3, §6.20: a Flt work item never freed is a leak at the end of the run:
// its pool block (tag FMwi), named as the item with the routine that
// allocated it, the thread that called it, the one that frees it and,
// once it was queued, the filter it serves (here a generic item whose
// queueing the unloading filter refused: the caller keeps it).
func TestFltWorkItemLeak(t *testing.T) {
	r := newRig(t, rigOpts{})
	r.thread("driver", func() { r.fm.FltAllocateDeferredIoWorkItem() })
	var l *kernel.Leak
	require.ErrorAs(t, r.run().Err, &l)
	assert.Contains(t, l.Error(), `tag "FMwi" (64 bytes) never freed: FLT_DEFERRED_IO_WORKITEM flt work item 1 allocated by FltAllocateDeferredIoWorkItem in driver, without FltFreeDeferredIoWorkItem`)

	r = newRig(t, rigOpts{})
	f := unloadableFilter(r, "f", nil)
	r.thread("driver", func() {
		r.fm.FltStartFiltering(f)
		item := r.fm.FltAllocateGenericWorkItem()
		r.fm.FltUnregisterFilter(f)
		st := r.fm.FltQueueGenericWorkItem(item, f, func(*fltmgr.FLT_GENERIC_WORKITEM, fltmgr.FltObject, any) {}, queues.DelayedWorkQueue, nil)
		assert.Equal(t, kernel.STATUS_FLT_DELETING_OBJECT, st)
	})
	require.ErrorAs(t, r.run().Err, &l)
	assert.Contains(t, l.Error(), `never freed: FLT_GENERIC_WORKITEM flt work item 1 allocated by FltAllocateGenericWorkItem in driver for filter f, without FltFreeGenericWorkItem`)
}

// §1.3 (inferred: Flt items wrap executive items), §6.6, §6.7: queueing a
// Flt work item that is still queued is the executive's WORKER_INVALID
// 0xE4 P1=1; freeing one that is still queued is 0xE4 P1=0 when a worker
// removes it.
func TestFltWorkItemMisuse(t *testing.T) {
	for _, tc := range []struct {
		name string
		p1   uint64
	}{{"queued twice", 1}, {"freed while queued", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := kernel.DefaultConfig()
			cfg.Processors = 1
			r := newRig(t, rigOpts{kcfg: &cfg})
			f := unloadableFilter(r, "f", nil)
			r.k.PsCreateSystemThread("driver", 13, func() { // at the workers' priority, so none runs in between
				r.fm.FltStartFiltering(f)
				item := r.fm.FltAllocateGenericWorkItem()
				routine := func(*fltmgr.FLT_GENERIC_WORKITEM, fltmgr.FltObject, any) {}
				r.fm.FltQueueGenericWorkItem(item, f, routine, queues.DelayedWorkQueue, nil)
				if tc.p1 == 1 {
					r.fm.FltQueueGenericWorkItem(item, f, routine, queues.DelayedWorkQueue, nil)
				} else {
					r.fm.FltFreeGenericWorkItem(item)
				}
			})
			requireBugCheck(t, r.run(), kernel.WORKER_INVALID, tc.p1)
		})
	}
}
