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

// Every bug variant is found by the default strategy within a bounded
// number of executions, reaches the racy path it names, fails the way it
// says, and shrinks to a handful of perturbations.
func TestBugVariantsAreFound(t *testing.T) {
	for _, s := range model.All() {
		for _, v := range s.Variants {
			if !v.Bug {
				continue
			}
			t.Run(s.Name+":"+v.Name, func(t *testing.T) {
				start := time.Now()
				f := proptest.Find(t, s, v.Name, proptest.Options{Execs: 20000, Seed: 1})
				err := f.MinFinal.Outcome.Err
				require.Error(t, err)
				assert.True(t, v.Wants(err.Error()), "failure %q is not the kind %q", err, v.Want)
				for _, m := range v.Marks {
					assert.Contains(t, f.MinFinal.Marks, m.String(), "racy path reached")
				}
				assert.LessOrEqual(t, nonZeros(f.Minimal), 3, "shrunk schedule: %v", proptest.DescribeSchedule(f.Minimal))
				t.Logf("found at execution %d, %d perturbations after shrinking, %v", f.Exec, nonZeros(f.Minimal), time.Since(start).Round(time.Millisecond))
			})
		}
	}
}

// A Want copied from wqsim's outcome line ("bugcheck 0x44:
// MULTIPLE_IRP_COMPLETE_REQUESTS", where the error itself says "bug check
// 0x44 MULTIPLE_…") is the failure Find checks for (a user's first Want was
// such text and was refused).
func TestFindAcceptsWantInOutcomeLineForm(t *testing.T) {
	s, err := model.Lookup("doublecomplete")
	require.NoError(t, err)
	c := *s
	c.Variants = append([]model.Variant(nil), s.Variants...)
	for i := range c.Variants {
		if c.Variants[i].Name == "timeout-race" {
			c.Variants[i].Want = "bugcheck 0x44: MULTIPLE_IRP_COMPLETE_REQUESTS" // the outcome line's words
		}
	}
	f := proptest.Find(t, &c, "timeout-race", proptest.Options{Seed: 1, Execs: 5000})
	assert.Equal(t, "bugcheck 0x44", proptest.Signature(f.MinFinal.Outcome.Err))
}

// Every correct variant survives exploration by each strategy (10,000+ per
// strategy in the benchmark-style run: go test ./proptest -wqsim.execs=10000).
func TestCorrectVariantsSurvive(t *testing.T) {
	n := execs(2000, 200)
	st, err := proptest.CurrentSettings()
	require.NoError(t, err)
	if st.Execs > 0 {
		n = st.Execs
	}
	for _, s := range model.All() {
		for _, v := range s.Variants {
			if v.Bug {
				continue
			}
			for _, name := range proptest.StrategyNames {
				if name == "exhaustive" {
					continue // its own test bounds it
				}
				st, _ := proptest.NewStrategy(name)
				rep, err := proptest.Explore(context.Background(), proptest.Options{Scenario: s, Variant: v.Name, Strategy: st, Execs: n, Seed: 2})
				require.NoError(t, err)
				if f := rep.First(); f != nil {
					t.Errorf("%s:%s failed under %s at execution %d: %v", s.Name, v.Name, name, f.Exec, f.Result.Outcome.Err)
				}
			}
		}
	}
}
