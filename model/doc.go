// Package model holds scenarios: driver models written the way a driver is
// written (NT-named calls on the simulated kernel and work-queue APIs), a
// workload whose variable parts are drawn through decisions, invariants,
// and named variants — "correct" plus bug variants, each naming the racy
// path (coverage mark) it must reach. Scenarios are registered by name so
// tests, the wqsim command and benchmarks share them.
//
// Start here: declare a *Scenario (variants, Setup; see the package
// example, model/example_test.go, which go doc does not print, and
// examples/mydriver), test it with proptest.Check and proptest.Find, and
// give it a command line with cli.Main. Minifilter scenarios start from
// NewMinifilter.
//
// Run executes one scenario variant once: it builds a kernel on a des.Sim,
// sets the scenario up, steps the simulation checking invariants after
// every event, then classifies the end (findings, hangs, leaks). A run that
// reaches its budget (Scenario.Budget, else DefaultBudget) is a livelock;
// a small scenario declares a budget of its own so that a spinning bug
// ends quickly.
//
// Layering: model imports queues, kernel and des only.
package model
