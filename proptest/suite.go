package proptest

import (
	"context"
	"slices"
	"testing"

	"github.com/wqsim/wqsim/model"
)

// FixesSurvive explores every correct variant of scenarios for execs
// executions (seed 2, one worker, the default strategy), one subtest per
// variant. The wqsim.* flags or WQSIM_* variables, when set, override the
// budget, seed and strategy, as for Check (WQSIM_EXECS=50000 go test ./...
// searches longer everywhere). A failure is shrunk and saved, and the
// subtest fails with Check's report: the minimal schedule, the fail file
// and the line that replays it. It is the survival check of a package of
// scenarios; the built-in suites (model/sct, model/reports) use it too.
func FixesSurvive(t *testing.T, scenarios []*model.Scenario, execs int) {
	t.Helper()
	st, err := CurrentSettings()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range scenarios {
		for _, v := range s.Variants {
			if v.Bug {
				continue
			}
			t.Run(s.Name+":"+v.Name, func(t *testing.T) {
				how := testReproduce(t, defaultCLI(s))
				o := Options{Scenario: s, Variant: v.Name, Execs: execs, Seed: 2, Parallel: 1,
					Shrink: true, FailDir: st.FailDir, Reproduce: &how}
				applySettings(&o, st)
				rep, err := Explore(context.Background(), o)
				if err != nil {
					t.Fatal(err)
				}
				if f := rep.First(); f != nil {
					t.Fatal(failureReport(s, v.Name, f, rep.Execs, true, how))
				}
				if rep.Execs != o.Execs {
					t.Fatalf("ran %d executions, want %d", rep.Execs, o.Execs)
				}
			})
		}
	}
}

// RunsRepeat runs every variant of scenarios twice for each seed under the
// random walk and fails t if a run's trace hash or marks differ between
// the two: simulated code took a choice outside the Sim's decisions.
func RunsRepeat(t *testing.T, scenarios []*model.Scenario, seeds ...uint64) {
	t.Helper()
	st, err := NewStrategy("random")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range scenarios {
		for _, v := range s.Variants {
			for _, seed := range seeds {
				var runs [2]model.Result
				for i := range runs {
					if runs[i], err = model.Run(s, v.Name, model.RunConfig{Seed: seed, Chooser: st.Chooser(seed)}); err != nil {
						t.Fatal(err)
					}
				}
				if runs[0].Outcome.Hash != runs[1].Outcome.Hash || !slices.Equal(runs[0].Marks, runs[1].Marks) {
					t.Errorf("%s:%s seed %d ran differently twice: hash %#x then %#x, marks %v then %v", s.Name, v.Name, seed,
						runs[0].Outcome.Hash, runs[1].Outcome.Hash, runs[0].Marks, runs[1].Marks)
				}
			}
		}
	}
}
