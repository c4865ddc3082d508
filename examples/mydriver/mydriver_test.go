package mydriver_test

import (
	"testing"

	"github.com/wqsim/wqsim/examples/mydriver"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/proptest"
)

// The correct driver survives exploration (proptest.DefaultExecs
// executions unless -wqsim.execs says otherwise; 2,000 keep CI quick).
func TestCorrect(t *testing.T) {
	proptest.Check(t, mydriver.Scenario, "correct", proptest.CheckOptions{Execs: 2000})
}

// The racy driver's bug is found, is the one the variant declares (Find
// checks Want and Marks), and needs few perturbations.
func TestRacyIsFound(t *testing.T) {
	f := proptest.Find(t, mydriver.Scenario, "racy", proptest.Options{Seed: 1})
	if f.Perturbations() > 3 {
		t.Errorf("shrunk schedule keeps %d perturbations", f.Perturbations())
	}
	t.Logf("found at execution index %d: %v (%d perturbations)", f.Exec, f.MinFinal.Outcome.Err, f.Perturbations())
}

// The natural run of either variant is clean: the race needs the explorer.
func TestNaturalRunsAreClean(t *testing.T) {
	for _, v := range []string{"correct", "racy"} {
		r, err := model.Run(mydriver.Scenario, v, model.RunConfig{Seed: 1})
		if err != nil || r.Failed() {
			t.Errorf("%s: %v %v", v, err, r.Outcome.Err)
		}
	}
}
