package drivers

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
)

// dpccount: a device interrupts on both processors; each ISR counts the
// interrupt in an interlocked "pending" word and queues the one KDPC of the
// device to the processor it runs on. The DPC moves what is pending into the
// driver's running total. A KDPC is taken off its queue before its routine
// runs, so while the routine runs on cpu0 an interrupt on cpu1 can queue the
// same DPC there and the routine runs on both processors at once (REFERENCE
// §4.8). The total is then a shared word like any other.

var markDpcOverlap = model.NewMark("dpccount: the DPC routine entered on a second processor while updating the total")

// DpcCount is the scenario.
var DpcCount = &model.Scenario{
	Name: "dpccount",
	Doc: "One KDPC queued by ISRs on two processors: the routine can run on both at once " +
		"(it leaves the queue before it runs), so its update of the driver's total needs a spin lock; " +
		"the buggy variant adds with a plain read and write and loses interrupts.",
	Section: "§4.8",
	Variants: []model.Variant{
		{Name: "correct", Doc: "the DPC adds to the total under a spin lock taken at DISPATCH_LEVEL"},
		{Name: "plain-total", Bug: true, Doc: "the DPC adds to the total with a plain read and write",
			Marks: []*model.Mark{markDpcOverlap}, Want: "invariant"},
	},
	Setup: setupDpcCount,
}

// dpcCountInterrupts is how many interrupts each processor takes.
const dpcCountInterrupts = 3

type dpcCountDev struct {
	env     *model.Env
	pending *kernel.Cell // interrupts not yet added to total (interlocked)
	total   *kernel.Cell // interrupts handled
	lock    *kernel.KSPIN_LOCK
	dpc     *kernel.KDPC
	inside  int // DPC routines between reading and writing total (plain Go: bookkeeping for the mark)
}

func setupDpcCount(env *model.Env) error {
	k := env.K
	d := &dpcCountDev{env: env,
		pending: k.NewCell("pending", 0),
		total:   k.NewCell("total", 0),
		lock:    k.KeInitializeSpinLock("total lock"),
	}
	d.dpc = k.KeInitializeDpc("count dpc", d.dpcRoutine, nil)
	intr, err := k.IoConnectInterrupt("dev", 5, d.isr, nil)
	if err != nil {
		return err
	}
	// The device fires on both processors, every 20µs on cpu0 and some
	// microseconds later on cpu1: 7µs in the natural run, where the DPCs do
	// not overlap, and less when the workload decides so (the device does
	// not promise any spacing).
	lags := [...]des.Duration{7 * des.Microsecond, 3 * des.Microsecond, 1 * des.Microsecond}
	for i := 0; i < dpcCountInterrupts; i++ {
		at := des.Time(10*des.Microsecond) + des.Time(i)*des.Time(20*des.Microsecond)
		k.DeviceInterrupt(intr, 0, at)
		lag := lags[env.Choose("cpu1 interrupt lag", len(lags))]
		k.DeviceInterrupt(intr, 1, at+des.Time(lag))
	}
	env.AtEnd("every interrupt counted", func() error {
		if got, want := d.total.Peek(), int64(2*dpcCountInterrupts); got != want {
			return fmt.Errorf("total is %d after %d interrupts: an update was lost", got, want)
		}
		return nil
	})
	return nil
}

func (d *dpcCountDev) isr(_ *kernel.KINTERRUPT, _ any) bool {
	k := d.env.K
	k.InterlockedIncrement(d.pending)
	k.KeInsertQueueDpc(d.dpc, nil, nil)
	return true
}

func (d *dpcCountDev) dpcRoutine(_ *kernel.KDPC, _, _, _ any) {
	k := d.env.K
	n := k.InterlockedExchange(d.pending, 0)
	if n == 0 {
		return // an earlier run took this interrupt's count
	}
	if d.env.Is("correct") {
		k.KeAcquireSpinLockAtDpcLevel(d.lock)
		d.add(n)
		k.KeReleaseSpinLockFromDpcLevel(d.lock)
		return
	}
	d.add(n)
}

// add is the read-modify-write of the total.
func (d *dpcCountDev) add(n int64) {
	k := d.env.K
	if d.inside > 0 {
		d.env.Hit(markDpcOverlap)
	}
	d.inside++
	t := k.Read(d.total)
	k.Compute(2 * des.Microsecond)
	k.Write(d.total, t+n)
	d.inside--
}
