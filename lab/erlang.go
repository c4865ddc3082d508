package lab

import (
	"math"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/queues"
)

// ErlangC returns the probability that an arrival has to wait in an
// M/M/c queue with c servers and offered load a = λ/μ (Erlang's C
// formula), for 0 ≤ a < c; 1 when a ≥ c (the queue is unstable). It uses
// the Erlang B recursion B(k) = a·B(k−1) / (k + a·B(k−1)) and
// C = c·B / (c − a·(1 − B)), which stays exact for large c where the
// textbook sum of a^k/k! overflows (Kleinrock, Queueing Systems I, ch. 3, the M/M/m queue).
// Cost O(c).
func ErlangC(c int, a float64) float64 {
	if c < 1 || a >= float64(c) {
		return 1
	}
	if a <= 0 {
		return 0
	}
	b := 1.0
	for k := 1; k <= c; k++ {
		b = a * b / (float64(k) + a*b)
	}
	return float64(c) * b / (float64(c) - a*(1-b))
}

// MMc is what queueing theory predicts for a cell that is an M/M/c queue:
// one stream of Poisson arrivals (rate Lambda) with exponential service
// (rate Mu per server) into a work queue served by C workers.
//
// The prediction assumes the kernel adds nothing to the service: with the
// "nt-ideal" dispatcher (zero kernel-call, switch and interrupt costs) the
// simulated queue is exactly M/M/c, and the measured mean wait and P(wait)
// agree with it within their confidence intervals (TestMMcMatchesErlangC);
// under the other dispatchers the gap is the kernel's overhead.
type MMc struct {
	C        int     // servers: the queue's workers, capped by its concurrency limit and the processors
	Lambda   float64 // arrivals per second
	Mu       float64 // services per second, per server (1 / mean service time)
	PWait    float64 // Erlang C: the probability an arrival waits
	MeanWait float64 // mean wait in the queue, ns: PWait / (C·Mu − Lambda)
}

// waitCDF returns P(wait ≤ t) for t in ns: 1 − PWait·e^(−(C·Mu − Lambda)·t).
func (m MMc) waitCDF(t float64) float64 {
	return 1 - m.PWait*math.Exp(-(float64(m.C)*m.Mu-m.Lambda)*t/float64(des.Second))
}

// mmcOf returns the M/M/c queue workload w is under pool p, if it is one
// and it is stable (λ < c·μ): exactly one work-item stream, Poisson
// arrivals one item at a time, exponential service, no blocking, nothing
// else running (no competing threads, no real-time tasks), a "fixed" pool
// (static workers only) and a fixed queue type. The servers are the
// queue's static workers (or its lazily created ones when it has none),
// at most its KQUEUE concurrency limit (only that many of its workers run
// items at once, REFERENCE §3.3) and at most the processors.
func mmcOf(w *Workload, p *Pool) (MMc, bool) {
	if len(w.Streams) != 1 || len(w.Competing) > 0 || len(w.Tasks) > 0 || w.TaskSet != nil || w.RTApp != nil ||
		p.Policy != "fixed" || w.Processors == nil {
		return MMc{}, false
	}
	s := &w.Streams[0]
	if s.Arrivals.Process != "poisson" || s.Arrivals.Burst != nil || s.Arrivals.Rate == nil ||
		s.Service.Dist != "exponential" || s.Service.Mean.D <= 0 || s.Blocking != nil {
		return MMc{}, false
	}
	typ, err := parseQueue(s.Queue)
	if err != nil || typ >= queues.MaximumWorkQueue {
		return MMc{}, false
	}
	cfg := poolConfig(p)
	c := cfg.Static[typ]
	if c == 0 {
		c = cfg.LazyThreads
	}
	conc := cfg.Concurrency
	if conc == 0 {
		conc = *w.Processors
	}
	c = min(c, conc, *w.Processors)
	m := MMc{C: c, Lambda: *s.Arrivals.Rate, Mu: float64(des.Second) / float64(s.Service.Mean.D)}
	if c < 1 || m.Lambda >= float64(c)*m.Mu {
		return MMc{}, false
	}
	m.PWait = ErlangC(c, m.Lambda/m.Mu)
	m.MeanWait = m.PWait / (float64(c)*m.Mu - m.Lambda) * float64(des.Second)
	return m, true
}
