package model

import (
	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues"
)

// Coverage marks of these scenarios (see Mark).
var (
	markAllWorkersWait = NewMark("exhaustion: every delayed worker waits for a queued item")
)

// A bus driver starts its device in a work item (power-up at PASSIVE_LEVEL)
// and serves each request in a work item of its own; a request routine
// that runs before the device is started waits for the start event
// (REFERENCE §6.10, §3.4). If requests arrive before the start is queued,
// every static delayed worker can be taken by a request routine that
// waits for the start, while the start item sits in the queue behind them:
// nothing progresses. With only static threads (the Fixed policy) that is
// a hang. The correct driver never blocks a worker on another work item:
// a request that finds the device not started is parked, and the start
// routine serves the parked requests. The reactos-detector variant keeps
// the blocking routines but runs the ReactOS pool, whose balance manager
// adds a dynamic worker after a second without progress: it completes,
// late.

const (
	exRequests = 4
	exPowerUp  = 30 * des.Microsecond
)

func init() {
	Register(&Scenario{
		Name: "exhaustion",
		Doc: "A driver powers its device up in a work item and serves each request in another; a request " +
			"routine that runs before the power-up waits for it. When the requests are queued before the " +
			"power-up, all static delayed workers wait for an item none of them will run: with a fixed " +
			"pool, a hang. The correct driver parks early requests and lets the power-up routine serve " +
			"them; the ReactOS deadlock detector also resolves it, a second later, by adding a worker.",
		Section: "§6.10, §3.2, §3.3, §3.4",
		Variants: []Variant{
			{Name: "correct", Doc: "fixed pool; early requests are parked, the power-up routine serves them"},
			{Name: "reactos-detector", Doc: "routines wait for the power-up, but the ReactOS balance manager adds a dynamic worker after a second without progress"},
			{Name: "fixed-pool", Bug: true, Doc: "routines wait for the power-up on a fixed pool of static workers",
				Marks: []*Mark{markAllWorkersWait}, Want: "hang"},
		},
		Setup: setupExhaustion,
	})
}

// exExtension is the device extension.
type exExtension struct {
	wiDriver
	lock    *kernel.KSPIN_LOCK
	started bool  // under lock (the correct driver's test)
	parked  []int // under lock: requests that came before the start
	ready   *kernel.KEVENT
	served  *kernel.Cell

	waiting int // model-only: request routines blocked on ready
}

func setupExhaustion(env *Env) error {
	k := env.K
	cfg := queues.DefaultPoolConfig()
	cfg.Policy = queues.Fixed()
	if env.Is("reactos-detector") {
		cfg.Policy = queues.ReactOS()
	}
	w, err := newWiDriver(env, cfg)
	if err != nil {
		return err
	}
	x := &exExtension{wiDriver: w, lock: k.KeInitializeSpinLock("ex start"),
		ready: k.KeInitializeEvent("ex device ready", kernel.NotificationEvent, false), served: k.NewCell("served", 0)}
	env.AtEnd("every request served", wiCountCheck("exhaustion", exRequests, func() int { return int(x.served.Peek()) }))
	k.PsCreateSystemThread("pnp", 8, func() {
		x.loadDriver("ex", x.driverEntry)
		// Plainly IRP_MN_START_DEVICE comes first; otherwise that many
		// requests are already queued when it does.
		early := env.Choose("exhaustion: requests queued before the device start", exRequests+1)
		for id := range exRequests + 1 {
			switch {
			case id == early:
				x.dispatchStart()
			case id < early:
				x.dispatchRequest(id)
			default:
				x.dispatchRequest(id - 1)
			}
		}
		env.BeginDrain()
	})
	return nil
}

func (x *exExtension) driverEntry(d *queues.DRIVER_OBJECT) kernel.NTSTATUS {
	return x.createDevice(d, x)
}

// dispatchStart is IRP_MN_START_DEVICE: the power-up needs PASSIVE_LEVEL
// and time, so it goes to a work item.
func (x *exExtension) dispatchStart() {
	x.queue(x.startWorker, -1)
}

// dispatchRequest is IRP_MJ_DEVICE_CONTROL: served in a work item.
func (x *exExtension) dispatchRequest(id int) {
	x.queue(x.requestWorker, id)
}

func (x *exExtension) queue(routine queues.IO_WORKITEM_ROUTINE, id int) {
	iw := x.sys.IoAllocateWorkItem(x.dev)
	if iw == nil {
		x.env.Violation("allocation", "IoAllocateWorkItem failed for request %d", id)
		return
	}
	x.sys.IoQueueWorkItem(iw, routine, queues.DelayedWorkQueue, &exRequest{iw: iw, id: id})
}

type exRequest struct {
	iw *queues.IO_WORKITEM
	id int
}

func (x *exExtension) startWorker(_ *queues.DEVICE_OBJECT, context any) {
	k := x.k
	r := context.(*exRequest)
	k.Compute(exPowerUp)
	old := k.KeAcquireSpinLock(x.lock)
	x.started = true
	parked := x.parked
	x.parked = nil
	k.KeReleaseSpinLock(x.lock, old)
	k.KeSetEvent(x.ready, kernel.IO_NO_INCREMENT, false)
	for range parked {
		x.serve()
	}
	x.sys.IoFreeWorkItem(r.iw)
}

func (x *exExtension) requestWorker(_ *queues.DEVICE_OBJECT, context any) {
	k := x.k
	r := context.(*exRequest)
	if x.env.Is("correct") {
		old := k.KeAcquireSpinLock(x.lock)
		if !x.started {
			x.parked = append(x.parked, r.id) // the start routine serves it
			k.KeReleaseSpinLock(x.lock, old)
			x.sys.IoFreeWorkItem(r.iw)
			return
		}
		k.KeReleaseSpinLock(x.lock, old)
	} else {
		x.waiting++
		if x.waiting == x.sys.Queue(queues.DelayedWorkQueue).Threads && !k.KeReadStateEvent(x.ready) {
			x.env.Hit(markAllWorkersWait)
		}
		k.KeWaitForSingleObject(x.ready, kernel.Infinite)
		x.waiting--
	}
	x.serve()
	x.sys.IoFreeWorkItem(r.iw)
}

func (x *exExtension) serve() {
	x.k.Compute(wiServiceTime / 2)
	x.k.InterlockedIncrement(x.served)
}
