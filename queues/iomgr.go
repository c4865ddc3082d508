package queues

import (
	"fmt"

	"github.com/wqsim/wqsim/kernel"
)

// IRP major function codes the I/O path uses (wdm.h).
const (
	IRP_MJ_CREATE           uint8 = 0x00
	IRP_MJ_CLOSE            uint8 = 0x02
	IRP_MJ_READ             uint8 = 0x03
	IRP_MJ_WRITE            uint8 = 0x04
	IRP_MJ_DEVICE_CONTROL   uint8 = 0x0E
	IRP_MJ_CLEANUP          uint8 = 0x12
	IRP_MJ_MAXIMUM_FUNCTION uint8 = 0x1B
)

// DRIVER_DISPATCH is a driver's dispatch routine for one major function.
// It runs in the caller of IoCallDriver at the caller's IRQL and must
// either complete the IRP, pass it down, or mark it pending and return
// STATUS_PENDING (REFERENCE §5.6).
type DRIVER_DISPATCH func(dev *DEVICE_OBJECT, irp *kernel.IRP) kernel.NTSTATUS

// IoAttachDeviceToDeviceStack attaches source on top of the stack whose
// bottom is target and returns the device it attached to (the previous
// top), which is where source's driver sends IRPs on. source's StackSize
// becomes that device's plus one. The attachment references the returned
// device (IoDetachDevice drops it), so its driver cannot unload under the
// device above. Caller IRQL PASSIVE_LEVEL. REFERENCE §5.6.
func (s *System) IoAttachDeviceToDeviceStack(source, target *DEVICE_OBJECT) *DEVICE_OBJECT {
	l := s.k.Layer()
	l.Enter("IoAttachDeviceToDeviceStack")
	l.CheckIrqlAtMost("IoAttachDeviceToDeviceStack", kernel.PASSIVE_LEVEL)
	top := target
	for top.AttachedDevice != nil {
		top = top.AttachedDevice
	}
	top.AttachedDevice = source
	source.StackSize = top.StackSize + 1
	l.TraceKind(KindDriver, WhatDeviceAttach, source.hdr.name, int64(source.StackSize), 0)
	s.ref(top)
	return top
}

// IoDetachDevice releases the attachment of the device above target (the
// device IoAttachDeviceToDeviceStack returned) and drops the reference it
// held on target; if that was the last one and target was deleted, target
// goes and may unload its driver (DDI:IoDetachDevice, REFERENCE §5.6). A
// filter driver's unload detaches before it deletes its own device.
// Detaching a device nothing is attached to is a *ContractViolation.
// Caller IRQL PASSIVE_LEVEL; a scheduling point.
func (s *System) IoDetachDevice(target *DEVICE_OBJECT) {
	l := s.k.Layer()
	l.Enter("IoDetachDevice")
	l.CheckIrqlAtMost("IoDetachDevice", kernel.PASSIVE_LEVEL)
	if target.AttachedDevice == nil {
		s.ReportContract("IoDetachDevice", "IoDetachDevice("+target.hdr.name+"): nothing is attached to it",
			"pass the device IoAttachDeviceToDeviceStack returned, once", "DDI:IoDetachDevice, REFERENCE §5.6")
		return
	}
	l.TraceKind(KindDriver, WhatDeviceDetach, target.AttachedDevice.hdr.name, 0, 0)
	target.AttachedDevice = nil
	s.deref(target, "IoDetachDevice")
}

// IoCallDriver sends irp to dev: the next stack location becomes current
// (bug check 0x35 if none is left) and dev's driver's dispatch routine for
// the location's major function runs in the calling thread at its IRQL.
// It returns what the routine returned; STATUS_PENDING means the IRP will
// complete later, from whatever context completes it. With Verifier, a
// STATUS_PENDING without IoMarkIrpPending is 0xC9 P1=0x23D and a mark
// with another status 0xC9 P1=0x23E. A driver with no routine for the
// major function fails the IRP with STATUS_INVALID_DEVICE_REQUEST, as the
// I/O manager's default routine does. Caller IRQL ≤ DISPATCH_LEVEL.
// The issuer's call (the first on a fresh IRP) references dev until the
// IRP is completed or freed. REFERENCE §5.6, §6.8.
func (s *System) IoCallDriver(dev *DEVICE_OBJECT, irp *kernel.IRP) kernel.NTSTATUS {
	k := s.k
	if k.Layer().WhenIrpDone(irp, s.releaseIrpDevice, dev) {
		// The issuer's call: the request holds its target device (and so
		// the driver's image) until it is completed or freed, as the file
		// object an IRP is issued on does on Windows (REFERENCE §6.8, §9).
		s.ref(dev)
	}
	major := k.IoGetNextIrpStackLocation(irp).MajorFunction
	return k.Layer().CallDriver(irp, dev, func() kernel.NTSTATUS {
		routine := dev.DriverObject.MajorFunction[major]
		if routine == nil {
			irp.IoStatus = kernel.IO_STATUS_BLOCK{Status: kernel.STATUS_INVALID_DEVICE_REQUEST}
			k.IoCompleteRequest(irp, kernel.IO_NO_INCREMENT)
			return kernel.STATUS_INVALID_DEVICE_REQUEST
		}
		prev := k.Layer().SwitchImage(dev.DriverObject.image)
		st := routine(dev, irp)
		k.Layer().SwitchImage(prev)
		return st
	})
}

// irpDone drops the device reference an issued IRP held (see IoCallDriver);
// it runs in whatever completes or frees the IRP, without a scheduling
// point.
func (s *System) irpDone(dev any) { s.deref(dev.(*DEVICE_OBJECT), "IoCompleteRequest") }

// IoBuildSynchronousFsdRequest builds a threaded IRP for major, sized for
// dev's stack, whose completion sets event and copies the status to iosb
// in the calling thread, by the I/O completion APC (REFERENCE §4.10,
// §5.6): the caller sends it with IoCallDriver and, on STATUS_PENDING,
// waits for event. Waiting at APC_LEVEL or in a guarded region hangs:
// that is why the documentation asks for PASSIVE_LEVEL. The model accepts
// APC_LEVEL (Windows does not check it either) so the hang is reachable;
// above APC_LEVEL is IRQL_NOT_LESS_OR_EQUAL.
// IRQL: PASSIVE_LEVEL as Microsoft documents; checked as ≤ APC_LEVEL.
func (s *System) IoBuildSynchronousFsdRequest(major uint8, dev *DEVICE_OBJECT, event *kernel.KEVENT, iosb *kernel.IO_STATUS_BLOCK, tag string) *kernel.IRP {
	k := s.k
	k.Layer().CheckIrqlAtMost("IoBuildSynchronousFsdRequest", kernel.APC_LEVEL)
	irp := s.buildIrp(major, dev, iosb, tag)
	irp.UserEvent = event
	k.IoQueueThreadIrp(irp)
	return irp
}

// IoSetCompletionRoutineEx is IoSetCompletionRoutine for a driver that may
// unload while the IRP is away: it references dev (a device of the calling
// driver) until routine has returned, so the driver's image stays mapped
// for the call (DDI:IoSetCompletionRoutineEx; WRK's
// IopUnloadSafeCompletion calls the routine, then ObDereferenceObject).
// Windows allocates the context it needs and may return
// STATUS_INSUFFICIENT_RESOURCES; the model's never fails. Caller IRQL ≤
// DISPATCH_LEVEL. REFERENCE §5.6, §6.8.
func (s *System) IoSetCompletionRoutineEx(dev *DEVICE_OBJECT, irp *kernel.IRP, routine kernel.IO_COMPLETION_ROUTINE, ctx any, onSuccess, onError, onCancel bool) kernel.NTSTATUS {
	k := s.k
	k.Layer().CheckIrqlAtMost("IoSetCompletionRoutineEx", kernel.DISPATCH_LEVEL)
	s.ObReferenceObject(dev)
	k.IoSetCompletionRoutine(irp, func(d any, irp *kernel.IRP, c any) kernel.NTSTATUS {
		st := routine(d, irp, c)
		s.ObDereferenceObject(dev)
		return st
	}, ctx, onSuccess, onError, onCancel)
	return kernel.STATUS_SUCCESS
}

// IoAllocateIrp allocates an IRP with stackSize stack locations (at least
// the StackSize of the device it will be sent to), no thread and no
// status, for a driver to fill in and send down with IoCallDriver: set the
// next location's major function and parameters and a completion routine
// (IoSetCompletionRoutine) first. The IRP is the allocating driver's: its
// completion routine must end completion by returning
// STATUS_MORE_PROCESSING_REQUIRED, after freeing it with IoFreeIrp or to
// keep it for IoReuseIrp. Completion that reaches the top of the stack
// has no thread to go to and crashes (REFERENCE §1.10); a stackSize below
// 1 is a programming error reported at once (panic). Caller IRQL ≤
// DISPATCH_LEVEL (DDI:IoAllocateIrp); not a scheduling point.
func (s *System) IoAllocateIrp(stackSize int, tag string) *kernel.IRP {
	if stackSize < 1 {
		panic(fmt.Sprintf("queues: IoAllocateIrp(%d, %q): an IRP to send down a stack needs at least one stack location", stackSize, tag))
	}
	k := s.k
	k.Layer().CheckIrqlAtMost("IoAllocateIrp", kernel.DISPATCH_LEVEL)
	irp := k.IoAllocateIrp(tag)
	k.Layer().AllocateIrpStack(irp, stackSize)
	return irp
}

// IoBuildAsynchronousFsdRequest builds an IRP for major sized for dev's
// stack and not associated with any thread: its sender must set a
// completion routine that frees it (IoFreeIrp) and returns
// STATUS_MORE_PROCESSING_REQUIRED. Caller IRQL ≤ DISPATCH_LEVEL.
// REFERENCE §5.6.
func (s *System) IoBuildAsynchronousFsdRequest(major uint8, dev *DEVICE_OBJECT, iosb *kernel.IO_STATUS_BLOCK, tag string) *kernel.IRP {
	s.k.Layer().CheckIrqlAtMost("IoBuildAsynchronousFsdRequest", kernel.DISPATCH_LEVEL)
	return s.buildIrp(major, dev, iosb, tag)
}

func (s *System) buildIrp(major uint8, dev *DEVICE_OBJECT, iosb *kernel.IO_STATUS_BLOCK, tag string) *kernel.IRP {
	if major > IRP_MJ_MAXIMUM_FUNCTION {
		panic(fmt.Sprintf("queues: IRP major function 0x%X out of range", major))
	}
	k := s.k
	irp := k.Layer().AllocateIrp(tag) // the I/O manager's IRP, not IoAllocateIrp's (REFERENCE §1.10)
	k.Layer().AllocateIrpStack(irp, dev.StackSize)
	irp.UserIosb = iosb
	k.IoGetNextIrpStackLocation(irp).MajorFunction = major
	return irp
}
