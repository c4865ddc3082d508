package proptest

import (
	"fmt"
	"math/rand/v2"

	"github.com/wqsim/wqsim/des"
)

// SURW is the selectively uniform random walk (Zhao et al., ASPLOS 2025) on
// wqsim's decisions. A plain random walk favours interleavings that switch
// threads early; SURW samples the interleavings of the *interesting* events
// — operations on objects that two threads share and at least one writes —
// uniformly, by letting a thread's interesting event go next with
// probability proportional to how many interesting events that thread has
// left. The counts come from the natural run (Profile.Events), which here is
// one execution and exact rather than an estimate from profiling.
//
// Mapping: when a thread reaches an interesting operation and no thread is
// the current target, a target is drawn with weights = events left; the
// target's interesting operation runs (its count drops), any other thread
// reaching an interesting operation first defers (early quantum end if the
// target waits for a processor, else a stall), at most MaxDefer times
// before the target is redrawn, so a blocked target cannot starve the run.
// Operations that are not interesting run at once (no switch), and a choice
// among ready threads is uniform among the candidates that are not held
// back. Other decisions follow otherChoice (workload decisions uniform).
// Without a Profile (Prepare not called) every thread weighs 1.
type SURW struct {
	MaxDefer int
	prof     *Profile
}

// NewSURW returns SURW with the default deferral limit.
func NewSURW() *SURW { return &SURW{MaxDefer: 8} }

func (s *SURW) Name() string { return "surw" }

func (s *SURW) Describe() string {
	if s.prof == nil {
		return fmt.Sprintf("strategy=surw maxdefer=%d", s.MaxDefer)
	}
	total := 0
	for _, n := range s.prof.Events {
		total += n
	}
	return fmt.Sprintf("strategy=surw maxdefer=%d shared-objects=%d interesting-events=%d", s.MaxDefer, len(s.prof.Shared), total)
}

// Prepare implements Preparer: the weights come from the natural run.
func (s *SURW) Prepare(p *Profile) Strategy {
	c := *s
	c.prof = p
	return &c
}

func (s *SURW) Chooser(seed uint64) des.Chooser { return s.Rechoose(nil, seed) }

// Rechoose implements Recycler.
func (s *SURW) Rechoose(old des.Chooser, seed uint64) des.Chooser {
	c, ok := old.(*surwChooser)
	if !ok {
		c = &surwChooser{pcg: rand.NewPCG(0, 0)}
		c.rng = rand.New(c.pcg)
	}
	c.pcg.Seed(seed, seed^0x3c6ef372fe94f82b)
	*c = surwChooser{rng: c.rng, pcg: c.pcg, maxDefer: s.MaxDefer, prof: s.prof,
		left: c.left[:0], run: c.run.reuse(), allowed: c.allowed[:0]}
	if s.prof != nil {
		for _, a := range s.prof.Actors {
			c.left = append(c.left, surwCount{a, s.prof.Events[a]})
		}
	}
	return c
}

type surwChooser struct {
	rng      *rand.Rand
	pcg      *rand.PCG // rng's source
	maxDefer int
	prof     *Profile
	left     []surwCount // interesting events left, per actor
	target   int32       // whose interesting event goes next; 0: none drawn
	defers   int
	run      running
	allowed  []int
}

type surwCount struct {
	actor int32
	n     int
}

func (c *surwChooser) WantsAccess() bool { return true }

func (c *surwChooser) interesting(a des.Access) bool {
	if c.prof == nil {
		return a.Obj != 0 && a.Op != des.AccessRead
	}
	return c.prof.Interesting(a)
}

func (c *surwChooser) count(a int32) *surwCount {
	for i := range c.left {
		if c.left[i].actor == a {
			return &c.left[i]
		}
	}
	c.left = append(c.left, surwCount{a, 0})
	return &c.left[len(c.left)-1]
}

func (c *surwChooser) Choose(p des.Point, n int) int {
	switch {
	case isThreadChoice(p, n):
		c.allowed = c.allowed[:0]
		for i, a := range p.Options {
			held := i < len(p.Touches) && c.target != 0 && a != c.target && c.interesting(p.Touches[i])
			if !held {
				c.allowed = append(c.allowed, i)
			}
		}
		pick := 0
		if len(c.allowed) > 0 {
			pick = c.allowed[c.rng.IntN(len(c.allowed))]
		}
		c.run.picked(p.Options, pick)
		return pick
	case isOwnPoint(p):
		return c.run.own(p.Actor, c.own(p, n))
	}
	return otherChoice(c.rng, p, n)
}

func (c *surwChooser) own(p des.Point, n int) int {
	if !c.interesting(p.Touch) {
		return 0
	}
	me := c.count(p.Actor)
	if me.n == 0 {
		me.n = 1 // more interesting events than the natural run had
	}
	if c.target == 0 {
		c.target = c.draw()
	}
	if c.target != p.Actor && c.defers < c.maxDefer {
		c.defers++
		return c.run.deferTo(c.target, n)
	}
	me.n--
	c.target, c.defers = 0, 0
	return 0
}

// draw picks an actor with probability proportional to its events left.
func (c *surwChooser) draw() int32 {
	total := 0
	for _, e := range c.left {
		total += e.n
	}
	r := c.rng.IntN(total) // total ≥ 1: the caller's own count is ≥ 1
	for _, e := range c.left {
		if r < e.n {
			return e.actor
		}
		r -= e.n
	}
	return 0
}
