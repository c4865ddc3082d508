package drivers

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
)

// WaitAny is a driver's service thread that waits with
// KeWaitForMultipleObjects(WaitAny) on a stop event and a "data ready"
// synchronization event, with a timeout after which it polls the device
// anyway (the device may drop an interrupt). The status says which
// object was satisfied: STATUS_WAIT_0 + i, or STATUS_TIMEOUT. The bug
// indexes its table of handlers with status − STATUS_WAIT_0 without
// treating STATUS_TIMEOUT first: a timeout indexes far past the table.
var WaitAny = &model.Scenario{
	Name: "waitany",
	Doc: "A service thread waits WaitAny on (stop, data ready) with a timeout that means 'poll anyway'. The " +
		"bug dispatches on status − STATUS_WAIT_0 through a handler table without handling STATUS_TIMEOUT.",
	Section: "REFERENCE §4.8",
	Variants: []model.Variant{
		{Name: "correct", Doc: "STATUS_TIMEOUT handled first (poll), then the index"},
		{Name: "timeout-as-index", Bug: true, Doc: "handlers[status-STATUS_WAIT_0] with STATUS_TIMEOUT (0x102) as the status: index out of range",
			Want: "panic"},
	},
	Setup: waitAnySetup,
}

const waBatches = 3

// waDev2 is the device extension.
type waDev2 struct {
	env     *model.Env
	k       *kernel.Kernel
	stop    *kernel.KEVENT
	ready   *kernel.KEVENT
	pending *kernel.Cell // batches the device has posted, interlocked
	taken   int64        // service thread only
	polls   int
}

func waitAnySetup(env *model.Env) error {
	k := env.K
	d := &waDev2{env: env, k: k}
	d.stop = k.KeInitializeEvent("stop", kernel.NotificationEvent, false)
	d.ready = k.KeInitializeEvent("data ready", kernel.SynchronizationEvent, false)
	d.pending = k.NewCell("posted batches", 0)
	service := k.PsCreateSystemThread("service", 9, d.serve)
	k.PsCreateSystemThread("device", 8, func() {
		for range waBatches {
			// Plainly the device posts well within the poll interval; it
			// may be slow, or drop the "ready" signal.
			gaps := []des.Duration{3 * des.Microsecond, 25 * des.Microsecond}
			k.KeDelayExecutionThread(gaps[env.Choose("device gap", len(gaps))])
			k.InterlockedIncrement(d.pending)
			if env.Choose("signal dropped", 2) == 0 {
				k.KeSetEvent(d.ready, kernel.IO_NO_INCREMENT, false)
			}
		}
		k.KeDelayExecutionThread(60 * des.Microsecond) // the last poll
		env.BeginDrain()
		k.KeSetEvent(d.stop, kernel.IO_NO_INCREMENT, false)
		k.KeWaitForSingleObject(service.Object(), kernel.Infinite)
	})
	env.AtEnd("every batch taken", func() error {
		if d.taken != waBatches {
			return fmt.Errorf("%d of %d batches taken (%d polls)", d.taken, waBatches, d.polls)
		}
		return nil
	})
	return nil
}

// serve waits for stop, data or the poll interval.
func (d *waDev2) serve() {
	k := d.k
	objs := []kernel.Waitable{d.stop, d.ready}
	stopped := false
	handlers := []func(){
		// WaitAny reports the lowest index satisfied: with stop and data
		// both signalled it says "stop", so stopping drains what is left
		// (the first version of this driver did not, and wqsim found the
		// lost batch behind a stall).
		func() { stopped = true; d.drain() },
		d.drain,
	}
	for !stopped {
		st := k.KeWaitForMultipleObjects(objs, kernel.WaitAny, 20*des.Microsecond)
		if st == kernel.STATUS_TIMEOUT && d.env.Is("correct") {
			d.polls++
			d.drain()
			continue
		}
		handlers[st-kernel.STATUS_WAIT_0]()
	}
}

// drain takes every batch the device has posted.
func (d *waDev2) drain() {
	k := d.k
	for d.taken < k.Read(d.pending) {
		k.Compute(2 * des.Microsecond)
		d.taken++
	}
}
