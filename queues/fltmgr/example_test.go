package fltmgr_test

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues"
	"github.com/wqsim/wqsim/queues/fltmgr"
)

// A minifilter that pends every read and finishes it from a system worker
// thread (the pre-op recipe of REFERENCE §1.3), and an application thread
// that issues a read and waits for it.
func Example_issue() {
	sim := des.New(des.Config{})
	defer sim.Close()
	k := kernel.MustNew(sim, kernel.DefaultConfig())
	fm := fltmgr.MustNew(k, queues.MustNewSystem(k, queues.DefaultPoolConfig()), fltmgr.DefaultConfig())
	vol := fm.MountVolume("C:")

	finish := func(item *fltmgr.FLT_DEFERRED_IO_WORKITEM, data *fltmgr.FLT_CALLBACK_DATA, _ any) {
		fm.FltCompletePendedPreOperation(data, fltmgr.FLT_PREOP_SUCCESS_NO_CALLBACK, nil)
		fm.FltFreeDeferredIoWorkItem(item)
	}
	preRead := func(data *fltmgr.FLT_CALLBACK_DATA, _ *fltmgr.FLT_RELATED_OBJECTS, _ *any) fltmgr.FLT_PREOP_CALLBACK_STATUS {
		item := fm.FltAllocateDeferredIoWorkItem()
		if fm.FltQueueDeferredIoWorkItem(item, data, finish, queues.DelayedWorkQueue, nil) != kernel.STATUS_SUCCESS {
			fm.FltFreeDeferredIoWorkItem(item)
			return fltmgr.FLT_PREOP_SUCCESS_NO_CALLBACK
		}
		return fltmgr.FLT_PREOP_PENDING
	}
	filter, _ := fm.FltRegisterFilter("example", 100, &fltmgr.FLT_REGISTRATION{
		OperationRegistration: []fltmgr.FLT_OPERATION_REGISTRATION{{MajorFunction: fltmgr.IRP_MJ_READ, PreOperation: preRead}},
	})

	k.PsCreateSystemThread("app", 8, func() {
		fm.FltStartFiltering(filter)
		io := vol.Issue(fltmgr.IoRequest{MajorFunction: fltmgr.IRP_MJ_READ, Length: 4096, Tag: "read"})
		fmt.Println("returned:", io.Returned())
		iosb := io.Wait()
		fmt.Println("completed:", iosb.Status, iosb.Information)
	})
	fmt.Println("outcome:", k.Run().Err)
	// Output:
	// returned: STATUS_PENDING (0x00000103)
	// completed: STATUS_SUCCESS (0x00000000) 4096
	// outcome: <nil>
}
