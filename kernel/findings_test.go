package kernel_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// runOne runs body in a thread at priority 8 and returns the outcome.
func runOne(t *testing.T, cfg kernel.Config, body func(k *kernel.Kernel)) des.Outcome {
	t.Helper()
	m := newMachine(t, cfg, nil)
	k := m.Kernel
	k.PsCreateSystemThread("driver", 8, func() { body(k) })
	return k.Run()
}

func requireBugCheck(t *testing.T, out des.Outcome, code uint32, p1 uint64) *kernel.BugCheck {
	t.Helper()
	var bc *kernel.BugCheck
	require.ErrorAs(t, out.Err, &bc, "want bug check 0x%X", code)
	assert.Equal(t, code, bc.Code, bc.Error())
	assert.Equal(t, p1, bc.Params[0], bc.Error())
	assert.Equal(t, kernel.BugCheckName(code), bc.Name)
	return bc
}

func TestBugChecks(t *testing.T) {
	cases := []struct {
		name    string
		section string
		body    func(k *kernel.Kernel)
		code    uint32
		p1      uint64
	}{
		{"wait at DISPATCH with no timeout", "§4.5, §1.8 0xC4/0x121", func(k *kernel.Kernel) {
			e := k.KeInitializeEvent("e", kernel.NotificationEvent, false)
			k.KeRaiseIrql(kernel.DISPATCH_LEVEL)
			k.KeWaitForSingleObject(e, kernel.Infinite)
		}, kernel.DRIVER_VERIFIER_DETECTED_VIOLATION, 0x121},
		{"wait at DISPATCH with a timeout", "§4.5, §1.8 0xC4/0x122", func(k *kernel.Kernel) {
			e := k.KeInitializeEvent("e", kernel.NotificationEvent, false)
			k.KeRaiseIrql(kernel.DISPATCH_LEVEL)
			k.KeWaitForSingleObject(e, des.Millisecond)
		}, kernel.DRIVER_VERIFIER_DETECTED_VIOLATION, 0x122},
		{"wait above DISPATCH", "§1.8 0xC4/0x120", func(k *kernel.Kernel) {
			e := k.KeInitializeEvent("e", kernel.NotificationEvent, false)
			k.KeRaiseIrql(kernel.IRQL(5))
			k.KeWaitForSingleObject(e, kernel.Infinite)
		}, kernel.DRIVER_VERIFIER_DETECTED_VIOLATION, 0x120},
		{"raise to a lower IRQL", "§4.5, §1.8 0xC4/0x30", func(k *kernel.Kernel) {
			k.KeRaiseIrql(kernel.DISPATCH_LEVEL)
			k.KeRaiseIrql(kernel.APC_LEVEL)
		}, kernel.DRIVER_VERIFIER_DETECTED_VIOLATION, 0x30},
		{"lower to a higher IRQL", "§4.5, §1.8 0xC4/0x31", func(k *kernel.Kernel) {
			k.KeLowerIrql(kernel.DISPATCH_LEVEL)
		}, kernel.DRIVER_VERIFIER_DETECTED_VIOLATION, 0x31},
		{"recursive spin lock", "§4.6, §1.8 0x0F", func(k *kernel.Kernel) {
			l := k.KeInitializeSpinLock("l")
			k.KeAcquireSpinLock(l)
			k.KeAcquireSpinLockAtDpcLevel(l)
		}, kernel.SPIN_LOCK_ALREADY_OWNED, 0},
		{"release unowned spin lock", "§1.8 0x10", func(k *kernel.Kernel) {
			l := k.KeInitializeSpinLock("l")
			old := k.KeRaiseIrql(kernel.DISPATCH_LEVEL)
			k.KeReleaseSpinLock(l, old)
		}, kernel.SPIN_LOCK_NOT_OWNED, 0},
		{"spin lock above DISPATCH", "§1.5, §1.8 0xC4/0x42", func(k *kernel.Kernel) {
			k.KeRaiseIrql(kernel.IRQL(5))
			k.KeAcquireSpinLock(k.KeInitializeSpinLock("l"))
		}, kernel.DRIVER_VERIFIER_DETECTED_VIOLATION, 0x42},
		{"AtDpcLevel acquire below DISPATCH", "§1.8 0xC4/0x40", func(k *kernel.Kernel) {
			k.KeAcquireSpinLockAtDpcLevel(k.KeInitializeSpinLock("l"))
		}, kernel.DRIVER_VERIFIER_DETECTED_VIOLATION, 0x40},
		{"fast mutex at DISPATCH", "§4.6, §6.14, §1.8 0xC4/0x33", func(k *kernel.Kernel) {
			m := k.ExInitializeFastMutex("m")
			k.KeRaiseIrql(kernel.DISPATCH_LEVEL)
			k.ExAcquireFastMutex(m)
		}, kernel.DRIVER_VERIFIER_DETECTED_VIOLATION, 0x33},
		{"fast mutex released at PASSIVE", "§1.8 0xC4/0x34", func(k *kernel.Kernel) {
			m := k.ExInitializeFastMutex("m")
			k.ExAcquireFastMutex(m)
			k.KeLowerIrql(kernel.PASSIVE_LEVEL)
			k.ExReleaseFastMutex(m)
		}, kernel.DRIVER_VERIFIER_DETECTED_VIOLATION, 0x34},
		{"ERESOURCE without critical region", "§4.6, §1.8 0xC4/0x37", func(k *kernel.Kernel) {
			k.ExAcquireResourceExclusiveLite(k.ExInitializeResourceLite("r"), true)
		}, kernel.DRIVER_VERIFIER_DETECTED_VIOLATION, 0x37},
		{"leave critical region without enter", "§1.8 0x01", func(k *kernel.Kernel) {
			k.KeLeaveCriticalRegion()
		}, kernel.APC_INDEX_MISMATCH, 0},
		{"thread exits in a critical region", "§1.8 0x20", func(k *kernel.Kernel) {
			k.KeEnterCriticalRegion()
		}, kernel.KERNEL_APC_PENDING_DURING_EXIT, 0},
		{"double completion", "§1.7, §6.3 0x44", func(k *kernel.Kernel) {
			irp := k.IoAllocateIrp("read")
			k.IoCompleteRequest(irp, 0)
			k.IoCompleteRequest(irp, 0)
		}, kernel.MULTIPLE_IRP_COMPLETE_REQUESTS, 1},
		{"complete with cancel routine set", "§1.7, §2.7F 0xC9/0x7", func(k *kernel.Kernel) {
			irp := k.IoAllocateIrp("read")
			k.IoSetCancelRoutine(irp, func(*kernel.IRP) {})
			k.IoCompleteRequest(irp, 0)
		}, kernel.DRIVER_VERIFIER_IOMANAGER_VIOLATION, 0x7},
		{"complete with STATUS_PENDING", "§1.7 0xC9/0x6", func(k *kernel.Kernel) {
			irp := k.IoAllocateIrp("read")
			irp.IoStatus.Status = kernel.STATUS_PENDING
			k.IoCompleteRequest(irp, 0)
		}, kernel.DRIVER_VERIFIER_IOMANAGER_VIOLATION, 0x6},
		{"double pool free", "§1.8 0xC2/0x7", func(k *kernel.Kernel) {
			b := k.ExAllocatePoolWithTag(kernel.NonPagedPool, 16, "Tst1")
			k.ExFreePoolWithTag(b, "Tst1")
			k.ExFreePoolWithTag(b, "Tst1")
		}, kernel.BAD_POOL_CALLER, 0x7},
		{"pool use after free", "§6.7 0xD5", func(k *kernel.Kernel) {
			b := k.ExAllocatePoolWithTag(kernel.NonPagedPool, 16, "Tst1")
			c := k.NewCell("ctx.count", 0)
			c.Block = b
			k.ExFreePool(b)
			k.InterlockedIncrement(c)
		}, kernel.DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL, 1},
		{"paged pool at DISPATCH", "§4.5 0xC4/0x1", func(k *kernel.Kernel) {
			k.KeRaiseIrql(kernel.DISPATCH_LEVEL)
			k.ExAllocatePoolWithTag(kernel.PagedPool, 16, "Tst1")
		}, kernel.DRIVER_VERIFIER_DETECTED_VIOLATION, 0x1},
		{"paged pool at DISPATCH, ExAllocatePoolZero", "§4.5 0xC4/0x1", func(k *kernel.Kernel) {
			k.KeRaiseIrql(kernel.DISPATCH_LEVEL)
			k.ExAllocatePoolZero(kernel.PagedPool, 16, "Tst1")
		}, kernel.DRIVER_VERIFIER_DETECTED_VIOLATION, 0x1},
		{"paged pool at DISPATCH, ExAllocatePool", "§4.5 0xC4/0x1", func(k *kernel.Kernel) {
			k.KeRaiseIrql(kernel.DISPATCH_LEVEL)
			k.ExAllocatePool(kernel.PagedPool, 16)
		}, kernel.DRIVER_VERIFIER_DETECTED_VIOLATION, 0x1},
		{"untagged block freed with a tag", "§4.9 0xC2/0x0A", func(k *kernel.Kernel) {
			k.ExFreePoolWithTag(k.ExAllocatePool(kernel.NonPagedPool, 16), "Tst1") // ExAllocatePool tags it "None"
		}, kernel.BAD_POOL_CALLER, 0x0A},
		{"ExAllocatePoolUninitialized: a double free, as for any block", "§6.7", func(k *kernel.Kernel) {
			b := k.ExAllocatePoolUninitialized(kernel.NonPagedPool, 16, "Tst1")
			k.ExFreePoolWithTag(b, "Tst1")
			k.ExFreePoolWithTag(b, "Tst1")
		}, kernel.BAD_POOL_CALLER, 0x7},
		{"IoCompleteRequest above DISPATCH", "§1.7", func(k *kernel.Kernel) {
			irp := k.IoAllocateIrp("read")
			k.KeRaiseIrql(kernel.IRQL(5))
			k.IoCompleteRequest(irp, 0)
		}, kernel.IRQL_NOT_LESS_OR_EQUAL, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := runOne(t, oneCPU(), tc.body)
			bc := requireBugCheck(t, out, tc.code, tc.p1)
			assert.Equal(t, "driver", bc.Actor, tc.section)
			require.NotEmpty(t, out.Tail)
			assert.Equal(t, kernel.WhatBugCheck, out.Tail[len(out.Tail)-1].What, "the trace ends at the faulting call")
		})
	}
}

// Without Verifier, IRQL misuse is IRQL_NOT_LESS_OR_EQUAL (Config.Verifier).
func TestWithoutVerifierIrqlMisuseIs0xA(t *testing.T) {
	cfg := oneCPU()
	cfg.Verifier = false
	out := runOne(t, cfg, func(k *kernel.Kernel) {
		k.KeRaiseIrql(kernel.DISPATCH_LEVEL)
		k.KeWaitForSingleObject(k.KeInitializeEvent("e", kernel.NotificationEvent, false), kernel.Infinite)
	})
	requireBugCheck(t, out, kernel.IRQL_NOT_LESS_OR_EQUAL, 0)
}

// REFERENCE §4.5/§6.13: a DPC that waits is ATTEMPTED_SWITCH_FROM_DPC.
func TestWaitInDPCIs0xB8(t *testing.T) {
	m := newMachine(t, oneCPU(), nil)
	k := m.Kernel
	e := k.KeInitializeEvent("e", kernel.NotificationEvent, false)
	dpc := k.KeInitializeDpc("bad", func(*kernel.KDPC, any, any, any) { k.KeWaitForSingleObject(e, des.Millisecond) }, nil)
	k.PsCreateSystemThread("t", 8, func() { k.KeInsertQueueDpc(dpc, nil, nil) })
	bc := requireBugCheck(t, k.Run(), kernel.ATTEMPTED_SWITCH_FROM_DPC, 0)
	assert.Equal(t, "dpc/cpu0", bc.Actor)
	// The report names the DPC as well as the processor's DPC context, so
	// a driver with several DPCs knows which one crashed.
	assert.Equal(t, "bad", bc.DPC)
	assert.Contains(t, bc.Error(), "by dpc/cpu0 running dpc bad on cpu0")
}

// REFERENCE §4.5/§4.6: a spin lock raises to DISPATCH_LEVEL and its release
// restores the old IRQL; a contender on another processor spins until the
// release.
func TestSpinLockRaisesAndRestoresIrql(t *testing.T) {
	m := newMachine(t, kernel.DefaultConfig(), nil)
	k := m.Kernel
	l := k.KeInitializeSpinLock("l")
	var inside, after kernel.IRQL
	var gotAt des.Time
	k.PsCreateSystemThread("holder", 8, func() {
		k.KeRaiseIrql(kernel.APC_LEVEL)
		old := k.KeAcquireSpinLock(l)
		inside = k.KeGetCurrentIrql()
		k.Compute(100 * des.Microsecond)
		k.KeReleaseSpinLock(l, old)
		after = k.KeGetCurrentIrql()
		k.KeLowerIrql(kernel.PASSIVE_LEVEL)
	})
	k.PsCreateSystemThread("contender", 8, func() {
		k.Compute(10 * des.Microsecond)
		old := k.KeAcquireSpinLock(l)
		gotAt = k.Now()
		k.KeReleaseSpinLock(l, old)
	})
	require.NoError(t, k.Run().Err)
	assert.Equal(t, kernel.DISPATCH_LEVEL, inside)
	assert.Equal(t, kernel.APC_LEVEL, after)
	assert.Greater(t, gotAt, des.Time(100*des.Microsecond), "the contender spun until the release")
	assert.Contains(t, m.trace.String(), "spin")
}

// REFERENCE §2.1/§1.7: the cancel-routine swap decides ownership. If the
// dequeuer swaps first, IoCancelIrp finds no routine and returns FALSE; if
// IoCancelIrp swaps first, the dequeuer gets nil and must leave the IRP to
// the cancel routine.
func TestCancelRoutineSwapDecidesOwnership(t *testing.T) {
	for _, cancelFirst := range []bool{false, true} {
		m := newMachine(t, oneCPU(), nil)
		k := m.Kernel
		irp := k.IoAllocateIrp("read")
		var cancelRan, dequeuerOwned, cancelResult bool
		routine := func(irp *kernel.IRP) {
			cancelRan = true
			k.IoReleaseCancelSpinLock(irp.CancelIrql)
			irp.IoStatus.Status = kernel.STATUS_CANCELLED
			k.IoCompleteRequest(irp, 0)
		}
		k.PsCreateSystemThread("setup", 10, func() { k.IoSetCancelRoutine(irp, routine) })
		dequeue := func() { dequeuerOwned = k.IoSetCancelRoutine(irp, nil) != nil }
		cancel := func() { cancelResult = k.IoCancelIrp(irp) }
		first, second := dequeue, cancel
		if cancelFirst {
			first, second = cancel, dequeue
		}
		k.PsCreateSystemThread("first", 8, first)
		k.PsCreateSystemThread("second", 8, func() {
			second()
			if dequeuerOwned {
				irp.IoStatus.Status = kernel.STATUS_SUCCESS
				k.IoCompleteRequest(irp, 0)
			}
		})
		out := k.Run()
		require.NoError(t, out.Err)
		assert.Equal(t, cancelFirst, cancelRan)
		assert.Equal(t, cancelFirst, cancelResult, "IoCancelIrp returns TRUE only when it took the routine")
		assert.Equal(t, !cancelFirst, dequeuerOwned)
		assert.True(t, irp.Completed())
		assert.True(t, irp.Cancelled(), "the Cancel flag is set either way (§1.7)")
	}
}

// REFERENCE §1.7: a cancel routine invoked on a completed IRP is 0x48.
func TestCancelAfterCompletionWithRoutineIs0x48(t *testing.T) {
	cfg := oneCPU()
	cfg.Verifier = false // otherwise completing with the routine set is 0xC9 first
	out := runOne(t, cfg, func(k *kernel.Kernel) {
		irp := k.IoAllocateIrp("read")
		k.IoSetCancelRoutine(irp, func(*kernel.IRP) {})
		k.IoCompleteRequest(irp, 0)
		k.IoCancelIrp(irp)
	})
	requireBugCheck(t, out, kernel.CANCEL_STATE_IN_COMPLETED_IRP, 1)
}

// A two-lock cycle is reported as a deadlock naming both threads and both
// locks, at the acquire that closes the cycle.
func TestTwoLockCycleIsDeadlock(t *testing.T) {
	m := newMachine(t, kernel.DefaultConfig(), nil)
	k := m.Kernel
	a := k.ExInitializeFastMutex("A")
	b := k.ExInitializeFastMutex("B")
	k.PsCreateSystemThread("t1", 8, func() {
		k.ExAcquireFastMutex(a)
		k.Compute(time10us)
		k.ExAcquireFastMutex(b)
	})
	k.PsCreateSystemThread("t2", 8, func() {
		k.ExAcquireFastMutex(b)
		k.Compute(time10us)
		k.ExAcquireFastMutex(a)
	})
	k.PsCreateSystemThread("bystander", 8, func() { k.Compute(des.Millisecond) })
	out := k.Run()
	var d *kernel.Deadlock
	require.ErrorAs(t, out.Err, &d)
	assert.Less(t, d.At, des.Time(des.Millisecond), "reported when the cycle closes, not when the bystander is done")
	require.Len(t, d.Cycle, 2)
	msg := d.Error()
	assert.Contains(t, msg, "t1 waits for fast mutex B owned by t2")
	assert.Contains(t, msg, "t2 waits for fast mutex A owned by t1")
}

const time10us = 10 * des.Microsecond

func TestRecursiveFastMutexSelfDeadlock(t *testing.T) {
	out := runOne(t, oneCPU(), func(k *kernel.Kernel) {
		m := k.ExInitializeFastMutex("M")
		k.ExAcquireFastMutex(m)
		k.ExAcquireFastMutex(m)
	})
	var d *kernel.Deadlock
	require.ErrorAs(t, out.Err, &d)
	assert.Contains(t, d.Error(), "driver waits for fast mutex M owned by driver")
}

// §6.9: waiting on an event nobody will set is a hang reported at
// quiescence with what each thread waits for.
func TestHangAtQuiescence(t *testing.T) {
	out := runOne(t, oneCPU(), func(k *kernel.Kernel) {
		k.KeWaitForSingleObject(k.KeInitializeEvent("never", kernel.NotificationEvent, false), kernel.Infinite)
	})
	var d *kernel.Deadlock
	require.ErrorAs(t, out.Err, &d)
	assert.Empty(t, d.Cycle)
	assert.Contains(t, d.Error(), "hang: nothing can wake the waiting threads: driver waits for event never (KeWaitForSingleObject)")
}

// A hang decided well after it formed (here another thread computes for a
// millisecond first) says when each wait began, so the report points at
// the moment the driver went wrong, not only at quiescence.
func TestHangSaysWhenTheWaitBegan(t *testing.T) {
	m := newMachine(t, oneCPU(), nil)
	k := m.Kernel
	k.PsCreateSystemThread("waiter", 9, func() {
		k.KeWaitForSingleObject(k.KeInitializeEvent("never", kernel.NotificationEvent, false), kernel.Infinite)
	})
	k.PsCreateSystemThread("busy", 8, func() { k.Compute(des.Millisecond) })
	out := k.Run()
	var d *kernel.Deadlock
	require.ErrorAs(t, out.Err, &d)
	require.Len(t, d.Blocked, 1)
	assert.Less(t, d.Blocked[0].Since, d.At)
	assert.Contains(t, d.Error(), "waiter waits for event never (KeWaitForSingleObject, since t="+d.Blocked[0].Since.String()+")")
}

func TestLeaksAtEndOfRun(t *testing.T) {
	out := runOne(t, oneCPU(), func(k *kernel.Kernel) {
		k.IoAllocateIrp("read")
		k.ExAllocatePoolWithTag(kernel.NonPagedPool, 32, "Ctx1")
		k.Layer().SwitchImage(kernel.NewImage("acme")) // now in a driver's code
		b := k.ExAllocatePoolWithTag(kernel.NonPagedPool, 48, "Wi01")
		b.Owner = "work item 7" // as a layer that allocates on the driver's behalf labels it
		b.Use = kernel.BlockUse{Kind: "WORK_ITEM", Alloc: "AllocateWorkItem", Free: "FreeWorkItem", For: "device d"}
	})
	var l *kernel.Leak
	require.ErrorAs(t, out.Err, &l)
	require.Len(t, l.Items, 3)
	assert.Contains(t, l.Items[0], "irp 1 (read) never completed")
	assert.Equal(t, `pool block #1 tag "Ctx1" (32 bytes) never freed: allocated in driver`, l.Items[1], "names the allocating thread")
	assert.Equal(t, `pool block #2 tag "Wi01" (48 bytes) never freed: WORK_ITEM work item 7 allocated by AllocateWorkItem`+
		` in driver (driver acme) for device d, without FreeWorkItem`, l.Items[2], "names the object, its routines and the driver")
}

func TestSpinningForeverIsLivelock(t *testing.T) {
	m := newMachine(t, oneCPU(), nil)
	k := m.Kernel
	flag := k.NewCell("flag", 0)
	k.PsCreateSystemThread("spinner", 8, func() {
		for k.Read(flag) == 0 {
		}
	})
	out := k.Run()
	var l *kernel.Livelock
	require.ErrorAs(t, out.Err, &l)
	assert.Contains(t, l.Error(), "spinner")
	assert.Contains(t, l.Error(), "spin without a kernel wait")
}

// A thread starved by a spinner of higher priority is named as ready in
// the livelock report: with one processor, the low-priority thread that
// would end the spin never runs (priority inversion, REFERENCE §4.2).
func TestLivelockNamesStarvedReadyThread(t *testing.T) {
	m := newMachine(t, oneCPU(), nil)
	k := m.Kernel
	flag := k.NewCell("flag", 0)
	k.PsCreateSystemThread("setter", 4, func() { k.InterlockedExchange(flag, 1) })
	k.PsCreateSystemThread("spinner", 8, func() {
		for k.Read(flag) == 0 {
		}
	})
	out := k.Run()
	var l *kernel.Livelock
	require.ErrorAs(t, out.Err, &l)
	assert.Equal(t, []string{"setter (priority 4)"}, l.Ready)
	assert.Contains(t, l.Error(), "ready but not running: setter (priority 4)")
}

// REFERENCE §4.5: a processor runs its queued DPCs only when its IRQL drops
// below DISPATCH_LEVEL. A thread that raises to DISPATCH_LEVEL and polls a
// flag that its own processor's DPC would set spins for ever; the
// livelock report names the DPC that cannot run, where and since when, and
// why (it named only the spinner; found writing the pollready driver).
func TestLivelockNamesDpcHeldOffByRaisedProcessor(t *testing.T) {
	m := newMachine(t, oneCPU(), nil)
	k := m.Kernel
	done := k.NewCell("done", 0)
	dpc := k.KeInitializeDpc("answer", func(*kernel.KDPC, any, any, any) { k.InterlockedExchange(done, 1) }, nil)
	intr, err := k.IoConnectInterrupt("dev", 5, func(*kernel.KINTERRUPT, any) bool {
		k.KeInsertQueueDpc(dpc, nil, nil)
		return true
	}, nil)
	require.NoError(t, err)
	k.PsCreateSystemThread("poller", 8, func() {
		k.DeviceInterrupt(intr, 0, k.Now().Add(3*des.Microsecond))
		old := k.KeRaiseIrql(kernel.DISPATCH_LEVEL)
		for k.Read(done) == 0 {
			k.KeStallExecutionProcessor(5)
		}
		k.KeLowerIrql(old)
	})
	out := k.Run()
	var l *kernel.Livelock
	require.ErrorAs(t, out.Err, &l)
	require.Len(t, l.StuckDpcs, 1)
	assert.Regexp(t, `^dpc answer queued on cpu0 since t=0\.0000\d+s, poller holds it at DISPATCH_LEVEL$`, l.StuckDpcs[0])
	assert.Contains(t, l.Error(), "DPCs that cannot run: dpc answer queued on cpu0")
	assert.Contains(t, l.Error(), "only when its IRQL drops below DISPATCH_LEVEL")
}

// A DPC that never returns holds off the DPCs queued behind it on its
// processor; the report says so.
func TestLivelockNamesDpcQueuedBehindSpinningDpc(t *testing.T) {
	m := newMachine(t, oneCPU(), nil)
	k := m.Kernel
	done := k.NewCell("done", 0)
	setter := k.KeInitializeDpc("setter", func(*kernel.KDPC, any, any, any) { k.InterlockedExchange(done, 1) }, nil)
	spinner := k.KeInitializeDpc("spinner", func(*kernel.KDPC, any, any, any) {
		k.KeInsertQueueDpc(setter, nil, nil)
		for k.Read(done) == 0 {
			k.KeStallExecutionProcessor(5)
		}
	}, nil)
	k.PsCreateSystemThread("t", 8, func() { k.KeInsertQueueDpc(spinner, nil, nil) })
	out := k.Run()
	var l *kernel.Livelock
	require.ErrorAs(t, out.Err, &l)
	require.Len(t, l.StuckDpcs, 1)
	assert.Contains(t, l.StuckDpcs[0], "dpc setter queued on cpu0 since t=")
	assert.Contains(t, l.StuckDpcs[0], "behind the running dpc spinner, which has not returned")
}

func TestPanicInDriverCodeIsAnOutcome(t *testing.T) {
	out := runOne(t, oneCPU(), func(k *kernel.Kernel) {
		k.Compute(des.Microsecond)
		var p *kernel.IRP
		_ = p.Name() // nil dereference in driver code
	})
	var pe *des.PanicError
	require.ErrorAs(t, out.Err, &pe)
	assert.Equal(t, "driver", pe.Proc)
}

// Exploration knobs make decisions; the same seed gives the same trace,
// twice, and replaying the log gives the same hash.
func TestDeterminismWithPerturbations(t *testing.T) {
	cfg := kernel.DefaultConfig()
	cfg.InjectPreemption = true
	cfg.JitterLevels = 4
	run := func(c des.Chooser) des.Outcome {
		m := newMachine(t, cfg, c)
		k := m.Kernel
		counter := k.NewCell("counter", 0)
		mu := k.ExInitializeFastMutex("mu")
		for i := 0; i < 3; i++ {
			k.PsCreateSystemThread("w"+string(rune('0'+i)), 8+i, func() {
				for j := 0; j < 5; j++ {
					k.ExAcquireFastMutex(mu)
					v := k.Read(counter)
					k.Compute(20 * des.Microsecond)
					k.Write(counter, v+1)
					k.ExReleaseFastMutex(mu)
				}
			})
		}
		out := k.Run()
		require.NoError(t, out.Err)
		assert.Equal(t, int64(15), counter.Peek())
		return out
	}
	a, b := run(des.NewSeeded(99)), run(des.NewSeeded(99))
	assert.Equal(t, a.Hash, b.Hash)
	assert.NotEmpty(t, a.Decisions)
	c := run(des.NewReplay(a.Decisions))
	assert.Equal(t, a.Hash, c.Hash)
	d := run(des.NewSeeded(100))
	assert.NotEqual(t, a.Hash, d.Hash)
}

// Without the mutex, an injected stall between the read and the write
// loses an update: the kind of race the explorer is for.
// On one processor only an injected early quantum end can put b between
// a's read and write; the natural schedule never loses the update.
func TestInjectedPreemptionExposesLostUpdate(t *testing.T) {
	cfg := oneCPU()
	cfg.InjectPreemption = true
	run := func(c des.Chooser) bool {
		m := newMachine(t, cfg, c)
		k := m.Kernel
		counter := k.NewCell("counter", 0)
		for _, n := range []string{"a", "b"} {
			k.PsCreateSystemThread(n, 8, func() {
				v := k.Read(counter)
				k.Write(counter, v+1)
			})
		}
		require.NoError(t, k.Run().Err)
		return counter.Peek() == 1
	}
	assert.False(t, run(des.Natural{}), "no perturbation, no race on one processor")
	lost := false
	for seed := uint64(0); seed < 50 && !lost; seed++ {
		lost = run(des.NewSeededBiased(seed, 3, 4))
	}
	assert.True(t, lost, "some schedule among 50 seeds loses an update")
}

// A thread that waits forever while a periodic timer keeps queueing its
// DPC never lets the event queue empty, so the run ends on the step
// budget; the livelock report must say that nothing was running and where
// the threads are stuck, or it reads as a spinning thread. (With the
// stalled-timer rule on, such a run is a hang after HangTimerPeriods quiet
// periods, stall_test.go; it is off here, as it is in effect for a DPC that
// changes state every period.)
func TestHangKeptBusyByPeriodicTimerSaysWhoWaits(t *testing.T) {
	cfg := oneCPU()
	cfg.HangTimerPeriods = -1
	m := budgetMachine(t, cfg, 20_000)
	k := m.Kernel
	never := k.KeInitializeEvent("never", kernel.NotificationEvent, false)
	tick := k.KeInitializeDpc("tick", func(*kernel.KDPC, any, any, any) {}, nil)
	timer := k.KeInitializeTimer("ticker")
	k.PsCreateSystemThread("stuck", 8, func() {
		k.KeSetTimerEx(timer, des.Microsecond, des.Microsecond, tick)
		k.KeWaitForSingleObject(never, kernel.Infinite)
	})
	o := k.Run()
	var ll *kernel.Livelock
	require.ErrorAs(t, o.Err, &ll)
	assert.Contains(t, ll.Error(), "waiting: stuck waits for event never")
}

// REFERENCE §1.8: a system thread that returns at DISPATCH_LEVEL is 0xA;
// when it still holds a spin lock the report names the lock.
func TestThreadExitHoldingSpinLockNamesIt(t *testing.T) {
	out := runOne(t, oneCPU(), func(k *kernel.Kernel) {
		k.KeAcquireSpinLock(k.KeInitializeSpinLock("stats"))
	})
	bc := requireBugCheck(t, out, kernel.IRQL_NOT_LESS_OR_EQUAL, 0)
	assert.Contains(t, bc.Error(), "thread exited at DISPATCH_LEVEL holding spinlock stats (acquired and never released)")
}
