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
	// StepBudget bounds the run's events plus kernel calls (see
	// des.Config.StepBudget); 0 means DefaultStepBudget.
	StepBudget uint64
	// DecisionBudget bounds the run's decision log (see
	// des.Config.DecisionBudget); 0 means DefaultDecisionBudget.
	DecisionBudget uint64
	// Kernel overrides the scenario's kernel configuration when non-nil.
	Kernel *kernel.Config
	// SkipStepInvariants checks invariants only at the end (faster).
	SkipStepInvariants bool
	// HashV3 computes the trace hash as fail files of format version 3
	// recorded it (see des.Config.HashV3); only their replay sets it.
	HashV3 bool
}

// Default budgets of a run. The scenarios of this repository stay under a
// thousand events, kernel calls and decisions; a run that reaches a budget
// is reported as a livelock. The decision budget also bounds memory (about
// 40 bytes per logged decision, plus the fail file that saves them): a
// thread looping over a scheduling point with perturbations on decides at
// every turn.
const (
	DefaultStepBudget     = 2_000_000
	DefaultDecisionBudget = 500_000
)

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
	dcfg := des.Config{Seed: rc.Seed, Chooser: drain, Sink: rc.Sink, StepBudget: rc.StepBudget,
		DecisionBudget: rc.DecisionBudget, DecideTies: kcfg.InjectPreemption, WantAccess: des.WantsAccess(chooser), HashV3: rc.HashV3}
	if dcfg.StepBudget == 0 {
		dcfg.StepBudget = DefaultStepBudget
	}
	if dcfg.DecisionBudget == 0 {
		dcfg.DecisionBudget = DefaultDecisionBudget
	}
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
	env := &Env{K: k, Sim: sim, Variant: variant, scenario: s, drain: drain}
	if err := runSetup(s, env); err != nil {
		return Result{}, err
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

// runSetup calls s.Setup and turns a panic in it (a kernel routine called
// outside simulated code, say) into an error naming the scenario, so a
// mistake in a user's Setup is one message, not a crashed test binary.
func runSetup(s *Scenario, env *Env) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("scenario %q setup panicked: %v", s.Name, p)
		}
	}()
	if err := s.Setup(env); err != nil {
		return fmt.Errorf("scenario %q setup: %w", s.Name, err)
	}
	return nil
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
