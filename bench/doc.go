// Package bench holds wqsim's benchmarks and the floors they are measured
// against.
//
// A floor is the bare minimum a benchmark's workload needs, written plainly
// in this package without the engine: a github.com/google/btree ordered by
// (time, sequence) and, for simulated threads, iter.Pull coroutines. The
// engine's cost is reported as a ratio to its floor measured in the same run
// (see BENCHMARKS.md), so the figures do not depend on the machine.
//
// Package bench must not be imported by any other package: not by des,
// kernel or any other wqsim package, and not by commands. It sits above
// everything so that it may import every layer it measures; importing it
// from below would create a cycle, and importing it from a command would
// link benchmark code into the binary.
package bench
