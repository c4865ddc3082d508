package drivers

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/queues"
)

// IsrSync is a device whose ISR counts completed transfers in a word of
// the device extension (a plain read-modify-write, as an ISR does), and a
// driver thread that collects the count and resets it. The collector must
// be serialized with the ISR on every processor: KeSynchronizeExecution
// runs it at the interrupt's DIRQL holding the interrupt spin lock, which
// the ISR holds too. The bugs use a DISPATCH_LEVEL spin lock, which the
// ISR neither takes nor is held off by, or only raise to DIRQL, which
// keeps the ISR off the collector's own processor but not off the other:
// either way an interrupt between the collector's read and its reset is
// lost (REFERENCE §4.13).
var IsrSync = &model.Scenario{
	Name: "isrsync",
	Doc: "An ISR counts transfers in the device extension; a driver thread collects and resets the count. " +
		"Correct: KeSynchronizeExecution. The bugs use an ordinary spin lock, or raise to DIRQL without the " +
		"interrupt spin lock, and lose interrupts that land between the read and the reset.",
	Section: "REFERENCE §4.13",
	Variants: []model.Variant{
		{Name: "correct", Doc: "the collector reads and resets the count in a KeSynchronizeExecution routine"},
		{Name: "spinlock", Bug: true, Doc: "the collector holds a DISPATCH_LEVEL spin lock: the ISR interrupts it on its own processor or runs beside it on the other",
			Want: "invariant every interrupt counted"},
		{Name: "raise-only", Bug: true, Doc: "the collector raises to the interrupt's DIRQL without the interrupt spin lock: the ISR on the other processor runs beside it",
			Want: "invariant every interrupt counted"},
	},
	Setup: isrSyncSetup,
}

const isInterrupts = 6

// isExt is the device extension.
type isExt struct {
	env       *model.Env
	k         *kernel.Kernel
	sys       *queues.System
	dev       *queues.DEVICE_OBJECT
	intr      *kernel.KINTERRUPT
	lock      *kernel.KSPIN_LOCK // the spinlock variant's (wrong) lock
	count     *kernel.Cell       // transfers since the last collection: ISR and collector
	collector *kernel.Thread
	fired     int64 // ISRs run (Go-level bookkeeping of the workload, not driver state)
	collected int64
}

func isrSyncSetup(env *model.Env) error {
	k := env.K
	sys, err := queues.NewSystem(k, queues.DefaultPoolConfig())
	if err != nil {
		return err
	}
	x := &isExt{env: env, k: k, sys: sys}
	k.PsCreateSystemThread("scm", 8, func() {
		drv, st := sys.LoadDriver("counter", x.driverEntry)
		if st != kernel.STATUS_SUCCESS {
			env.Violation("driver loads", "%v", st)
			return
		}
		at := k.Now().Add(4 * des.Microsecond) // while the collector runs
		for range isInterrupts {
			at = at.Add(des.Duration(2+env.Choose("interrupt gap", 4)*2) * des.Microsecond)
			k.DeviceInterrupt(x.intr, env.Choose("interrupt cpu", 2), at)
		}
		k.KeDelayExecutionThread(60 * des.Microsecond)
		env.BeginDrain()
		sys.UnloadDriver(drv)
	})
	env.AtEnd("every interrupt counted", func() error {
		if got := x.collected + x.count.Peek(); got != x.fired {
			return fmt.Errorf("%d interrupts, %d counted (%d collected, %d left)", x.fired, got, x.collected, x.count.Peek())
		}
		return nil
	})
	return nil
}

func (x *isExt) driverEntry(d *queues.DRIVER_OBJECT) kernel.NTSTATUS {
	k := x.k
	dev, st := x.sys.IoCreateDevice(d, "counter0")
	if st != kernel.STATUS_SUCCESS {
		return st
	}
	x.dev = dev
	dev.DeviceExtension = x
	x.count = k.NewCell("transfer count", 0)
	x.lock = k.KeInitializeSpinLock("counter")
	intr, err := k.IoConnectInterrupt("counter", 6, x.isr, nil)
	if err != nil {
		x.sys.IoDeleteDevice(dev)
		return kernel.STATUS_INSUFFICIENT_RESOURCES
	}
	x.intr = intr
	x.collector = k.PsCreateSystemThread("collector", 8, x.collect)
	d.DriverUnload = x.unload
	return kernel.STATUS_SUCCESS
}

// isr acknowledges one transfer: a plain read-modify-write of the count,
// safe only because whoever else touches it holds the interrupt spin lock.
func (x *isExt) isr(*kernel.KINTERRUPT, any) bool {
	k := x.k
	k.Write(x.count, k.Read(x.count)+1)
	x.fired++
	return true
}

// collect takes the count a few times while the device interrupts.
func (x *isExt) collect() {
	k := x.k
	for range 4 {
		k.KeDelayExecutionThread(des.Duration(2+x.env.Choose("collect gap", 4)*3) * des.Microsecond)
		x.collectOnce()
	}
}

// collectOnce reads and resets the count, synchronized with the ISR as the
// variant says.
func (x *isExt) collectOnce() {
	k := x.k
	take := func(any) bool {
		n := k.Read(x.count)
		k.Compute(2 * des.Microsecond) // logging the batch
		k.Write(x.count, 0)
		x.collected += n
		return n > 0
	}
	switch {
	case x.env.Is("spinlock"):
		old := k.KeAcquireSpinLock(x.lock)
		take(nil)
		k.KeReleaseSpinLock(x.lock, old)
	case x.env.Is("raise-only"):
		old := k.KeRaiseIrql(x.intr.Irql)
		take(nil)
		k.KeLowerIrql(old)
	default:
		k.KeSynchronizeExecution(x.intr, take, nil)
	}
}

func (x *isExt) unload(*queues.DRIVER_OBJECT) {
	k := x.k
	k.KeWaitForSingleObject(x.collector.Object(), kernel.Infinite)
	k.IoDisconnectInterrupt(x.intr)
	x.sys.IoDeleteDevice(x.dev)
}
