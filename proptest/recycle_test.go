package proptest_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/proptest"
)

// TestRechooseMatchesChooser: a chooser a Recycler resets for a new seed
// (what an exploration worker does between executions) decides exactly as
// a fresh Chooser(seed): same decision log and trace hash, for every
// member of the prepared default portfolio, on scenarios of different
// shapes, after runs that left the chooser in other states.
func TestRechooseMatchesChooser(t *testing.T) {
	var members []proptest.Strategy
	for _, name := range []string{"cancelsafe", "lostupdate", "iocsq"} {
		s, err := model.Lookup(name)
		require.NoError(t, err)
		prof, err := proptest.NaturalProfile(s, "correct", 1)
		require.NoError(t, err)
		members = append(members, proptest.NewPortfolio().Prepare(prof).(*proptest.Portfolio).Members...)
	}
	members = append(members, proptest.NewPortfolio().Members...) // unprepared
	run := func(s *model.Scenario, c des.Chooser, seed uint64, sim *des.Sim) string {
		r, err := model.Run(s, "correct", model.RunConfig{Seed: seed, Chooser: c, Sim: sim})
		require.NoError(t, err)
		return fmt.Sprintf("hash=%#x err=%v decisions=%v", r.Outcome.Hash, r.Outcome.Err, r.Outcome.Decisions)
	}
	names := []string{"cancelsafe", "lostupdate", "iocsq", "cancelsafe"}
	for mi, st := range members {
		rc, ok := st.(proptest.Recycler)
		require.True(t, ok, "%s is not a Recycler", st.Describe())
		sim := des.New(des.Config{})
		var kept des.Chooser
		for i := range 12 {
			s, err := model.Lookup(names[i%len(names)])
			require.NoError(t, err)
			seed := proptest.ExecSeed(uint64(mi), i)
			want := run(s, st.Chooser(seed), seed, nil)
			kept = rc.Rechoose(kept, seed)
			require.Equal(t, want, run(s, kept, seed, sim), "%s, execution %d (%s): a recycled chooser decided differently", st.Describe(), i, s.Name)
		}
		sim.Close()
	}
}
