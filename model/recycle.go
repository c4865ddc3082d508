package model

import "github.com/wqsim/wqsim/des"

// runSpares keeps what Run builds around a scenario from one run of a Sim
// to the next (des.Sim.Spare), as the kernel keeps its objects
// (kernel/recycle.go): an exploration worker runs thousands of executions
// on one reset Sim, and the Env, the drain wrapper and the marks list were
// allocated anew for each. Each is overwritten whole at the start of a
// run; only slice storage survives, never contents.
type runSpares struct {
	env         Env
	drain       drainChooser
	marks       []string // Result.Marks
	minifilters des.Stock[Minifilter]
	cancelsafe  *csFilter // the cancelsafe scenario's filter (cancelsafe.go)
}

var spareKey = des.NewSpareKey("model")

// sparesOf returns sim's run spares.
func sparesOf(sim *des.Sim) *runSpares {
	sp, _ := sim.Spare(spareKey).(*runSpares)
	if sp == nil {
		sp = &runSpares{}
		sim.SetSpare(spareKey, sp)
	}
	return sp
}

// newEnv resets the spare Env for a new run, keeping its lists' storage.
func (sp *runSpares) newEnv(e Env) *Env {
	old := &sp.env
	e.marks = reuse(old.marks)
	e.sometimes = reuse(old.sometimes)
	e.invariants = reuse(old.invariants)
	e.endChecks = reuse(old.endChecks)
	*old = e
	return old
}

// reuse returns s emptied, its elements zeroed so that nothing of the
// last run (closures over its objects) stays reachable through it.
func reuse[T any](s []T) []T {
	clear(s)
	return s[:0]
}

// cancelSafe returns the spare cancelsafe filter reset for a run on b.
func (sp *runSpares) cancelSafe(b *Minifilter) *csFilter {
	if sp.cancelsafe == nil {
		sp.cancelsafe = newCsFilter()
	}
	sp.cancelsafe.reset(b)
	return sp.cancelsafe
}
