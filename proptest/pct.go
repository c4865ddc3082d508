package proptest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/wqsim/wqsim/des"
)

// PCT is probabilistic concurrency testing (Burckhardt et al., ASPLOS
// 2010) mapped onto wqsim's decisions. Each actor (thread) gets a random
// distinct priority when first seen; Depth-1 change points are drawn from
// the first Steps decision points. At a choice among actors (Point.Options)
// PCT picks the highest-priority one; at an actor's own scheduling point
// (an injection point) it yields (choice 1: early quantum end) when a
// higher-priority actor was ready at the last choice; at a change point the
// current actor drops below every initial priority. Other decisions follow
// otherChoice: workload decisions are drawn uniformly, other kernel
// perturbations at the random walk's rate (PCT alone never varies them, and
// a bug that needs a particular workload would be out of its reach).
//
// For a bug of depth d among n actors and k steps it finds the bug with
// probability at least 1/(n·k^(d−1)) per execution (Bound). Prepared with
// the natural run's Profile, k is the natural run's number of decisions and
// n its number of actors, and Describe prints n, k, d and the bound.
type PCT struct {
	Depth  int
	Steps  int // k: the horizon change points are drawn from
	Actors int // n, from the natural run (0: unknown)
}

// Prepare implements Preparer: k and n come from the natural run.
func (p *PCT) Prepare(prof *Profile) Strategy {
	c := *p
	c.Steps = max(prof.Steps, 1)
	c.Actors = max(len(prof.Actors), 1)
	return &c
}

// NewPCT returns PCT with bug depth d over k steps.
func NewPCT(d, k int) *PCT { return &PCT{Depth: d, Steps: k} }

func (p *PCT) Name() string { return "pct" }

func (p *PCT) Describe() string {
	if p.Actors == 0 {
		return fmt.Sprintf("strategy=pct depth=%d steps=%d", p.Depth, p.Steps)
	}
	return fmt.Sprintf("strategy=pct d=%d k=%d n=%d bound=1/(n·k^(d−1))=%.3g", p.Depth, p.Steps, p.Actors, p.Bound(p.Actors))
}

// Bound returns PCT's guaranteed per-execution probability for n actors.
func (p *PCT) Bound(n int) float64 {
	return 1 / (float64(n) * math.Pow(float64(p.Steps), float64(p.Depth-1)))
}

func (p *PCT) Chooser(seed uint64) des.Chooser { return p.Rechoose(nil, seed) }

// Rechoose implements Recycler.
func (p *PCT) Rechoose(old des.Chooser, seed uint64) des.Chooser {
	c, ok := old.(*pctChooser)
	if !ok {
		c = &pctChooser{pcg: rand.NewPCG(0, 0)}
		c.rng = rand.New(c.pcg)
	}
	c.pcg.Seed(seed, seed^0x2545f4914f6cdd1d)
	*c = pctChooser{rng: c.rng, pcg: c.pcg, depth: p.Depth, prio: c.prio[:0], changes: c.changes[:0], ready: c.ready[:0]}
	for i := 1; i < p.Depth; i++ {
		c.changes = append(c.changes, 1+c.rng.IntN(max(p.Steps, 1)))
	}
	slices.Sort(c.changes)
	return c
}

type pctChooser struct {
	rng     *rand.Rand
	pcg     *rand.PCG // rng's source
	depth   int
	prio    []pctPrio // per actor, in first-seen order (small: linear scan)
	changes []int     // change points, ascending; those before next are spent
	next    int
	step    int
	lowered int
	ready   []int32 // the options of the last choice among actors
	last    int32
}

type pctPrio struct {
	actor int32
	prio  int
}

// priority returns actor a's priority, giving it a random one above every
// change-point level on first sight.
func (c *pctChooser) priority(a int32) int {
	for _, e := range c.prio {
		if e.actor == a {
			return e.prio
		}
	}
	// distinct random priorities: insert at a random rank above depth
	p := c.depth + 1 + c.rng.IntN(1000000)
	for c.taken(p) {
		p++
	}
	c.prio = append(c.prio, pctPrio{a, p})
	return p
}

func (c *pctChooser) taken(p int) bool {
	for _, e := range c.prio {
		if e.prio == p {
			return true
		}
	}
	return false
}

func (c *pctChooser) setPriority(a int32, p int) {
	for i := range c.prio {
		if c.prio[i].actor == a {
			c.prio[i].prio = p
		}
	}
}

// tick advances the step count and applies a change point to actor a.
func (c *pctChooser) tick(a int32) bool {
	c.step++
	hit := false
	for c.next < len(c.changes) && c.changes[c.next] == c.step {
		c.next++
		c.lowered++
		if a != 0 {
			c.priority(a)
			c.setPriority(a, c.depth-c.lowered)
			hit = true
		}
	}
	return hit
}

func (c *pctChooser) Choose(p des.Point, n int) int {
	if len(p.Options) == n {
		c.tick(c.last)
		best, bestPrio := 0, -1<<31
		for i, a := range p.Options {
			if pr := c.priority(a); pr > bestPrio {
				best, bestPrio = i, pr
			}
		}
		c.ready = append(c.ready[:0], p.Options...)
		c.last = p.Options[best]
		return best
	}
	if !isOwnPoint(p) {
		return otherChoice(c.rng, p, n)
	}
	c.last = p.Actor
	if c.tick(p.Actor) {
		return 1 // lowered: let the others run
	}
	mine := c.priority(p.Actor)
	for _, a := range c.ready {
		if a != p.Actor && c.priority(a) > mine {
			return 1
		}
	}
	return 0
}
