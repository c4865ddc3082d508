package proptest

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
)

// UncontrolledNondeterminism reports that the same execution, run twice,
// did not behave the same: something outside the decisions (map order,
// wall-clock time, global random state, a goroutine) reached the run.
type UncontrolledNondeterminism struct {
	Detail string
}

func (u *UncontrolledNondeterminism) Error() string {
	return "uncontrolled nondeterminism: " + u.Detail +
		"; simulated code must take every choice through the Sim (decisions, sim.Rand), never time.Now, math/rand globals, map order or goroutines"
}

// CompareRuns checks two outcomes of the same execution: same decisions,
// same trace hash, same error text.
func CompareRuns(a, b des.Outcome) error {
	if len(a.Decisions) != len(b.Decisions) {
		return &UncontrolledNondeterminism{Detail: fmt.Sprintf("%d decisions the first time, %d the second", len(a.Decisions), len(b.Decisions))}
	}
	for i := range a.Decisions {
		x, y := a.Decisions[i], b.Decisions[i]
		if x.Kind != y.Kind || x.N != y.N || x.Choice != y.Choice {
			return &UncontrolledNondeterminism{Detail: fmt.Sprintf("decision %d was %v, then %v", i, x, y)}
		}
	}
	if a.Hash != b.Hash {
		return &UncontrolledNondeterminism{Detail: fmt.Sprintf("trace hash %#x then %#x", a.Hash, b.Hash)}
	}
	if errText(a.Err) != errText(b.Err) {
		return &UncontrolledNondeterminism{Detail: fmt.Sprintf("outcome %q then %q", errText(a.Err), errText(b.Err))}
	}
	return nil
}

func errText(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

// Class implements des.Finding.
func (u *UncontrolledNondeterminism) Class() des.Class { return des.ClassNondeterminism }

// Signature implements des.Finding.
func (u *UncontrolledNondeterminism) Signature() string { return "nondeterminism" }
