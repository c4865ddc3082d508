package model_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/model"
	_ "github.com/wqsim/wqsim/model/reports"
	_ "github.com/wqsim/wqsim/model/sct"
)

// TestRecycledRunsMatchFresh: a run on a reused Sim, whose kernel objects
// are recycled from the runs before it (kernel/recycle.go), ends exactly as
// a run on a fresh Sim: same trace hash, outcome, decision log and marks,
// for every registered scenario and variant, several seeds and perturbed
// schedules. The reused Sim goes through the registry forwards and then
// backwards, so runs recycle objects left both by their own scenario and by
// others, in different states (a failed run stops with threads blocked,
// IRPs pending, events signalled).
func TestRecycledRunsMatchFresh(t *testing.T) {
	seeds := []uint64{1, 2, 3, 4}
	if testing.Short() {
		seeds = seeds[:2]
	}
	type run struct {
		s       *model.Scenario
		variant string
		seed    uint64
	}
	var runs []run
	for _, s := range model.All() {
		for _, v := range s.Variants {
			for _, seed := range seeds {
				runs = append(runs, run{s, v.Name, seed})
			}
		}
	}
	do := func(r run, sim *des.Sim) model.Result {
		// Perturb one decision in four, as an exploration does.
		res, err := model.Run(r.s, r.variant, model.RunConfig{Seed: r.seed, Chooser: des.NewSeededBiased(r.seed, 3, 4), Sim: sim})
		require.NoError(t, err)
		return res
	}
	fresh := make([]string, len(runs))
	for i, r := range runs {
		fresh[i] = summary(do(r, nil))
	}
	shared := des.New(des.Config{})
	defer shared.Close()
	order := make([]int, len(runs))
	for i := range order {
		order[i] = i
	}
	for pass, dir := range []string{"forwards", "backwards"} {
		if pass == 1 {
			slices.Reverse(order)
		}
		for _, i := range order {
			r := runs[i]
			got := summary(do(r, shared))
			require.Equal(t, fresh[i], got, "%s:%s seed %d, reused Sim going %s: differs from a fresh run", r.s.Name, r.variant, r.seed, dir)
		}
	}
}

// summary is everything a run's outcome says, as one comparable string.
func summary(r model.Result) string {
	o := r.Outcome
	return fmt.Sprintf("hash=%#x end=%v steps=%d calls=%d err=%v decisions=%v marks=%v sometimes=%v",
		o.Hash, o.End, o.Steps, o.Calls, o.Err, o.Decisions, r.Marks, r.Sometimes)
}

// TestContinuedRunsMatchQueued: inside des.Sim.Run the kernel ends a
// zero-length chunk that would be the very next event at once instead of
// queueing it (des.Sim.ContinueNow); driven one event at a time, every
// event goes through the queue. Both give the same trace hash, outcome,
// step and call counts, decision log and marks, for every registered
// scenario and variant, several seeds and perturbed schedules.
func TestContinuedRunsMatchQueued(t *testing.T) {
	seeds := []uint64{1, 2, 3}
	if testing.Short() {
		seeds = seeds[:1]
	}
	t.Cleanup(func() { model.SetStepEachEvent(false) })
	for _, s := range model.All() {
		for _, v := range s.Variants {
			for _, seed := range seeds {
				run := func(eachEvent bool) string {
					model.SetStepEachEvent(eachEvent)
					res, err := model.Run(s, v.Name, model.RunConfig{Seed: seed, Chooser: des.NewSeededBiased(seed, 3, 4)})
					require.NoError(t, err)
					return summary(res)
				}
				require.Equal(t, run(true), run(false), "%s:%s seed %d: continuing zero-length chunks changed the run", s.Name, v.Name, seed)
			}
		}
	}
}
