package proptest

import (
	"math"
	"math/bits"
	"slices"

	"github.com/wqsim/wqsim/model"
)

// coverage collects what one worker's executions reached: the distinct
// trace hashes (schedule fingerprints) with the lowest execution index of
// each and, per mark, the lowest execution index that hit it. Indexes are
// kept so that a parallel run can count exactly the executions a serial
// run would have run (those before the first failure).
//
// Its memory is bounded whatever the number of executions: at most
// ExactFingerprints hashes are kept exactly; a worker that sees more starts
// a HyperLogLog sketch (hll, filled from the hashes kept so far) that
// counts beyond that.
type coverage struct {
	first     map[uint64]int // hash -> lowest execution index, at most ExactFingerprints
	full      int            // lowest index whose new hash did not fit in first; -1 if none
	hll       *hll           // nil until first is full
	marks     map[string]int
	sometimes []string
}

// ExactFingerprints is how many distinct schedules an exploration counts
// exactly (each worker keeps at most this many trace hashes, a few MB);
// beyond it Report.Fingerprints is an estimate.
const ExactFingerprints = 1 << 16

func newCoverage() *coverage {
	return &coverage{first: map[uint64]int{}, full: -1, marks: map[string]int{}}
}

func (c *coverage) add(i int, r model.Result) {
	c.addHash(i, r.Outcome.Hash)
	for _, m := range r.Marks {
		if first, ok := c.marks[m]; !ok || i < first {
			c.marks[m] = i
		}
	}
	for _, m := range r.Sometimes {
		if !slices.Contains(c.sometimes, m) {
			c.sometimes = append(c.sometimes, m)
		}
	}
}

func (c *coverage) addHash(i int, h uint64) {
	if c.hll != nil {
		c.hll.add(i, h)
	}
	switch first, ok := c.first[h]; {
	case ok && i < first:
		c.first[h] = i
	case ok:
	case len(c.first) < ExactFingerprints:
		c.first[h] = i
	default:
		if c.hll == nil {
			// Only a hash's lowest index matters to the sketch (a later
			// execution with the same hash adds nothing), so the map
			// holds all it needs to start.
			c.hll = new(hll)
			for h, first := range c.first {
				c.hll.add(first, h)
			}
			c.hll.add(i, h)
		}
		if c.full < 0 || i < c.full {
			c.full = i
		}
	}
}

// registersBelow raises regs to the sketch of this worker's executions
// < upTo: its hll's, or, if it never needed one, the same computed from
// its map.
func (c *coverage) registersBelow(upTo int, regs *[hllRegisters]uint8) {
	if c.hll != nil {
		c.hll.registersBelow(upTo, regs)
		return
	}
	for h, first := range c.first {
		if first < upTo {
			r, rank := hllSlot(h)
			regs[r] = max(regs[r], rank)
		}
	}
}

// fillCoverage sets the report's coverage from the workers' collections,
// counting only executions with index < upTo. The result depends only on
// the (index, hash) pairs of those executions, not on how they were split
// among workers: parallel and serial explorations report the same.
func fillCoverage(rep *Report, upTo int, parts ...*coverage) {
	rep.Fingerprints, rep.FingerprintsEstimated = countFingerprints(upTo, parts)
	reached := map[string]bool{}
	var declared []string
	for _, c := range parts {
		for m, first := range c.marks {
			if first < upTo {
				reached[m] = true
			}
		}
		for _, m := range c.sometimes {
			if !slices.Contains(declared, m) {
				declared = append(declared, m)
			}
		}
	}
	rep.Missed = nil
	for _, m := range declared {
		if !reached[m] {
			rep.Missed = append(rep.Missed, m)
		}
	}
	slices.Sort(rep.Missed)
}

// countFingerprints counts the distinct hashes of executions < upTo:
// exactly when the workers kept every one of them and there are at most
// ExactFingerprints, else by the HyperLogLog estimate.
//
// Why parallel equals serial: a worker runs its executions in increasing
// index order, so it drops a hash (its map full) only after it has seen
// more than ExactFingerprints distinct hashes among executions with lower
// indexes — then so has any other split of the same executions, including
// a serial run. So if every worker kept every hash below upTo, the union is
// exact, and it has more than ExactFingerprints hashes exactly when a
// serial run would have overflowed; the estimate is a function of the
// merged registers, which is the same for any split.
func countFingerprints(upTo int, parts []*coverage) (n int, estimated bool) {
	exact := true
	for _, c := range parts {
		if c.full >= 0 && c.full < upTo {
			exact = false
		}
	}
	if exact {
		if n, ok := unionBelow(upTo, parts); ok {
			return n, false
		}
	}
	var regs [hllRegisters]uint8
	for _, c := range parts {
		c.registersBelow(upTo, &regs)
	}
	return hllEstimate(&regs), true
}

// unionBelow counts the distinct hashes the workers kept for executions
// < upTo; false once there are more than ExactFingerprints (it stops
// there, so the union costs no more memory than one worker's map).
func unionBelow(upTo int, parts []*coverage) (int, bool) {
	seen := map[uint64]bool{}
	for _, c := range parts {
		for h, first := range c.first {
			if first < upTo {
				seen[h] = true
				if len(seen) > ExactFingerprints {
					return 0, false
				}
			}
		}
	}
	return len(seen), true
}

// hll is a HyperLogLog sketch (Flajolet, Fusy, Gandouet and Meunier, 2007)
// of the trace hashes, with hllRegisters registers: relative standard error
// 1.04/√hllRegisters ≈ 1.6 %. A plain sketch keeps one maximum per
// register and cannot forget the executions past the first failure, which
// a parallel run may have run and a serial one would not; so each register
// keeps its record highs in execution order instead — the (index, rank)
// pairs that no pair with a lower index and at least the same rank
// dominates. The register's value for executions < upTo is then the
// highest rank recorded below upTo, for any upTo. A register holds at most
// 65 − hllBits such pairs (one per possible rank: ranks only rise along
// the list), so the sketch is bounded (in practice ~4 pairs per register,
// TestFingerprintsMemoryBounded).
type hll struct {
	highs [hllRegisters][]hllHigh
}

// hllHigh is one record high of a register.
type hllHigh struct {
	exec int
	rank uint8
}

const (
	hllBits      = 12
	hllRegisters = 1 << hllBits
)

// hllSlot returns hash h's register and rank (1 + the leading zeros of
// the bits below the register index, at most 65 − hllBits).
func hllSlot(h uint64) (int, uint8) {
	// The trace hash is already well mixed; mix once more so that the
	// register index and the rank use independent bits even if it is not.
	h = mix64(h)
	return int(h >> (64 - hllBits)), uint8(bits.LeadingZeros64(h<<hllBits|1<<(hllBits-1)) + 1)
}

func (s *hll) add(i int, h uint64) {
	r, rank := hllSlot(h)
	highs := s.highs[r]
	// Dominated: an earlier (or same) execution already reached this rank.
	for _, p := range highs {
		if p.exec <= i && p.rank >= rank {
			return
		}
	}
	// Drop the pairs the new one dominates, keep the list in index order.
	keep := highs[:0]
	for _, p := range highs {
		if !(i <= p.exec && rank >= p.rank) {
			keep = append(keep, p)
		}
	}
	at, _ := slices.BinarySearchFunc(keep, i, func(p hllHigh, i int) int { return p.exec - i })
	s.highs[r] = slices.Insert(keep, at, hllHigh{i, rank})
}

// registersBelow raises regs to this sketch's register values over the
// executions < upTo.
func (s *hll) registersBelow(upTo int, regs *[hllRegisters]uint8) {
	for r, highs := range s.highs {
		for _, p := range highs {
			if p.exec < upTo && p.rank > regs[r] {
				regs[r] = p.rank
			}
		}
	}
}

// hllEstimate is the HyperLogLog cardinality estimate with the original
// paper's small-range correction (linear counting while it is below
// 2.5·m); hashes are 64-bit, so no large-range correction is needed.
func hllEstimate(regs *[hllRegisters]uint8) int {
	const m = float64(hllRegisters)
	alpha := 0.7213 / (1 + 1.079/m)
	sum, zeros := 0.0, 0
	for _, v := range regs {
		sum += math.Ldexp(1, -int(v))
		if v == 0 {
			zeros++
		}
	}
	e := alpha * m * m / sum
	if e <= 2.5*m && zeros > 0 {
		e = m * math.Log(m/float64(zeros))
	}
	return int(math.Round(e))
}

// mix64 is splitmix64's finaliser.
func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
