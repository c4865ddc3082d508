package lab

import (
	"math"
	"math/rand/v2"

	"github.com/wqsim/wqsim/des"
)

// sampler draws virtual durations from a validated Dist.
type sampler struct {
	kind      string
	mean      float64 // ns
	lo, hi    float64 // ns, uniform
	mu, sigma float64 // lognormal parameters of the underlying normal
}

// maxDraw clips a single draw: a heavy tail must not stall a run for
// virtual hours.
const maxDraw = float64(des.Hour)

func newSampler(d Dist) sampler {
	s := sampler{kind: d.Dist, mean: float64(d.Mean.D), lo: float64(d.Min.D), hi: float64(d.Max.D)}
	if d.Dist == "lognormal" && d.CV != nil {
		s.sigma = math.Sqrt(math.Log1p(*d.CV * *d.CV))
		s.mu = math.Log(s.mean) - s.sigma*s.sigma/2
	}
	return s
}

// draw returns one duration, in [0, 1h].
func (s sampler) draw(r *rand.Rand) des.Duration {
	var x float64
	switch s.kind {
	case "constant":
		x = s.mean
	case "exponential":
		x = r.ExpFloat64() * s.mean
	case "uniform":
		x = s.lo + r.Float64()*(s.hi-s.lo)
	case "lognormal":
		x = math.Exp(s.mu + s.sigma*r.NormFloat64())
	}
	return clampDraw(x)
}

// clampDraw rounds a drawn number of nanoseconds to a duration in
// [0, maxDraw] (NaN gives 0).
func clampDraw(x float64) des.Duration {
	if !(x >= 0) {
		x = 0
	}
	return des.Duration(math.Round(min(x, maxDraw)))
}

// newRand returns a generator for one random stream of a cell. Each
// stream (an arrival stream, a competing thread) has its own generator
// derived from the seed and the stream's salt, so the workload a seed
// produces does not depend on the policy under test: every policy sees
// the same arrivals and the same demands (common random numbers).
func newRand(seed, salt uint64) *rand.Rand {
	return rand.New(rand.NewPCG(splitmix(seed^splitmix(salt)), splitmix(salt+0x632be59bd9b4e019)))
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// gapSampler draws the time to the next arrival (or burst).
type gapSampler struct {
	periodic bool
	mean     float64 // ns between arrivals (bursts)
}

func newGapSampler(a Arrivals) gapSampler {
	rate := *a.Rate
	if a.Process == "bursty" {
		rate /= float64(*a.Burst)
	}
	return gapSampler{periodic: a.Process == "periodic", mean: float64(des.Second) / rate}
}

func (g gapSampler) draw(r *rand.Rand) des.Duration {
	x := g.mean
	if !g.periodic {
		x = r.ExpFloat64() * g.mean
	}
	return clampDraw(x)
}

// first returns the first arrival time: a random phase for periodic
// streams (so two periodic streams do not fire in lock-step), an ordinary
// gap otherwise.
func (g gapSampler) first(r *rand.Rand) des.Duration {
	if g.periodic {
		return des.Duration(math.Round(r.Float64() * g.mean))
	}
	return g.draw(r)
}
