package lab

import "math"

// Interval is a 95 % confidence interval for the mean of a metric across
// an experiment's seeds: Student's t with n−1 degrees of freedom over the
// per-seed values (each seed's run is one independent observation). Half
// is 0 when there is only one seed: no interval can be given.
type Interval struct {
	Mean, Half float64
	N          int
}

// Lo and Hi are the interval's ends.
func (i Interval) Lo() float64 { return i.Mean - i.Half }
func (i Interval) Hi() float64 { return i.Mean + i.Half }

// t975 are the 0.975 quantiles of Student's t for 1–30 degrees of freedom
// (standard tables); beyond 30 the normal 1.96 is used.
var t975 = [...]float64{12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
	2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
	2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042}

// meanInterval returns the 95 % t-interval of xs' mean.
func meanInterval(xs []float64) Interval {
	n := len(xs)
	if n == 0 {
		return Interval{}
	}
	var sum float64
	for _, x := range xs {
		sum += x
	}
	mean := sum / float64(n)
	if n == 1 {
		return Interval{Mean: mean, N: 1}
	}
	var ss float64
	for _, x := range xs {
		ss += (x - mean) * (x - mean)
	}
	t := 1.96
	if n-1 <= len(t975) {
		t = t975[n-2]
	}
	return Interval{Mean: mean, Half: t * math.Sqrt(ss/float64(n-1)/float64(n)), N: n}
}

// seedIntervals returns, for a group of one policy's per-seed cells, the
// intervals of the metrics the bar charts show and of those compared with
// Erlang C.
func seedIntervals(group []CellResult) CellIntervals {
	pick := func(f func(CellResult) float64) Interval {
		xs := make([]float64, 0, len(group))
		for _, c := range group {
			if c.Outcome == "ok" {
				xs = append(xs, f(c))
			}
		}
		return meanInterval(xs)
	}
	return CellIntervals{
		LatP99us:    pick(func(c CellResult) float64 { return us(c.Lat.P99) }),
		Throughput:  pick(func(c CellResult) float64 { return c.Throughput }),
		PreemptRate: pick(func(c CellResult) float64 { return c.preemptionRate() }),
		InversionPc: pick(func(c CellResult) float64 { return 100 * c.InversionFrac }),
		LatMeanUs:   pick(func(c CellResult) float64 { return us(c.Lat.Mean) }),
		WaitFrac:    pick(func(c CellResult) float64 { return c.WaitFrac }),
	}
}

// CellIntervals are an aggregate row's 95 % confidence intervals across
// seeds (see Interval), for the metrics the bar charts show.
type CellIntervals struct {
	LatP99us    Interval // p99 queueing latency, µs
	Throughput  Interval // routines per second
	PreemptRate Interval // preemptions per second
	InversionPc Interval // priority inversion, % of the window
	LatMeanUs   Interval // mean queueing latency, µs
	WaitFrac    Interval // fraction of items that waited
}
