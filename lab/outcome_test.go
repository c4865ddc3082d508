package lab

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues"
)

// A cell's outcome is its signature in the one closed set of outcomes
// (des.Signature), so findings of every layer are named, not "error".
func TestOutcomeOfUsesTheClosedSet(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{nil, "ok"},
		{&kernel.BugCheck{Code: kernel.MULTIPLE_IRP_COMPLETE_REQUESTS}, "bugcheck 0x44"},
		{&kernel.Livelock{Budget: &des.BudgetError{}}, "livelock"},
		{&queues.ContractViolation{API: "IoQueueWorkItem", Actor: "w", At: 5}, "contract IoQueueWorkItem"},
		{errors.New("boom: x"), "error boom"},
	} {
		got, detail := outcomeOf(c.err)
		assert.Equal(t, c.want, got)
		if c.err != nil {
			assert.Equal(t, c.err.Error(), detail)
		}
	}
}
