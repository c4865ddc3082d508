package drivers

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/queues"
	"github.com/wqsim/wqsim/queues/fltmgr"
)

// FltWork is an auditing minifilter: its pre-read allocates a generic
// work item and queues it against the filter to log the read into a
// buffer; the routine frees its item. Reads keep coming while the filter
// unloads. FltQueueGenericWorkItem holds a rundown reference on the
// filter until the routine returns, so FltUnregisterFilter waits for the
// routines; once the filter is being torn down it fails with
// STATUS_FLT_DELETING_OBJECT and queues nothing (REFERENCE §1.3, §6.8).
// The bugs free the log buffer before FltUnregisterFilter, or leak the
// item when the queueing fails.
var FltWork = &model.Scenario{
	Name: "fltwork",
	Doc: "An auditing minifilter queues a generic work item per read against the filter; reads race the " +
		"unload. The bugs free the audit buffer before FltUnregisterFilter (which waits for the routines), " +
		"or do not free the item when FltQueueGenericWorkItem fails during teardown.",
	Section: "REFERENCE §1.3, §6.8",
	Variants: []model.Variant{
		{Name: "correct", Doc: "unload unregisters first, then frees the buffer; a failed queue frees its item"},
		{Name: "free-first", Bug: true, Doc: "the unload callback frees the audit buffer, then calls FltUnregisterFilter: a running routine touches freed pool",
			Want: "0xD5"},
		{Name: "leak-on-deleting", Bug: true, Doc: "a pre-read whose FltQueueGenericWorkItem fails keeps the item: never freed",
			Want: "leak"},
	},
	Setup: fltWorkSetup,
}

type fltWork struct {
	env    *model.Env
	k      *kernel.Kernel
	fm     *fltmgr.FilterManager
	filter *fltmgr.FLT_FILTER
	log    *kernel.PoolBlock
	logged int
}

func fltWorkSetup(env *model.Env) error {
	mf, err := model.NewMinifilter(env)
	if err != nil {
		return err
	}
	k := env.K
	w := &fltWork{env: env, k: k, fm: mf.FM}
	err = mf.Register("audit", 370000, &fltmgr.FLT_REGISTRATION{
		OperationRegistration: []fltmgr.FLT_OPERATION_REGISTRATION{{MajorFunction: fltmgr.IRP_MJ_READ, PreOperation: w.preRead}},
		FilterUnloadCallback:  w.unload,
	})
	if err != nil {
		return err
	}
	w.filter = mf.Filter
	k.PsCreateSystemThread("app", 8, func() {
		w.log = k.ExAllocatePoolWithTag(kernel.NonPagedPool, 256, "Audt") // before any read
		mf.StartFiltering()
		done := k.KeInitializeEvent("reader done", kernel.NotificationEvent, false)
		k.PsCreateSystemThread("reader", 8, func() {
			for i := range 3 {
				k.KeDelayExecutionThread(des.Duration(1+env.Choose("read gap", 3)*3) * des.Microsecond)
				mf.Volume.Issue(fltmgr.IoRequest{MajorFunction: fltmgr.IRP_MJ_READ, Tag: fmt.Sprintf("read%d", i)}).Wait()
			}
			k.KeSetEvent(done, kernel.IO_NO_INCREMENT, false)
		})
		k.KeDelayExecutionThread(des.Duration(2+env.Choose("unload at", 4)*4) * des.Microsecond)
		env.BeginDrain()
		mf.Unload()
		k.KeWaitForSingleObject(done, kernel.Infinite)
	})
	return nil
}

// preRead queues the audit of this read and lets it go on.
func (w *fltWork) preRead(_ *fltmgr.FLT_CALLBACK_DATA, _ *fltmgr.FLT_RELATED_OBJECTS, _ *any) fltmgr.FLT_PREOP_CALLBACK_STATUS {
	item := w.fm.FltAllocateGenericWorkItem()
	if item == nil {
		return fltmgr.FLT_PREOP_SUCCESS_NO_CALLBACK
	}
	st := w.fm.FltQueueGenericWorkItem(item, w.filter, w.audit, queues.DelayedWorkQueue, nil)
	if st != kernel.STATUS_SUCCESS && !w.env.Is("leak-on-deleting") {
		w.fm.FltFreeGenericWorkItem(item)
	}
	return fltmgr.FLT_PREOP_SUCCESS_NO_CALLBACK
}

// audit logs one read.
func (w *fltWork) audit(item *fltmgr.FLT_GENERIC_WORKITEM, _ fltmgr.FltObject, _ any) {
	w.k.Compute(des.Duration(2+w.env.Choose("audit time", 3)*3) * des.Microsecond)
	w.k.AccessPool(w.log, "audit log")
	w.logged++
	w.fm.FltFreeGenericWorkItem(item)
}

func (w *fltWork) unload(fltmgr.FLT_FILTER_UNLOAD_FLAGS) kernel.NTSTATUS {
	if w.env.Is("free-first") {
		w.k.ExFreePoolWithTag(w.log, "Audt")
		w.fm.FltUnregisterFilter(w.filter)
		return kernel.STATUS_SUCCESS
	}
	w.fm.FltUnregisterFilter(w.filter)
	w.k.ExFreePoolWithTag(w.log, "Audt")
	return kernel.STATUS_SUCCESS
}
