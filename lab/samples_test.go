package lab

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
)

// Up to ExactSamples, a distribution is summarised from its samples
// exactly, as before; past it, from the histogram: every percentile
// within histRelErr below the exact nearest-rank one, Max, Mean and N
// exact, Approx set, and no sample kept one by one, so memory stops
// growing with the number of items.
func TestSamplesBoundedAndAccurate(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	draw := func() des.Duration {
		// latencies from 0 to about 50 ms, many small ones, some exact zeros
		if rng.IntN(10) == 0 {
			return 0
		}
		return des.Duration(rng.ExpFloat64() * float64(200*des.Microsecond))
	}
	for _, n := range []int{1, 1000, ExactSamples, ExactSamples + 1, 300_000} {
		var s samples
		all := make([]des.Duration, 0, n)
		for range n {
			d := draw()
			s.add(d)
			all = append(all, d)
		}
		got := s.summary()
		want := summarize(slices.Clone(all))
		assert.Equal(t, n > ExactSamples, got.Approx, "n=%d", n)
		assert.Equal(t, want.N, got.N)
		assert.Equal(t, want.Max, got.Max, "n=%d: Max exact", n)
		assert.InDelta(t, want.Mean, got.Mean, want.Mean*1e-12, "n=%d: Mean exact", n)
		slices.Sort(all)
		curve, wantCurve := s.curve(), quantileCurve(all)
		for i := range wantCurve {
			assert.LessOrEqual(t, curve[i], wantCurve[i], "n=%d q=%v: rounded down", n, cdfQ[i])
			assert.GreaterOrEqual(t, curve[i], wantCurve[i]*(1-histRelErr), "n=%d q=%v: within %.3f%%", n, cdfQ[i], 100*histRelErr)
		}
		for _, p := range [][2]float64{{got.P50, want.P50}, {got.P90, want.P90}, {got.P99, want.P99}} {
			assert.LessOrEqual(t, p[0], p[1], "n=%d", n)
			assert.GreaterOrEqual(t, p[0], p[1]*(1-histRelErr), "n=%d", n)
		}
		if n > ExactSamples {
			require.Nil(t, s.exact, "no sample kept one by one")
			rows := 0
			for _, r := range s.hist {
				if r != nil {
					rows++
				}
			}
			assert.LessOrEqual(t, rows, 20, "a few powers of two, each 8 KiB")
		}
	}
}

// bucketFloor inverts bucketOf: every value lies in [floor, floor·(1+2^-10))
// of its bucket, and buckets ascend with values.
func TestHistogramBuckets(t *testing.T) {
	prev := des.Duration(-1)
	for _, v := range []des.Duration{0, 1, 1023, 1024, 2047, 2048, 2049, 4095, 4096, 1 << 20, 1<<20 + 12345, 1 << 40, 1<<62 + 7} {
		row, col := bucketOf(v)
		f := bucketFloor(row, col)
		assert.LessOrEqual(t, f, v, "%d", v)
		assert.Less(t, float64(v-f), float64(max(f, 1))*histRelErr+1, "%d: floor %d", v, f)
		assert.GreaterOrEqual(t, f, prev, "%d: ascending", v)
		prev = f
	}
}
