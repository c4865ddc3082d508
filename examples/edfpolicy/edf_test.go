package edfpolicy_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	_ "github.com/wqsim/wqsim/examples/edfpolicy"
	"github.com/wqsim/wqsim/lab"
)

// The shipped comparison: on C=(2ms, 4ms), T=(5ms, 7ms) (U = 0.97) the NT
// dispatcher with rate-monotonic priorities misses the 7ms task's
// deadlines; EDF meets them all, as Liu & Layland's U ≤ 1 bound promises.
// On random U = 0.95 sets EDF misses nothing either.
func TestEDFAgainstNT(t *testing.T) {
	e, err := lab.ParseFile("edf-vs-nt.json")
	require.NoError(t, err)
	e.Seeds = e.Seeds[:3]
	r, err := lab.Run(context.Background(), e, lab.Options{Scale: 0.5})
	require.NoError(t, err)
	require.Empty(t, r.Problems())
	misses := map[string]int{}
	for _, a := range r.Aggregates {
		for _, tr := range a.Tasks {
			misses[a.Workload+" "+a.Policy+" "+tr.Task] += tr.Misses
		}
	}
	assert.Positive(t, misses["classic nt/reactos b"], "RM: R_b = 8ms > 7ms")
	assert.Zero(t, misses["classic edf/reactos a"])
	assert.Zero(t, misses["classic edf/reactos b"])
	assert.Zero(t, misses["random-095 edf/reactos (set)"])
	assert.Positive(t, misses["random-095 nt/reactos (set)"], "some U = 0.95 sets are not RM-schedulable")
}

func TestRegistered(t *testing.T) {
	assert.Contains(t, lab.DispatcherNames(), "edf")
}
