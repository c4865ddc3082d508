package drivers

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/queues"
)

// DpcRemove is a device whose ISR queues a DPC (KeInsertQueueDpc) that
// copies the device's FIFO into a nonpaged buffer. Unload must stop the
// source before the consumer: disconnect the interrupt (no ISR can queue
// the DPC again), take a queued DPC off its queue with KeRemoveQueueDpc,
// then KeFlushQueuedDpcs for one already running on another processor, and
// only then free the buffer. The bugs get one step wrong each:
// KeRemoveQueueDpc does not wait for a DPC that is already running, and
// removing before disconnecting lets the ISR queue the DPC again.
var DpcRemove = &model.Scenario{
	Name: "dpcremove",
	Doc: "An ISR queues a DPC that fills a nonpaged buffer; unload disconnects the interrupt, removes the " +
		"queued DPC, flushes and frees the buffer. The bugs trust KeRemoveQueueDpc to stop a running DPC, " +
		"or remove the DPC before disconnecting the interrupt that queues it.",
	Section: "REFERENCE §4.8, §6.8",
	Variants: []model.Variant{
		{Name: "correct", Doc: "IoDisconnectInterrupt, KeRemoveQueueDpc, KeFlushQueuedDpcs, then free the buffer"},
		{Name: "remove-only", Bug: true, Doc: "no KeFlushQueuedDpcs: a DPC already running on another processor uses the freed buffer (0xD5) or outlives the image (0xCE)",
			Want: "0xD5|0xCE"},
		{Name: "remove-first", Bug: true, Doc: "KeRemoveQueueDpc and KeFlushQueuedDpcs before IoDisconnectInterrupt: an interrupt in between queues the DPC again",
			Want: "0xD5|0xCE"},
	},
	Setup: dpcRemoveSetup,
}

const drmInterrupts = 5

// drmExt is the device extension.
type drmExt struct {
	env    *model.Env
	k      *kernel.Kernel
	sys    *queues.System
	dev    *queues.DEVICE_OBJECT
	intr   *kernel.KINTERRUPT
	dpc    *kernel.KDPC
	buffer *kernel.PoolBlock
	fifo   *kernel.Cell // bytes the device has, interlocked (ISR and DPC)
	copied int64        // DPC only
}

func dpcRemoveSetup(env *model.Env) error {
	k := env.K
	sys, err := queues.NewSystem(k, queues.DefaultPoolConfig())
	if err != nil {
		return err
	}
	x := &drmExt{env: env, k: k, sys: sys}
	k.PsCreateSystemThread("scm", 8, func() {
		drv, st := sys.LoadDriver("fifo", x.driverEntry)
		if st != kernel.STATUS_SUCCESS {
			env.Violation("driver loads", "%v", st)
			return
		}
		// The device keeps interrupting, on either processor, around the
		// time the service stops it.
		at := k.Now()
		for range drmInterrupts {
			at = at.Add(des.Duration(2+env.Choose("interrupt gap", 3)*3) * des.Microsecond)
			k.DeviceInterrupt(x.intr, env.Choose("interrupt cpu", 2), at)
		}
		k.KeDelayExecutionThread(des.Duration(10+env.Choose("unload at", 4)*4) * des.Microsecond)
		env.BeginDrain()
		sys.UnloadDriver(drv)
	})
	env.AtEnd("the device's data was copied", func() error {
		if x.copied == 0 {
			return fmt.Errorf("nothing copied")
		}
		return nil
	})
	return nil
}

func (x *drmExt) driverEntry(d *queues.DRIVER_OBJECT) kernel.NTSTATUS {
	k := x.k
	dev, st := x.sys.IoCreateDevice(d, "fifo0")
	if st != kernel.STATUS_SUCCESS {
		return st
	}
	x.dev = dev
	dev.DeviceExtension = x
	x.buffer = k.ExAllocatePoolWithTag(kernel.NonPagedPool, 512, "Fifo")
	x.fifo = k.NewCell("device fifo", 0)
	x.dpc = k.KeInitializeDpc("fifo dpc", x.fifoDpc, nil)
	intr, err := k.IoConnectInterrupt("fifo", 5, func(*kernel.KINTERRUPT, any) bool {
		k.InterlockedAdd(x.fifo, 16)
		k.KeInsertQueueDpc(x.dpc, nil, nil)
		return true
	}, nil)
	if err != nil {
		k.ExFreePoolWithTag(x.buffer, "Fifo")
		x.sys.IoDeleteDevice(dev)
		return kernel.STATUS_INSUFFICIENT_RESOURCES
	}
	x.intr = intr
	d.DriverUnload = x.unload
	return kernel.STATUS_SUCCESS
}

// fifoDpc drains the device FIFO into the buffer (one DPC may stand for
// several interrupts).
func (x *drmExt) fifoDpc(*kernel.KDPC, any, any, any) {
	k := x.k
	n := k.InterlockedExchange(x.fifo, 0)
	for ; n > 0; n -= 16 {
		k.Compute(des.Microsecond)
		k.AccessPool(x.buffer, "fifo copy")
		x.copied += 16
	}
}

func (x *drmExt) unload(*queues.DRIVER_OBJECT) {
	k := x.k
	switch {
	case x.env.Is("remove-first"):
		k.KeRemoveQueueDpc(x.dpc)
		k.KeFlushQueuedDpcs()
		k.Compute(2 * des.Microsecond) // logging the device's final state
		k.IoDisconnectInterrupt(x.intr)
	case x.env.Is("remove-only"):
		k.IoDisconnectInterrupt(x.intr)
		k.KeRemoveQueueDpc(x.dpc)
	default:
		k.IoDisconnectInterrupt(x.intr)
		k.KeRemoveQueueDpc(x.dpc)
		k.KeFlushQueuedDpcs()
	}
	k.ExFreePoolWithTag(x.buffer, "Fifo")
	x.sys.IoDeleteDevice(x.dev)
}
