// Package sct is a suite of other people's concurrency bugs, re-expressed
// on the simulated NT kernel so the explorer can be measured on bugs this
// project did not plant.
//
// The programs come from SCTBench (github.com/mc-imperial/sctbench: the
// SV-COMP "concurrent-software-benchmarks" and the CHESS work-stealing
// queue) and from the ConVul CVE benchmark as packaged by the PERIOD, RFF
// and SURW artifacts. Each scenario names its origin (repository and file)
// in its doc, keeps the original's size parameter as a variant, and has the
// original's bug variant and, where the original has one, its fixed form.
// The code is ours: pthreads become system threads (PsCreateSystemThread,
// joined by waiting on the thread object), pthread mutexes become fast
// mutexes, the verifiers' atomic blocks become one spin lock, shared
// variables are kernel Cells (every access a scheduling point), and a
// failing assert becomes an Env.Violation named after the program.
//
// The SCTBench programs run on one processor, as systematic-concurrency
// testing tools run them: the natural schedule runs each thread to its end
// in creation order, and a bug needs the explorer to preempt (or reorder
// the ready threads) at the right scheduling points. The ConVul programs
// run on the default two processors.
//
// Importing the package registers its scenarios (model.Register); the
// wqsim command imports it, model does not.
//
// Layering: sct is in the model layer; it imports model, kernel and des.
package sct
