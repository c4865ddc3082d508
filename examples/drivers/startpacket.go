package drivers

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/queues"
)

// startpacket: a WDM driver for a simple DMA device that serialises its
// reads through the I/O manager's device queue: dispatch marks each read
// pending and calls IoStartPacket with a cancel routine; StartIo programs
// the device, whose completion interrupt's DPC completes the read and
// calls IoStartNextPacket. The application cancels one of its reads at a
// moment the workload chooses. The cancel routine follows the documented
// protocol for StartIo drivers: the current IRP → release the cancel lock
// and start the next packet; a queued one → KeRemoveEntryDeviceQueue, then
// release; complete either as cancelled. StartIo must take the IRP out of
// the cancel routine's reach, under the cancel lock, before it touches the
// device (REFERENCE §1.12).

// StartPacket is the scenario.
var StartPacket = &model.Scenario{
	Name: "startpacket",
	Doc: "A DMA device driver serialises reads with IoStartPacket/IoStartNextPacket and a StartIo-aware cancel " +
		"routine; the application cancels one read. The bugs leave the cancel routine set while the device works " +
		"on the read, or cancel the current read as if it were queued: it is completed twice.",
	Section: "REFERENCE §1.12",
	Variants: []model.Variant{
		{Name: "correct", Doc: "StartIo clears the cancel routine under the cancel spin lock (or leaves an already-cancelled read to it) before programming the device"},
		{Name: "keep-cancel-routine", Bug: true, Doc: "StartIo programs the device without clearing the cancel routine: Verifier sees the read completed with its routine set (0xC9 P1=0x7); without Verifier a cancel completes it twice (0x44)",
			Want: "0xC9|0x44|0xD5"},
		{Name: "no-current-check", Bug: true, Doc: "the cancel routine treats every read as queued: a read cancelled while it is the device's current one is completed under the device (which completes it again, 0x44), or, cancelled before StartIo took it, leaves the device busy for ever",
			Want: "0x44|0xD5|0xC9|device still busy"},
	},
	Setup: startPacketSetup,
}

const spReads = 3

// spExt is the device extension.
type spExt struct {
	env     *model.Env
	k       *kernel.Kernel
	sys     *queues.System
	dev     *queues.DEVICE_OBJECT
	hw      *kernel.KTIMER // the device's transfer; its DPC is the DpcForIsr
	hwDpc   *kernel.KDPC
	onHw    *kernel.IRP // the read the device is transferring
	iosb    [spReads]kernel.IO_STATUS_BLOCK
	irps    [spReads]*kernel.IRP
	latency des.Duration
}

func startPacketSetup(env *model.Env) error {
	k := env.K
	sys, err := queues.NewSystem(k, queues.DefaultPoolConfig())
	if err != nil {
		return err
	}
	x := &spExt{env: env, k: k, sys: sys}
	k.PsCreateSystemThread("app", 8, func() {
		drv, st := sys.LoadDriver("dma", x.driverEntry)
		if st != kernel.STATUS_SUCCESS {
			env.Violation("driver loads", "%v", st)
			return
		}
		for i := range spReads {
			x.irps[i] = sys.IoBuildAsynchronousFsdRequest(queues.IRP_MJ_READ, x.dev, &x.iosb[i], fmt.Sprintf("read%d", i))
			sys.IoCallDriver(x.dev, x.irps[i])
			k.Compute(des.Duration(1+env.Choose("read gap", 3)) * des.Microsecond)
		}
		// Plainly the application cancels the second read as soon as the
		// first one is done, just when the device moves on to it.
		if at := env.Choose("cancel at", 4); at == 0 {
			k.KeWaitForSingleObject(x.irps[0].Done(), kernel.Infinite)
		} else {
			k.KeDelayExecutionThread(des.Duration(at*3) * des.Microsecond)
		}
		k.IoCancelIrp(x.irps[(1+env.Choose("cancel which", spReads))%spReads])
		for _, irp := range x.irps {
			k.KeWaitForSingleObject(irp.Done(), kernel.Infinite)
		}
		env.BeginDrain()
		sys.UnloadDriver(drv)
	})
	env.AtEnd("every read completed once, the device idle", func() error {
		for i, irp := range x.irps {
			if irp == nil || !irp.Completed() {
				return fmt.Errorf("read %d not completed", i)
			}
		}
		if x.dev.DeviceQueue.Busy || x.dev.CurrentIrp != nil {
			cur := "no current read"
			if x.dev.CurrentIrp != nil {
				cur = "current read " + x.dev.CurrentIrp.Tag
			}
			return fmt.Errorf("device still busy (%s, %d queued): no IoStartNextPacket will ever run", cur, x.dev.DeviceQueue.Len())
		}
		return nil
	})
	return nil
}

func (x *spExt) driverEntry(d *queues.DRIVER_OBJECT) kernel.NTSTATUS {
	k := x.k
	dev, st := x.sys.IoCreateDevice(d, "dma0")
	if st != kernel.STATUS_SUCCESS {
		return st
	}
	x.dev = dev
	dev.DeviceExtension = x
	latencies := []des.Duration{8 * des.Microsecond, 2 * des.Microsecond, 20 * des.Microsecond}
	x.latency = latencies[x.env.Choose("device latency", len(latencies))]
	x.hw = k.KeInitializeTimer("dma transfer")
	x.hwDpc = d.KeInitializeDpc("DpcForIsr", x.transferDone, nil)
	d.MajorFunction[queues.IRP_MJ_READ] = x.read
	d.DriverStartIo = x.startIo
	d.DriverUnload = x.unload
	return kernel.STATUS_SUCCESS
}

// read is the dispatch routine.
func (x *spExt) read(dev *queues.DEVICE_OBJECT, irp *kernel.IRP) kernel.NTSTATUS {
	x.k.IoMarkIrpPending(irp)
	x.sys.IoStartPacket(dev, irp, nil, x.cancel)
	return kernel.STATUS_PENDING
}

// startIo takes the read out of the cancel routine's reach, then starts
// the transfer.
func (x *spExt) startIo(dev *queues.DEVICE_OBJECT, irp *kernel.IRP) {
	k := x.k
	if !x.env.Is("keep-cancel-routine") {
		old := k.IoAcquireCancelSpinLock()
		if irp != dev.CurrentIrp || k.IoIsCancelled(irp) {
			k.IoReleaseCancelSpinLock(old) // the cancel routine completes it and starts the next
			return
		}
		k.IoSetCancelRoutine(irp, nil)
		k.IoReleaseCancelSpinLock(old)
	}
	x.onHw = irp
	k.KeSetTimer(x.hw, x.latency, x.hwDpc)
}

// transferDone is the DpcForIsr: the transfer finished.
func (x *spExt) transferDone(*kernel.KDPC, any, any, any) {
	k := x.k
	irp := x.onHw
	x.onHw = nil
	irp.IoStatus = kernel.IO_STATUS_BLOCK{Status: kernel.STATUS_SUCCESS, Information: 512}
	k.IoCompleteRequest(irp, kernel.IO_NO_INCREMENT)
	x.sys.IoStartNextPacket(x.dev, true)
}

// cancel is the StartIo-aware cancel routine, called holding the cancel
// spin lock.
func (x *spExt) cancel(irp *kernel.IRP) {
	k, dev := x.k, x.dev
	if irp == dev.CurrentIrp && !x.env.Is("no-current-check") {
		k.IoReleaseCancelSpinLock(irp.CancelIrql)
		x.sys.IoStartNextPacket(dev, true)
	} else {
		k.KeRemoveEntryDeviceQueue(&dev.DeviceQueue, irp)
		k.IoReleaseCancelSpinLock(irp.CancelIrql)
	}
	irp.IoStatus = kernel.IO_STATUS_BLOCK{Status: kernel.STATUS_CANCELLED}
	k.IoCompleteRequest(irp, kernel.IO_NO_INCREMENT)
}

func (x *spExt) unload(d *queues.DRIVER_OBJECT) {
	x.k.KeCancelTimer(x.hw)
	x.k.KeFlushQueuedDpcs()
	x.sys.IoDeleteDevice(x.dev)
}
