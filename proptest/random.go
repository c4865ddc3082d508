package proptest

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
)

// RandomWalk perturbs each decision independently: it keeps the natural
// choice with probability NaturalNum/NaturalDen and otherwise picks a
// perturbation uniformly. The bias keeps most of each schedule natural,
// which finds races that need a few well-placed perturbations.
type RandomWalk struct {
	NaturalNum, NaturalDen uint32
}

// NewRandomWalk returns the default walk: 7 decisions in 8 stay natural.
func NewRandomWalk() *RandomWalk { return &RandomWalk{NaturalNum: 7, NaturalDen: 8} }

func (r *RandomWalk) Name() string { return "random" }

func (r *RandomWalk) Describe() string {
	return fmt.Sprintf("strategy=random natural=%d/%d", r.NaturalNum, r.NaturalDen)
}

func (r *RandomWalk) Chooser(seed uint64) des.Chooser {
	return des.NewSeededBiased(seed, r.NaturalNum, r.NaturalDen)
}

// Rechoose implements Recycler.
func (r *RandomWalk) Rechoose(old des.Chooser, seed uint64) des.Chooser {
	c, ok := old.(*des.Seeded)
	if !ok {
		return r.Chooser(seed)
	}
	c.Reseed(seed)
	c.NaturalNum, c.NaturalDen = r.NaturalNum, r.NaturalDen
	return c
}
