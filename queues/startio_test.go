package queues_test

import (
	"fmt"

	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues"
)

// startIoDriver is a StartIo driver in the documented pattern (REFERENCE
// §1.12): dispatch marks the IRP pending and calls IoStartPacket with a
// cancel routine; StartIo clears the cancel routine under the cancel lock
// (or leaves a cancelled IRP to it) and starts the "hardware", a timer
// whose DPC completes the IRP and starts the next packet. clearInStartIo
// false is the classic bug: the cancel routine may then complete the IRP
// the hardware is working on.
type startIoDriver struct {
	r              *wiRig
	dev            *queues.DEVICE_OBJECT
	started        []string
	busy           bool
	overlap        bool
	clearInStartIo bool
	hw             *kernel.KTIMER
	hwDpc          *kernel.KDPC
	inHw           *kernel.IRP
}

func loadStartIo(r *wiRig, clearInStartIo bool) *startIoDriver {
	d := &startIoDriver{r: r, clearInStartIo: clearInStartIo}
	k := r.k
	r.sys.LoadDriver("sio", func(drv *queues.DRIVER_OBJECT) kernel.NTSTATUS {
		d.dev, _ = r.sys.IoCreateDevice(drv, "sio0")
		drv.MajorFunction[queues.IRP_MJ_READ] = func(dev *queues.DEVICE_OBJECT, irp *kernel.IRP) kernel.NTSTATUS {
			k.IoMarkIrpPending(irp)
			r.sys.IoStartPacket(dev, irp, nil, d.cancel)
			return kernel.STATUS_PENDING
		}
		drv.DriverStartIo = d.startIo
		d.hw = k.KeInitializeTimer("hw")
		d.hwDpc = drv.KeInitializeDpc("hw done", d.hwDone, nil)
		return kernel.STATUS_SUCCESS
	})
	return d
}

func (d *startIoDriver) cancel(irp *kernel.IRP) {
	k, dev := d.r.k, d.dev
	if irp == dev.CurrentIrp {
		k.IoReleaseCancelSpinLock(irp.CancelIrql)
		d.r.sys.IoStartNextPacket(dev, true)
	} else {
		k.KeRemoveEntryDeviceQueue(&dev.DeviceQueue, irp)
		k.IoReleaseCancelSpinLock(irp.CancelIrql)
	}
	irp.IoStatus = kernel.IO_STATUS_BLOCK{Status: kernel.STATUS_CANCELLED}
	k.IoCompleteRequest(irp, kernel.IO_NO_INCREMENT)
}

func (d *startIoDriver) startIo(dev *queues.DEVICE_OBJECT, irp *kernel.IRP) {
	k := d.r.k
	if d.clearInStartIo {
		old := k.IoAcquireCancelSpinLock()
		if irp != dev.CurrentIrp || k.IoIsCancelled(irp) {
			k.IoReleaseCancelSpinLock(old) // the cancel routine owns it
			return
		}
		k.IoSetCancelRoutine(irp, nil)
		k.IoReleaseCancelSpinLock(old)
	}
	if d.busy {
		d.overlap = true
	}
	d.busy = true
	d.started = append(d.started, irp.Tag)
	d.inHw = irp
	k.KeSetTimer(d.hw, 10*des.Microsecond, d.hwDpc)
}

func (d *startIoDriver) hwDone(*kernel.KDPC, any, any, any) {
	k := d.r.k
	irp := d.inHw
	d.busy = false
	irp.IoStatus = kernel.IO_STATUS_BLOCK{Status: kernel.STATUS_SUCCESS}
	k.IoCompleteRequest(irp, kernel.IO_NO_INCREMENT)
	d.r.sys.IoStartNextPacket(d.dev, true)
}

// read issues one asynchronous read and returns its status block and IRP.
func (d *startIoDriver) read(tag string) (*kernel.IO_STATUS_BLOCK, *kernel.IRP) {
	iosb := &kernel.IO_STATUS_BLOCK{}
	irp := d.r.sys.IoBuildAsynchronousFsdRequest(queues.IRP_MJ_READ, d.dev, iosb, tag)
	d.r.sys.IoCallDriver(d.dev, irp)
	return iosb, irp
}

// REFERENCE §1.12: IoStartPacket runs StartIo for one IRP at a time, in
// arrival order; IoStartNextPacket hands over the next and leaves the
// device idle when none is left; a queued IRP that is cancelled leaves the
// queue and completes cancelled.
func TestStartIoSerializesAndCancelsQueued(t *testing.T) {
	r := newWIRig(t, wiCPUs(2), queues.DefaultPoolConfig())
	var d *startIoDriver
	var st [3]*kernel.IO_STATUS_BLOCK
	var irps [3]*kernel.IRP
	r.driver(8, func() {
		d = loadStartIo(r, true)
		for i, tag := range []string{"r0", "r1", "r2"} {
			st[i], irps[i] = d.read(tag)
		}
		assert.Equal(t, 2, d.dev.DeviceQueue.Len(), "r1 and r2 wait while r0 runs")
		r.k.IoCancelIrp(irps[1])
		r.k.KeDelayExecutionThread(100 * des.Microsecond)
	})
	require.NoError(t, r.run(t).Err)
	assert.Equal(t, []string{"r0", "r2"}, d.started)
	assert.False(t, d.overlap, "StartIo ran for an IRP while another was on the hardware")
	assert.Equal(t, kernel.STATUS_SUCCESS, st[0].Status)
	assert.Equal(t, kernel.STATUS_CANCELLED, st[1].Status)
	assert.Equal(t, kernel.STATUS_SUCCESS, st[2].Status)
	assert.False(t, d.dev.DeviceQueue.Busy, "the device is idle once the queue drained")
	assert.Nil(t, d.dev.CurrentIrp)
}

// REFERENCE §1.12: an IRP cancelled before IoStartPacket queues it is
// cancelled by IoStartPacket itself, which calls the cancel routine.
func TestStartPacketCallsCancelForCancelledIrp(t *testing.T) {
	r := newWIRig(t, wiCPUs(1), queues.DefaultPoolConfig())
	var d *startIoDriver
	var late *kernel.IO_STATUS_BLOCK
	r.driver(8, func() {
		d = loadStartIo(r, true)
		d.read("busy")
		iosb := &kernel.IO_STATUS_BLOCK{}
		irp := r.sys.IoBuildAsynchronousFsdRequest(queues.IRP_MJ_READ, d.dev, iosb, "late")
		r.k.IoCancelIrp(irp) // no cancel routine yet: only the flag is set
		r.sys.IoCallDriver(d.dev, irp)
		late = iosb
		r.k.KeDelayExecutionThread(50 * des.Microsecond)
	})
	require.NoError(t, r.run(t).Err)
	assert.Equal(t, kernel.STATUS_CANCELLED, late.Status)
	assert.Equal(t, []string{"busy"}, d.started)
}

// REFERENCE §1.12: the classic StartIo bug. A StartIo that leaves the cancel
// routine set lets a cancel of the IRP on the hardware complete it while
// the hardware's DPC completes it too: 0x44.
func TestStartIoWithoutClearingCancelRoutine(t *testing.T) {
	r := newWIRig(t, wiCPUs(1), queues.DefaultPoolConfig())
	r.driver(8, func() {
		d := loadStartIo(r, false)
		_, irp := d.read("r0")
		r.k.IoCancelIrp(irp) // r0 is on the hardware
		r.k.KeDelayExecutionThread(50 * des.Microsecond)
	})
	wiRequireBugCheck(t, r.run(t), kernel.MULTIPLE_IRP_COMPLETE_REQUESTS, wiAnyP1)
}

// REFERENCE §1.12: IoStartPacket with a key queues by key, and
// IoStartNextPacketByKey hands StartIo the first IRP whose key is ≥ the
// one given (the head when none is).
func TestStartPacketByKey(t *testing.T) {
	r := newWIRig(t, wiCPUs(1), queues.DefaultPoolConfig())
	var started []string
	r.driver(8, func() {
		k := r.k
		var dev *queues.DEVICE_OBJECT
		r.sys.LoadDriver("keyed", func(d *queues.DRIVER_OBJECT) kernel.NTSTATUS {
			dev, _ = r.sys.IoCreateDevice(d, "keyed0")
			d.DriverStartIo = func(_ *queues.DEVICE_OBJECT, irp *kernel.IRP) {
				started = append(started, irp.Tag)
				k.IoFreeIrp(irp) // only the order matters here
			}
			return kernel.STATUS_SUCCESS
		})
		for _, key := range []uint32{0, 40, 20, 60} {
			r.sys.IoStartPacket(dev, r.sys.IoAllocateIrp(1, fmt.Sprintf("k%d", key)), &key, nil)
		}
		old := k.KeRaiseIrqlToDpcLevel()
		r.sys.IoStartNextPacketByKey(dev, false, 30) // k40
		r.sys.IoStartNextPacketByKey(dev, false, 99) // none ≥ 99: the head, k20
		r.sys.IoStartNextPacket(dev, false)          // k60
		r.sys.IoStartNextPacket(dev, false)          // empty: the device goes idle
		k.KeLowerIrql(old)
		assert.False(t, dev.DeviceQueue.Busy)
	})
	require.NoError(t, r.run(t).Err)
	assert.Equal(t, []string{"k0", "k40", "k20", "k60"}, started)
}
