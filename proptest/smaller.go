package proptest

import (
	"math/rand/v2"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/model"
)

// smallTarget is the number of perturbations a shrunk schedule should not
// exceed: most real races need one or two preemptions (the SCTBench study),
// and a reader can follow three.
const smallTarget = 3

// smaller looks for a schedule with fewer perturbations than cur, a
// 1-minimal log that still has more than smallTarget. 1-minimality is a
// local optimum: no single perturbation of cur can go, but a different,
// smaller set may fail the same way (a random walk reaches a bug through
// many small steps where one preemption at the right point would do). It
// tries, within the shrinker's budget:
//
//   - every subset of two or three of cur's perturbations, alone
//     (positional, then anchored to their actors' points);
//   - sparse schedules of one to smallTarget perturbations at random
//     points of the failing run, half of them near cur's perturbations and
//     half anywhere, seeded from the execution's seed (so the result is the
//     same every time).
//
// A smaller failing schedule is shrunk again to 1-minimal. It returns the
// best log, its result, and whether that log is 1-minimal.
func (s *shrinker) smaller(anch *shrinker, cur []des.Decision, best model.Result, seed uint64) ([]des.Decision, model.Result, bool) {
	for nonZero(cur) > smallTarget && !s.spent() {
		next, r, ok := s.subsetOf(anch, cur)
		if !ok {
			next, r, ok = s.sparse(cur, len(best.Outcome.Decisions), seed)
		}
		if !ok {
			break
		}
		var done bool
		cur, best, done = s.oneMinimal(next, r)
		if !done {
			return cur, best, false
		}
	}
	return cur, best, true
}

// subsetOf tries each subset of two, then three, of cur's perturbations on
// their own and returns the first that fails the same way.
func (s *shrinker) subsetOf(anch *shrinker, cur []des.Decision) ([]des.Decision, model.Result, bool) {
	idx := nonZeroIndexes(cur)
	for size := 2; size <= smallTarget && size < len(idx); size++ {
		pick := make([]int, size)
		for i := range pick {
			pick[i] = i
		}
		for {
			if s.spent() {
				return nil, model.Result{}, false
			}
			only := zeroAt(cur, idx)
			for _, p := range pick {
				only[idx[p]].Choice = cur[idx[p]].Choice
			}
			if r, ok := s.attempt(only); ok {
				return trimZeros(r.Outcome.Decisions), r, true
			}
			if r, ok := anch.attempt(only); ok {
				return trimZeros(r.Outcome.Decisions), r, true
			}
			if !nextCombination(pick, len(idx)) {
				break
			}
		}
	}
	return nil, model.Result{}, false
}

// nextCombination advances pick (ascending indexes into n items) to the
// next combination in lexicographic order; false after the last.
func nextCombination(pick []int, n int) bool {
	k := len(pick)
	i := k - 1
	for i >= 0 && pick[i] == n-k+i {
		i--
	}
	if i < 0 {
		return false
	}
	pick[i]++
	for j := i + 1; j < k; j++ {
		pick[j] = pick[j-1] + 1
	}
	return true
}

// sparse runs random schedules of one to smallTarget perturbations over a
// run of about length decisions until one fails the same way with fewer
// perturbations than cur, or the budget is spent.
func (s *shrinker) sparse(cur []des.Decision, length int, seed uint64) ([]des.Decision, model.Result, bool) {
	idx := nonZeroIndexes(cur)
	if length == 0 || len(idx) == 0 {
		return nil, model.Result{}, false
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for try := 0; !s.spent(); try++ {
		c := &sparseChooser{at: map[int]uint32{}}
		for k := 1 + try%smallTarget; len(c.at) < k; {
			pos := rng.IntN(length)
			if try%2 == 0 { // near a perturbation the failing run made
				pos = max(0, idx[rng.IntN(len(idx))]+rng.IntN(17)-8)
			}
			c.at[pos] = rng.Uint32()
		}
		*s.runs++
		r, err := s.runWith(c)
		if err != nil || nonZero(r.Outcome.Decisions) >= len(idx) {
			continue // not smaller: judge would record it as the best so far
		}
		if r, ok := s.judge(r, err); ok {
			return trimZeros(r.Outcome.Decisions), r, true
		}
	}
	return nil, model.Result{}, false
}

// sparseChooser takes choice 0 except at the decision points it was given,
// where it takes a non-zero option chosen by the point's rank.
type sparseChooser struct {
	at map[int]uint32 // decision index → rank of the option to take
	i  int
}

func (c *sparseChooser) Choose(_ des.Point, n int) int {
	rank, ok := c.at[c.i]
	c.i++
	if !ok || n < 2 {
		return 0
	}
	return 1 + int(rank%uint32(n-1))
}
