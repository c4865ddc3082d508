package proptest

import (
	"fmt"
	"strings"

	"github.com/wqsim/wqsim/des"
)

// Strategy hands out one chooser per execution. Execution i of an
// exploration with base seed S gets seed ExecSeed(S, i); a strategy must
// derive everything from that seed (or, for exhaustive search, from the
// executions before it) so that runs are reproducible.
type Strategy interface {
	Name() string
	// Chooser returns the chooser for the execution with this seed.
	Chooser(seed uint64) des.Chooser
	// Describe lists the strategy's seed-derived options, printed first.
	Describe() string
}

// Recycler is implemented by strategies whose choosers can be reused from
// one execution to the next: Rechoose(old, seed) behaves exactly as
// Chooser(seed) would, but resets old, a chooser this strategy returned for
// an execution that has ended, instead of allocating one (old may be nil or
// another strategy's: then it allocates). An exploration worker keeps one
// chooser per strategy, so exploring allocates none per execution.
type Recycler interface {
	Rechoose(old des.Chooser, seed uint64) des.Chooser
}

// Sequential marks strategies whose executions depend on earlier ones
// (exhaustive search): Explore runs them serially.
type Sequential interface {
	// Observe is told the decision log of each finished execution, in
	// order; it returns false when the search space is exhausted.
	Observe(log []des.Decision) bool
}

// ExecSeed derives the seed of execution i from the base seed (splitmix64),
// so sharded and parallel runs agree on every execution's seed.
func ExecSeed(base uint64, i int) uint64 {
	z := base + uint64(i+1)*0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// StrategyNames lists the names NewStrategy accepts; the first is the
// default.
var StrategyNames = []string{"portfolio", "random", "pct", "pos", "surw", "fest", "bounded", "exhaustive"}

// NewStrategy builds a strategy by name with default parameters; "" is the
// default, the portfolio.
func NewStrategy(name string) (Strategy, error) {
	switch name {
	case "portfolio", "":
		return NewPortfolio(), nil
	case "random":
		return NewRandomWalk(), nil
	case "pos":
		return NewPOS(), nil
	case "surw":
		return NewSURW(), nil
	case "fest":
		return NewFest(), nil
	case "pct":
		return NewPCT(3, 2000), nil
	case "bounded":
		return NewBounded(2), nil
	case "exhaustive":
		return NewExhaustive(100_000), nil
	}
	return nil, fmt.Errorf("unknown strategy %q; choose one of %s", name, strings.Join(StrategyNames, ", "))
}
