package model

import (
	"fmt"
	"slices"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// Env is what a scenario's Setup and its driver code see: the kernel, the
// variant being run, coverage marks, invariants and workload decisions.
type Env struct {
	K       *kernel.Kernel
	Sim     *des.Sim
	Variant string

	marks      []string
	sometimes  []string
	invariants []invariant
	drain      *drainChooser
	endChecks  []invariant
}

type invariant struct {
	name string
	f    func() error
}

// InvariantError is an invariant the scenario declared that stopped holding.
type InvariantError struct {
	Name string
	Err  error
	At   des.Time
}

func (e *InvariantError) Error() string {
	return fmt.Sprintf("invariant %q violated at t=%v: %v", e.Name, e.At, e.Err)
}

func (e *InvariantError) Unwrap() error { return e.Err }

// Hit records that the run reached a racy path (a coverage mark).
func (e *Env) Hit(mark string) {
	if !slices.Contains(e.marks, mark) {
		e.marks = append(e.marks, mark)
	}
	e.K.Layer().Trace("mark", mark, 0, 0)
}

// Sometimes declares an existential property: some execution of an
// exploration must reach mark (call Hit(mark) on the racy path). An
// exploration that runs to its end without any execution hitting a
// declared mark fails (proptest.Check), because a schedule space that never
// reaches the race cannot show its absence: the workload or the strategy
// is too weak. Declare it in Setup, before any thread runs.
func (e *Env) Sometimes(mark string) {
	if !slices.Contains(e.sometimes, mark) {
		e.sometimes = append(e.sometimes, mark)
	}
}

// Marks returns the marks hit so far, sorted.
func (e *Env) Marks() []string {
	out := slices.Clone(e.marks)
	slices.Sort(out)
	return out
}

// Invariant registers a check run after every event; the first error stops
// the run with an *InvariantError.
func (e *Env) Invariant(name string, f func() error) {
	e.invariants = append(e.invariants, invariant{name, f})
}

// AtEnd registers a check run when the run ends without another finding.
func (e *Env) AtEnd(name string, f func() error) {
	e.endChecks = append(e.endChecks, invariant{name, f})
}

// Violation stops the run from inside simulated code with an invariant
// violation found inline (a double completion the model itself noticed).
func (e *Env) Violation(name, format string, args ...any) {
	e.K.Layer().Fail(&InvariantError{Name: name, Err: fmt.Errorf(format, args...), At: e.Sim.Now()})
}

// Choose makes a workload decision (which IRP to cancel, when to unload):
// choice 0 must be the plain workload.
func (e *Env) Choose(label string, n int) int {
	return e.Sim.Choose(des.Point{Kind: PointWorkload, Label: label}, n)
}

// BeginDrain ends the perturbation phase: from here every decision takes
// its natural choice, so the run must reach "nothing pending" by itself.
func (e *Env) BeginDrain() {
	if e.drain != nil && !e.drain.on {
		e.drain.on = true
		e.K.Layer().Trace("drain", "perturbations off", 0, 0)
	}
}

func (e *Env) checkInvariants(list []invariant) error {
	for _, inv := range list {
		if err := inv.f(); err != nil {
			return &InvariantError{Name: inv.name, Err: err, At: e.Sim.Now()}
		}
	}
	return nil
}

// drainChooser passes decisions to the strategy until the drain begins,
// then answers 0 without consulting it.
type drainChooser struct {
	inner  des.Chooser
	failer des.Failer // inner as a Failer, if it is one (looked up once)
	on     bool
}

func (d *drainChooser) Choose(p des.Point, n int) int {
	if d.on {
		return 0
	}
	return d.inner.Choose(p, n)
}

func (d *drainChooser) Err() error {
	if d.failer != nil {
		return d.failer.Err()
	}
	return nil
}
