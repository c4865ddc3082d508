package proptest

import (
	"fmt"
	"strings"

	"github.com/wqsim/wqsim/des"
)

// Portfolio runs several strategies round-robin: execution i uses member
// i mod len(Members) with execution i's seed. No single algorithm wins on
// every bug (published comparisons on SCTBench and ConVul agree on that),
// so the default explores with a mix. Which member runs an execution
// depends only on its index, so parallel and sharded explorations stay
// exact. Members must not be Sequential.
type Portfolio struct {
	Members []Strategy
}

// Indexed is implemented by strategies whose chooser depends on the
// execution's index as well as its seed (Portfolio). Explore uses
// ChooserAt when a strategy has it.
type Indexed interface {
	ChooserAt(exec int, seed uint64) des.Chooser
	// MemberAt describes the strategy that runs execution exec.
	MemberAt(exec int) string
}

// NewPortfolio returns the default portfolio: the random walk at two
// rates, PCT at depths 3 and 2, POS, SURW and a 2-perturbation bounded
// walk.
func NewPortfolio() *Portfolio {
	return &Portfolio{Members: []Strategy{
		NewRandomWalk(), NewPCT(3, 2000), NewPOS(), NewSURW(),
		&RandomWalk{NaturalNum: 31, NaturalDen: 32}, NewPCT(2, 2000), NewBounded(2),
	}}
}

func (p *Portfolio) Name() string { return "portfolio" }

func (p *Portfolio) Describe() string {
	parts := make([]string, len(p.Members))
	for i, m := range p.Members {
		parts[i] = strings.TrimPrefix(m.Describe(), "strategy=")
	}
	return fmt.Sprintf("strategy=portfolio round-robin [%s]", strings.Join(parts, "; "))
}

// Prepare implements Preparer for the members that use the profile.
func (p *Portfolio) Prepare(prof *Profile) Strategy {
	c := &Portfolio{Members: make([]Strategy, len(p.Members))}
	for i, m := range p.Members {
		if pr, ok := m.(Preparer); ok {
			m = pr.Prepare(prof)
		}
		c.Members[i] = m
	}
	return c
}

// Chooser serves callers that know only the seed: it picks the member
// from the seed. Explore uses ChooserAt.
func (p *Portfolio) Chooser(seed uint64) des.Chooser {
	return p.Members[seed%uint64(len(p.Members))].Chooser(seed)
}

func (p *Portfolio) ChooserAt(exec int, seed uint64) des.Chooser {
	return p.member(exec).Chooser(seed)
}

func (p *Portfolio) MemberAt(exec int) string { return p.member(exec).Describe() }

func (p *Portfolio) member(exec int) Strategy { return p.Members[exec%len(p.Members)] }
