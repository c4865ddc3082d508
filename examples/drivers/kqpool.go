package drivers

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
)

// kqpool: a driver's own worker pool. Two system threads block in
// KeRemoveQueue on one KQUEUE; dispatch routines hand requests to them with
// KeInsertQueue and wait for them. Shutdown closes the pool to new requests,
// inserts one stop entry per worker and waits on the worker threads' objects
// (REFERENCE §3.3, §4.8, §6.8). A request accepted before the close must be
// inserted before the stop entries, and the stop entries must go behind it,
// or a worker exits with the request still queued and its submitter waits
// for ever.

var (
	markKqAfterStop  = model.NewMark("kqpool: a request was inserted after the stop entries")
	markKqStopPassed = model.NewMark("kqpool: a stop entry overtook a queued request")
)

// KqPool is the scenario.
var KqPool = &model.Scenario{
	Name: "kqpool",
	Doc: "A driver's worker pool of two threads on a KQUEUE; dispatch inserts requests and waits, shutdown " +
		"closes the pool, inserts a stop entry per worker and waits on the threads. The bugs check the " +
		"'closed' flag outside the lock the close takes, or insert the stop entries at the head.",
	Section: "REFERENCE §3.3, §4.8, §6.8",
	Variants: []model.Variant{
		{Name: "correct", Doc: "submit tests 'closed' and inserts under the pool's spin lock; the stop entries go at the tail"},
		{Name: "unlocked-check", Bug: true, Doc: "submit reads 'closed' without the lock and inserts afterwards: shutdown may close, stop and reap the workers in between",
			Marks: []*model.Mark{markKqAfterStop}, Want: "hang|deadlock"},
		{Name: "stop-at-head", Bug: true, Doc: "shutdown inserts the stop entries with KeInsertHeadQueue to stop promptly: queued requests are stranded",
			Marks: []*model.Mark{markKqStopPassed}, Want: "hang|deadlock"},
	},
	Setup: setupKqPool,
}

const (
	kqWorkers    = 2
	kqSubmitters = 3
	kqPerThread  = 2
)

// kqRequest is one request handed to the pool.
type kqRequest struct {
	id   int
	done *kernel.KEVENT
}

// kqStop is the entry that tells a worker to exit.
type kqStop struct{}

type kqPool struct {
	env       *model.Env
	k         *kernel.Kernel
	q         *kernel.KQUEUE
	lock      *kernel.KSPIN_LOCK
	closed    *kernel.Cell
	stopsIn   bool // the stop entries are queued (bookkeeping for the marks)
	accepted  int
	taken     int // requests a worker has removed
	processed int
}

func setupKqPool(env *model.Env) error {
	k := env.K
	p := &kqPool{env: env, k: k}
	k.PsCreateSystemThread("driver", 8, func() {
		p.q = k.KeInitializeQueue("pool", kqWorkers)
		p.lock = k.KeInitializeSpinLock("pool")
		p.closed = k.NewCell("closed", 0)
		var workers []*kernel.Thread
		for i := range kqWorkers {
			workers = append(workers, k.PsCreateSystemThread(fmt.Sprintf("poolworker%d", i), 9, p.worker))
		}
		for i := range kqSubmitters {
			k.PsCreateSystemThread(fmt.Sprintf("app%d", i), 8, func() { p.submitter(i) })
		}
		k.KeDelayExecutionThread(des.Duration(6+5*env.Choose("shutdown at", 6)) * des.Microsecond)
		p.shutdown(workers)
		env.BeginDrain()
	})
	env.AtEnd("every accepted request processed", func() error {
		if p.processed != p.accepted {
			return fmt.Errorf("%d accepted, %d processed", p.accepted, p.processed)
		}
		return nil
	})
	return nil
}

// submitter issues its requests a few microseconds apart and waits for each.
func (p *kqPool) submitter(i int) {
	k := p.k
	for j := range kqPerThread {
		k.KeDelayExecutionThread(des.Duration(1+4*p.env.Choose("issue gap", 3)) * des.Microsecond)
		r := &kqRequest{id: i*kqPerThread + j, done: k.KeInitializeEvent(fmt.Sprintf("req%d done", i*kqPerThread+j), kernel.NotificationEvent, false)}
		if !p.submit(r) {
			return // STATUS_DEVICE_NOT_READY: the pool is closed
		}
		k.KeWaitForSingleObject(r.done, kernel.Infinite)
	}
}

// submit hands r to the pool unless it is closed.
func (p *kqPool) submit(r *kqRequest) bool {
	k := p.k
	if p.env.Is("unlocked-check") {
		if k.Read(p.closed) != 0 {
			return false
		}
		k.Compute(des.Microsecond) // build the request's parameters
		if p.stopsIn {
			p.env.Hit(markKqAfterStop)
		}
		p.accepted++
		k.KeInsertQueue(p.q, r)
		return true
	}
	old := k.KeAcquireSpinLock(p.lock)
	if k.Read(p.closed) != 0 {
		k.KeReleaseSpinLock(p.lock, old)
		return false
	}
	p.accepted++
	k.KeInsertQueue(p.q, r)
	k.KeReleaseSpinLock(p.lock, old)
	return true
}

// worker serves requests until it takes a stop entry.
func (p *kqPool) worker() {
	k := p.k
	for {
		e, ok := k.KeRemoveQueue(p.q, kernel.Infinite)
		if !ok {
			continue
		}
		r, isReq := e.(*kqRequest)
		if !isReq {
			return
		}
		p.taken++
		k.Compute(8 * des.Microsecond)
		p.processed++
		k.KeSetEvent(r.done, kernel.IO_NO_INCREMENT, false)
	}
}

// shutdown closes the pool, stops the workers and waits for them to exit.
func (p *kqPool) shutdown(workers []*kernel.Thread) {
	k := p.k
	old := k.KeAcquireSpinLock(p.lock)
	k.Write(p.closed, 1)
	k.KeReleaseSpinLock(p.lock, old)
	for range workers {
		if p.env.Is("stop-at-head") {
			k.KeInsertHeadQueue(p.q, kqStop{})
			if p.accepted > p.taken {
				p.env.Hit(markKqStopPassed)
			}
		} else {
			k.KeInsertQueue(p.q, kqStop{})
		}
	}
	p.stopsIn = true
	for _, w := range workers {
		k.KeWaitForSingleObject(w.Object(), kernel.Infinite)
	}
}
