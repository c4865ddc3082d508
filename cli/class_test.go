package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/proptest"
	"github.com/wqsim/wqsim/queues"
	"github.com/wqsim/wqsim/queues/fltmgr"
)

// classSamples builds, for every outcome class, an error of that class as
// a run raises it, at virtual time at and by actor who: two samples that
// differ only there must share a signature, or shrinking would reject
// every smaller schedule of the same failure.
var classSamples = map[des.Class]func(at des.Time, who string) error{
	des.ClassOK:       func(des.Time, string) error { return nil },
	des.ClassInternal: func(at des.Time, who string) error { return fmt.Errorf("write trace: disk full") },
	des.ClassBugCheck: func(at des.Time, who string) error {
		return &kernel.BugCheck{Code: kernel.MULTIPLE_IRP_COMPLETE_REQUESTS, API: "IoCompleteRequest", Actor: who, At: at}
	},
	des.ClassDeadlock: func(at des.Time, who string) error {
		return &kernel.Deadlock{Cycle: []kernel.WaitEdge{{Waiter: who, Object: "fast mutex M"}}, At: at}
	},
	des.ClassLeak: func(at des.Time, who string) error {
		return &kernel.Leak{Items: []string{"irp 1 never completed"}, At: at}
	},
	des.ClassLivelock: func(at des.Time, who string) error {
		return &kernel.Livelock{Budget: &des.BudgetError{Budget: des.BudgetSteps, At: at}, Running: []string{who}}
	},
	des.ClassInvariant: func(at des.Time, who string) error {
		return &model.InvariantError{Name: "no-lost-irp", Err: errors.New(who + " lost it"), At: at}
	},
	des.ClassPanic: func(at des.Time, who string) error { return &des.PanicError{Proc: who, Value: "nil map"} },
	des.ClassReplayMismatch: func(at des.Time, who string) error {
		return &des.ReplayMismatch{Index: int(at), Asked: des.Point{Label: who}}
	},
	des.ClassStuck: func(at des.Time, who string) error { return &proptest.StuckError{Exec: int(at), Actor: who} },
	des.ClassContract: func(at des.Time, who string) error {
		return &queues.ContractViolation{API: "IoQueueWorkItem", Actor: who, At: at, Detail: "CriticalWorkQueue"}
	},
	des.ClassVerifier: func(at des.Time, who string) error {
		return &fltmgr.VerifierViolation{API: "FltCompletePendedPreOperation", Filter: "cancelSafe", Actor: who, At: at}
	},
	des.ClassCsqCorruption: func(at des.Time, who string) error {
		return &queues.CsqCorruption{Queue: "csq", Irp: "irp " + who, Detail: "DriverContext[3] overwritten at " + at.String()}
	},
	des.ClassNondeterminism: func(at des.Time, who string) error {
		return &proptest.UncontrolledNondeterminism{Detail: "at " + at.String() + " by " + who}
	},
}

// Every outcome class has one exit code of its own, the CLI and the
// shrinker classify through the one declaration, a signature ignores
// time and actor, and README and `wqsim help` list every class.
func TestEveryOutcomeClass(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	require.NoError(t, err)
	codes := map[int]des.Class{exitUsage: 0xff, exitInterrupted: 0xff}
	require.Len(t, classSamples, len(des.Classes()), "a sample per class")
	for _, c := range des.Classes() {
		sample, ok := classSamples[c]
		require.True(t, ok, "no sample for class %v", c)
		a, b := sample(des.Time(1000), "worker.0"), sample(des.Time(77_000), "dpc/cpu1")
		assert.Equal(t, c, des.Classify(a), "%v", c)
		code := c.ExitCode()
		assert.Equal(t, code, outcomeCode(a), "%v: the CLI's exit code is the class's", c)
		prev, dup := codes[code]
		assert.False(t, dup, "%v shares exit code %d with %v", c, code, prev)
		codes[code] = c
		assert.Equal(t, des.Signature(a), des.Signature(b), "%v: the signature ignores time and actor", c)
		assert.Equal(t, des.Signature(a), proptest.Signature(a), "%v: proptest classifies the same way", c)
		assert.NotContains(t, des.Signature(a), "worker.0", c)
		row := "| " + strconv.Itoa(code) + " | " + c.String() + " |"
		assert.Contains(t, string(readme), row, "README's exit-code table lists %v", c)
		assert.Contains(t, helpText, strconv.Itoa(code)+" ", "wqsim help lists exit code %d", code)
		if a != nil {
			assert.True(t, strings.HasPrefix(outcomeLine(a), "outcome: "+des.Signature(a)+": "), c)
		}
	}
	assert.Equal(t, "bugcheck 0x44", des.Signature(classSamples[des.ClassBugCheck](1, "x")))
	assert.Equal(t, "invariant no-lost-irp", des.Signature(classSamples[des.ClassInvariant](1, "x")))
}
