package drivers

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/queues/fltmgr"
)

// readtimeout: a minifilter reads its metadata file with reads of its own
// (FltAllocateCallbackData, FltPerformAsynchronousIo) and gives each read
// a deadline: a KTIMER whose DPC cancels the read with FltCancelIo if it has
// not completed by then (REFERENCE §5.9). The completion callback runs
// wherever the file system completes the read — inline, in its DPC on
// another processor, or inside FltCancelIo when the cancel completes it at
// once — and the callback data must outlive both the callback and any
// FltCancelIo still to come.
//
// A KeCancelTimer that returns FALSE does not mean the DPC will not run: it
// may be queued or running on another processor (REFERENCE §4.8). So the
// correct filter counts two references on each read, one for the callback
// and one for the timer; the callback drops the timer's too when
// KeCancelTimer took the timer out of the queue, and whoever drops the last
// frees the data. The bug frees the data in the callback after
// KeCancelTimer whatever it returned: a timeout DPC that had already fired
// cancels freed callback data (0xD5).

var markRtDpcAfterFree = model.NewMark("readtimeout: a timeout DPC cancelled a read whose callback had run")

// ReadTimeout is the scenario.
var ReadTimeout = &model.Scenario{
	Name: "readtimeout",
	Doc: "A minifilter's own metadata reads (FltPerformAsynchronousIo) each carry a deadline timer whose DPC " +
		"cancels the read with FltCancelIo. The bug frees the callback data in the completion callback after " +
		"KeCancelTimer, whatever it returned: a timeout DPC already fired cancels freed data (0xD5).",
	Section: "REFERENCE §4.8, §5.9",
	Variants: []model.Variant{
		{Name: "correct", Doc: "two references per read (callback, timer); the callback drops the timer's when KeCancelTimer returns TRUE; the last one frees the data"},
		{Name: "trust-cancel-timer", Bug: true, Doc: "the callback calls KeCancelTimer and frees the callback data whatever it returned",
			Marks: []*model.Mark{markRtDpcAfterFree}, Want: "0xD5"},
	},
	Setup: setupReadTimeout,
}

const (
	rtReads   = 3
	rtLatency = 40 * des.Microsecond
)

// rtRead is one metadata read in flight.
type rtRead struct {
	data     *fltmgr.FLT_CALLBACK_DATA
	refs     *kernel.Cell // the callback's and the timer's
	timer    *kernel.KTIMER
	dpc      *kernel.KDPC
	done     *kernel.KEVENT // set when the data is freed
	finished bool           // the callback ran (bookkeeping for the mark)
}

type readTimeout struct {
	env      *model.Env
	k        *kernel.Kernel
	fm       *fltmgr.FilterManager
	timedOut int
}

func setupReadTimeout(env *model.Env) error {
	mf, err := model.NewMinifilter(env)
	if err != nil {
		return err
	}
	k := env.K
	d := &readTimeout{env: env, k: k, fm: mf.FM}
	if err := mf.Register("mdread", 371000, &fltmgr.FLT_REGISTRATION{}); err != nil {
		return err
	}
	mf.Volume.Latency = rtLatency
	// A disk file system's pended read is not cancellable; a redirector's
	// is (REFERENCE §5.9).
	mf.Volume.CancelPendedIo = env.Choose("cancellable reads", 2) == 1
	k.PsCreateSystemThread("metadata", 8, func() {
		mf.StartFiltering()
		inst := mf.Filter.Instances()[0]
		for i := range rtReads {
			d.read(inst, i)
		}
		env.BeginDrain()
		k.KeFlushQueuedDpcs()
		mf.Unload()
	})
	return nil
}

// read sends one metadata read with a deadline and waits until its data
// is freed.
func (d *readTimeout) read(inst *fltmgr.FLT_INSTANCE, i int) {
	k, fm := d.k, d.fm
	var data *fltmgr.FLT_CALLBACK_DATA
	if fm.FltAllocateCallbackData(inst, nil, &data) != kernel.STATUS_SUCCESS {
		return
	}
	data.Iopb.MajorFunction = fltmgr.IRP_MJ_READ
	data.Iopb.Parameters.Length = 4096
	r := &rtRead{data: data, refs: k.NewCell(fmt.Sprintf("read%d refs", i), 2),
		timer: k.KeInitializeTimer(fmt.Sprintf("read%d deadline", i)),
		done:  k.KeInitializeEvent(fmt.Sprintf("read%d freed", i), kernel.NotificationEvent, false)}
	r.dpc = k.KeInitializeDpc(fmt.Sprintf("read%d timeout dpc", i), d.timeout, r)
	k.KeSetTargetProcessorDpc(r.dpc, d.env.Choose("timeout dpc cpu", 2))
	// The deadline is usually generous; a loaded disk makes it tight.
	deadline := []des.Duration{100, 45, 40, 35}[d.env.Choose("deadline", 4)] * des.Microsecond
	k.KeSetTimer(r.timer, deadline, r.dpc)
	fm.FltPerformAsynchronousIo(data, d.readDone, r)
	k.KeWaitForSingleObject(r.done, kernel.Infinite)
}

// readDone is the completion callback: any thread, IRQL ≤ DISPATCH_LEVEL.
func (d *readTimeout) readDone(data *fltmgr.FLT_CALLBACK_DATA, ctx any) {
	k := d.k
	r := ctx.(*rtRead)
	r.finished = true
	if d.env.Is("trust-cancel-timer") {
		k.KeCancelTimer(r.timer) // the bug: FALSE means the DPC may still run
		d.fm.FltFreeCallbackData(data)
		k.KeSetEvent(r.done, kernel.IO_NO_INCREMENT, false)
		return
	}
	if k.KeCancelTimer(r.timer) {
		d.release(r) // the DPC will not run: its reference is ours to drop
	}
	d.release(r)
}

// timeout is the deadline DPC: cancel the read if it is still in flight.
func (d *readTimeout) timeout(_ *kernel.KDPC, ctx, _, _ any) {
	r := ctx.(*rtRead)
	if r.finished {
		d.env.Hit(markRtDpcAfterFree)
	}
	d.timedOut++
	d.fm.FltCancelIo(r.data)
	if !d.env.Is("trust-cancel-timer") {
		d.release(r)
	}
}

// release drops one reference on r; the last frees the callback data.
func (d *readTimeout) release(r *rtRead) {
	if d.k.InterlockedDecrement(r.refs) == 0 {
		d.fm.FltFreeCallbackData(r.data)
		d.k.KeSetEvent(r.done, kernel.IO_NO_INCREMENT, false)
	}
}
