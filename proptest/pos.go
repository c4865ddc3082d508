package proptest

import (
	"fmt"
	"math/rand/v2"

	"github.com/wqsim/wqsim/des"
)

// POS is partial order sampling (Yuan, Yang and Gu, CAV 2018) on wqsim's
// decisions. Every pending operation of every thread carries a random
// priority; the highest-priority operation runs first. After an operation
// runs, the pending operations that race with it (same object, not both
// reads: des.Access.Conflicts) draw fresh priorities, and so does the next
// operation of the thread that ran. Re-drawing only the racing ones is what
// makes POS sample partial orders (the orders of racing pairs) close to
// uniformly instead of favouring schedules with many equivalent
// interleavings.
//
// Mapping: at a choice among ready threads POS picks the candidate whose
// pending operation has the highest priority. At a thread's own scheduling
// point (des.Point.Touch is what it is about to do) it lets a higher
// priority operation that may race with it go first — an early quantum end
// if that thread waits for a processor, a stall if it runs elsewhere — at
// most MaxDefer times in a row, so a thread that is in fact blocked cannot
// starve the run. An operation may race when it conflicts with this one or
// is not known: a thread's next operation is known only from its own
// scheduling point or as a ready candidate, and one running on another
// processor between its points is unknown (treating those as non-racing
// made POS blind on two processors: 0 of 3 seeds on reorder, twostage and
// wronglock). Threads the natural run showed (Profile.Actors) are pending
// from the start with an unknown first operation. Other decisions follow
// otherChoice (workload decisions uniform).
type POS struct {
	MaxDefer int
	actors   []int32
}

// Prepare implements Preparer: the natural run says which threads exist.
func (p *POS) Prepare(prof *Profile) Strategy {
	c := *p
	c.actors = prof.Actors
	return &c
}

// NewPOS returns POS with the default deferral limit.
func NewPOS() *POS { return &POS{MaxDefer: 3} }

func (p *POS) Name() string { return "pos" }

func (p *POS) Describe() string { return fmt.Sprintf("strategy=pos maxdefer=%d", p.MaxDefer) }

func (p *POS) Chooser(seed uint64) des.Chooser { return p.Rechoose(nil, seed) }

// Rechoose implements Recycler.
func (p *POS) Rechoose(old des.Chooser, seed uint64) des.Chooser {
	c, ok := old.(*posChooser)
	if !ok {
		c = &posChooser{pcg: rand.NewPCG(0, 0)}
		c.rng = rand.New(c.pcg)
	}
	c.pcg.Seed(seed, seed^0x632be59bd9b4e019)
	*c = posChooser{rng: c.rng, pcg: c.pcg, maxDefer: p.MaxDefer, threads: c.threads[:0], run: c.run.reuse()}
	for _, a := range p.actors {
		c.thread(a).known = true // pending: its first operation, unknown
	}
	return c
}

type posChooser struct {
	rng      *rand.Rand
	pcg      *rand.PCG // rng's source
	maxDefer int
	threads  []posThread // first-seen order (small: linear scans)
	run      running
}

// posThread is one actor's pending operation and its priority.
type posThread struct {
	actor  int32
	prio   uint64
	touch  des.Access
	known  bool // touch is the operation it is about to perform
	defers int
}

func (c *posChooser) WantsAccess() bool { return true }

func (c *posChooser) thread(a int32) *posThread {
	for i := range c.threads {
		if c.threads[i].actor == a {
			return &c.threads[i]
		}
	}
	c.threads = append(c.threads, posThread{actor: a, prio: c.rng.Uint64()})
	return &c.threads[len(c.threads)-1]
}

func (c *posChooser) Choose(p des.Point, n int) int {
	switch {
	case isThreadChoice(p, n):
		best, bestPrio := 0, uint64(0)
		for i, a := range p.Options {
			t := c.thread(a)
			if i < len(p.Touches) {
				t.touch, t.known = p.Touches[i], p.Touches[i].Obj != 0
			}
			if i == 0 || t.prio > bestPrio {
				best, bestPrio = i, t.prio
			}
		}
		c.run.picked(p.Options, best)
		return best
	case isOwnPoint(p):
		return c.run.own(p.Actor, c.own(p, n))
	}
	return otherChoice(c.rng, p, n)
}

// own decides at actor p.Actor's scheduling point: run its operation now,
// or let a higher-priority racing operation go first.
func (c *posChooser) own(p des.Point, n int) int {
	me := c.thread(p.Actor)
	me.touch, me.known = p.Touch, true
	if me.defers < c.maxDefer {
		for i := range c.threads {
			o := &c.threads[i]
			if o.actor != me.actor && o.prio > me.prio && (!o.known || o.touch.Conflicts(me.touch)) {
				me.defers++
				return c.run.deferTo(o.actor, n)
			}
		}
	}
	// The operation runs: racing pending operations and this thread's next
	// one get fresh priorities.
	for i := range c.threads {
		o := &c.threads[i]
		if o.actor != me.actor && o.known && o.touch.Conflicts(me.touch) {
			o.prio = c.rng.Uint64()
		}
	}
	me.prio, me.known, me.defers = c.rng.Uint64(), false, 0
	return 0
}
