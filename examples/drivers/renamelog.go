package drivers

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/queues/fltmgr"
)

// renamelog: a minifilter keeps a per-stream rename journal in a stream
// context (found or created by the pre-set-information, KEEP_IF_EXISTS) and
// records each completed rename in it. Recording needs PASSIVE_LEVEL or
// APC_LEVEL — the journal is guarded by an ERESOURCE and the new name comes
// from FltGetFileNameInformation — while the post-op may run at
// DISPATCH_LEVEL in the file system's completion, so the post-op hands the
// work to FltDoCompletionProcessingWhenSafe (REFERENCE §5.7) and returns the
// status it stores. The pre-op passes its stream-context reference to the
// post-op as the completion context; whoever finishes the operation's
// processing releases it. The filter unloads while renames are in flight:
// teardown drains the operations still waiting below for the post-op
// (FLTFL_POST_OPERATION_DRAINING), and such a post-op may only clean up
// (§5.4).
//
// The bugs: reading FltDoCompletionProcessingWhenSafe's TRUE as "the work is
// done" and returning FLT_POSTOP_FINISHED_PROCESSING, which completes an
// operation the filter manager posted a second time (0x44) when the post-op
// ran at DISPATCH_LEVEL; calling it from a draining post-op (a Filter
// Verifier report); and a draining post-op that returns without releasing
// the completion context (a context leaked at unload).

var (
	markRenamePosted   = model.NewMark("renamelog: the journal update was posted to a worker")
	markRenameDrained  = model.NewMark("renamelog: a rename's post-op was drained at teardown")
	markRenameTrueDone = model.NewMark("renamelog: post-op returned FINISHED_PROCESSING because FltDoCompletionProcessingWhenSafe returned TRUE")
)

// RenameLog is the scenario.
var RenameLog = &model.Scenario{
	Name: "renamelog",
	Doc: "A minifilter journals renames in a stream context from its post-set-information, through " +
		"FltDoCompletionProcessingWhenSafe (the journal needs an ERESOURCE and a name query); it unloads while " +
		"renames are in flight. The bugs take TRUE for 'done' and return FINISHED_PROCESSING after the work was " +
		"posted (0x44), post from a draining post-op (Filter Verifier), or drop the draining post-op's context " +
		"reference on the floor (a leaked context).",
	Section: "REFERENCE §5.4, §5.5, §5.7, §5.8",
	Variants: []model.Variant{
		{Name: "correct", Doc: "the post-op returns the status FltDoCompletionProcessingWhenSafe stored; a draining post-op only releases the context"},
		{Name: "true-means-done", Bug: true, Doc: "the post-op returns FLT_POSTOP_FINISHED_PROCESSING whenever FltDoCompletionProcessingWhenSafe returns TRUE",
			Marks: []*model.Mark{markRenameTrueDone}, Want: "0x44"},
		{Name: "no-draining-check", Bug: true, Doc: "the post-op never looks at FLTFL_POST_OPERATION_DRAINING and calls FltDoCompletionProcessingWhenSafe from a draining post-op",
			Marks: []*model.Mark{markRenameDrained}, Want: "Verifier"},
		{Name: "draining-leak", Bug: true, Doc: "a draining post-op returns FLT_POSTOP_FINISHED_PROCESSING without releasing the stream context its pre-op passed it",
			Marks: []*model.Mark{markRenameDrained}, Want: "leak"},
	},
	Setup: setupRenameLog,
}

const (
	rlRenamers = 2
	rlRenames  = 2
)

// rlJournal is a stream context's content.
type rlJournal struct {
	lock    *kernel.ERESOURCE
	file    string
	renames int
}

type renameLog struct {
	env *model.Env
	k   *kernel.Kernel
	mf  *model.Minifilter

	withCallback int // operations whose pre-op passed a context to the post-op
	journaled    int
	drained      int
	failed       int
}

func setupRenameLog(env *model.Env) error {
	mf, err := model.NewMinifilter(env)
	if err != nil {
		return err
	}
	f := &renameLog{env: env, k: env.K, mf: mf}
	err = mf.Register("renamelog", 385000, &fltmgr.FLT_REGISTRATION{
		OperationRegistration: []fltmgr.FLT_OPERATION_REGISTRATION{{
			MajorFunction: fltmgr.IRP_MJ_SET_INFORMATION,
			PreOperation:  f.preSetInfo,
			PostOperation: f.postSetInfo,
		}},
	})
	if err != nil {
		return err
	}
	k := env.K
	k.PsCreateSystemThread("app", 8, func() {
		mf.StartFiltering()
		var renamers []*kernel.Thread
		for i := range rlRenamers {
			file := fmt.Sprintf("file%d.txt", i)
			renamers = append(renamers, k.PsCreateSystemThread(fmt.Sprintf("renamer%d", i), 8, func() {
				for range rlRenames {
					mf.Volume.Send(fltmgr.IoRequest{MajorFunction: fltmgr.IRP_MJ_SET_INFORMATION, FileObject: file, Tag: "rename " + file})
					k.KeDelayExecutionThread(des.Duration(1+env.Choose("rename gap", 3)*20) * des.Microsecond)
				}
			}))
		}
		// The service is stopped once the renames are done, or (a decision)
		// while they may still be in flight.
		if at := env.Choose("unload at", 4); at > 0 {
			k.KeDelayExecutionThread(des.Duration(at*70-10) * des.Microsecond)
		} else {
			for _, r := range renamers {
				k.KeWaitForSingleObject(r.Object(), kernel.Infinite)
			}
		}
		mf.Unload()
		env.BeginDrain()
		for _, r := range renamers {
			k.KeWaitForSingleObject(r.Object(), kernel.Infinite)
		}
	})
	env.AtEnd("every rename the filter saw is journaled, drained or failed once", func() error {
		if got := f.journaled + f.drained + f.failed; got != f.withCallback {
			return fmt.Errorf("%d journaled + %d drained + %d failed of %d renames passed to the post-op",
				f.journaled, f.drained, f.failed, f.withCallback)
		}
		return nil
	})
	return nil
}

// streamJournal finds or creates the stream's journal context and returns it
// with a reference for the caller, or nil (the instance is going away, or
// out of memory).
func (f *renameLog) streamJournal(objs *fltmgr.FLT_RELATED_OBJECTS) *fltmgr.FLT_CONTEXT {
	fm := f.mf.FM
	if c, st := fm.FltGetStreamContext(objs.Instance, objs.FileObject); st == kernel.STATUS_SUCCESS {
		return c
	}
	c, st := fm.FltAllocateContext(objs.Filter, fltmgr.FLT_STREAM_CONTEXT, f.cleanupJournal)
	if st != kernel.STATUS_SUCCESS {
		return nil
	}
	c.Data = &rlJournal{lock: f.k.ExInitializeResourceLite("journal lock"), file: fmt.Sprint(objs.FileObject)}
	var old *fltmgr.FLT_CONTEXT
	st = fm.FltSetStreamContext(objs.Instance, objs.FileObject, fltmgr.FLT_SET_CONTEXT_KEEP_IF_EXISTS, c, &old)
	switch st {
	case kernel.STATUS_SUCCESS:
		return c
	case fltmgr.STATUS_FLT_CONTEXT_ALREADY_DEFINED:
		fm.FltReleaseContext(c) // ours was never attached: this frees it
		return old
	default: // STATUS_FLT_DELETING_OBJECT: the instance is being torn down
		fm.FltReleaseContext(c)
		return nil
	}
}

func (f *renameLog) cleanupJournal(c *fltmgr.FLT_CONTEXT, _ fltmgr.FLT_CONTEXT_TYPE) {
	f.k.ExDeleteResourceLite(c.Data.(*rlJournal).lock)
}

func (f *renameLog) preSetInfo(_ *fltmgr.FLT_CALLBACK_DATA, objs *fltmgr.FLT_RELATED_OBJECTS, cc *any) fltmgr.FLT_PREOP_CALLBACK_STATUS {
	c := f.streamJournal(objs)
	if c == nil {
		return fltmgr.FLT_PREOP_SUCCESS_NO_CALLBACK
	}
	f.withCallback++
	*cc = c // the post-op (or its safe callback) releases this reference
	return fltmgr.FLT_PREOP_SUCCESS_WITH_CALLBACK
}

func (f *renameLog) postSetInfo(data *fltmgr.FLT_CALLBACK_DATA, objs *fltmgr.FLT_RELATED_OBJECTS, cc any, flags fltmgr.FLT_POST_OPERATION_FLAGS) fltmgr.FLT_POSTOP_CALLBACK_STATUS {
	fm, env := f.mf.FM, f.env
	c := cc.(*fltmgr.FLT_CONTEXT)
	if flags&fltmgr.FLTFL_POST_OPERATION_DRAINING != 0 {
		env.Hit(markRenameDrained)
		if !env.Is("no-draining-check") {
			f.drained++
			if !env.Is("draining-leak") {
				fm.FltReleaseContext(c)
			}
			return fltmgr.FLT_POSTOP_FINISHED_PROCESSING
		}
	}
	if !kernel.NT_SUCCESS(data.IoStatus.Status) {
		f.failed++
		fm.FltReleaseContext(c)
		return fltmgr.FLT_POSTOP_FINISHED_PROCESSING
	}
	var ret fltmgr.FLT_POSTOP_CALLBACK_STATUS
	if !fm.FltDoCompletionProcessingWhenSafe(data, objs, c, flags, f.safePostSetInfo, &ret) {
		// Not IRP-based: it could not be posted. Nothing to journal from here.
		f.failed++
		fm.FltReleaseContext(c)
		return fltmgr.FLT_POSTOP_FINISHED_PROCESSING
	}
	if ret == fltmgr.FLT_POSTOP_MORE_PROCESSING_REQUIRED {
		env.Hit(markRenamePosted)
	}
	if env.Is("true-means-done") {
		if ret == fltmgr.FLT_POSTOP_MORE_PROCESSING_REQUIRED {
			env.Hit(markRenameTrueDone)
		}
		return fltmgr.FLT_POSTOP_FINISHED_PROCESSING
	}
	return ret
}

// safePostSetInfo runs at ≤ APC_LEVEL: in the post-op itself when that ran
// below DISPATCH_LEVEL, or in a system worker.
func (f *renameLog) safePostSetInfo(data *fltmgr.FLT_CALLBACK_DATA, _ *fltmgr.FLT_RELATED_OBJECTS, cc any, _ fltmgr.FLT_POST_OPERATION_FLAGS) fltmgr.FLT_POSTOP_CALLBACK_STATUS {
	fm, k := f.mf.FM, f.k
	c := cc.(*fltmgr.FLT_CONTEXT)
	j := c.Data.(*rlJournal)
	name, st := fm.FltGetFileNameInformation(data)
	fm.FltAcquireResourceExclusive(j.lock)
	k.AccessPool(c.Block(), "rename journal of "+j.file)
	if kernel.NT_SUCCESS(st) && name != "" {
		k.Compute(2 * des.Microsecond) // append the new name
	}
	j.renames++
	fm.FltReleaseResource(j.lock)
	f.journaled++
	fm.FltReleaseContext(c)
	return fltmgr.FLT_POSTOP_FINISHED_PROCESSING
}
