package des

import "fmt"

// Outcome is how a run ended. Err is nil for a normal end; otherwise it is a
// typed error: *PanicError, *BudgetError, *ReplayMismatch from this package,
// or a finding defined by a higher layer (a bug check, a deadlock).
type Outcome struct {
	Err       error
	End       Time       // virtual time when the run ended
	Steps     uint64     // events fired
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

// BudgetError reports that a run exceeded its step budget: usually a
// simulated thread that loops without ever waiting, or a workload that never
// ends.
type BudgetError struct {
	Steps   uint64
	Pending int
	At      Time
}

func (e *BudgetError) Error() string {
	return fmt.Sprintf("step budget exceeded: %d events fired by %v with %d still pending; "+
		"a simulated thread may spin without a kernel wait, or the workload never ends (raise StepBudget if it is legitimately long)",
		e.Steps, e.At, e.Pending)
}

// ReplaceErr swaps the error a stopped run ended with for a richer report
// of the same failure (a layer above wrapping a budget overrun, say). It
// does nothing if the run has not stopped.
func (s *Sim) ReplaceErr(err error) {
	if s.stopped {
		s.stopErr = err
	}
}
