package drivers

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/queues"
)

// rsscount: a NIC with one receive queue per processor (receive-side
// scaling). The ISR, on whichever processor the interrupt lands, counts the
// frames of each queue in an interlocked word and queues that queue's DPC,
// which KeSetTargetProcessorDpc ties to the queue's processor and
// KeSetImportanceDpc makes HighImportance, so it runs there at once
// (REFERENCE §4.8). Statistics are per processor and take no lock: a slot
// is written only on its own processor at DISPATCH_LEVEL, where nothing
// else runs there (REFERENCE §4.5). The transmit threads count the frames
// they send in the slot of the processor they run on, so they raise to
// DISPATCH_LEVEL with KeRaiseIrql before they ask which processor that is,
// and lower with KeLowerIrql afterwards; a statistics reset moves to each
// processor in turn (KeSetSystemAffinityThreadEx, REFERENCE §4.7) and
// raises there.
//
// The bugs: a transmit thread that updates its slot at PASSIVE_LEVEL is
// interrupted between read and write by the receive DPC on its own
// processor; one that reads the processor number before raising may have
// been moved to the other processor by then; a reset that only raises,
// without moving, zeroes another processor's slot while its DPC is adding
// to it. Each loses frames.

// RssCount is the scenario.
var RssCount = &model.Scenario{
	Name: "rsscount",
	Doc: "Per-processor receive DPCs (KeSetTargetProcessorDpc, KeSetImportanceDpc) and transmit threads share " +
		"lock-free per-processor statistics; the threads update their processor's slot between KeRaiseIrql and " +
		"KeLowerIrql, a reset visits each processor with KeSetSystemAffinityThreadEx. The bugs update at " +
		"PASSIVE_LEVEL, read the processor number before raising, or reset a slot from another processor.",
	Section: "REFERENCE §4.5, §4.7, §4.8",
	Variants: []model.Variant{
		{Name: "correct", Doc: "KeRaiseIrql(DISPATCH_LEVEL), then KeGetCurrentProcessorNumber and the update, then KeLowerIrql; the reset runs on each slot's processor"},
		{Name: "no-raise", Bug: true, Doc: "the transmit threads update their processor's slot at PASSIVE_LEVEL: the receive DPC on that processor runs between read and write",
			Want: "invariant every frame counted"},
		{Name: "cpu-before-raise", Bug: true, Doc: "the transmit threads read KeGetCurrentProcessorNumber before KeRaiseIrql: moved in between, they update the other processor's slot beside its DPC",
			Want: "invariant every frame counted"},
		{Name: "reset-anywhere", Bug: true, Doc: "the reset raises to DISPATCH_LEVEL but does not move to the slot's processor: it zeroes a slot while that processor's DPC adds to it",
			Want: "invariant every frame counted"},
	},
	Setup: setupRssCount,
}

const (
	rsInterrupts = 4 // per processor
	rsSends      = 3 // per transmit thread
)

// rssSlot is one processor's statistics: frames handled there, received
// or sent, written only on that processor at DISPATCH_LEVEL.
type rssSlot struct {
	frames *kernel.Cell
}

type rssNic struct {
	env       *model.Env
	k         *kernel.Kernel
	sys       *queues.System
	dev       *queues.DEVICE_OBJECT
	intr      *kernel.KINTERRUPT
	ncpu      int
	dpcs      []*kernel.KDPC
	pending   []*kernel.Cell // frames the ISR saw per queue, interlocked
	slots     []rssSlot
	senders   []*kernel.Thread
	resetter  *kernel.Thread
	harvested int64 // taken by the resets (the statistics IOCTL reports it)
	// workload bookkeeping (plain Go)
	received, sent int64
}

func setupRssCount(env *model.Env) error {
	k := env.K
	sys, err := queues.NewSystem(k, queues.DefaultPoolConfig())
	if err != nil {
		return err
	}
	x := &rssNic{env: env, k: k, sys: sys}
	k.PsCreateSystemThread("scm", 8, func() {
		drv, st := sys.LoadDriver("rssnic", x.driverEntry)
		if st != kernel.STATUS_SUCCESS {
			env.Violation("driver loads", "%v", st)
			return
		}
		// The NIC interrupts on both processors; each interrupt brings
		// frames for one receive queue, not necessarily the processor's.
		at := k.Now()
		for range rsInterrupts * x.ncpu {
			at = at.Add(des.Duration(3+3*env.Choose("interrupt gap", 3)) * des.Microsecond)
			k.DeviceInterrupt(x.intr, env.Choose("interrupt cpu", x.ncpu), at)
		}
		for _, t := range x.senders {
			k.KeWaitForSingleObject(t.Object(), kernel.Infinite)
		}
		k.KeWaitForSingleObject(x.resetter.Object(), kernel.Infinite)
		k.KeDelayExecutionThread(100 * des.Microsecond)
		env.BeginDrain()
		sys.UnloadDriver(drv)
	})
	env.AtEnd("every frame counted", func() error {
		n := x.harvested
		for _, s := range x.slots {
			n += s.frames.Peek()
		}
		if n != x.received+x.sent {
			return fmt.Errorf("%d frames received and %d sent, %d counted (%d taken by resets, the rest in the per-processor slots)",
				x.received, x.sent, n, x.harvested)
		}
		return nil
	})
	return nil
}

func (x *rssNic) driverEntry(d *queues.DRIVER_OBJECT) kernel.NTSTATUS {
	k := x.k
	dev, st := x.sys.IoCreateDevice(d, "nic0")
	if st != kernel.STATUS_SUCCESS {
		return st
	}
	x.dev = dev
	x.ncpu, _ = k.KeQueryActiveProcessorCount()
	for i := range x.ncpu {
		dpc := k.KeInitializeDpc(fmt.Sprintf("rx dpc %d", i), x.rxDpc, i)
		k.KeSetTargetProcessorDpc(dpc, i)
		k.KeSetImportanceDpc(dpc, kernel.HighImportance)
		x.dpcs = append(x.dpcs, dpc)
		x.pending = append(x.pending, k.NewCell(fmt.Sprintf("rx pending %d", i), 0))
		x.slots = append(x.slots, rssSlot{frames: k.NewCell(fmt.Sprintf("frames cpu%d", i), 0)})
	}
	intr, err := k.IoConnectInterrupt("nic", 6, x.isr, nil)
	if err != nil {
		x.sys.IoDeleteDevice(dev)
		return kernel.STATUS_INSUFFICIENT_RESOURCES
	}
	x.intr = intr
	for i := range 2 {
		x.senders = append(x.senders, k.PsCreateSystemThread(fmt.Sprintf("tx%d", i), 8, x.send))
	}
	x.resetter = k.PsCreateSystemThread("reset", 8, x.resetLoop)
	d.DriverUnload = x.unload
	return kernel.STATUS_SUCCESS
}

// isr takes one frame off the ring and hands it to its queue's DPC.
func (x *rssNic) isr(*kernel.KINTERRUPT, any) bool {
	k := x.k
	q := x.env.Choose("rss queue", x.ncpu)
	x.received++
	k.InterlockedIncrement(x.pending[q])
	k.KeInsertQueueDpc(x.dpcs[q], nil, nil)
	return true
}

// rxDpc runs on its queue's processor and adds the frames to that
// processor's slot.
func (x *rssNic) rxDpc(_ *kernel.KDPC, ctx, _, _ any) {
	k := x.k
	q := ctx.(int)
	if cpu := k.KeGetCurrentProcessorNumber(); cpu != q {
		x.env.Violation("a receive DPC runs on its queue's processor", "rx dpc %d runs on cpu%d", q, cpu)
	}
	n := k.InterlockedExchange(x.pending[q], 0)
	if n == 0 {
		return
	}
	s := x.slots[q]
	v := k.Read(s.frames)
	k.Compute(des.Microsecond) // indicate the frames up the stack
	k.Write(s.frames, v+n)
}

// send transmits a few frames and counts each in its processor's slot.
func (x *rssNic) send() {
	k := x.k
	for range rsSends {
		k.KeDelayExecutionThread(des.Duration(2+3*x.env.Choose("send gap", 3)) * des.Microsecond)
		x.sendFrame()
	}
}

// sendFrame builds and posts one frame, then counts it.
func (x *rssNic) sendFrame() {
	k := x.k
	switch {
	case x.env.Is("no-raise"):
		k.Compute(des.Microsecond) // build and post the frame
		x.sent++
		s := x.slots[k.KeGetCurrentProcessorNumber()]
		v := k.Read(s.frames)
		k.Write(s.frames, v+1)
	case x.env.Is("cpu-before-raise"):
		s := x.slots[k.KeGetCurrentProcessorNumber()] // this processor's statistics
		k.Compute(des.Microsecond)                    // build and post the frame
		x.sent++
		old := k.KeRaiseIrql(kernel.DISPATCH_LEVEL)
		v := k.Read(s.frames)
		k.Write(s.frames, v+1)
		k.KeLowerIrql(old)
	default:
		k.Compute(des.Microsecond) // build and post the frame
		x.sent++
		old := k.KeRaiseIrql(kernel.DISPATCH_LEVEL)
		s := x.slots[k.KeGetCurrentProcessorNumber()]
		v := k.Read(s.frames)
		k.Write(s.frames, v+1)
		k.KeLowerIrql(old)
	}
}

// resetLoop resets the statistics twice while traffic flows, keeping
// what it took (the statistics IOCTL would report it).
func (x *rssNic) resetLoop() {
	k := x.k
	for range 2 {
		k.KeDelayExecutionThread(des.Duration(5+5*x.env.Choose("reset gap", 3)) * des.Microsecond)
		x.reset()
	}
}

func (x *rssNic) reset() {
	k := x.k
	for i := range x.ncpu {
		var prev kernel.KAFFINITY
		if !x.env.Is("reset-anywhere") {
			prev = k.KeSetSystemAffinityThreadEx(1 << i)
		}
		old := k.KeRaiseIrql(kernel.DISPATCH_LEVEL)
		s := x.slots[i]
		n := k.Read(s.frames)
		k.Write(s.frames, 0)
		k.KeLowerIrql(old)
		if !x.env.Is("reset-anywhere") {
			k.KeRevertToUserAffinityThreadEx(prev)
		}
		x.harvested += n
	}
}

func (x *rssNic) unload(*queues.DRIVER_OBJECT) {
	k := x.k
	k.IoDisconnectInterrupt(x.intr)
	k.KeFlushQueuedDpcs()
	x.sys.IoDeleteDevice(x.dev)
}
