package proptest_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/proptest"
)

// synthetic runs n actors of k steps each; at every step the chooser picks
// which enabled actor steps next. It reports whether the depth-2 ordering
// bug happened: actor 1's first step falls between actor 2's second and
// third steps (two ordering constraints, so depth d = 2).
func synthetic(c des.Chooser, n, k int) bool {
	s := des.New(des.Config{Chooser: c})
	defer s.Close()
	pos := make([]int, n)
	var a1first, b2, b3 = -1, -1, -1
	opts := make([]int32, 0, n)
	for t := 0; ; t++ {
		opts = opts[:0]
		for a := 0; a < n; a++ {
			if pos[a] < k {
				opts = append(opts, int32(a+1))
			}
		}
		if len(opts) == 0 {
			break
		}
		i := s.Choose(des.Point{Kind: 99, Label: "synthetic: which actor steps", Options: opts}, len(opts))
		a := int(opts[i]) - 1
		pos[a]++
		switch {
		case a == 0 && pos[a] == 1:
			a1first = t
		case a == 1 && pos[a] == 2:
			b2 = t
		case a == 1 && pos[a] == 3:
			b3 = t
		}
	}
	return b2 < a1first && a1first < b3
}

// PCT's guarantee: per execution, a depth-d bug among n actors and k steps
// is hit with probability ≥ 1/(n·k^(d−1)). Measured over ≥ 2,000 runs.
func TestPCTMeetsItsBoundOnDepth2Bug(t *testing.T) {
	const n, steps, runs = 3, 4, 2000
	k := n * steps // total steps
	pct := proptest.NewPCT(2, k)
	hits := 0
	for i := 0; i < runs; i++ {
		if synthetic(pct.Chooser(proptest.ExecSeed(1, i)), n, steps) {
			hits++
		}
	}
	rate := float64(hits) / runs
	bound := pct.Bound(n)
	t.Logf("PCT d=2 hit rate %.4f over %d runs; bound 1/(n·k) = %.4f", rate, runs, bound)
	assert.GreaterOrEqual(t, rate, bound)
	assert.InDelta(t, 1.0/36, bound, 1e-12)
}
