package drivers

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
)

// batchtimer: a device's DPC counts arrivals under a spin lock and sets a
// "data" event at DISPATCH_LEVEL; a batching thread waits with WaitAll for
// both a periodic synchronization timer (at most one batch per period) and
// the event, then takes everything that arrived. A satisfied WaitAll
// consumes every synchronization object of the wait at once, and only when
// all are signalled together (REFERENCE §4.8): an event set between two
// ticks stays set until the next one. The bug makes the event a
// notification event that the thread clears after taking the batch: an
// arrival whose DPC sets the event between the take and the clear is
// stranded, and the thread waits for ever while the timer keeps ticking.
//
// The ISR counts each arrival (an interlocked word) and the DPC moves the
// count into the batch: an ISR that finds the DPC still queued queues it no
// second time (KeInsertQueueDpc returns FALSE, REFERENCE §4.8), so a DPC
// delayed past the next interrupt (a stall at DISPATCH_LEVEL, §9) serves
// two arrivals and must not count one per run.

var markBatchStranded = model.NewMark("batchtimer: an arrival set the event between the batch's take and its KeClearEvent")

// BatchTimer is the scenario.
var BatchTimer = &model.Scenario{
	Name: "batchtimer",
	Doc: "A batching thread waits WaitAll on a periodic synchronization timer and a data event that a DPC sets " +
		"at DISPATCH_LEVEL. The bug uses a notification event cleared after the batch is taken: an arrival in " +
		"between is never seen and the thread hangs while the timer ticks.",
	Section: "§4.8",
	Variants: []model.Variant{
		{Name: "correct", Doc: "the data event is a synchronization event: the WaitAll that returns consumes it with the tick"},
		{Name: "clear-after-take", Bug: true, Doc: "a notification event cleared with KeClearEvent after the batch is taken",
			Marks: []*model.Mark{markBatchStranded}, Want: "hang|deadlock"},
	},
	Setup: setupBatchTimer,
}

const (
	batchArrivals = 4
	batchPeriod   = 10 * des.Microsecond
)

type batchDev struct {
	env     *model.Env
	k       *kernel.Kernel
	lock    *kernel.KSPIN_LOCK
	pending int // arrivals not yet taken; under lock
	data    *kernel.KEVENT
	tick    *kernel.KTIMER
	dpc     *kernel.KDPC
	taking  bool // clear-after-take: between the take and the clear (bookkeeping for the mark)
	taken   *kernel.Cell
	arrived *kernel.Cell // arrivals the ISR counted and no DPC moved yet (interlocked)
}

func setupBatchTimer(env *model.Env) error {
	k := env.K
	typ := kernel.SynchronizationEvent
	if env.Is("clear-after-take") {
		typ = kernel.NotificationEvent
	}
	d := &batchDev{env: env, k: k,
		lock:    k.KeInitializeSpinLock("arrivals lock"),
		data:    k.KeInitializeEvent("data", typ, false),
		tick:    k.KeInitializeTimerEx("batch tick", kernel.SynchronizationTimer),
		taken:   k.NewCell("taken", 0),
		arrived: k.NewCell("arrived", 0),
	}
	d.dpc = k.KeInitializeDpc("arrival", d.arrival, nil)
	intr, err := k.IoConnectInterrupt("dev", 5, func(*kernel.KINTERRUPT, any) bool {
		k.InterlockedIncrement(d.arrived)
		k.KeInsertQueueDpc(d.dpc, nil, nil)
		return true
	}, nil)
	if err != nil {
		return err
	}
	for i := 0; i < batchArrivals; i++ {
		k.DeviceInterrupt(intr, 1, des.Time(15*des.Microsecond)+des.Time(i)*des.Time(17*des.Microsecond))
	}
	k.PsCreateSystemThread("batcher", 9, d.batcher)
	env.AtEnd("every arrival taken", func() error {
		if got := d.taken.Peek(); got != batchArrivals {
			return fmt.Errorf("%d of %d arrivals taken", got, batchArrivals)
		}
		return nil
	})
	return nil
}

// arrival is the device's DPC.
func (d *batchDev) arrival(_ *kernel.KDPC, _, _, _ any) {
	k := d.k
	n := k.InterlockedExchange(d.arrived, 0)
	if n == 0 {
		return // an earlier run of this DPC took the arrival
	}
	k.KeAcquireSpinLockAtDpcLevel(d.lock)
	d.pending += int(n)
	k.KeReleaseSpinLockFromDpcLevel(d.lock)
	if d.taking {
		d.env.Hit(markBatchStranded)
	}
	k.KeSetEvent(d.data, kernel.IO_NO_INCREMENT, false)
}

func (d *batchDev) batcher() {
	k := d.k
	k.KeSetTimerEx(d.tick, batchPeriod, batchPeriod, nil)
	for k.Read(d.taken) < batchArrivals {
		k.KeWaitForMultipleObjects([]kernel.Waitable{d.tick, d.data}, kernel.WaitAll, kernel.Infinite)
		old := k.KeAcquireSpinLock(d.lock)
		n := d.pending
		d.pending = 0
		k.KeReleaseSpinLock(d.lock, old)
		if d.env.Is("clear-after-take") {
			d.taking = true
			k.Compute(1 * des.Microsecond) // hand the batch on
			k.KeClearEvent(d.data)
			d.taking = false
		} else {
			k.Compute(1 * des.Microsecond)
		}
		k.Write(d.taken, k.Read(d.taken)+int64(n))
	}
	k.KeCancelTimer(d.tick)
}
