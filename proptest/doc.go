// Package proptest explores the schedules of model scenarios and turns
// every failure into a minimal, exactly replayable fail file.
//
// Strategies (one per file) hand each execution a des.Chooser: a seeded
// random walk, PCT with bug depth d, a preemption-bounded walk, exhaustive
// search for tiny scenarios, and a chooser backed by *rapid.T so that
// rapid's shrinker removes perturbations. Explore runs many executions in
// parallel with results identical to a serial run; Shrink minimises a
// failing decision log toward choice 0 (the unperturbed schedule); fail
// files are versioned text, written atomically, re-run first by Check and
// replayed strictly.
//
// Layering: proptest imports model, queues, kernel and des. It may use
// goroutines: they run independent simulations, never simulated code.
package proptest
