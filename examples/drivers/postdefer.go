package drivers

import (
	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/queues"
	"github.com/wqsim/wqsim/queues/fltmgr"
)

// postdefer: a minifilter scans what every read returned, at PASSIVE_LEVEL,
// so its post-read posts the operation to a deferred I/O work item and
// returns FLT_POSTOP_MORE_PROCESSING_REQUIRED; the work routine scans and
// resumes completion with FltCompletePendedPostOperation (REFERENCE §1.3,
// §1.4). The work item may run, on another processor, before the post-op
// has returned: that is legal, the completion waits for the post-op's
// return (§5.4). The bug is the author's belief that it is not: a post-op
// that sees the scan already done returns FLT_POSTOP_FINISHED_PROCESSING
// "so that the operation is not held", and the operation is completed twice.

var markPostDeferFinished = model.NewMark("postdefer: post-op returned FINISHED_PROCESSING after posting the operation")

// PostDefer is the scenario.
var PostDefer = &model.Scenario{
	Name: "postdefer",
	Doc: "A post-read posts each read to a deferred I/O work item and returns MORE_PROCESSING_REQUIRED; the " +
		"routine scans the data and calls FltCompletePendedPostOperation. The bug returns FINISHED_PROCESSING " +
		"when the routine already finished before the post-op returned: the read is completed twice.",
	Section: "§1.3, §1.4, §5.4",
	Variants: []model.Variant{
		{Name: "correct", Doc: "a post-op that posted the operation always returns MORE_PROCESSING_REQUIRED"},
		{Name: "finished-if-done", Bug: true, Doc: "the post-op returns FINISHED_PROCESSING when the work routine has already completed the read",
			Marks: []*model.Mark{markPostDeferFinished}, Want: "0x44"},
	},
	Setup: setupPostDefer,
}

const postDeferReads = 2

type postDeferFilter struct {
	env *model.Env
	k   *kernel.Kernel
	mf  *model.Minifilter
}

// postDeferRead is one read's state between its post-op and its work item.
type postDeferRead struct {
	scanned *kernel.Cell // set by the work routine once it has completed the read
}

func setupPostDefer(env *model.Env) error {
	mf, err := model.NewMinifilter(env)
	if err != nil {
		return err
	}
	f := &postDeferFilter{env: env, k: env.K, mf: mf}
	err = mf.Register("scanner", 320000, &fltmgr.FLT_REGISTRATION{
		OperationRegistration: []fltmgr.FLT_OPERATION_REGISTRATION{{MajorFunction: fltmgr.IRP_MJ_READ, PostOperation: f.postRead}},
	})
	if err != nil {
		return err
	}
	k := env.K
	done := k.KeInitializeEvent("reads done", kernel.NotificationEvent, false)
	left := k.NewCell("readers left", postDeferReads)
	started := k.KeInitializeEvent("filtering", kernel.NotificationEvent, false)
	k.PsCreateSystemThread("starter", 8, func() {
		mf.StartFiltering()
		k.KeSetEvent(started, kernel.IO_NO_INCREMENT, false)
	})
	for i := 0; i < postDeferReads; i++ {
		k.PsCreateSystemThread("reader"+string(rune('0'+i)), 8, func() {
			k.KeWaitForSingleObject(started, kernel.Infinite)
			mf.Volume.Send(fltmgr.IoRequest{MajorFunction: fltmgr.IRP_MJ_READ, Length: 4096, Tag: "read"})
			if k.InterlockedDecrement(left) == 0 {
				k.KeSetEvent(done, kernel.IO_NO_INCREMENT, false)
			}
		})
	}
	mf.UnloadWhenDone(done)
	return nil
}

func (f *postDeferFilter) postRead(data *fltmgr.FLT_CALLBACK_DATA, _ *fltmgr.FLT_RELATED_OBJECTS, _ any, flags fltmgr.FLT_POST_OPERATION_FLAGS) fltmgr.FLT_POSTOP_CALLBACK_STATUS {
	k, fm := f.k, f.mf.FM
	if flags&fltmgr.FLTFL_POST_OPERATION_DRAINING != 0 || !kernel.NT_SUCCESS(data.IoStatus.Status) {
		return fltmgr.FLT_POSTOP_FINISHED_PROCESSING
	}
	item := fm.FltAllocateDeferredIoWorkItem()
	if item == nil {
		return fltmgr.FLT_POSTOP_FINISHED_PROCESSING // not scanned: the filter fails open
	}
	r := &postDeferRead{scanned: k.NewCell("scanned", 0)}
	if st := fm.FltQueueDeferredIoWorkItem(item, data, f.scan, queues.DelayedWorkQueue, r); !kernel.NT_SUCCESS(st) {
		fm.FltFreeDeferredIoWorkItem(item)
		return fltmgr.FLT_POSTOP_FINISHED_PROCESSING
	}
	k.Compute(3 * des.Microsecond) // note the read in the filter's statistics
	if f.env.Is("finished-if-done") && k.Read(r.scanned) != 0 {
		f.env.Hit(markPostDeferFinished)
		return fltmgr.FLT_POSTOP_FINISHED_PROCESSING
	}
	return fltmgr.FLT_POSTOP_MORE_PROCESSING_REQUIRED
}

// scan is the deferred work routine: scan the data at PASSIVE_LEVEL, then
// let the operation complete.
func (f *postDeferFilter) scan(item *fltmgr.FLT_DEFERRED_IO_WORKITEM, data *fltmgr.FLT_CALLBACK_DATA, ctx any) {
	k, fm := f.k, f.mf.FM
	r := ctx.(*postDeferRead)
	k.Compute(10 * des.Microsecond)
	fm.FltFreeDeferredIoWorkItem(item)
	k.Write(r.scanned, 1)
	fm.FltCompletePendedPostOperation(data)
}
