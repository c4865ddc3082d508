package reports

import (
	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/queues"
)

// zephyrproject-rtos/zephyr issue #51872 (fixed by pull #54677): rescheduling
// a delayable work item first unschedules it, and unschedule_locked ignored
// the result of z_abort_timeout: when the timeout had already fired and its
// handler was about to take the lock, the reschedule cleared and re-set the
// DELAYED flag as if the old timeout were gone. The old handler then
// consumed the new schedule, and the new timeout found nothing to do:
// submitted work was lost. The fix reports the failed abort to the caller.
//
// NT form: a driver coalesces flushes of a log buffer with a KTIMER whose
// DPC queues a flush work item if the driver's "delayed" flag is set. Each
// append reschedules the flush (KeCancelTimer, KeSetTimer), a contract that
// a flush starts no earlier than one delay after the reschedule. When the
// timer has expired and its DPC is spinning for the driver's lock,
// KeCancelTimer returns FALSE; ignoring that, the old DPC consumes the new
// schedule (flushing at once) and the re-armed timer's DPC finds the flag
// clear: the rescheduled flush is lost. The fix notes the in-flight expiry
// so the re-armed timer still flushes.

var markZephyr51872RescheduledInFlight = model.NewMark("zephyr-51872: rescheduled while the old expiry was in flight")

func init() {
	model.Register(&model.Scenario{
		Name: "zephyr-51872",
		Doc: "A log driver reschedules a coalescing flush (KTIMER + DPC queueing a work item, gated by a " +
			"'delayed' flag) before each append. Ignoring KeCancelTimer's FALSE (the DPC already in flight) lets " +
			"the old DPC flush before the append and the re-armed timer's DPC find nothing to do: the last " +
			"record is never flushed. Report: github.com/zephyrproject-rtos/zephyr issue #51872 (fix: pull #54677).",
		Section: "report: zephyr #51872",
		Variants: []model.Variant{
			{Name: "correct", Doc: "#54677: a failed cancel is noticed and the re-armed timer still flushes"},
			{Name: "ignore-failed-cancel", Bug: true, Doc: "before #54677: the reschedule ignores that the cancel failed",
				Marks: []*model.Mark{markZephyr51872RescheduledInFlight}, Want: "rescheduled flush ran"},
		},
		Setup: setupZephyr51872,
	})
}

// flushLog is the driver's state: the records appended and flushed, the
// timer and its DPC, and the flags under the lock.
type flushLog struct {
	d        *driver
	lock     *kernel.KSPIN_LOCK
	timer    *kernel.KTIMER
	dpc      *kernel.KDPC
	delayed  bool // a flush is scheduled (zephyr's K_WORK_DELAYED)
	again    bool // the fix: an expiry was in flight when rescheduled
	written  *kernel.Cell
	flushed  *kernel.Cell
	inFlight int      // model-only: flushes queued and not yet done
	lastCall des.Time // model-only: when the last reschedule returned
	lastRun  des.Time // model-only: when the last flush started
}

const flushDelay = 20 * des.Microsecond

// reschedule is k_work_reschedule(flush, flushDelay).
func (l *flushLog) reschedule() {
	k := l.d.k
	old := k.KeAcquireSpinLock(l.lock)
	k.Compute(des.Microsecond) // account the record's size against the flush budget
	if l.delayed && !k.KeCancelTimer(l.timer) {
		l.d.env.Hit(markZephyr51872RescheduledInFlight)
		if l.d.env.Is("correct") {
			l.again = true
		}
	}
	l.delayed = true
	k.KeSetTimer(l.timer, flushDelay, l.dpc)
	l.lastCall = k.Now()
	k.KeReleaseSpinLock(l.lock, old)
}

// expire is the timer DPC: queue a flush if one is scheduled.
func (l *flushLog) expire(*kernel.KDPC, any, any, any) {
	k := l.d.k
	k.KeAcquireSpinLockAtDpcLevel(l.lock)
	run := l.delayed
	if l.again {
		l.again = false // the re-armed timer's expiry still flushes
	} else {
		l.delayed = false
	}
	k.KeReleaseSpinLockFromDpcLevel(l.lock)
	if !run {
		return
	}
	iw := l.d.sys.IoAllocateWorkItem(l.d.dev)
	if iw == nil {
		return
	}
	l.inFlight++
	l.d.sys.IoQueueWorkItem(iw, func(_ *queues.DEVICE_OBJECT, ctx any) {
		l.lastRun = k.Now()
		// Write out the records appended so far; flushes on two workers
		// may overlap, so the high-water mark only moves up.
		old := k.KeAcquireSpinLock(l.lock)
		if v := k.Read(l.written); v > k.Read(l.flushed) {
			k.Write(l.flushed, v)
		}
		k.KeReleaseSpinLock(l.lock, old)
		k.Compute(2 * des.Microsecond)
		l.inFlight--
		l.d.sys.IoFreeWorkItem(ctx.(*queues.IO_WORKITEM))
	}, queues.DelayedWorkQueue, iw)
}

func setupZephyr51872(env *model.Env) error {
	d, err := newDriver(env)
	if err != nil {
		return err
	}
	k := env.K
	l := &flushLog{d: d, lock: k.KeInitializeSpinLock("log lock"), timer: k.KeInitializeTimerEx("flush timer", kernel.NotificationEvent),
		written: k.NewCell("records written", 0), flushed: k.NewCell("records flushed", 0)}
	l.dpc = k.KeInitializeDpc("flush dpc", l.expire, nil)
	k.PsCreateSystemThread("logger", threadPriority, func() {
		d.load("logdrv")
		// Plainly the second record comes long after the first flush; or
		// just when its timer expires.
		think := []des.Duration{100 * des.Microsecond, flushDelay - 2*des.Microsecond, flushDelay - des.Microsecond, flushDelay}
		for i := range 2 {
			l.reschedule()
			k.InterlockedIncrement(l.written) // append the record
			if i == 0 {
				k.Compute(think[env.Choose("zephyr-51872: time to the next record", len(think))])
			}
		}
		k.KeDelayExecutionThread(4 * flushDelay) // the flush is due by then
		env.BeginDrain()
		k.KeDelayExecutionThread(4 * flushDelay)
	})
	env.AtEnd("rescheduled flush ran", func() error {
		if l.lastRun < l.lastCall.Add(flushDelay) {
			return errorf("last flush started at %v, before the last reschedule (%v) plus the delay: the rescheduled flush was lost", l.lastRun, l.lastCall)
		}
		return nil
	})
	return nil
}
