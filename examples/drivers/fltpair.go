package drivers

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/queues"
	"github.com/wqsim/wqsim/queues/fltmgr"
)

// FltPair is two minifilters on one volume. The upper one ("audit") asks
// for a post-read with FLT_PREOP_SUCCESS_WITH_CALLBACK and a completion
// context, and its post-read posts the rest of its work to a generic work
// item allocated per operation, returning FLT_POSTOP_MORE_PROCESSING_REQUIRED;
// the work routine completes the operation with
// FltCompletePendedPostOperation and frees its item. The lower one
// ("synch") returns FLT_PREOP_SYNCHRONIZE, so its post-read runs at
// PASSIVE_LEVEL in the issuing thread. The file system completes inline
// or pends (a decision) and honours cancels; two application threads read,
// one cancels its read, and both filters are unloaded at the end.
var FltPair = &model.Scenario{
	Name: "fltpair",
	Doc: "An upper minifilter posts its post-read to a generic work item (MORE_PROCESSING_REQUIRED, then " +
		"FltCompletePendedPostOperation) above a lower one that synchronizes its reads. The bug's post-read " +
		"queues the work item and returns FINISHED_PROCESSING, so the operation is completed twice.",
	Section: "REFERENCE §1.3, §1.4, §5.3, §5.4",
	Variants: []model.Variant{
		{Name: "correct", Doc: "the post-read returns MORE_PROCESSING_REQUIRED exactly when its work item was queued, FINISHED when draining"},
		{Name: "finished-anyway", Bug: true, Doc: "the post-read returns FLT_POSTOP_FINISHED_PROCESSING after queueing the work item that will complete the operation",
			Want: "0x44"},
	},
	Setup: fltPairSetup,
}

// auditCtx is the audit filter's completion context.
type auditCtx struct {
	item   *fltmgr.FLT_GENERIC_WORKITEM
	issued des.Time
}

type fltPair struct {
	env    *model.Env
	k      *kernel.Kernel
	fm     *fltmgr.FilterManager
	synch  *fltmgr.FLT_FILTER
	posted int // audit work routines run
}

func fltPairSetup(env *model.Env) error {
	mf, err := model.NewMinifilter(env)
	if err != nil {
		return err
	}
	mf.Volume.CancelPendedIo = true
	p := &fltPair{env: env, k: env.K, fm: mf.FM}
	if err := mf.Register("audit", 385000, p.auditRegistration()); err != nil {
		return err
	}
	synch, st := mf.FM.FltRegisterFilter("synch", 365000, p.synchRegistration())
	if st != kernel.STATUS_SUCCESS {
		return fmt.Errorf("FltRegisterFilter(synch): %v", st)
	}
	p.synch = synch
	k := env.K
	var ops []*fltmgr.IoOp
	k.PsCreateSystemThread("app", 8, func() {
		mf.StartFiltering()
		if st := mf.FM.FltStartFiltering(synch); st != kernel.STATUS_SUCCESS {
			env.Violation("start", "FltStartFiltering(synch): %v", st)
			return
		}
		done := k.KeInitializeEvent("reader done", kernel.NotificationEvent, false)
		k.PsCreateSystemThread("reader", 8, func() {
			mf.Volume.Issue(fltmgr.IoRequest{MajorFunction: fltmgr.IRP_MJ_READ, Tag: "other read"}).Wait()
			k.KeSetEvent(done, kernel.IO_NO_INCREMENT, false)
		})
		for i := range 2 {
			ops = append(ops, mf.Volume.Issue(fltmgr.IoRequest{MajorFunction: fltmgr.IRP_MJ_READ, Tag: fmt.Sprintf("read%d", i)}))
		}
		k.KeDelayExecutionThread(des.Duration(env.Choose("cancel after", 3)*5) * des.Microsecond)
		ops[1].Cancel()
		for _, op := range ops {
			op.Wait()
		}
		k.KeWaitForSingleObject(done, kernel.Infinite)
		env.BeginDrain()
		mf.Unload()
		if st := mf.FM.FltUnloadFilter(synch); st != kernel.STATUS_SUCCESS {
			env.Violation("unload", "FltUnloadFilter(synch): %v", st)
		}
	})
	env.AtEnd("every read completed", func() error {
		for i, op := range ops {
			if !op.Completed() {
				return fmt.Errorf("read%d not completed", i)
			}
		}
		return nil
	})
	return nil
}

func (p *fltPair) auditRegistration() *fltmgr.FLT_REGISTRATION {
	return &fltmgr.FLT_REGISTRATION{
		OperationRegistration: []fltmgr.FLT_OPERATION_REGISTRATION{{MajorFunction: fltmgr.IRP_MJ_READ,
			PreOperation: func(_ *fltmgr.FLT_CALLBACK_DATA, _ *fltmgr.FLT_RELATED_OBJECTS, ctx *any) fltmgr.FLT_PREOP_CALLBACK_STATUS {
				*ctx = &auditCtx{issued: p.k.Now()}
				return fltmgr.FLT_PREOP_SUCCESS_WITH_CALLBACK
			},
			PostOperation: p.auditPostRead}},
	}
}

// auditPostRead posts its work unless the instance is draining or the
// work item cannot be had (then it finishes here).
func (p *fltPair) auditPostRead(data *fltmgr.FLT_CALLBACK_DATA, objs *fltmgr.FLT_RELATED_OBJECTS, cctx any, flags fltmgr.FLT_POST_OPERATION_FLAGS) fltmgr.FLT_POSTOP_CALLBACK_STATUS {
	fm := p.fm
	c := cctx.(*auditCtx)
	if flags&fltmgr.FLTFL_POST_OPERATION_DRAINING != 0 {
		return fltmgr.FLT_POSTOP_FINISHED_PROCESSING
	}
	if c.item = fm.FltAllocateGenericWorkItem(); c.item == nil {
		return fltmgr.FLT_POSTOP_FINISHED_PROCESSING
	}
	st := fm.FltQueueGenericWorkItem(c.item, objs.Instance, func(item *fltmgr.FLT_GENERIC_WORKITEM, _ fltmgr.FltObject, ctx any) {
		p.k.Compute(4 * des.Microsecond) // the audit record
		p.posted++
		fm.FltCompletePendedPostOperation(ctx.(*fltmgr.FLT_CALLBACK_DATA))
		fm.FltFreeGenericWorkItem(item)
	}, queues.DelayedWorkQueue, data)
	if st != kernel.STATUS_SUCCESS {
		fm.FltFreeGenericWorkItem(c.item)
		return fltmgr.FLT_POSTOP_FINISHED_PROCESSING
	}
	// Bookkeeping after the hand-off: the work routine may already have
	// completed the operation on another processor, which is legal (§5.4);
	// nothing here touches data any more.
	p.k.Compute(des.Duration(p.env.Choose("post bookkeeping", 3)) * des.Microsecond)
	if p.env.Is("finished-anyway") {
		return fltmgr.FLT_POSTOP_FINISHED_PROCESSING
	}
	return fltmgr.FLT_POSTOP_MORE_PROCESSING_REQUIRED
}

func (p *fltPair) synchRegistration() *fltmgr.FLT_REGISTRATION {
	return &fltmgr.FLT_REGISTRATION{
		FilterUnloadCallback: func(fltmgr.FLT_FILTER_UNLOAD_FLAGS) kernel.NTSTATUS {
			p.fm.FltUnregisterFilter(p.synch)
			return kernel.STATUS_SUCCESS
		},
		OperationRegistration: []fltmgr.FLT_OPERATION_REGISTRATION{{MajorFunction: fltmgr.IRP_MJ_READ,
			PreOperation: func(*fltmgr.FLT_CALLBACK_DATA, *fltmgr.FLT_RELATED_OBJECTS, *any) fltmgr.FLT_PREOP_CALLBACK_STATUS {
				return fltmgr.FLT_PREOP_SYNCHRONIZE
			},
			PostOperation: func(_ *fltmgr.FLT_CALLBACK_DATA, _ *fltmgr.FLT_RELATED_OBJECTS, _ any, flags fltmgr.FLT_POST_OPERATION_FLAGS) fltmgr.FLT_POSTOP_CALLBACK_STATUS {
				if flags&fltmgr.FLTFL_POST_OPERATION_DRAINING == 0 {
					p.k.PAGED_CODE("synch post-read") // synchronized: PASSIVE_LEVEL, in the issuer
					p.k.Compute(2 * des.Microsecond)
				}
				return fltmgr.FLT_POSTOP_FINISHED_PROCESSING
			}}},
	}
}
