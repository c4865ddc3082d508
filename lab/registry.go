package lab

import (
	"fmt"
	"slices"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues"
)

// PolicyEnv is what a cell offers the policies built for it.
type PolicyEnv struct {
	deadlines map[int32]*rtTask // thread ID → its real-time task
}

// Deadline returns the absolute deadline of the job thread t is running or
// will run next, if t is a real-time task of the workload ("tasks" or a
// generated "task_set"); false for every other thread.
func (e *PolicyEnv) Deadline(t *kernel.Thread) (des.Time, bool) {
	if e == nil || e.deadlines == nil {
		return 0, false
	}
	rt, ok := e.deadlines[t.ID()]
	if !ok {
		return 0, false
	}
	return rt.deadline, true
}

// bind records the real-time tasks of a cell.
func (e *PolicyEnv) bind(tasks []*rtTask) {
	e.deadlines = make(map[int32]*rtTask, len(tasks))
	for _, t := range tasks {
		e.deadlines[t.thread.ID()] = t
	}
}

// DispatcherFunc adjusts the kernel configuration of one cell, which holds
// the Windows client defaults (kernel.DefaultConfig) on entry: it may set
// cfg.Policy to a fresh policy, change quanta, boosts or costs.
type DispatcherFunc func(cfg *kernel.Config, env *PolicyEnv)

// PoolFunc returns a fresh worker-pool policy for one cell from the pool
// entry of the experiment file (its Limit and other fields).
type PoolFunc func(p Pool) queues.PoolPolicy

type registered[F any] struct {
	name, doc string
	fn        F
}

var (
	dispatchers []registered[DispatcherFunc]
	pools       []registered[PoolFunc]
)

// RegisterDispatcher makes a dispatcher usable by name in experiment
// files. doc is a one-line description. Call it from an init function; it
// panics if the name is taken or not a valid name.
func RegisterDispatcher(name, doc string, fn DispatcherFunc) {
	dispatchers = register(dispatchers, "dispatcher", name, doc, fn)
}

// RegisterPool makes a worker-pool policy usable by name in experiment
// files ("pools": [{"policy": name}]). Call it from an init function; it
// panics if the name is taken or not a valid name.
func RegisterPool(name, doc string, fn PoolFunc) {
	pools = register(pools, "pool policy", name, doc, fn)
}

func register[F any](list []registered[F], what, name, doc string, fn F) []registered[F] {
	v := &validator{}
	v.name(what, name, "the "+what)
	if len(v.errs) > 0 {
		panic("lab: Register: " + v.errs.Error())
	}
	if slices.ContainsFunc(list, func(r registered[F]) bool { return r.name == name }) {
		panic(fmt.Sprintf("lab: Register: %s %q is already registered", what, name))
	}
	return append(list, registered[F]{name: name, doc: doc, fn: fn})
}

// DispatcherNames lists the registered dispatchers in registration order.
func DispatcherNames() []string { return names(dispatchers) }

// PoolPolicyNames lists the registered pool policies in registration order.
func PoolPolicyNames() []string { return names(pools) }

func names[F any](list []registered[F]) []string {
	out := make([]string, len(list))
	for i, r := range list {
		out[i] = r.name
	}
	return out
}

func lookup[F any](list []registered[F], name string) (F, bool) {
	for _, r := range list {
		if r.name == name {
			return r.fn, true
		}
	}
	var zero F
	return zero, false
}

func init() {
	RegisterDispatcher("nt", "the NT dispatcher with Windows client defaults: per-processor ready queues, ideal processors and affinity (REFERENCE §4.7)", func(*kernel.Config, *PolicyEnv) {})
	RegisterDispatcher("nt-percpu", "the same as nt, named for experiment files that compare it with nt-global", func(cfg *kernel.Config, _ *PolicyEnv) {
		cfg.Policy = kernel.NewPerProcessorDispatcher()
	})
	RegisterDispatcher("nt-global", "the NT rules over one global ready structure: a readied thread preempts the lowest-priority running thread anywhere (REFERENCE §4.2); not Windows' placement, for comparison", func(cfg *kernel.Config, _ *PolicyEnv) {
		cfg.Policy = kernel.NewNTDispatcher()
	})
	RegisterDispatcher("nt-server", "the NT dispatcher with the server quantum (36 units)", func(cfg *kernel.Config, _ *PolicyEnv) {
		procs := cfg.Processors
		*cfg = kernel.ServerConfig()
		cfg.Processors = procs
	})
	RegisterDispatcher("nt-noboost", "the NT dispatcher without wait-completion boosts", func(cfg *kernel.Config, _ *PolicyEnv) {
		cfg.Boosts = false
	})
	RegisterDispatcher("fifo", "one FIFO ready queue, no preemption: a run-to-block baseline", func(cfg *kernel.Config, _ *PolicyEnv) {
		cfg.Policy = kernel.NewFIFODispatcher()
	})
	RegisterDispatcher("nt-ideal", "the NT dispatcher with zero kernel-call, switch and interrupt costs: pure queueing, to check against theory (MMc)", func(cfg *kernel.Config, _ *PolicyEnv) {
		cfg.Costs = kernel.Costs{}
	})
	RegisterPool("fixed", "static threads only", func(Pool) queues.PoolPolicy { return queues.Fixed() })
	RegisterPool("reactos", "the ReactOS balance manager", func(Pool) queues.PoolPolicy { return queues.ReactOS() })
	RegisterPool("grow-on-demand", "a thread as soon as an item waits with no idle worker", func(p Pool) queues.PoolPolicy {
		limit := defaultGrowLimit
		if p.Limit != nil {
			limit = *p.Limit
		}
		return queues.GrowOnDemand(limit)
	})
}
