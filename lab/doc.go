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
// schedulability test, and the machine itself, accepts; a placement
// experiment which fraction stays schedulable on m processors under
// global and partitioned placement.
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
// Real-time tasks of a workload run on any processor (global
// scheduling): where a thread runs is the dispatcher's choice — Windows'
// per-processor queues ("nt", REFERENCE §4.7) or one ready structure
// ("nt-global", §4.2). A placement experiment (Placement; `wqsim
// experiment bench/experiments/placement.json`) compares that with
// partitioned placement on m processors: Partition assigns tasks by
// first-fit decreasing utilization (admission by exact response-time
// analysis, FitRTA, or by utilization ≤ 1, FitUtilization; a set that does
// not fit is counted as unpartitionable) and each task's thread pins
// itself with KeSetSystemAffinityThreadEx before its first job, the
// release controller waiting until every pinned thread has moved.
// SimulatePlacement runs one set either way and reports migrations and
// the processors each thread ran on. On a partitioned machine with zero
// call costs every task's simulated worst response equals the exact
// analysis of its processor's share (TestPartitionedMatchesPerProcessorRTA),
// under both dispatchers.
package lab
