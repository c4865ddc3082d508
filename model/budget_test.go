package model_test

import (
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
)

// A thread that polls with Yield for ever is reported as a livelock with the
// default budgets, under the exploration's perturbations (every Yield is
// a decision), within a bounded amount of memory: the decision budget
// stops the log at DefaultDecisionBudget entries. (Before the budgets, the
// same loop logged 16 million decisions and 2.5 GB.)
func TestYieldLoopIsALivelockWithinDefaultBudgets(t *testing.T) {
	spin := &model.Scenario{
		Name: "spin", Doc: "polls a bare scheduling point for ever", Section: "-",
		Variants: []model.Variant{{Name: "bug", Bug: true, Want: "livelock"}},
		Setup: func(env *model.Env) error {
			k := env.K
			k.PsCreateSystemThread("spinner", 8, func() {
				for {
					k.Compute(0) // a bare scheduling point
				}
			})
			return nil
		},
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	r, err := model.Run(spin, "bug", model.RunConfig{Seed: 1, Chooser: des.NewSeededBiased(1, 7, 8)})
	runtime.ReadMemStats(&after)
	require.NoError(t, err)
	var ll *kernel.Livelock
	require.ErrorAs(t, r.Outcome.Err, &ll)
	assert.Contains(t, ll.Error(), "spinner")
	assert.LessOrEqual(t, len(r.Outcome.Decisions), model.DefaultDecisionBudget)
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(160<<20), "bytes allocated by the run")
}
