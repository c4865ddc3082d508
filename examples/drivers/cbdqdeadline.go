package drivers

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/queues/fltmgr"
)

// cbdqdeadline: a quota minifilter holds each read in a cancel-safe
// callback-data queue (FltCbdq, spin-lock guarded) until a granting thread
// lets it through. Each held read has a deadline: a KTIMER whose DPC takes
// that read out of the queue with FltCbdqRemoveIo and its queue context,
// and fails it. Three parties race for a held read — the granter
// (FltCbdqRemoveNextIo), the deadline DPC (FltCbdqRemoveIo) and the
// application's cancel (the queue's CompleteCanceledIo) — and exactly one
// of them may complete it: the one the queue hands it to (REFERENCE §1.5,
// §2.4, §2.5). Stopping the timer does not stop a DPC that already fired
// (KeCancelTimer returns FALSE, §4.8).
//
// The bug's deadline DPC completes the read it remembers when
// FltCbdqRemoveIo returns NULL, trusting that the granter cancels the timer
// before it completes a read: when the timer had already fired the read is
// completed twice (0x44).

var markCdDpcLost = model.NewMark("cbdqdeadline: a deadline DPC found its read already taken")

// CbdqDeadline is the scenario.
var CbdqDeadline = &model.Scenario{
	Name: "cbdqdeadline",
	Doc: "A quota minifilter holds reads in a FltCbdq until a granting thread releases them; each held read has " +
		"a deadline timer whose DPC takes it out with FltCbdqRemoveIo and fails it; the application cancels one. " +
		"The bug's DPC completes its read even when FltCbdqRemoveIo returned NULL: a read the granter or the " +
		"cancel already completed is completed again (0x44).",
	Section: "REFERENCE §1.5, §2.4, §4.8",
	Variants: []model.Variant{
		{Name: "correct", Doc: "the deadline DPC completes the read only when FltCbdqRemoveIo returns it"},
		{Name: "complete-remembered", Bug: true, Doc: "the deadline DPC completes the read it remembers whatever FltCbdqRemoveIo returned",
			Marks: []*model.Mark{markCdDpcLost}, Want: "0x44"},
	},
	Setup: setupCbdqDeadline,
}

const cdReads = 3

// cdHold is what the filter keeps for a held read.
type cdHold struct {
	ctx   fltmgr.FLT_CALLBACK_DATA_QUEUE_IO_CONTEXT
	data  *fltmgr.FLT_CALLBACK_DATA
	timer *kernel.KTIMER
	dpc   *kernel.KDPC
}

type cbdqDeadline struct {
	env     *model.Env
	k       *kernel.Kernel
	fm      *fltmgr.FilterManager
	q       fltmgr.FLT_CALLBACK_DATA_QUEUE
	head    fltmgr.LIST_ENTRY
	lock    *kernel.KSPIN_LOCK
	work    *kernel.KSEMAPHORE // one count per held read
	stop    bool               // teardown started (read by the granter after a wake)
	holds   int
	granter *kernel.Thread
}

func setupCbdqDeadline(env *model.Env) error {
	mf, err := model.NewMinifilter(env)
	if err != nil {
		return err
	}
	k := env.K
	d := &cbdqDeadline{env: env, k: k, fm: mf.FM, lock: k.KeInitializeSpinLock("quota queue lock"),
		work: k.KeInitializeSemaphore("held reads", 0, 1000)}
	k.InitializeListHead(&d.head)
	if err := mf.Register("quota", 372000, &fltmgr.FLT_REGISTRATION{
		OperationRegistration:         []fltmgr.FLT_OPERATION_REGISTRATION{{MajorFunction: fltmgr.IRP_MJ_READ, PreOperation: d.preRead}},
		InstanceSetupCallback:         d.instanceSetup,
		InstanceTeardownStartCallback: d.teardownStart,
	}); err != nil {
		return err
	}
	var ops []*fltmgr.IoOp
	k.PsCreateSystemThread("app", 8, func() {
		mf.StartFiltering()
		for i := range cdReads {
			ops = append(ops, mf.Volume.Issue(fltmgr.IoRequest{MajorFunction: fltmgr.IRP_MJ_READ, Tag: fmt.Sprintf("read%d", i)}))
		}
		k.KeDelayExecutionThread(des.Duration(2+3*env.Choose("cancel at", 4)) * des.Microsecond)
		ops[env.Choose("cancelled read", cdReads)].Cancel()
		for _, op := range ops {
			op.Wait()
		}
		env.BeginDrain()
		mf.Unload()
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

func (d *cbdqDeadline) instanceSetup(objs *fltmgr.FLT_RELATED_OBJECTS, _ fltmgr.FLT_INSTANCE_SETUP_FLAGS) kernel.NTSTATUS {
	k, fm := d.k, d.fm
	st := fm.FltCbdqInitialize(objs.Instance, &d.q,
		func(_ *fltmgr.FLT_CALLBACK_DATA_QUEUE, data *fltmgr.FLT_CALLBACK_DATA, _ any) kernel.NTSTATUS {
			k.InsertTailList(&d.head, &data.QueueLinks)
			return kernel.STATUS_SUCCESS
		},
		func(_ *fltmgr.FLT_CALLBACK_DATA_QUEUE, data *fltmgr.FLT_CALLBACK_DATA) {
			k.RemoveEntryList(&data.QueueLinks)
		},
		func(_ *fltmgr.FLT_CALLBACK_DATA_QUEUE, data *fltmgr.FLT_CALLBACK_DATA, _ any) *fltmgr.FLT_CALLBACK_DATA {
			e := d.head.Flink
			if data != nil {
				e = data.QueueLinks.Flink
			}
			if e == &d.head {
				return nil
			}
			return fltmgr.CbdFromQueueLinks(e)
		},
		func(*fltmgr.FLT_CALLBACK_DATA_QUEUE) kernel.IRQL { return k.KeAcquireSpinLock(d.lock) },
		func(_ *fltmgr.FLT_CALLBACK_DATA_QUEUE, irql kernel.IRQL) { k.KeReleaseSpinLock(d.lock, irql) },
		func(_ *fltmgr.FLT_CALLBACK_DATA_QUEUE, data *fltmgr.FLT_CALLBACK_DATA) {
			k.KeCancelTimer(data.QueueContext[0].(*cdHold).timer)
			d.finish(data, kernel.STATUS_CANCELLED)
		})
	if st != kernel.STATUS_SUCCESS {
		return st
	}
	d.granter = k.PsCreateSystemThread("granter", 8, d.grant)
	return kernel.STATUS_SUCCESS
}

// preRead holds the read with a deadline.
func (d *cbdqDeadline) preRead(data *fltmgr.FLT_CALLBACK_DATA, _ *fltmgr.FLT_RELATED_OBJECTS, _ *any) fltmgr.FLT_PREOP_CALLBACK_STATUS {
	k := d.k
	d.holds++
	h := &cdHold{data: data, timer: k.KeInitializeTimer(fmt.Sprintf("hold%d deadline", d.holds))}
	h.dpc = k.KeInitializeDpc(fmt.Sprintf("hold%d deadline dpc", d.holds), d.deadline, h)
	k.KeSetTargetProcessorDpc(h.dpc, d.env.Choose("deadline dpc cpu", 2))
	data.QueueContext[0] = h
	// Arm the deadline first: once inserted, the read may be granted or
	// cancelled at once, and the hold may not be touched after that.
	k.KeSetTimer(h.timer, []des.Duration{60, 12, 8, 5}[d.env.Choose("deadline", 4)]*des.Microsecond, h.dpc)
	if d.fm.FltCbdqInsertIo(&d.q, data, &h.ctx, nil) != kernel.STATUS_SUCCESS {
		k.KeCancelTimer(h.timer)
		k.KeFlushQueuedDpcs() // a DPC that fired finds the read not queued
		return fltmgr.FLT_PREOP_SUCCESS_NO_CALLBACK
	}
	k.KeReleaseSemaphore(d.work, kernel.IO_NO_INCREMENT, 1, false)
	return fltmgr.FLT_PREOP_PENDING
}

// grant lets held reads through, one every few microseconds (the quota).
func (d *cbdqDeadline) grant() {
	k := d.k
	for {
		k.KeWaitForSingleObject(d.work, kernel.Infinite)
		if d.stop {
			return
		}
		k.KeDelayExecutionThread(des.Duration(3+3*d.env.Choose("grant after", 3)) * des.Microsecond)
		data := d.fm.FltCbdqRemoveNextIo(&d.q, nil)
		if data == nil {
			continue // timed out or cancelled meanwhile
		}
		k.KeCancelTimer(data.QueueContext[0].(*cdHold).timer)
		d.finish(data, kernel.STATUS_SUCCESS)
	}
}

// deadline is the deadline DPC: take the read out and fail it.
func (d *cbdqDeadline) deadline(_ *kernel.KDPC, ctx, _, _ any) {
	h := ctx.(*cdHold)
	data := d.fm.FltCbdqRemoveIo(&d.q, &h.ctx)
	if data == nil {
		d.env.Hit(markCdDpcLost)
		if !d.env.Is("complete-remembered") {
			return // granted or cancelled: whoever removed it completes it
		}
		data = h.data // the bug
	}
	d.finish(data, kernel.STATUS_IO_TIMEOUT)
}

func (d *cbdqDeadline) finish(data *fltmgr.FLT_CALLBACK_DATA, st kernel.NTSTATUS) {
	data.IoStatus.Status = st
	d.fm.FltCompletePendedPreOperation(data, fltmgr.FLT_PREOP_COMPLETE, nil)
}

// teardownStart stops holding reads, fails the held ones and stops the
// granter; the deadline timers of failed reads may still fire, and find
// nothing.
func (d *cbdqDeadline) teardownStart(*fltmgr.FLT_RELATED_OBJECTS, fltmgr.FLT_INSTANCE_TEARDOWN_FLAGS) {
	k, fm := d.k, d.fm
	fm.FltCbdqDisable(&d.q)
	for data := fm.FltCbdqRemoveNextIo(&d.q, nil); data != nil; data = fm.FltCbdqRemoveNextIo(&d.q, nil) {
		k.KeCancelTimer(data.QueueContext[0].(*cdHold).timer)
		d.finish(data, kernel.STATUS_CANCELLED)
	}
	d.stop = true
	k.KeReleaseSemaphore(d.work, kernel.IO_NO_INCREMENT, 1, false)
	k.KeWaitForSingleObject(d.granter.Object(), kernel.Infinite)
	k.KeFlushQueuedDpcs()
}
