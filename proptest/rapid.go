package proptest

import (
	"errors"

	"pgregory.net/rapid"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/model"
)

// RapidChooser draws every decision from rapid: one labelled
// rapid.IntRange(0, n-1) draw per decision. Since choice 0 is the natural
// one, rapid's shrinker (which shrinks draws toward their minimum) removes
// perturbations, leaving the schedule with the fewest of them.
//
// Draws happen inside simulated code, where the engine recovers panics;
// rapid steers its search by panicking out of Draw, so the chooser catches
// those panics, stops the run, and RunRapid re-raises them on rapid's side.
type RapidChooser struct {
	T     *rapid.T
	abort any
}

var errRapidAbort = errors.New("proptest: rapid aborted the draw")

// Choose implements des.Chooser.
func (r *RapidChooser) Choose(p des.Point, n int) (c int) {
	if r.abort != nil {
		return 0
	}
	defer func() {
		if v := recover(); v != nil {
			r.abort = v
			c = 0
		}
	}()
	return rapid.IntRange(0, n-1).Draw(r.T, p.Label)
}

// Err implements des.Failer: it stops the run once rapid aborted a draw.
func (r *RapidChooser) Err() error {
	if r.abort != nil {
		return errRapidAbort
	}
	return nil
}

// RunRapid runs one execution with decisions drawn from rt and returns its
// result; rapid's own control panics are re-raised here, outside the
// simulation, where rapid expects them.
func RunRapid(rt *rapid.T, s *model.Scenario, variant string, seed uint64) model.Result {
	c := &RapidChooser{T: rt}
	r, err := model.Run(s, variant, model.RunConfig{Seed: seed, Chooser: c})
	if c.abort != nil {
		panic(c.abort)
	}
	if err != nil {
		rt.Fatal(err)
	}
	return r
}
