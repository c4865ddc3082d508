// Package lab runs scheduling-research experiments on the simulated
// machine: an experiment file names workloads — work-item streams
// (arrival processes, compute-time distributions, queue types), competing
// threads, and real-time tasks (periodic or sporadic, given in the file,
// drawn by UUniFast, or imported from rt-app JSON) — dispatcher and
// worker-pool policies, and seeds; the lab runs every workload × policy ×
// seed cell on a fresh simulated machine, measures it (queueing metrics,
// per-task response times, deadline misses and tardiness, CPU shares,
// preemptions, migrations; means over seeds with 95% confidence
// intervals) and writes CSVs and plots. An acceptance-ratio experiment
// instead measures which fraction of random task sets each
// schedulability test, and the machine itself, accepts.
//
// Start here: ParseFile an experiment file (bench/experiments/pools.json
// is one), Run it, and write its Results; `wqsim experiment FILE` does
// exactly that from the command line.
//
// A run is deterministic: the same file gives byte-identical output, with
// any degree of parallelism.
//
// The file is JSON, decoded strictly: an unknown field, a value of the
// wrong type or an impossible value is reported with its path
// ("workloads[1].streams[0].arrivals.rate: -3 must be positive (items per
// second)") and nothing is run. See Experiment for the schema.
//
// Where queueing theory applies, the lab says what it predicts: a
// workload that is an M/M/c queue under a pool (MMc) gets Erlang C's
// P(wait) and mean wait beside the measured ones in results.csv and the
// table, and its CDF plot a reference curve; under the "nt-ideal"
// dispatcher (zero kernel costs) they agree within the 95% interval
// (TestMMcMatchesErlangC, bench/experiments/mmc.json).
//
// The lab also holds the classical fixed-priority analysis the machine is
// validated against (ResponseTimes, BusyPeriod, LiuLaylandBound,
// UUniFast, CheckRTA): on one processor with zero kernel-call costs the
// simulated worst-case response time of every task equals exact
// response-time analysis to the nanosecond (TestRTAEqualsSimulation).
//
// # Policies of your own
//
// Dispatcher and pool policies are registered by name; an experiment file
// names them in "dispatchers" and "pools[].policy". The lab registers its
// own at start; a researcher's package registers more from an init
// function and links itself into a command built on cli.Main (see
// examples/edfpolicy).
//
// The policy contract. A kernel.Policy decides only two things: the order
// of ready threads (Enqueue, Remove, Peek, Each) and when a ready thread
// displaces a running one (Preempts at once, RoundRobin at quantum end).
// The kernel keeps everything else, whatever the policy:
//
//   - IRQL deferral: at DISPATCH_LEVEL and above a processor never switches;
//     a preemption the policy asks for waits until IRQL drops below
//     DISPATCH_LEVEL (REFERENCE §4.5);
//   - quantum accounting: quanta are charged by exact CPU time, a quantum
//     end resets the quantum and asks the policy (RoundRobin) whether a
//     ready thread takes over (REFERENCE §4.3);
//   - boosts and decay: wait-completion boosts, decay at quantum end and the
//     anti-starvation boost change a thread's priority before the policy
//     sees it (REFERENCE §4.4); a policy that ignores priorities ignores
//     them too;
//   - placement: a newly ready thread goes to an idle processor if any,
//     else to the processor running the lowest-priority thread that
//     Preempts says it displaces (REFERENCE §4.2);
//   - waits, DPCs, timers and every bug check.
//
// A policy is built fresh for every cell (runs are independent and may run
// in parallel), is called only from the simulation's single thread, must be
// deterministic (no map iteration order, no wall clock) and must keep the
// ready threads it is given until Remove.
//
// # Multiprocessor placement
//
// Real-time tasks run on any processor of the workload (global
// scheduling: one ready structure for the machine, REFERENCE §4.2).
// Partitioned placement needs thread affinity, which the kernel does not
// model yet (REFERENCE §4.7), so the lab offers no partitioned dimension.
package lab
