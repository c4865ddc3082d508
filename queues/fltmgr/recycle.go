package fltmgr

import "github.com/wqsim/wqsim/des"

// spares recycles the filter manager and its operations from run to run of
// a Sim, as the kernel recycles its own objects (kernel/recycle.go): each
// object is reset entirely; only buffers and names that come out equal
// survive, so a recycled run is the same as a fresh one.
type spares struct {
	managers des.Stock[FilterManager]
	ops      des.Stock[opBlock]
	issues   des.Stock[IoOp]
}

// opBlock is one operation with its callback data and parameter block,
// which live and are recycled together.
type opBlock struct {
	op   operation
	data FLT_CALLBACK_DATA
	iopb FLT_IO_PARAMETER_BLOCK
	num  int    // the operation number data.name was built from
	irp  string // and the IRP name
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
