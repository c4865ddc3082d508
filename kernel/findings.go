package kernel

import (
	"fmt"
	"strings"

	"github.com/wqsim/wqsim/des"
)

// Bug-check codes the model raises (REFERENCE §1.8).
const (
	APC_INDEX_MISMATCH                                    uint32 = 0x01
	IRQL_NOT_LESS_OR_EQUAL                                uint32 = 0x0A
	MAXIMUM_WAIT_OBJECTS_EXCEEDED                         uint32 = 0x0C
	SPIN_LOCK_ALREADY_OWNED                               uint32 = 0x0F
	SPIN_LOCK_NOT_OWNED                                   uint32 = 0x10
	KERNEL_APC_PENDING_DURING_EXIT                        uint32 = 0x20
	MULTIPLE_IRP_COMPLETE_REQUESTS                        uint32 = 0x44
	CANCEL_STATE_IN_COMPLETED_IRP                         uint32 = 0x48
	INVALID_WORK_QUEUE_ITEM                               uint32 = 0x96
	ATTEMPTED_SWITCH_FROM_DPC                             uint32 = 0xB8
	BAD_POOL_CALLER                                       uint32 = 0xC2
	DRIVER_VERIFIER_DETECTED_VIOLATION                    uint32 = 0xC4
	DRIVER_VERIFIER_IOMANAGER_VIOLATION                   uint32 = 0xC9
	DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS uint32 = 0xCE
	DRIVER_IRQL_NOT_LESS_OR_EQUAL                         uint32 = 0xD1
	DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL               uint32 = 0xD5
	IMPERSONATING_WORKER_THREAD                           uint32 = 0xDF
	WORKER_THREAD_RETURNED_AT_BAD_IRQL                    uint32 = 0xE1
	WORKER_INVALID                                        uint32 = 0xE4
	ACTIVE_EX_WORKER_THREAD_TERMINATION                   uint32 = 0xE9
	FLTMGR_FILE_SYSTEM                                    uint32 = 0xF5
	REFERENCE_BY_POINTER                                  uint32 = 0x18
	KERNEL_SECURITY_CHECK_FAILURE                         uint32 = 0x139
	IRQL_NOT_GREATER_OR_EQUAL                             uint32 = 0x09
	KMODE_EXCEPTION_NOT_HANDLED                           uint32 = 0x1E
	SYSTEM_THREAD_EXCEPTION_NOT_HANDLED                   uint32 = 0x7E
	RESOURCE_NOT_OWNED                                    uint32 = 0xE3
	THREAD_TERMINATE_HELD_MUTEX                           uint32 = 0x4000008A
	// UNSPECIFIED_BUGCHECK stands for a bug check Microsoft documents
	// without naming its code (REFERENCE §1.8); the report's Detail says
	// which rule was broken.
	UNSPECIFIED_BUGCHECK uint32 = 0
)

var bugCheckNames = []named[uint32]{
	{APC_INDEX_MISMATCH, "APC_INDEX_MISMATCH"},
	{IRQL_NOT_LESS_OR_EQUAL, "IRQL_NOT_LESS_OR_EQUAL"},
	{MAXIMUM_WAIT_OBJECTS_EXCEEDED, "MAXIMUM_WAIT_OBJECTS_EXCEEDED"},
	{SPIN_LOCK_ALREADY_OWNED, "SPIN_LOCK_ALREADY_OWNED"},
	{SPIN_LOCK_NOT_OWNED, "SPIN_LOCK_NOT_OWNED"},
	{KERNEL_APC_PENDING_DURING_EXIT, "KERNEL_APC_PENDING_DURING_EXIT"},
	{MULTIPLE_IRP_COMPLETE_REQUESTS, "MULTIPLE_IRP_COMPLETE_REQUESTS"},
	{CANCEL_STATE_IN_COMPLETED_IRP, "CANCEL_STATE_IN_COMPLETED_IRP"},
	{INVALID_WORK_QUEUE_ITEM, "INVALID_WORK_QUEUE_ITEM"},
	{ATTEMPTED_SWITCH_FROM_DPC, "ATTEMPTED_SWITCH_FROM_DPC"},
	{BAD_POOL_CALLER, "BAD_POOL_CALLER"},
	{DRIVER_VERIFIER_DETECTED_VIOLATION, "DRIVER_VERIFIER_DETECTED_VIOLATION"},
	{DRIVER_VERIFIER_IOMANAGER_VIOLATION, "DRIVER_VERIFIER_IOMANAGER_VIOLATION"},
	{DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS, "DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS"},
	{DRIVER_IRQL_NOT_LESS_OR_EQUAL, "DRIVER_IRQL_NOT_LESS_OR_EQUAL"},
	{DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL, "DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL"},
	{IMPERSONATING_WORKER_THREAD, "IMPERSONATING_WORKER_THREAD"},
	{WORKER_THREAD_RETURNED_AT_BAD_IRQL, "WORKER_THREAD_RETURNED_AT_BAD_IRQL"},
	{WORKER_INVALID, "WORKER_INVALID"},
	{ACTIVE_EX_WORKER_THREAD_TERMINATION, "ACTIVE_EX_WORKER_THREAD_TERMINATION"},
	{FLTMGR_FILE_SYSTEM, "FLTMGR_FILE_SYSTEM"},
	{REFERENCE_BY_POINTER, "REFERENCE_BY_POINTER"},
	{KERNEL_SECURITY_CHECK_FAILURE, "KERNEL_SECURITY_CHECK_FAILURE"},
	{IRQL_NOT_GREATER_OR_EQUAL, "IRQL_NOT_GREATER_OR_EQUAL"},
	{INVALID_AFFINITY_SET, "INVALID_AFFINITY_SET"},
	{KMODE_EXCEPTION_NOT_HANDLED, "KMODE_EXCEPTION_NOT_HANDLED"},
	{SYSTEM_THREAD_EXCEPTION_NOT_HANDLED, "SYSTEM_THREAD_EXCEPTION_NOT_HANDLED"},
	{RESOURCE_NOT_OWNED, "RESOURCE_NOT_OWNED"},
	{THREAD_TERMINATE_HELD_MUTEX, "THREAD_TERMINATE_HELD_MUTEX"},
	{UNSPECIFIED_BUGCHECK, "UNSPECIFIED_BUGCHECK"},
}

// BugCheckName returns the symbolic name of a bug-check code.
func BugCheckName(code uint32) string {
	if n := lookupName(bugCheckNames, code); n != "" {
		return n
	}
	return fmt.Sprintf("BUGCHECK_0x%X", code)
}

// BugCheck is a simulated system crash, raised at the exact call that broke
// a rule. It carries the real code, name and parameters.
type BugCheck struct {
	Code   uint32
	Name   string
	Params [4]uint64
	API    string // the routine that detected it
	Actor  string // thread or DPC that called it
	// DPC names the KDPC whose routine was running when Actor is a
	// processor's DPC context ("dpc/cpu1"): a driver with several DPCs
	// needs to know which one crashed. Empty outside a DPC routine.
	DPC    string
	CPU    int      // processor
	IRQL   IRQL     // IRQL at the call
	At     des.Time // virtual time
	Detail string   // what went wrong, in words
}

func (b *BugCheck) Error() string {
	actor := b.Actor
	if b.DPC != "" {
		actor += " running dpc " + b.DPC
	}
	return fmt.Sprintf("bug check 0x%X %s (0x%X, 0x%X, 0x%X, 0x%X) in %s by %s on cpu%d at %s, t=%v: %s",
		b.Code, b.Name, b.Params[0], b.Params[1], b.Params[2], b.Params[3], b.API, actor, b.CPU, b.IRQL, b.At, b.Detail)
}

// WaitEdge is one blocked party in a deadlock or hang report.
type WaitEdge struct {
	Waiter  string // thread (or DPC/processor for spin locks)
	Object  string // what it waits for: "fast mutex M", "event done"
	Owner   string // the owner of that object, "" when it has none (events)
	Through string // how it waits: "KeWaitForSingleObject", "spinning"
	// Since is when a thread's wait began (zero for a spinning
	// processor, whose start is not kept): a deadlock is often only
	// decided much later, when the system has quiesced.
	Since    des.Time
	hasSince bool
}

func (w WaitEdge) String() string { return w.text(-1) }

// text is String for a report decided at time at: a wait that began
// earlier says since when, so a deadlock found only at quiescence (minutes
// of virtual time later, say) still points at the moment it formed.
func (w WaitEdge) text(at des.Time) string {
	s := w.Waiter + " waits for " + w.Object
	if w.Owner != "" {
		s += " owned by " + w.Owner
	}
	switch {
	case w.Through != "" && w.hasSince && w.Since < at:
		s += " (" + w.Through + ", since t=" + w.Since.String() + ")"
	case w.Through != "":
		s += " (" + w.Through + ")"
	}
	return s
}

// Deadlock reports threads that wait and that nothing can wake. Cycle holds
// the wait-for cycle when ownership forms one (locks, thread objects); a
// hang without a cycle (everyone waits on events nobody will set) has only
// Blocked.
type Deadlock struct {
	Cycle   []WaitEdge
	Blocked []WaitEdge
	At      des.Time
	// Ticking is set when the hang was decided while timers still fired
	// (kernel/stall.go): what was observed, and whether the verdict is
	// exact or the HangTimerPeriods heuristic.
	Ticking *TimerStall
	// Pending is what higher layers still hold that nobody will process
	// (Layer.AddHangNote): work items queued behind workers that all wait,
	// the usual reason why the events the threads wait for are never set.
	Pending []string
}

func (d *Deadlock) Error() string {
	var b strings.Builder
	if len(d.Cycle) > 0 {
		b.WriteString("deadlock: ")
		for i, e := range d.Cycle {
			if i > 0 {
				b.WriteString("; ")
			}
			b.WriteString(e.text(d.At))
		}
	} else {
		b.WriteString("hang: nothing can wake the waiting threads: ")
		for i, e := range d.Blocked {
			if i > 0 {
				b.WriteString("; ")
			}
			b.WriteString(e.text(d.At))
		}
	}
	fmt.Fprintf(&b, " (t=%v)", d.At)
	if len(d.Pending) > 0 {
		b.WriteString("; still pending: ")
		b.WriteString(strings.Join(d.Pending, "; "))
	}
	if d.Ticking != nil {
		b.WriteString("; ")
		b.WriteString(d.Ticking.String())
	}
	return b.String()
}

// Leak reports objects still outstanding when the run ended: IRPs never
// completed, pool blocks never freed, and whatever a higher layer adds.
type Leak struct {
	Items []string
	At    des.Time
}

func (l *Leak) Error() string {
	return fmt.Sprintf("leak at end of run (t=%v): %s", l.At, strings.Join(l.Items, "; "))
}

// Livelock wraps a step-budget overrun with what the kernel still had
// pending, so the report says who was spinning. Waiting lists the threads
// blocked at that moment: when nothing is running and every thread waits,
// the run is a hang kept busy by a periodic timer (or another source of
// events that wakes nobody), and the waits say where it stuck. Ready lists
// threads that could run but did not get a processor: a low-priority lock
// owner starved by higher-priority spinners (priority inversion) shows
// there, where the waits alone only name it as an owner.
//
// StuckDpcs lists the DPCs queued on a processor that cannot run them: its
// IRQL stays at DISPATCH_LEVEL or above (a thread spinning there, or a DPC
// that never returns), and a processor drains its DPC queue only when its
// IRQL drops below DISPATCH_LEVEL (REFERENCE §4.5). A thread that raises
// and polls for a flag its own DPC sets shows there: without the list the
// report named only the spinner.
type Livelock struct {
	Budget    *des.BudgetError
	Running   []string
	Ready     []string
	Waiting   []WaitEdge
	StuckDpcs []string
}

func (l *Livelock) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "livelock: %v; running: ", l.Budget)
	if len(l.Running) == 0 {
		b.WriteString("nothing (only timers and DPCs kept firing)")
	}
	b.WriteString(strings.Join(l.Running, ", "))
	if len(l.Ready) > 0 {
		b.WriteString("; ready but not running: ")
		b.WriteString(strings.Join(l.Ready, ", "))
	}
	if len(l.StuckDpcs) > 0 {
		b.WriteString("; DPCs that cannot run: ")
		b.WriteString(strings.Join(l.StuckDpcs, "; "))
		b.WriteString(" (a processor runs its queued DPCs only when its IRQL drops below DISPATCH_LEVEL, REFERENCE §4.5)")
	}
	if len(l.Waiting) > 0 {
		b.WriteString("; waiting: ")
		for i, e := range l.Waiting {
			if i > 0 {
				b.WriteString("; ")
			}
			b.WriteString(e.String())
		}
	}
	return b.String()
}

func (l *Livelock) Unwrap() error { return l.Budget }

// Class implements des.Finding.
func (b *BugCheck) Class() des.Class { return des.ClassBugCheck }

// Signature implements des.Finding: the bug-check code.
func (b *BugCheck) Signature() string { return fmt.Sprintf("bugcheck 0x%X", b.Code) }

// Class implements des.Finding.
func (d *Deadlock) Class() des.Class { return des.ClassDeadlock }

// Signature implements des.Finding: "deadlock" with a wait-for cycle,
// "hang" without.
func (d *Deadlock) Signature() string {
	if len(d.Cycle) > 0 {
		return "deadlock"
	}
	return "hang"
}

// Class implements des.Finding.
func (l *Leak) Class() des.Class { return des.ClassLeak }

// Signature implements des.Finding.
func (l *Leak) Signature() string { return "leak" }

// Class implements des.Finding.
func (l *Livelock) Class() des.Class { return des.ClassLivelock }

// Signature implements des.Finding.
func (l *Livelock) Signature() string { return "livelock" }
