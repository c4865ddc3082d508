package proptest

import (
	"math/rand/v2"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
)

// otherChoice answers, for strategies that schedule threads their own way
// (PCT, POS, SURW), the decisions that are not thread scheduling. Workload
// decisions (which IRP to cancel, when to unload) are the test's input: they
// are drawn uniformly over every option, so no strategy keeps testing only
// the plain workload. Kernel perturbations other than scheduling (an
// allocation failing, compute jitter, which idle processor, the order of
// simultaneous events) are taken with probability 1/8, uniformly among the
// perturbations, as the random walk does.
func otherChoice(rng *rand.Rand, p des.Point, n int) int {
	if p.Kind == model.PointWorkload {
		return rng.IntN(n)
	}
	if rng.Uint32N(8) != 0 {
		return 0
	}
	return 1 + rng.IntN(n-1)
}

// isThreadChoice reports whether p is a choice among actors (ready
// threads) that a priority-based strategy ranks.
func isThreadChoice(p des.Point, n int) bool { return len(p.Options) == n }

// isOwnPoint reports whether p is a running thread's own scheduling point
// (continue, end the quantum early, or stall).
func isOwnPoint(p des.Point) bool { return p.Kind == kernel.PointInject && p.Actor != 0 }

// running tracks which actors hold a processor, as far as the decisions
// show: an actor that went on at its own scheduling point, or was picked
// among the ready threads, runs; one that ended its quantum early, or was
// a candidate not picked, waits.
type running struct {
	actors []int32
	on     []bool
}

// reuse returns r emptied, keeping its storage.
func (r running) reuse() running { return running{actors: r.actors[:0], on: r.on[:0]} }

func (r *running) set(a int32, on bool) {
	for i, x := range r.actors {
		if x == a {
			r.on[i] = on
			return
		}
	}
	r.actors = append(r.actors, a)
	r.on = append(r.on, on)
}

func (r *running) is(a int32) bool {
	for i, x := range r.actors {
		if x == a {
			return r.on[i]
		}
	}
	return false
}

// picked records a choice among ready threads.
func (r *running) picked(options []int32, chosen int) {
	for i, a := range options {
		r.set(a, i == chosen)
	}
}

// own records a thread's own scheduling point and passes its choice on.
func (r *running) own(a int32, choice int) int {
	r.set(a, choice != 1)
	return choice
}

// deferTo is how a thread's own scheduling point lets actor other go
// first: a stall that holds this processor while the others run when
// other is running elsewhere, else an early quantum end so that other, if
// it is ready, takes this processor.
func (r *running) deferTo(other int32, n int) int {
	if r.is(other) && n > 2 {
		return 2
	}
	return 1
}
