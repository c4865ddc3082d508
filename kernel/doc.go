// Package kernel models the parts of the NT kernel that work queues stand
// on: processors with an IRQL, threads and the dispatcher (priorities,
// quanta, boosts, preemption), DPCs and interrupts, dispatcher objects and
// waits, spin locks (plain, queued, interrupt and reader/writer
// EX_SPIN_LOCKs), fast, guarded and kernel mutexes and ERESOURCEs, KQUEUEs,
// KTIMERs and system-allocated EX_TIMERs, IRPs with cancellation, tagged
// pool (ExAllocatePoolWithTag, ExAllocatePool2, lookaside lists), the clock
// queries (KeQueryInterruptTime, KeQueryPerformanceCounter, ...), and the
// bug checks and findings that wrong use of them produces.
//
// # Start here
//
// A scenario does not build a Kernel itself: package model builds one per
// execution and hands it to the scenario as env.K. To try the kernel alone,
// the package example (kernel/example_test.go; go doc does not print examples): MustNew(des.New(...), DefaultConfig()), create
// threads with PsCreateSystemThread, then Run.
//
// # Two API surfaces
//
// *Kernel is the driver surface. Simulated driver code is ordinary Go that
// calls NT-named methods on it (k.KeSetEvent, k.IoCompleteRequest, ...),
// each documented with the IRQL it may be called at and what misuse bug
// checks. Each call consumes virtual CPU time and is a scheduling point:
// the processor may be preempted, interrupted or stalled there, and every
// such perturbation is a des decision whose choice 0 is "nothing happens".
// The common object routines (events, semaphores, mutexes, timers, DPCs,
// queues, spin locks, fast mutexes, waits, IoCompleteRequest) report a
// NULL object as the bug check its first touch would cause, naming the
// routine and the caller (REFERENCE §4.15).
// The NT routines include the checked LIST_ENTRY functions of wdm.h
// (InsertTailList, RemoveEntryList, ...) and the SINGLE_LIST_ENTRY ones
// (PushEntryList, PopEntryList), which have no prefix.
// Besides the NT routines *Kernel has the workload helpers, for what a
// scenario's threads do that is not an NT call:
//
//	NewCell, Read, Write   a shared variable and plain (non-interlocked) loads and stores
//	AccessPool             a dereference of pool memory (use after free 0xD5; a nil block is a NULL dereference, 0x7E)
//	Compute                straight-line CPU work of a given length
//	DeviceInterrupt        a device asserting its interrupt line
//	VerifyCancelCompletes  Driver Verifier's "cancelled IRP completed in time" check
//	Now                    the virtual clock
//
// and two calls for a harness outside simulated code: Run and Layer.
//
// *Layer (k.Layer()) is the second surface, for the layers built on the
// kernel (package queues, the filter manager, model's run loop) and for
// tools that observe a run (timeline, lab): entering a higher layer's
// routine, bare scheduling points, traces of its own kinds, findings and
// bug checks on its behalf, end-of-run checks, read-only dispatcher state.
// Scenario code never calls it; a test in package model checks that.
//
// Where a new method goes: an NT routine a driver calls goes on *Kernel
// under its NT name; plumbing goes on *Layer.
//
// # Findings at the end of a run
//
// Run ends with the first finding raised (a BugCheck at the faulting call),
// else classifies the end (Layer.Finish): a step or decision budget that ran
// out is a Livelock; threads still waiting when no event is left are a
// Deadlock (a wait-for cycle) or a hang; IRPs, pool blocks and objects still
// outstanding are a Leak. A hang that periodic timers or polling threads keep
// busy, so that the events never run out, is decided at a timer expiry
// instead, exactly or after Config.HangTimerPeriods quiet periods, and its
// Deadlock says what was seen (Deadlock.Ticking; stall.go, REFERENCE §9).
//
// Each rule cites its section in the doc comment of the routine that
// enforces it (REFERENCE §n in docs/REFERENCE.md). Where sources disagree
// the documented behaviour is the default and the other is a Config switch.
//
// Layering: kernel imports only des (and the standard library).
package kernel
