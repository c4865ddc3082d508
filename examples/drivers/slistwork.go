package drivers

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/queues"
)

// SlistWork is a sampling device whose ISR counts samples and queues a
// DPC; the DPC allocates a record per sample from nonpaged pool, pushes it
// onto an interlocked S-list and, when its push found the list empty,
// queues the driver's one executive work item with ExQueueWorkItem (legal
// at DISPATCH_LEVEL, REFERENCE §1.1). The work routine takes the whole
// list with one InterlockedFlushSList and processes and frees the records
// at PASSIVE_LEVEL (REFERENCE §4.8).
//
// The idiom holds because each queued run of the item owns exactly one
// flush: a push that finds the list empty comes after the last flush, so
// the item has been dequeued (REFERENCE §3.3 item 5) and may be queued
// again, and the run it queues is the one that will flush. Two runs may
// then overlap on two workers, so the processed count is interlocked.
//
// Other components' items keep the delayed workers busy at times (a
// workload decision). The driver is boot-start and never unloaded (an
// executive item cannot keep an image loaded, REFERENCE §6.8); the run
// ends when the application saw every sample processed and stopped the
// device.
var SlistWork = &model.Scenario{
	Name: "slistwork",
	Doc: "A DPC pushes samples onto an interlocked S-list and queues one executive work item " +
		"(ExQueueWorkItem at DISPATCH_LEVEL) when its push found the list empty; the routine takes the " +
		"list with one InterlockedFlushSList. The bugs flush again until the list stays empty (a push " +
		"then queues the item while it is still queued, 0xE4 P1=1), or gate the queueing on a flag the " +
		"routine clears after its flush (a sample pushed in between is never processed).",
	Section: "REFERENCE §1.1, §3.3, §3.6, §4.8",
	Variants: []model.Variant{
		{Name: "correct", Doc: "queue the item when InterlockedPushEntrySList returns NULL; the routine flushes once"},
		{Name: "flush-until-empty", Bug: true,
			Doc:  "the routine flushes again until the list is empty: a run queued meanwhile finds its samples gone, and the next empty-list push queues the item while it is still queued",
			Want: "bugcheck 0xE4"},
		{Name: "flag-after-flush", Bug: true,
			Doc:  "the DPC queues the item when InterlockedExchange(queued, 1) returned 0; the routine flushes, processes, then clears the flag: a sample pushed in between waits for ever",
			Want: "hang"},
	},
	Setup: slistWorkSetup,
}

const swSamples = 6

// swSample is one record on the S-list.
type swSample struct {
	entry kernel.SLIST_ENTRY
	block *kernel.PoolBlock
}

// swExt is the device extension.
type swExt struct {
	env       *model.Env
	k         *kernel.Kernel
	sys       *queues.System
	dev       *queues.DEVICE_OBJECT
	intr      *kernel.KINTERRUPT
	dpc       *kernel.KDPC
	lock      *kernel.KSPIN_LOCK // guards claimed
	count     *kernel.Cell       // samples the ISR saw, interlocked
	claimed   int                // samples the DPCs took from count
	list      kernel.SLIST_HEADER
	item      queues.WORK_QUEUE_ITEM
	queued    *kernel.Cell // flag-after-flush only
	processed *kernel.Cell // samples processed or dropped, interlocked
	allDone   *kernel.KEVENT
}

func slistWorkSetup(env *model.Env) error {
	k := env.K
	sys, err := queues.NewSystem(k, queues.DefaultPoolConfig())
	if err != nil {
		return err
	}
	x := &swExt{env: env, k: k, sys: sys}
	k.PsCreateSystemThread("app", 8, func() {
		if _, st := sys.LoadDriver("slistwork", x.driverEntry); st != kernel.STATUS_SUCCESS {
			env.Violation("driver loads", "%v", st)
			return
		}
		// Other components' items keep the delayed workers busy for a while.
		background := make([]queues.WORK_QUEUE_ITEM, env.Choose("background items", 4))
		for i := range background {
			queues.ExInitializeWorkItem(&background[i], func(any) { k.Compute(10 * des.Microsecond) }, nil)
			sys.ExQueueWorkItem(&background[i], queues.DelayedWorkQueue)
		}
		// The device samples every 20 µs, or in bursts.
		gaps := [...]des.Duration{20, 1, 4, 8}
		at := k.Now()
		for range swSamples {
			at = at.Add(gaps[env.Choose("sample gap", len(gaps))] * des.Microsecond)
			k.DeviceInterrupt(x.intr, env.Choose("sample cpu", 2), at)
		}
		k.KeWaitForSingleObject(x.allDone, kernel.Infinite)
		env.BeginDrain()
		// Stop the device: no interrupt, no DPC after this.
		k.IoDisconnectInterrupt(x.intr)
		k.KeFlushQueuedDpcs()
	})
	env.AtEnd("every sample processed", func() error {
		if n := x.processed.Peek(); n != swSamples {
			return fmt.Errorf("%d of %d samples processed", n, swSamples)
		}
		return nil
	})
	return nil
}

func (x *swExt) driverEntry(d *queues.DRIVER_OBJECT) kernel.NTSTATUS {
	k := x.k
	dev, st := x.sys.IoCreateDevice(d, "slist0")
	if st != kernel.STATUS_SUCCESS {
		return st
	}
	x.dev = dev
	dev.DeviceExtension = x
	x.lock = k.KeInitializeSpinLock("claim lock")
	x.count = k.NewCell("isr samples", 0)
	x.queued = k.NewCell("item queued", 0)
	x.processed = k.NewCell("processed", 0)
	x.allDone = k.KeInitializeEvent("all done", kernel.NotificationEvent, false)
	k.ExInitializeSListHead(&x.list)
	d.ExInitializeWorkItem(&x.item, x.drain, x)
	x.dpc = k.KeInitializeDpc("sample dpc", x.sampleDpc, nil)
	intr, err := k.IoConnectInterrupt("sampler", 5, func(*kernel.KINTERRUPT, any) bool {
		k.InterlockedIncrement(x.count)
		k.KeInsertQueueDpc(x.dpc, nil, nil)
		return true
	}, nil)
	if err != nil {
		x.sys.IoDeleteDevice(dev)
		return kernel.STATUS_INSUFFICIENT_RESOURCES
	}
	x.intr = intr
	return kernel.STATUS_SUCCESS
}

// sampleDpc turns the samples the ISR counted since the last DPC into
// records on the S-list (a DPC queued twice runs once, and the same DPC
// may run on both processors at once, so it claims them under a lock).
func (x *swExt) sampleDpc(*kernel.KDPC, any, any, any) {
	k := x.k
	k.KeAcquireSpinLockAtDpcLevel(x.lock)
	n := int(k.Read(x.count)) - x.claimed
	x.claimed += n
	k.KeReleaseSpinLockFromDpcLevel(x.lock)
	for range n {
		b := k.ExAllocatePoolWithTag(kernel.NonPagedPool, 32, "Smpl")
		if b == nil {
			x.finished() // dropped: nothing to process
			continue
		}
		s := &swSample{block: b}
		s.entry.Container = s
		k.AccessPool(b, "fill sample")
		first := k.InterlockedPushEntrySList(&x.list, &s.entry)
		if x.env.Is("flag-after-flush") {
			if k.InterlockedExchange(x.queued, 1) == 0 {
				x.sys.ExQueueWorkItem(&x.item, queues.DelayedWorkQueue)
			}
			continue
		}
		if first == nil {
			x.sys.ExQueueWorkItem(&x.item, queues.DelayedWorkQueue)
		}
	}
}

// drain is the work routine.
func (x *swExt) drain(any) {
	k := x.k
	for {
		e := k.InterlockedFlushSList(&x.list)
		if e == nil {
			break
		}
		for e != nil {
			s := e.Container.(*swSample)
			e = e.Next
			k.AccessPool(s.block, "process sample")
			k.Compute(3 * des.Microsecond)
			k.ExFreePoolWithTag(s.block, "Smpl")
			x.finished()
		}
		if !x.env.Is("flush-until-empty") {
			break
		}
	}
	if x.env.Is("flag-after-flush") {
		k.InterlockedExchange(x.queued, 0)
	}
}

// finished counts one sample done; the last tells the application.
func (x *swExt) finished() {
	if x.k.InterlockedIncrement(x.processed) == swSamples {
		x.k.KeSetEvent(x.allDone, kernel.IO_NO_INCREMENT, false)
	}
}
