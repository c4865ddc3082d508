package lab

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues"
)

// Options tune a run without changing the experiment.
type Options struct {
	// Parallel is how many cells run at once; 0 means GOMAXPROCS. Results
	// do not depend on it.
	Parallel int
	// Scale multiplies every workload's duration (0 means 1): 0.1 for a
	// quick look, 1 for the real thing.
	Scale float64
}

// cellSpec is one workload × dispatcher × pool × seed.
type cellSpec struct {
	w      *Workload
	disp   string
	pool   *Pool
	seed   uint64
	window des.Duration
}

// policyName is the "dispatcher/pool" name of a policy.
func policyName(disp string, p *Pool) string { return disp + "/" + p.label() }

// cells lists the cells in output order: workload, dispatcher, pool, seed,
// each workload's window its duration × scale.
func (e *Experiment) cells(scale float64) []cellSpec {
	var out []cellSpec
	for i := range e.Workloads {
		w := &e.Workloads[i]
		win := des.Duration(float64(w.Duration.D) * scale)
		if win < des.Microsecond {
			win = des.Microsecond
		}
		for _, d := range e.Dispatchers {
			for j := range e.Pools {
				for _, s := range e.Seeds {
					out = append(out, cellSpec{w: w, disp: d, pool: &e.Pools[j], seed: s, window: win})
				}
			}
		}
	}
	return out
}

// Run runs every cell of e and returns the results in cell order. It
// fails only on cancellation; a cell whose simulated run ends in a
// finding (a deadlock, a bug check) has that outcome in its result.
func Run(ctx context.Context, e *Experiment, opt Options) (*Results, error) {
	if err := e.ValidateScaled(opt.Scale); err != nil {
		return nil, err
	}
	scale := opt.Scale
	if scale <= 0 {
		scale = 1
	}
	if e.Acceptance != nil {
		pts, err := runAcceptance(ctx, e.Acceptance, e.Seeds)
		if err != nil {
			return nil, err
		}
		return &Results{Experiment: e, Scale: scale, Acceptance: pts}, nil
	}
	if e.Placement != nil {
		pts, err := runPlacement(ctx, e.Placement, e.Dispatchers, e.Seeds, opt.Parallel)
		if err != nil {
			return nil, err
		}
		return &Results{Experiment: e, Scale: scale, Placement: pts}, nil
	}
	specs := e.cells(scale)
	res := make([]CellResult, len(specs))
	errs := make([]error, len(specs))
	if err := inParallel(ctx, len(specs), opt.Parallel, func(i int) {
		res[i], errs[i] = runCell(ctx, specs[i])
	}); err != nil {
		return nil, err
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	r := &Results{Experiment: e, Scale: scale, Cells: res}
	r.aggregate()
	return r, nil
}

// stepBudget stops a cell that runs away (it cannot with validated
// inputs: the item and round limits keep a cell far below it).
const stepBudget = 1 << 30

// job is one work item's life: arrival, queueing, run.
type job struct {
	item    queues.WORK_QUEUE_ITEM
	typ     queues.WORK_QUEUE_TYPE
	service des.Duration
	block   des.Duration // 0: the routine does not block
	arrived des.Time
	queued  des.Time
	started des.Time
}

// driver is the simulated device driver that turns arrivals into work
// items: an interrupt per arrival (or burst), whose ISR queues a DPC that
// queues the items with ExQueueWorkItem.
type driver struct {
	k       *kernel.Kernel
	sys     *queues.System
	window  des.Time
	pending []*job
	head    int
	intr    *kernel.KINTERRUPT
	dpcs    []*kernel.KDPC
	nextCPU int
	routine queues.WORKER_THREAD_ROUTINE

	lat, resp         samples
	waited            int // items whose routine did not start when queued
	arrived           int
	completed         int
	completedInWindow int
	lastDone          des.Time
}

// streamGen generates one stream's arrivals.
type streamGen struct {
	d       *driver
	typ     queues.WORK_QUEUE_TYPE
	n       int // items per arrival
	gap     gapSampler
	service sampler
	block   sampler
	frac    float64
	rng     *rand.Rand
	fire    des.Handler
}

func (g *streamGen) arrive() {
	d := g.d
	now := d.k.Now()
	for range g.n {
		j := &job{typ: g.typ, service: g.service.draw(g.rng), arrived: now}
		if g.frac > 0 && g.rng.Float64() < g.frac {
			j.block = g.block.draw(g.rng)
		}
		d.pending = append(d.pending, j)
		d.arrived++
	}
	d.k.DeviceInterrupt(d.intr, d.nextCPU, now)
	d.nextCPU = (d.nextCPU + 1) % d.k.Layer().Processors()
	if next := now.Add(g.gap.draw(g.rng)); next < d.window {
		d.k.Layer().Sim().At(next, g.fire)
	}
}

// isr runs at device IRQL on the interrupted processor: it queues that
// processor's DPC, as a real driver's ISR does.
func (d *driver) isr(*kernel.KINTERRUPT, any) bool {
	d.k.KeInsertQueueDpc(d.dpcs[d.k.KeGetCurrentProcessorNumber()], nil, nil)
	return true
}

// dpc runs at DISPATCH_LEVEL and queues every pending item.
func (d *driver) dpc(*kernel.KDPC, any, any, any) {
	for d.head < len(d.pending) {
		j := d.pending[d.head]
		d.pending[d.head] = nil
		d.head++
		queues.ExInitializeWorkItem(&j.item, d.routine, j)
		j.queued = d.k.Now()
		d.sys.ExQueueWorkItem(&j.item, j.typ)
	}
	if d.head == len(d.pending) {
		d.pending, d.head = d.pending[:0], 0
	}
}

// work is every item's routine: compute, and for a blocking item compute
// half, wait, compute the rest.
func (d *driver) work(p any) {
	j := p.(*job)
	k := d.k
	j.started = k.Now()
	if j.block > 0 {
		half := j.service / 2
		k.Compute(half)
		k.KeDelayExecutionThread(j.block)
		k.Compute(j.service - half)
	} else {
		k.Compute(j.service)
	}
	now := k.Now()
	d.lat.add(j.started.Sub(j.queued))
	if j.started > j.queued {
		d.waited++
	}
	d.resp.add(now.Sub(j.arrived))
	d.completed++
	if now <= d.window {
		d.completedInWindow++
	}
	d.lastDone = now
}

// kernelConfig returns the kernel configuration of a registered
// dispatcher name for one cell.
func kernelConfig(disp string, processors int, env *PolicyEnv) kernel.Config {
	cfg := kernel.DefaultConfig()
	cfg.Processors = processors
	if fn, ok := lookup(dispatchers, disp); ok {
		fn(&cfg, env)
	}
	cfg.Processors = processors
	return cfg
}

// poolConfig returns the pool configuration of p.
func poolConfig(p *Pool) queues.PoolConfig {
	cfg := queues.DefaultPoolConfig()
	cfg.MaxDynamic = defaultMaxDyn
	if p.MaxDynamic != nil {
		cfg.MaxDynamic = *p.MaxDynamic
	}
	if fn, ok := lookup(pools, p.Policy); ok {
		cfg.Policy = fn(*p)
	}
	if p.BalancePeriod.Set {
		cfg.BalancePeriod = p.BalancePeriod.D
	}
	if p.Concurrency != nil {
		cfg.Concurrency = *p.Concurrency
	}
	for name, n := range p.Static {
		if t, err := parseQueue(name); err == nil && t < queues.MaximumWorkQueue {
			cfg.Static[t] = n
		}
	}
	return cfg
}

// runCell builds a fresh machine for one cell, runs it to quiescence and
// measures it. Its error is only cancellation or an impossible
// configuration; findings of the simulated run are its outcome.
func runCell(ctx context.Context, c cellSpec) (CellResult, error) {
	w := c.w
	r := CellResult{
		Workload: w.Name, Dispatcher: c.disp, Pool: c.pool.label(), Policy: policyName(c.disp, c.pool),
		Seed: c.seed, Processors: *w.Processors, Window: c.window,
	}
	if p, ok := mmcOf(w, c.pool); ok {
		r.MMc = &p
	}
	m, err := newMachine(c)
	if err != nil {
		return r, fmt.Errorf("workload %s, policy %s, seed %d: %w", w.Name, r.Policy, c.seed, err)
	}
	r.Offered = m.startStreams()
	m.startCompeting()
	m.startTasks()
	if err := m.drive(ctx); err != nil {
		return r, err
	}
	m.measure(&r)
	return r, nil
}

// machine is one cell's simulated machine: the kernel and its worker
// pools, the device driver that feeds them and the observer that
// measures them.
type machine struct {
	c   cellSpec
	win des.Time // end of the arrival window
	sim *des.Sim
	k   *kernel.Kernel
	sys *queues.System
	obs *observer
	d   *driver
	env *PolicyEnv
	rt  []*rtTask
}

// newMachine builds c's machine, up to the device: its interrupt and one
// DPC per processor. Nothing is scheduled yet.
func newMachine(c cellSpec) (*machine, error) {
	procs := *c.w.Processors
	m := &machine{c: c, win: des.Time(c.window)}
	m.obs = newObserver(procs, m.win)
	// Nothing replays an experiment's runs: no decision log, so memory
	// does not grow with a run's length.
	m.sim = des.New(des.Config{Seed: c.seed, Sink: m.obs, StepBudget: stepBudget, NoDecisionLog: true})
	m.env = &PolicyEnv{}
	k, err := kernel.New(m.sim, kernelConfig(c.disp, procs, m.env))
	if err != nil {
		return nil, err
	}
	m.k, m.obs.k = k, k
	sys, err := queues.NewSystem(k, poolConfig(c.pool))
	if err != nil {
		return nil, err
	}
	m.sys, m.obs.sys = sys, sys

	d := &driver{k: k, sys: sys, window: m.win}
	d.routine = d.work
	d.intr, err = k.IoConnectInterrupt("device", 5, d.isr, nil)
	if err != nil {
		return nil, err
	}
	for i := range procs {
		d.dpcs = append(d.dpcs, k.KeInitializeDpc(fmt.Sprintf("device.cpu%d", i), d.dpc, nil))
	}
	m.d = d
	return m, nil
}

// startStreams schedules each stream's first arrival inside the window
// and returns the offered load, in items per second.
func (m *machine) startStreams() float64 {
	var offered float64
	for i := range m.c.w.Streams {
		s := &m.c.w.Streams[i]
		typ, _ := parseQueue(s.Queue)
		m.obs.watch(typ)
		g := &streamGen{d: m.d, typ: typ, n: 1, gap: newGapSampler(s.Arrivals), service: newSampler(s.Service),
			rng: newRand(m.c.seed, uint64(i)+1)}
		if s.Arrivals.Burst != nil {
			g.n = *s.Arrivals.Burst
		}
		if b := s.Blocking; b != nil {
			g.frac, g.block = *b.Fraction, newSampler(b.Time)
		}
		g.fire = g.arrive
		offered += *s.Arrivals.Rate
		if first := des.Time(g.gap.first(g.rng)); first < m.win {
			m.sim.At(first, g.fire)
		}
	}
	return offered
}

// startCompeting creates the CPU-bound threads: each computes and sleeps
// until the window ends, from its own random stream.
func (m *machine) startCompeting() {
	k, win := m.k, m.win
	groups := cellCompeting(m.c.w)
	for gi := range groups {
		cg := &groups[gi]
		n := cg.threads()
		comp, sleep := newSampler(cg.Compute), newSampler(cg.Sleep)
		for j := range n {
			rng := newRand(m.c.seed, uint64(1000+gi*maxCompeting+j))
			k.PsCreateSystemThread(fmt.Sprintf("%s.%d", cg.Name, j), *cg.Priority, func() {
				for k.Now() < win {
					k.Compute(comp.draw(rng))
					if k.Now() >= win {
						break
					}
					k.KeDelayExecutionThread(sleep.draw(rng))
				}
			})
		}
	}
}

// startTasks creates the real-time tasks and their release controller;
// releases stop at the end of the window.
func (m *machine) startTasks() {
	tasks := cellTasks(m.c.w, m.c.seed)
	if len(tasks) == 0 {
		return
	}
	m.rt = startRTTasks(m.k, rtSpecs(m.c.w, tasks, m.c.seed), m.win)
	m.env.bind(m.rt)
	m.obs.trackThreads()
}

// drive runs the simulation to quiescence, observing the machine after
// every step. Only cancellation stops it early (checked every 4096 steps).
func (m *machine) drive(ctx context.Context) error {
	m.obs.observe()
	for steps := uint64(1); m.sim.Step(); steps++ {
		m.obs.observe()
		if steps&0xfff == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

// measure ends the run and fills r with its outcome and metrics.
func (m *machine) measure(r *CellResult) {
	m.obs.finish()
	out := m.k.Layer().Finish()
	d, win := m.d, m.win
	r.Outcome, r.Detail = outcomeOf(out.Err)
	r.Arrived, r.Completed = d.arrived, d.completed
	r.Unfinished = d.arrived - d.completed
	r.Lat = d.lat.summary()
	if d.lat.n > 0 {
		r.WaitFrac = float64(d.waited) / float64(d.lat.n)
	}
	r.Resp = d.resp.summary()
	r.cdf = d.lat.curve()
	r.Throughput = float64(d.completedInWindow) / secs(m.c.window)
	if d.lastDone > win {
		r.Drain = d.lastDone.Sub(win)
	}
	m.obs.fill(r)
	for _, t := range m.obs.types {
		r.DynCreated += m.sys.Queue(t).Created
	}
	if len(m.rt) > 0 {
		r.Tasks = taskResults(r, m.rt, m.obs)
	}
}

// outcomeOf classifies how a cell's run ended: its signature in the one
// closed set of outcomes (des.Signature: "ok", "bugcheck 0x44", "hang",
// "livelock", "contract IoQueueWorkItem", ...) and the finding in full.
func outcomeOf(err error) (string, string) {
	if err == nil {
		return des.Signature(nil), ""
	}
	return des.Signature(err), err.Error()
}
