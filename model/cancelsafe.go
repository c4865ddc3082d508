package model

import (
	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues"
	"github.com/wqsim/wqsim/queues/fltmgr"
)

// Coverage marks of these scenarios (see Mark).
var (
	markCsLostCancel     = NewMark("cancelsafe: cancel found no cancel routine")
	markCsWorkerOrphan   = NewMark("cancelsafe: worker start failed, counter left at 1")
	markCsTeardownBusy   = NewMark("cancelsafe: teardown with work outstanding")
	markCsCancelInInsert = NewMark("cancelsafe: cancelled inside insert")
	markCsInsertDisabled = NewMark("cancelsafe: insert refused, queue disabled")
)

// The cancelSafe minifilter of Windows-driver-samples (REFERENCE §7.1),
// re-created: reads are pended in a cancel-safe callback-data queue and
// completed after OperatingDelay by a generic work item started when the
// queue goes non-empty (an interlocked "worker present" counter decides
// who starts it); teardown disables, drains and wakes the worker.

const (
	csOperatingDelay = 20 * des.Millisecond // the sample's default is 15 s; scaled down
	csCancelDeadline = 5 * des.Millisecond  // Verifier's "cancelled IRP not completed in time"
	csUnloadBound    = csOperatingDelay     // teardown must not wait for the worker's sleep
)

func init() {
	Register(&Scenario{
		Name: "cancelsafe",
		Doc: "The cancelSafe minifilter sample: reads pended in an FltCbdq, completed after a delay " +
			"by a generic work item; one read is cancelled, the filter unloads. Variants plant the " +
			"sample's known bugs and the classic mistakes around it.",
		Section: "§7.1, §1.3, §1.5, §2, §5.5, §6.1, §6.15, §6.16, §2.7H",
		Variants: []Variant{
			{Name: "correct", Doc: "the sample as fixed in 2016"},
			{Name: "lost-cancel", Bug: true, Doc: "own list: test FltIsIoCanceled, then FltSetCancelCompletion (§2.7A)",
				Marks: []*Mark{markCsLostCancel}, Want: "0x135"},
			{Name: "worker-orphan", Bug: true, Doc: "worker start fails and the counter stays at 1 (pre-2016 sample, §6.16)",
				Marks: []*Mark{markCsWorkerOrphan}, Want: "hang"},
			{Name: "no-drain", Bug: true, Doc: "teardown neither drains the queue nor wakes the worker: unload waits out the worker's sleep (§6.15)",
				Marks: []*Mark{markCsTeardownBusy}, Want: "unload latency"},
			{Name: "touch-after-insert", Bug: true, Doc: "pre-op touches its queue context after a successful insert (§2.7H)",
				Marks: []*Mark{markCsCancelInInsert}, Want: "0xD5"},
			{Name: "ignore-disabled", Bug: true, Doc: "pre-op returns PENDING although the insert failed with STATUS_FLT_CBDQ_DISABLED (§2.7I)",
				Marks: []*Mark{markCsInsertDisabled}, Want: "hang|not completed within"},
		},
		Config: func(v string) kernel.Config {
			c := ExploreConfig()
			c.InjectAllocFailures = v == "worker-orphan"
			return c
		},
		Setup: setupCancelSafe,
	})
}

type csFilter struct {
	*Minifilter
	inst     *fltmgr.FLT_INSTANCE
	q        fltmgr.FLT_CALLBACK_DATA_QUEUE
	list     cbdqList // q's storage and lock (a fast mutex, as in the sample)
	workers  *kernel.Cell
	teardown *kernel.KEVENT
	// lost-cancel variant: a hand-rolled list under a spin lock
	spin        *kernel.KSPIN_LOCK
	own         []*fltmgr.FLT_CALLBACK_DATA
	ownDisabled bool // teardown started: the list takes no more reads (as FltCbdqDisable)
	// workload hooks: the victim's IRP as soon as its pre-op starts (the
	// application holds its request and may cancel it at any moment), and
	// an event set when another read's pre-op starts (to time an unload).
	victim        *kernel.IRP
	victimEntered *kernel.KEVENT
	entered       *kernel.KEVENT
	// the workload's own state (cancelsafe_workload.go)
	started, issuing *kernel.KEVENT
	apps             countdown
	victimOp         *fltmgr.IoOp

	// Storage a run fills in place instead of allocating: an exploration
	// worker reuses one csFilter for all its executions (model/recycle.go),
	// so that the scenario allocates nothing per execution.
	reg    fltmgr.FLT_REGISTRATION
	ops    [1]fltmgr.FLT_OPERATION_REGISTRATION
	tokens [csReads]fltmgr.FLT_CALLBACK_DATA_QUEUE_IO_CONTEXT
	ntok   int
	fn     csBound // bound once, when the csFilter is made
}

// csBound holds the filter's callbacks and the workload's thread bodies as
// method values bound to one csFilter: a method value allocates each time
// it is taken, so they are taken once.
type csBound struct {
	preRead            fltmgr.PFLT_PRE_OPERATION_CALLBACK
	instanceSetup      fltmgr.PFLT_INSTANCE_SETUP_CALLBACK
	teardownStart      fltmgr.PFLT_INSTANCE_TEARDOWN_CALLBACK
	insertIo           fltmgr.PFLT_CALLBACK_DATA_QUEUE_INSERT_IO
	removeIo           fltmgr.PFLT_CALLBACK_DATA_QUEUE_REMOVE_IO
	peekNextIo         fltmgr.PFLT_CALLBACK_DATA_QUEUE_PEEK_NEXT_IO
	acquire            fltmgr.PFLT_CALLBACK_DATA_QUEUE_ACQUIRE
	release            fltmgr.PFLT_CALLBACK_DATA_QUEUE_RELEASE
	completeCanceledIo fltmgr.PFLT_CALLBACK_DATA_QUEUE_COMPLETE_CANCELED_IO
	worker             fltmgr.PFLT_GENERIC_WORKITEM_ROUTINE
	cancelOwn          func(*fltmgr.FLT_CALLBACK_DATA)
	victimApp          func()
	readerApps         [2]func()
	canceller          func()
	unloader           func()
}

// csReads is how many reads a run issues: the victim and two per reader.
const csReads = 5

// newCsFilter makes a csFilter and binds its callbacks.
func newCsFilter() *csFilter {
	cs := &csFilter{}
	cs.fn = csBound{
		preRead: cs.preRead, instanceSetup: cs.instanceSetup, teardownStart: cs.teardownStart,
		insertIo: cs.insertIo, removeIo: cs.list.removeIo, peekNextIo: cs.list.peekNextIo,
		acquire: cs.list.acquire, release: cs.list.release, completeCanceledIo: cs.completeCanceledIo,
		worker: cs.worker, cancelOwn: cs.cancelOwn,
		victimApp: cs.victimApp, readerApps: [2]func(){func() { cs.readerApp(1) }, func() { cs.readerApp(2) }},
		canceller: cs.canceller, unloader: cs.unloader,
	}
	return cs
}

// reset readies cs for a run on b: every field zero but the bound
// callbacks and the storage of its own list.
func (cs *csFilter) reset(b *Minifilter) {
	*cs = csFilter{Minifilter: b, fn: cs.fn, own: reuse(cs.own)}
}

func setupCancelSafe(env *Env) error {
	k := env.K
	b, err := NewMinifilter(env)
	if err != nil {
		return err
	}
	cs := sparesOf(env.Sim).cancelSafe(b)
	cs.list = cbdqList{k: k, mutex: k.ExInitializeFastMutex("cancelsafe queue")}
	cs.spin = k.KeInitializeSpinLock("cancelsafe list")
	cs.workers = k.NewCell("worker present", 0)
	cs.teardown = k.KeInitializeEvent("cancelsafe teardown", kernel.NotificationEvent, false)
	cs.entered = k.KeInitializeEvent("read1.0 pre-op entered", kernel.NotificationEvent, false)
	cs.victimEntered = k.KeInitializeEvent("victim pre-op entered", kernel.NotificationEvent, false)
	if err := cs.Register("cancelsafe", 100, cs.registration()); err != nil {
		return err
	}
	cs.startWorkload()
	return nil
}

func (cs *csFilter) registration() *fltmgr.FLT_REGISTRATION {
	cs.ops[0] = fltmgr.FLT_OPERATION_REGISTRATION{
		MajorFunction: fltmgr.IRP_MJ_READ, Flags: fltmgr.FLTFL_OPERATION_REGISTRATION_SKIP_PAGING_IO,
		PreOperation: cs.fn.preRead,
	}
	cs.reg = fltmgr.FLT_REGISTRATION{
		OperationRegistration:         cs.ops[:],
		InstanceSetupCallback:         cs.fn.instanceSetup,
		InstanceTeardownStartCallback: cs.fn.teardownStart,
	}
	return &cs.reg
}

func (cs *csFilter) instanceSetup(objs *fltmgr.FLT_RELATED_OBJECTS, _ fltmgr.FLT_INSTANCE_SETUP_FLAGS) kernel.NTSTATUS {
	cs.inst = objs.Instance
	cs.list.k.InitializeListHead(&cs.list.head)
	f := &cs.fn
	return cs.FM.FltCbdqInitialize(objs.Instance, &cs.q, f.insertIo, f.removeIo, f.peekNextIo, f.acquire, f.release, f.completeCanceledIo)
}

// preRead is §7.1 step 2.
func (cs *csFilter) preRead(data *fltmgr.FLT_CALLBACK_DATA, _ *fltmgr.FLT_RELATED_OBJECTS, _ *any) fltmgr.FLT_PREOP_CALLBACK_STATUS {
	k := cs.K
	if !fltmgr.FLT_IS_IRP_OPERATION(data) {
		return fltmgr.FLT_PREOP_DISALLOW_FASTIO
	}
	switch data.Irp().Tag {
	case "victim":
		cs.victim = data.Irp()
		k.KeSetEvent(cs.victimEntered, 0, false)
	case "read1.0":
		k.KeSetEvent(cs.entered, 0, false)
	}
	// §7.1 step 2: the sample gets the normalized name and compares the
	// parent directory with its mapping path; that query is the bulk of
	// the pre-op's time.
	k.Compute(20 * des.Microsecond)
	ctx := k.ExAllocatePoolWithTag(kernel.NonPagedPool, 32, "CSqc") // per-request queue context
	if ctx == nil {
		return fltmgr.FLT_PREOP_SUCCESS_NO_CALLBACK
	}
	data.QueueContext[1] = ctx
	if cs.Env.Is("lost-cancel") {
		return cs.preReadOwnList(data)
	}
	tok := &cs.tokens[cs.ntok] // one per read, zeroed by reset
	cs.ntok++
	data.QueueContext[0] = tok
	st := cs.FM.FltCbdqInsertIo(&cs.q, data, tok, nil)
	switch {
	case st == kernel.STATUS_SUCCESS:
		if cs.Env.Is("touch-after-insert") {
			if ctx.Freed() {
				cs.Env.Hit(markCsCancelInInsert)
			}
			k.AccessPool(ctx, "pre-read after FltCbdqInsertIo") // §2.7H: must not touch data now
		}
		return fltmgr.FLT_PREOP_PENDING
	case st == kernel.STATUS_FLT_CBDQ_DISABLED:
		cs.Env.Hit(markCsInsertDisabled)
		if cs.Env.Is("ignore-disabled") {
			return fltmgr.FLT_PREOP_PENDING // nobody will ever complete it
		}
	}
	k.ExFreePoolWithTag(ctx, "CSqc")
	return fltmgr.FLT_PREOP_SUCCESS_NO_CALLBACK
}

// insertIo is §7.1 step 3 (the queue lock is held).
func (cs *csFilter) insertIo(_ *fltmgr.FLT_CALLBACK_DATA_QUEUE, data *fltmgr.FLT_CALLBACK_DATA, _ any) kernel.NTSTATUS {
	wasEmpty := cs.list.k.IsListEmpty(&cs.list.head)
	cs.list.k.InsertTailList(&cs.list.head, &data.QueueLinks)
	if st := cs.startWorker(wasEmpty); st != kernel.STATUS_SUCCESS {
		cs.list.k.RemoveEntryList(&data.QueueLinks)
		return st
	}
	return kernel.STATUS_SUCCESS
}

// startWorker queues the generic work item when the queue went non-empty
// and no worker is present. On failure the fixed sample puts the counter
// back to 0; the pre-2016 sample did not, orphaning later requests.
func (cs *csFilter) startWorker(wasEmpty bool) kernel.NTSTATUS {
	k, fm := cs.K, cs.FM
	if !wasEmpty || k.InterlockedIncrement(cs.workers) != 1 {
		return kernel.STATUS_SUCCESS
	}
	item := fm.FltAllocateGenericWorkItem()
	st := kernel.STATUS_INSUFFICIENT_RESOURCES
	if item != nil {
		if st = fm.FltQueueGenericWorkItem(item, cs.inst, cs.fn.worker, queues.DelayedWorkQueue, nil); st != kernel.STATUS_SUCCESS {
			fm.FltFreeGenericWorkItem(item)
		}
	}
	if st == kernel.STATUS_SUCCESS {
		return st
	}
	if cs.Env.Is("worker-orphan") {
		cs.Env.Hit(markCsWorkerOrphan)
	} else {
		k.InterlockedDecrement(cs.workers)
	}
	return st
}

// worker is §7.1 step 4.
func (cs *csFilter) worker(item *fltmgr.FLT_GENERIC_WORKITEM, _ fltmgr.FltObject, _ any) {
	k := cs.K
	for {
		k.KeWaitForSingleObject(cs.teardown, csOperatingDelay)
		k.InterlockedExchange(cs.workers, 1)
		if cs.completeNext() {
			continue
		}
		if k.InterlockedDecrement(cs.workers) == 0 {
			break
		}
	}
	cs.FM.FltFreeGenericWorkItem(item)
}

// completeNext dequeues one read and lets it continue down the stack.
func (cs *csFilter) completeNext() bool {
	var d *fltmgr.FLT_CALLBACK_DATA
	if cs.Env.Is("lost-cancel") {
		d = cs.popOwnList()
	} else {
		d = cs.FM.FltCbdqRemoveNextIo(&cs.q, nil)
	}
	if d == nil {
		return false
	}
	cs.freeContext(d)
	cs.FM.FltCompletePendedPreOperation(d, fltmgr.FLT_PREOP_SUCCESS_NO_CALLBACK, nil)
	return true
}

func (cs *csFilter) freeContext(d *fltmgr.FLT_CALLBACK_DATA) {
	if b, ok := d.QueueContext[1].(*kernel.PoolBlock); ok && b != nil {
		cs.K.ExFreePoolWithTag(b, "CSqc")
		d.QueueContext[1] = nil
	}
}

// completeCanceledIo is §7.1 step 5; the filter manager already removed it.
func (cs *csFilter) completeCanceledIo(_ *fltmgr.FLT_CALLBACK_DATA_QUEUE, data *fltmgr.FLT_CALLBACK_DATA) {
	data.IoStatus = kernel.IO_STATUS_BLOCK{Status: kernel.STATUS_CANCELLED}
	cs.freeContext(data)
	cs.FM.FltCompletePendedPreOperation(data, fltmgr.FLT_PREOP_COMPLETE, nil)
}

// teardownStart is §7.1 step 6.
func (cs *csFilter) teardownStart(*fltmgr.FLT_RELATED_OBJECTS, fltmgr.FLT_INSTANCE_TEARDOWN_FLAGS) {
	if !cs.list.k.IsListEmpty(&cs.list.head) || len(cs.own) > 0 || cs.workers.Peek() > 0 {
		cs.Env.Hit(markCsTeardownBusy)
	}
	cs.FM.FltCbdqDisable(&cs.q)
	if cs.Env.Is("lost-cancel") {
		old := cs.K.KeAcquireSpinLock(cs.spin)
		cs.ownDisabled = true
		cs.K.KeReleaseSpinLock(cs.spin, old)
	}
	if cs.Env.Is("no-drain") {
		return // the worker still holds each read for its full delay
	}
	for cs.completeNext() {
	}
	cs.K.KeSetEvent(cs.teardown, kernel.IO_NO_INCREMENT, false)
}
