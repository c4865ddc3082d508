package queues

import (
	"strconv"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// PointDeviceCompletion is the decision of how a simulated device completes
// a request (REFERENCE §5.6): 0 synchronously in the caller (the natural
// choice), 1 STATUS_PENDING then from its DPC, 2 STATUS_PENDING then from
// a worker thread.
const PointDeviceCompletion des.PointKind = 30

// How a simulated device completes a request (the choices of
// PointDeviceCompletion).
const (
	CompleteInline     = iota // in the dispatch routine, in the caller's thread
	CompleteFromDpc           // STATUS_PENDING; the device's DPC completes it at DISPATCH_LEVEL
	CompleteFromWorker        // STATUS_PENDING; a worker thread completes it at PASSIVE_LEVEL
	completionChoices
)

// SimDevice is the lowest driver of a stack: a disk or a file system that
// completes every request it gets with STATUS_SUCCESS and Information =
// Length, after Latency. How it completes each request is a decision
// (PointDeviceCompletion), choice 0 synchronous; Fixed pins it instead.
type SimDevice struct {
	Device  *DEVICE_OBJECT
	Latency des.Duration
	// Fixed, when ≥ 0, replaces the decision with that choice.
	Fixed int
	// Length is the Information a successful request returns.
	Length uint64

	sys   *System
	label string
	n     int
}

// NewSimDevice loads a driver named name with one device that completes
// requests as SimDevice describes. Call it from a thread at PASSIVE_LEVEL.
// REFERENCE §5.6.
func (s *System) NewSimDevice(name string, latency des.Duration) *SimDevice {
	sd := &SimDevice{sys: s, Latency: latency, Fixed: -1, label: "device " + name + ": how it completes"}
	s.LoadDriver(name, func(d *DRIVER_OBJECT) kernel.NTSTATUS {
		sd.Device, _ = s.IoCreateDevice(d, name)
		for i := range d.MajorFunction {
			d.MajorFunction[i] = sd.dispatch
		}
		return kernel.STATUS_SUCCESS
	})
	return sd
}

// Choose returns how the next request completes (the decision, or Fixed).
func (sd *SimDevice) choose() int {
	if sd.Fixed >= 0 {
		return sd.Fixed
	}
	return sd.sys.k.Layer().Sim().Choose(des.Point{Kind: PointDeviceCompletion, Label: sd.label}, completionChoices)
}

func (sd *SimDevice) dispatch(_ *DEVICE_OBJECT, irp *kernel.IRP) kernel.NTSTATUS {
	k := sd.sys.k
	sd.n++
	switch sd.choose() {
	case CompleteFromDpc:
		k.IoMarkIrpPending(irp)
		t := k.KeInitializeTimerEx(sd.Device.Name()+" io "+strconv.Itoa(sd.n), kernel.NotificationEvent)
		k.KeSetTimer(t, sd.Latency, k.KeInitializeDpc(sd.Device.Name()+" completion", func(*kernel.KDPC, any, any, any) {
			sd.complete(irp)
		}, nil))
		return kernel.STATUS_PENDING
	case CompleteFromWorker:
		k.IoMarkIrpPending(irp)
		k.PsCreateSystemThread(sd.Device.Name()+" worker "+strconv.Itoa(sd.n), 12, func() {
			if sd.Latency > 0 {
				k.KeDelayExecutionThread(sd.Latency)
			}
			sd.complete(irp)
		})
		return kernel.STATUS_PENDING
	}
	k.Compute(sd.Latency) // programmed I/O: the caller's processor is busy meanwhile
	return sd.complete(irp)
}

func (sd *SimDevice) complete(irp *kernel.IRP) kernel.NTSTATUS {
	irp.IoStatus = kernel.IO_STATUS_BLOCK{Status: kernel.STATUS_SUCCESS, Information: sd.Length}
	sd.sys.k.IoCompleteRequest(irp, kernel.IO_DISK_INCREMENT)
	return kernel.STATUS_SUCCESS
}
