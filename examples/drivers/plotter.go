package drivers

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/queues"
)

// plotter: a plotter driver with a StartIo routine, written to the
// letter of "Cancel Routines in Drivers with StartIo Routines"
// (WDD:kernel/cancel-routines-in-drivers-with-startio-routines, REFERENCE
// §1.12). Dispatch queues each write with IoStartPacket and a cancel
// routine; StartIo, under the cancel spin lock, fails a write that was
// cancelled on its way in and starts the next packet, or clears the cancel
// routine and starts the pen (a first version completed the cancelled write
// with its routine still set, which wqsim reported as Driver Verifier's
// 0xC9 P1=0x7: a write cancelled before IoStartPacket reaches StartIo with
// the routine set); the pen's interrupt DPC starts the next
// packet and completes the write. The cancel routine completes a write
// only when KeRemoveEntryDeviceQueue took it out of the device queue; for
// the current write it only releases the lock, leaving it to StartIo.
//
// The bug's cancel routine also completes the current write: when the
// cancel lands between IoStartNextPacket making the write current and
// StartIo taking the cancel lock, StartIo sees Irp->Cancel and completes
// it too (0x44).

var markPlCancelCurrent = model.NewMark("plotter: a write reached StartIo already cancelled")

// Plotter is the scenario.
var Plotter = &model.Scenario{
	Name: "plotter",
	Doc: "A StartIo plotter driver: IoStartPacket with a cancel routine, StartIo fails cancelled writes under " +
		"the cancel spin lock or clears the routine and starts the pen, the pen's DPC starts the next packet " +
		"and completes. The bug's cancel routine completes the current write too, which StartIo then completes " +
		"again (0x44).",
	Section: "REFERENCE §1.7, §1.12",
	Variants: []model.Variant{
		{Name: "correct", Doc: "the cancel routine completes only a write it removed from the device queue; StartIo fails the current one"},
		{Name: "complete-current", Bug: true, Doc: "the cancel routine completes the current write as well as a queued one",
			Marks: []*model.Mark{markPlCancelCurrent}, Want: "0x44"},
	},
	Setup: setupPlotter,
}

const plWrites = 3

type plotter struct {
	env  *model.Env
	k    *kernel.Kernel
	sys  *queues.System
	dev  *queues.DEVICE_OBJECT
	intr *kernel.KINTERRUPT
	dpc  *kernel.KDPC
	cpu  int
}

func setupPlotter(env *model.Env) error {
	k := env.K
	sys, err := queues.NewSystem(k, queues.DefaultPoolConfig())
	if err != nil {
		return err
	}
	p := &plotter{env: env, k: k, sys: sys}
	irps := make([]*kernel.IRP, plWrites)
	for i := range irps {
		irps[i] = k.IoAllocateIrp(fmt.Sprintf("write%d", i))
	}
	k.PsCreateSystemThread("app", 8, func() {
		if _, st := sys.LoadDriver("plotter", p.driverEntry); st != kernel.STATUS_SUCCESS {
			env.Violation("driver loads", "%v", st)
			return
		}
		p.cpu = env.Choose("interrupt cpu", 2)
		victim := env.Choose("cancelled write", plWrites)
		k.PsCreateSystemThread("canceller", 8, func() {
			k.KeDelayExecutionThread(des.Duration(1+2*env.Choose("cancel at", 6)) * des.Microsecond)
			k.IoCancelIrp(irps[victim])
		})
		for _, irp := range irps {
			p.dispatchWrite(irp)
		}
		for _, irp := range irps {
			k.KeWaitForSingleObject(irp.Done(), kernel.Infinite)
		}
		env.BeginDrain()
		k.IoDisconnectInterrupt(p.intr)
		k.KeFlushQueuedDpcs()
	})
	return nil
}

func (p *plotter) driverEntry(drv *queues.DRIVER_OBJECT) kernel.NTSTATUS {
	k := p.k
	dev, st := p.sys.IoCreateDevice(drv, "plotter0")
	if st != kernel.STATUS_SUCCESS {
		return st
	}
	p.dev = dev
	drv.DriverStartIo = p.startIo
	p.dpc = drv.KeInitializeDpc("pen done", p.penDone, nil)
	intr, err := k.IoConnectInterrupt("pen", 5, func(*kernel.KINTERRUPT, any) bool {
		k.KeInsertQueueDpc(p.dpc, nil, nil)
		return true
	}, nil)
	if err != nil {
		return kernel.STATUS_INSUFFICIENT_RESOURCES
	}
	p.intr = intr
	return kernel.STATUS_SUCCESS
}

// dispatchWrite is IRP_MJ_WRITE: pend the write and hand it to the device queue.
func (p *plotter) dispatchWrite(irp *kernel.IRP) {
	p.k.IoMarkIrpPending(irp)
	p.sys.IoStartPacket(p.dev, irp, nil, p.cancel)
}

// startIo runs at DISPATCH_LEVEL with the device's current write.
func (p *plotter) startIo(dev *queues.DEVICE_OBJECT, irp *kernel.IRP) {
	k := p.k
	old := k.IoAcquireCancelSpinLock()
	// Take the cancel routine back whether or not a cancel ran it: for the
	// current write it only released the lock. A write cancelled before
	// IoStartPacket still has it set (IoCancelIrp found none to call).
	k.IoSetCancelRoutine(irp, nil)
	if k.IoIsCancelled(irp) {
		k.IoReleaseCancelSpinLock(old)
		p.env.Hit(markPlCancelCurrent)
		p.complete(irp, kernel.STATUS_CANCELLED)
		p.sys.IoStartNextPacket(dev, true)
		return
	}
	k.IoReleaseCancelSpinLock(old) // on the pen from here: not cancellable
	k.DeviceInterrupt(p.intr, p.cpu, k.Now().Add(des.Duration(3+2*p.env.Choose("plot time", 3))*des.Microsecond))
}

// penDone is the pen's DpcForIsr: next packet, then complete this one.
func (p *plotter) penDone(*kernel.KDPC, any, any, any) {
	irp := p.dev.CurrentIrp
	if irp == nil {
		return
	}
	p.sys.IoStartNextPacket(p.dev, true)
	p.complete(irp, kernel.STATUS_SUCCESS)
}

// cancel is the cancel routine, called holding the cancel spin lock.
func (p *plotter) cancel(irp *kernel.IRP) {
	k := p.k
	if irp == p.dev.CurrentIrp {
		k.IoReleaseCancelSpinLock(irp.CancelIrql) // StartIo will see Irp->Cancel
		if p.env.Is("complete-current") {
			p.complete(irp, kernel.STATUS_CANCELLED)
		}
		return
	}
	queued := k.KeRemoveEntryDeviceQueue(&p.dev.DeviceQueue, irp)
	k.IoReleaseCancelSpinLock(irp.CancelIrql)
	if queued {
		p.complete(irp, kernel.STATUS_CANCELLED)
	}
}

func (p *plotter) complete(irp *kernel.IRP, st kernel.NTSTATUS) {
	irp.IoStatus = kernel.IO_STATUS_BLOCK{Status: st}
	p.k.IoCompleteRequest(irp, kernel.IO_NO_INCREMENT)
}
