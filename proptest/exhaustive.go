package proptest

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
)

// Exhaustive enumerates decision sequences depth-first for tiny scenarios:
// each execution follows the previous one's log up to the deepest decision
// that still has an untried option, takes the next option there, and
// continues with choice 0. Executions depend on their predecessors, so
// Explore runs them serially. Limit caps the number of executions.
type Exhaustive struct {
	Limit  int
	prefix []des.Decision
	done   bool
	last   *prefixChooser // the chooser of the execution being observed
}

// NewExhaustive returns a depth-first search of at most limit executions.
func NewExhaustive(limit int) *Exhaustive { return &Exhaustive{Limit: limit} }

func (e *Exhaustive) Name() string { return "exhaustive" }

func (e *Exhaustive) Describe() string {
	return fmt.Sprintf("strategy=exhaustive limit=%d", e.Limit)
}

// Chooser ignores the seed: the next schedule depends only on the last.
func (e *Exhaustive) Chooser(uint64) des.Chooser {
	e.last = &prefixChooser{prefix: e.prefix}
	return e.last
}

// Observe implements Sequential: it computes the next prefix. Only the
// decisions this search's chooser was asked about can be steered: a
// scenario's drain (model.Env.BeginDrain) answers the later ones with 0
// without asking, and enumerating their options would rerun one schedule
// for the rest of the budget.
func (e *Exhaustive) Observe(log []des.Decision) bool {
	if e.last != nil && e.last.calls < len(log) {
		log = log[:e.last.calls]
	}
	for i := len(log) - 1; i >= 0; i-- {
		if log[i].Choice+1 < log[i].N {
			next := append([]des.Decision(nil), log[:i+1]...)
			next[i].Choice++
			e.prefix = next
			return true
		}
	}
	e.done = true
	return false
}

// Exhausted reports whether every schedule was tried.
func (e *Exhaustive) Exhausted() bool { return e.done }

// prefixChooser follows a decision prefix where it still matches the run
// (same kind and option count) and answers 0 after it or once it diverges.
type prefixChooser struct {
	prefix []des.Decision
	i      int
	off    bool
	calls  int // decisions it was asked about
}

func (p *prefixChooser) Choose(pt des.Point, n int) int {
	p.calls++
	if p.off || p.i >= len(p.prefix) {
		return 0
	}
	d := p.prefix[p.i]
	p.i++
	if d.Kind != pt.Kind || int(d.N) != n || d.Choice >= int32(n) {
		p.off = true
		return 0
	}
	return int(d.Choice)
}
