package des

import (
	"fmt"
	"math/rand/v2"
)

// PointKind is the stable numeric identity of a kind of decision point. It is
// written into decision logs and fail files, so a kind must never be
// renumbered once released.
type PointKind uint16

// Point names a place where the simulation makes a nondeterministic choice.
// Label is a short constant text for humans ("dispatcher: which idle
// processor"); Actor is the simulated thread (or other actor) on whose behalf
// the choice is made, 0 when none, for strategies that weigh actors (PCT).
//
// Options, when set, names the actor each option stands for (len(Options)
// == n): a choice among ready threads, say. Strategies that rank actors
// (PCT) use it; others ignore it. The slice is only valid during Choose.
//
// Touch and Touches say what the alternatives touch, so that strategies can
// tell racing events apart (POS, SURW): Touch is the operation Actor is
// about to perform at its own scheduling point, Touches[i] the next
// operation of Options[i] (when set, len(Touches) == len(Options)). They are
// filled only when the Sim was configured with WantAccess; otherwise they
// are zero and cost nothing. A zero Access means "unknown".
type Point struct {
	Kind    PointKind
	Label   string
	Actor   int32
	Options []int32
	Touch   Access
	Touches []Access
}

// AccessOp says how an operation touches its object.
type AccessOp uint8

// The access kinds a decision point can report.
const (
	AccessUnknown AccessOp = iota // not reported: may conflict with anything
	AccessRead                    // a plain load
	AccessWrite                   // a store or an interlocked read-modify-write
	AccessLock                    // acquire or release of a lock
	AccessSync                    // signal, reset or wait on a synchronisation object
)

var accessNames = [...]string{"unknown", "read", "write", "lock", "sync"}

func (o AccessOp) String() string {
	if int(o) < len(accessNames) {
		return accessNames[o]
	}
	return fmt.Sprintf("access(%d)", uint8(o))
}

// Access is one operation on one object. Obj numbers objects in the order
// a run first reports them (1, 2, ...), so it is stable for a given
// schedule prefix; 0 means no object is known.
type Access struct {
	Obj int32
	Op  AccessOp
}

// Conflicts reports whether two operations may race: the same object and
// not both reads. An unknown access conflicts with everything, so that
// strategies stay conservative where the model does not say.
func (a Access) Conflicts(b Access) bool {
	if a.Obj == 0 || b.Obj == 0 {
		return true
	}
	return a.Obj == b.Obj && !(a.Op == AccessRead && b.Op == AccessRead)
}

// AccessWanter is implemented by choosers that read Point.Touch and
// Point.Touches; whoever builds the Sim sets Config.WantAccess from it.
type AccessWanter interface {
	WantsAccess() bool
}

// WantsAccess reports whether c asks for access information.
func WantsAccess(c Chooser) bool {
	w, ok := c.(AccessWanter)
	return ok && w.WantsAccess()
}

// PointTie is the decision among events scheduled for the same instant, made
// only when Config.DecideTies is set. Choice 0 fires the earliest-scheduled.
var PointTie = Point{Kind: 1, Label: "des: order of simultaneous events"}

// Chooser makes decisions. Choose returns a value in [0, n) for n ≥ 2;
// choice 0 must always be the natural, unperturbed option (no injected
// preemption, FIFO order, no jitter) so that shrinking toward 0 gives the
// least-perturbed schedule. A Chooser is used by one Sim at a time.
type Chooser interface {
	Choose(p Point, n int) int
}

// Failer is implemented by choosers that can detect they were misused, such
// as a strict replay that sees a different decision than it recorded. The
// Sim checks Err after every decision and stops the run with it.
type Failer interface {
	Err() error
}

// Decision is one entry of a run's decision log.
type Decision struct {
	Kind   PointKind
	N      int32  // number of options offered
	Choice int32  // option taken, in [0, N)
	Label  string // the point's label, for humans; not compared on replay
	Actor  int32  // the point's actor (not written to fail files)
	At     Time   // when it was made (not written to fail files; a replay makes it again)
}

func (d Decision) String() string {
	return fmt.Sprintf("%d/%d %q choice %d", d.Kind, d.N, d.Label, d.Choice)
}

// Natural always returns 0: the unperturbed schedule.
type Natural struct{}

// Choose implements Chooser.
func (Natural) Choose(Point, int) int { return 0 }

// Seeded draws decisions from its own PCG generator, never the global
// source. With probability NaturalNum/NaturalDen it returns 0; otherwise it
// picks uniformly from [0, n). The zero ratio means "always uniform".
type Seeded struct {
	rng                    *rand.Rand
	pcg                    *rand.PCG // rng's source, for Reseed
	NaturalNum, NaturalDen uint32
}

// NewSeeded returns a uniform chooser seeded with seed.
func NewSeeded(seed uint64) *Seeded {
	pcg := rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)
	return &Seeded{rng: rand.New(pcg), pcg: pcg}
}

// Reseed makes s draw exactly what NewSeeded(seed) would, keeping its
// generator (an explorer reuses one chooser for many executions instead of
// allocating one per execution). The natural ratio is left as it is.
func (s *Seeded) Reseed(seed uint64) {
	s.pcg.Seed(seed, seed^0x9e3779b97f4a7c15)
}

// NewSeededBiased returns a chooser that keeps the natural choice with
// probability num/den and otherwise picks uniformly among the perturbations
// 1..n-1. Probabilities are integer ratios so that runs are exact.
func NewSeededBiased(seed uint64, num, den uint32) *Seeded {
	s := NewSeeded(seed)
	s.NaturalNum, s.NaturalDen = num, den
	return s
}

// Choose implements Chooser.
func (s *Seeded) Choose(_ Point, n int) int {
	if s.NaturalDen == 0 {
		return s.rng.IntN(n)
	}
	if s.rng.Uint32N(s.NaturalDen) < s.NaturalNum {
		return 0
	}
	return 1 + s.rng.IntN(n-1)
}

// Replay replays a recorded decision log strictly: each Choose must ask for
// the same kind with the same number of options as the log recorded, or the
// replay fails with a *ReplayMismatch naming both sides. Past the end of the
// log it returns 0 (the natural choice), which is how shrunk logs with their
// trailing zeros removed replay.
type Replay struct {
	log  []Decision
	next int
	err  error
}

// NewReplay returns a strict replay of log.
func NewReplay(log []Decision) *Replay { return &Replay{log: log} }

// Choose implements Chooser.
func (r *Replay) Choose(p Point, n int) int {
	if r.err != nil || r.next >= len(r.log) {
		return 0
	}
	want := r.log[r.next]
	if want.Kind != p.Kind || int(want.N) != n || want.Choice < 0 || want.Choice >= want.N {
		r.err = &ReplayMismatch{Index: r.next, Logged: want, Asked: p, AskedN: n}
		return 0
	}
	r.next++
	return int(want.Choice)
}

// Err implements Failer.
func (r *Replay) Err() error { return r.err }

// Unused returns how many logged decisions with a non-zero choice were never
// asked for; a faithful replay of a complete log leaves none.
func (r *Replay) Unused() int {
	k := 0
	for _, d := range r.log[r.next:] {
		if d.Choice != 0 {
			k++
		}
	}
	return k
}

// ReplayMismatch reports that a replayed run diverged from its log.
type ReplayMismatch struct {
	Index  int      // position in the log
	Logged Decision // what the log holds there
	Asked  Point    // what the run asked for
	AskedN int      // with how many options
}

func (m *ReplayMismatch) Error() string {
	return fmt.Sprintf("replay diverged at decision %d: the log has kind %d %q with %d options (choice %d), "+
		"the run asked kind %d %q with %d options; the scenario or the simulator changed since the log was recorded",
		m.Index, m.Logged.Kind, m.Logged.Label, m.Logged.N, m.Logged.Choice, m.Asked.Kind, m.Asked.Label, m.AskedN)
}
