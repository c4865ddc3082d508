package lab

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/wqsim/wqsim/des"
)

// Experiment is an experiment file. Example:
//
//	{
//	  "name": "pools",
//	  "seeds": [1, 2, 3],
//	  "dispatchers": ["nt", "fifo"],
//	  "pools": [
//	    {"policy": "fixed"},
//	    {"policy": "reactos"},
//	    {"policy": "grow-on-demand", "limit": 16}
//	  ],
//	  "workloads": [{
//	    "name": "mmc-delayed",
//	    "processors": 2,
//	    "duration": "1s",
//	    "streams": [{
//	      "queue": "DelayedWorkQueue",
//	      "arrivals": {"process": "poisson", "rate": 2400},
//	      "service": {"dist": "exponential", "mean": "300us"},
//	      "blocking": {"fraction": 0.4, "time": {"dist": "exponential", "mean": "2ms"}}
//	    }],
//	    "competing": [{"name": "poller", "priority": 14, "count": 2,
//	      "compute": {"dist": "constant", "mean": "1ms"},
//	      "sleep": {"dist": "exponential", "mean": "2ms"}}]
//	  }]
//	}
//
// Every workload runs under every dispatcher × pool combination (a
// policy, named "dispatcher/pool") with every seed.
type Experiment struct {
	// Name names the experiment; the default output directory is
	// out/<name>. Letters, digits, '-', '_' and '.'.
	Name string `json:"name"`
	// Description is free text for the reader.
	Description string `json:"description,omitempty"`
	// Seeds seed the workload random streams: one cell per seed.
	Seeds []uint64 `json:"seeds"`
	// Workloads to run.
	Workloads []Workload `json:"workloads,omitempty"`
	// Dispatchers are kernel dispatcher policies: "nt" (the NT dispatcher
	// with Windows client defaults), "nt-percpu" (the same rules with
	// per-processor ready queues), "nt-server" (server quantum, 36
	// units), "nt-noboost" (no wait-completion boosts), "nt-ideal" (zero
	// kernel-call, switch and interrupt costs: an M/M/c workload is then
	// exactly M/M/c, see MMc), "fifo" (one FIFO
	// ready queue, no preemption: a run-to-block baseline).
	Dispatchers []string `json:"dispatchers,omitempty"`
	// Pools are executive worker-pool configurations.
	Pools []Pool `json:"pools,omitempty"`
	// Acceptance makes the file an acceptance-ratio experiment (see
	// Acceptance) instead of workloads × policies.
	Acceptance *Acceptance `json:"acceptance,omitempty"`
	// Placement makes the file a multiprocessor placement experiment (see
	// Placement): random task sets under each dispatcher × global or
	// partitioned placement.
	Placement *Placement `json:"placement,omitempty"`

	source []byte // the file as read, copied to the output directory
}

// Workload is a simulated machine and what it is asked to do.
type Workload struct {
	// Name names the workload in the CSV and the plot files. Letters,
	// digits, '-', '_' and '.'.
	Name string `json:"name"`
	// Processors is the number of simulated CPUs, 1–64.
	Processors *int `json:"processors,omitempty"`
	// Duration is the arrival window: work items arrive and competing
	// threads run from time 0 until Duration; the run then drains.
	Duration Duration `json:"duration,omitzero"`
	// Streams are the work-item arrival streams. A workload needs at least
	// one stream or one real-time task.
	Streams []Stream `json:"streams,omitempty"`
	// Competing are CPU-bound threads that run beside the worker pools.
	Competing []Competing `json:"competing,omitempty"`
	// Tasks are real-time tasks: kernel threads released by their timers.
	Tasks []Task `json:"tasks,omitempty"`
	// TaskSet draws a random task set per seed, added to Tasks.
	TaskSet *TaskSetGen `json:"task_set,omitempty"`
	// Priorities assigns kernel priorities to tasks that give none: "rm"
	// (rate-monotonic, the default) or "dm" (deadline-monotonic), from 31
	// down, one real-time level per task.
	Priorities string `json:"priorities,omitempty"`
	// RTApp is a workload in rt-app's JSON format (the subset ParseRTApp
	// reads), inline: its periodic threads become Tasks, its run/sleep
	// threads Competing groups.
	RTApp *RawJSON `json:"rt_app,omitempty"`
}

// Task is a periodic or sporadic real-time task: a kernel thread at a
// fixed priority that runs one job per release. Releases come from a
// KTIMER's DPC: a periodic timer (KeSetTimerEx) for a periodic task, a
// one-shot timer re-armed per release for jitter or sporadic arrivals; a
// job that is not done by the next release delays it, jobs never overlap
// or get lost. Response times are measured from the nominal release
// (offset + k·period, before jitter).
type Task struct {
	Name string `json:"name"`
	// Kind is "periodic" (the default) or "sporadic" (releases at least
	// Period apart: Period plus a draw of Gap).
	Kind string `json:"kind,omitempty"`
	// Period is the release period (sporadic: minimum inter-arrival).
	Period Duration `json:"period"`
	// WCET is the worst-case execution time of a job.
	WCET Duration `json:"wcet"`
	// Deadline is the relative deadline (default: Period).
	Deadline Duration `json:"deadline,omitzero"`
	// Priority is the thread's base priority, 1–31; by default the
	// workload's Priorities rule assigns a real-time one.
	Priority *int `json:"priority,omitempty"`
	// Offset is the first nominal release (default 0: synchronous release).
	Offset Duration `json:"offset,omitzero"`
	// Jitter delays each release by a uniform draw in [0, Jitter].
	Jitter Duration `json:"jitter,omitzero"`
	// Exec is the distribution of a job's execution time, capped at WCET
	// (default: exactly WCET).
	Exec *Dist `json:"exec,omitempty"`
	// Gap is a sporadic task's extra inter-arrival time beyond Period
	// (default: exponential with mean Period).
	Gap *Dist `json:"gap,omitempty"`

	events []rtEvent // an imported rt-app job body (nil: compute the execution time)
}

// TaskSetGen draws a random task set: UUniFast utilizations (Bini &
// Buttazzo 2005), log-uniform periods, WCET = utilization × period.
type TaskSetGen struct {
	// Generator is "uunifast" or "uunifast-discard" (redraws sets with a
	// task above utilization 1, for multiprocessor sets).
	Generator string `json:"generator"`
	// Tasks is the number of tasks, 1–16.
	Tasks int `json:"tasks"`
	// Utilization is the total utilization, > 0.
	Utilization float64 `json:"utilization"`
	// PeriodMin and PeriodMax bound the log-uniform periods.
	PeriodMin Duration `json:"period_min"`
	PeriodMax Duration `json:"period_max"`
	// Granularity rounds periods down to a multiple (default 1µs).
	Granularity Duration `json:"granularity,omitzero"`
	// Deadlines is "implicit" (D = T, the default) or "constrained" (D
	// uniform in [C, T]).
	Deadlines string `json:"deadlines,omitempty"`
}

// Stream is one source of executive work items: interrupts that arrive by
// Arrivals, each followed by a DPC that queues the items with
// ExQueueWorkItem to Queue; each item's routine computes for a Service
// time and, with probability Blocking.Fraction, waits (KeDelayExecution
// Thread) half-way through.
type Stream struct {
	// Name labels the stream (optional).
	Name string `json:"name,omitempty"`
	// Queue is a WORK_QUEUE_TYPE name: CriticalWorkQueue, DelayedWork
	// Queue, HyperCriticalWorkQueue, NormalWorkQueue, BackgroundWork
	// Queue, RealTimeWorkQueue, SuperCriticalWorkQueue, or
	// CustomPriorityWorkQueue+P for P in 1..31.
	Queue    string   `json:"queue"`
	Arrivals Arrivals `json:"arrivals"`
	// Service is the CPU time each routine computes.
	Service Dist `json:"service"`
	// Blocking makes some routines wait (an I/O, a lock held elsewhere).
	Blocking *Blocking `json:"blocking,omitempty"`
}

// Arrivals is an arrival process.
type Arrivals struct {
	// Process is "poisson" (exponential gaps), "periodic" (fixed gaps,
	// random phase) or "bursty" (Poisson bursts of Burst items at once).
	Process string `json:"process"`
	// Rate is the mean number of work items per second (> 0).
	Rate *float64 `json:"rate,omitempty"`
	// Burst is the number of items per burst; bursty only (≥ 2).
	Burst *int `json:"burst,omitempty"`
}

// Dist is a distribution of virtual durations.
type Dist struct {
	// Dist is "constant" (Mean), "exponential" (Mean), "uniform" (Min,
	// Max) or "lognormal" (Mean, CV: coefficient of variation).
	Dist string   `json:"dist"`
	Mean Duration `json:"mean,omitzero"`
	Min  Duration `json:"min,omitzero"`
	Max  Duration `json:"max,omitzero"`
	CV   *float64 `json:"cv,omitempty"`
}

// Blocking says which routines block and for how long.
type Blocking struct {
	// Fraction of routines that block, in (0, 1].
	Fraction *float64 `json:"fraction,omitempty"`
	// Time is how long a blocking routine waits.
	Time Dist `json:"time"`
}

// Competing is a group of CPU-bound threads: each computes for Compute,
// sleeps for Sleep, and repeats until the arrival window ends.
type Competing struct {
	Name string `json:"name"`
	// Priority is the threads' base priority, 1–31 (16–31 real-time).
	Priority *int `json:"priority,omitempty"`
	// Count is the number of such threads (default 1).
	Count   *int `json:"count,omitempty"`
	Compute Dist `json:"compute"`
	Sleep   Dist `json:"sleep"`
}

// Pool is a worker-pool configuration, on top of the ReactOS defaults (5
// critical, 3 delayed, 1 hypercritical static threads; one lazily created
// thread for other queue types; concurrency = processors).
type Pool struct {
	// Name labels the pool in policy names; default: Policy.
	Name string `json:"name,omitempty"`
	// Policy is "fixed" (static threads only), "reactos" (the ReactOS
	// balance manager) or "grow-on-demand" (a thread as soon as an item
	// waits with no idle worker).
	Policy string `json:"policy"`
	// Limit caps grow-on-demand's dynamic threads per queue (default 16).
	Limit *int `json:"limit,omitempty"`
	// MaxDynamic caps every policy's dynamic threads per queue (default 16).
	MaxDynamic *int `json:"max_dynamic,omitempty"`
	// BalancePeriod is the ReactOS balance manager's pass interval
	// (default 1s).
	BalancePeriod Duration `json:"balance_period,omitzero"`
	// Concurrency is each queue's KQUEUE concurrency limit (default: the
	// processor count).
	Concurrency *int `json:"concurrency,omitempty"`
	// Static overrides the static thread count of fixed queue types, by
	// WORK_QUEUE_TYPE name: {"DelayedWorkQueue": 8}.
	Static map[string]int `json:"static,omitempty"`
}

// Duration is a span of virtual time written as a string with a unit, as
// Go's time.ParseDuration reads it: "1ms", "250us", "1.5s".
type Duration struct {
	D   des.Duration
	Set bool // present in the file
}

// Dur returns a set Duration of d.
func Dur(d des.Duration) Duration { return Duration{D: d, Set: true} }

// IsZero reports whether the duration was absent (for omitzero).
func (d Duration) IsZero() bool { return !d.Set }

// MarshalJSON writes the duration as a string ("1.5ms").
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d.D).String())
}

// UnmarshalJSON reads a duration string. The experiment parser does not
// use it (it reports errors with their field path); it is here so that
// the types also work with encoding/json directly.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := parseDuration(s)
	if err != nil {
		return err
	}
	*d = Dur(v)
	return nil
}

func parseDuration(s string) (des.Duration, error) {
	v, err := time.ParseDuration(s)
	return des.Duration(v), err
}

// Size describes the experiment's extent for a progress line.
func (e *Experiment) Size() string {
	if a := e.Acceptance; a != nil {
		return fmt.Sprintf("acceptance ratio, %d task counts × %d utilizations × %d sets × %d seeds", len(a.Tasks), len(a.utilizations()), a.Sets, len(e.Seeds))
	}
	if pl := e.Placement; pl != nil {
		return fmt.Sprintf("placement, %d processors, %d tasks: %d utilizations × %d sets × %d seeds × %d placements × %d dispatchers",
			pl.Processors, pl.Tasks, len(pl.utilizations()), pl.Sets, len(e.Seeds), len(pl.Placements), len(e.Dispatchers))
	}
	cells := len(e.Workloads) * len(e.Dispatchers) * len(e.Pools) * len(e.Seeds)
	return fmt.Sprintf("%d workloads × %d dispatchers × %d pools × %d seeds = %d cells",
		len(e.Workloads), len(e.Dispatchers), len(e.Pools), len(e.Seeds), cells)
}

// Source returns the file the experiment was parsed from (nil if built in
// Go).
func (e *Experiment) Source() []byte { return e.source }
