package model

import (
	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues"
)

// Coverage marks of this scenario (see Mark).
var (
	markDpcInFlightAtCancel = NewMark("unloadtimer: watchdog DPC running when its timer was cancelled")
	markPollerInEpilogue    = NewMark("unloadtimer: poller still in driver code when DriverUnload saw it finish")
)

// A device driver keeps a periodic watchdog timer whose DPC samples the
// device under a spin lock and kicks a polling system thread, both set up
// in DriverEntry (REFERENCE §6.8, §4.8). DriverUnload must leave none of
// its code able to run: cancel the timer, flush DPCs that are already
// queued or running (KeFlushQueuedDpcs), make the thread return and wait
// on the thread object. Each shortcut leaves a window in which a DPC or
// the thread executes the unmapped image: 0xCE.

// Timing of the watchdog scenario.
const (
	utPeriod   = 20 * des.Microsecond // the watchdog timer's period
	utDpcWork  = 8 * des.Microsecond  // the DPC's sampling, under the spin lock
	utPollWork = 5 * des.Microsecond  // the poller's work per kick
	utEpilogue = 3 * des.Microsecond  // the poller's exit logging after it signals
)

func init() {
	Register(&Scenario{
		Name: "unloadtimer",
		Doc: "A driver keeps a periodic watchdog timer whose DPC samples the device and kicks a polling " +
			"system thread; the service control manager unloads it while the watchdog runs. DriverUnload " +
			"must cancel the timer, flush DPCs already queued or running, stop the thread and wait on the " +
			"thread object; each shortcut lets a DPC or the thread run in the unloaded image (0xCE).",
		Section: "§6.8, §4.8",
		Variants: []Variant{
			{Name: "correct", Doc: "KeCancelTimer, KeFlushQueuedDpcs, stop the poller and wait on its thread object"},
			{Name: "no-cancel", Bug: true, Doc: "the timer is never cancelled: its next DPC runs in the unloaded image", Want: "0xCE"},
			{Name: "no-flush", Bug: true, Doc: "KeCancelTimer without KeFlushQueuedDpcs: a DPC already running (or queued) outlives the image",
				Marks: []*Mark{markDpcInFlightAtCancel}, Want: "0xCE"},
			{Name: "exit-event", Bug: true, Doc: "DriverUnload waits for an event the poller sets before its exit logging, not for the thread object",
				Marks: []*Mark{markPollerInEpilogue}, Want: "0xCE"},
		},
		Setup: setupUnloadTimer,
	})
}

// utExtension is the device extension of the watchdog driver.
type utExtension struct {
	wiDriver
	lock      *kernel.KSPIN_LOCK
	timer     *kernel.KTIMER
	dpc       *kernel.KDPC
	kick      *kernel.KEVENT // the DPC wakes the poller
	exited    *kernel.KEVENT // the exit-event variant's "poller done"
	poller    *kernel.Thread
	samples   *kernel.Cell
	stopping  bool // read by the poller after each kick
	dpcActive bool // model-only: the DPC is queued or running
}

func setupUnloadTimer(env *Env) error {
	k := env.K
	w, err := newWiDriver(env, queues.DefaultPoolConfig())
	if err != nil {
		return err
	}
	x := &utExtension{wiDriver: w, samples: k.NewCell("samples", 0)}
	k.PsCreateSystemThread("scm", 8, func() {
		drv := x.loadDriver("watchdog", x.driverEntry)
		// Plainly the unload comes between two watchdog ticks; otherwise
		// while a tick's DPC is queued or running.
		delay := []des.Duration{3*utPeriod + utPeriod/4, 3*utPeriod + utPeriod/2, 4 * utPeriod}
		k.Compute(delay[env.Choose("unloadtimer: time until the driver is unloaded", len(delay))])
		x.sys.UnloadDriver(drv)
		env.BeginDrain()
	})
	return nil
}

func (x *utExtension) driverEntry(d *queues.DRIVER_OBJECT) kernel.NTSTATUS {
	k := x.k
	if st := x.createDevice(d, x); !kernel.NT_SUCCESS(st) {
		return st
	}
	x.lock = k.KeInitializeSpinLock("watchdog lock")
	x.kick = k.KeInitializeEvent("kick", kernel.SynchronizationEvent, false)
	x.exited = k.KeInitializeEvent("poller exited", kernel.NotificationEvent, false)
	x.timer = k.KeInitializeTimer("watchdog")
	x.dpc = k.KeInitializeDpc("watchdog", x.watchdogDpc, x) // tied to this driver's image
	x.poller = k.PsCreateSystemThread("poller", 9, x.poll)
	k.KeSetTimerEx(x.timer, utPeriod, utPeriod, x.dpc)
	d.DriverUnload = x.driverUnload
	return kernel.STATUS_SUCCESS
}

// watchdogDpc samples the device and kicks the poller.
func (x *utExtension) watchdogDpc(*kernel.KDPC, any, any, any) {
	k := x.k
	x.dpcActive = true
	k.KeAcquireSpinLockAtDpcLevel(x.lock)
	k.Compute(utDpcWork)
	k.InterlockedIncrement(x.samples)
	k.KeReleaseSpinLockFromDpcLevel(x.lock)
	k.KeSetEvent(x.kick, kernel.IO_NO_INCREMENT, false)
	x.dpcActive = false
}

// poll is the driver's system thread: it serves kicks until told to stop.
func (x *utExtension) poll() {
	k := x.k
	for {
		k.KeWaitForSingleObject(x.kick, kernel.Infinite)
		if x.stopping {
			break
		}
		k.Compute(utPollWork)
	}
	if x.env.Is("exit-event") {
		k.KeSetEvent(x.exited, kernel.IO_NO_INCREMENT, false)
		k.Compute(utEpilogue) // still the driver's code
	}
}

func (x *utExtension) driverUnload(*queues.DRIVER_OBJECT) {
	k := x.k
	x.stopping = true
	k.KeSetEvent(x.kick, kernel.IO_NO_INCREMENT, false)
	if x.env.Is("exit-event") {
		k.KeWaitForSingleObject(x.exited, kernel.Infinite)
		if x.poller.State() != kernel.Terminated {
			x.env.Hit(markPollerInEpilogue)
		}
	} else {
		k.KeWaitForSingleObject(x.poller.Object(), kernel.Infinite)
	}
	if !x.env.Is("no-cancel") {
		k.KeCancelTimer(x.timer)
		if x.dpcActive {
			x.env.Hit(markDpcInFlightAtCancel)
		}
	}
	if x.env.Is("correct") || x.env.Is("exit-event") {
		k.KeFlushQueuedDpcs()
	}
	x.sys.IoDeleteDevice(x.dev)
}
