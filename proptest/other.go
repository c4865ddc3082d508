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

// deferChoice is how a thread's own scheduling point lets another actor go
// first: an early quantum end when that actor is waiting for a processor
// (it was a candidate at the last ready-thread choice), else a stall that
// holds this processor while the others run.
func deferChoice(ready []int32, other int32, n int) int {
	for _, a := range ready {
		if a == other {
			return 1
		}
	}
	if n > 2 {
		return 2
	}
	return 1
}
