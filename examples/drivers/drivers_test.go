package drivers_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/examples/drivers"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/proptest"
)

var all = drivers.All

// No correct driver gets a finding (2,000 executions each keep go test
// quick; WQSIM_EXECS=20000 searches longer).
func TestCorrectDriversSurvive(t *testing.T) {
	proptest.FixesSurvive(t, all, 2000)
}

// Each bug is found within the default budget, is the failure its variant
// declares (Find checks Want), and shrinks to at most three perturbations.
func TestBugsAreFoundAndShrunk(t *testing.T) {
	for _, s := range all {
		for _, v := range s.Variants {
			if !v.Bug {
				continue
			}
			t.Run(s.Name+":"+v.Name, func(t *testing.T) {
				f := proptest.Find(t, s, v.Name, proptest.Options{Seed: 1})
				assert.LessOrEqual(t, f.Perturbations(), 3, "shrunk schedule: %v", proptest.DescribeSchedule(f.Minimal))
				assert.True(t, f.ShrinkComplete, "shrinking finished")
			})
		}
	}
}

// The natural run of every variant is deterministic: the same seed gives
// the same trace hash twice.
func TestRunsRepeat(t *testing.T) {
	proptest.RunsRepeat(t, all)
}

// inversion:spin-on-flag can only end on a budget; it declares its own
// (model.Scenario.Budget), so the livelock is reported after 20,000
// decisions, not the default 500,000.
func TestSpinOnFlagEndsOnItsOwnBudget(t *testing.T) {
	f := proptest.Find(t, drivers.Inversion, "spin-on-flag", proptest.Options{Seed: 1})
	r := f.Result
	var ll *kernel.Livelock
	require.ErrorAs(t, r.Outcome.Err, &ll)
	assert.Equal(t, drivers.Inversion.Budget, r.Budget)
	assert.LessOrEqual(t, uint64(len(r.Outcome.Decisions)), drivers.Inversion.Budget.Decisions)
}

// tdpcstats' bug is a threaded-DPC bug: with threaded DPCs disabled the
// fold runs at DISPATCH_LEVEL, the receive DPC cannot preempt it, and the
// same code survives exploration (REFERENCE §4.21).
func TestTdpcStatsBugNeedsThreadedDpcs(t *testing.T) {
	s := *drivers.TdpcStats
	s.Config = func(string) kernel.Config {
		c := model.ExploreConfig()
		c.DisableThreadedDpcs = true
		return c
	}
	proptest.Check(t, &s, "assume-dispatch", proptest.CheckOptions{Execs: 2000, Seed: 1, NoTimeline: true})
}
