package drivers

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
)

// tdpcstats: a network adapter's receive path. The interrupt queues an
// ordinary DPC that counts received frames into the adapter's statistics;
// a threaded DPC, queued by the same interrupt every fourth frame, folds
// the running counters into the totals the driver reports. Written for
// DISPATCH_LEVEL, the threaded DPC updates the shared counters without a
// lock: a DPC cannot be interrupted by another DPC on its processor. But a
// threaded DPC runs at PASSIVE_LEVEL in a thread, and an ordinary DPC does
// preempt it (REFERENCE §4.21): the receive DPC's increment can fall inside
// the threaded DPC's read-modify-write and is lost. With threaded DPCs
// disabled the same code is correct, which is how it passed its tests.
// The correct variant takes the statistics lock with KeAcquireSpinLockForDpc,
// which raises a threaded DPC to DISPATCH_LEVEL and leaves an ordinary one
// where it is; the receive DPC takes the same lock.

// TdpcStats is the scenario.
var TdpcStats = &model.Scenario{
	Name: "tdpcstats",
	Doc: "A NIC's receive DPC counts frames; a threaded DPC folds the counters into the reported totals with " +
		"a plain read and write, as if it ran at DISPATCH_LEVEL. Threaded, it runs at PASSIVE_LEVEL and the " +
		"receive DPC preempts it in the middle: a frame is lost from the totals.",
	Section: "REFERENCE §4.21",
	Variants: []model.Variant{
		{Name: "correct", Doc: "both DPCs take the statistics lock; the threaded one with KeAcquireSpinLockForDpc"},
		{Name: "assume-dispatch", Bug: true, Doc: "the threaded DPC folds the counters without the lock, relying on DISPATCH_LEVEL",
			Want: "invariant"},
	},
	Setup: setupTdpcStats,
}

const tdpcFrames = 8

type tdpcNic struct {
	env      *model.Env
	k        *kernel.Kernel
	lock     *kernel.KSPIN_LOCK
	arrived  *kernel.Cell // frames the ISR saw, not yet taken by the receive DPC (interlocked)
	pending  *kernel.Cell // frames received, not yet folded
	total    *kernel.Cell // frames folded into the reported totals
	rx       *kernel.KDPC
	fold     *kernel.KDPC
	received int
}

func setupTdpcStats(env *model.Env) error {
	k := env.K
	n := &tdpcNic{env: env, k: k,
		lock:    k.KeInitializeSpinLock("stats"),
		arrived: k.NewCell("arrived frames", 0),
		pending: k.NewCell("pending frames", 0),
		total:   k.NewCell("total frames", 0),
	}
	n.rx = k.KeInitializeDpc("rx", n.receive, nil)
	n.fold = k.KeInitializeThreadedDpc("fold stats", n.foldStats, nil)
	k.KeSetTargetProcessorDpc(n.fold, 0) // folds run where the receive DPC runs
	intr, err := k.IoConnectInterrupt("nic", 6, n.isr, nil)
	if err != nil {
		return err
	}
	// Frames arrive on processor 0, 4µs apart plainly, closer when the
	// workload decides (the wire does not promise a spacing).
	gaps := [...]des.Duration{4 * des.Microsecond, 2 * des.Microsecond, 1 * des.Microsecond}
	at := des.Time(5 * des.Microsecond)
	for i := 0; i < tdpcFrames; i++ {
		k.DeviceInterrupt(intr, 0, at)
		at += des.Time(gaps[env.Choose("frame gap", len(gaps))])
	}
	// A last fold after the traffic, so every frame should reach the totals.
	k.PsCreateSystemThread("stats reader", 8, func() {
		k.KeDelayExecutionThread(des.Duration(at) + 20*des.Microsecond)
		k.KeInsertQueueDpc(n.fold, nil, nil)
		k.KeFlushQueuedDpcs()
	})
	env.AtEnd("every frame folded into the totals", func() error {
		if got := n.total.Peek() + n.pending.Peek(); got != tdpcFrames {
			return fmt.Errorf("totals show %d of %d frames: a fold lost a receive DPC's count", got, tdpcFrames)
		}
		return nil
	})
	return nil
}

func (n *tdpcNic) isr(_ *kernel.KINTERRUPT, _ any) bool {
	n.received++
	n.k.InterlockedIncrement(n.arrived) // one DPC may stand for several interrupts
	n.k.KeInsertQueueDpc(n.rx, nil, nil)
	if n.received%4 == 0 {
		n.k.KeInsertQueueDpc(n.fold, nil, nil)
	}
	return true
}

// receive is the ordinary DPC: the frames that arrived become pending.
func (n *tdpcNic) receive(*kernel.KDPC, any, any, any) {
	k := n.k
	got := k.InterlockedExchange(n.arrived, 0)
	k.KeAcquireSpinLockAtDpcLevel(n.lock)
	k.Write(n.pending, k.Read(n.pending)+got)
	k.KeReleaseSpinLockFromDpcLevel(n.lock)
}

// foldStats is the threaded DPC: move what is pending into the totals.
func (n *tdpcNic) foldStats(*kernel.KDPC, any, any, any) {
	k := n.k
	if n.env.Is("assume-dispatch") {
		p := k.Read(n.pending)
		k.Write(n.total, k.Read(n.total)+p)
		k.Write(n.pending, 0)
		return
	}
	old := k.KeAcquireSpinLockForDpc(n.lock)
	p := k.Read(n.pending)
	k.Write(n.total, k.Read(n.total)+p)
	k.Write(n.pending, 0)
	k.KeReleaseSpinLockForDpc(n.lock, old)
}
