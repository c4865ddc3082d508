package model_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/queues/fltmgr"
)

// REFERENCE §5.5: each filter's default unload callback unregisters that
// filter. With two filters registered through one Minifilter, unloading
// the second leaves the first registered (it used to unregister whichever
// was registered last, twice), and Filter stays the first. One
// FLT_REGISTRATION may serve both: Register leaves it unmodified.
func TestMinifilterHoldsSeveralFilters(t *testing.T) {
	var first, second *fltmgr.FLT_FILTER
	var secondGoneFirstKept, bothGone bool
	s := &model.Scenario{
		Name: "twofilters", Doc: "two filters through one Minifilter", Section: "§5.5",
		Variants: []model.Variant{{Name: "correct"}},
		Setup: func(env *model.Env) error {
			mf, err := model.NewMinifilter(env)
			if err != nil {
				return err
			}
			reg := &fltmgr.FLT_REGISTRATION{}
			if err := mf.Register("upper", 300, reg); err != nil {
				return err
			}
			if second, err = mf.RegisterFilter("lower", 100, reg); err != nil { // the same registration serves both
				return err
			}
			if reg.FilterUnloadCallback != nil {
				return fmt.Errorf("Register wrote the default unload callback into the caller's registration")
			}
			first = mf.Filter
			env.K.PsCreateSystemThread("admin", 8, func() {
				mf.StartFiltering()
				mf.FM.FltStartFiltering(second)
				mf.FM.FltUnloadFilter(second)
				secondGoneFirstKept = second.Unregistered() && !first.Unregistered()
				mf.Unload()
				bothGone = first.Unregistered() && second.Unregistered()
			})
			return nil
		},
	}
	r, err := model.Run(s, "correct", model.RunConfig{Seed: 1})
	require.NoError(t, err)
	require.NoError(t, r.Outcome.Err)
	assert.Equal(t, "upper", first.Name, "Filter is the first registered")
	assert.True(t, secondGoneFirstKept, "unloading the second filter unregisters it, not the first")
	assert.True(t, bothGone)
}
