package kernel

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
)

// Kernel is one simulated machine: processors, threads, dispatcher state,
// objects and the findings raised so far. It runs on a des.Sim and is, like
// it, single-threaded.
type Kernel struct {
	sim     *des.Sim
	cfg     Config
	policy  Policy
	cpus    []*Processor
	threads []*Thread
	// setupImage is the image Layer.SwitchImage set for setup code (outside
	// simulated code), where there is no exec to carry it.
	setupImage *Image
	irps       []*IRP
	pool       []*PoolBlock
	quantum    des.Duration
	unit       des.Duration

	cancelLock    KSPIN_LOCK // the global I/O cancel spin lock (REFERENCE §1.7)
	balanceArmed  bool
	collectEqual  func(*Thread) bool
	collectPrio   int8
	collectCPU    int // the processor pickAmongEqual chooses for
	balanceScan   des.Handler
	scratch       []*Processor
	threadScratch []*Thread
	idScratch     []int32
	touchScratch  []des.Access
	wantAccess    bool  // the Sim asked for access reports (access.go)
	objSeq        int32 // last object number handed out by objID
	endChecks     []func() []string
	hangNotes     []func() []string
	kqueues       []*KQUEUE          // every KQUEUE of the run, for the hang report (kqueue.go)
	slists        []*SLIST_HEADER    // every initialised S-list of the run, for the hang report (slist.go)
	marks         MarkCounts         // coverage marks hit in this run (Layer.HitMark)
	dpcFlush      *KEVENT            // KeFlushQueuedDpcs waits here; made on first use
	pcpu          PerProcessorPolicy // the policy, when it has per-processor queues
	allCPUs       uint64             // affinity of every processor
	idealSeed     int                // the next thread's ideal processor
	stealMatch    func(*Thread) bool // k.stealFirst, bound once
	stealCPU      int
	stealFound    *Thread
	stealScratch  []*Thread
	rc            *recycler               // this Sim's objects from earlier runs (recycle.go)
	ownDefault    *PerProcessorDispatcher // the default dispatcher New made, reused with k
	stall         stallWatch              // the stalled-timer hang rule (stall.go)
}

// New builds a kernel on sim. The configuration must be valid.
func New(sim *des.Sim, cfg Config) (*Kernel, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("kernel: invalid config: %w", err)
	}
	rc := recyclerOf(sim)
	k := rc.kernels.Take(sim)
	k.reset(sim, cfg, rc)
	k.policy.Reset()
	if pp, ok := k.policy.(PerProcessorPolicy); ok {
		pp.Processors(cfg.Processors)
		k.pcpu = pp
	}
	k.allCPUs = 1<<uint(cfg.Processors) - 1
	if cfg.Processors == 64 {
		k.allCPUs = ^uint64(0)
	}
	k.quantum = cfg.Quantum()
	k.unit = cfg.unit()
	k.cancelLock.Name, k.cancelLock.obj = "IoCancelSpinLock", "spinlock IoCancelSpinLock" // a constant: no string built per run
	for i := 0; i < cfg.Processors; i++ {
		k.cpus = append(k.cpus, newProcessor(k, i))
	}
	k.wantAccess = sim.WantAccess()
	return k, nil
}

// reset makes k, new or recycled, a fresh kernel on sim: every field is
// overwritten but the buffers, the handlers bound to k and the default
// dispatcher, which New resets (see recycler).
func (k *Kernel) reset(sim *des.Sim, cfg Config, rc *recycler) {
	old := *k
	*k = Kernel{sim: sim, cfg: cfg, policy: cfg.Policy, rc: rc, ownDefault: old.ownDefault}
	if k.policy == nil {
		if k.ownDefault == nil {
			k.ownDefault = NewPerProcessorDispatcher()
		}
		k.policy = k.ownDefault
	}
	k.cpus, k.threads, k.irps, k.pool = old.cpus[:0], old.threads[:0], old.irps[:0], old.pool[:0]
	k.scratch, k.threadScratch, k.idScratch = old.scratch[:0], old.threadScratch[:0], old.idScratch[:0]
	k.touchScratch, k.stealScratch, k.endChecks = old.touchScratch[:0], old.stealScratch[:0], old.endChecks[:0]
	k.hangNotes = old.hangNotes[:0]
	clear(old.kqueues)
	k.kqueues = old.kqueues[:0]
	clear(old.slists)
	k.slists = old.slists[:0]
	clear(old.stall.timers)
	k.stall.timers = old.stall.timers[:0]
	k.balanceScan, k.collectEqual, k.stealMatch = old.balanceScan, old.collectEqual, old.stealMatch
	k.marks = old.marks
	k.marks.Reset()
	if k.balanceScan == nil {
		k.balanceScan = k.balanceScanOnce
		k.collectEqual = k.collectEqualPrio
		k.stealMatch = k.stealFirst
	}
}

// MustNew is New for configurations known to be valid (tests, examples).
func MustNew(sim *des.Sim, cfg Config) *Kernel {
	k, err := New(sim, cfg)
	if err != nil {
		panic(err)
	}
	return k
}

// Now returns the virtual time.
func (k *Kernel) Now() des.Time {
	k.tick()
	return k.sim.Now()
}

// Run runs the simulation to quiescence and returns its outcome after the
// end-of-run checks (see Finish).
func (k *Kernel) Run() des.Outcome {
	k.sim.Run()
	return k.Layer().Finish()
}

func (k *Kernel) runningNames() []string {
	var out []string
	for _, c := range k.cpus {
		if top := c.top(); top != nil {
			out = append(out, fmt.Sprintf("cpu%d: %s at %v", c.id, top.name, top.irql))
		}
	}
	return out
}

// stuckDpcs lists, for the livelock report, the DPCs queued on a processor
// whose IRQL is at DISPATCH_LEVEL or above: they wait for that IRQL to drop
// (REFERENCE §4.5). DPCs queued behind a running DPC wait for it to return.
func (k *Kernel) stuckDpcs() []string {
	var out []string
	for _, c := range k.cpus {
		top := c.top()
		if top == nil || top.irql < DISPATCH_LEVEL || len(c.dpcQueue) == 0 {
			continue
		}
		holder := fmt.Sprintf("%s holds it at %v", top.name, top.irql)
		if top == &c.dpc && c.dpc.dpcRunning != nil && top.irql == DISPATCH_LEVEL {
			holder = fmt.Sprintf("behind the running %s, which has not returned", c.dpc.dpcRunning.objName())
		}
		for _, d := range c.dpcQueue {
			out = append(out, fmt.Sprintf("%s queued on %s since t=%v, %s", d.objName(), c.name, d.queuedAt, holder))
		}
	}
	return out
}

// readyNames lists the threads ready to run that no processor runs, with
// their current priority, for the livelock report.
func (k *Kernel) readyNames() []string {
	var out []string
	for _, t := range k.threads {
		if t.state == Ready {
			out = append(out, fmt.Sprintf("%s (priority %d)", t.name, t.priority))
		}
	}
	return out
}

func (k *Kernel) leaks() []string {
	var items []string
	for _, irp := range k.irps {
		if !irp.completed && !irp.freed {
			items = append(items, fmt.Sprintf("%s never completed (pending=%v cancel=%v)", irp.name, irp.pendingMarked, irp.cancel))
		}
	}
	for _, b := range k.pool {
		if !b.freed && (b.Live == nil || !b.Live()) {
			items = append(items, b.leakText())
		}
	}
	for _, f := range k.endChecks {
		items = append(items, f()...)
	}
	return items
}

// halt stops the run with err and parks the calling exec for good: the
// code that broke a rule never continues past the faulting call.
func (k *Kernel) halt(e *exec, err error) {
	k.sim.Stop(err)
	if e != nil && e.running() {
		e.req = reqHalt
		for {
			e.proc.Yield()
		}
	}
}

// bugCheck raises a bug check at the current call.
func (k *Kernel) bugCheck(e *exec, api string, code uint32, p1, p2, p3, p4 uint64, detail string) {
	bc := &BugCheck{Code: code, Name: BugCheckName(code), Params: [4]uint64{p1, p2, p3, p4},
		API: api, At: k.sim.Now(), Detail: detail, CPU: -1}
	if e != nil {
		bc.Actor, bc.IRQL = e.name, e.irql
		if e.dpcRunning != nil {
			bc.DPC = e.dpcRunning.Name
		}
		if e.cpu != nil {
			bc.CPU = e.cpu.id
		}
	}
	k.emit(e, KindBugCheck, WhatBugCheck, bc.Name, int64(code), int64(p1))
	k.halt(e, bc)
}
