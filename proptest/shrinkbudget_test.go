package proptest_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/proptest"
)

// Options.ShrinkBudget bounds shrinking's wall-clock time: a budget that
// has run out before the first candidate leaves the shrink incomplete,
// the default lets it finish; Find defaults to FindShrinkBudget, not the
// command line's 10 s, so a busy machine does not fail a test that checks
// ShrinkComplete.
func TestShrinkBudgetIsHonoured(t *testing.T) {
	s, err := model.Lookup("lostupdate")
	require.NoError(t, err)
	explore := func(budget time.Duration) *proptest.Failure {
		rep, err := proptest.Explore(context.Background(), proptest.Options{Scenario: s, Variant: "racy", Seed: 4,
			Execs: 2000, Parallel: 1, Shrink: true, ShrinkBudget: budget})
		require.NoError(t, err)
		require.NotNil(t, rep.First())
		return rep.First()
	}
	assert.False(t, explore(time.Nanosecond).ShrinkComplete, "a spent budget stops shrinking")
	assert.True(t, explore(0).ShrinkComplete, "the default budget lets it finish")
	assert.Greater(t, proptest.FindShrinkBudget, 10*time.Second, "Find is more patient than the command line")
	f := proptest.Find(t, s, "racy", proptest.Options{Seed: 4, Execs: 2000})
	assert.True(t, f.ShrinkComplete)
}
