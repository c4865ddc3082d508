package lab

import (
	"math/bits"
	"slices"

	"github.com/wqsim/wqsim/des"
)

// ExactSamples is how many durations a distribution keeps one by one. Past
// it, a long experiment's memory would grow with its length (8 bytes per
// work item per distribution), so the samples move into a log-linear
// histogram whose percentiles are exact to within histRelErr; Max, Mean
// and N stay exact, and Summary.Approx says so.
const ExactSamples = 1 << 16

// histSubBits sets the histogram's resolution: 2^histSubBits buckets per
// power of two, so a bucket's lower bound is within 2^-histSubBits
// (< 0.1 %) of any value in it.
const histSubBits = 10

// histRelErr is the largest relative error of a histogram percentile.
const histRelErr = 1.0 / (1 << histSubBits)

// samples collects one distribution of non-negative durations.
type samples struct {
	exact []des.Duration
	hist  [64][]uint64 // by shift (see bucketOf); a row is made when first used
	over  bool         // the samples are in hist
	n     int
	sum   float64
	max   des.Duration
}

func (s *samples) add(d des.Duration) {
	d = max(d, 0)
	s.n++
	s.sum += float64(d)
	s.max = max(s.max, d)
	if s.over {
		s.count(d)
		return
	}
	s.exact = append(s.exact, d)
	if len(s.exact) > ExactSamples {
		for _, x := range s.exact {
			s.count(x)
		}
		s.exact, s.over = nil, true
	}
}

// bucketOf returns d's histogram row (the shift) and column: values below
// 2^(histSubBits+1) are their own bucket (row 0); above, a value with k
// significant bits goes to row k-histSubBits-1, column its top
// histSubBits+1 bits less 2^histSubBits.
func bucketOf(d des.Duration) (row, col int) {
	v := uint64(d)
	if v < 1<<(histSubBits+1) {
		return 0, int(v)
	}
	shift := bits.Len64(v) - histSubBits - 1
	return shift, int(v>>shift) - 1<<histSubBits
}

// bucketFloor is the smallest value of bucket (row, col).
func bucketFloor(row, col int) des.Duration {
	if row == 0 {
		return des.Duration(col)
	}
	return des.Duration(uint64(col+1<<histSubBits) << row)
}

func (s *samples) count(d des.Duration) {
	row, col := bucketOf(d)
	if s.hist[row] == nil {
		width := 1 << histSubBits
		if row == 0 {
			width = 1 << (histSubBits + 1)
		}
		s.hist[row] = make([]uint64, width)
	}
	s.hist[row][col]++
}

// summary summarises the samples (nearest-rank percentiles); it sorts
// the exact samples in place.
func (s *samples) summary() Summary {
	if s.n == 0 {
		return Summary{}
	}
	if !s.over {
		return summarize(s.exact)
	}
	return Summary{
		P50: float64(s.quantile(0.50)), P90: float64(s.quantile(0.90)), P99: float64(s.quantile(0.99)),
		Max: float64(s.max), Mean: s.sum / float64(s.n), N: s.n, Approx: true,
	}
}

// curve returns the quantiles at cdfQ (nil if empty), as quantileCurve.
func (s *samples) curve() []float64 {
	if s.n == 0 {
		return nil
	}
	if !s.over {
		slices.Sort(s.exact)
		return quantileCurve(s.exact)
	}
	out := make([]float64, len(cdfQ))
	for i, q := range cdfQ {
		out[i] = float64(s.quantile(q))
	}
	return out
}

// quantile is the histogram's nearest-rank q-quantile: the floor of the
// bucket holding the value of that rank, or the exact maximum for q = 1.
func (s *samples) quantile(q float64) des.Duration {
	rank := uint64(max(1, min(int(q*float64(s.n)+0.999999999), s.n)))
	if rank == uint64(s.n) {
		return s.max
	}
	var seen uint64
	for row, counts := range s.hist {
		for col, c := range counts {
			if seen += c; seen >= rank {
				return bucketFloor(row, col)
			}
		}
	}
	return s.max
}
