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

// spinner is a scenario whose only thread polls for ever: every run ends
// on a budget, so the budget decides how the run ends.
func spinner(b model.Budget) *model.Scenario {
	return &model.Scenario{
		Name: "spin", Doc: "polls a bare scheduling point for ever", Section: "-",
		Variants: []model.Variant{{Name: "bug", Bug: true, Want: "livelock"}},
		Budget:   b,
		Setup: func(env *model.Env) error {
			k := env.K
			k.PsCreateSystemThread("spinner", 8, func() {
				for {
					k.Compute(des.Microsecond)
				}
			})
			return nil
		},
	}
}

// A scenario's declared budget bounds its runs; a RunConfig budget
// overrides it field by field, WithBudget too, and the Result says which
// budget the run had. Unset fields fall back to the defaults.
func TestScenarioBudgetBoundsItsRuns(t *testing.T) {
	decisions := func(s *model.Scenario, rc model.RunConfig) (int, model.Budget) {
		t.Helper()
		r, err := model.Run(s, "bug", rc)
		require.NoError(t, err)
		var be *des.BudgetError
		require.ErrorAs(t, r.Outcome.Err, &be)
		assert.Equal(t, des.BudgetDecisions, be.Budget, "the decision budget ended it")
		return len(r.Outcome.Decisions), r.Budget
	}
	s := spinner(model.Budget{Decisions: 1000})
	n, b := decisions(s, model.RunConfig{Seed: 1})
	assert.Equal(t, 1000, n)
	assert.Equal(t, model.Budget{Steps: model.DefaultStepBudget, Decisions: 1000}, b)

	n, b = decisions(s, model.RunConfig{Seed: 1, DecisionBudget: 3000})
	assert.Equal(t, 3000, n, "the run's own budget wins")
	assert.EqualValues(t, 3000, b.Decisions)

	small := s.WithBudget(model.Budget{Steps: 1_000_000})
	n, b = decisions(small, model.RunConfig{Seed: 1})
	assert.Equal(t, 1000, n, "WithBudget keeps the fields it does not set")
	assert.Equal(t, model.Budget{Steps: 1_000_000, Decisions: 1000}, b)
	assert.Equal(t, model.Budget{Decisions: 1000}, s.Budget, "WithBudget leaves the scenario alone")

	assert.Equal(t, model.DefaultBudget, spinner(model.Budget{}).RunBudget(model.RunConfig{}))
}
