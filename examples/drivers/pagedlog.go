package drivers

import (
	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/queues"
)

// pagedlog: a driver flushes its event log every 10 µs. A periodic timer
// (KeSetTimerEx) queues a DPC; the DPC queues an I/O work item, once at a
// time, whose routine calls the flush routine, which is pageable
// (PAGED_CODE, REFERENCE §4.9). DriverUnload must cancel the timer, flush
// the DPCs already queued or running, and wait for the work item before it
// frees it (REFERENCE §6.8). The bugs call the pageable flush from the DPC
// when little is logged, or leave out the DPC flush at unload.

var (
	markPagedAtDpc     = model.NewMark("pagedlog: the DPC called the pageable flush at DISPATCH_LEVEL")
	markPagedDpcUnload = model.NewMark("pagedlog: a timer DPC was queued or running when DriverUnload cancelled the timer")
)

// PagedLog is the scenario.
var PagedLog = &model.Scenario{
	Name: "pagedlog",
	Doc: "A periodic timer's DPC queues an I/O work item that calls a pageable log flush; DriverUnload cancels " +
		"the timer, flushes DPCs and waits for the work item. The bugs flush a short log from the DPC itself " +
		"(pageable code at DISPATCH_LEVEL, 0xD1), or skip KeFlushQueuedDpcs at unload.",
	Section: "REFERENCE §4.9, §6.8",
	Variants: []model.Variant{
		{Name: "correct", Doc: "the DPC only queues the work item; unload cancels, flushes DPCs, waits for the item, then frees it"},
		{Name: "flush-in-dpc", Bug: true, Doc: "the DPC flushes a short log itself, calling the PAGED_CODE routine at DISPATCH_LEVEL",
			Marks: []*model.Mark{markPagedAtDpc}, Want: "0xD1"},
		{Name: "no-dpc-flush", Bug: true, Doc: "unload cancels the timer and waits for the item but does not call KeFlushQueuedDpcs",
			Marks: []*model.Mark{markPagedDpcUnload}, Want: "0xCE|0xD5|0xE4"},
	},
	Setup: setupPagedLog,
}

type pagedLog struct {
	env       *model.Env
	k         *kernel.Kernel
	sys       *queues.System
	dev       *queues.DEVICE_OBJECT
	item      *queues.IO_WORKITEM
	timer     *kernel.KTIMER
	dpc       *kernel.KDPC
	lock      *kernel.KSPIN_LOCK
	busy      *kernel.Cell   // under lock: 1 while the work item is queued or running
	idle      *kernel.KEVENT // under lock: set when the work item is neither (notification)
	logged    *kernel.Cell   // entries not flushed yet
	inDpc     bool           // the DPC is running (bookkeeping for the mark)
	cancelled bool           // unload cancelled the timer (bookkeeping for the mark)
}

func setupPagedLog(env *model.Env) error {
	k := env.K
	sys, err := queues.NewSystem(k, queues.DefaultPoolConfig())
	if err != nil {
		return err
	}
	p := &pagedLog{env: env, k: k, sys: sys}
	k.PsCreateSystemThread("admin", 8, func() {
		drv, st := sys.LoadDriver("logger", p.driverEntry)
		if !kernel.NT_SUCCESS(st) {
			env.Violation("load", "DriverEntry failed: %#x", uint32(st))
			return
		}
		for range 3 {
			k.KeDelayExecutionThread(des.Duration(3+4*env.Choose("log gap", 3)) * des.Microsecond)
			k.InterlockedIncrement(p.logged)
		}
		k.KeDelayExecutionThread(des.Duration(20+3*env.Choose("unload at", 5)) * des.Microsecond)
		env.BeginDrain()
		sys.UnloadDriver(drv)
	})
	return nil
}

func (p *pagedLog) driverEntry(drv *queues.DRIVER_OBJECT) kernel.NTSTATUS {
	k := p.k
	dev, st := p.sys.IoCreateDevice(drv, "logger0")
	if !kernel.NT_SUCCESS(st) {
		return st
	}
	p.dev = dev
	p.item = p.sys.IoAllocateWorkItem(dev)
	if p.item == nil {
		p.sys.IoDeleteDevice(dev)
		return kernel.STATUS_INSUFFICIENT_RESOURCES
	}
	p.lock = k.KeInitializeSpinLock("log")
	p.busy = k.NewCell("flush busy", 0)
	p.logged = k.NewCell("logged", 0)
	p.idle = k.KeInitializeEvent("flush idle", kernel.NotificationEvent, true)
	p.timer = k.KeInitializeTimerEx("log timer", kernel.NotificationTimer)
	p.dpc = k.KeInitializeDpc("log dpc", p.timerDpc, nil)
	drv.DriverUnload = p.unload
	k.KeSetTimerEx(p.timer, 10*des.Microsecond, 10*des.Microsecond, p.dpc)
	return kernel.STATUS_SUCCESS
}

// timerDpc hands the flush to the work item, unless one is under way.
func (p *pagedLog) timerDpc(*kernel.KDPC, any, any, any) {
	k := p.k
	p.inDpc = true
	defer func() { p.inDpc = false }()
	if p.cancelled {
		p.env.Hit(markPagedDpcUnload)
	}
	k.Compute(2 * des.Microsecond) // sample the device's counters
	if p.env.Is("flush-in-dpc") && k.Read(p.logged) == 1 {
		p.env.Hit(markPagedAtDpc)
		p.flush() // "too little to be worth a work item"
		return
	}
	// busy and idle change together under the lock: a finishing work item
	// must not set idle after this DPC has claimed the next flush.
	k.KeAcquireSpinLockAtDpcLevel(p.lock)
	if k.Read(p.busy) != 0 {
		k.KeReleaseSpinLockFromDpcLevel(p.lock)
		return
	}
	k.Write(p.busy, 1)
	k.KeClearEvent(p.idle)
	k.KeReleaseSpinLockFromDpcLevel(p.lock)
	p.sys.IoQueueWorkItem(p.item, p.flushWork, queues.DelayedWorkQueue, nil)
}

func (p *pagedLog) flushWork(*queues.DEVICE_OBJECT, any) {
	k := p.k
	p.flush()
	old := k.KeAcquireSpinLock(p.lock)
	k.Write(p.busy, 0)
	k.KeSetEvent(p.idle, kernel.IO_NO_INCREMENT, false)
	k.KeReleaseSpinLock(p.lock, old)
}

// flush writes the log out; it lives in the PAGE section.
func (p *pagedLog) flush() {
	k := p.k
	k.PAGED_CODE("LogFlush")
	k.Compute(3 * des.Microsecond)
	k.InterlockedExchange(p.logged, 0)
}

func (p *pagedLog) unload(*queues.DRIVER_OBJECT) {
	k := p.k
	k.KeCancelTimer(p.timer)
	p.cancelled = true
	if p.inDpc {
		p.env.Hit(markPagedDpcUnload)
	}
	if !p.env.Is("no-dpc-flush") {
		k.KeFlushQueuedDpcs()
	}
	k.KeWaitForSingleObject(p.idle, kernel.Infinite)
	p.sys.IoFreeWorkItem(p.item)
	p.sys.IoDeleteDevice(p.dev)
}
