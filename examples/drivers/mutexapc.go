package drivers

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/queues"
)

// MutexApc is a driver whose state is guarded by a kernel mutex taken
// recursively (an update routine that calls a helper taking it again), and
// whose statistics counter is guarded by a guarded mutex. After each
// request its worker thread arms a one-shot timer whose DPC queues a normal kernel APC to the driver's worker thread; the APC's
// normal routine takes the kernel mutex in the worker's context, so it is
// held off while the worker owns the mutex (§4.8) and interrupts the
// worker's waits otherwise (§4.10). An application thread updates the state
// too. Unload signals the worker to stop and waits on its thread object,
// then cancels the timer and flushes the DPCs.
var MutexApc = &model.Scenario{
	Name: "mutexapc",
	Doc: "A KMUTEX taken recursively by a worker thread, an application thread and a kernel APC queued by a " +
		"timer DPC, plus a guarded mutex; unload stops timer, DPC and thread. The bug's error path returns " +
		"from the recursive acquisition with one release missing.",
	Section: "REFERENCE §4.8, §4.10, §6.8",
	Variants: []model.Variant{
		{Name: "correct", Doc: "every KeWaitForSingleObject on the mutex has its KeReleaseMutex"},
		{Name: "missed-release", Bug: true, Doc: "the helper's early return skips its KeReleaseMutex: the worker keeps the mutex",
			Want: "0x4000008A|deadlock|hang"},
	},
	Setup: mutexApcSetup,
}

const maRounds = 3

// maExt is the device extension.
type maExt struct {
	env     *model.Env
	k       *kernel.Kernel
	mutex   *kernel.KMUTEX
	stats   *kernel.KGUARDED_MUTEX
	kick    *kernel.KEVENT
	stop    *kernel.KEVENT
	timer   *kernel.KTIMER
	dpc     *kernel.KDPC
	apc     *kernel.KAPC
	worker  *kernel.Thread
	state   int // guarded by mutex
	applied int // APC normal routines run, guarded by mutex
	count   int // guarded by stats
}

func mutexApcSetup(env *model.Env) error {
	k := env.K
	sys, err := queues.NewSystem(k, queues.DefaultPoolConfig())
	if err != nil {
		return err
	}
	x := &maExt{env: env, k: k}
	k.PsCreateSystemThread("scm", 8, func() {
		drv, st := sys.LoadDriver("mutexapc", x.driverEntry)
		if st != kernel.STATUS_SUCCESS {
			env.Violation("driver loads", "%v", st)
			return
		}
		for range maRounds {
			x.update(1)
			k.KeSetEvent(x.kick, kernel.IO_NO_INCREMENT, false)
			k.KeDelayExecutionThread(des.Duration(1+env.Choose("app pause", 4)*3) * des.Microsecond)
		}
		env.BeginDrain()
		sys.UnloadDriver(drv)
	})
	env.AtEnd("state consistent", func() error {
		if x.state < maRounds {
			return fmt.Errorf("state %d after %d application updates", x.state, maRounds)
		}
		return nil
	})
	return nil
}

func (x *maExt) driverEntry(d *queues.DRIVER_OBJECT) kernel.NTSTATUS {
	k := x.k
	x.mutex = k.KeInitializeMutex("state mutex", 0)
	x.stats = k.KeInitializeGuardedMutex("stats")
	x.kick = k.KeInitializeEvent("kick", kernel.SynchronizationEvent, false)
	x.stop = k.KeInitializeEvent("stop", kernel.NotificationEvent, false)
	x.timer = k.KeInitializeTimer("sample timer")
	x.dpc = d.KeInitializeDpc("sample dpc", x.sampleDpc, nil)
	x.worker = d.PsCreateSystemThread("worker", 9, x.work)
	x.apc = k.KeInitializeApc(x.worker, "sample apc", func(*kernel.KAPC, *kernel.ApcNormalRoutine, *any, *any, *any) {},
		x.applySample, kernel.KernelMode, nil)
	d.DriverUnload = x.unload
	return kernel.STATUS_SUCCESS
}

// update takes the mutex and has bump take it again: a KMUTEX owner may.
func (x *maExt) update(n int) {
	k := x.k
	k.KeWaitForSingleObject(x.mutex, kernel.Infinite)
	x.bump(n)
	k.KeReleaseMutex(x.mutex, false)
	k.KeAcquireGuardedMutex(x.stats)
	x.count++
	k.KeReleaseGuardedMutex(x.stats)
}

// bump is also called on its own; it takes the mutex itself.
func (x *maExt) bump(n int) {
	k := x.k
	k.KeWaitForSingleObject(x.mutex, kernel.Infinite)
	if n == 0 && x.env.Is("missed-release") {
		return // nothing to add: the bug returns still owning its acquisition
	}
	k.Compute(2 * des.Microsecond)
	x.state += n
	k.KeReleaseMutex(x.mutex, false)
}

// work is the worker thread: it serves kicks until stop is signalled.
func (x *maExt) work() {
	k := x.k
	objs := []kernel.Waitable{x.stop, x.kick}
	for {
		if k.KeWaitForMultipleObjects(objs, kernel.WaitAny, kernel.Infinite) == kernel.STATUS_WAIT_0 {
			return
		}
		x.update(x.env.Choose("worker adds", 2))
		// Sample a little later: a one-shot timer per request, so an idle
		// driver has nothing armed.
		k.KeSetTimer(x.timer, des.Duration(2+x.env.Choose("sample after", 3)*3)*des.Microsecond, x.dpc)
	}
}

// sampleDpc queues the sample APC to the worker (FALSE if still queued).
func (x *maExt) sampleDpc(*kernel.KDPC, any, any, any) {
	x.k.KeInsertQueueApc(x.apc, nil, nil, kernel.IO_NO_INCREMENT)
}

// applySample is the APC's normal routine, at PASSIVE_LEVEL in the worker.
func (x *maExt) applySample(any, any, any) {
	k := x.k
	k.KeWaitForSingleObject(x.mutex, kernel.Infinite)
	x.applied++
	k.KeReleaseMutex(x.mutex, false)
}

// unload stops the worker first and waits on its thread object (it is
// what arms the timer), then cancels the timer and waits out its DPC, as
// §6.8 asks before the image goes.
func (x *maExt) unload(*queues.DRIVER_OBJECT) {
	k := x.k
	k.KeSetEvent(x.stop, kernel.IO_NO_INCREMENT, false)
	k.KeWaitForSingleObject(x.worker.Object(), kernel.Infinite)
	k.KeCancelTimer(x.timer)
	k.KeFlushQueuedDpcs()
}
