package proptest

import (
	"context"
	"slices"
	"time"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
)

// Profile is what the natural run (every decision at choice 0) says about a
// scenario variant. The natural run is one execution and exact here (no
// sampling, no instrumentation error), so strategies that need an estimate
// of the program (PCT's n and k, SURW's event counts) take it from there.
type Profile struct {
	Steps  int     // decisions the natural run made: PCT's k
	Actors []int32 // actors that reached a scheduling point, first-seen order: PCT's n
	// Shared lists the objects two or more actors touched, not only by
	// reads: the objects races are about (sorted).
	Shared []int32
	// Events counts, per actor, its operations on Shared objects.
	Events map[int32]int
}

// Preparer is implemented by strategies that use the natural run's
// Profile. Explore calls Prepare once, before the first execution, and
// explores with the strategy it returns (the receiver is left unchanged,
// so one strategy value can serve several explorations).
type Preparer interface {
	Prepare(p *Profile) Strategy
}

// Interesting reports whether a is an operation on a shared object.
func (p *Profile) Interesting(a des.Access) bool {
	_, ok := slices.BinarySearch(p.Shared, a.Obj)
	return a.Obj != 0 && ok
}

// NaturalProfile runs variant once with every decision natural and
// access reports on, and summarises it.
func NaturalProfile(s *model.Scenario, variant string, seed uint64) (*Profile, error) {
	return naturalProfile(context.Background(), 0, s, variant, seed)
}

// naturalProfile is NaturalProfile under the watchdog: a natural run that
// gets stuck yields an empty profile (the strategies fall back to their
// defaults), and the exploration's own watchdog reports the stuck run.
func naturalProfile(ctx context.Context, limit time.Duration, s *model.Scenario, variant string, seed uint64) (*Profile, error) {
	rec := &profiler{}
	r, err := RunWatched(ctx, limit, s, variant, model.RunConfig{Seed: seed, Chooser: rec})
	if err != nil {
		return nil, err
	}
	if _, stuck := r.Outcome.Err.(*StuckError); stuck {
		return &Profile{Events: map[int32]int{}}, nil // rec may still be written by the abandoned run
	}
	return rec.summarise(len(r.Outcome.Decisions)), nil
}

// profiler takes every natural choice and records who touched what.
type profiler struct {
	actors []int32
	ops    []actorOp
}

type actorOp struct {
	actor int32
	touch des.Access
}

func (p *profiler) WantsAccess() bool { return true }

func (p *profiler) Choose(pt des.Point, _ int) int {
	if pt.Kind == kernel.PointInject && pt.Actor != 0 {
		if !slices.Contains(p.actors, pt.Actor) {
			p.actors = append(p.actors, pt.Actor)
		}
		if pt.Touch.Obj != 0 {
			p.ops = append(p.ops, actorOp{pt.Actor, pt.Touch})
		}
	}
	return 0
}

func (p *profiler) summarise(steps int) *Profile {
	type objInfo struct {
		first   int32
		many    bool // a second actor touched it
		written bool
	}
	objs := map[int32]*objInfo{}
	for _, op := range p.ops {
		o := objs[op.touch.Obj]
		if o == nil {
			o = &objInfo{first: op.actor}
			objs[op.touch.Obj] = o
		}
		o.many = o.many || o.first != op.actor
		o.written = o.written || op.touch.Op != des.AccessRead
	}
	prof := &Profile{Steps: steps, Actors: p.actors, Events: map[int32]int{}}
	for id, o := range objs {
		if o.many && o.written {
			prof.Shared = append(prof.Shared, id)
		}
	}
	slices.Sort(prof.Shared)
	for _, op := range p.ops {
		if prof.Interesting(op.touch) {
			prof.Events[op.actor]++
		}
	}
	return prof
}
