package sct_test

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/model"
	_ "github.com/wqsim/wqsim/model/sct"
	"github.com/wqsim/wqsim/proptest"
)

// suite returns the scenarios this package registers.
func suite() []*model.Scenario {
	var out []*model.Scenario
	for _, s := range model.All() {
		if strings.HasPrefix(s.Name, "sct-") || strings.HasPrefix(s.Name, "cve-") {
			out = append(out, s)
		}
	}
	return out
}

// findBudget is the executions the default explorer gets per bug variant
// in go test; the full protocol (20 seeds × 10,000) is in bench/.
const findBudget = 20000

// slowVariants need over a thousand executions of a hundred threads each
// (seconds on a loaded two-core box); go test runs them only with
// WQSIM_SUITE_FULL=1, and bench/stress TestExplorer times them.
var slowVariants = []string{"sct-twostage:n50", "sct-twostage:n100"}

// Every bug variant is found by the default explorer within the budget,
// fails the way it declares, and reaches its marks.
func TestBugVariantsFound(t *testing.T) {
	for _, s := range suite() {
		for _, v := range s.Variants {
			if !v.Bug {
				continue
			}
			t.Run(s.Name+":"+v.Name, func(t *testing.T) {
				if slices.Contains(slowVariants, s.Name+":"+v.Name) && os.Getenv("WQSIM_SUITE_FULL") == "" {
					t.Skip("slow variant: set WQSIM_SUITE_FULL=1")
				}
				rep, err := proptest.Explore(context.Background(), proptest.Options{Scenario: s, Variant: v.Name, Execs: findBudget, Seed: 1, Parallel: 1})
				require.NoError(t, err)
				f := rep.First()
				require.NotNil(t, f, "%s:%s not found in %d executions", s.Name, v.Name, rep.Execs)
				err = f.Result.Outcome.Err
				assert.True(t, v.Wants(err.Error()), "failure %q is not the kind %q", err, v.Want)
				for _, m := range v.Marks {
					assert.Contains(t, f.Result.Marks, m.String(), "racy path reached")
				}
				t.Logf("found at execution %d: %v", f.Exec, err)
			})
		}
	}
}

// survivalBudget is the executions each fixed variant survives in go test
// (the protocol's 100,000 is a bench/ command).
const survivalBudget = 2000

// Every fixed variant survives the default explorer.
func TestFixedVariantsSurvive(t *testing.T) { proptest.FixesSurvive(t, suite(), survivalBudget) }

// Same seed and strategy, same trace hash and marks, for every variant.
func TestDeterministic(t *testing.T) { proptest.RunsRepeat(t, suite(), 1, 99) }

// reorder_N's race needs two preemptions, but the default's first failing
// schedule carries many; a 1-minimal shrink of it stopped at 3–7 on these
// seeds (no single perturbation can go). The shrinker's search for a
// smaller schedule (subsets of the perturbations, then sparse schedules)
// brings every one to at most three.
func TestReorderShrinksToAtMostThree(t *testing.T) {
	s, v, err := model.Resolve("sct-reorder:n10")
	require.NoError(t, err)
	for seed := uint64(1); seed <= 5; seed++ {
		rep, err := proptest.Explore(context.Background(), proptest.Options{Scenario: s, Variant: v, Execs: findBudget, Seed: seed, Parallel: 1})
		require.NoError(t, err)
		f := rep.First()
		require.NotNil(t, f)
		sh, err := proptest.Minimize(s, v, f.Seed, f.Result.Outcome.Decisions, proptest.ShrinkOptions{})
		require.NoError(t, err)
		assert.True(t, sh.Complete, "seed %d: shrinking cut short", seed)
		assert.Equal(t, proptest.Signature(f.Result.Outcome.Err), proptest.Signature(sh.Final.Outcome.Err))
		sched := proptest.DescribeSchedule(sh.Log)
		assert.LessOrEqual(t, len(sched), 3, "seed %d: %v", seed, sched)
	}
}
