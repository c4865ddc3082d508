package model

import (
	"fmt"
	"slices"
	"strings"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// Env is what a scenario's Setup and its driver code see: the kernel, the
// variant being run, coverage marks, invariants and workload decisions.
type Env struct {
	K   *kernel.Kernel
	Sim *des.Sim // the engine: for package model and tools, not for driver code
	// Variant is the name of the variant being run. Driver code asks Is
	// instead of comparing it: Is panics on a name the scenario does not
	// declare.
	Variant string

	scenario *Scenario

	marks      []*Mark  // hit through Hit
	sometimes  []string // declared with Sometimes
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

// Hit records that the run reached the racy path m (a coverage mark) and
// traces it. Declare m once with NewMark and list it in the bug variant's
// Marks.
func (e *Env) Hit(m *Mark) {
	if !slices.Contains(e.marks, m) {
		e.marks = append(e.marks, m)
	}
	l := e.K.Layer()
	l.HitMark(m)
	l.Trace(WhatMark, m.String(), 0, 0)
}

// Sometimes declares an existential property: some execution of an
// exploration must reach mark m (call Hit(m) on the racy path). An
// exploration that runs to its end without any execution hitting a
// declared mark fails (proptest.Check), because a schedule space that never
// reaches the race cannot show its absence: the workload or the strategy
// is too weak. Declare it in Setup, before any thread runs.
func (e *Env) Sometimes(m *Mark) {
	if !slices.Contains(e.sometimes, m.String()) {
		e.sometimes = append(e.sometimes, m.String())
	}
}

// Is reports whether the run executes the variant named name. It panics
// if the scenario declares no variant of that name, so a mistyped name
// stops the run at once instead of silently running the other branch:
//
//	if env.Is("racy") { ... the bug ... }
func (e *Env) Is(name string) bool {
	if e.Variant == name {
		return true
	}
	if e.scenario != nil {
		if _, ok := e.scenario.Variant(name); !ok {
			panic(fmt.Sprintf("model: Env.Is(%q): scenario %q declares no such variant; its variants: %s",
				name, e.scenario.Name, strings.Join(e.scenario.VariantNames(), ", ")))
		}
	}
	return false
}

// Marks returns the texts of the marks hit so far, sorted: those hit
// through Hit, and the library marks (csq, filter manager) that a variant
// of the scenario lists.
func (e *Env) Marks() []string { return e.appendMarks(nil) }

// appendMarks appends Marks' texts to out, sorted, and returns it.
func (e *Env) appendMarks(out []string) []string {
	for _, m := range e.K.Layer().Marks().Marks() {
		if slices.Contains(e.marks, m) || e.scenario.listsMark(m) {
			out = append(out, m.String())
		}
	}
	slices.Sort(out)
	return out
}

// Invariant registers a check run after every event; the first error stops
// the run with an *InvariantError. Checks run outside simulated code: they
// read plain fields and kernel.Cell.Peek, never kernel routines
// (Kernel.Read panics there, and the run ends with an error naming the
// check instead of a finding).
func (e *Env) Invariant(name string, f func() error) {
	e.invariants = append(e.invariants, invariant{name, f})
}

// AtEnd registers a check run when the run ends without another finding.
// Like an Invariant it runs outside simulated code: read a kernel.Cell with
// Peek, not Kernel.Read.
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

// BeginDrain ends the perturbation phase of the run: from here on every
// decision (kernel and workload) takes its natural choice, choice 0, and the
// explorer is no longer consulted. A workload calls it once the racy part is
// over, typically in the thread that tears the driver down, so that the
// teardown itself runs the plain Windows way and the run must reach
// "nothing pending" by itself (a hang after BeginDrain is a real hang, not
// one the explorer forced by stalling a processor for ever).
//
// Call it late: everything after it is never perturbed, so a race that can
// only happen after BeginDrain is never explored. Calling it early (in
// Setup, or before the workload's interesting part) silently switches
// exploration off for the rest of the run. It is idempotent and traced
// ("drain").
//
//	k.PsCreateSystemThread("unloader", 8, func() {
//		k.KeWaitForSingleObject(appsDone, kernel.Infinite) // the racy part is over
//		env.BeginDrain()                                     // teardown runs naturally
//		driver.Unload()
//	})
//
// Minifilter.UnloadWhenDone does exactly this.
func (e *Env) BeginDrain() {
	if e.drain != nil && !e.drain.on {
		e.drain.on = true
		e.K.Layer().Trace(WhatDrain, "perturbations off", 0, 0)
	}
}

// checkInvariants runs the checks in list: the first error is the
// run's finding. A check that panics (a kernel routine called from it,
// say: checks run outside simulated code) is a mistake in the scenario,
// not a finding: it comes back as broken, naming the check.
func (e *Env) checkInvariants(list []invariant) (found, broken error) {
	var name string
	defer func() {
		if p := recover(); p != nil {
			broken = fmt.Errorf("scenario %q: check %q panicked: %v (checks run outside simulated code: read a kernel.Cell with Peek, not Kernel.Read)",
				e.scenario.Name, name, p)
		}
	}()
	for _, inv := range list {
		name = inv.name
		if err := inv.f(); err != nil {
			return &InvariantError{Name: inv.name, Err: err, At: e.Sim.Now()}, nil
		}
	}
	return nil, nil
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

// Class implements des.Finding.
func (e *InvariantError) Class() des.Class { return des.ClassInvariant }

// Signature implements des.Finding: the invariant's name.
func (e *InvariantError) Signature() string { return "invariant " + e.Name }
