package queues

import (
	"fmt"
	"strconv"

	"github.com/wqsim/wqsim/des"
)

// WORK_QUEUE_TYPE selects the system worker queue an item goes to
// (REFERENCE §3.1; values from wdm.h). Values 0–6 name fixed queues;
// CustomPriorityWorkQueue+P (Windows 8.1+) names the queue served at
// priority P.
type WORK_QUEUE_TYPE int32

// Queue types (REFERENCE §3.1).
const (
	CriticalWorkQueue       WORK_QUEUE_TYPE = 0  // documented priority 13; drivers may use it
	DelayedWorkQueue        WORK_QUEUE_TYPE = 1  // documented priority 12; the only type IoQueueWorkItem allows
	HyperCriticalWorkQueue  WORK_QUEUE_TYPE = 2  // priority 15; reserved for the system
	NormalWorkQueue         WORK_QUEUE_TYPE = 3  // priority 8; system
	BackgroundWorkQueue     WORK_QUEUE_TYPE = 4  // priority 7; system
	RealTimeWorkQueue       WORK_QUEUE_TYPE = 5  // priority 18; system
	SuperCriticalWorkQueue  WORK_QUEUE_TYPE = 6  // priority 14; system
	MaximumWorkQueue        WORK_QUEUE_TYPE = 7  // bound of the fixed types, not a queue
	CustomPriorityWorkQueue WORK_QUEUE_TYPE = 32 // + KPRIORITY: a queue served at that priority
)

// NumFixedQueues is the number of fixed queue types (0 … MaximumWorkQueue-1).
const NumFixedQueues = int(MaximumWorkQueue)

// maxCustomPriority is the highest KPRIORITY a custom queue may carry.
const maxCustomPriority = 31

// DocumentedPriority is the thread priority DDI:WORK_QUEUE_TYPE gives each
// fixed queue (REFERENCE §3.1). They are all variable-range numbers except
// RealTimeWorkQueue (18), although the docs call critical workers
// "real-time"; see PoolConfig.CriticalRealTime for that reading.
var DocumentedPriority = [NumFixedQueues]int{13, 12, 15, 8, 7, 18, 14}

var fixedQueueNames = [...]string{
	"CriticalWorkQueue", "DelayedWorkQueue", "HyperCriticalWorkQueue", "NormalWorkQueue",
	"BackgroundWorkQueue", "RealTimeWorkQueue", "SuperCriticalWorkQueue", "MaximumWorkQueue",
}

// String returns the wdm.h name ("DelayedWorkQueue"); a custom-priority
// type prints as "CustomPriorityWorkQueue+P".
func (t WORK_QUEUE_TYPE) String() string {
	switch {
	case t >= 0 && t <= MaximumWorkQueue:
		return fixedQueueNames[t]
	case t >= CustomPriorityWorkQueue && t <= CustomPriorityWorkQueue+maxCustomPriority:
		return "CustomPriorityWorkQueue+" + strconv.Itoa(int(t-CustomPriorityWorkQueue))
	}
	return "WORK_QUEUE_TYPE(" + strconv.Itoa(int(t)) + ")"
}

// Valid reports whether t names a queue: a fixed type below
// MaximumWorkQueue, or CustomPriorityWorkQueue+P with P in 0..31. Queueing
// with any other value is WORKER_INVALID 0xE4 P1=6 (REFERENCE §1.1).
func (t WORK_QUEUE_TYPE) Valid() bool {
	return (t >= 0 && t < MaximumWorkQueue) ||
		(t >= CustomPriorityWorkQueue && t <= CustomPriorityWorkQueue+maxCustomPriority)
}

// Custom reports whether t is a custom-priority type, and its priority.
func (t WORK_QUEUE_TYPE) Custom() (priority int, ok bool) {
	if t >= CustomPriorityWorkQueue && t <= CustomPriorityWorkQueue+maxCustomPriority {
		return int(t - CustomPriorityWorkQueue), true
	}
	return 0, false
}

// driverAllowed reports whether DDI:ExQueueWorkItem lets drivers use t:
// CriticalWorkQueue, DelayedWorkQueue and the custom-priority types (which
// DDI:WORK_QUEUE_TYPE recommends to drivers from Windows 8.1). The other
// fixed types are documented as "system" (HyperCriticalWorkQueue as
// reserved for the system).
func (t WORK_QUEUE_TYPE) driverAllowed() bool {
	_, custom := t.Custom()
	return t == CriticalWorkQueue || t == DelayedWorkQueue || custom
}

// Trace record kinds of package queues (stable numbers: part of trace
// hashes). The work-item and pool files use 200–219; the cancel-safe queue
// uses 250–259 (KindCsqStep) and queues/fltmgr 260–279 (KindFltObject).
const (
	KindWorkQueue   des.Kind = 200 // an item queued: A item id, B queue depth after the insert
	KindWorkDequeue des.Kind = 201 // a worker took an item: A item id, B time it waited (ns)
	KindWorkRun     des.Kind = 202 // the routine is called: A item id, B worker's dynamic flag
	KindWorkReturn  des.Kind = 203 // the routine returned: A item id, B time it ran (ns)
	KindWorker      des.Kind = 204 // worker thread created or exited: A 1 if dynamic, B live threads of its queue
	KindBalance     des.Kind = 205 // balance manager: pass, deadlock detected, timer armed
	KindDriver      des.Kind = 206 // driver loaded/unloaded, image unloaded, device created/deleted
	KindObject      des.Kind = 207 // object reference or dereference: A references after
	KindIoWorkItem  des.Kind = 208 // IoAllocate/Free/Initialize/UninitializeWorkItem: A item id
)

// ContractViolation is the use of a work-queue routine that its
// documentation forbids but that Windows neither rejects nor bug-checks
// (a driver queueing to a system-only queue, IoQueueWorkItem with a type
// other than DelayedWorkQueue). The run stops with it, as a Verifier-style
// report, when PoolConfig.ContractChecks is on; otherwise the call proceeds
// as Windows would let it.
type ContractViolation struct {
	API    string   // the routine called
	Actor  string   // thread or DPC that called it
	At     des.Time // virtual time
	Rule   string   // what the documentation says, in words
	Source string   // where it says so (REFERENCE §0 source key, e.g. "DDI:IoQueueWorkItem")
	Detail string   // what the caller did
}

func (c *ContractViolation) Error() string {
	return fmt.Sprintf("contract violation in %s by %s at t=%v: %s; the documentation says %s (%s). "+
		"Windows does not check this; set PoolConfig.ContractChecks=false to let the call proceed",
		c.API, c.Actor, c.At, c.Detail, c.Rule, c.Source)
}

// Class implements des.Finding.
func (c *ContractViolation) Class() des.Class { return des.ClassContract }

// Signature implements des.Finding: the routine whose contract was broken.
func (c *ContractViolation) Signature() string { return "contract " + c.API }
