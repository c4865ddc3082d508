// Package kernel models the parts of the NT kernel that work queues stand
// on: processors with an IRQL, threads and the dispatcher (priorities,
// quanta, boosts, preemption), DPCs and interrupts, dispatcher objects and
// waits, spin locks, fast mutexes and ERESOURCEs, KQUEUEs, IRPs with
// cancellation, tagged pool, and the bug checks and findings that wrong use
// of them produces.
//
// Simulated driver code is ordinary Go that calls NT-named methods on a
// *Kernel (k.KeSetEvent, k.IoCompleteRequest, ...). Each call consumes
// virtual CPU time and is a scheduling point: the processor may be
// preempted, interrupted or stalled there, and every such perturbation is a
// des decision whose choice 0 is "nothing happens".
//
// Facts follow docs/REFERENCE.md; each rule cites its section in the
// doc comment of the routine that enforces it. Where sources disagree the
// documented behaviour is the default and the other is a Config switch.
//
// Layering: kernel imports only des (and the standard library).
package kernel
