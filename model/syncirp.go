package model

import (
	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues"
)

// Coverage marks of the syncirp scenario (see Mark).
var (
	markWaitsOwnIrpApcsOff  = NewMark("syncirp: waits for its own IRP with APCs disabled")
	markCompletionSawPended = NewMark("syncirp: completion routine saw a pended IRP")
)

// A filter driver sits over a disk (REFERENCE §5.6). Its read handler
// first reads a block of metadata from the disk itself with a synchronous
// request (IoBuildSynchronousFsdRequest, then IoCallDriver and, on
// STATUS_PENDING, a wait for the event), then passes the caller's read
// down with a completion routine. How the disk completes each request is
// a decision: inline (choice 0), or STATUS_PENDING and later from its DPC
// or a worker thread. Bugs that only a pended request shows:
//   - the metadata read is sent while holding the filter's fast mutex
//     (APC_LEVEL), or inside a guarded region: the I/O completion APC that
//     would set the event cannot run, and the thread hangs waiting for its
//     own IRP (REFERENCE §4.10);
//   - the completion routine returns STATUS_SUCCESS without propagating
//     Irp->PendingReturned with IoMarkIrpPending: Verifier 0xC9 P1=0x228.
//
// The correct handler copies what it needs under the mutex, releases it,
// then sends and waits; its completion routine propagates the mark.

const siReads = 2

func init() {
	Register(&Scenario{
		Name: "syncirp",
		Doc: "A filter over a disk reads metadata with a synchronous IRP before passing each read down " +
			"with a completion routine. The disk completes inline, or pends and completes from its DPC or a " +
			"worker (a decision). Sending the synchronous IRP at APC_LEVEL (under a fast mutex) or in a guarded " +
			"region hangs on its own completion APC once the disk pends; a completion routine that drops the " +
			"pending mark is Verifier 0xC9/0x228.",
		Section: "§4.10, §5.6",
		Variants: []Variant{
			{Name: "correct", Doc: "send and wait at PASSIVE_LEVEL; the completion routine propagates the pending mark"},
			{Name: "wait-under-mutex", Bug: true, Doc: "send the metadata IRP and wait for it holding a fast mutex (APC_LEVEL)",
				Marks: []*Mark{markWaitsOwnIrpApcsOff}, Want: "IopCompleteRequest"},
			{Name: "wait-in-guarded-region", Bug: true, Doc: "send the metadata IRP and wait for it inside a guarded region",
				Marks: []*Mark{markWaitsOwnIrpApcsOff}, Want: "IopCompleteRequest"},
			{Name: "drop-pending-mark", Bug: true, Doc: "the completion routine returns STATUS_SUCCESS without IoMarkIrpPending when Irp->PendingReturned",
				Marks: []*Mark{markCompletionSawPended}, Want: "0xC9 DRIVER_VERIFIER_IOMANAGER_VIOLATION (0x228"},
		},
		Setup: setupSyncIrp,
	})
}

// siFilter is the filter's device extension.
type siFilter struct {
	wiDriver
	disk   *queues.SimDevice
	lower  *queues.DEVICE_OBJECT
	mutex  *kernel.FAST_MUTEX
	meta   int // metadata generation, guarded by mutex
	served int
}

func setupSyncIrp(env *Env) error {
	w, err := newWiDriver(env, queues.DefaultPoolConfig())
	if err != nil {
		return err
	}
	x := &siFilter{wiDriver: w, mutex: env.K.ExInitializeFastMutex("si meta")}
	env.AtEnd("every read served", wiCountCheck("syncirp", siReads, func() int { return x.served }))
	env.K.PsCreateSystemThread("app", 8, func() {
		x.disk = x.sys.NewSimDevice("disk", 50*des.Microsecond)
		x.disk.Length = 512
		filter := x.loadDriver("si", x.driverEntry)
		x.lower = x.sys.IoAttachDeviceToDeviceStack(filter.Devices()[0], x.disk.Device)
		for range siReads {
			x.read()
		}
		env.BeginDrain()
	})
	return nil
}

func (x *siFilter) driverEntry(d *queues.DRIVER_OBJECT) kernel.NTSTATUS {
	d.MajorFunction[queues.IRP_MJ_READ] = x.dispatchRead
	return x.createDevice(d, x)
}

// read is the application's synchronous read through the filter.
func (x *siFilter) read() {
	var iosb kernel.IO_STATUS_BLOCK
	ev := x.k.KeInitializeEvent("app read", kernel.NotificationEvent, false)
	irp := x.sys.IoBuildSynchronousFsdRequest(queues.IRP_MJ_READ, x.dev, ev, &iosb, "app read")
	if x.sys.IoCallDriver(x.dev, irp) == kernel.STATUS_PENDING {
		x.k.KeWaitForSingleObject(ev, kernel.Infinite)
	}
	if iosb.Status == kernel.STATUS_SUCCESS {
		x.served++
	}
}

// dispatchRead reads the metadata, then passes the read down.
func (x *siFilter) dispatchRead(_ *queues.DEVICE_OBJECT, irp *kernel.IRP) kernel.NTSTATUS {
	k := x.k
	switch {
	case x.env.Is("wait-under-mutex"):
		k.ExAcquireFastMutex(x.mutex)
		x.readMetadata()
		x.meta++
		k.ExReleaseFastMutex(x.mutex)
	case x.env.Is("wait-in-guarded-region"):
		k.KeEnterGuardedRegion()
		x.readMetadata()
		k.KeLeaveGuardedRegion()
	default:
		k.ExAcquireFastMutex(x.mutex)
		x.meta++
		k.ExReleaseFastMutex(x.mutex)
		x.readMetadata()
	}
	k.IoCopyCurrentIrpStackLocationToNext(irp)
	k.IoSetCompletionRoutine(irp, x.readDone, nil, true, true, true)
	return x.sys.IoCallDriver(x.lower, irp)
}

// readMetadata is the synchronous request to the disk.
func (x *siFilter) readMetadata() {
	k := x.k
	var iosb kernel.IO_STATUS_BLOCK
	ev := k.KeInitializeEvent("si metadata", kernel.NotificationEvent, false)
	irp := x.sys.IoBuildSynchronousFsdRequest(queues.IRP_MJ_READ, x.lower, ev, &iosb, "metadata")
	if x.sys.IoCallDriver(x.lower, irp) == kernel.STATUS_PENDING {
		if k.KeAreAllApcsDisabled() {
			x.env.Hit(markWaitsOwnIrpApcsOff)
		}
		k.KeWaitForSingleObject(ev, kernel.Infinite)
	}
}

// readDone is the completion routine of the passed-down read.
func (x *siFilter) readDone(_ any, irp *kernel.IRP, _ any) kernel.NTSTATUS {
	if irp.PendingReturned() {
		x.env.Hit(markCompletionSawPended)
		if !x.env.Is("drop-pending-mark") {
			x.k.IoMarkIrpPending(irp)
		}
	}
	return kernel.STATUS_SUCCESS
}
