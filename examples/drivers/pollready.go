package drivers

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/queues"
)

// pollready: a controller whose commands are issued by a driver thread at
// PASSIVE_LEVEL. The thread arms a "done" flag, writes the command
// register and polls the flag: first a short busy wait with
// KeStallExecutionProcessor (a fast device answers within microseconds),
// then a KeDelayExecutionThread backoff that doubles up to 1 ms, bounded by
// a deadline read from KeQueryInterruptTime (REFERENCE §4.16). The device
// answers with an interrupt whose ISR queues the DPC that stores the result
// and sets the flag (REFERENCE §4.8).
//
// The bugs: clearing the flag after writing the command register wipes the
// completion of a device (or a schedule) fast enough to answer in between,
// and the thread times out although the device answered; polling at
// DISPATCH_LEVEL (raised so that "nothing gets between the command and the
// poll") keeps the DPC off the thread's own processor, so when the device
// interrupts there, the flag cannot be set until the poll gives up
// (REFERENCE §4.5: DPCs queued to a processor run only when its IRQL drops
// below DISPATCH_LEVEL).

// PollReady is the scenario.
var PollReady = &model.Scenario{
	Name: "pollready",
	Doc: "A driver thread issues device commands and polls a 'done' flag that the interrupt's DPC sets: a short " +
		"KeStallExecutionProcessor spin, then a KeDelayExecutionThread backoff up to a deadline. The bugs clear the " +
		"flag after starting the command (a fast completion is wiped), or poll at DISPATCH_LEVEL, where the DPC " +
		"queued on the poller's own processor cannot run.",
	Section: "REFERENCE §4.5, §4.8, §4.16",
	Variants: []model.Variant{
		{Name: "correct", Doc: "arm the flag, then start the command; poll at PASSIVE_LEVEL with stalls, then a delay backoff, until a deadline"},
		{Name: "clear-after-start", Bug: true, Doc: "the flag is cleared after the command register is written: a completion in between is lost and the command times out",
			Want: "invariant every command completed"},
		{Name: "poll-at-dispatch", Bug: true, Doc: "the thread raises to DISPATCH_LEVEL and stall-polls the flag: the DPC queued on its own processor runs only after the poll has timed out",
			Want: "invariant every command completed"},
		{Name: "spin-at-dispatch", Bug: true, Doc: "as poll-at-dispatch, without a bound: once the device interrupts the poller's own processor, it spins for ever (Windows: DPC_WATCHDOG_VIOLATION 0x133)",
			Want: "livelock"},
	},
	Setup: setupPollReady,
	// correct runs make fewer than 300 decisions and 3,000 steps (20,000
	// explored runs); spin-at-dispatch ends on this budget.
	Budget: model.Budget{Steps: 100_000, Decisions: 20_000},
}

const (
	prCommands    = 3
	prSpinPolls   = 8                    // busy-wait polls of prSpinStall µs
	prSpinStall   = 5                    // µs per KeStallExecutionProcessor
	prDeadline    = 20 * des.Millisecond // per command
	prFirstDelay  = 10 * des.Microsecond
	prMaxDelay    = des.Millisecond
	prDispatchMax = 200 // stalls of the poll-at-dispatch variant (1 ms at DISPATCH_LEVEL)
)

// prLatencies are the device's answer times: the usual one first.
var prLatencies = [...]des.Duration{25 * des.Microsecond, 2 * des.Microsecond, 300 * des.Microsecond, 3 * des.Millisecond}

type pollReadyDev struct {
	env    *model.Env
	k      *kernel.Kernel
	sys    *queues.System
	dev    *queues.DEVICE_OBJECT
	intr   *kernel.KINTERRUPT
	dpc    *kernel.KDPC
	issuer *kernel.Thread
	cmdReg *kernel.Cell // the command register: the command being executed
	result *kernel.Cell // the result register the DPC copies
	done   *kernel.Cell // set by the DPC, armed by the issuer
	// workload bookkeeping (plain Go, not driver state)
	ok       int
	timedOut []string
}

func setupPollReady(env *model.Env) error {
	k := env.K
	sys, err := queues.NewSystem(k, queues.DefaultPoolConfig())
	if err != nil {
		return err
	}
	x := &pollReadyDev{env: env, k: k, sys: sys}
	k.PsCreateSystemThread("scm", 8, func() {
		drv, st := sys.LoadDriver("pollready", x.driverEntry)
		if st != kernel.STATUS_SUCCESS {
			env.Violation("driver loads", "%v", st)
			return
		}
		k.KeWaitForSingleObject(x.issuer.Object(), kernel.Infinite)
		env.BeginDrain()
		sys.UnloadDriver(drv)
	})
	env.AtEnd("every command completed", func() error {
		if x.ok != prCommands {
			return fmt.Errorf("%d of %d commands completed; timed out: %v", x.ok, prCommands, x.timedOut)
		}
		return nil
	})
	return nil
}

func (x *pollReadyDev) driverEntry(d *queues.DRIVER_OBJECT) kernel.NTSTATUS {
	k := x.k
	dev, st := x.sys.IoCreateDevice(d, "ctl0")
	if st != kernel.STATUS_SUCCESS {
		return st
	}
	x.dev = dev
	x.cmdReg = k.NewCell("command register", 0)
	x.result = k.NewCell("result register", 0)
	x.done = k.NewCell("done", 0)
	x.dpc = k.KeInitializeDpc("ctl dpc", x.dpcRoutine, nil)
	intr, err := k.IoConnectInterrupt("ctl", 5, x.isr, nil)
	if err != nil {
		x.sys.IoDeleteDevice(dev)
		return kernel.STATUS_INSUFFICIENT_RESOURCES
	}
	x.intr = intr
	x.issuer = k.PsCreateSystemThread("issuer", 8, x.issue)
	d.DriverUnload = x.unload
	return kernel.STATUS_SUCCESS
}

func (x *pollReadyDev) isr(*kernel.KINTERRUPT, any) bool {
	x.k.KeInsertQueueDpc(x.dpc, nil, nil)
	return true
}

// dpcRoutine copies the device's answer and tells the issuer.
func (x *pollReadyDev) dpcRoutine(*kernel.KDPC, any, any, any) {
	k := x.k
	cmd := k.Read(x.cmdReg)
	k.Compute(2 * des.Microsecond)
	k.Write(x.result, cmd*10)
	k.InterlockedExchange(x.done, 1)
}

// issue runs the commands one after the other.
func (x *pollReadyDev) issue() {
	k := x.k
	for i := 1; i <= prCommands; i++ {
		if !x.env.Is("clear-after-start") {
			k.InterlockedExchange(x.done, 0)
		}
		x.startCommand(int64(i))
		if x.env.Is("clear-after-start") {
			k.InterlockedExchange(x.done, 0)
		}
		var st kernel.NTSTATUS
		switch {
		case x.env.Is("poll-at-dispatch"):
			st = x.pollAtDispatch()
		case x.env.Is("spin-at-dispatch"):
			st = x.spinAtDispatch()
		default:
			st = x.poll()
		}
		if st != kernel.STATUS_SUCCESS {
			x.timedOut = append(x.timedOut, fmt.Sprintf("command %d (%v at t=%v)", i, st, k.Now()))
			continue
		}
		if r := k.Read(x.result); r != int64(i)*10 {
			x.env.Violation("result matches its command", "command %d read result %d", i, r)
		}
		x.ok++
	}
}

// startCommand writes the command register; the device (workload) answers
// with an interrupt after its latency, on a processor of its choice.
func (x *pollReadyDev) startCommand(cmd int64) {
	k := x.k
	k.Write(x.cmdReg, cmd)
	lat := prLatencies[x.env.Choose("device latency", len(prLatencies))]
	k.DeviceInterrupt(x.intr, x.env.Choose("interrupt cpu", 2), k.Now().Add(lat))
}

// poll waits for the flag at PASSIVE_LEVEL: busy-wait briefly, then back
// off with delays until the deadline.
func (x *pollReadyDev) poll() kernel.NTSTATUS {
	k := x.k
	for range prSpinPolls {
		if k.Read(x.done) != 0 {
			return kernel.STATUS_SUCCESS
		}
		k.KeStallExecutionProcessor(prSpinStall)
	}
	deadline := k.KeQueryInterruptTime() + uint64(prDeadline/(100*des.Nanosecond))
	delay := prFirstDelay
	for k.Read(x.done) == 0 {
		if k.KeQueryInterruptTime() >= deadline {
			return kernel.STATUS_IO_TIMEOUT
		}
		k.KeDelayExecutionThread(delay)
		delay = min(2*delay, prMaxDelay)
	}
	return kernel.STATUS_SUCCESS
}

// pollAtDispatch is the bug: a bounded stall loop at DISPATCH_LEVEL.
func (x *pollReadyDev) pollAtDispatch() kernel.NTSTATUS {
	k := x.k
	old := k.KeRaiseIrql(kernel.DISPATCH_LEVEL)
	defer k.KeLowerIrql(old)
	for range prDispatchMax {
		if k.Read(x.done) != 0 {
			return kernel.STATUS_SUCCESS
		}
		k.KeStallExecutionProcessor(prSpinStall)
	}
	return kernel.STATUS_IO_TIMEOUT
}

// spinAtDispatch is the same bug without the bound.
func (x *pollReadyDev) spinAtDispatch() kernel.NTSTATUS {
	k := x.k
	old := k.KeRaiseIrql(kernel.DISPATCH_LEVEL)
	defer k.KeLowerIrql(old)
	for k.Read(x.done) == 0 {
		k.KeStallExecutionProcessor(prSpinStall)
	}
	return kernel.STATUS_SUCCESS
}

func (x *pollReadyDev) unload(*queues.DRIVER_OBJECT) {
	k := x.k
	k.KeWaitForSingleObject(x.issuer.Object(), kernel.Infinite)
	k.IoDisconnectInterrupt(x.intr)
	k.KeFlushQueuedDpcs()
	x.sys.IoDeleteDevice(x.dev)
}
