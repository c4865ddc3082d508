package queues_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues"
)

// erlangC returns the probability that an arrival waits in an M/M/c queue
// with offered load a = λ/μ (a < c).
func erlangC(c int, a float64) float64 {
	term, sum := 1.0, 1.0 // a^k/k! for k = 0
	for k := 1; k < c; k++ {
		term *= a / float64(k)
		sum += term
	}
	last := term * a / float64(c) * float64(c) / (float64(c) - a) // a^c/c! · c/(c-a)
	return last / (sum + last)
}

// tQuantile995 is the 0.995 quantile of Student's t with 19 degrees of
// freedom: a two-sided 99% interval over 20 batch means.
const tQuantile995 = 2.861

// mmcJob is one customer: its work item, arrival time and service demand.
type mmcJob struct {
	item    queues.WORK_QUEUE_ITEM
	arrived des.Time
	service des.Duration
}

// runMMc pushes n Poisson arrivals (rate λ per ms) of exponential service
// (mean 1/μ ms) through c delayed workers on c+1 zero-cost processors (the
// extra one for the arrival thread, so the queue is exactly M/M/c) and
// returns each customer's wait in the queue, in arrival order.
func runMMc(t *testing.T, c, n int, lambda, mu float64, seed uint64) []float64 {
	kcfg := kernel.DefaultConfig()
	kcfg.Processors = c + 1
	kcfg.Costs = kernel.Costs{} // pure queueing: kernel calls take no time
	pcfg := queues.DefaultPoolConfig()
	pcfg.Policy = queues.Fixed()
	pcfg.Static = [queues.NumFixedQueues]int{queues.DelayedWorkQueue: c}
	pcfg.LazyThreads = 0
	r := newWIRigOpts(t, kcfg, pcfg, wiOpts{seed: seed, sink: nullSink{}, budget: 1 << 62})
	k, sys, rng := r.k, r.sys, r.sim.Rand()
	waits := make([]float64, n)
	var free []*mmcJob
	served := 0
	routine := func(p any) {
		j := p.(*mmcJob)
		waits[served] = float64(k.Now().Sub(j.arrived)) / float64(des.Millisecond)
		served++
		k.Compute(j.service)
		free = append(free, j)
	}
	r.k.PsCreateSystemThread("arrivals", 20, func() {
		for i := 0; i < n; i++ {
			k.KeDelayExecutionThread(des.Duration(rng.ExpFloat64() / lambda * float64(des.Millisecond)))
			var j *mmcJob
			if m := len(free); m > 0 {
				j, free = free[m-1], free[:m-1]
			} else {
				j = &mmcJob{}
			}
			j.arrived = k.Now()
			j.service = des.Duration(rng.ExpFloat64() / mu * float64(des.Millisecond))
			queues.ExInitializeWorkItem(&j.item, routine, j)
			sys.ExQueueWorkItem(&j.item, queues.DelayedWorkQueue)
		}
	})
	require.NoError(t, r.k.Run().Err)
	require.Equal(t, n, served)
	return waits
}

type nullSink struct{}

func (nullSink) Write(*des.Record) {}

// REFERENCE §3.3 (FIFO items, workers as servers): with c delayed workers
// and nothing else in the way, the delayed queue is an M/M/c queue, so the
// mean wait must match Erlang C. The estimate is the mean of 20 batch means
// after a warm-up (batch means make the correlated waits nearly
// independent); the test asserts the theory lies in the 99% t interval and
// that the interval is tight enough to mean something. The seed is fixed,
// so the outcome is deterministic.
func TestDelayedQueueIsMMcErlangC(t *testing.T) {
	cases := []struct {
		c          int
		lambda, mu float64 // per ms
	}{
		{2, 1.4, 1.0}, // ρ = 0.7
		{4, 3.2, 1.0}, // ρ = 0.8
	}
	for i, tc := range cases {
		n := 600_000
		if testing.Short() {
			n = 100_000
		}
		waits := runMMc(t, tc.c, n, tc.lambda, tc.mu, 2024+uint64(i))
		grand, half := batchMeans(waits[n/20:], 20)
		want := erlangC(tc.c, tc.lambda/tc.mu) / (float64(tc.c)*tc.mu - tc.lambda)
		t.Logf("M/M/%d ρ=%.2f, %d customers: mean wait %.4f ms ± %.4f (99%%), Erlang C %.4f ms",
			tc.c, tc.lambda/tc.mu/float64(tc.c), n, grand, half, want)
		assert.InDelta(t, want, grand, half, "M/M/%d: Erlang C outside the 99%% confidence interval", tc.c)
		assert.Less(t, half/want, 0.15, "M/M/%d: interval too wide to test anything; raise n", tc.c)
	}
}

// batchMeans splits xs into k equal batches and returns the mean of the
// batch means and the half-width of its two-sided 99% t interval (k = 20).
func batchMeans(xs []float64, k int) (mean, half float64) {
	size := len(xs) / k
	means := make([]float64, k)
	for b := range means {
		s := 0.0
		for _, x := range xs[b*size : (b+1)*size] {
			s += x
		}
		means[b] = s / float64(size)
		mean += means[b]
	}
	mean /= float64(k)
	ss := 0.0
	for _, m := range means {
		ss += (m - mean) * (m - mean)
	}
	return mean, tQuantile995 * math.Sqrt(ss/float64(k-1)/float64(k))
}

// The Erlang C helper against a textbook value (M/M/2, a = 1.4).
func TestErlangCHelper(t *testing.T) {
	assert.InDelta(t, 0.5765, erlangC(2, 1.4), 1e-4)
	assert.InDelta(t, 0.7, erlangC(1, 0.7), 1e-12, "M/M/1: P(wait) = ρ")
}
