package drivers

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/queues"
	"github.com/wqsim/wqsim/queues/fltmgr"
)

// writethrottle: a bandwidth-limiting minifilter. Its pre-write pends every
// write (FLT_PREOP_PENDING) to a deferred I/O work item of its own
// (FltQueueDeferredIoWorkItem); the work routine waits at PASSIVE_LEVEL for
// a token — a KSEMAPHORE that a periodic refill timer's DPC releases — and
// lets the write go on with FltCompletePendedPreOperation. The instance
// holds a 'stop' event; a routine waits WaitAny on (stop, tokens), stop
// first, and passes its write down unthrottled once stop is signalled.
//
// The filter is unloaded while writes wait for tokens. The filter manager
// neither completes nor cancels pended operations at teardown, it waits for
// them (REFERENCE §5.5), so InstanceTeardownStart must release every
// routine still waiting: it sets 'stop', then cancels the refill timer and
// flushes its DPC. A post that comes after teardown started is refused
// (STATUS_FLT_DELETING_OBJECT) and the pre-write passes that write through.
//
// The bugs: teardown cancels the refill timer but never signals 'stop', so
// the routines waiting for tokens wait for ever (the unload hangs); teardown
// signals 'stop' but leaves the refill timer armed, so its next DPC runs in
// the filter's unloaded image (0xCE, REFERENCE §5.11); or 'stop' is a
// synchronization event, which one waiting routine consumes, so with two
// writes waiting the second waits for ever.

var (
	markThrottleStopped = model.NewMark("writethrottle: a waiting write was released by teardown")
	markThrottleRefused = model.NewMark("writethrottle: the post was refused at teardown and the write passed through")
)

// WriteThrottle is the scenario.
var WriteThrottle = &model.Scenario{
	Name: "writethrottle",
	Doc: "A bandwidth-limiting minifilter pends writes to deferred I/O work items that wait (WaitAny on stop, " +
		"tokens) for a token from a refill timer's DPC, then FltCompletePendedPreOperation; it unloads while " +
		"writes wait. InstanceTeardownStart must signal stop, then cancel the timer and flush its DPC. The bugs never " +
		"signal stop, or make stop a synchronization event that only one waiting write sees (unload hangs), or " +
		"leave the timer armed (its DPC runs in the unloaded filter, 0xCE).",
	Section: "REFERENCE §1.3, §1.4, §4.8, §5.5, §5.11",
	Variants: []model.Variant{
		{Name: "correct", Doc: "InstanceTeardownStart sets a notification 'stop' event, then cancels the refill timer and flushes its DPC"},
		{Name: "no-stop", Bug: true, Doc: "InstanceTeardownStart cancels the refill timer and flushes its DPC but never signals the waiting routines",
			Want: "hang"},
		{Name: "no-cancel", Bug: true, Doc: "InstanceTeardownStart releases the waiting writes but leaves the refill timer armed: its next DPC runs in the unloaded filter",
			Want: "0xCE"},
		{Name: "sync-stop", Bug: true, Doc: "'stop' is a synchronization event: the first waiting routine that sees it resets it, the others wait for tokens that never come",
			Marks: []*model.Mark{markThrottleStopped}, Want: "hang"},
	},
	Setup: setupWriteThrottle,
}

const (
	wtWriters = 2
	wtWrites  = 2
	wtPeriod  = 40 * des.Microsecond // one token per period
)

// wtInstance is the instance's throttle state (FLT_INSTANCE.Context).
type wtInstance struct {
	stop   *kernel.KEVENT
	tokens *kernel.KSEMAPHORE
	timer  *kernel.KTIMER
	dpc    *kernel.KDPC
}

type writeThrottle struct {
	env *model.Env
	k   *kernel.Kernel
	mf  *model.Minifilter

	pended, throttled, released, passed int
}

func setupWriteThrottle(env *model.Env) error {
	mf, err := model.NewMinifilter(env)
	if err != nil {
		return err
	}
	f := &writeThrottle{env: env, k: env.K, mf: mf}
	err = mf.Register("throttle", 330000, &fltmgr.FLT_REGISTRATION{
		OperationRegistration: []fltmgr.FLT_OPERATION_REGISTRATION{{
			MajorFunction: fltmgr.IRP_MJ_WRITE,
			PreOperation:  f.preWrite,
		}},
		InstanceSetupCallback:         f.instanceSetup,
		InstanceTeardownStartCallback: f.teardownStart,
	})
	if err != nil {
		return err
	}
	k := env.K
	var ops []*fltmgr.IoOp
	k.PsCreateSystemThread("app", 8, func() {
		mf.StartFiltering()
		var writers []*kernel.Thread
		for i := range wtWriters {
			writers = append(writers, k.PsCreateSystemThread(fmt.Sprintf("writer%d", i), 8, func() {
				var mine []*fltmgr.IoOp
				for range wtWrites {
					op := mf.Volume.Issue(fltmgr.IoRequest{MajorFunction: fltmgr.IRP_MJ_WRITE, Length: 4096, Tag: "write"})
					mine = append(mine, op)
					ops = append(ops, op)
					k.KeDelayExecutionThread(des.Duration(1+env.Choose("write gap", 3)*15) * des.Microsecond)
				}
				for _, op := range mine {
					op.Wait()
				}
			}))
		}
		// The service is stopped while writes wait for tokens.
		k.KeDelayExecutionThread(des.Duration(20+env.Choose("unload at", 4)*30) * des.Microsecond)
		mf.Unload()
		env.BeginDrain()
		for _, w := range writers {
			k.KeWaitForSingleObject(w.Object(), kernel.Infinite)
		}
	})
	env.AtEnd("every write completed, each pended one released once", func() error {
		for i, op := range ops {
			if !op.Completed() {
				return fmt.Errorf("write %d not completed", i)
			}
		}
		if f.throttled+f.released != f.pended {
			return fmt.Errorf("%d throttled + %d released by teardown of %d pended writes", f.throttled, f.released, f.pended)
		}
		return nil
	})
	return nil
}

func (f *writeThrottle) instanceSetup(objs *fltmgr.FLT_RELATED_OBJECTS, _ fltmgr.FLT_INSTANCE_SETUP_FLAGS) kernel.NTSTATUS {
	k := f.k
	stopType := kernel.NotificationEvent
	if f.env.Is("sync-stop") {
		stopType = kernel.SynchronizationEvent
	}
	t := &wtInstance{
		stop:   k.KeInitializeEvent("throttle stop", stopType, false),
		tokens: k.KeInitializeSemaphore("throttle tokens", 1, 0x7fffffff),
		timer:  k.KeInitializeTimerEx("throttle refill", kernel.NotificationEvent),
	}
	t.dpc = k.KeInitializeDpc("throttle refill", func(*kernel.KDPC, any, any, any) {
		k.KeReleaseSemaphore(t.tokens, kernel.IO_NO_INCREMENT, 1, false)
	}, nil)
	k.KeSetTimerEx(t.timer, wtPeriod, wtPeriod, t.dpc)
	objs.Instance.Context = t
	return kernel.STATUS_SUCCESS
}

func (f *writeThrottle) teardownStart(objs *fltmgr.FLT_RELATED_OBJECTS, _ fltmgr.FLT_INSTANCE_TEARDOWN_FLAGS) {
	k := f.k
	t := objs.Instance.Context.(*wtInstance)
	if !f.env.Is("no-stop") {
		k.KeSetEvent(t.stop, kernel.IO_NO_INCREMENT, false) // release every waiting write
	}
	if f.env.Is("no-cancel") {
		return // "the timer is the instance's: it goes with it"
	}
	k.KeCancelTimer(t.timer)
	k.KeFlushQueuedDpcs() // a refill DPC already running must finish in the image
}

func (f *writeThrottle) preWrite(data *fltmgr.FLT_CALLBACK_DATA, objs *fltmgr.FLT_RELATED_OBJECTS, _ *any) fltmgr.FLT_PREOP_CALLBACK_STATUS {
	fm := f.mf.FM
	item := fm.FltAllocateDeferredIoWorkItem()
	if item == nil {
		f.passed++
		return fltmgr.FLT_PREOP_SUCCESS_NO_CALLBACK // fail open
	}
	t := objs.Instance.Context.(*wtInstance)
	if st := fm.FltQueueDeferredIoWorkItem(item, data, f.waitForToken, queues.DelayedWorkQueue, t); st != kernel.STATUS_SUCCESS {
		// STATUS_FLT_DELETING_OBJECT: the instance is going away, or
		// STATUS_FLT_NOT_SAFE_TO_POST_OPERATION: let the write through.
		fm.FltFreeDeferredIoWorkItem(item)
		f.env.Hit(markThrottleRefused)
		f.passed++
		return fltmgr.FLT_PREOP_SUCCESS_NO_CALLBACK
	}
	f.pended++
	return fltmgr.FLT_PREOP_PENDING
}

// waitForToken is the deferred work routine, at PASSIVE_LEVEL in a system
// worker.
func (f *writeThrottle) waitForToken(item *fltmgr.FLT_DEFERRED_IO_WORKITEM, data *fltmgr.FLT_CALLBACK_DATA, ctx any) {
	k, fm := f.k, f.mf.FM
	t := ctx.(*wtInstance)
	st := k.KeWaitForMultipleObjects([]kernel.Waitable{t.stop, t.tokens}, kernel.WaitAny, kernel.Infinite)
	if st == kernel.STATUS_WAIT_0 {
		f.env.Hit(markThrottleStopped)
		f.released++
	} else {
		f.throttled++
	}
	fm.FltFreeDeferredIoWorkItem(item)
	fm.FltCompletePendedPreOperation(data, fltmgr.FLT_PREOP_SUCCESS_NO_CALLBACK, nil)
}
