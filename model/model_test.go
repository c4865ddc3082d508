package model_test

import (
	"fmt"

	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
)

// Every correct variant runs clean on the natural schedule and every
// scenario is deterministic (run twice, same hash).
func TestNaturalRunsAreCleanAndDeterministic(t *testing.T) {
	for _, s := range model.All() {
		for _, v := range s.Variants {
			r1, err := model.Run(s, v.Name, model.RunConfig{Seed: 1})
			require.NoError(t, err)
			r2, err := model.Run(s, v.Name, model.RunConfig{Seed: 1})
			require.NoError(t, err)
			assert.Equal(t, r1.Outcome.Hash, r2.Outcome.Hash, "%s:%s", s.Name, v.Name)
			if !v.Bug {
				assert.NoError(t, r1.Outcome.Err, "%s:%s natural schedule", s.Name, v.Name)
			}
		}
	}
}

func TestResolveErrorsNameTheChoices(t *testing.T) {
	_, _, err := model.Resolve("nosuch")
	assert.ErrorContains(t, err, "unknown scenario \"nosuch\"; known scenarios:")
	_, _, err = model.Resolve("lostupdate:nosuch")
	assert.ErrorContains(t, err, "has no variant \"nosuch\"; its variants: correct, racy")
	s, v, err := model.Resolve("lostupdate")
	require.NoError(t, err)
	assert.Equal(t, "racy", v, "the default variant is the first bug")
	assert.Equal(t, "lostupdate", s.Name)
}

// Env.Is answers for declared variants and panics on any other name: a
// mistyped variant must not silently run the other branch. (Called in
// Setup, the panic reaches the caller as Run's error.)
func TestEnvIsPanicsOnUndeclaredVariant(t *testing.T) {
	var asked []bool
	s := &model.Scenario{
		Name:     "istest",
		Variants: []model.Variant{{Name: "correct"}, {Name: "racy", Bug: true}},
		Setup: func(env *model.Env) error {
			asked = append(asked, env.Is("correct"), env.Is("racy"))
			env.Is("rcay")
			return nil
		},
	}
	_, err := model.Run(s, "racy", model.RunConfig{})
	require.Error(t, err, "Is panics; in Setup, Run reports the panic as an error")
	assert.Contains(t, err.Error(), `model: Env.Is("rcay"): scenario "istest" declares no such variant; its variants: correct, racy`)
	assert.Equal(t, []bool{false, true}, asked)
}

// Result.Marks holds the marks hit through Env.Hit and the library marks a
// variant lists, not every library mark the run passed.
func TestResultMarksLibraryMarksListedByVariant(t *testing.T) {
	own := model.NewMark("marktest: own path")
	listed := kernel.NewMark("lib: listed path")
	unlisted := kernel.NewMark("lib: unlisted path")
	s := &model.Scenario{
		Name:     "marktest",
		Variants: []model.Variant{{Name: "correct"}, {Name: "racy", Bug: true, Marks: []*model.Mark{listed}}},
		Setup: func(env *model.Env) error {
			env.K.PsCreateSystemThread("t", 8, func() {
				env.Hit(own)
				env.K.Layer().HitMark(listed)
				env.K.Layer().HitMark(unlisted)
				env.Hit(own)
			})
			return nil
		},
	}
	res, err := model.Run(s, "correct", model.RunConfig{})
	require.NoError(t, err)
	assert.Equal(t, []string{"lib: listed path", "marktest: own path"}, res.Marks)
	assert.Equal(t, []string{"lib: listed path"}, s.Variants[1].MarkTexts())
}

// A Setup that calls a kernel routine outside simulated code (the most
// common first mistake in a user's scenario) gets an error naming the
// scenario and the rule, not a panic that takes the test binary down.
func TestSetupPanicIsAnError(t *testing.T) {
	s := &model.Scenario{Name: "setuppanic", Variants: []model.Variant{{Name: "v"}}, Setup: func(env *model.Env) error {
		env.K.KeDelayExecutionThread(1)
		return nil
	}}
	_, err := model.Run(s, "v", model.RunConfig{Seed: 1})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `scenario "setuppanic" setup panicked`)
	assert.Contains(t, err.Error(), "outside simulated code")
}

// A check (AtEnd or Invariant) runs outside simulated code too: one that
// reads a Cell with Kernel.Read instead of Peek gets an error naming the
// scenario and the check, not a panic that takes the explorer down, and
// never a finding against the driver.
func TestCheckPanicIsAnError(t *testing.T) {
	for _, atEnd := range []bool{true, false} {
		s := &model.Scenario{Name: "checkpanic", Variants: []model.Variant{{Name: "v"}}, Setup: func(env *model.Env) error {
			k := env.K
			c := k.NewCell("count", 0)
			k.PsCreateSystemThread("t", 8, func() { k.InterlockedIncrement(c) })
			check := func() error {
				if k.Read(c) > 1 {
					return fmt.Errorf("too many")
				}
				return nil
			}
			if atEnd {
				env.AtEnd("count read", check)
			} else {
				env.Invariant("count read", check)
			}
			return nil
		}}
		_, err := model.Run(s, "v", model.RunConfig{Seed: 1})
		require.Error(t, err, "atEnd=%v", atEnd)
		assert.Contains(t, err.Error(), `scenario "checkpanic": check "count read" panicked`)
		assert.Contains(t, err.Error(), "Peek")
	}
}
