package model

import (
	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues"
)

// Coverage marks of these scenarios (see Mark).
var (
	markBadIrqlErrorPath = NewMark("badirql: error path with the spin lock held")
)

// A driver validates and accounts each request in an I/O work item, under
// the spin lock that guards its statistics (REFERENCE §6.12). The buggy
// routine returns early on its error path with the lock still held, so the
// worker gets back from it at DISPATCH_LEVEL: the worker's check after the
// routine raises WORKER_THREAD_RETURNED_AT_BAD_IRQL 0xE1 with P2=2. The
// correct routine leaves through one exit that releases the lock. Which
// request (if any) is malformed is a workload decision.

const biRequests = 3

func init() {
	Register(&Scenario{
		Name: "badirql",
		Doc: "A driver validates and accounts each request in an I/O work item under the spin lock of its " +
			"statistics. On the error path for a malformed request the buggy routine returns with the " +
			"lock held, so it returns to the worker at DISPATCH_LEVEL: 0xE1 with P2=2. The correct " +
			"routine releases the lock on every path. Which request is malformed is a workload decision.",
		Section: "§6.12, §1.1, §4.6",
		Variants: []Variant{
			{Name: "correct", Doc: "one exit path that releases the spin lock"},
			{Name: "error-path-keeps-lock", Bug: true, Doc: "the error path returns without KeReleaseSpinLock",
				Marks: []*Mark{markBadIrqlErrorPath}, Want: "0xE1 WORKER_THREAD_RETURNED_AT_BAD_IRQL"},
		},
		Setup: setupBadIrql,
	})
}

// biExtension is the device extension.
type biExtension struct {
	wiDriver
	lock     *kernel.KSPIN_LOCK // guards the statistics
	accepted int
	rejected int
}

// biRequest is a request's context, passed to its work routine.
type biRequest struct {
	iw        *queues.IO_WORKITEM
	id        int
	malformed bool
}

func setupBadIrql(env *Env) error {
	k := env.K
	w, err := newWiDriver(env, queues.DefaultPoolConfig())
	if err != nil {
		return err
	}
	x := &biExtension{wiDriver: w, lock: k.KeInitializeSpinLock("bi stats")}
	env.AtEnd("every request accounted", wiCountCheck("badirql", biRequests, func() int { return x.accepted + x.rejected }))
	k.PsCreateSystemThread("app", 8, func() {
		x.loadDriver("bi", x.driverEntry)
		// Plainly every request is well formed; otherwise request c-1 is not.
		bad := env.Choose("badirql: which request is malformed", biRequests+1) - 1
		for id := range biRequests {
			x.dispatch(id, id == bad)
			k.Compute(2 * des.Microsecond)
		}
		env.BeginDrain()
	})
	return nil
}

func (x *biExtension) driverEntry(d *queues.DRIVER_OBJECT) kernel.NTSTATUS {
	return x.createDevice(d, x)
}

func (x *biExtension) dispatch(id int, malformed bool) kernel.NTSTATUS {
	iw := x.sys.IoAllocateWorkItem(x.dev)
	if iw == nil {
		return kernel.STATUS_INSUFFICIENT_RESOURCES
	}
	x.sys.IoQueueWorkItem(iw, x.worker, queues.DelayedWorkQueue, &biRequest{iw: iw, id: id, malformed: malformed})
	return kernel.STATUS_PENDING
}

// worker validates and accounts the request at PASSIVE_LEVEL.
func (x *biExtension) worker(_ *queues.DEVICE_OBJECT, context any) {
	k := x.k
	r := context.(*biRequest)
	k.Compute(wiServiceTime / 2) // parse the request
	old := k.KeAcquireSpinLock(x.lock)
	if r.malformed {
		x.rejected++
		x.env.Hit(markBadIrqlErrorPath)
		if x.env.Is("error-path-keeps-lock") {
			x.sys.IoFreeWorkItem(r.iw)
			return // the bug: KeReleaseSpinLock is skipped
		}
	} else {
		x.accepted++
	}
	k.KeReleaseSpinLock(x.lock, old)
	x.sys.IoFreeWorkItem(r.iw)
}
