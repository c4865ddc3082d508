package queues

import (
	"errors"
	"fmt"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// DoubleQueueMode says what happens when an item that is still queued is
// queued again (REFERENCE §1.1, §6.6).
type DoubleQueueMode uint8

const (
	// DoubleQueueBugCheck detects it at the second ExQueueWorkItem:
	// WORKER_INVALID 0xE4 P1=1 (BC:0xE4 "an active worker item was queued").
	DoubleQueueBugCheck DoubleQueueMode = iota
	// DoubleQueueCorrupt lets the second insert through, as a kernel without
	// the check would: the item has two queue entries and one link, the
	// first removal nulls the link and the second removal raises
	// INVALID_WORK_QUEUE_ITEM 0x96 (RO:ntoskrnl/ke/queue.c, BC:0x96).
	DoubleQueueCorrupt
)

func (m DoubleQueueMode) String() string {
	if m == DoubleQueueCorrupt {
		return "corrupt"
	}
	return "bugcheck"
}

// PoolConfig configures the executive worker pools of a System. Every
// number is a parameter; DefaultPoolConfig holds the ReactOS model of
// REFERENCE §3.2–3.3.
type PoolConfig struct {
	// Static[t] is the number of static worker threads of fixed queue type
	// t, created by NewSystem. Static threads never exit. ReactOS: 5
	// critical, 3 delayed, 1 hypercritical (REFERENCE §3.2); the registry
	// values AdditionalCriticalWorkerThreads / AdditionalDelayedWorkerThreads
	// correspond to raising Static[0] / Static[1].
	Static [NumFixedQueues]int
	// LazyThreads is the number of static threads a queue gets when the
	// first item is queued to it, if it has none: a fixed type whose Static
	// count is 0 (by default the system types 3–6) and every custom-priority
	// queue. How Windows 8+ staffs those queues is not public (REFERENCE
	// §3.2); 0 leaves them unserved.
	LazyThreads int
	// Priority[t] is the base priority of queue type t's workers; default
	// DocumentedPriority (DDI:WORK_QUEUE_TYPE, REFERENCE §3.1).
	Priority [NumFixedQueues]int
	// CriticalRealTime is the other reading of the docs, which call critical
	// workers "real-time" (DDI:ExQueueWorkItem): the critical,
	// super-critical and hypercritical queues move into the real-time class
	// keeping their order (13, 14, 15 → 16, 17, 18), so they are never
	// boosted and never preempted by variable-priority threads. Off by
	// default: REFERENCE §3.1 models the numbers.
	CriticalRealTime bool
	// Concurrency is each queue's KQUEUE concurrency limit; 0 means the
	// processor count, as ReactOS initialises the queues (REFERENCE §3.2).
	Concurrency int
	// Policy decides when dynamic threads are added; nil means ReactOS().
	Policy PoolPolicy
	// MaxDynamic caps the dynamic threads of each queue (ReactOS: 16). No
	// policy can exceed it.
	MaxDynamic int
	// DynamicIdleTimeout is how long a dynamic thread waits for an item
	// before it exits (ReactOS: 10 minutes, REFERENCE §3.2).
	DynamicIdleTimeout des.Duration
	// BalancePeriod is the worker balance manager's pass interval (ReactOS:
	// 1 second, the deadlock detector of REFERENCE §3.2).
	BalancePeriod des.Duration
	// BalancePriority is the balance manager thread's priority (ReactOS:
	// base increment 6, i.e. 14 — inferred arithmetic, REFERENCE §3.2).
	BalancePriority int
	// DoubleQueue chooses how an item queued twice fails (REFERENCE §6.6).
	DoubleQueue DoubleQueueMode
	// RepairApcDisable is the ReactOS reading of a routine that returns
	// inside a critical region: trace a warning and repair the count
	// (REFERENCE §1.1). Off by default: Windows bug-checks with
	// APC_INDEX_MISMATCH 0x01, P4=1 "worker routine" (BC:0x1).
	RepairApcDisable bool
	// ContractChecks reports documented-but-unchecked misuse as a
	// *ContractViolation (see that type). On by default.
	ContractChecks bool
}

// DefaultPoolConfig returns the ReactOS pool model: 5 critical, 3 delayed
// and 1 hypercritical static threads, one lazily created thread for any
// other queue type, documented priorities, concurrency = processors, the
// ReactOS growth policy with at most 16 dynamic threads per queue, a
// 10-minute dynamic idle exit and a 1-second balance pass (REFERENCE
// §3.1–3.3).
func DefaultPoolConfig() PoolConfig {
	return PoolConfig{
		Static:             [NumFixedQueues]int{5, 3, 1, 0, 0, 0, 0},
		LazyThreads:        1,
		Priority:           DocumentedPriority,
		MaxDynamic:         16,
		DynamicIdleTimeout: 10 * des.Minute,
		BalancePeriod:      des.Second,
		BalancePriority:    14,
		ContractChecks:     true,
	}
}

// priorityOf returns the base priority of type t's workers.
func (c *PoolConfig) priorityOf(t WORK_QUEUE_TYPE) int {
	if p, ok := t.Custom(); ok {
		return p
	}
	p := c.Priority[t]
	switch t {
	case CriticalWorkQueue, SuperCriticalWorkQueue, HyperCriticalWorkQueue:
		if c.CriticalRealTime && p < kernel.LOW_REALTIME_PRIORITY {
			p += kernel.LOW_REALTIME_PRIORITY - DocumentedPriority[CriticalWorkQueue]
		}
	}
	return p
}

// Validate reports every impossible value, each with what to do.
func (c *PoolConfig) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	for t := WORK_QUEUE_TYPE(0); t < MaximumWorkQueue; t++ {
		if n := c.Static[t]; n < 0 || n > 256 {
			bad("Static[%v] = %d: give 0 to 256 static threads (ReactOS: 5 critical, 3 delayed, 1 hypercritical)", t, n)
		}
		if p := c.Priority[t]; p < 1 || p > kernel.HIGH_PRIORITY {
			bad("Priority[%v] = %d: worker priorities are 1..31 (documented: %d)", t, p, DocumentedPriority[t])
		}
	}
	if c.LazyThreads < 0 || c.LazyThreads > 256 {
		bad("LazyThreads = %d: give 0 to 256 (0 leaves the system and custom queues unserved)", c.LazyThreads)
	}
	if c.Concurrency < 0 {
		bad("Concurrency = %d: use 0 for the processor count or a positive limit", c.Concurrency)
	}
	if c.MaxDynamic < 0 {
		bad("MaxDynamic = %d: use 0 for no dynamic threads, ReactOS uses 16", c.MaxDynamic)
	}
	if c.DynamicIdleTimeout <= 0 {
		bad("DynamicIdleTimeout = %v: must be positive (ReactOS: 10m0s)", c.DynamicIdleTimeout)
	}
	if c.BalancePeriod <= 0 {
		bad("BalancePeriod = %v: must be positive (ReactOS: 1s)", c.BalancePeriod)
	}
	if c.BalancePriority < 1 || c.BalancePriority > kernel.HIGH_PRIORITY {
		bad("BalancePriority = %d: must be 1..31 (ReactOS: 14)", c.BalancePriority)
	}
	if c.DoubleQueue > DoubleQueueCorrupt {
		bad("DoubleQueue = %d: use DoubleQueueBugCheck or DoubleQueueCorrupt", c.DoubleQueue)
	}
	return errors.Join(errs...)
}
