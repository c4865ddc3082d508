package timeline

import (
	"strings"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues"
)

// IrpStep is what a trace record is to an IRP's lifecycle flow: the chain
// of arrows from the IRP's first record through its queueing, cancel and
// completion.
type IrpStep uint8

// IRP lifecycle steps.
const (
	IrpNone     IrpStep = iota // not a lifecycle step
	IrpIssue                   // the first record naming the IRP (its allocation is not traced)
	IrpPend                    // IoMarkIrpPending
	IrpQueue                   // inserted into a cancel-safe queue ("csq insert: callback")
	IrpCancel                  // IoCancelIrp
	IrpDequeue                 // removed from a cancel-safe queue (a "removed" step)
	IrpComplete                // IoCompleteRequest
)

var irpStepNames = [...]string{"none", "issue", "pend", "queue", "cancel", "dequeue", "complete"}

// String returns the step's short name ("issue", "queue", ...).
func (s IrpStep) String() string {
	if int(s) < len(irpStepNames) {
		return irpStepNames[s]
	}
	return "IrpStep(?)"
}

// irpStepOf classifies r, which names an IRP, without looking at what
// came before it.
func irpStepOf(r *des.Record) IrpStep {
	switch {
	case r.Kind == kernel.KindIRP && r.What == kernel.WhatIoMarkIrpPending:
		return IrpPend
	case r.Kind == kernel.KindIRP && r.What == kernel.WhatIoCancelIrp:
		return IrpCancel
	case r.Kind == kernel.KindIRP && r.What == kernel.WhatIoCompleteRequest:
		return IrpComplete
	case isCsqStep(r, queues.CsqInsertCallback):
		return IrpQueue
	case isCsqStep(r, csqRemoved...):
		return IrpDequeue
	}
	return IrpNone
}

// IrpFlow is one IRP's lifecycle: the records of its steps, in order.
type IrpFlow struct {
	ID    int    // 1, 2, ... in order of the IRP's first record
	IRP   string // the IRP's name ("irp 2 (victim)")
	Recs  []int  // indexes of the step records
	Steps []IrpStep
}

// IrpFlows returns the lifecycle of every IRP with at least two steps.
// An IRP is known by the Object of its kernel IRP records (its name); a
// record names it when its Object is that name, or ends with the name in
// parentheses, as a filter's callback data does ("cbd 2 (irp 2 (victim))").
// The first record naming an IRP is its IrpIssue step unless it is
// another step itself; a queue step of an insert the driver rejected is
// not a step. Records are taken in the order given (time order).
func IrpFlows(recs []des.Record) []IrpFlow {
	names := map[string]bool{}
	for i := range recs {
		if recs[i].Kind == kernel.KindIRP && recs[i].Object != "" {
			names[recs[i].Object] = true
		}
	}
	rejected := rejectedInserts(recs)
	var flows []IrpFlow
	index := map[string]int{}
	for i := range recs {
		irp := irpNamed(recs[i].Object, names)
		if irp == "" {
			continue
		}
		step := irpStepOf(&recs[i])
		j, seen := index[irp]
		switch {
		case rejected[i]:
			continue
		case !seen:
			if step == IrpNone {
				step = IrpIssue
			}
			j = len(flows)
			index[irp] = j
			flows = append(flows, IrpFlow{IRP: irp})
		case step == IrpNone:
			continue
		}
		flows[j].Recs = append(flows[j].Recs, i)
		flows[j].Steps = append(flows[j].Steps, step)
	}
	out := flows[:0]
	for _, f := range flows {
		if len(f.Recs) >= 2 {
			f.ID = len(out) + 1
			out = append(out, f)
		}
	}
	return out
}

// irpNamed returns the IRP that object names, or "".
func irpNamed(object string, names map[string]bool) string {
	if object == "" {
		return ""
	}
	if names[object] {
		return object
	}
	if i := strings.Index(object, "(irp "); i >= 0 && strings.HasSuffix(object, ")") {
		if inner := object[i+1 : len(object)-1]; names[inner] {
			return inner
		}
	}
	return ""
}
