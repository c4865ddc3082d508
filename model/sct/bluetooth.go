package sct

import (
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
)

// bluetooth_driver is the Windows BCSP Bluetooth driver's stop/IO race as
// the KISS and SLAM papers abstracted it: an I/O path checks a stopping
// flag, then counts itself in; the PnP stop path sets the flag, drops the
// initial count, and treats a zero count as "stopped". An I/O that passed
// the flag check before the stop and counts itself in after it runs on a
// stopped device.

func init() {
	model.Register(&model.Scenario{
		Name: "sct-bluetooth_driver",
		Doc: "A PnP add path (the main thread) checks stoppingFlag, then increments pendingIo and asserts " +
			"the device is not stopped; a stop thread sets stoppingFlag, decrements pendingIo and, at zero, " +
			"signals stoppingEvent and marks the device stopped. Checking the flag before counting in lets the " +
			"stop complete in between. Origin: " + origin + "bluetooth_driver_bad.c (no fixed form; ours: count in " +
			"first, then check the flag and back out, the pattern IoAcquireRemoveLock implements).",
		Section: "SCTBench CS/bluetooth_driver",
		Config:  oneCPU,
		Variants: []model.Variant{
			{Name: "correct", Doc: "ours: increment pendingIo before checking stoppingFlag"},
			{Name: "bug", Bug: true, Doc: "bluetooth_driver_bad.c: check stoppingFlag, then increment",
				Marks: []*model.Mark{markBluetoothDriverStopCompletedBetween}, Want: "sct-bluetooth_driver: stopped"},
		},
		Setup: setupBluetooth,
	})
}

// bcspExtension is the device extension of bluetooth_driver_bad.c.
type bcspExtension struct {
	p             *prog
	pendingIo     *kernel.Cell
	stoppingFlag  *kernel.Cell
	stoppingEvent *kernel.KEVENT
	stopped       *kernel.Cell
}

// ioIncrement counts an I/O in; it fails (-1) once the device is stopping.
func (e *bcspExtension) ioIncrement() int {
	k := e.p.k
	if e.p.env.Is("correct") {
		k.InterlockedIncrement(e.pendingIo)
		if k.Read(e.stoppingFlag) == 1 {
			e.ioDecrement()
			return -1
		}
		return 0
	}
	if k.Read(e.stoppingFlag) == 1 {
		return -1
	}
	if k.Read(e.stopped) == 1 {
		e.p.env.Hit(markBluetoothDriverStopCompletedBetween)
	}
	k.InterlockedIncrement(e.pendingIo)
	return 0
}

func (e *bcspExtension) ioDecrement() {
	if e.p.k.InterlockedDecrement(e.pendingIo) == 0 {
		e.p.k.KeSetEvent(e.stoppingEvent, kernel.IO_NO_INCREMENT, false)
	}
}

func setupBluetooth(env *model.Env) error {
	p := newProg(env, "sct-bluetooth_driver")
	e := &bcspExtension{p: p, pendingIo: p.cell("pendingIo", 1), stoppingFlag: p.cell("stoppingFlag", 0),
		stoppingEvent: p.k.KeInitializeEvent("sct-bluetooth_driver stoppingEvent", kernel.NotificationEvent, false),
		stopped:       p.cell("stopped", 0)}
	p.main(func() {
		stop := p.spawn("BCSP_PnpStop", func() {
			p.k.Write(e.stoppingFlag, 1)
			e.ioDecrement()
			if p.k.KeReadStateEvent(e.stoppingEvent) {
				p.k.Write(e.stopped, 1)
			}
		})
		// BCSP_PnpAdd
		if e.ioIncrement() == 0 {
			s := p.k.Read(e.stopped)
			p.check(s == 0, markBluetoothDriverStopCompletedBetween, "stopped",
				"an I/O counted in on a stopped device")
			e.ioDecrement()
		}
		p.join(stop)
	})
	return nil
}
