package fltmgr

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
)

// spares recycles the filter manager and its operations from run to run of
// a Sim, as the kernel recycles its own objects (kernel/recycle.go): each
// object is reset entirely; only buffers and names that come out equal
// survive, so a recycled run is the same as a fresh one.
type spares struct {
	managers des.Stock[FilterManager]
	ops      des.Stock[opBlock]
	issues   des.Stock[IoOp]
	names    map[opName]string // callback data names, bounded by maxNames
}

// opName is what a callback data's name is built from.
type opName struct {
	num int
	irp string
}

// maxNames bounds the name cache, so a long run's memory does not grow
// with it.
const maxNames = 4096

// dataName returns "cbd N" plus the IRP's name, built once per Sim.
func (sp *spares) dataName(num int, irp string) string {
	key := opName{num, irp}
	if s, ok := sp.names[key]; ok {
		return s
	}
	s := fmt.Sprintf("cbd %d", num)
	if irp != "" {
		s += " (" + irp + ")"
	}
	if sp.names == nil {
		sp.names = map[opName]string{}
	}
	if len(sp.names) < maxNames {
		sp.names[key] = s
	}
	return s
}

// opBlock is one operation with its callback data and parameter block,
// which live and are recycled together.
type opBlock struct {
	op   operation
	data FLT_CALLBACK_DATA
	iopb FLT_IO_PARAMETER_BLOCK
}

var spareKey = des.NewSpareKey("fltmgr")

func sparesOf(sim *des.Sim) *spares {
	sp, _ := sim.Spare(spareKey).(*spares)
	if sp == nil {
		sp = &spares{}
		sim.SetSpare(spareKey, sp)
	}
	return sp
}
