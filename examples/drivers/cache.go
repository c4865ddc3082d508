package drivers

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/queues"
)

// ResourceCache: two consumer threads fed by a private KQUEUE read a value
// under an ERESOURCE held shared; a delayed work item updates it holding
// the resource exclusive; the producer waits for the work item and then for
// both consumer threads with KeWaitForMultipleObjects(WaitAll).
var ResourceCache = &model.Scenario{
	Name: "resourcecache",
	Doc: "Readers (KQUEUE consumers) and a writer (a delayed work item) on one ERESOURCE. The bug acquires it " +
		"with normal kernel APCs enabled.",
	Section: "REFERENCE §4.6",
	Variants: []model.Variant{
		{Name: "correct", Doc: "every acquisition inside KeEnterCriticalRegion/KeLeaveCriticalRegion"},
		{Name: "nocrit", Bug: true, Doc: "no critical region around the acquisitions (Driver Verifier's 0xC4 P1=0x37)",
			Want: "0xC4"},
	},
	Setup: cacheSetup,
}

func cacheSetup(env *model.Env) error {
	k := env.K
	sys, err := queues.NewSystem(k, queues.DefaultPoolConfig())
	if err != nil {
		return err
	}
	res := k.ExInitializeResourceLite("cache")
	val := k.NewCell("value", 0)
	q := k.KeInitializeQueue("jobs", 0)
	done := k.KeInitializeEvent("refreshed", kernel.NotificationEvent, false)
	served := 0
	enter := func() {
		if env.Is("correct") {
			k.KeEnterCriticalRegion()
		}
	}
	leave := func() {
		if env.Is("correct") {
			k.KeLeaveCriticalRegion()
		}
	}
	var item queues.WORK_QUEUE_ITEM
	queues.ExInitializeWorkItem(&item, func(any) {
		enter()
		k.ExAcquireResourceExclusiveLite(res, true)
		k.Write(val, k.Read(val)+1)
		k.ExReleaseResourceLite(res)
		leave()
		k.KeSetEvent(done, 0, false)
	}, nil)
	var consumers []kernel.Waitable
	for i := range 2 {
		th := k.PsCreateSystemThread(fmt.Sprint("consumer", i), 9, func() {
			for {
				e, ok := k.KeRemoveQueue(q, kernel.Infinite)
				if !ok {
					env.Violation("remove", "timed out")
					return
				}
				if e.(int) < 0 {
					return
				}
				enter()
				k.ExAcquireResourceSharedLite(res, true)
				_ = k.Read(val)
				k.Compute(2 * des.Microsecond)
				k.ExReleaseResourceLite(res)
				leave()
				served++
			}
		})
		consumers = append(consumers, th.Object())
	}
	k.PsCreateSystemThread("producer", 8, func() {
		for i := range 6 {
			k.KeInsertQueue(q, i)
			if i == 2 {
				sys.ExQueueWorkItem(&item, queues.DelayedWorkQueue)
			}
			k.Compute(des.Duration(1+env.Choose("gap", 3)) * des.Microsecond)
		}
		k.KeInsertQueue(q, -1)
		k.KeInsertQueue(q, -1)
		k.KeWaitForSingleObject(done, kernel.Infinite)
		st := k.KeWaitForMultipleObjects(consumers, kernel.WaitAll, kernel.Infinite)
		if st != kernel.STATUS_WAIT_0 {
			env.Violation("join", "status %v", st)
		}
	})
	env.AtEnd("served", func() error {
		if served != 6 {
			return fmt.Errorf("served %d", served)
		}
		return nil
	})
	return nil
}
