package model

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// RunConfig says how to run one execution.
type RunConfig struct {
	Seed    uint64
	Chooser des.Chooser // nil: natural choices
	Sink    des.Sink    // nil: no trace beyond the hash and tail
	// Sim, if set, is reset and reused instead of allocating a new one
	// (exploration runs many executions per worker).
	Sim *des.Sim
	// StepBudget bounds the run; 0 means 2,000,000 events.
	StepBudget uint64
	// Kernel overrides the scenario's kernel configuration when non-nil.
	Kernel *kernel.Config
	// SkipStepInvariants checks invariants only at the end (faster).
	SkipStepInvariants bool
}

// Result is the outcome of one execution.
type Result struct {
	Scenario string
	Variant  string
	Seed     uint64
	Outcome  des.Outcome
	Marks    []string
	// Sometimes lists the marks the scenario declared with Env.Sometimes.
	Sometimes []string
}

// Failed reports whether the execution found something.
func (r Result) Failed() bool { return r.Outcome.Err != nil }

// Run executes one variant of s once. The error is for bad arguments only;
// what the simulation finds is in Result.Outcome.
func Run(s *Scenario, variant string, rc RunConfig) (Result, error) {
	if _, ok := s.Variant(variant); !ok {
		return Result{}, fmt.Errorf("scenario %q has no variant %q", s.Name, variant)
	}
	kcfg := s.KernelConfig(variant)
	if rc.Kernel != nil {
		kcfg = *rc.Kernel
	}
	chooser := rc.Chooser
	if chooser == nil {
		chooser = des.Natural{}
	}
	drain := &drainChooser{inner: chooser}
	drain.failer, _ = chooser.(des.Failer)
	budget := rc.StepBudget
	if budget == 0 {
		budget = 2_000_000
	}
	dcfg := des.Config{Seed: rc.Seed, Chooser: drain, Sink: rc.Sink, StepBudget: budget, DecideTies: kcfg.InjectPreemption,
		WantAccess: des.WantsAccess(chooser)}
	sim := rc.Sim
	if sim == nil {
		sim = des.New(dcfg)
		defer sim.Close()
	} else {
		sim.Reset(dcfg)
	}
	k, err := kernel.New(sim, kcfg)
	if err != nil {
		return Result{}, fmt.Errorf("scenario %q: %w", s.Name, err)
	}
	env := &Env{K: k, Sim: sim, Variant: variant, drain: drain}
	if err := s.Setup(env); err != nil {
		return Result{}, fmt.Errorf("scenario %q setup: %w", s.Name, err)
	}
	step(env, rc.SkipStepInvariants)
	out := k.Layer().Finish()
	if out.Err == nil {
		if err := env.checkInvariants(env.endChecks); err != nil {
			sim.Stop(err)
			out = sim.Outcome()
		}
	}
	return Result{Scenario: s.Name, Variant: variant, Seed: rc.Seed, Outcome: out, Marks: env.Marks(), Sometimes: env.sometimes}, nil
}

// step drives the simulation, checking invariants after every event.
func step(env *Env, skip bool) {
	sim := env.Sim
	if skip || len(env.invariants) == 0 {
		sim.Run()
		return
	}
	for sim.Step() {
		if err := env.checkInvariants(env.invariants); err != nil {
			sim.Stop(err)
			return
		}
	}
}
