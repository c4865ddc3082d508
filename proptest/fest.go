package proptest

import (
	"fmt"
	"math/rand/v2"

	"github.com/wqsim/wqsim/des"
)

// Fest is a feedback-guided mutator of recorded decision logs, in the
// spirit of Fest (NSDI 2026) and of coverage-guided fuzzing: it keeps a
// corpus of schedules, runs mutants of them, and keeps a mutant only when
// it covered something new. Coverage is the per-object hand-off order: each
// time an object (des.Access.Obj) is touched by a different thread than the
// last one, the pair (object, previous thread → next thread, kind of
// access) is a feature, and so is the position of that hand-off in the
// object's history (its first, second, ... hand-off, up to 8). A schedule
// that reaches a new feature ordered racing threads in a way no kept
// schedule did.
//
// A mutant is a corpus log with 1–3 edits: a decision set to another
// option, a perturbation removed, or a decision of a past execution moved
// one position. It is replayed position by position (a decision whose kind
// or option count no longer matches takes the natural choice); past its end
// the mutant continues as a light random walk (1 in 16 decisions
// perturbed). Workload decisions past the end are drawn uniformly.
//
// Fest depends on the executions before it, so it is Sequential: Explore
// runs it serially, and a sharded run evolves one corpus per shard (shards
// are then not a partition of the unsharded run's executions).
type Fest struct {
	corpus   [][]des.Decision
	seen     map[uint64]bool
	last     *festChooser
	Kept     int // mutants kept because they grew coverage (for reports and tests)
	maxEdits int
}

// NewFest returns a mutator whose corpus starts with the natural schedule.
func NewFest() *Fest {
	return &Fest{corpus: [][]des.Decision{nil}, seen: map[uint64]bool{}, maxEdits: 3}
}

func (f *Fest) Name() string { return "fest" }

func (f *Fest) Describe() string {
	return fmt.Sprintf("strategy=fest edits=1..%d corpus=%d", f.maxEdits, len(f.corpus))
}

func (f *Fest) Chooser(seed uint64) des.Chooser {
	rng := rand.New(rand.NewPCG(seed, seed^0x8cb92ba72f3d8dd7))
	parent := f.corpus[rng.IntN(len(f.corpus))]
	c := &festChooser{rng: rng, log: f.mutate(rng, parent), last: map[int32]festLast{}}
	f.last = c
	return c
}

// Observe implements Sequential: a mutant that reached a new feature joins
// the corpus. Fest never exhausts.
func (f *Fest) Observe(log []des.Decision) bool {
	c := f.last
	if c == nil {
		return true
	}
	grew := false
	for _, h := range c.features {
		if !f.seen[h] {
			f.seen[h] = true
			grew = true
		}
	}
	if grew && len(f.corpus) < 4096 {
		f.corpus = append(f.corpus, trimZeros(log))
		f.Kept++
	}
	f.last = nil
	return true
}

func (f *Fest) mutate(rng *rand.Rand, parent []des.Decision) []des.Decision {
	child := append([]des.Decision(nil), parent...)
	edits := 1 + rng.IntN(f.maxEdits)
	for e := 0; e < edits && len(child) > 0; e++ {
		i := rng.IntN(len(child))
		d := &child[i]
		switch rng.IntN(3) {
		case 0: // another option here
			if d.N > 1 {
				d.Choice = (d.Choice + 1 + rng.Int32N(d.N-1)) % d.N
			}
		case 1: // drop a perturbation
			if nz := nonZeroIndexes(child); len(nz) > 0 {
				child[nz[rng.IntN(len(nz))]].Choice = 0
			}
		case 2: // the same perturbation one decision later
			if d.Choice != 0 && i+1 < len(child) && child[i+1].Kind == d.Kind && child[i+1].N == d.N {
				child[i+1].Choice, d.Choice = d.Choice, 0
			}
		}
	}
	return child
}

// festChooser replays a mutant and records hand-off features.
type festChooser struct {
	rng      *rand.Rand
	log      []des.Decision
	next     int
	last     map[int32]festLast // per object: last thread and hand-offs so far
	features []uint64
}

type festLast struct {
	actor    int32
	handoffs int
}

func (c *festChooser) WantsAccess() bool { return true }

func (c *festChooser) Choose(p des.Point, n int) int {
	choice := c.pick(p, n)
	if choice == 0 && isOwnPoint(p) && p.Touch.Obj != 0 {
		c.touched(p.Actor, p.Touch)
	}
	return choice
}

func (c *festChooser) pick(p des.Point, n int) int {
	if c.next < len(c.log) {
		d := c.log[c.next]
		c.next++
		if d.Kind == p.Kind && int(d.N) == n {
			return int(d.Choice)
		}
		return 0
	}
	if p.Kind != 0 && !isOwnPoint(p) && !isThreadChoice(p, n) {
		return otherChoice(c.rng, p, n)
	}
	if c.rng.Uint32N(16) != 0 {
		return 0
	}
	return 1 + c.rng.IntN(n-1)
}

// touched notes that actor performed a on its object, recording a feature
// when the object changes hands.
func (c *festChooser) touched(actor int32, a des.Access) {
	l, ok := c.last[a.Obj]
	if ok && l.actor != actor {
		l.handoffs++
		h := mix(uint64(uint32(a.Obj)), uint64(uint32(l.actor)), uint64(uint32(actor)), uint64(a.Op))
		c.features = append(c.features, h, mix(h, uint64(min(l.handoffs, 8)), 0, 1))
	}
	c.last[a.Obj] = festLast{actor: actor, handoffs: l.handoffs}
}

// mix hashes four words (splitmix64 steps), for feature keys.
func mix(a, b, c, d uint64) uint64 {
	h := uint64(0x9e3779b97f4a7c15)
	for _, w := range [4]uint64{a, b, c, d} {
		h ^= w
		h *= 0xbf58476d1ce4e5b9
		h ^= h >> 31
	}
	return h
}
