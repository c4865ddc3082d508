package drivers

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
)

// startio: a serial-port driver written the pre-IoCsq way, with a
// StartIo-style queue of its own guarded by the global cancel spin lock.
// Reads are served one at a time: the read at the head is the device's
// current request, the others wait in the driver's list. A read completes
// when the port receives a byte (an interrupt whose DPC completes the
// current read and makes the next one current), so a read that nobody
// cancels and no byte arrives for waits for ever. Every queued or current
// read is cancellable; the cancel routine, called holding the cancel spin
// lock, takes the read off the list (or out of the current slot) before it
// releases the lock and completes it (REFERENCE §1.7, §2.1).
//
// The dispatch routine must test Irp->Cancel and set the cancel routine
// under the cancel spin lock: IoCancelIrp sets Cancel and swaps the routine
// under that lock, so one of the two sees the other (REFERENCE §2.2). The
// bug tests Cancel first, without the lock, then sets the routine: a cancel
// that falls between finds no routine, and the read is never completed
// (Driver Verifier: 0xC4 P1=0x135, a cancelled IRP not completed in time).

var (
	markStartIoLostCancel = model.NewMark("startio: IoCancelIrp found no cancel routine on a read dispatch was queueing")
	markStartIoUnlinkRace = model.NewMark("startio: the DPC took the read the cancel routine was about to unlink")
)

// StartIo is the scenario.
var StartIo = &model.Scenario{
	Name: "startio",
	Doc: "A serial driver's StartIo-style read queue guarded by the cancel spin lock: a byte's interrupt DPC " +
		"completes the current read and starts the next, the application closes the port by cancelling its " +
		"reads. The bug tests Irp->Cancel before setting the cancel routine, without the cancel spin lock: a " +
		"cancel in between is lost and the read never completes.",
	Section: "REFERENCE §1.7, §2.1, §2.2",
	Variants: []model.Variant{
		{Name: "correct", Doc: "dispatch tests Cancel and sets the cancel routine holding the cancel spin lock"},
		{Name: "cancel-check-first", Bug: true, Doc: "dispatch tests Irp->Cancel, then sets the cancel routine and queues without the cancel spin lock around both",
			Marks: []*model.Mark{markStartIoLostCancel}, Want: "0x135"},
		{Name: "unlink-after-release", Bug: true, Doc: "the cancel routine of a queued read releases the cancel spin lock, then unlinks the read: the DPC may have taken it off the list meanwhile",
			Marks: []*model.Mark{markStartIoUnlinkRace}, Want: "0x139|0x44|0x135"},
	},
	Setup: setupStartIo,
}

const sioReads = 3

type sioPort struct {
	env     *model.Env
	k       *kernel.Kernel
	intr    *kernel.KINTERRUPT
	dpc     *kernel.KDPC
	pending kernel.LIST_ENTRY // under the cancel spin lock: reads after the current one
	current *kernel.IRP       // under the cancel spin lock
	entries map[*kernel.IRP]*kernel.LIST_ENTRY
}

func setupStartIo(env *model.Env) error {
	k := env.K
	p := &sioPort{env: env, k: k, entries: map[*kernel.IRP]*kernel.LIST_ENTRY{}}
	k.InitializeListHead(&p.pending)
	p.dpc = k.KeInitializeDpc("port dpc", p.rxDpc, nil)
	intr, err := k.IoConnectInterrupt("port", 5, func(*kernel.KINTERRUPT, any) bool {
		k.KeInsertQueueDpc(p.dpc, nil, nil)
		return true
	}, nil)
	if err != nil {
		return err
	}
	p.intr = intr
	irps := make([]*kernel.IRP, sioReads)
	for i := range irps {
		irps[i] = k.IoAllocateIrp(fmt.Sprintf("read%d", i))
	}
	k.PsCreateSystemThread("app", 8, func() {
		for _, irp := range irps {
			p.dispatchRead(irp)
		}
	})
	k.PsCreateSystemThread("closer", 8, func() {
		// Two bytes arrive; the application gives up on its last read,
		// then closes the port and cancels whatever is still outstanding.
		cpu := env.Choose("interrupt cpu", 2)
		first := k.Now().Add(des.Duration(2+3*env.Choose("first byte at", 3)) * des.Microsecond)
		k.DeviceInterrupt(p.intr, cpu, first)
		k.DeviceInterrupt(p.intr, cpu, first.Add(des.Duration(3+3*env.Choose("second byte after", 3))*des.Microsecond))
		k.KeDelayExecutionThread(des.Duration(1+2*env.Choose("give up at", 6)) * des.Microsecond)
		k.IoCancelIrp(irps[sioReads-1])
		k.KeDelayExecutionThread(20 * des.Microsecond)
		env.BeginDrain()
		for _, irp := range irps {
			k.IoCancelIrp(irp)
		}
		for _, irp := range irps {
			k.VerifyCancelCompletes(irp, 5*des.Millisecond) // Driver Verifier's cancel check
		}
		k.IoDisconnectInterrupt(p.intr)
		k.KeFlushQueuedDpcs()
	})
	return nil
}

// dispatchRead is IRP_MJ_READ: queue the read cancellable, make it current
// if the port is idle, or complete it cancelled at once.
func (p *sioPort) dispatchRead(irp *kernel.IRP) {
	k := p.k
	if p.env.Is("cancel-check-first") {
		if k.IoIsCancelled(irp) {
			p.completeRead(irp, kernel.STATUS_CANCELLED)
			return
		}
		k.IoSetCancelRoutine(irp, p.cancelRead)
		if irp.Cancelled() {
			p.env.Hit(markStartIoLostCancel) // cancelled after the test, before the routine was set
		}
		old := k.IoAcquireCancelSpinLock()
		p.enqueue(irp)
		k.IoReleaseCancelSpinLock(old)
		return
	}
	old := k.IoAcquireCancelSpinLock()
	if k.IoIsCancelled(irp) {
		k.IoReleaseCancelSpinLock(old)
		p.completeRead(irp, kernel.STATUS_CANCELLED)
		return
	}
	k.IoSetCancelRoutine(irp, p.cancelRead)
	p.enqueue(irp)
	k.IoReleaseCancelSpinLock(old)
}

// enqueue marks irp pending and makes it current or queues it. Caller
// holds the cancel spin lock.
func (p *sioPort) enqueue(irp *kernel.IRP) {
	k := p.k
	k.IoMarkIrpPending(irp)
	if p.current == nil {
		p.current = irp // StartIo: the port is idle, this read waits for the next byte
		return
	}
	e := &kernel.LIST_ENTRY{Container: irp}
	p.entries[irp] = e
	k.InsertTailList(&p.pending, e)
}

// startNext makes the first queued read current (IoStartNextPacket's part).
// Caller holds the cancel spin lock.
func (p *sioPort) startNext() {
	k := p.k
	p.current = nil
	if k.IsListEmpty(&p.pending) {
		return
	}
	e := k.RemoveHeadList(&p.pending)
	p.current = e.Container.(*kernel.IRP)
	delete(p.entries, p.current)
}

// cancelRead is the cancel routine: called holding the cancel spin lock,
// it unlinks the read before releasing the lock, then completes it.
func (p *sioPort) cancelRead(irp *kernel.IRP) {
	k := p.k
	if p.env.Is("unlink-after-release") && irp != p.current {
		e := p.entries[irp]
		k.IoReleaseCancelSpinLock(irp.CancelIrql) // the bug: the list is unguarded from here
		if irp == p.current {
			p.env.Hit(markStartIoUnlinkRace) // the DPC made it current in between
		}
		k.RemoveEntryList(e)
		p.completeRead(irp, kernel.STATUS_CANCELLED)
		return
	}
	p.unlink(irp)
	k.IoReleaseCancelSpinLock(irp.CancelIrql)
	p.completeRead(irp, kernel.STATUS_CANCELLED)
}

// unlink takes a read being cancelled out of the current slot or the list.
// Caller holds the cancel spin lock.
func (p *sioPort) unlink(irp *kernel.IRP) {
	k := p.k
	if irp == p.current {
		p.startNext()
	} else if e, ok := p.entries[irp]; ok {
		k.RemoveEntryList(e)
		delete(p.entries, irp)
	}
}

// rxDpc runs for a received byte: it completes the current read, unless its
// cancel routine has it, and starts the next.
func (p *sioPort) rxDpc(*kernel.KDPC, any, any, any) {
	k := p.k
	old := k.IoAcquireCancelSpinLock()
	irp := p.current
	if irp == nil || k.IoSetCancelRoutine(irp, nil) == nil {
		k.IoReleaseCancelSpinLock(old) // no read waiting: the byte goes to the ring buffer
		return
	}
	p.startNext()
	k.IoReleaseCancelSpinLock(old)
	irp.IoStatus.Information = 1
	p.completeRead(irp, kernel.STATUS_SUCCESS)
}

func (p *sioPort) completeRead(irp *kernel.IRP, st kernel.NTSTATUS) {
	irp.IoStatus.Status = st
	p.k.IoCompleteRequest(irp, kernel.IO_NO_INCREMENT)
}
