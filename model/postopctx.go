package model

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues"
	"github.com/wqsim/wqsim/queues/fltmgr"
)

// An accounting minifilter charges every completed read to the thread
// that issued it, in a table guarded by a fast mutex, so the work must
// happen at PASSIVE_LEVEL (REFERENCE §5.7). Its post-read posts the work
// to a worker with FltQueueDeferredIoWorkItem and returns
// FLT_POSTOP_MORE_PROCESSING_REQUIRED; the work item charges the reader
// and calls FltCompletePendedPostOperation. How the file system completes
// a read is a decision: inline in the reader's thread (choice 0), or from
// its DPC — the post-op then runs at DISPATCH_LEVEL in the context of the
// thread the DPC interrupted (here, a cache-manager thread holding a
// TopLevelIrp) — or from a worker thread. Bugs only asynchronous
// completion shows:
//   - charge-current-thread: the post-op reads the reader from the thread
//     it runs in (KeGetCurrentThread) instead of Data->Thread: right in the
//     reader's thread, wrong from a DPC or a worker;
//   - ignore-not-safe: FltQueueDeferredIoWorkItem refuses to post when the
//     thread the post-op runs in has a TopLevelIrp (it checks the
//     interrupted thread's); the bug returns MORE_PROCESSING_REQUIRED
//     anyway and the read never completes. The correct filter cannot fall
//     back to FltDoCompletionProcessingWhenSafe, which Microsoft forbids for
//     reads (§5.7): it notes the charge at DISPATCH_LEVEL on a list under a
//     spin lock, which the next work item, or its unload callback, charges
//     at PASSIVE_LEVEL.

const pcReads = 2

var (
	markPcNotCurrent = NewMark("postopctx: post-op ran outside the reader's thread")
	markPcNotSafe    = NewMark("postopctx: deferred work item refused in a post-op")
)

func init() {
	Register(&Scenario{
		Name: "postopctx",
		Doc: "An accounting filter charges each completed read to its reader under a fast mutex, posting the " +
			"work from its post-read to a worker. The file system completes inline, or from its DPC (post-op at " +
			"DISPATCH_LEVEL in an interrupted thread's context) or a worker (a decision). Charging " +
			"KeGetCurrentThread instead of Data->Thread, or returning MORE_PROCESSING_REQUIRED after " +
			"FltQueueDeferredIoWorkItem refused (the interrupted thread has a TopLevelIrp), go wrong only then.",
		Section: "§5.7, §5.6, §1.3, §5.2",
		Config: func(string) kernel.Config {
			c := ExploreConfig()
			c.Processors = 1 // the file system's DPC interrupts whichever thread runs
			return c
		},
		Variants: []Variant{
			{Name: "correct", Doc: "charge Data->Thread; if posting is refused, note the charge under a spin lock for the next work item or unload"},
			{Name: "charge-current-thread", Bug: true, Doc: "the post-op charges KeGetCurrentThread(), the thread it happens to run in",
				Marks: []*Mark{markPcNotCurrent}, Want: "charged to"},
			{Name: "ignore-not-safe", Bug: true, Doc: "returns MORE_PROCESSING_REQUIRED although FltQueueDeferredIoWorkItem refused to post",
				Marks: []*Mark{markPcNotSafe}, Want: "hang|never completed"},
		},
		Setup: setupPostOpCtx,
	})
}

type pcFilter struct {
	*Minifilter
	mutex   *kernel.FAST_MUTEX
	charged map[*kernel.Thread]int // bytes charged per reader, under mutex; never ranged over
	spin    *kernel.KSPIN_LOCK
	backlog []*pcCharge // charges a post-op could not post, under spin
}

// pcCharge is what the post-op hands to the PASSIVE_LEVEL work.
type pcCharge struct {
	reader *kernel.Thread
	bytes  int
}

func setupPostOpCtx(env *Env) error {
	k := env.K
	b, err := NewMinifilter(env)
	if err != nil {
		return err
	}
	vol := b.Volume
	pc := &pcFilter{Minifilter: b, mutex: k.ExInitializeFastMutex("pc table"), charged: map[*kernel.Thread]int{},
		spin: k.KeInitializeSpinLock("pc backlog")}
	if err := pc.Register("account", 360000, &fltmgr.FLT_REGISTRATION{
		OperationRegistration: []fltmgr.FLT_OPERATION_REGISTRATION{{MajorFunction: fltmgr.IRP_MJ_READ, PostOperation: pc.postRead}},
		FilterUnloadCallback:  pc.unload,
	}); err != nil {
		return err
	}
	apps := newFltApps(k, 2)
	var readers [2]*kernel.Thread
	started := k.KeInitializeEvent("filter started", kernel.NotificationEvent, false)
	for i := range readers {
		readers[i] = k.PsCreateSystemThread(fmt.Sprintf("reader%d", i), 8, func() {
			if i == 0 {
				pc.StartFiltering()
				k.KeSetEvent(started, 0, false)
			}
			k.KeWaitForSingleObject(started, kernel.Infinite)
			for j := range pcReads {
				vol.Send(fltmgr.IoRequest{MajorFunction: fltmgr.IRP_MJ_READ, Length: 512, ByteOffset: int64(j) * 512, Tag: fmt.Sprintf("r%d.%d", i, j)})
			}
			apps.finish()
		})
	}
	// The cache manager's lazy writer: it holds file-system resources (a
	// TopLevelIrp) while it computes, so a DPC that interrupts it runs
	// with that TopLevelIrp.
	k.PsCreateSystemThread("lazywriter", 8, func() {
		for range 4 {
			pc.FM.IoSetTopLevelIrp("FSRTL_CACHE_TOP_LEVEL_IRP")
			k.Compute(150 * des.Microsecond)
			pc.FM.IoSetTopLevelIrp(nil)
			k.KeDelayExecutionThread(20 * des.Microsecond)
		}
	})
	env.AtEnd("reads charged to their readers", func() error {
		for _, t := range readers {
			if got := pc.charged[t]; got != pcReads*512 {
				return fmt.Errorf("%s read %d bytes but %d were charged to it", t.Name(), pcReads*512, got)
			}
		}
		return nil
	})
	pc.UnloadWhenDone(apps.done)
	return nil
}

// postRead posts the charge to a worker (REFERENCE §5.7, §1.3).
func (pc *pcFilter) postRead(data *fltmgr.FLT_CALLBACK_DATA, objs *fltmgr.FLT_RELATED_OBJECTS, _ any, flags fltmgr.FLT_POST_OPERATION_FLAGS) fltmgr.FLT_POSTOP_CALLBACK_STATUS {
	if flags&fltmgr.FLTFL_POST_OPERATION_DRAINING != 0 {
		return fltmgr.FLT_POSTOP_FINISHED_PROCESSING
	}
	k := pc.K
	charge := &pcCharge{reader: data.Thread, bytes: int(data.IoStatus.Information)}
	if k.KeGetCurrentThread() != data.Thread {
		pc.Env.Hit(markPcNotCurrent)
		if pc.Env.Is("charge-current-thread") {
			charge.reader = k.KeGetCurrentThread()
		}
	}
	item := pc.FM.FltAllocateDeferredIoWorkItem()
	if item == nil {
		return fltmgr.FLT_POSTOP_FINISHED_PROCESSING
	}
	st := pc.FM.FltQueueDeferredIoWorkItem(item, data, pc.chargeWork, queues.DelayedWorkQueue, charge)
	if st == kernel.STATUS_SUCCESS {
		return fltmgr.FLT_POSTOP_MORE_PROCESSING_REQUIRED
	}
	pc.FM.FltFreeDeferredIoWorkItem(item)
	pc.Env.Hit(markPcNotSafe)
	if pc.Env.Is("ignore-not-safe") {
		return fltmgr.FLT_POSTOP_MORE_PROCESSING_REQUIRED
	}
	old := k.KeAcquireSpinLock(pc.spin) // at DISPATCH_LEVEL at most: the fast mutex is out of reach
	pc.backlog = append(pc.backlog, charge)
	k.KeReleaseSpinLock(pc.spin, old)
	return fltmgr.FLT_POSTOP_FINISHED_PROCESSING
}

// chargeWork is the deferred work item: charge, and whatever the backlog
// holds, then resume completion.
func (pc *pcFilter) chargeWork(item *fltmgr.FLT_DEFERRED_IO_WORKITEM, data *fltmgr.FLT_CALLBACK_DATA, ctx any) {
	pc.charge(ctx.(*pcCharge))
	pc.chargeBacklog()
	pc.FM.FltFreeDeferredIoWorkItem(item)
	pc.FM.FltCompletePendedPostOperation(data)
}

// chargeBacklog charges the charges post-ops could not post, at
// PASSIVE_LEVEL.
func (pc *pcFilter) chargeBacklog() {
	k := pc.K
	old := k.KeAcquireSpinLock(pc.spin)
	todo := pc.backlog
	pc.backlog = nil
	k.KeReleaseSpinLock(pc.spin, old)
	for _, c := range todo {
		pc.charge(c)
	}
}

// unload unregisters (no post-op runs after that) and charges the backlog.
func (pc *pcFilter) unload(fltmgr.FLT_FILTER_UNLOAD_FLAGS) kernel.NTSTATUS {
	pc.FM.FltUnregisterFilter(pc.Filter)
	pc.chargeBacklog()
	return kernel.STATUS_SUCCESS
}

func (pc *pcFilter) charge(c *pcCharge) {
	pc.K.ExAcquireFastMutex(pc.mutex)
	pc.charged[c.reader] += c.bytes
	pc.K.ExReleaseFastMutex(pc.mutex)
}
