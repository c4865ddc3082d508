package drivers

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/queues"
)

// ResWriter is a configuration table behind an ERESOURCE. A request
// thread reads it holding the resource shared and needs a helper work
// item (which also reads the table shared) to finish; a writer work item
// updates the table exclusively at a time the workload chooses. An
// ERESOURCE favours a waiting writer: a new shared request from a thread
// that does not already own the resource waits behind it. So the request
// thread must not wait for its helper while it holds the resource: the
// helper's shared request queues behind the writer, which waits for the
// request thread. The bug waits holding the resource.
var ResWriter = &model.Scenario{
	Name: "reswriter",
	Doc: "A request thread holding an ERESOURCE shared waits for a helper work item that also acquires it " +
		"shared, while a writer work item asks for it exclusive. The bug waits holding the resource: the " +
		"helper queues behind the writer, which waits for the request thread.",
	Section: "REFERENCE §4.6, §6.9",
	Variants: []model.Variant{
		{Name: "correct", Doc: "release the shared hold, wait for the helper, then take it again to finish"},
		{Name: "wait-holding-shared", Bug: true, Doc: "the request thread waits for its helper while it holds the resource shared",
			Want: "deadlock|hang"},
	},
	Setup: resWriterSetup,
}

// rwTable is the driver's configuration table.
type rwTable struct {
	env     *model.Env
	k       *kernel.Kernel
	sys     *queues.System
	res     *kernel.ERESOURCE
	version int // guarded by res
	reads   int
}

func resWriterSetup(env *model.Env) error {
	k := env.K
	sys, err := queues.NewSystem(k, queues.DefaultPoolConfig())
	if err != nil {
		return err
	}
	x := &rwTable{env: env, k: k, sys: sys}
	x.res = k.ExInitializeResourceLite("config table")
	var writer queues.WORK_QUEUE_ITEM
	written := k.KeInitializeEvent("written", kernel.NotificationEvent, false)
	k.PsCreateSystemThread("app", 8, func() {
		request := k.PsCreateSystemThread("request", 8, x.request)
		// Plainly the update comes long after the request; it may come
		// while the request thread holds the table.
		at := []des.Duration{60 * des.Microsecond, 2 * des.Microsecond, 4 * des.Microsecond}
		k.KeDelayExecutionThread(at[env.Choose("update at", len(at))])
		queues.ExInitializeWorkItem(&writer, func(any) {
			x.write()
			k.KeSetEvent(written, kernel.IO_NO_INCREMENT, false)
		}, nil)
		sys.ExQueueWorkItem(&writer, queues.DelayedWorkQueue)
		k.KeWaitForMultipleObjects([]kernel.Waitable{request.Object(), written}, kernel.WaitAll, kernel.Infinite)
		env.BeginDrain()
	})
	env.AtEnd("the request and the update both finished", func() error {
		if x.reads != 2 || x.version != 1 {
			return fmt.Errorf("%d reads, version %d", x.reads, x.version)
		}
		return nil
	})
	return nil
}

// request reads the table, has a helper read the rest, and finishes.
func (x *rwTable) request() {
	k := x.k
	done := k.KeInitializeEvent("helper done", kernel.NotificationEvent, false)
	var helper queues.WORK_QUEUE_ITEM
	queues.ExInitializeWorkItem(&helper, func(any) {
		k.KeEnterCriticalRegion()
		k.ExAcquireResourceSharedLite(x.res, true)
		k.Compute(2 * des.Microsecond)
		x.reads++
		k.ExReleaseResourceLite(x.res)
		k.KeLeaveCriticalRegion()
		k.KeSetEvent(done, kernel.IO_NO_INCREMENT, false)
	}, nil)
	k.KeEnterCriticalRegion()
	k.ExAcquireResourceSharedLite(x.res, true)
	k.Compute(3 * des.Microsecond)
	x.reads++
	x.sys.ExQueueWorkItem(&helper, queues.DelayedWorkQueue)
	if x.env.Is("wait-holding-shared") {
		k.KeWaitForSingleObject(done, kernel.Infinite)
	} else {
		k.ExReleaseResourceLite(x.res)
		k.KeWaitForSingleObject(done, kernel.Infinite)
		k.ExAcquireResourceSharedLite(x.res, true)
	}
	k.Compute(des.Microsecond) // combine the two reads
	k.ExReleaseResourceLite(x.res)
	k.KeLeaveCriticalRegion()
}

// write updates the table exclusively.
func (x *rwTable) write() {
	k := x.k
	k.KeEnterCriticalRegion()
	k.ExAcquireResourceExclusiveLite(x.res, true)
	k.Compute(2 * des.Microsecond)
	x.version++
	k.ExReleaseResourceLite(x.res)
	k.KeLeaveCriticalRegion()
}
