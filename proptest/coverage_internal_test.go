package proptest

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stream is a synthetic exploration: execution i has trace hash
// hashes[i]; about one execution in four repeats an earlier schedule.
func stream(n int, seed uint64) []uint64 {
	out := make([]uint64, n)
	for i := range out {
		z := mix64(seed + uint64(i)*0x9e3779b97f4a7c15)
		if i > 0 && z%4 == 0 {
			out[i] = out[z%uint64(i)] // an earlier schedule again
		} else {
			out[i] = z
		}
	}
	return out
}

// split feeds the stream to w workers the way an exploration does: each
// takes the next index when it is free, so each sees increasing indexes;
// which worker gets which index follows a pseudo-random pattern.
func split(hashes []uint64, w int, seed uint64) []*coverage {
	parts := make([]*coverage, w)
	for i := range parts {
		parts[i] = newCoverage()
	}
	for i, h := range hashes {
		parts[mix64(seed^uint64(i))%uint64(w)].addHash(i, h)
	}
	return parts
}

func distinctBelow(hashes []uint64, upTo int) int {
	seen := map[uint64]bool{}
	for _, h := range hashes[:upTo] {
		seen[h] = true
	}
	return len(seen)
}

// TestFingerprintsParallelEqualsSerial: exact or estimated, the count of
// distinct schedules below any cut-off is the same however the executions
// were split among workers, below and above the exact cap.
func TestFingerprintsParallelEqualsSerial(t *testing.T) {
	n := ExactFingerprints*2 + 5000
	if testing.Short() {
		n = ExactFingerprints + 20000
	}
	hashes := stream(n, 7)
	serial := split(hashes, 1, 0)
	for _, upTo := range []int{1, 1000, ExactFingerprints, ExactFingerprints + 10000, n} {
		want, wantEst := countFingerprints(upTo, serial)
		d := distinctBelow(hashes, upTo)
		if d <= ExactFingerprints {
			assert.False(t, wantEst, "upTo %d: %d distinct is under the cap", upTo, d)
			assert.Equal(t, d, want, "upTo %d: exact count", upTo)
		} else {
			assert.True(t, wantEst, "upTo %d: %d distinct is over the cap", upTo, d)
		}
		for _, w := range []int{2, 3, 8} {
			got, gotEst := countFingerprints(upTo, split(hashes, w, uint64(w)))
			assert.Equal(t, want, got, "upTo %d, %d workers", upTo, w)
			assert.Equal(t, wantEst, gotEst, "upTo %d, %d workers", upTo, w)
		}
	}
}

// TestFingerprintsMemoryBounded: however many distinct schedules, a worker
// keeps at most ExactFingerprints hashes and its sketch at most one record
// per possible rank per register.
func TestFingerprintsMemoryBounded(t *testing.T) {
	c := newCoverage()
	n := 300_000
	for i := range n {
		c.addHash(i, mix64(uint64(i)+1))
	}
	assert.Len(t, c.first, ExactFingerprints)
	require.NotNil(t, c.hll)
	total := 0
	for _, highs := range c.hll.highs {
		assert.LessOrEqual(t, len(highs), 65-hllBits)
		total += len(highs)
	}
	t.Logf("%d executions: %d hashes kept, %d sketch records (%.1f per register)", n, len(c.first), total, float64(total)/hllRegisters)
}

// TestFingerprintEstimateWithinError: on synthetic streams of 100,000 and
// 1,000,000 distinct hashes the estimate is within 5 % (about three
// standard errors of 1.04/√4096), and the sketch's registers for a
// cut-off equal a sketch built from the executions below it alone.
func TestFingerprintEstimateWithinError(t *testing.T) {
	sizes := []int{100_000, 1_000_000}
	if testing.Short() {
		sizes = sizes[:1]
	}
	for _, n := range sizes {
		for seed := uint64(1); seed <= 3; seed++ {
			c := newCoverage()
			for i := range n {
				c.addHash(i, mix64(seed<<40+uint64(i)))
			}
			est, estimated := countFingerprints(n, []*coverage{c})
			require.True(t, estimated)
			rel := math.Abs(float64(est-n)) / float64(n)
			t.Logf("%d distinct, seed %d: estimate %d (%+.2f %%)", n, seed, est, 100*float64(est-n)/float64(n))
			assert.Less(t, rel, 0.05, "%d distinct, seed %d: estimate %d", n, seed, est)
		}
	}
	// Cut-offs: the records give the registers of any prefix.
	hashes := stream(200_000, 3)
	whole := split(hashes, 1, 0)[0]
	for _, upTo := range []int{70_000, 123_457, 200_000} {
		var got, want [hllRegisters]uint8
		whole.hll.registersBelow(upTo, &got)
		var prefix hll
		for i, h := range hashes[:upTo] {
			prefix.add(i, h)
		}
		prefix.registersBelow(upTo, &want)
		assert.Equal(t, want, got, "upTo %d", upTo)
	}
}
