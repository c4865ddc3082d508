package kernel

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
)

// ThreadState is where a thread is in the dispatcher.
type ThreadState uint8

// Thread states.
const (
	Initialized ThreadState = iota
	Ready
	Running
	Waiting
	Terminated
)

func (s ThreadState) String() string {
	return [...]string{"Initialized", "Ready", "Running", "Waiting", "Terminated"}[s]
}

// Priority bounds (REFERENCE §4.1).
const (
	LOW_PRIORITY          = 0
	LOW_REALTIME_PRIORITY = 16
	HIGH_PRIORITY         = 31
)

// Thread is a simulated kernel thread. Its body is Go code that calls the
// kernel; it runs as a coroutine scheduled by the dispatcher.
type Thread struct {
	exec
	id       int32
	base     int8
	priority int8
	state    ThreadState
	body     func()
	lastCPU  int
	ideal    int    // ideal processor (REFERENCE §4.7)
	affinity uint64 // processors it may run on, one bit each
	userAff  uint64 // the affinity KeRevertToUserAffinityThreadEx restores
	queueCPU int    // the processor whose ready queue holds it (per-processor policy)
	owner    *Image // the driver image of its start routine, nil for none (image.go)
	started  bool   // its start routine has begun

	quantumLeft des.Duration
	readySince  des.Time
	starveBoost bool

	// ready-list links (intrusive, so readying allocates nothing)
	rnext, rprev *Thread

	wait   waitState
	header dispatcherHeader // signalled when the thread terminates

	// The stalled-timer rule (stall.go): polling is set from a wait's
	// timeout until the thread blocks again; quietEpoch and quietFires
	// count its timeouts in a quiet stretch; pollEvery is its last timeout.
	polling    bool
	quietEpoch uint64
	quietFires uint64
	pollEvery  des.Duration

	criticalRegion int             // KeEnterCriticalRegion depth (and owned KMUTEXes)
	guardedRegion  int             // KeEnterGuardedRegion depth (and owned guarded mutexes)
	waitNext       bool            // a Wait=TRUE signal left it at DISPATCH_LEVEL
	waitSeq        uint32          // counts blocks, so a stale timeout knows it is stale
	resTimer       des.Timer       // the pending ERESOURCE owner-boost check of the current resource wait
	waitIrql       IRQL            // the IRQL the next wait restores
	kernelApcs     []*KAPC         // special first, then normal (REFERENCE §4.10)
	userApcs       []*KAPC         // delivered by an alertable user-mode wait
	apcPending     bool            // kernelApcs is not empty: checked at every scheduling point
	inNormalApc    bool            // a normal kernel APC's normal routine is running
	alerted        [2]bool         // KeAlertThread, per mode
	queue          *KQUEUE         // the KQUEUE the thread is associated with
	owned          []ownedLock     // locks held, for deadlock reports
	Data           any             // free for higher layers (worker pools)
	exitStatus     NTSTATUS        // what PsTerminateSystemThread was given
	exWorker       bool            // an executive worker thread (MarkExecutiveWorker)
	terminating    bool            // PsTerminateSystemThread is unwinding its body
	dpcThread      bool            // a processor's threaded-DPC thread (threaddpc.go)
	main           func(*des.Proc) // the coroutine body: threadMain, bound once
}

// ownedLock is a lock held by a thread, for wait-for graphs.
type ownedLock struct {
	name string
	obj  any
}

// ID returns the thread's number (creation order, from 1).
func (t *Thread) ID() int32 { return t.id }

// Name returns the thread's name.
func (t *Thread) Name() string { return t.name }

// State returns the dispatcher state.
func (t *Thread) State() ThreadState { return t.state }

// Priority returns the current (possibly boosted) priority.
func (t *Thread) Priority() int { return int(t.priority) }

// BasePriority returns the base priority.
func (t *Thread) BasePriority() int { return int(t.base) }

// RealTime reports whether the thread is in the real-time class (16–31).
func (t *Thread) RealTime() bool { return t.base >= LOW_REALTIME_PRIORITY }

// PsCreateSystemThread creates a kernel thread at base priority prio
// running body; it becomes ready at once. Priorities are 0–31; 16–31 are
// real-time (never boosted or decayed, REFERENCE §4.1).
// IRQL: PASSIVE_LEVEL as Microsoft documents; the model does not check it (REFERENCE §4.1).
func (k *Kernel) PsCreateSystemThread(name string, prio int, body func()) *Thread {
	k.tick()
	if prio < 0 || prio > HIGH_PRIORITY {
		panic(fmt.Sprintf("kernel: PsCreateSystemThread(%q): priority %d outside 0..31", name, prio))
	}
	t := k.newThread(name, int8(prio), body)
	t.ideal = k.nextIdeal()
	t.affinity, t.userAff = k.allCPUs, k.allCPUs
	t.owner = k.currentImage()
	k.startThread(t)
	return t
}

// startThread gives a new thread, its affinity and owner set, a coroutine
// and makes it ready.
func (k *Kernel) startThread(t *Thread) {
	t.exec.thread = t
	t.exec.image = t.owner
	t.header.thread = t
	t.quantumLeft = k.quantum
	t.proc = k.sim.Spawn(t.name, t.main)
	t.proc.Data = &t.exec
	k.threads = append(k.threads, t)
	k.emit(&t.exec, KindThread, WhatCreate, t.name, int64(t.base), 0)
	t.req = reqCompute
	k.readyThread(t, 0)
}

// newThread returns a thread object numbered after the kernel's threads,
// fresh or recycled and reset (see recycler): it keeps only its buffers,
// its handlers (bound to itself, reading its kernel from t.k) and its names
// when they come out equal.
func (k *Kernel) newThread(name string, prio int8, body func()) *Thread {
	t := k.rc.threads.Take(k.sim)
	old := *t
	*t = Thread{id: int32(len(k.threads) + 1), base: prio, priority: prio, body: body, lastCPU: -1}
	t.kernelApcs, t.userApcs, t.owned = old.kernelApcs[:0], old.userApcs[:0], old.owned[:0]
	t.wait.blocks, t.header.waiters = old.wait.blocks[:0], old.header.waiters[:0]
	t.onChunk, t.wait.onTimeout, t.main = old.onChunk, old.wait.onTimeout, old.main
	t.exec.init(k, execThread, name)
	t.header.init(objThread, k.joined(old.header.name, "thread ", name), false, 0)
	if t.main == nil {
		t.main = func(*des.Proc) { t.k.threadMain(t) }
	}
	return t
}

// threadMain runs a thread's body and its exit checks.
func (k *Kernel) threadMain(t *Thread) {
	t.started = true
	t.runBody()
	if m := t.heldMutex(); m != nil {
		// REFERENCE §4.8: a thread that exits owning a KMUTEX.
		k.bugCheck(&t.exec, "PsTerminateSystemThread", THREAD_TERMINATE_HELD_MUTEX, uint64(t.id), 0, 0, 0,
			fmt.Sprintf("thread exited owning %s (KeReleaseMutex missing)", m.name))
	}
	if t.criticalRegion != 0 {
		// REFERENCE §1.8: a thread exiting with APCs disabled.
		k.bugCheck(&t.exec, "PsTerminateSystemThread", KERNEL_APC_PENDING_DURING_EXIT, 0, uint64(t.criticalRegion), 0, 0,
			"thread exited inside a critical region (KeEnterCriticalRegion without KeLeaveCriticalRegion)")
	}
	if t.guardedRegion != 0 { // REFERENCE §4.10
		k.bugCheck(&t.exec, "PsTerminateSystemThread", KERNEL_APC_PENDING_DURING_EXIT, 0, uint64(t.guardedRegion), 0, 0,
			"thread exited inside a guarded region (KeEnterGuardedRegion without KeLeaveGuardedRegion)")
	}
	if t.irql != PASSIVE_LEVEL {
		k.bugCheck(&t.exec, "PsTerminateSystemThread", IRQL_NOT_LESS_OR_EQUAL, 0, uint64(t.irql), 0, 0,
			fmt.Sprintf("thread exited at %v%s", t.irql, k.spinLocksHeldBy(&t.exec)))
	}
	t.state = Terminated
	t.kernelApcs, t.userApcs, t.apcPending = nil, nil, false // run down: never delivered
	k.emit(&t.exec, KindThread, WhatExit, t.name, int64(t.exitStatus), 0)
	if t.queue != nil {
		t.queue.threadGone(t)
	}
	k.signal(&t.header, 1, 0)
	t.req = reqExit
}

// Object returns the thread's dispatcher object, signalled at exit, for
// KeWaitForSingleObject.
func (t *Thread) Object() Waitable { return &t.header }
