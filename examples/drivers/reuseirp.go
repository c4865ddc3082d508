package drivers

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/queues"
)

// ReuseIrp is a polling driver that reads a disk over and over with one
// IRP it allocated itself (IoAllocateIrp), reusing it for each read. Its
// completion routine signals the reader and returns
// STATUS_MORE_PROCESSING_REQUIRED: the IRP has no thread to complete to,
// so completion must stop with its owner. The reader waits for each read
// with a timeout to log slow ones, but keeps waiting: only when the
// routine has run is the IRP its own again, to IoReuseIrp and send, and
// finally to IoFreeIrp. The bugs let completion run on to the top (no
// thread: a crash in IoCompleteRequest), or reuse the IRP when the wait
// times out while the disk still holds it (REFERENCE §1.9, §1.10).
var ReuseIrp = &model.Scenario{
	Name: "reuseirp",
	Doc: "A driver polls a disk with one IoAllocateIrp IRP, reused (IoReuseIrp) after each completion routine " +
		"returns STATUS_MORE_PROCESSING_REQUIRED and freed at the end. The bugs let completion reach the top " +
		"of the stack, or reuse the IRP on a wait timeout while the disk still has it.",
	Section: "REFERENCE §1.9, §1.10",
	Variants: []model.Variant{
		{Name: "correct", Doc: "the completion routine stops completion; a timed-out wait is logged and the reader waits on"},
		{Name: "no-stop", Bug: true, Doc: "the completion routine returns STATUS_SUCCESS: completion reaches the top of a thread-less IRP",
			Want: "0x7E|0x1E|0xA"},
		{Name: "reuse-on-timeout", Bug: true, Doc: "a read not back within the timeout is given up and the IRP reused while the disk still holds it",
			Want: "0xC9"},
	},
	Setup: reuseIrpSetup,
}

const ruReads = 4

// ruExt is the polling driver's state.
type ruExt struct {
	env    *model.Env
	k      *kernel.Kernel
	sys    *queues.System
	disk   *queues.SimDevice
	irp    *kernel.IRP
	back   *kernel.KEVENT // set by the completion routine
	reader *kernel.Thread
	done   int // completion routines run
	slow   int // waits that timed out
}

func reuseIrpSetup(env *model.Env) error {
	k := env.K
	sys, err := queues.NewSystem(k, queues.DefaultPoolConfig())
	if err != nil {
		return err
	}
	x := &ruExt{env: env, k: k, sys: sys}
	k.PsCreateSystemThread("scm", 8, func() {
		x.disk = sys.NewSimDevice("disk", 4*des.Microsecond)
		drv, st := sys.LoadDriver("poller", x.driverEntry)
		if st != kernel.STATUS_SUCCESS {
			env.Violation("driver loads", "%v", st)
			return
		}
		k.KeWaitForSingleObject(x.reader.Object(), kernel.Infinite) // the reads are the test: explore them
		env.BeginDrain()
		sys.UnloadDriver(drv)
	})
	env.AtEnd("every read came back", func() error {
		if x.done != ruReads {
			return fmt.Errorf("%d of %d completion routines ran", x.done, ruReads)
		}
		return nil
	})
	return nil
}

func (x *ruExt) driverEntry(d *queues.DRIVER_OBJECT) kernel.NTSTATUS {
	k := x.k
	x.irp = x.sys.IoAllocateIrp(x.disk.Device.StackSize, "poll")
	x.back = k.KeInitializeEvent("read back", kernel.SynchronizationEvent, false)
	x.reader = k.PsCreateSystemThread("reader", 8, x.poll)
	d.DriverUnload = x.unload
	return kernel.STATUS_SUCCESS
}

// poll sends the reads one after the other with the same IRP.
func (x *ruExt) poll() {
	k := x.k
	for i := range ruReads {
		if i > 0 {
			k.IoReuseIrp(x.irp, kernel.STATUS_SUCCESS)
		}
		// How slow the disk is this time: 4, 10 or 16 µs against a 12 µs timeout.
		x.disk.Latency = des.Duration(4+x.env.Choose("disk latency", 3)*6) * des.Microsecond
		k.IoGetNextIrpStackLocation(x.irp).MajorFunction = queues.IRP_MJ_READ
		k.IoSetCompletionRoutine(x.irp, x.readDone, nil, true, true, true)
		x.sys.IoCallDriver(x.disk.Device, x.irp)
		if k.KeWaitForSingleObject(x.back, 12*des.Microsecond) == kernel.STATUS_TIMEOUT {
			x.slow++
			if x.env.Is("reuse-on-timeout") {
				continue // give up on it: the next IoReuseIrp finds it still at the disk
			}
			k.KeWaitForSingleObject(x.back, kernel.Infinite)
		}
	}
	if x.env.Is("reuse-on-timeout") {
		k.KeDelayExecutionThread(40 * des.Microsecond) // let a late read land before the free
	}
	k.IoFreeIrp(x.irp)
}

// readDone is the completion routine: the IRP is the driver's own, so
// completion stops here.
func (x *ruExt) readDone(_ any, irp *kernel.IRP, _ any) kernel.NTSTATUS {
	k := x.k
	x.done++
	k.KeSetEvent(x.back, kernel.IO_NO_INCREMENT, false)
	if x.env.Is("no-stop") {
		return kernel.STATUS_SUCCESS
	}
	return kernel.STATUS_MORE_PROCESSING_REQUIRED
}

func (x *ruExt) unload(*queues.DRIVER_OBJECT) {
	x.k.KeWaitForSingleObject(x.reader.Object(), kernel.Infinite)
}
