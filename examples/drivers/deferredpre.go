package drivers

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/queues"
	"github.com/wqsim/wqsim/queues/fltmgr"
)

// DeferredPre is a scanning minifilter: its pre-read posts each read to a
// deferred I/O work item of its own (FltQueueDeferredIoWorkItem), returns
// FLT_PREOP_PENDING, and the work routine scans at PASSIVE_LEVEL and lets
// the read go on with FltCompletePendedPreOperation. The filter is
// unloaded while reads keep coming: once its instance is tearing down the
// filter manager refuses the post (STATUS_FLT_DELETING_OBJECT), and the
// pre-read must then let the read through itself. The bug returns
// FLT_PREOP_PENDING whatever the post returned: nobody completes the read.
var DeferredPre = &model.Scenario{
	Name: "deferredpre",
	Doc: "A minifilter pends reads to deferred I/O work items that complete them with " +
		"FltCompletePendedPreOperation, and is unloaded while reads arrive. The bug pends a read whose " +
		"FltQueueDeferredIoWorkItem failed at teardown: it is never completed.",
	Section: "REFERENCE §1.3, §1.4, §5.5",
	Variants: []model.Variant{
		{Name: "correct", Doc: "on a failed post the pre-read frees its item and returns FLT_PREOP_SUCCESS_NO_CALLBACK"},
		{Name: "pend-anyway", Bug: true, Doc: "the pre-read returns FLT_PREOP_PENDING although FltQueueDeferredIoWorkItem refused the post",
			Want: "hang|leak|0xF5|Verifier"},
	},
	Setup: deferredPreSetup,
}

const dpReads = 4

func deferredPreSetup(env *model.Env) error {
	mf, err := model.NewMinifilter(env)
	if err != nil {
		return err
	}
	k, fm := env.K, mf.FM
	scanned, passed := 0, 0
	scan := func(item *fltmgr.FLT_DEFERRED_IO_WORKITEM, data *fltmgr.FLT_CALLBACK_DATA, _ any) {
		k.Compute(des.Duration(2+env.Choose("scan time", 3)*2) * des.Microsecond)
		scanned++
		fm.FltFreeDeferredIoWorkItem(item)
		fm.FltCompletePendedPreOperation(data, fltmgr.FLT_PREOP_SUCCESS_NO_CALLBACK, nil)
	}
	reg := &fltmgr.FLT_REGISTRATION{
		OperationRegistration: []fltmgr.FLT_OPERATION_REGISTRATION{{MajorFunction: fltmgr.IRP_MJ_READ,
			PreOperation: func(data *fltmgr.FLT_CALLBACK_DATA, _ *fltmgr.FLT_RELATED_OBJECTS, _ *any) fltmgr.FLT_PREOP_CALLBACK_STATUS {
				item := fm.FltAllocateDeferredIoWorkItem()
				if item == nil {
					passed++
					return fltmgr.FLT_PREOP_SUCCESS_NO_CALLBACK
				}
				if st := fm.FltQueueDeferredIoWorkItem(item, data, scan, queues.DelayedWorkQueue, nil); st != kernel.STATUS_SUCCESS {
					fm.FltFreeDeferredIoWorkItem(item)
					if !env.Is("pend-anyway") {
						passed++
						return fltmgr.FLT_PREOP_SUCCESS_NO_CALLBACK // not scanned: the filter is going away
					}
				}
				return fltmgr.FLT_PREOP_PENDING
			}}},
	}
	if err := mf.Register("scanner", 360000, reg); err != nil {
		return err
	}
	var ops []*fltmgr.IoOp
	k.PsCreateSystemThread("app", 8, func() {
		mf.StartFiltering()
		reader := k.PsCreateSystemThread("reader", 8, func() {
			for range dpReads {
				ops = append(ops, mf.Volume.Issue(fltmgr.IoRequest{MajorFunction: fltmgr.IRP_MJ_READ, Tag: "read"}))
				k.KeDelayExecutionThread(des.Duration(1+env.Choose("read gap", 3)*3) * des.Microsecond)
			}
			for _, op := range ops {
				op.Wait()
			}
		})
		k.KeDelayExecutionThread(des.Duration(2+env.Choose("unload at", 4)*3) * des.Microsecond)
		mf.Unload()
		env.BeginDrain()
		k.KeWaitForSingleObject(reader.Object(), kernel.Infinite)
	})
	env.AtEnd("every read completed", func() error {
		for i, op := range ops {
			if !op.Completed() {
				return fmt.Errorf("read %d not completed", i)
			}
		}
		if scanned+passed > len(ops) {
			return fmt.Errorf("%d scanned + %d passed through of %d reads", scanned, passed, len(ops))
		}
		return nil
	})
	return nil
}
