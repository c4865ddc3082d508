package kernel

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
)

// KPROCESSOR_MODE is the mode an APC is queued for, or a wait is made in.
type KPROCESSOR_MODE uint8

// Processor modes.
const (
	KernelMode KPROCESSOR_MODE = 0
	UserMode   KPROCESSOR_MODE = 1
)

// STATUS_KERNEL_APC is the internal status of a wait interrupted to deliver
// a kernel APC; the wait routines re-execute the wait and never return it.
const STATUS_KERNEL_APC NTSTATUS = 0x00000100

// ApcNormalRoutine is an APC's normal routine (KNORMAL_ROUTINE), run at
// PASSIVE_LEVEL for a normal kernel APC.
type ApcNormalRoutine func(ctx, arg1, arg2 any)

// ApcKernelRoutine is an APC's kernel routine (KKERNEL_ROUTINE), run at
// APC_LEVEL first. It may change or clear the normal routine and its
// arguments, as in C.
type ApcKernelRoutine func(apc *KAPC, normal *ApcNormalRoutine, ctx, arg1, arg2 *any)

// KAPC is an asynchronous procedure call aimed at one thread
// (REFERENCE §4.10). A kernel-mode APC without a normal routine is a
// special kernel APC; with one, a normal kernel APC; a user-mode APC runs
// only when its thread makes an alertable user-mode wait.
type KAPC struct {
	Name          string
	Mode          KPROCESSOR_MODE
	KernelRoutine ApcKernelRoutine
	NormalRoutine ApcNormalRoutine
	NormalContext any

	thread     *Thread
	arg1, arg2 any
	inserted   bool
	obj        string            // "apc NAME", built once for traces
	signals    *dispatcherHeader // the object this APC will signal (I/O completion), for wait-for reports
	signalsIrp *IRP
}

// Special reports a special kernel APC (kernel mode, no normal routine).
func (a *KAPC) Special() bool { return a.Mode == KernelMode && a.NormalRoutine == nil }

// Inserted reports whether the APC is queued and has not run yet.
func (a *KAPC) Inserted() bool { return a.inserted }

// KeInitializeApc returns an APC for thread (KeInitializeApc with the
// original environment). kernelRoutine may be nil (nothing runs at
// APC_LEVEL); normal nil with KernelMode makes a special kernel APC. Any
// IRQL. REFERENCE §4.10.
func (k *Kernel) KeInitializeApc(thread *Thread, name string, kernelRoutine ApcKernelRoutine, normal ApcNormalRoutine, mode KPROCESSOR_MODE, ctx any) *KAPC {
	if thread == nil {
		panic(fmt.Sprintf("kernel: KeInitializeApc(%q): nil thread", name))
	}
	if mode == UserMode && normal == nil {
		panic(fmt.Sprintf("kernel: KeInitializeApc(%q): a user-mode APC needs a normal routine", name))
	}
	return &KAPC{Name: name, Mode: mode, KernelRoutine: kernelRoutine, NormalRoutine: normal, NormalContext: ctx,
		thread: thread, obj: "apc " + name}
}

// KeInsertQueueApc queues apc to its thread with the two system arguments
// and returns false if it is already queued or the thread has terminated
// (REFERENCE §4.10). Special kernel APCs go behind the other special ones
// and ahead of every normal one. A thread running with the APC deliverable
// takes it at its next scheduling point (at once if it is the caller); a
// thread waiting at PASSIVE_LEVEL is taken out of its wait to run a
// deliverable kernel APC, and the wait resumes; an alertable user-mode wait
// is ended with STATUS_USER_APC. increment is the priority boost of such
// an unwait. Caller IRQL ≤ DISPATCH_LEVEL.
func (k *Kernel) KeInsertQueueApc(apc *KAPC, arg1, arg2 any, increment int) bool {
	x := k.enter("KeInsertQueueApc")
	k.checkIrqlAtMost(x, "KeInsertQueueApc", DISPATCH_LEVEL)
	return k.queueApc(x, apc, arg1, arg2, increment)
}

func (k *Kernel) queueApc(x *exec, apc *KAPC, arg1, arg2 any, increment int) bool {
	t := apc.thread
	if apc.inserted || t.state == Terminated {
		return false
	}
	apc.inserted, apc.arg1, apc.arg2 = true, arg1, arg2
	k.emit(x, KindAPC, WhatQueueApc, apc.obj, int64(t.id), int64(apc.kind()))
	if apc.Mode == UserMode {
		t.userApcs = append(t.userApcs, apc)
		if t.state == Waiting && t.wait.alertable && t.wait.mode == UserMode {
			k.interruptWait(t, STATUS_USER_APC, increment)
		}
		return true
	}
	t.insertKernelApc(apc)
	t.apcPending = true
	switch {
	case x.thread == t && x.kind == execThread:
		k.deliverApcs(x)
	case t.state == Waiting && t.wait.interruptible && t.kernelApcDeliverable(t.wait.irql):
		k.interruptWait(t, STATUS_KERNEL_APC, increment)
	}
	return true
}

// apcKind numbers the three kinds for trace records: 0 special kernel,
// 1 normal kernel, 2 user.
func (a *KAPC) kind() int {
	switch {
	case a.Mode == UserMode:
		return 2
	case a.NormalRoutine == nil:
		return 0
	}
	return 1
}

// insertKernelApc queues a kernel APC: special ones ahead of normal ones.
func (t *Thread) insertKernelApc(apc *KAPC) {
	i := len(t.kernelApcs)
	if apc.Special() {
		for i = 0; i < len(t.kernelApcs) && t.kernelApcs[i].Special(); i++ {
		}
	}
	t.kernelApcs = append(t.kernelApcs, nil)
	copy(t.kernelApcs[i+1:], t.kernelApcs[i:])
	t.kernelApcs[i] = apc
}

// kernelApcDeliverable reports whether the head kernel APC could run now in
// a thread at irql: special ones below APC_LEVEL outside guarded regions,
// normal ones also outside critical regions and not inside another normal
// APC (REFERENCE §4.10).
func (t *Thread) kernelApcDeliverable(irql IRQL) bool {
	if len(t.kernelApcs) == 0 || irql >= APC_LEVEL || t.guardedRegion > 0 {
		return false
	}
	return t.kernelApcs[0].Special() || (t.criticalRegion == 0 && !t.inNormalApc)
}

// interruptWait ends t's wait early with status (STATUS_KERNEL_APC,
// STATUS_USER_APC or STATUS_ALERTED).
func (k *Kernel) interruptWait(t *Thread, status NTSTATUS, increment int) {
	k.emit(&t.exec, KindAPC, WhatInterruptWait, t.name, int64(status), 0)
	k.satisfy(t, status, increment)
}

// deliverApcs runs, in the calling thread, every kernel APC deliverable now
// (REFERENCE §4.10): each kernel routine at APC_LEVEL, then a normal
// routine at PASSIVE_LEVEL with further normal APCs held off. Special APCs
// can still run inside a normal routine, at its scheduling points.
func (k *Kernel) deliverApcs(x *exec) {
	t := x.thread
	for t.kernelApcDeliverable(x.irql) {
		apc := t.kernelApcs[0]
		t.kernelApcs = t.kernelApcs[1:]
		apc.inserted = false
		normal, ctx, a1, a2 := apc.NormalRoutine, apc.NormalContext, apc.arg1, apc.arg2
		k.emit(x, KindAPC, WhatRunApc, apc.obj, int64(apc.kind()), 0)
		k.setIrql(x, APC_LEVEL)
		if apc.KernelRoutine != nil {
			apc.KernelRoutine(apc, &normal, &ctx, &a1, &a2)
		}
		k.checkApcReturn(x, apc, APC_LEVEL)
		k.setIrql(x, PASSIVE_LEVEL)
		if normal != nil {
			t.inNormalApc = true
			normal(ctx, a1, a2)
			t.inNormalApc = false
			k.checkApcReturn(x, apc, PASSIVE_LEVEL)
		}
	}
	t.apcPending = len(t.kernelApcs) > 0
}

// checkApcReturn: an APC routine must return at the IRQL it was called at
// and with the APC-disable counts it found (APC_INDEX_MISMATCH 0x01 names
// the second; REFERENCE §4.10).
func (k *Kernel) checkApcReturn(x *exec, apc *KAPC, want IRQL) {
	if x.irql != want {
		k.bugCheck(x, "APC return", IRQL_NOT_LESS_OR_EQUAL, 0, uint64(x.irql), 0, 0,
			fmt.Sprintf("APC %s returned at %v, not %v", apc.Name, x.irql, want))
	}
}

// deliverUserApcs runs the user APCs of t when its alertable user-mode
// wait ends with STATUS_USER_APC. The model has no user mode: the kernel
// routine and the normal routine both run in the thread at PASSIVE_LEVEL
// before the wait returns (REFERENCE §9).
func (k *Kernel) deliverUserApcs(x *exec) {
	t := x.thread
	for len(t.userApcs) > 0 {
		apc := t.userApcs[0]
		t.userApcs = t.userApcs[1:]
		apc.inserted = false
		normal, ctx, a1, a2 := apc.NormalRoutine, apc.NormalContext, apc.arg1, apc.arg2
		k.emit(x, KindAPC, WhatRunApc, apc.obj, int64(apc.kind()), 0)
		if apc.KernelRoutine != nil {
			apc.KernelRoutine(apc, &normal, &ctx, &a1, &a2)
		}
		if normal != nil {
			normal(ctx, a1, a2)
		}
	}
}

// KeEnterGuardedRegion disables all APCs for the calling thread, special
// kernel APCs included (REFERENCE §4.10). Regions nest. IRQL ≤ APC_LEVEL.
func (k *Kernel) KeEnterGuardedRegion() {
	x := k.enter("KeEnterGuardedRegion")
	k.checkIrqlAtMost(x, "KeEnterGuardedRegion", APC_LEVEL)
	if x.thread != nil && x.kind == execThread {
		x.thread.guardedRegion++
	}
}

// KeLeaveGuardedRegion leaves the innermost guarded region; leaving the
// last one delivers the APCs that became deliverable. Leaving one never
// entered is APC_INDEX_MISMATCH 0x01. IRQL ≤ APC_LEVEL. REFERENCE §4.10.
func (k *Kernel) KeLeaveGuardedRegion() {
	x := k.enter("KeLeaveGuardedRegion")
	k.checkIrqlAtMost(x, "KeLeaveGuardedRegion", APC_LEVEL)
	if x.thread == nil || x.kind != execThread || x.thread.guardedRegion == 0 {
		k.bugCheck(x, "KeLeaveGuardedRegion", APC_INDEX_MISMATCH, 0, 0, 0, 0, "KeLeaveGuardedRegion without a matching KeEnterGuardedRegion")
	}
	x.thread.guardedRegion--
	k.deliverIfPending(x)
}

// deliverIfPending delivers pending kernel APCs when the caller's state
// now allows it (after leaving a region or lowering IRQL).
func (k *Kernel) deliverIfPending(x *exec) {
	if t := x.thread; t != nil && x.kind == execThread && t.apcPending && x.irql == PASSIVE_LEVEL {
		k.deliverApcs(x)
	}
}

// KeAreApcsDisabled reports whether the caller is inside a critical or a
// guarded region. IRQL ≤ DISPATCH_LEVEL. REFERENCE §4.10.
func (k *Kernel) KeAreApcsDisabled() bool {
	x := k.cur("KeAreApcsDisabled")
	t := x.thread
	return t != nil && (t.criticalRegion > 0 || t.guardedRegion > 0)
}

// KeAreAllApcsDisabled reports whether every APC, special ones included,
// is held off for the caller: a guarded region, or IRQL ≥ APC_LEVEL.
// IRQL: any (REFERENCE §4.10).
func (k *Kernel) KeAreAllApcsDisabled() bool {
	x := k.cur("KeAreAllApcsDisabled")
	return x.irql >= APC_LEVEL || x.kind != execThread || x.thread.guardedRegion > 0
}

// KeAlertThread alerts t for mode and returns whether it was already
// alerted. A thread in an alertable wait of a mode no lower than mode is
// taken out of it with STATUS_ALERTED; otherwise the alert is kept and the
// thread's next alertable wait returns STATUS_ALERTED at once (WRK
// KeAlertThread; REFERENCE §4.10). IRQL ≤ DISPATCH_LEVEL.
func (k *Kernel) KeAlertThread(t *Thread, mode KPROCESSOR_MODE) bool {
	x := k.enter("KeAlertThread")
	k.checkIrqlAtMost(x, "KeAlertThread", DISPATCH_LEVEL)
	prev := t.alerted[mode]
	if prev || t.state == Terminated {
		return prev
	}
	k.emit(x, KindAPC, WhatAlert, t.name, int64(mode), 0)
	if t.state == Waiting && t.wait.alertable && mode <= t.wait.mode {
		k.interruptWait(t, STATUS_ALERTED, 0)
		return false
	}
	t.alerted[mode] = true
	return false
}

// waitAbort is the check an alertable or user-mode wait makes before it
// blocks (WRK KeWaitForSingleObject): a pending alert for the wait's mode,
// then user APCs for a user-mode wait, then a kernel-mode alert.
func (t *Thread) waitAbort(mode KPROCESSOR_MODE, alertable bool) (NTSTATUS, bool) {
	switch {
	case alertable && t.alerted[mode]:
		t.alerted[mode] = false
		return STATUS_ALERTED, true
	case mode == UserMode && len(t.userApcs) > 0 && alertable:
		return STATUS_USER_APC, true
	case alertable && t.alerted[KernelMode]:
		t.alerted[KernelMode] = false
		return STATUS_ALERTED, true
	}
	return 0, false
}

// remainingTimeout is what is left of a wait that started at start with
// timeout, for re-waiting after a kernel APC.
func (k *Kernel) remainingTimeout(start des.Time, timeout des.Duration) des.Duration {
	if timeout == Infinite {
		return Infinite
	}
	left := timeout - k.sim.Now().Sub(start)
	if left < 0 {
		return 0
	}
	return left
}

// apcBlockedBy says why t's queued kernel APCs cannot run while it waits,
// for wait-for reports ("" when nothing blocks them).
func (t *Thread) apcBlockedBy() string {
	switch {
	case t.wait.irql >= APC_LEVEL:
		return "it waits at " + t.wait.irql.String()
	case t.guardedRegion > 0:
		return "it waits inside a guarded region"
	case !t.wait.interruptible:
		return "its wait cannot be interrupted"
	}
	return ""
}
