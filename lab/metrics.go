package lab

import (
	"slices"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues"
)

// CellResult is what one cell (or, with Seed "all", the aggregate of a
// workload × policy over its seeds) measured. Durations are virtual
// nanoseconds.
type CellResult struct {
	Workload   string
	Policy     string // "dispatcher/pool"
	Dispatcher string
	Pool       string
	Seed       uint64
	Aggregate  bool // a row over all seeds
	Outcome    string
	Detail     string // the finding, when Outcome is not "ok"
	Processors int
	Window     des.Duration // the arrival window (the workload's duration × scale)

	Offered    float64 // items per second offered (sum of the streams' rates)
	Arrived    int     // work items that arrived
	Completed  int     // routines that returned, at any time
	Unfinished int     // items never run or never finished
	Lat        Summary // queueing latency: ExQueueWorkItem → routine start
	WaitFrac   float64 // fraction of items whose routine did not start at once (latency > 0)
	Resp       Summary // response time: arrival (interrupt) → routine return
	Throughput float64 // routines returned within the window, per second

	Util        []float64 // per processor: busy fraction of the window
	UtilMean    float64
	Switches    int // dispatches in the window
	Preemptions int // dispatches that preempted a running thread, in the window
	RoundRobins int // quantum-end switches to an equal-priority thread, in the window

	Inversion     des.Duration // time in the window a ready thread outranked a running one
	InversionFrac float64      // Inversion / window
	Starvation    des.Duration // longest wait of a ready thread for a processor
	ReadyWaitMean des.Duration // mean wait of a ready thread for a processor

	// MMc is the Erlang C prediction when the workload is an M/M/c queue
	// under this pool (see MMc); nil otherwise.
	MMc *MMc

	ThreadsPeak int          // most worker threads alive at once on the streams' queues
	DynCreated  int          // dynamic worker threads created on those queues
	Drain       des.Duration // last routine return after the window closed

	// Tasks are the real-time tasks' measurements, in the workload's task
	// order (file tasks, rt-app tasks, generated ones).
	Tasks []TaskResult

	// CI holds, on aggregate rows, the 95 % confidence intervals across
	// seeds of the bar charts' metrics; zero on per-seed rows.
	CI CellIntervals

	cdf []float64 // queueing-latency quantiles at cdfQ, ns
}

// Summary is a distribution's summary, in nanoseconds.
type Summary struct {
	P50, P90, P99, Max, Mean float64
	N                        int
	// Approx is set when the percentiles come from a histogram: more than
	// ExactSamples samples, each percentile rounded down by less than
	// 0.1 % (samples.go). Max, Mean and N are exact either way.
	Approx bool
}

// summarize sorts xs and summarises it (nearest-rank percentiles).
func summarize(xs []des.Duration) Summary {
	if len(xs) == 0 {
		return Summary{}
	}
	slices.Sort(xs)
	var sum float64
	for _, x := range xs {
		sum += float64(x)
	}
	return Summary{
		P50: float64(pct(xs, 0.50)), P90: float64(pct(xs, 0.90)), P99: float64(pct(xs, 0.99)),
		Max: float64(xs[len(xs)-1]), Mean: sum / float64(len(xs)), N: len(xs),
	}
}

// pct is the nearest-rank q-quantile of sorted xs.
func pct(xs []des.Duration, q float64) des.Duration {
	i := int(q*float64(len(xs))+0.999999999) - 1
	return xs[max(0, min(i, len(xs)-1))]
}

// cdfQ are the probabilities at which latency quantiles are kept for the
// CDF plots: a uniform grid plus the far tail.
var cdfQ = func() []float64 {
	var q []float64
	for i := 0; i <= 200; i++ {
		q = append(q, float64(i)/200)
	}
	q = append(q, 0.9925, 0.995, 0.9975, 0.999, 0.9995, 0.9999)
	slices.Sort(q)
	return slices.Compact(q)
}()

// quantileCurve returns the quantiles of sorted xs at cdfQ (nil if empty).
func quantileCurve(sorted []des.Duration) []float64 {
	if len(sorted) == 0 {
		return nil
	}
	out := make([]float64, len(cdfQ))
	for i, q := range cdfQ {
		out[i] = float64(pct(sorted, q))
	}
	return out
}

// observer measures dispatcher state. It is the run's trace sink (to count
// switches and time ready waits) and is called after every event (to
// integrate busy time and priority inversion exactly: the state can only
// change at events).
type observer struct {
	k      *kernel.Kernel
	sys    *queues.System
	window des.Time
	last   des.Time

	busy      []bool
	busyTime  []des.Duration
	inverted  bool
	inversion des.Duration

	switches, preempts, rr int
	maxWait, waitSum       des.Duration
	waits                  int

	types       []queues.WORK_QUEUE_TYPE
	threadsPeak int

	maxReady int
	readyFn  func(*kernel.Thread) bool

	// per-thread accounting, on when real-time tasks run
	perThread  map[int32]*threadStat
	owner      []int32 // thread owning each processor since the last event
	dispatched []int32 // thread last dispatched on each processor
}

// threadStat is one thread's processor time (in the window), preemptions
// suffered and migrations.
type threadStat struct {
	cpu                   des.Duration
	preempted, migrations int
	lastCPU               int
}

// trackThreads turns per-thread accounting on.
func (o *observer) trackThreads() {
	o.perThread = map[int32]*threadStat{}
	o.owner = make([]int32, len(o.busy))
	o.dispatched = make([]int32, len(o.busy))
}

// thread returns the stats of thread id (nil if never dispatched).
func (o *observer) thread(id int32) *threadStat { return o.perThread[id] }

func (o *observer) stat(id int32) *threadStat {
	st := o.perThread[id]
	if st == nil {
		st = &threadStat{lastCPU: -1}
		o.perThread[id] = st
	}
	return st
}

// countSwitch attributes a dispatch of r.Thread on r.CPU: a migration if
// it last ran elsewhere, a preemption of the thread it displaced.
func (o *observer) countSwitch(r *des.Record) {
	if o.perThread == nil || r.CPU < 0 || int(r.CPU) >= len(o.dispatched) {
		return
	}
	st := o.stat(r.Thread)
	if st.lastCPU >= 0 && st.lastCPU != int(r.CPU) {
		st.migrations++
	}
	st.lastCPU = int(r.CPU)
	if victim := o.dispatched[r.CPU]; r.What == kernel.WhatPreempt && victim != 0 {
		o.stat(victim).preempted++
	}
	o.dispatched[r.CPU] = r.Thread
}

func newObserver(procs int, window des.Time) *observer {
	o := &observer{window: window, busy: make([]bool, procs), busyTime: make([]des.Duration, procs)}
	o.readyFn = func(t *kernel.Thread) bool {
		o.maxReady = max(o.maxReady, t.Priority())
		return true
	}
	return o
}

// watch adds a queue type whose worker threads are counted.
func (o *observer) watch(t queues.WORK_QUEUE_TYPE) {
	if !slices.Contains(o.types, t) {
		o.types = append(o.types, t)
	}
}

// Write implements des.Sink: it times each dispatch's ready wait and
// counts switches by kind.
func (o *observer) Write(r *des.Record) {
	if r.Kind != kernel.KindSwitch || o.k == nil {
		return
	}
	o.countSwitch(r)
	if t := o.k.Layer().ThreadByID(r.Thread); t != nil {
		w := r.At.Sub(t.ReadySince())
		o.maxWait = max(o.maxWait, w)
		o.waitSum += w
		o.waits++
	}
	if r.At >= o.window {
		return
	}
	o.switches++
	switch r.What {
	case kernel.WhatPreempt:
		o.preempts++
	case kernel.WhatRoundRobin:
		o.rr++
	}
}

// advance integrates the state held since the last observation up to
// now, within the window.
func (o *observer) advance(now des.Time) {
	if o.last < o.window {
		dt := min(now, o.window).Sub(o.last)
		for i, b := range o.busy {
			if b {
				o.busyTime[i] += dt
			}
		}
		if o.inverted {
			o.inversion += dt
		}
		for _, id := range o.owner {
			if id != 0 {
				o.stat(id).cpu += dt
			}
		}
	}
	o.last = now
}

// observe is called after every event: it closes the interval since the
// previous event and samples the new state.
func (o *observer) observe() {
	k := o.k
	o.advance(k.Now())
	minRunning := 1 << 30
	for i := range o.busy {
		c := k.Layer().Processor(i)
		o.busy[i] = c.Busy()
		if t := c.Current(); t != nil {
			minRunning = min(minRunning, t.Priority())
			if o.owner != nil {
				o.owner[i] = t.ID()
			}
		} else if o.owner != nil {
			o.owner[i] = 0
		}
	}
	o.inverted = false
	if k.Layer().ReadyCount() > 0 && minRunning < 1<<30 {
		o.maxReady = -1
		k.Layer().EachReady(o.readyFn)
		o.inverted = o.maxReady > minRunning
	}
	if o.sys != nil {
		n := 0
		for _, t := range o.types {
			n += o.sys.Queue(t).Threads
		}
		o.threadsPeak = max(o.threadsPeak, n)
	}
}

// finish integrates the final state to the end of the window (a run can
// fall quiet before the window closes).
func (o *observer) finish() {
	if o.last < o.window {
		o.advance(o.window)
	}
}

// fill copies the measurements into r.
func (o *observer) fill(r *CellResult) {
	win := float64(o.window)
	r.Util = make([]float64, len(o.busyTime))
	for i, b := range o.busyTime {
		r.Util[i] = float64(b) / win
		r.UtilMean += r.Util[i]
	}
	r.UtilMean /= float64(len(r.Util))
	r.Switches, r.Preemptions, r.RoundRobins = o.switches, o.preempts, o.rr
	r.Inversion = o.inversion
	r.InversionFrac = float64(o.inversion) / win
	r.Starvation = o.maxWait
	if o.waits > 0 {
		r.ReadyWaitMean = o.waitSum / des.Duration(o.waits)
	}
	r.ThreadsPeak = o.threadsPeak
}

// Results are an experiment's measurements: one row per cell in cell
// order (workload, dispatcher, pool, seed), and one aggregate row per
// workload × policy.
type Results struct {
	Experiment *Experiment
	Scale      float64
	Cells      []CellResult
	Aggregates []CellResult
	// Acceptance holds the points of an acceptance-ratio experiment.
	Acceptance []AcceptancePoint
	// Placement holds the points of a placement experiment.
	Placement []PlacementPoint
}

// aggregate computes the per-workload × policy rows: counts summed,
// maxima taken over seeds, every other metric (percentiles included)
// averaged over seeds; the CDF curve is the seeds' quantiles averaged.
func (r *Results) aggregate() {
	n := len(r.Experiment.Seeds)
	for i := 0; i+n <= len(r.Cells); i += n {
		group := r.Cells[i : i+n]
		a := CellResult{
			Workload: group[0].Workload, Policy: group[0].Policy, Dispatcher: group[0].Dispatcher,
			Pool: group[0].Pool, Aggregate: true, Outcome: "ok", Processors: group[0].Processors,
			Window: group[0].Window, Offered: group[0].Offered, MMc: group[0].MMc,
			Util: make([]float64, len(group[0].Util)),
		}
		f := 1 / float64(n)
		curves := 0
		for _, c := range group {
			if c.Outcome != "ok" && a.Outcome == "ok" {
				a.Outcome, a.Detail = c.Outcome, c.Detail
			}
			a.Arrived += c.Arrived
			a.Completed += c.Completed
			a.Unfinished += c.Unfinished
			a.Lat = a.Lat.add(c.Lat, f)
			a.Resp = a.Resp.add(c.Resp, f)
			a.Throughput += c.Throughput * f
			a.WaitFrac += c.WaitFrac * f
			for j, u := range c.Util {
				a.Util[j] += u * f
			}
			a.UtilMean += c.UtilMean * f
			a.Switches += c.Switches
			a.Preemptions += c.Preemptions
			a.RoundRobins += c.RoundRobins
			a.Inversion += c.Inversion
			a.InversionFrac += c.InversionFrac * f
			a.Starvation = max(a.Starvation, c.Starvation)
			a.ReadyWaitMean += c.ReadyWaitMean
			a.ThreadsPeak = max(a.ThreadsPeak, c.ThreadsPeak)
			a.DynCreated += c.DynCreated
			a.Drain = max(a.Drain, c.Drain)
			if c.cdf != nil {
				if a.cdf == nil {
					a.cdf = make([]float64, len(c.cdf))
				}
				for j, v := range c.cdf {
					a.cdf[j] += v
				}
				curves++
			}
		}
		// Counts of events are averaged per seed (rounded); sums of
		// durations likewise.
		a.Switches = (a.Switches + n/2) / n
		a.Preemptions = (a.Preemptions + n/2) / n
		a.RoundRobins = (a.RoundRobins + n/2) / n
		a.DynCreated = (a.DynCreated + n/2) / n
		a.Inversion /= des.Duration(n)
		a.ReadyWaitMean /= des.Duration(n)
		for j := range a.cdf {
			a.cdf[j] /= float64(curves)
		}
		a.Tasks = aggregateTasks(group)
		a.CI = seedIntervals(group)
		r.Aggregates = append(r.Aggregates, a)
	}
}

// add accumulates f × s into a running mean; Max is a maximum and N a sum.
func (a Summary) add(s Summary, f float64) Summary {
	return Summary{
		P50: a.P50 + s.P50*f, P90: a.P90 + s.P90*f, P99: a.P99 + s.P99*f,
		Max: max(a.Max, s.Max), Mean: a.Mean + s.Mean*f, N: a.N + s.N, Approx: a.Approx || s.Approx,
	}
}
