package queues

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// System is the executive worker-thread machinery of one simulated machine
// (REFERENCE §3): one worker queue per queue type, each a kernel KQUEUE
// with FIFO items, LIFO wake of idle workers and a concurrency limit, its
// static and dynamic worker threads, and the worker balance manager thread
// that adds dynamic threads. It also keeps the driver objects and I/O work
// items of the I/O-manager part of this package.
//
// A System belongs to one Kernel and, like it, is single-threaded. Its
// routines are called from simulated code (threads, DPCs), as the NT
// routines they model are.
type System struct {
	k      *kernel.Kernel
	cfg    PoolConfig
	policy PoolPolicy

	fixed  [NumFixedQueues]*workQueue
	custom [maxCustomPriority + 1]*workQueue
	all    []*workQueue // in creation order: passes and reports walk it

	ctl       *kernel.KQUEUE // the balance manager waits here for wake-ups
	manager   *kernel.Thread
	signalled bool     // a wake-up is in ctl, not yet taken
	armed     bool     // the manager waits for its next periodic pass
	nextPass  des.Time // when, if armed

	lastItem uint64 // last work-item id handed out
	drivers  []*DRIVER_OBJECT
	ioLive   []*IO_WORKITEM // from IoAllocateWorkItem, not yet freed
	ioInit   []*IO_WORKITEM // from IoInitializeWorkItem, not yet uninitialised

	sp               *spares         // this Sim's pool objects from earlier runs
	manage           func()          // s.balanceManager, bound once
	endCheck         func() []string // s.checkEnd, bound once
	hangNotes        func() []string // s.hangNote, bound once
	releaseIrpDevice func(any)       // s.irpDone, bound once
}

// workQueue is one system worker queue.
type workQueue struct {
	s       *System
	typ     WORK_QUEUE_TYPE
	name    string // the type's name, the Object of its trace records
	short   string // for thread names: "delayed", "custom10"
	kq      *kernel.KQUEUE
	static  int // live static workers
	dynamic int // live dynamic workers
	created int // dynamic workers created so far

	processed         uint64
	depthLastPass     int
	processedLastPass uint64
}

// worker is one worker thread.
type worker struct {
	q       *workQueue
	dynamic bool
	t       *kernel.Thread

	body  func() // w.run, bound once
	name  string // the thread's name, built from short and index
	short string
	index int
}

// spares recycles the pools' objects from run to run of a Sim, as the
// kernel recycles its own (kernel/recycle.go): each is reset entirely, only
// buffers, handlers bound to the object and equal names survive.
type spares struct {
	systems des.Stock[System]
	queues  des.Stock[workQueue]
	workers des.Stock[worker]
}

var spareKey = des.NewSpareKey("queues")

func sparesOf(sim *des.Sim) *spares {
	sp, _ := sim.Spare(spareKey).(*spares)
	if sp == nil {
		sp = &spares{}
		sim.SetSpare(spareKey, sp)
	}
	return sp
}

// NewSystem builds the worker pools on k: a queue with its static threads
// for every fixed type with Static > 0 (other queues appear at first use),
// and the balance manager thread. Call it before the run starts (outside
// simulated code) or from a thread. It registers the end-of-run check for
// items still queued and I/O work items never freed.
func NewSystem(k *kernel.Kernel, cfg PoolConfig) (*System, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("queues: invalid pool config: %w", err)
	}
	sp := sparesOf(k.Layer().Sim())
	s := sp.systems.Take(k.Layer().Sim())
	old := *s
	*s = System{k: k, cfg: cfg, policy: cfg.Policy, sp: sp, all: old.all[:0], ioLive: old.ioLive[:0], ioInit: old.ioInit[:0],
		manage: old.manage, endCheck: old.endCheck, hangNotes: old.hangNotes, releaseIrpDevice: old.releaseIrpDevice}
	if s.manage == nil {
		s.manage, s.endCheck, s.releaseIrpDevice = s.balanceManager, s.checkEnd, s.irpDone
		s.hangNotes = s.hangNote
	}
	if s.policy == nil {
		s.policy = ReactOS()
	}
	for t := WORK_QUEUE_TYPE(0); t < MaximumWorkQueue; t++ {
		if cfg.Static[t] > 0 {
			s.newQueue(t, cfg.Static[t])
		}
	}
	s.ctl = k.KeInitializeQueue("balance-manager", 0)
	k.Layer().QueueEntriesNotedByLayer(s.ctl) // the manager's own requests, not driver work
	s.manager = k.PsCreateSystemThread("worker.balance", cfg.BalancePriority, s.manage)
	k.Layer().AddEndCheck(s.endCheck)
	k.Layer().AddHangNote(s.hangNotes)
	return s, nil
}

// MustNewSystem is NewSystem for configurations known to be valid.
func MustNewSystem(k *kernel.Kernel, cfg PoolConfig) *System {
	s, err := NewSystem(k, cfg)
	if err != nil {
		panic(err)
	}
	return s
}

// Kernel returns the kernel the pools run on.
func (s *System) Kernel() *kernel.Kernel { return s.k }

// Config returns the pool configuration.
func (s *System) Config() PoolConfig { return s.cfg }

// Policy returns the growth policy in use.
func (s *System) Policy() PoolPolicy { return s.policy }

// BalanceManager returns the balance manager thread.
func (s *System) BalanceManager() *kernel.Thread { return s.manager }

// Queue returns a snapshot of queue type t; the zero state (with Type set)
// if that queue has not been created yet. Cost O(1).
func (s *System) Queue(t WORK_QUEUE_TYPE) QueueState {
	if q := s.lookup(t); q != nil {
		return q.state()
	}
	return QueueState{Type: t, MaxDynamic: s.cfg.MaxDynamic}
}

func (s *System) lookup(t WORK_QUEUE_TYPE) *workQueue {
	if p, ok := t.Custom(); ok {
		return s.custom[p]
	}
	if t >= 0 && t < MaximumWorkQueue {
		return s.fixed[t]
	}
	return nil
}

// queueFor returns t's queue, creating it with LazyThreads threads at
// first use.
func (s *System) queueFor(t WORK_QUEUE_TYPE) *workQueue {
	if q := s.lookup(t); q != nil {
		return q
	}
	return s.newQueue(t, s.cfg.LazyThreads)
}

func (s *System) newQueue(t WORK_QUEUE_TYPE, threads int) *workQueue {
	q := s.sp.queues.Take(s.k.Layer().Sim())
	old := *q // recycled: keep the names when the type is the same
	*q = workQueue{s: s, typ: t}
	if old.s != nil && old.typ == t {
		q.name, q.short = old.name, old.short
	} else {
		q.name = t.String()
		if p, ok := t.Custom(); ok {
			q.short = "custom" + strconv.Itoa(p)
		} else {
			q.short = strings.ToLower(strings.TrimSuffix(q.name, "WorkQueue"))
		}
	}
	if p, ok := t.Custom(); ok {
		s.custom[p] = q
	} else {
		s.fixed[t] = q
	}
	q.kq = s.k.KeInitializeQueue(q.name, s.cfg.Concurrency)
	s.k.Layer().QueueEntriesNotedByLayer(q.kq) // s.hangNotes names the queued work items
	s.all = append(s.all, q)
	for i := 0; i < threads; i++ {
		s.startWorker(q, false)
	}
	return q
}

func (q *workQueue) state() QueueState {
	return QueueState{
		Type: q.typ, Depth: q.kq.Len(), Active: q.kq.Active(), Limit: q.kq.Limit(), Idle: q.kq.Waiting(),
		Threads: q.static + q.dynamic, Static: q.static, Dynamic: q.dynamic, MaxDynamic: q.s.cfg.MaxDynamic,
		Created: q.created, Processed: q.processed,
		DepthLastPass: q.depthLastPass, ProcessedLastPass: q.processedLastPass,
	}
}

// startWorker creates a worker thread for q (REFERENCE §3.2–3.3).
func (s *System) startWorker(q *workQueue, dynamic bool) *worker {
	w := s.sp.workers.Take(s.k.Layer().Sim())
	old := *w // recycled: keep its body and its name when it comes out equal
	*w = worker{q: q, dynamic: dynamic, body: old.body, short: q.short}
	if w.body == nil {
		w.body = w.run
	}
	if dynamic {
		q.created++
		q.dynamic++
		w.index = q.created
	} else {
		w.index = q.static
		q.static++
	}
	switch {
	case old.q != nil && old.dynamic == dynamic && old.short == w.short && old.index == w.index:
		w.name = old.name
	case dynamic:
		w.name = "worker." + q.short + ".dyn" + strconv.Itoa(w.index)
	default:
		w.name = "worker." + q.short + "." + strconv.Itoa(w.index)
	}
	name := w.name
	w.t = s.k.PsCreateSystemThread(name, s.cfg.priorityOf(q.typ), w.body)
	w.t.Data = w
	w.t.MarkExecutiveWorker() // PsTerminateSystemThread from a routine is 0xE9 (REFERENCE §1.1)
	s.k.Layer().TraceKind(KindWorker, WhatWorkerCreate, name, b2i(dynamic), int64(q.static+q.dynamic))
	return w
}

// run is a worker thread's body (RO:ntoskrnl/ex/work.c, REFERENCE §3.3):
// take the next item from the queue (FIFO; idle workers are woken LIFO),
// run it, check the thread's state, repeat. A dynamic worker exits when it
// has waited DynamicIdleTimeout without an item; static workers never do.
func (w *worker) run() {
	q := w.q
	k := q.s.k
	timeout := kernel.Infinite
	if w.dynamic {
		timeout = q.s.cfg.DynamicIdleTimeout
	}
	for {
		e, ok := k.KeRemoveQueue(q.kq, timeout)
		if !ok {
			if w.dynamic {
				q.dynamic--
				k.Layer().TraceKind(KindWorker, WhatWorkerExit, w.t.Name(), 1, int64(q.static+q.dynamic))
				return
			}
			continue
		}
		q.s.runItem(w, e.(*WORK_QUEUE_ITEM))
	}
}

// balanceManager is the worker balance manager thread (ReactOS
// ExpWorkerThreadBalanceManager, REFERENCE §3.2). It waits on its own
// queue for wake-ups from ExQueueWorkItem, and, while armed, for its
// periodic pass. It is armed only while some queue has items waiting and
// room for a dynamic thread, so an idle system quiesces: an idle manager,
// like an idle worker, waits in KeRemoveQueue and is not a hang.
func (s *System) balanceManager() {
	k := s.k
	for {
		timeout := kernel.Infinite
		if s.armed {
			timeout = s.nextPass.Sub(k.Now())
		}
		switch {
		case s.armed && timeout <= 0: // the pass is due now: no wait
			s.pass()
		default:
			if _, ok := k.KeRemoveQueue(s.ctl, timeout); ok {
				s.signalled = false
				s.growOnInsert()
			} else {
				s.pass()
			}
		}
		s.rearm()
	}
}

// wake signals the balance manager (ReactOS: KeSetEvent on the thread-set
// manager event); a wake-up already pending absorbs it.
func (s *System) wake() {
	if !s.signalled {
		s.signalled = true
		s.k.KeInsertQueue(s.ctl, s)
	}
}

// afterInsert runs the growth rule for q after an item was inserted, and
// wakes the manager to arm its timer when q has items waiting.
func (s *System) afterInsert(q *workQueue) {
	if q.dynamic >= s.cfg.MaxDynamic || q.kq.Len() == 0 {
		return
	}
	if s.policy.GrowOnInsert(q.state()) || (s.policy.Periodic() && !s.armed) {
		s.wake()
	}
}

// growOnInsert is the manager's re-check after a wake-up (ReactOS
// ExpCheckDynamicThreadCount): one thread for each queue that still needs
// one.
func (s *System) growOnInsert() {
	for _, q := range s.all {
		if q.dynamic < s.cfg.MaxDynamic && s.policy.GrowOnInsert(q.state()) {
			s.k.Layer().TraceKind(KindBalance, WhatGrowOnInsert, q.name, int64(q.kq.Len()), int64(q.dynamic))
			s.startWorker(q, true)
		}
	}
}

// pass is the periodic pass (ReactOS ExpDetectWorkerThreadDeadlock): a
// queue the policy finds stuck gets a thread; then the counters are kept
// for the next pass.
func (s *System) pass() {
	for _, q := range s.all {
		if q.dynamic < s.cfg.MaxDynamic && s.policy.GrowOnPass(q.state()) {
			s.k.Layer().TraceKind(KindBalance, WhatDeadlockDetected, q.name, int64(q.kq.Len()), int64(q.processed))
			s.startWorker(q, true)
		}
		q.depthLastPass, q.processedLastPass = q.kq.Len(), q.processed
	}
}

// rearm decides whether the manager's next wait has a timeout. A newly
// armed timer starts a fresh observation window (last-pass counters
// cleared), so the first pass after arming never adds a thread.
func (s *System) rearm() {
	want := s.policy.Periodic() && s.needsPass()
	switch {
	case want && !s.armed:
		for _, q := range s.all {
			q.depthLastPass, q.processedLastPass = 0, q.processed
		}
		s.k.Layer().TraceKind(KindBalance, WhatTimerArmed, "balance-manager", 0, 0)
	case !want && s.armed:
		s.k.Layer().TraceKind(KindBalance, WhatTimerDisarmed, "balance-manager", 0, 0)
	}
	s.armed = want
	if want && s.nextPass <= s.k.Now() {
		p := des.Time(s.cfg.BalancePeriod)
		s.nextPass = (s.k.Now()/p + 1) * p
	}
}

// needsPass reports whether any queue has items waiting and room to grow.
func (s *System) needsPass() bool {
	for _, q := range s.all {
		if q.kq.Len() > 0 && q.dynamic < s.cfg.MaxDynamic {
			return true
		}
	}
	return false
}

// endCheck reports, when the run ends quietly, items still queued and I/O
// work items never freed (REFERENCE §1.1–1.2). Drivers never unloaded are
// fine.
func (s *System) checkEnd() []string {
	var out []string
	for _, q := range s.all {
		for _, e := range q.kq.Entries() {
			it, _ := e.(*WORK_QUEUE_ITEM)
			if it == nil {
				continue
			}
			msg := fmt.Sprintf("work item #%d (%s) still queued on %s with %d worker threads: nothing ran it",
				it.id, it.routineLabel(), q.name, q.static+q.dynamic)
			if it.Block != nil && it.Block.Freed() {
				msg += fmt.Sprintf("; its pool block %s was freed while it was queued (WORKER_INVALID 0xE4 P1=0 in Windows)", it.Block.Name())
			}
			out = append(out, msg)
		}
	}
	for _, iw := range s.ioLive {
		out = append(out, fmt.Sprintf("IO_WORKITEM #%d in pool block %s for %s never freed: IoAllocateWorkItem without IoFreeWorkItem",
			iw.item.id, iw.Block.Name(), iw.obj.header().name))
	}
	for _, iw := range s.ioInit {
		if iw.Block != nil && iw.Block.Freed() {
			out = append(out, fmt.Sprintf("IO_WORKITEM #%d for %s: its storage (pool block %s) was freed without IoUninitializeWorkItem",
				iw.item.id, iw.obj.header().name, iw.Block.Name()))
		}
	}
	return out
}

// hangNote says, for a hang report, which queues still hold items no
// worker will take (REFERENCE §3.4): every worker of the queue waits or
// runs, and the growth policy has added what it could.
func (s *System) hangNote() []string {
	var out []string
	for _, q := range s.all {
		entries := q.kq.Entries()
		if len(entries) == 0 || q.kq.Waiting() > 0 {
			continue
		}
		first := "?"
		if it, _ := entries[0].(*WORK_QUEUE_ITEM); it != nil {
			first = fmt.Sprintf("#%d (%s)", it.id, it.routineLabel())
		}
		items := fmt.Sprintf("%d work items", len(entries))
		if len(entries) == 1 {
			items = "1 work item"
		}
		out = append(out, fmt.Sprintf("%s queued on %s, first %s, and no worker free to run them: "+
			"its %d workers (%d static, %d dynamic, at most %d dynamic) are all running or waiting (REFERENCE §3.4)",
			items, q.name, first, q.static+q.dynamic, q.static, q.dynamic, s.cfg.MaxDynamic))
	}
	return out
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
