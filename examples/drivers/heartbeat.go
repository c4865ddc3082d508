package drivers

import (
	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/queues"
)

// Heartbeat is a device driver with a periodic heartbeat timer whose DPC
// samples how many requests are in flight (statistics kept in the device
// extension). Two request threads each finish one request and decrement the
// in-flight count; the one that brings it to zero sets the idle event.
// Unload waits for idle, then cancels the timer and flushes DPCs
// (REFERENCE §4.8, §6.8). The bug decrements with a plain read and write:
// two completions that interleave lose a decrement, idle is never set and
// unload waits for ever while the heartbeat keeps firing. The event queue
// never empties, so the hang is decided by the stalled-timer rule
// (kernel.Config.HangTimerPeriods) instead of running into the step budget.
var Heartbeat = &model.Scenario{
	Name: "heartbeat",
	Doc: "A periodic heartbeat timer samples the requests in flight; unload waits for the last completion to " +
		"set idle, then cancels the timer and flushes DPCs. The bug's unlocked decrement loses a completion: " +
		"unload waits for ever while the heartbeat keeps firing.",
	Section: "REFERENCE §4.8, §6.8",
	Variants: []model.Variant{
		{Name: "correct", Doc: "InterlockedDecrement: the last completion sees zero and sets idle"},
		{Name: "racy-decrement", Bug: true, Doc: "a plain read then write: two completions both see 1 left, idle is never set",
			Want: "hang"},
	},
	Setup: heartbeatSetup,
}

const (
	hbPeriod   = 10 * des.Microsecond // the heartbeat
	hbRequests = 2
)

// hbExt is the device extension.
type hbExt struct {
	env      *model.Env
	k        *kernel.Kernel
	inflight *kernel.Cell
	idle     *kernel.KEVENT
	timer    *kernel.KTIMER
	dpc      *kernel.KDPC
	beats    int   // heartbeats seen, only the DPC's
	peak     int64 // most requests seen in flight, only the DPC's
}

func heartbeatSetup(env *model.Env) error {
	k := env.K
	sys, err := queues.NewSystem(k, queues.DefaultPoolConfig())
	if err != nil {
		return err
	}
	x := &hbExt{env: env, k: k}
	k.PsCreateSystemThread("scm", 8, func() {
		drv, st := sys.LoadDriver("heartbeat", x.driverEntry)
		if st != kernel.STATUS_SUCCESS {
			env.Violation("driver loads", "%v", st)
			return
		}
		k.Write(x.inflight, hbRequests)
		for i := range hbRequests {
			d := des.Duration(2+env.Choose("request work", 3)) * des.Microsecond
			k.PsCreateSystemThread([]string{"request0", "request1"}[i], 8, func() {
				k.Compute(d)
				x.complete()
			})
		}
		k.KeWaitForSingleObject(x.idle, kernel.Infinite)
		env.BeginDrain()
		sys.UnloadDriver(drv)
	})
	return nil
}

func (x *hbExt) driverEntry(d *queues.DRIVER_OBJECT) kernel.NTSTATUS {
	k := x.k
	x.inflight = k.NewCell("in flight", 0)
	x.idle = k.KeInitializeEvent("idle", kernel.NotificationEvent, false)
	x.timer = k.KeInitializeTimer("heartbeat")
	x.dpc = d.KeInitializeDpc("heartbeat", x.heartbeat, nil)
	k.KeSetTimerEx(x.timer, hbPeriod, hbPeriod, x.dpc)
	d.DriverUnload = x.unload
	return kernel.STATUS_SUCCESS
}

// heartbeat is the timer's DPC: it reads the in-flight count for the
// driver's statistics and changes nothing the kernel sees.
func (x *hbExt) heartbeat(*kernel.KDPC, any, any, any) {
	x.beats++
	x.peak = max(x.peak, x.k.Read(x.inflight))
}

// complete ends one request; the last one sets idle.
func (x *hbExt) complete() {
	k := x.k
	var left int64
	if x.env.Is("racy-decrement") {
		left = k.Read(x.inflight) - 1
		k.Write(x.inflight, left)
	} else {
		left = k.InterlockedDecrement(x.inflight)
	}
	if left == 0 {
		k.KeSetEvent(x.idle, kernel.IO_NO_INCREMENT, false)
	}
}

// unload stops the heartbeat: cancel the timer, then wait out a DPC already
// queued or running (§6.8).
func (x *hbExt) unload(*queues.DRIVER_OBJECT) {
	k := x.k
	k.KeCancelTimer(x.timer)
	k.KeFlushQueuedDpcs()
}
