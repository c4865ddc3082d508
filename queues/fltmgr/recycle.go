package fltmgr

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/wqsim/wqsim/des"
)

// spares recycles the filter manager and its operations from run to run of
// a Sim, as the kernel recycles its own objects (kernel/recycle.go): each
// object is reset entirely; only buffers and names that come out equal
// survive, so a recycled run is the same as a fresh one.
type spares struct {
	managers  des.Stock[FilterManager]
	ops       des.Stock[opBlock]
	issues    des.Stock[IoOp]
	filters   des.Stock[FLT_FILTER]
	instances des.Stock[FLT_INSTANCE]
	volumes   des.Stock[FLT_VOLUME]
	generic   des.Stock[FLT_GENERIC_WORKITEM]
	names     map[opName]string    // callback data names, bounded by maxNames
	itemNames []string             // "flt work item N", index N-1
	joins     map[[3]string]string // names concat built, bounded by maxNames
}

// concat returns the concatenation of parts (at most three), or old when
// it already is that string: a recycled object keeps its name without
// building it again. Otherwise the string comes from the Sim's cache, as
// objects of a rank get different names from run to run when schedules
// differ.
func (sp *spares) concat(old string, parts ...string) string {
	rest := old
	for _, p := range parts {
		if len(rest) < len(p) || rest[:len(p)] != p {
			return sp.joined(parts)
		}
		rest = rest[len(p):]
	}
	if rest != "" {
		return sp.joined(parts)
	}
	return old
}

// joined returns the concatenation of parts, built once per Sim while the
// cache has room (maxNames).
func (sp *spares) joined(parts []string) string {
	var key [3]string
	if len(parts) > len(key) {
		return strings.Join(parts, "")
	}
	copy(key[:], parts)
	if s, ok := sp.joins[key]; ok {
		return s
	}
	s := strings.Join(parts, "")
	if sp.joins == nil {
		sp.joins = map[[3]string]string{}
	}
	if len(sp.joins) < maxNames {
		sp.joins[key] = s
	}
	return s
}

// itemName returns "flt work item n", built once per Sim for the first
// maxNames numbers.
func (sp *spares) itemName(n int) string {
	if n <= len(sp.itemNames) {
		return sp.itemNames[n-1]
	}
	s := "flt work item " + strconv.Itoa(n)
	if n == len(sp.itemNames)+1 && n <= maxNames {
		sp.itemNames = append(sp.itemNames, s)
	}
	return s
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

// reuse returns s emptied, its elements zeroed so that nothing of the last
// run stays reachable through it.
func reuse[T any](s []T) []T {
	clear(s)
	return s[:0]
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
