package drivers

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
)

// LockOrder is a device with two spin locks: one for its request queue
// and one for its statistics. The interrupt's DPC takes the queue lock,
// then the statistics lock; a passive-level maintenance thread needs both
// too. Every path must take them in one order: a DPC on one processor
// holding the queue lock and a thread on the other holding the statistics
// lock spin on each other for ever (REFERENCE §4.6). The bug's thread
// takes them in the opposite order.
var LockOrder = &model.Scenario{
	Name: "lockorder",
	Doc: "A DPC and a passive-level thread each take a device's queue and statistics spin locks. The " +
		"bug's thread takes them in the opposite order: on two processors both spin for ever.",
	Section: "REFERENCE §4.6",
	Variants: []model.Variant{
		{Name: "correct", Doc: "both take the queue lock, then the statistics lock"},
		{Name: "reversed", Bug: true, Doc: "the thread takes the statistics lock first, then the queue lock",
			Want: "deadlock|hang|livelock"},
	},
	Setup: lockOrderSetup,
}

const loInterrupts = 4

// loDev is the device extension.
type loDev struct {
	env          *model.Env
	k            *kernel.Kernel
	queue, stats *kernel.KSPIN_LOCK
	dpc          *kernel.KDPC
	intr         *kernel.KINTERRUPT
	isr          *kernel.Cell
	queued       int64 // under queue
	counted      int64 // under stats
	trimmed      int   // under both
}

func lockOrderSetup(env *model.Env) error {
	k := env.K
	d := &loDev{env: env, k: k}
	k.PsCreateSystemThread("driver", 8, func() {
		d.queue = k.KeInitializeSpinLock("queue")
		d.stats = k.KeInitializeSpinLock("stats")
		d.isr = k.NewCell("isr count", 0)
		d.dpc = k.KeInitializeDpc("device dpc", d.deviceDpc, nil)
		intr, err := k.IoConnectInterrupt("device", 5, func(*kernel.KINTERRUPT, any) bool {
			k.InterlockedIncrement(d.isr)
			k.KeInsertQueueDpc(d.dpc, nil, nil)
			return true
		}, nil)
		if err != nil {
			env.Violation("interrupt connects", "%v", err)
			return
		}
		d.intr = intr
		at := k.Now()
		for range loInterrupts {
			at = at.Add(des.Duration(1+env.Choose("interrupt gap", 3)*2) * des.Microsecond)
			k.DeviceInterrupt(d.intr, env.Choose("interrupt cpu", 2), at)
		}
		for range 3 {
			k.KeDelayExecutionThread(des.Duration(1+env.Choose("trim gap", 3)*2) * des.Microsecond)
			d.trim()
		}
		k.KeDelayExecutionThread(20 * des.Microsecond)
		env.BeginDrain()
		k.IoDisconnectInterrupt(d.intr)
		k.KeFlushQueuedDpcs()
	})
	env.AtEnd("every interrupt queued and counted", func() error {
		if d.queued != loInterrupts || d.counted != loInterrupts || d.trimmed != 3 {
			return fmt.Errorf("%d interrupts: %d queued, %d counted, %d trims", loInterrupts, d.queued, d.counted, d.trimmed)
		}
		return nil
	})
	return nil
}

// deviceDpc queues the ISR's work and accounts it.
func (d *loDev) deviceDpc(*kernel.KDPC, any, any, any) {
	k := d.k
	n := k.InterlockedExchange(d.isr, 0)
	k.KeAcquireSpinLockAtDpcLevel(d.queue)
	d.queued += n
	k.Compute(des.Microsecond)
	k.KeAcquireSpinLockAtDpcLevel(d.stats)
	d.counted += n
	k.KeReleaseSpinLockFromDpcLevel(d.stats)
	k.KeReleaseSpinLockFromDpcLevel(d.queue)
}

// trim is the maintenance pass: it needs both locks.
func (d *loDev) trim() {
	k := d.k
	first, second := d.queue, d.stats
	if d.env.Is("reversed") {
		first, second = d.stats, d.queue
	}
	old := k.KeAcquireSpinLock(first)
	k.Compute(des.Microsecond)
	k.KeAcquireSpinLockAtDpcLevel(second)
	d.trimmed++
	k.KeReleaseSpinLockFromDpcLevel(second)
	k.KeReleaseSpinLock(first, old)
}
