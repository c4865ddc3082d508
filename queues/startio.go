package queues

import "github.com/wqsim/wqsim/kernel"

// DRIVER_STARTIO is a driver's StartIo routine: the I/O manager calls it at
// DISPATCH_LEVEL with the one IRP the device works on (REFERENCE §1.12).
type DRIVER_STARTIO func(dev *DEVICE_OBJECT, irp *kernel.IRP)

// IoStartPacket hands irp to dev's StartIo routine, or queues it on the
// device queue when the device is busy (REFERENCE §1.12), as ReactOS's
// IoStartPacket does: at DISPATCH_LEVEL, with cancel set (non-nil) under the
// cancel spin lock, the IRP's cancel routine is set to cancel before the
// insert; an idle device takes the IRP as CurrentIrp and StartIo runs at
// once (after the cancel lock is released); a queued IRP that was already
// cancelled has its cancel routine cleared and called here, holding the
// cancel lock, as IoCancelIrp would have. key non-nil inserts by key.
// Caller IRQL ≤ DISPATCH_LEVEL, checked.
func (s *System) IoStartPacket(dev *DEVICE_OBJECT, irp *kernel.IRP, key *uint32, cancel kernel.DriverCancel) {
	k := s.k
	l := k.Layer()
	l.Enter("IoStartPacket")
	l.CheckIrqlAtMost("IoStartPacket", kernel.DISPATCH_LEVEL)
	old := k.KeRaiseIrqlToDpcLevel()
	var cancelIrql kernel.IRQL
	if cancel != nil {
		cancelIrql = k.IoAcquireCancelSpinLock()
		k.IoSetCancelRoutine(irp, cancel)
	}
	var queued bool
	if key != nil {
		queued = k.KeInsertByKeyDeviceQueue(&dev.DeviceQueue, irp, *key)
	} else {
		queued = k.KeInsertDeviceQueue(&dev.DeviceQueue, irp)
	}
	switch {
	case !queued:
		dev.CurrentIrp = irp
		if cancel != nil {
			k.IoReleaseCancelSpinLock(cancelIrql)
		}
		s.callStartIo(dev, irp)
	case cancel != nil && k.IoIsCancelled(irp):
		// Cancelled before the routine was set: IoCancelIrp found no
		// routine to call, so the cancel is completed here.
		irp.CancelIrql = cancelIrql
		k.IoSetCancelRoutine(irp, nil)
		cancel(irp)
	case cancel != nil:
		k.IoReleaseCancelSpinLock(cancelIrql)
	}
	k.KeLowerIrql(old)
}

// IoStartNextPacket ends dev's current IRP's turn: CurrentIrp is cleared and
// the next queued IRP, if any, becomes current and goes to StartIo; with
// none, the device becomes idle. With cancelable the steps are taken under
// the cancel spin lock (released before StartIo), so a cancel routine that
// compares the IRP with CurrentIrp sees a consistent pair (REFERENCE
// §1.12). Typically called from the driver's DpcForIsr or StartIo.
// Caller IRQL = DISPATCH_LEVEL as Microsoft documents; the model does not
// check it (REFERENCE §1.12: with Cancelable the cancel spin lock raises
// IRQL first, and the device-queue steps then run at DISPATCH_LEVEL).
func (s *System) IoStartNextPacket(dev *DEVICE_OBJECT, cancelable bool) {
	s.startNext(dev, cancelable, nil, "IoStartNextPacket")
}

// IoStartNextPacketByKey is IoStartNextPacket taking the next IRP by key
// (KeRemoveByKeyDeviceQueue).
// Caller IRQL = DISPATCH_LEVEL.
func (s *System) IoStartNextPacketByKey(dev *DEVICE_OBJECT, cancelable bool, key uint32) {
	s.startNext(dev, cancelable, &key, "IoStartNextPacketByKey")
}

func (s *System) startNext(dev *DEVICE_OBJECT, cancelable bool, key *uint32, api string) {
	k := s.k
	k.Layer().Enter(api)
	var cancelIrql kernel.IRQL
	if cancelable {
		cancelIrql = k.IoAcquireCancelSpinLock()
	}
	dev.CurrentIrp = nil
	var next *kernel.IRP
	if key != nil {
		next = k.KeRemoveByKeyDeviceQueue(&dev.DeviceQueue, *key)
	} else {
		next = k.KeRemoveDeviceQueue(&dev.DeviceQueue)
	}
	if next != nil {
		dev.CurrentIrp = next
	}
	if cancelable {
		k.IoReleaseCancelSpinLock(cancelIrql)
	}
	if next != nil {
		s.callStartIo(dev, next)
	}
}

// callStartIo runs the driver's StartIo in its image.
func (s *System) callStartIo(dev *DEVICE_OBJECT, irp *kernel.IRP) {
	drv := dev.DriverObject
	if drv.DriverStartIo == nil {
		panic("queues: IoStartPacket for device " + dev.hdr.name + " whose driver has no DriverStartIo routine; set DRIVER_OBJECT.DriverStartIo in DriverEntry")
	}
	l := s.k.Layer()
	prev := l.SwitchImage(drv.image)
	drv.DriverStartIo(dev, irp)
	l.SwitchImage(prev)
}
