package fltmgr_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues"
	"github.com/wqsim/wqsim/queues/fltmgr"
)

// ctxRig starts one filter on C: and runs body in a thread with its
// instance.
func ctxRig(t *testing.T, o rigOpts, body func(r *rig, f *fltmgr.FLT_FILTER, inst *fltmgr.FLT_INSTANCE)) (*rig, error) {
	r := newRig(t, o)
	s := newSimpleFilter(r, "ctx", 100, false, func(*fltmgr.FLT_CALLBACK_DATA, *any) fltmgr.FLT_PREOP_CALLBACK_STATUS {
		return fltmgr.FLT_PREOP_SUCCESS_NO_CALLBACK
	})
	r.thread("app", func() {
		r.fm.FltStartFiltering(s.f)
		body(r, s.f, r.vol.Instances()[0])
	})
	return r, r.run().Err
}

// REFERENCE §5.8: set with KEEP_IF_EXISTS / REPLACE_IF_EXISTS, get,
// release, and the cleanup callback once the last reference is gone.
func TestStreamContextLifecycle(t *testing.T) {
	var cleaned []string
	_, err := ctxRig(t, rigOpts{}, func(r *rig, f *fltmgr.FLT_FILTER, inst *fltmgr.FLT_INSTANCE) {
		cleanup := func(c *fltmgr.FLT_CONTEXT, _ fltmgr.FLT_CONTEXT_TYPE) { cleaned = append(cleaned, c.Data.(string)) }
		a, st := r.fm.FltAllocateContext(f, fltmgr.FLT_STREAM_CONTEXT, cleanup)
		require.Equal(t, kernel.STATUS_SUCCESS, st)
		a.Data = "a"
		require.Equal(t, kernel.STATUS_SUCCESS, r.fm.FltSetStreamContext(inst, "file1", fltmgr.FLT_SET_CONTEXT_KEEP_IF_EXISTS, a, nil))
		assert.Equal(t, 2, a.References(), "caller + attachment")

		b, _ := r.fm.FltAllocateContext(f, fltmgr.FLT_STREAM_CONTEXT, cleanup)
		b.Data = "b"
		var old *fltmgr.FLT_CONTEXT
		assert.Equal(t, fltmgr.STATUS_FLT_CONTEXT_ALREADY_DEFINED, r.fm.FltSetStreamContext(inst, "file1", fltmgr.FLT_SET_CONTEXT_KEEP_IF_EXISTS, b, &old))
		assert.Same(t, a, old)
		assert.Equal(t, 3, a.References(), "the existing context comes back referenced")
		r.fm.FltReleaseContext(old)

		got, st := r.fm.FltGetStreamContext(inst, "file1")
		require.Equal(t, kernel.STATUS_SUCCESS, st)
		assert.Same(t, a, got)
		r.fm.FltReleaseContext(got)

		require.Equal(t, kernel.STATUS_SUCCESS, r.fm.FltSetStreamContext(inst, "file1", fltmgr.FLT_SET_CONTEXT_REPLACE_IF_EXISTS, b, nil))
		r.fm.FltReleaseContext(a) // the allocation reference: a is now free
		assert.True(t, a.Freed())
		assert.Equal(t, []string{"a"}, cleaned)

		_, st = r.fm.FltGetStreamContext(inst, "file2")
		assert.Equal(t, fltmgr.STATUS_NOT_FOUND, st)
		r.fm.FltReleaseContext(b)
		r.fm.FltDeleteContext(b)
		assert.Equal(t, []string{"a", "b"}, cleaned)
	})
	require.NoError(t, err)
}

// REFERENCE §5.8: releasing a context too many times (to zero while it is
// attached) is 0xF5 P1=0x6D; touching one after it was freed is 0xF5
// P1=0x6E — here after instance teardown dropped the attachment.
func TestContextOverReleaseAndUseAfterFree(t *testing.T) {
	_, err := ctxRig(t, rigOpts{}, func(r *rig, f *fltmgr.FLT_FILTER, inst *fltmgr.FLT_INSTANCE) {
		c, _ := r.fm.FltAllocateContext(f, fltmgr.FLT_STREAM_CONTEXT, nil)
		r.fm.FltSetStreamContext(inst, "file1", fltmgr.FLT_SET_CONTEXT_KEEP_IF_EXISTS, c, nil)
		r.fm.FltReleaseContext(c)
		r.fm.FltReleaseContext(c) // one too many
	})
	var bc *kernel.BugCheck
	require.ErrorAs(t, err, &bc)
	assert.Equal(t, kernel.FLTMGR_FILE_SYSTEM, bc.Code)
	assert.Equal(t, uint64(0x6D), bc.Params[0])

	_, err = ctxRig(t, rigOpts{}, func(r *rig, f *fltmgr.FLT_FILTER, inst *fltmgr.FLT_INSTANCE) {
		c, _ := r.fm.FltAllocateContext(f, fltmgr.FLT_STREAM_CONTEXT, nil)
		r.fm.FltSetStreamContext(inst, "file1", fltmgr.FLT_SET_CONTEXT_KEEP_IF_EXISTS, c, nil)
		r.fm.FltReleaseContext(c) // the attachment keeps it
		require.Equal(t, kernel.STATUS_SUCCESS, r.fm.FltUnloadFilter(f))
		assert.True(t, c.Freed(), "teardown dropped the attachment's reference")
		r.fm.FltReferenceContext(c) // a stale pointer kept by the filter
	})
	require.ErrorAs(t, err, &bc)
	assert.Equal(t, uint64(0x6E), bc.Params[0])
}

// REFERENCE §5.8: a name query from a post-op that runs at DISPATCH_LEVEL
// (the file system completing from its DPC) is IRQL_NOT_LESS_OR_EQUAL.
func TestNameQueryAtDispatchInPostOp(t *testing.T) {
	r := newRig(t, rigOpts{chooser: fsChooser(queues.CompleteFromDpc)})
	var seen []postSeen
	f := observingFilter(r, &seen, func(d *fltmgr.FLT_CALLBACK_DATA, _ *fltmgr.FLT_RELATED_OBJECTS, _ any, _ fltmgr.FLT_POST_OPERATION_FLAGS) fltmgr.FLT_POSTOP_CALLBACK_STATUS {
		r.fm.FltGetFileNameInformation(d)
		return fltmgr.FLT_POSTOP_FINISHED_PROCESSING
	})
	r.thread("app", func() {
		r.fm.FltStartFiltering(f)
		r.vol.Issue(read(512)).Wait()
	})
	requireBugCheck(t, r.run(), kernel.IRQL_NOT_LESS_OR_EQUAL, 0)
}

// REFERENCE §5.8: one instance context per instance — KEEP_IF_EXISTS
// answers STATUS_FLT_CONTEXT_ALREADY_DEFINED with the existing one
// referenced, REPLACE_IF_EXISTS replaces it; a context already attached
// elsewhere is STATUS_FLT_CONTEXT_ALREADY_LINKED and one of another type
// STATUS_INVALID_PARAMETER; teardown deletes the instance context, whose
// cleanup runs once the filter's last reference is released.
func TestInstanceContextLifecycle(t *testing.T) {
	var cleaned []string
	_, err := ctxRig(t, rigOpts{}, func(r *rig, f *fltmgr.FLT_FILTER, inst *fltmgr.FLT_INSTANCE) {
		cleanup := func(c *fltmgr.FLT_CONTEXT, typ fltmgr.FLT_CONTEXT_TYPE) {
			assert.Equal(t, fltmgr.FLT_INSTANCE_CONTEXT, typ)
			cleaned = append(cleaned, c.Data.(string))
		}
		_, st := r.fm.FltGetInstanceContext(inst)
		assert.Equal(t, fltmgr.STATUS_NOT_FOUND, st)
		a, _ := r.fm.FltAllocateContext(f, fltmgr.FLT_INSTANCE_CONTEXT, cleanup)
		a.Data = "a"
		require.Equal(t, kernel.STATUS_SUCCESS, r.fm.FltSetInstanceContext(inst, fltmgr.FLT_SET_CONTEXT_KEEP_IF_EXISTS, a, nil))
		r.fm.FltReleaseContext(a) // the allocation reference: the attachment keeps a
		assert.Equal(t, 1, a.References())

		b, _ := r.fm.FltAllocateContext(f, fltmgr.FLT_INSTANCE_CONTEXT, cleanup)
		b.Data = "b"
		var old *fltmgr.FLT_CONTEXT
		assert.Equal(t, fltmgr.STATUS_FLT_CONTEXT_ALREADY_DEFINED, r.fm.FltSetInstanceContext(inst, fltmgr.FLT_SET_CONTEXT_KEEP_IF_EXISTS, b, &old))
		assert.Same(t, a, old)
		r.fm.FltReleaseContext(old)
		s, _ := r.fm.FltAllocateContext(f, fltmgr.FLT_STREAM_CONTEXT, nil)
		require.Equal(t, kernel.STATUS_SUCCESS, r.fm.FltSetStreamContext(inst, "f", fltmgr.FLT_SET_CONTEXT_KEEP_IF_EXISTS, s, nil))
		assert.Equal(t, fltmgr.STATUS_FLT_CONTEXT_ALREADY_LINKED, r.fm.FltSetStreamContext(inst, "g", fltmgr.FLT_SET_CONTEXT_KEEP_IF_EXISTS, s, nil),
			"s is attached to f's stream already")
		r.fm.FltReleaseContext(s)
		assert.Equal(t, kernel.STATUS_INVALID_PARAMETER, r.fm.FltSetStreamContext(inst, "f", fltmgr.FLT_SET_CONTEXT_KEEP_IF_EXISTS, b, nil),
			"b is an instance context")

		require.Equal(t, kernel.STATUS_SUCCESS, r.fm.FltSetInstanceContext(inst, fltmgr.FLT_SET_CONTEXT_REPLACE_IF_EXISTS, b, &old))
		assert.Same(t, a, old, "the replaced context comes back with the attachment's reference")
		r.fm.FltReleaseContext(old)
		assert.True(t, a.Freed())
		r.fm.FltReleaseContext(b) // allocation reference

		got, st := r.fm.FltGetInstanceContext(inst)
		require.Equal(t, kernel.STATUS_SUCCESS, st)
		assert.Same(t, b, got)
		require.Equal(t, kernel.STATUS_SUCCESS, r.fm.FltUnloadFilter(f))
		assert.False(t, b.Freed(), "the filter still holds a reference after teardown deleted it")
		_, st = r.fm.FltGetInstanceContext(inst)
		assert.Equal(t, fltmgr.STATUS_NOT_FOUND, st, "deleted with the instance")
		r.fm.FltReleaseContext(got)
		assert.True(t, b.Freed())
	})
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b"}, cleaned)
}

// REFERENCE §5.8: file contexts are per instance and file object like
// stream contexts; a volume context is per filter and volume, deleted
// when the filter unregisters (or the volume is dismounted) and refused
// once it is going.
func TestFileAndVolumeContexts(t *testing.T) {
	var freed []fltmgr.FLT_CONTEXT_TYPE
	cleanup := func(_ *fltmgr.FLT_CONTEXT, typ fltmgr.FLT_CONTEXT_TYPE) { freed = append(freed, typ) }
	_, err := ctxRig(t, rigOpts{}, func(r *rig, f *fltmgr.FLT_FILTER, inst *fltmgr.FLT_INSTANCE) {
		fc, _ := r.fm.FltAllocateContext(f, fltmgr.FLT_FILE_CONTEXT, cleanup)
		require.Equal(t, kernel.STATUS_SUCCESS, r.fm.FltSetFileContext(inst, "f1", fltmgr.FLT_SET_CONTEXT_KEEP_IF_EXISTS, fc, nil))
		r.fm.FltReleaseContext(fc)
		got, st := r.fm.FltGetFileContext(inst, "f1")
		require.Equal(t, kernel.STATUS_SUCCESS, st)
		r.fm.FltReleaseContext(got)
		_, st = r.fm.FltGetFileContext(inst, "f2")
		assert.Equal(t, fltmgr.STATUS_NOT_FOUND, st)
		_, st = r.fm.FltGetStreamContext(inst, "f1")
		assert.Equal(t, fltmgr.STATUS_NOT_FOUND, st, "a file context is not a stream context")

		vc, _ := r.fm.FltAllocateContext(f, fltmgr.FLT_VOLUME_CONTEXT, cleanup)
		require.Equal(t, kernel.STATUS_SUCCESS, r.fm.FltSetVolumeContext(r.vol, fltmgr.FLT_SET_CONTEXT_KEEP_IF_EXISTS, vc, nil))
		r.fm.FltReleaseContext(vc)
		got, st = r.fm.FltGetVolumeContext(f, r.vol)
		require.Equal(t, kernel.STATUS_SUCCESS, st)
		assert.Same(t, vc, got)
		r.fm.FltReleaseContext(got)

		require.Equal(t, kernel.STATUS_SUCCESS, r.fm.FltUnloadFilter(f))
		assert.True(t, fc.Freed(), "file context deleted at instance teardown")
		assert.True(t, vc.Freed(), "volume context deleted at unregistration")
		late, _ := r.fm.FltAllocateContext(f, fltmgr.FLT_VOLUME_CONTEXT, nil)
		assert.Equal(t, kernel.STATUS_FLT_DELETING_OBJECT, r.fm.FltSetVolumeContext(r.vol, fltmgr.FLT_SET_CONTEXT_KEEP_IF_EXISTS, late, nil))
		r.fm.FltReleaseContext(late)
	})
	require.NoError(t, err)
	assert.Equal(t, []fltmgr.FLT_CONTEXT_TYPE{fltmgr.FLT_FILE_CONTEXT, fltmgr.FLT_VOLUME_CONTEXT}, freed)
}

// REFERENCE §5.8: a filter that keeps an instance context's pointer
// without a reference and uses it after instance teardown deleted (and so
// freed) it: 0xF5 P1=0x6E, P2 the context.
func TestInstanceContextUsedAfterTeardown(t *testing.T) {
	var id uint64
	_, err := ctxRig(t, rigOpts{}, func(r *rig, f *fltmgr.FLT_FILTER, inst *fltmgr.FLT_INSTANCE) {
		c, _ := r.fm.FltAllocateContext(f, fltmgr.FLT_INSTANCE_CONTEXT, nil)
		r.fm.FltSetInstanceContext(inst, fltmgr.FLT_SET_CONTEXT_KEEP_IF_EXISTS, c, nil)
		r.fm.FltReleaseContext(c) // the cached pointer has no reference of its own
		require.Equal(t, kernel.STATUS_SUCCESS, r.fm.FltUnloadFilter(f))
		id = uint64(c.References())
		r.fm.FltReferenceContext(c)
	})
	var bc *kernel.BugCheck
	require.ErrorAs(t, err, &bc)
	assert.Equal(t, kernel.FLTMGR_FILE_SYSTEM, bc.Code)
	assert.Equal(t, uint64(0x6E), bc.Params[0])
	assert.Equal(t, uint64(0), id)
}

// REFERENCE §5.8: a context lives in pool; a work routine that touches the
// content of a stream context teardown has freed (it kept the pointer
// without a reference of its own) is a use after free, reported by the
// access with the context and who freed it — before, reading c.Data went
// unnoticed.
func TestStreamContextContentTouchedAfterTeardown(t *testing.T) {
	_, err := ctxRig(t, rigOpts{}, func(r *rig, f *fltmgr.FLT_FILTER, inst *fltmgr.FLT_INSTANCE) {
		c, st := r.fm.FltAllocateContext(f, fltmgr.FLT_STREAM_CONTEXT, nil)
		require.Equal(t, kernel.STATUS_SUCCESS, st)
		require.NotNil(t, c.Block())
		r.fm.FltSetStreamContext(inst, "file1", fltmgr.FLT_SET_CONTEXT_KEEP_IF_EXISTS, c, nil)
		r.k.AccessPool(c.Block(), "pre-op reading its stream context")   // referenced: fine
		r.fm.FltReleaseContext(c)                                        // borrowed from here on
		require.Equal(t, kernel.STATUS_SUCCESS, r.fm.FltUnloadFilter(f)) // teardown deletes it
		assert.True(t, c.Freed())
		r.k.AccessPool(c.Block(), "scan routine recording its verdict")
	})
	var bc *kernel.BugCheck
	require.ErrorAs(t, err, &bc)
	assert.Equal(t, kernel.DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL, bc.Code)
	assert.Contains(t, bc.Detail, "scan routine recording its verdict touched pool block")
	assert.Contains(t, bc.Detail, "(stream context 1) after it was freed by app at t=")
}

// REFERENCE §5.8: Filter Verifier stops the unload of a filter that leaked
// a context reference; the model reports the context as a leak at the end
// of the run, naming it, the thread that allocated it and the filter
// (Windows-driver-samples issue #1360: an error path that skips
// FltReleaseContext). A context attached for a filter that is still loaded
// is not a leak.
func TestLeakedContextReferenceReportedAfterUnload(t *testing.T) {
	for _, unload := range []bool{true, false} {
		_, err := ctxRig(t, rigOpts{}, func(r *rig, f *fltmgr.FLT_FILTER, inst *fltmgr.FLT_INSTANCE) {
			c, _ := r.fm.FltAllocateContext(f, fltmgr.FLT_STREAM_CONTEXT, nil)
			r.fm.FltSetStreamContext(inst, "file1", fltmgr.FLT_SET_CONTEXT_KEEP_IF_EXISTS, c, nil)
			r.fm.FltReleaseContext(c)
			got, st := r.fm.FltGetStreamContext(inst, "file1")
			require.Equal(t, kernel.STATUS_SUCCESS, st)
			_ = got // the error path forgets FltReleaseContext(got)
			if unload {
				require.Equal(t, kernel.STATUS_SUCCESS, r.fm.FltUnloadFilter(f))
			}
		})
		if !unload {
			assert.NoError(t, err, "the filter is still loaded: its attached context is alive, not leaked")
			continue
		}
		var leak *kernel.Leak
		require.ErrorAs(t, err, &leak)
		require.Len(t, leak.Items, 1)
		assert.Contains(t, leak.Items[0], `tag "FMct"`)
		assert.Contains(t, leak.Items[0], "FLT_CONTEXT stream context 1 allocated by FltAllocateContext in app for filter ctx, without its last FltReleaseContext")
	}
}

// REFERENCE §5.8: the last release at DISPATCH_LEVEL (a post-op completing
// in a DPC, a spin-lock holder) does not free the context there: the filter
// manager frees it from a work item, so the cleanup callback runs at
// PASSIVE_LEVEL as documented (≤ APC_LEVEL) and may free the paged buffers
// the context owns. Before, the model ran the cleanup inside the release at
// DISPATCH_LEVEL, and a correct filter's paged free was reported as 0xC4.
func TestLastReleaseAtDispatchDefersCleanup(t *testing.T) {
	var cleanupIrql kernel.IRQL = 99
	var cleanupBy string
	var c *fltmgr.FLT_CONTEXT
	_, err := ctxRig(t, rigOpts{}, func(r *rig, f *fltmgr.FLT_FILTER, inst *fltmgr.FLT_INSTANCE) {
		name := r.k.ExAllocatePoolWithTag(kernel.PagedPool, 64, "Name")
		c, _ = r.fm.FltAllocateContext(f, fltmgr.FLT_STREAM_CONTEXT, func(*fltmgr.FLT_CONTEXT, fltmgr.FLT_CONTEXT_TYPE) {
			cleanupIrql, cleanupBy = r.k.KeGetCurrentIrql(), r.threadName()
			r.k.ExFreePoolWithTag(name, "Name") // paged: needs ≤ APC_LEVEL
		})
		r.fm.FltSetStreamContext(inst, "file1", fltmgr.FLT_SET_CONTEXT_KEEP_IF_EXISTS, c, nil)
		r.fm.FltDeleteContext(c) // detached: ours is the last reference
		old := r.k.KeRaiseIrql(kernel.DISPATCH_LEVEL)
		r.fm.FltReleaseContext(c)
		assert.False(t, c.Freed(), "freed later, by a worker")
		r.k.KeLowerIrql(old)
	})
	require.NoError(t, err)
	assert.True(t, c.Freed())
	assert.Equal(t, kernel.PASSIVE_LEVEL, cleanupIrql)
	assert.Contains(t, cleanupBy, "worker")
}

// REFERENCE §5.8: a context whose last reference went at DISPATCH_LEVEL is
// not freed yet, but a further release is still one too many (0x6D).
func TestReleaseAfterDeferredLastReleaseIs0x6D(t *testing.T) {
	_, err := ctxRig(t, rigOpts{}, func(r *rig, f *fltmgr.FLT_FILTER, inst *fltmgr.FLT_INSTANCE) {
		c, _ := r.fm.FltAllocateContext(f, fltmgr.FLT_STREAM_CONTEXT, nil)
		old := r.k.KeRaiseIrql(kernel.DISPATCH_LEVEL)
		r.fm.FltReleaseContext(c)
		r.fm.FltReleaseContext(c)
		r.k.KeLowerIrql(old)
	})
	var bc *kernel.BugCheck
	require.ErrorAs(t, err, &bc)
	assert.Equal(t, kernel.FLTMGR_FILE_SYSTEM, bc.Code)
	assert.Equal(t, uint64(0x6D), bc.Params[0])
}

// REFERENCE §4.15, §5.8: a filter that releases the context a failed
// FltGetStreamContext left NULL (an error path's cleanup) crashes in
// FltReleaseContext's dereference: 0x7E in a thread, 0xA at DISPATCH_LEVEL,
// naming the routine and the parameter. It was a Go nil-pointer panic
// ("panic in simulated code: runtime error") that named neither.
func TestNullContextReleaseIsABugCheck(t *testing.T) {
	for _, dispatch := range []bool{false, true} {
		_, err := ctxRig(t, rigOpts{}, func(r *rig, f *fltmgr.FLT_FILTER, inst *fltmgr.FLT_INSTANCE) {
			c, st := r.fm.FltGetStreamContext(inst, "never-set")
			require.Equal(t, fltmgr.STATUS_NOT_FOUND, st)
			if dispatch {
				r.k.KeRaiseIrql(kernel.DISPATCH_LEVEL)
			}
			r.fm.FltReleaseContext(c)
		})
		var bc *kernel.BugCheck
		require.ErrorAs(t, err, &bc)
		want := kernel.SYSTEM_THREAD_EXCEPTION_NOT_HANDLED
		if dispatch {
			want = kernel.IRQL_NOT_LESS_OR_EQUAL
		}
		assert.Equal(t, want, bc.Code)
		assert.Equal(t, "FltReleaseContext", bc.API)
		assert.Contains(t, bc.Detail, "FltReleaseContext called with a NULL Context")
	}
}

// REFERENCE §4.15: the filter manager's routines that take a work item or
// callback data dereference it; NULL is the bug check of that touch, not a
// Go panic.
func TestNullWorkItemOrCallbackDataIsABugCheck(t *testing.T) {
	calls := []struct {
		api  string
		call func(r *rig)
	}{
		{"FltFreeGenericWorkItem", func(r *rig) { r.fm.FltFreeGenericWorkItem(nil) }},
		{"FltFreeDeferredIoWorkItem", func(r *rig) { r.fm.FltFreeDeferredIoWorkItem(nil) }},
		{"FltCompletePendedPreOperation", func(r *rig) { r.fm.FltCompletePendedPreOperation(nil, fltmgr.FLT_PREOP_COMPLETE, nil) }},
		{"FltCompletePendedPostOperation", func(r *rig) { r.fm.FltCompletePendedPostOperation(nil) }},
		{"FltCancelIo", func(r *rig) { r.fm.FltCancelIo(nil) }},
		{"FltFreeCallbackData", func(r *rig) { r.fm.FltFreeCallbackData(nil) }},
		{"FltReferenceContext", func(r *rig) { r.fm.FltReferenceContext(nil) }},
		{"FltDeleteContext", func(r *rig) { r.fm.FltDeleteContext(nil) }},
	}
	for _, c := range calls {
		api := c.api
		_, err := ctxRig(t, rigOpts{}, func(r *rig, _ *fltmgr.FLT_FILTER, _ *fltmgr.FLT_INSTANCE) { c.call(r) })
		var bc *kernel.BugCheck
		require.ErrorAs(t, err, &bc, api)
		assert.Equal(t, kernel.SYSTEM_THREAD_EXCEPTION_NOT_HANDLED, bc.Code, api)
		assert.Equal(t, api, bc.API)
	}
}
