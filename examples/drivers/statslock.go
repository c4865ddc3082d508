package drivers

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
)

// StatsLock is a device's statistics shared by its interrupt's DPC and a
// passive-level reporting thread under one spin lock. The DPC runs at
// DISPATCH_LEVEL and takes the lock with KeAcquireSpinLockAtDpcLevel; the
// thread must raise IRQL with KeAcquireSpinLock, or a DPC on its
// processor could spin on the lock the thread holds (REFERENCE §4.6).
// The report buffer grows now and then; it must be allocated outside the
// lock, or from nonpaged pool, since paged pool needs IRQL ≤ APC_LEVEL
// (REFERENCE §4.9). Whether the buffer must grow is a workload decision,
// so the allocation bug hides on a path the natural run may not take.
var StatsLock = &model.Scenario{
	Name: "statslock",
	Doc: "A DPC and a passive-level reporting thread share a device's counters under a spin lock; the " +
		"report buffer sometimes grows. The bugs take the lock from the thread without raising IRQL, " +
		"or allocate the larger buffer from paged pool while holding the lock.",
	Section: "REFERENCE §4.6, §4.9",
	Variants: []model.Variant{
		{Name: "correct", Doc: "the thread uses KeAcquireSpinLock and allocates the larger buffer from paged pool before taking the lock"},
		{Name: "atdpc-from-passive", Bug: true, Doc: "the thread takes the lock with KeAcquireSpinLockAtDpcLevel at PASSIVE_LEVEL (Verifier 0xC4)",
			Want: "0xC4"},
		{Name: "atdpc-no-verifier", Bug: true, Doc: "the same without Driver Verifier: a DPC on the thread's processor spins on the lock the thread holds",
			Want: "deadlock|hang|0xA|0x133"},
		{Name: "paged-under-lock", Bug: true, Doc: "the thread allocates the larger report buffer from paged pool while holding the lock (Verifier 0xC4 P1=0x1)",
			Want: "0xC4|0xD1|0xA"},
	},
	Config: func(variant string) kernel.Config {
		c := model.ExploreConfig()
		if variant == "atdpc-no-verifier" {
			c.Verifier = false
		}
		return c
	},
	Setup: statsLockSetup,
}

const slInterrupts = 4

// slDev is the device extension.
type slDev struct {
	env      *model.Env
	k        *kernel.Kernel
	lock     *kernel.KSPIN_LOCK
	dpc      *kernel.KDPC
	intr     *kernel.KINTERRUPT
	pending  *kernel.Cell // interrupts the ISR saw, interlocked
	counted  int64        // under lock
	reported int64        // under lock
	report   *kernel.PoolBlock
	size     int
}

func statsLockSetup(env *model.Env) error {
	k := env.K
	d := &slDev{env: env, k: k, size: 64}
	k.PsCreateSystemThread("driver", 8, func() {
		d.lock = k.KeInitializeSpinLock("stats")
		d.pending = k.NewCell("isr count", 0)
		d.dpc = k.KeInitializeDpc("stats dpc", d.statsDpc, nil)
		intr, err := k.IoConnectInterrupt("stats", 5, func(*kernel.KINTERRUPT, any) bool {
			k.InterlockedIncrement(d.pending)
			k.KeInsertQueueDpc(d.dpc, nil, nil)
			return true
		}, nil)
		if err != nil {
			env.Violation("interrupt connects", "%v", err)
			return
		}
		d.intr = intr
		d.report = k.ExAllocatePoolWithTag(kernel.PagedPool, d.size, "Stat")
		at := k.Now()
		for range slInterrupts {
			at = at.Add(des.Duration(1+env.Choose("interrupt gap", 3)*3) * des.Microsecond)
			k.DeviceInterrupt(d.intr, env.Choose("interrupt cpu", 2), at)
		}
		for range 3 {
			k.KeDelayExecutionThread(des.Duration(2+env.Choose("report gap", 3)*3) * des.Microsecond)
			d.reportStats()
		}
		k.KeDelayExecutionThread(20 * des.Microsecond)
		env.BeginDrain()
		k.IoDisconnectInterrupt(d.intr)
		k.KeFlushQueuedDpcs()
		d.reportStats()
		k.ExFreePoolWithTag(d.report, "Stat")
	})
	env.AtEnd("every interrupt counted and reported", func() error {
		if d.counted != slInterrupts || d.reported != slInterrupts {
			return fmt.Errorf("%d interrupts: %d counted, %d reported", slInterrupts, d.counted, d.reported)
		}
		return nil
	})
	return nil
}

// statsDpc moves the ISR's count into the statistics at DISPATCH_LEVEL.
func (d *slDev) statsDpc(*kernel.KDPC, any, any, any) {
	k := d.k
	n := k.InterlockedExchange(d.pending, 0)
	k.KeAcquireSpinLockAtDpcLevel(d.lock)
	k.Compute(des.Microsecond)
	d.counted += n
	k.KeReleaseSpinLockFromDpcLevel(d.lock)
}

// reportStats copies the counters into the report buffer, growing it
// when the device says the report got larger.
func (d *slDev) reportStats() {
	k := d.k
	grow := d.env.Choose("report grows", 4) == 1
	var bigger *kernel.PoolBlock
	if grow && !d.env.Is("paged-under-lock") {
		bigger = k.ExAllocatePoolWithTag(kernel.PagedPool, 2*d.size, "Stat")
	}
	var old kernel.IRQL
	if d.atDpc() {
		k.KeAcquireSpinLockAtDpcLevel(d.lock)
	} else {
		old = k.KeAcquireSpinLock(d.lock)
	}
	if grow && d.env.Is("paged-under-lock") {
		bigger = k.ExAllocatePoolWithTag(kernel.PagedPool, 2*d.size, "Stat")
	}
	k.Compute(des.Microsecond)
	d.reported = d.counted
	if d.atDpc() {
		k.KeReleaseSpinLockFromDpcLevel(d.lock)
	} else {
		k.KeReleaseSpinLock(d.lock, old)
	}
	if bigger != nil {
		k.ExFreePoolWithTag(d.report, "Stat")
		d.report = bigger
		d.size *= 2
	}
}

// atDpc tells whether this variant takes the lock without raising IRQL.
func (d *slDev) atDpc() bool { return d.env.Is("atdpc-from-passive") || d.env.Is("atdpc-no-verifier") }
