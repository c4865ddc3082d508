// Package des is wqsim's deterministic discrete-event engine: virtual time,
// an event queue ordered by (time, sequence), cancellable timers, decisions
// that record every nondeterministic choice, coroutine processes for
// simulated threads, and typed trace records with a stable hash.
//
// One Sim is single-threaded: exactly one piece of simulated code runs at a
// time and control returns to the event loop at every yield. Nothing in this
// package reads wall-clock time or a global random source, so the same seed,
// the same chooser and the same inputs give the same trace, byte for byte.
//
// Layering: des imports no other wqsim package. It knows nothing of Windows;
// the kernel model (package kernel) builds processors, threads and IRQL on
// top of it.
//
// Costs: scheduling or cancelling an event is O(log n) in the number of
// pending events and allocates nothing in steady state (event slots and
// btree nodes are recycled). A coroutine switch is one iter.Pull round trip.
package des
