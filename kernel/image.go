package kernel

import (
	"fmt"
	"hash/fnv"
)

// Image is the code of one driver: mapped while the driver is loaded,
// gone once the I/O manager has unloaded it (REFERENCE §6.8). The kernel
// ties to an image every thread and DPC created while that image's code
// runs (DriverEntry, a dispatch routine, a work routine of the driver, or
// a thread or DPC that is itself tied to it), and every DPC and interrupt
// service routine initialised there. Code of an unloaded image must not
// run: a DPC whose routine is in it, or a thread of the driver that runs
// again (its start routine, or the return from whatever it was blocked or
// preempted in), bug-checks with
// DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS 0xCE, the bug check
// Windows raises for a fault on an address of an unloaded driver
// (BC:0xCE names "DPCs, worker threads, or other such items").
//
// Package queues makes one per DRIVER_OBJECT; driver code never creates
// them.
type Image struct {
	name     string
	unloaded bool
	unload   string // what must stop the image's DPCs and threads, for reports ("" is DriverUnload)
	// standalone: no DRIVER_OBJECT stands for the image (a minifilter
	// registered from scenario code), so work items its code initialises
	// with the package-level ExInitializeWorkItem are its own.
	standalone bool
}

// NewImage returns a mapped image named name (a driver's name).
func NewImage(name string) *Image { return &Image{name: name} }

// Name returns the image's name.
func (i *Image) Name() string { return i.name }

// SetUnloadRoutine names, for the 0xCE reports, the driver routine that must
// stop the image's DPCs and threads before it is unmapped, where that is not
// DriverUnload (a minifilter's teardown and unload callbacks). Not a
// scheduling point.
func (i *Image) SetUnloadRoutine(what string) { i.unload = what }

func (i *Image) unloadRoutine() string {
	if i.unload == "" {
		return "DriverUnload"
	}
	return i.unload
}

// SetStandalone marks an image no DRIVER_OBJECT stands for (the filter
// manager's image of a minifilter registered from scenario code, REFERENCE
// §5.11): package queues then ties an executive work item initialised in its
// code to it. Not a scheduling point.
func (i *Image) SetStandalone() { i.standalone = true }

// Standalone reports whether SetStandalone marked the image.
func (i *Image) Standalone() bool { return i.standalone }

// Loaded reports whether the image's code is still mapped.
func (i *Image) Loaded() bool { return !i.unloaded }

// SwitchImage makes img the image whose code the caller runs, and returns
// the previous one for the caller to restore when the driver routine
// returns: threads and DPCs created meanwhile are tied to img (see Image).
// Package queues brackets the driver routines it calls with it
// (DriverEntry, DriverUnload, dispatch and work routines):
//
//	prev := k.Layer().SwitchImage(d.Image())
//	st := entry(d)
//	k.Layer().SwitchImage(prev)
//
// From setup code (outside simulated code) it sets the image for what
// setup creates. Not a scheduling point; allocates nothing.
func (l *Layer) SwitchImage(img *Image) (prev *Image) {
	k := l.kernel()
	if e := k.curOrNil(); e != nil {
		prev, e.image = e.image, img
		return prev
	}
	prev, k.setupImage = k.setupImage, img
	return prev
}

// UnloadImage unmaps img: from now on its code must not run (see Image).
func (l *Layer) UnloadImage(img *Image) { img.unloaded = true }

// RemapImage maps img again: for a package that recycles its image objects
// from run to run (the filter manager keeps one per recycled FLT_FILTER)
// instead of allocating a new one with NewImage. Not a scheduling point.
func (l *Layer) RemapImage(img *Image) { img.unloaded = false }

// CurrentImage returns the image whose code is calling, nil for code of
// no driver image (a scenario's own threads, kernel components).
func (l *Layer) CurrentImage() *Image { return l.kernel().currentImage() }

func (k *Kernel) currentImage() *Image {
	if e := k.curOrNil(); e != nil {
		return e.image
	}
	return k.setupImage
}

// Image returns the driver image t's code belongs to, nil for a thread
// created outside any driver's code.
func (t *Thread) Image() *Image { return t.owner }

// Image returns the driver image d's routine belongs to, nil for a DPC
// initialised outside any driver's code.
func (d *KDPC) Image() *Image { return d.image }

// runsUnloadedCode reports whether resuming e would execute code of an
// unloaded image: a driver thread that has not finished its start routine,
// or a DPC context in the middle of a driver's DPC routine. A thread that
// is only visiting a driver (a scenario's thread in a dispatch routine) is
// not checked: Windows defers an unload while I/O is outstanding, which the
// model does not track. Checked on every resumption: it must stay cheap.
func (e *exec) runsUnloadedCode() bool {
	if t := e.thread; t != nil && !t.dpcThread {
		return t.owner != nil && t.owner.unloaded
	}
	return e.image != nil && e.image.unloaded
}

// unloadedResume raises 0xCE for e resuming in an unloaded image (BC:0xCE
// P1 the address referenced, P2 0 = execute, P3 the referencing address).
// Called from the event loop before e's coroutine would run, so it never
// continues.
func (k *Kernel) unloadedResume(e *exec) {
	t := e.thread
	if t == nil && e.dpcRunning == nil { // an ISR context
		id := imageCodeID(e.image.name, e.name)
		k.bugCheck(e, "MmAccessFault", DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS, id, 0, id, 0,
			fmt.Sprintf("%s returns into an interrupt service routine of driver %s after the image was unloaded (REFERENCE §6.8)", e.name, e.image.name))
		return
	}
	if t == nil || t.dpcThread {
		// e.image is the image whose code the DPC runs now: its own, or
		// a driver's routine that a system DPC (the I/O timer's) called.
		d := e.dpcRunning
		id := imageCodeID(e.image.name, d.Name)
		k.bugCheck(e, "MmAccessFault", DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS, id, 0, id, 0,
			fmt.Sprintf("DPC %s returns into its routine, code of driver %s, after the image was unloaded: after KeCancelTimer, KeRemoveQueueDpc or IoStopTimer, %s must call KeFlushQueuedDpcs, which waits for a DPC already running (REFERENCE §6.8)",
				d.Name, e.image.name, e.image.unloadRoutine()))
		return
	}
	how := "returns into its code"
	if !t.started {
		how = "starts its start routine"
	}
	id := imageCodeID(t.owner.name, t.name)
	k.bugCheck(e, "MmAccessFault", DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS, id, 0, id, 0,
		fmt.Sprintf("thread %s of driver %s %s after the image was unloaded: %s must make its threads exit and wait on the thread object (KeWaitForSingleObject on the thread, not an event the thread sets) (REFERENCE §6.8)",
			t.name, t.owner.name, how, t.owner.unloadRoutine()))
}

// unloadedDpc raises 0xCE for DPC d about to run in an unloaded image.
func (k *Kernel) unloadedDpc(e *exec, d *KDPC) {
	id := imageCodeID(d.image.name, d.Name)
	k.bugCheck(e, "KiExecuteDpc", DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS, id, 0, id, 0,
		fmt.Sprintf("DPC %s of driver %s runs after the image was unloaded: %s must first stop whatever arms its timers or queues its DPCs (its threads, its interrupt, a DPC that re-arms), then cancel its timers (KeCancelTimer), remove queued DPCs (KeRemoveQueueDpc) and KeFlushQueuedDpcs (REFERENCE §6.8)",
			d.Name, d.image.name, d.image.unloadRoutine()))
}

// unloadedIsr raises 0xCE for a connected ISR of an unloaded image.
func (k *Kernel) unloadedIsr(e *exec, intr *KINTERRUPT) {
	id := imageCodeID(intr.image.name, intr.Name)
	k.bugCheck(e, "KiInterruptDispatch", DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS, id, 0, id, 0,
		fmt.Sprintf("interrupt %s of driver %s is still connected after the image was unloaded: DriverUnload must call IoDisconnectInterrupt (REFERENCE §6.8)",
			intr.Name, intr.image.name))
}

// unloadedCompletionRoutine raises 0xCE for a completion routine of an
// unloaded image about to be called: nothing held the image for an IRP the
// driver sent to another driver's device (REFERENCE §5.6, §6.8).
func (k *Kernel) unloadedCompletionRoutine(e *exec, irp *IRP, img *Image) {
	id := imageCodeID(img.name, irp.name)
	k.bugCheck(e, "IoCompleteRequest", DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS, id, 0, id, 0,
		fmt.Sprintf("the completion routine driver %s set on %s runs after the image was unloaded: DriverUnload must wait until every IRP it sent down has come back to its completion routine (REFERENCE §5.6, §6.8)",
			img.name, irp.name))
}

// imageCodeID stands in for the address of routine in image in bug-check
// parameters: a hash of the names, the same in every run.
func imageCodeID(image, routine string) uint64 {
	h := fnv.New32a()
	h.Write([]byte(image))
	h.Write([]byte{'!'})
	h.Write([]byte(routine))
	return uint64(h.Sum32())
}
