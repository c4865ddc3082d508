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
	// (exploration runs many executions per worker). The run's objects are
	// then recycled from the runs before it on that Sim, and the Result's
	// slices (Outcome.Decisions, Marks, Sometimes) are storage the next run
	// on the Sim overwrites: copy what must outlive it.
	Sim *des.Sim
	// StepBudget bounds the run's events plus kernel calls (see
	// des.Config.StepBudget); 0 means the scenario's Budget.Steps, else
	// DefaultStepBudget.
	StepBudget uint64
	// DecisionBudget bounds the run's decision log (see
	// des.Config.DecisionBudget); 0 means the scenario's
	// Budget.Decisions, else DefaultDecisionBudget.
	DecisionBudget uint64
	// Kernel overrides the scenario's kernel configuration when non-nil.
	Kernel *kernel.Config
	// SkipStepInvariants checks invariants only at the end (faster).
	SkipStepInvariants bool
	// HashV3 computes the trace hash as fail files of format version 3
	// recorded it (see des.Config.HashV3); only their replay sets it.
	HashV3 bool
	// CoarseStalls turns kernel.Config.FineStalls off, as every run before
	// fail file format 6 had it; only the replay of such files sets it.
	CoarseStalls bool
}

// Default budgets of a run, for scenarios that declare none
// (Scenario.Budget). The scenarios of this repository stay under a
// thousand events, kernel calls and decisions; a run that reaches a budget
// is reported as a livelock. The decision budget also bounds memory (about
// 40 bytes per logged decision, plus the fail file that saves them): a
// thread looping over a scheduling point with perturbations on decides at
// every turn.
const (
	DefaultStepBudget     = 2_000_000
	DefaultDecisionBudget = 500_000
)

// DefaultBudget is the two defaults as a Budget.
var DefaultBudget = Budget{Steps: DefaultStepBudget, Decisions: DefaultDecisionBudget}

// Result is the outcome of one execution.
type Result struct {
	Scenario string
	Variant  string
	Seed     uint64
	Outcome  des.Outcome
	// Budget is the budget the run had (Scenario.RunBudget): a fail file
	// records it, since a run that ends on it ends differently under
	// another.
	Budget Budget
	Marks  []string
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
	if rc.CoarseStalls {
		kcfg.FineStalls = false
	}
	chooser := rc.Chooser
	if chooser == nil {
		chooser = des.Natural{}
	}
	sim := rc.Sim
	if sim == nil {
		sim = des.New(des.Config{})
		defer sim.Close()
	}
	sp := sparesOf(sim)
	drain := &sp.drain
	*drain = drainChooser{inner: chooser}
	drain.failer, _ = chooser.(des.Failer)
	budget := s.RunBudget(rc)
	dcfg := des.Config{Seed: rc.Seed, Chooser: drain, Sink: rc.Sink, StepBudget: budget.Steps,
		DecisionBudget: budget.Decisions, DecideTies: kcfg.InjectPreemption, WantAccess: des.WantsAccess(chooser), HashV3: rc.HashV3}
	sim.Reset(dcfg)
	k, err := kernel.New(sim, kcfg)
	if err != nil {
		return Result{}, fmt.Errorf("scenario %q: %w", s.Name, err)
	}
	env := sp.newEnv(Env{K: k, Sim: sim, Variant: variant, scenario: s, drain: drain})
	if err := runSetup(s, env); err != nil {
		return Result{}, err
	}
	if err := step(env, rc.SkipStepInvariants); err != nil {
		return Result{}, err
	}
	out := k.Layer().Finish()
	if out.Err == nil {
		found, broken := env.checkInvariants(env.endChecks)
		if broken != nil {
			return Result{}, broken
		}
		if found != nil {
			if sim.Stopped() { // ended with only quiet timers left (kernel stall.go): no error yet
				sim.ReplaceErr(found)
			} else {
				sim.Stop(found)
			}
			out = sim.Outcome()
		}
	}
	sp.marks = env.appendMarks(sp.marks[:0])
	res := Result{Scenario: s.Name, Variant: variant, Seed: rc.Seed, Outcome: out, Budget: budget, Sometimes: env.sometimes}
	if len(sp.marks) > 0 {
		res.Marks = sp.marks
	}
	return res, nil
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

// stepEachEvent makes step drive every run one event at a time, as it does
// to check invariants: no handler then continues at once
// (des.Sim.ContinueNow). Tests set it to show that the results are equal.
var stepEachEvent bool

// step drives the simulation, checking invariants after every event; it
// returns the error of a check that panicked (see checkInvariants).
func step(env *Env, skip bool) error {
	sim := env.Sim
	if !stepEachEvent && (skip || len(env.invariants) == 0) {
		sim.Run()
		return nil
	}
	for sim.Step() {
		found, broken := env.checkInvariants(env.invariants)
		if broken != nil {
			return broken
		}
		if found != nil {
			sim.Stop(found)
			return nil
		}
	}
	return nil
}
