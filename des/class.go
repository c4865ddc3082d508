package des

import (
	"errors"
	"strings"
)

// Class is how a run ended, from a closed set declared here once: every
// typed outcome of every layer (a bug check, a Filter Verifier report, a
// replay that diverged) belongs to exactly one class, each class has one
// exit code, and tools (the CLI, the shrinker, reports) classify through
// Classify and Signature instead of keeping their own lists.
type Class uint8

// The outcome classes. Their exit codes are part of the command line's
// contract (README "Exit codes"); never renumber one.
const (
	ClassOK             Class = iota // no failure
	ClassInternal                    // not a typed outcome: wqsim itself failed
	ClassBugCheck                    // a simulated bug check (kernel.BugCheck)
	ClassDeadlock                    // deadlock or hang (kernel.Deadlock)
	ClassLeak                        // an IRP, pool block or object outstanding at the end (kernel.Leak)
	ClassLivelock                    // a budget ran out (kernel.Livelock, BudgetError)
	ClassInvariant                   // a scenario invariant failed (model.InvariantError)
	ClassPanic                       // a Go panic in simulated code (PanicError)
	ClassReplayMismatch              // a strict replay diverged (ReplayMismatch, proptest.HashMismatch)
	ClassStuck                       // simulated code did not yield within the watchdog limit (proptest.StuckError)
	ClassContract                    // a documented work-queue contract broken (queues.ContractViolation)
	ClassVerifier                    // a Filter Verifier report (fltmgr.VerifierViolation)
	ClassCsqCorruption               // a cancel-safe queue's IRP slot overwritten (queues.CsqCorruption)
	ClassNondeterminism              // the same execution ran differently twice (proptest.UncontrolledNondeterminism)
	numClasses
)

var classInfo = [numClasses]struct {
	name string
	exit int
}{
	ClassOK:             {"ok", 0},
	ClassInternal:       {"wqsim error", 3},
	ClassBugCheck:       {"bug check", 10},
	ClassDeadlock:       {"deadlock or hang", 11},
	ClassLeak:           {"leak", 12},
	ClassLivelock:       {"livelock", 13},
	ClassInvariant:      {"invariant", 14},
	ClassPanic:          {"panic in driver code", 15},
	ClassReplayMismatch: {"replay mismatch", 16},
	ClassStuck:          {"stuck", 17},
	ClassContract:       {"contract violation", 18},
	ClassVerifier:       {"filter verifier violation", 19},
	ClassCsqCorruption:  {"cancel-safe queue corruption", 20},
	ClassNondeterminism: {"uncontrolled nondeterminism", 21},
}

// Classes returns every class in declaration order.
func Classes() []Class {
	out := make([]Class, numClasses)
	for i := range out {
		out[i] = Class(i)
	}
	return out
}

// String returns the class's name, as the exit-code table prints it.
func (c Class) String() string {
	if c >= numClasses {
		return "unknown class"
	}
	return classInfo[c].name
}

// ExitCode returns the command line's exit status for the class.
func (c Class) ExitCode() int {
	if c >= numClasses {
		return classInfo[ClassInternal].exit
	}
	return classInfo[c].exit
}

// Finding is implemented by every typed way a run can end, in whichever
// layer declares it. Class places it in the closed set; Signature names
// "the same failure" for shrinking and reports: it must not include
// virtual time, actors, object instance names or anything else a smaller
// schedule of the same bug may change ("bugcheck 0x44", "invariant
// no-lost-irp", "deadlock").
type Finding interface {
	error
	Class() Class
	Signature() string
}

// Classify returns the class of a run's error: ClassOK for nil, the class
// of the outermost Finding in its chain, else ClassInternal.
func Classify(err error) Class {
	if err == nil {
		return ClassOK
	}
	var f Finding
	if errors.As(err, &f) {
		return f.Class()
	}
	return ClassInternal
}

// Signature returns the signature of a run's error: "ok" for nil, the
// outermost Finding's Signature, else "error " and the text up to the
// first colon (an untyped error: no time or actor should follow it).
func Signature(err error) string {
	if err == nil {
		return "ok"
	}
	var f Finding
	if errors.As(err, &f) {
		return f.Signature()
	}
	return "error " + strings.SplitN(err.Error(), ":", 2)[0]
}

// Class implements Finding.
func (e *PanicError) Class() Class { return ClassPanic }

// Signature implements Finding.
func (e *PanicError) Signature() string { return "panic" }

// Class implements Finding.
func (e *BudgetError) Class() Class { return ClassLivelock }

// Signature implements Finding.
func (e *BudgetError) Signature() string { return "livelock" }

// Class implements Finding.
func (m *ReplayMismatch) Class() Class { return ClassReplayMismatch }

// Signature implements Finding.
func (m *ReplayMismatch) Signature() string { return "replay mismatch" }
