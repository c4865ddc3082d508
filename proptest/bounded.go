package proptest

import (
	"fmt"
	"math/rand/v2"

	"github.com/wqsim/wqsim/des"
)

// Bounded is a preemption-bounded walk: each execution makes at most Bound
// non-zero decisions, placed at random among the decision points (with
// probability 1/Spread each). Small bounds find most real races (they need
// few perturbations) and keep schedules easy to read.
type Bounded struct {
	Bound  int
	Spread uint32
}

// NewBounded returns a walk with at most bound perturbations.
func NewBounded(bound int) *Bounded { return &Bounded{Bound: bound, Spread: 16} }

func (b *Bounded) Name() string { return "bounded" }

func (b *Bounded) Describe() string {
	return fmt.Sprintf("strategy=bounded bound=%d spread=1/%d", b.Bound, b.Spread)
}

func (b *Bounded) Chooser(seed uint64) des.Chooser { return b.Rechoose(nil, seed) }

// Rechoose implements Recycler.
func (b *Bounded) Rechoose(old des.Chooser, seed uint64) des.Chooser {
	c, ok := old.(*boundedChooser)
	if !ok {
		c = &boundedChooser{pcg: rand.NewPCG(0, 0)}
		c.rng = rand.New(c.pcg)
	}
	c.pcg.Seed(seed, seed^0x5851f42d4c957f2d)
	c.left, c.spread = b.Bound, b.Spread
	return c
}

type boundedChooser struct {
	rng    *rand.Rand
	pcg    *rand.PCG // rng's source
	left   int
	spread uint32
}

func (c *boundedChooser) Choose(_ des.Point, n int) int {
	if c.left == 0 || c.rng.Uint32N(c.spread) != 0 {
		return 0
	}
	c.left--
	return 1 + c.rng.IntN(n-1)
}
