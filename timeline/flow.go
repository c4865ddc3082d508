package timeline

import (
	"cmp"
	"slices"
	"strconv"
	"strings"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// FlowRole is what a trace record is to a work-item flow: the arrow that
// links a work item's queueing to the start of its run.
type FlowRole uint8

// Flow roles.
const (
	FlowNone  FlowRole = iota // not part of a work-item flow
	FlowQueue                 // a work item was queued (the arrow's tail)
	FlowRun                   // a queued work item starts running (its head)
)

// String returns "none", "queue" or "run".
func (r FlowRole) String() string {
	switch r {
	case FlowQueue:
		return "queue"
	case FlowRun:
		return "run"
	}
	return "none"
}

// IsCallKind reports whether k is a higher layer's call record:
// kernel.KindCall (what kernel.Kernel.Trace emits) or a layer's own kind
// in 200–299 (kernel.Kernel.TraceKind).
func IsCallKind(k des.Kind) bool { return k == kernel.KindCall || (k >= 200 && k <= 299) }

// WorkItemRole classifies r for flow pairing. This is the contract the
// queues layer follows when it traces work items:
//
//   - only call records count (IsCallKind), and only with a non-empty
//     Object;
//   - What containing "run" (ASCII case-insensitive) makes the record the
//     start of the item's run: FlowRun ("run", "run-work-item");
//   - otherwise What containing "queue" but not "dequeue" makes it the
//     item's queueing: FlowQueue ("ExQueueWorkItem", "IoQueueWorkItem",
//     "FltQueueGenericWorkItem", "queue-work-item");
//   - anything else is FlowNone.
//
// The queue and run records of one item must name it the same way (see
// WorkItemKey): by Object alone with A = 0 ("workitem 3", 0), or by the
// queue in Object and the item's id in A, as package queues does
// ("DelayedWorkQueue", 5).
func WorkItemRole(r *des.Record) FlowRole {
	if !IsCallKind(r.Kind) || r.Object == "" {
		return FlowNone
	}
	w := strings.ToLower(string(r.What))
	switch {
	case strings.Contains(w, "run"):
		return FlowRun
	case strings.Contains(w, "queue") && !strings.Contains(w, "dequeue"):
		return FlowQueue
	}
	return FlowNone
}

// WorkItemKey is the identity of the work item a queue or run record is
// about: its Object and its A. Two records are about the same item when
// both are equal: Object equality when A is 0, Object and id otherwise.
type WorkItemKey struct {
	Object string
	A      int64
}

// String returns Object, followed by " #A" when A is not 0.
func (k WorkItemKey) String() string {
	if k.A == 0 {
		return k.Object
	}
	return k.Object + " #" + strconv.FormatInt(k.A, 10)
}

// Flow is one work item's queue→run pair.
type Flow struct {
	ID    int         // 1, 2, ... in order of the queue records
	Item  WorkItemKey // the item both records name
	Queue int         // index of the FlowQueue record in the records
	Run   int         // index of the FlowRun record
}

// PairFlows matches each FlowRun record with the earliest still unmatched
// FlowQueue record before it that has the same WorkItemKey (first in,
// first out per item), so an item queued, run, queued again and run again
// gives two flows, and items of one queue pair correctly whatever order
// workers run them in. A queue record never run and a run record with no
// queue record before it stay unpaired (a double queue shows as one flow
// plus an unpaired queue). Flows are returned in order of their queue
// records.
func PairFlows(recs []des.Record) []Flow {
	pending := map[WorkItemKey][]int{} // item → unmatched queue record indexes
	var flows []Flow
	for i := range recs {
		r := &recs[i]
		key := WorkItemKey{r.Object, r.A}
		switch WorkItemRole(r) {
		case FlowQueue:
			pending[key] = append(pending[key], i)
		case FlowRun:
			q := pending[key]
			if len(q) == 0 {
				continue
			}
			flows = append(flows, Flow{Item: key, Queue: q[0], Run: i})
			pending[key] = q[1:]
		}
	}
	// Runs are found in run order; number the flows in queue order (queue
	// indexes are unique, so the order is total).
	slices.SortFunc(flows, func(a, b Flow) int { return cmp.Compare(a.Queue, b.Queue) })
	for i := range flows {
		flows[i].ID = i + 1
	}
	return flows
}
