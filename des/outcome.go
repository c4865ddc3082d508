package des

import (
	"fmt"
	"strings"
)

// Outcome is how a run ended. Err is nil for a normal end; otherwise it is a
// typed error: *PanicError, *BudgetError, *ReplayMismatch from this package,
// or a finding defined by a higher layer (a bug check, a deadlock).
type Outcome struct {
	Err       error
	End       Time       // virtual time when the run ended
	Steps     uint64     // events fired
	Calls     uint64     // work charged without an event (Sim.Work)
	Hash      uint64     // stable hash of the whole trace
	Decisions []Decision // the decision log that reproduces the run
	Tail      []Record   // the last trace records
}

// PanicError is a Go panic inside simulated code, recovered by the engine.
type PanicError struct {
	Proc  string // the coroutine that panicked
	Value any    // the value passed to panic
	Stack string // the goroutine stack at the panic
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("panic in simulated code (%s): %v", e.Proc, e.Value)
}

// Budget names the budget a run exhausted.
type Budget uint8

const (
	// BudgetSteps is Config.StepBudget: events plus charged work.
	BudgetSteps Budget = iota + 1
	// BudgetDecisions is Config.DecisionBudget: logged decisions.
	BudgetDecisions
)

// BudgetError reports that a run exhausted a budget: usually a simulated
// thread that loops without ever waiting, or a workload that never ends.
type BudgetError struct {
	Budget    Budget
	Steps     uint64 // events fired
	Calls     uint64 // work charged without an event (kernel routines)
	Decisions int    // decisions logged
	Pending   int    // events still scheduled
	At        Time
}

func (e *BudgetError) Error() string {
	what, knob := "step budget", "Steps"
	if e.Budget == BudgetDecisions {
		what, knob = "decision budget", "Decisions"
	}
	return fmt.Sprintf("%s exceeded: %d events, %d kernel calls and %d decisions by %v with %d events pending; "+
		"a simulated thread may spin without a kernel wait, or the workload never ends (if it is legitimately long, raise the scenario's "+
		"Budget.%s, model.Scenario.Budget, or pass --%s on the command line)",
		what, e.Steps, e.Calls, e.Decisions, e.At, e.Pending, knob, strings.ReplaceAll(what, " ", "-"))
}

// ReplaceErr swaps the error a stopped run ended with for a richer report
// of the same failure (a layer above wrapping a budget overrun, say). It
// does nothing if the run has not stopped.
func (s *Sim) ReplaceErr(err error) {
	if s.stopped {
		s.stopErr = err
	}
}
