package queues

import (
	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// IO_TIMER_ROUTINE is a driver's IoTimer routine: the I/O manager calls it
// once a second at DISPATCH_LEVEL while the device's timer is started
// (REFERENCE §1.11).
type IO_TIMER_ROUTINE func(dev *DEVICE_OBJECT, ctx any)

// ioTimer is a device's I/O timer. Its DPC is the I/O manager's, not the
// driver's: it belongs to no driver image, and the routine it calls does.
type ioTimer struct {
	dev     *DEVICE_OBJECT
	routine IO_TIMER_ROUTINE
	ctx     any
	enabled bool
	kt      *kernel.KTIMER
	dpc     *kernel.KDPC
}

// IoInitializeTimer sets up dev's IoTimer routine, called with ctx once
// per second after IoStartTimer (REFERENCE §1.11). Microsoft says to call
// it once per device; a second call replaces the routine.
// Caller IRQL = PASSIVE_LEVEL, checked.
func (s *System) IoInitializeTimer(dev *DEVICE_OBJECT, routine IO_TIMER_ROUTINE, ctx any) kernel.NTSTATUS {
	l := s.k.Layer()
	l.Enter("IoInitializeTimer")
	l.CheckIrqlAtMost("IoInitializeTimer", kernel.PASSIVE_LEVEL)
	if dev.timer != nil {
		dev.timer.routine, dev.timer.ctx = routine, ctx
		return kernel.STATUS_SUCCESS
	}
	t := &ioTimer{dev: dev, routine: routine, ctx: ctx}
	prev := l.SwitchImage(nil) // the I/O manager's timer, not the driver's
	t.kt = s.k.KeInitializeTimerEx("io "+dev.hdr.name, kernel.NotificationEvent)
	t.dpc = s.k.KeInitializeDpc("io timer "+dev.hdr.name, s.ioTimerTick, t)
	l.SwitchImage(prev)
	dev.timer = t
	return kernel.STATUS_SUCCESS
}

// IoStartTimer enables dev's IoTimer routine: the I/O manager's
// one-second tick (every whole second of virtual time, as its single timer
// ticks from boot) calls it from now on. The routine must have been set up
// with IoInitializeTimer; otherwise the call dereferences a NULL timer
// (REFERENCE §1.11).
// Caller IRQL ≤ DISPATCH_LEVEL, checked.
func (s *System) IoStartTimer(dev *DEVICE_OBJECT) {
	t := s.ioTimerOf(dev, "IoStartTimer")
	if t.enabled {
		return
	}
	t.enabled = true
	now := s.k.Now()
	due := des.Second - des.Duration(int64(now)%int64(des.Second))
	s.k.KeSetTimerEx(t.kt, due, des.Second, t.dpc)
}

// IoStopTimer disables dev's IoTimer routine. A call already under way on
// another processor is not waited for: the routine may still be running
// when IoStopTimer returns (REFERENCE §1.11).
// Caller IRQL ≤ DISPATCH_LEVEL, checked.
func (s *System) IoStopTimer(dev *DEVICE_OBJECT) {
	t := s.ioTimerOf(dev, "IoStopTimer")
	t.enabled = false
	s.k.KeCancelTimer(t.kt)
}

// ioTimerOf enters an I/O timer routine and returns dev's timer; a device
// without one is the NULL dereference Windows would make.
func (s *System) ioTimerOf(dev *DEVICE_OBJECT, api string) *ioTimer {
	l := s.k.Layer()
	l.Enter(api)
	l.CheckIrqlAtMost(api, kernel.DISPATCH_LEVEL)
	if dev.timer == nil { // IoStartTimer before IoInitializeTimer
		l.NullDereference(api, "DeviceObject->Timer ("+dev.hdr.name+" has no IoInitializeTimer)", true)
	}
	return dev.timer
}

// ioTimerTick is the I/O manager's timer DPC for one device: it calls the
// driver's routine in the driver's image, unless the timer was stopped or
// the device deleted meanwhile (a deleted device holds no driver
// reference any more, so its image may be gone). The routine's return
// path runs in the driver's image too: an unload that overtakes it there
// is 0xCE when the DPC resumes (REFERENCE §6.8).
func (s *System) ioTimerTick(_ *kernel.KDPC, ctx, _, _ any) {
	t := ctx.(*ioTimer)
	dev := t.dev
	if !t.enabled || dev.deleted {
		return
	}
	l := s.k.Layer()
	prev := l.SwitchImage(dev.DriverObject.image)
	t.routine(dev, t.ctx)
	l.Yield()
	l.SwitchImage(prev)
}
