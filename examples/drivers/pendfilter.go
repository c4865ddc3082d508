package drivers

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/queues"
	"github.com/wqsim/wqsim/queues/fltmgr"
)

// PendFilter's pre-read pends each read into its instance's FltCbdq and
// queues a generic work item unless one is already running; the work
// routine drains the queue, completing each read. Teardown disables the
// queue and cancels what is left. The application issues three reads,
// cancels the second, waits for all, and unloads the filter.
var PendFilter = &model.Scenario{
	Name: "pendfilter",
	Doc: "A minifilter pends reads into a FltCbdq drained by one generic work item at a time. The bug lets the " +
		"work routine give up its 'running' flag outside the queue lock: a read pended in between waits forever.",
	Section: "REFERENCE §1.3, §1.5",
	Variants: []model.Variant{
		{Name: "correct", Doc: "the work routine clears 'running' under the lock, after seeing the list empty"},
		{Name: "unlocked-flag", Bug: true, Doc: "the work routine clears 'running' without the lock once RemoveNextIo returns nothing",
			Want: "hang"},
	},
	Setup: penderSetup,
}

// pinst is the per-instance state (what an instance context would hold).
type pinst struct {
	q       fltmgr.FLT_CALLBACK_DATA_QUEUE
	head    fltmgr.LIST_ENTRY
	lock    *kernel.KSPIN_LOCK
	item    *fltmgr.FLT_GENERIC_WORKITEM
	running bool
}

func penderSetup(env *model.Env) error {
	mf, err := model.NewMinifilter(env)
	if err != nil {
		return err
	}
	k, fm := env.K, mf.FM
	served := 0
	var drain func(item *fltmgr.FLT_GENERIC_WORKITEM, obj fltmgr.FltObject, ctx any)
	drain = func(item *fltmgr.FLT_GENERIC_WORKITEM, obj fltmgr.FltObject, ctx any) {
		pi := ctx.(*pinst)
		for {
			data := fm.FltCbdqRemoveNextIo(&pi.q, nil)
			if data == nil {
				if env.Is("correct") {
					old := k.KeAcquireSpinLock(pi.lock)
					if k.IsListEmpty(&pi.head) {
						pi.running = false
						k.KeReleaseSpinLock(pi.lock, old)
						return
					}
					k.KeReleaseSpinLock(pi.lock, old)
					continue
				}
				pi.running = false
				return
			}
			k.Compute(3 * des.Microsecond)
			data.IoStatus.Status = kernel.STATUS_SUCCESS
			served++
			fm.FltCompletePendedPreOperation(data, fltmgr.FLT_PREOP_COMPLETE, nil)
		}
	}
	reg := &fltmgr.FLT_REGISTRATION{
		InstanceSetupCallback: func(objs *fltmgr.FLT_RELATED_OBJECTS, _ fltmgr.FLT_INSTANCE_SETUP_FLAGS) kernel.NTSTATUS {
			pi := &pinst{lock: k.KeInitializeSpinLock("cbdq lock")}
			k.InitializeListHead(&pi.head)
			pi.item = fm.FltAllocateGenericWorkItem()
			st := fm.FltCbdqInitialize(objs.Instance, &pi.q,
				func(q *fltmgr.FLT_CALLBACK_DATA_QUEUE, data *fltmgr.FLT_CALLBACK_DATA, _ any) kernel.NTSTATUS {
					k.InsertTailList(&pi.head, &data.QueueLinks)
					return kernel.STATUS_SUCCESS
				},
				func(q *fltmgr.FLT_CALLBACK_DATA_QUEUE, data *fltmgr.FLT_CALLBACK_DATA) {
					k.RemoveEntryList(&data.QueueLinks)
				},
				func(q *fltmgr.FLT_CALLBACK_DATA_QUEUE, data *fltmgr.FLT_CALLBACK_DATA, _ any) *fltmgr.FLT_CALLBACK_DATA {
					var e *fltmgr.LIST_ENTRY
					if data == nil {
						e = pi.head.Flink
					} else {
						e = data.QueueLinks.Flink
					}
					if e == &pi.head {
						return nil
					}
					return fltmgr.CbdFromQueueLinks(e)
				},
				func(q *fltmgr.FLT_CALLBACK_DATA_QUEUE) kernel.IRQL { return k.KeAcquireSpinLock(pi.lock) },
				func(q *fltmgr.FLT_CALLBACK_DATA_QUEUE, irql kernel.IRQL) { k.KeReleaseSpinLock(pi.lock, irql) },
				func(q *fltmgr.FLT_CALLBACK_DATA_QUEUE, data *fltmgr.FLT_CALLBACK_DATA) {
					data.IoStatus.Status = kernel.STATUS_CANCELLED
					fm.FltCompletePendedPreOperation(data, fltmgr.FLT_PREOP_COMPLETE, nil)
				})
			objs.Instance.Context = pi
			return st
		},
		InstanceTeardownStartCallback: func(objs *fltmgr.FLT_RELATED_OBJECTS, _ fltmgr.FLT_INSTANCE_TEARDOWN_FLAGS) {
			pi := objs.Instance.Context.(*pinst)
			fm.FltCbdqDisable(&pi.q)
			for {
				data := fm.FltCbdqRemoveNextIo(&pi.q, nil)
				if data == nil {
					break
				}
				data.IoStatus.Status = kernel.STATUS_CANCELLED
				fm.FltCompletePendedPreOperation(data, fltmgr.FLT_PREOP_COMPLETE, nil)
			}
		},
		InstanceTeardownCompleteCallback: func(objs *fltmgr.FLT_RELATED_OBJECTS, _ fltmgr.FLT_INSTANCE_TEARDOWN_FLAGS) {
			pi := objs.Instance.Context.(*pinst)
			fm.FltFreeGenericWorkItem(pi.item)
		},
		OperationRegistration: []fltmgr.FLT_OPERATION_REGISTRATION{{MajorFunction: fltmgr.IRP_MJ_READ,
			PreOperation: func(data *fltmgr.FLT_CALLBACK_DATA, objs *fltmgr.FLT_RELATED_OBJECTS, _ *any) fltmgr.FLT_PREOP_CALLBACK_STATUS {
				pi := objs.Instance.Context.(*pinst)
				if st := fm.FltCbdqInsertIo(&pi.q, data, nil, nil); st != kernel.STATUS_SUCCESS {
					return fltmgr.FLT_PREOP_SUCCESS_NO_CALLBACK
				}
				old := k.KeAcquireSpinLock(pi.lock)
				start := !pi.running
				pi.running = true
				k.KeReleaseSpinLock(pi.lock, old)
				if start {
					if fm.FltQueueGenericWorkItem(pi.item, objs.Instance, drain, queues.DelayedWorkQueue, pi) != kernel.STATUS_SUCCESS {
						pi.running = false
					}
				}
				return fltmgr.FLT_PREOP_PENDING
			}}},
	}
	if err := mf.Register("pender", 370000, reg); err != nil {
		return err
	}
	var ops []*fltmgr.IoOp
	k.PsCreateSystemThread("app", 8, func() {
		mf.StartFiltering()
		for range 3 {
			ops = append(ops, mf.Volume.Issue(fltmgr.IoRequest{MajorFunction: fltmgr.IRP_MJ_READ, Tag: "read"}))
		}
		k.KeDelayExecutionThread(des.Duration(1+env.Choose("cancel after", 3)*3) * des.Microsecond)
		ops[1].Cancel()
		for _, op := range ops {
			op.Wait()
		}
		env.BeginDrain()
		mf.Unload()
	})
	env.AtEnd("served", func() error {
		for i, op := range ops {
			if !op.Completed() {
				return fmt.Errorf("op %d not completed", i)
			}
		}
		return nil
	})
	return nil
}
