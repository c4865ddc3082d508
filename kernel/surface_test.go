package kernel_test

import (
	"reflect"
	"regexp"
	"slices"
	"testing"

	"github.com/wqsim/wqsim/kernel"
)

// ntRoutine matches the names of NT kernel routines a driver calls.
// The LIST_ENTRY routines and PAGED_CODE are wdm.h inline functions and
// macros without a prefix.
var ntRoutine = regexp.MustCompile(`^((Ke|Ex|Io|Ps|Ob|Mm|Rtl|Fs|Interlocked)[A-Z]|(InitializeListHead|IsListEmpty|InsertHeadList|InsertTailList|RemoveEntryList|RemoveHeadList|RemoveTailList|PushEntryList|PopEntryList|PAGED_CODE)$)`)

// driverHelpers are the methods of *Kernel that are not NT routines: the
// workload helpers (what a scenario's threads do besides calling NT
// routines) and the two calls a harness makes. The package documentation
// lists them; a new one must be added there and here.
var driverHelpers = []string{
	"AccessPool", "Compute", "DeviceInterrupt", "NewCell", "Now", "Read",
	"VerifyCancelCompletes", "Write",
	"Layer", "Run",
}

// TestDriverSurface pins the split between the two API surfaces: *Kernel
// carries the NT routines plus the documented helpers, and nothing of the
// layer plumbing; *Layer carries no NT routine (a driver would not find it
// there).
func TestDriverSurface(t *testing.T) {
	kt := reflect.TypeFor[*kernel.Kernel]()
	nt := 0
	for i := range kt.NumMethod() {
		name := kt.Method(i).Name
		switch {
		case ntRoutine.MatchString(name):
			nt++
		case !slices.Contains(driverHelpers, name):
			t.Errorf("(*Kernel).%s is neither an NT routine nor a documented workload helper: layer plumbing belongs on *kernel.Layer", name)
		}
	}
	if nt < 60 {
		t.Errorf("*Kernel has %d NT routines; expected the driver surface (≥ 60)", nt)
	}
	for _, h := range driverHelpers {
		if _, ok := kt.MethodByName(h); !ok {
			t.Errorf("documented helper (*Kernel).%s does not exist", h)
		}
	}
	lt := reflect.TypeFor[*kernel.Layer]()
	for i := range lt.NumMethod() {
		if name := lt.Method(i).Name; ntRoutine.MatchString(name) {
			t.Errorf("(*Layer).%s is an NT routine: it belongs on *kernel.Kernel", name)
		}
	}
	if lt.NumMethod() == 0 {
		t.Error("*Layer has no methods")
	}
}
