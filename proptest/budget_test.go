package proptest_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/proptest"
)

// budgetSpinner polls for ever, so its runs end on a budget, and each turn
// leaves trace records, so runs that end on different budgets have
// different hashes. With plain
// Windows defaults (no exploration knobs) it makes no decisions, so a run
// that ends on the default step budget still has a short log.
func budgetSpinner(b model.Budget, plain bool) *model.Scenario {
	s := &model.Scenario{
		Name: "budgetspin", Doc: "polls for ever", Section: "-",
		Variants: []model.Variant{{Name: "bug", Bug: true, Want: "livelock"}},
		Budget:   b,
		Setup: func(env *model.Env) error {
			k := env.K
			ev := k.KeInitializeEvent("tick", kernel.SynchronizationEvent, false)
			k.PsCreateSystemThread("spinner", 8, func() {
				for {
					k.KeSetEvent(ev, 0, false) // a trace record per turn: the budget shows in the hash
					k.KeClearEvent(ev)
				}
			})
			return nil
		},
	}
	if plain {
		s.Config = func(string) kernel.Config { return kernel.DefaultConfig() }
	}
	return s
}

// An exploration of a scenario with its own budget writes that budget
// into the fail file, and the file replays with it even after the
// scenario's declared budget changed (under the new one the run would
// make more decisions than the file holds: a mismatch).
func TestFailFileRecordsAndReplaysItsBudget(t *testing.T) {
	s := budgetSpinner(model.Budget{Decisions: 2000}, false)
	dir := t.TempDir()
	rep, err := proptest.Explore(context.Background(), proptest.Options{Scenario: s, Variant: "bug", Seed: 1, Execs: 4,
		Parallel: 1, Shrink: true, FailDir: dir})
	require.NoError(t, err)
	f := rep.First()
	require.NotNil(t, f)
	require.NotEmpty(t, f.File)
	ff, err := proptest.ReadFailFile(f.File)
	require.NoError(t, err)
	assert.Equal(t, model.Budget{Steps: model.DefaultStepBudget, Decisions: 2000}, ff.Budget)
	assert.Contains(t, string(ff.Encode(f.File)), "\nbudget: steps=2000000 decisions=2000\n")

	changed := s.WithBudget(model.Budget{Decisions: 5000})
	r, err := proptest.ReplayScenario(context.Background(), 0, changed, ff, nil)
	require.NoError(t, err, "replays with the file's budget")
	assert.EqualValues(t, 2000, r.Budget.Decisions)
	var be *des.BudgetError
	require.ErrorAs(t, r.Outcome.Err, &be)

	ff.Budget = model.Budget{Steps: model.DefaultStepBudget, Decisions: 5000}
	_, err = proptest.ReplayScenario(context.Background(), 0, changed, ff, nil)
	assert.Error(t, err, "under another budget the recorded run does not replay")
}

// A version 4 file has no budget line: it was written when every run had
// the defaults, and it replays with them, even for a scenario that now
// declares a smaller budget.
func TestVersion4FailFileReplaysWithDefaultBudget(t *testing.T) {
	s := budgetSpinner(model.Budget{}, true)
	r, err := model.Run(s, "bug", model.RunConfig{Seed: 7, Chooser: des.Natural{}})
	require.NoError(t, err)
	var ll *kernel.Livelock
	require.ErrorAs(t, r.Outcome.Err, &ll, "ends on the default step budget")
	v4 := &proptest.FailFile{Scenario: s.Name, Variant: "bug", Seed: 7, Strategy: "natural", Hash: r.Outcome.Hash,
		Decisions: r.Outcome.Decisions}
	text := string(v4.Encode("old.fail"))
	text = strings.Replace(text, "wqsim-failfile 6\n", "wqsim-failfile 4\n", 1)
	text = strings.Replace(text, "budget: steps=2000000 decisions=500000\n", "", 1)
	require.NotContains(t, text, "budget:")
	old, err := proptest.ParseFailFile([]byte(text))
	require.NoError(t, err)
	assert.Equal(t, model.DefaultBudget, old.Budget)

	now := s.WithBudget(model.Budget{Steps: 10_000})
	got, err := proptest.ReplayScenario(context.Background(), 0, now, old, nil)
	require.NoError(t, err, "the old file replays with the defaults it was run with")
	assert.Equal(t, r.Outcome.Hash, got.Outcome.Hash)
}

// A budget line that is not two positive numbers is refused.
func TestFailFileBudgetLineIsChecked(t *testing.T) {
	good := (&proptest.FailFile{Scenario: "x", Variant: "y", Budget: model.Budget{Steps: 9, Decisions: 8}}).Encode("x.fail")
	f, err := proptest.ParseFailFile(good)
	require.NoError(t, err)
	assert.Equal(t, model.Budget{Steps: 9, Decisions: 8}, f.Budget)
	for _, bad := range []string{"steps=0 decisions=8", "steps=9", "decisions=8 steps=9", "steps=9 decisions=8 extra"} {
		_, err := proptest.ParseFailFile([]byte(strings.Replace(string(good), "steps=9 decisions=8", bad, 1)))
		var pe *proptest.ParseError
		assert.True(t, errors.As(err, &pe), "%q: %v", bad, err)
	}
}
