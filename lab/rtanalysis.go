package lab

import (
	"cmp"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/wqsim/wqsim/des"
)

// PeriodicTask is a task of classical real-time scheduling theory: a job
// released every Period (at least Period apart for a sporadic task), each
// needing at most WCET of processor time and due Deadline after its
// release.
type PeriodicTask struct {
	Name     string
	Period   des.Duration
	WCET     des.Duration
	Deadline des.Duration // relative; 0 means Period
}

// deadline returns the relative deadline (Period when unset).
func (t PeriodicTask) deadline() des.Duration {
	if t.Deadline == 0 {
		return t.Period
	}
	return t.Deadline
}

// Utilization returns WCET / Period.
func (t PeriodicTask) Utilization() float64 { return float64(t.WCET) / float64(t.Period) }

// TaskSetString writes a task set in full, one "name(C=…, T=…, D=…)" per
// task, so that a failing set can be re-created from a test log.
func TaskSetString(ts []PeriodicTask) string {
	var b strings.Builder
	for i, t := range ts {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s(C=%d, T=%d, D=%d)", t.Name, int64(t.WCET), int64(t.Period), int64(t.deadline()))
	}
	return b.String()
}

// Utilization returns the total utilization of ts.
func Utilization(ts []PeriodicTask) float64 {
	var u float64
	for _, t := range ts {
		u += t.Utilization()
	}
	return u
}

// PriorityOrder names a fixed-priority assignment rule.
type PriorityOrder int

const (
	// RateMonotonic: the shorter the period, the higher the priority.
	RateMonotonic PriorityOrder = iota
	// DeadlineMonotonic: the shorter the relative deadline, the higher.
	DeadlineMonotonic
)

func (o PriorityOrder) String() string {
	if o == DeadlineMonotonic {
		return "dm"
	}
	return "rm"
}

// Order returns the task indexes of ts from highest to lowest priority
// under o; ties keep the tasks' order in ts.
func (o PriorityOrder) Order(ts []PeriodicTask) []int {
	idx := make([]int, len(ts))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		if o == DeadlineMonotonic {
			return cmp.Compare(ts[a].deadline(), ts[b].deadline())
		}
		return cmp.Compare(ts[a].Period, ts[b].Period)
	})
	return idx
}

// Unbounded marks a response time or busy period that grows without
// bound (the utilization of a task and those above it exceeds 1) or past
// AnalysisHorizon.
const Unbounded des.Duration = math.MaxInt64

// AnalysisHorizon bounds the busy periods the analysis follows: a
// utilization of exactly 1 gives a busy period as long as the
// hyperperiod, which can be astronomically long for random periods.
const AnalysisHorizon = des.Hour

// ResponseTimes returns the exact worst-case response time of every task
// of ts (indexed as ts) under preemptive fixed priorities in order (highest
// first, as PriorityOrder.Order returns), on one processor, with zero
// overheads, jobs of one task served in release order, and synchronous
// release (the critical instant). It is the busy-period analysis of
// Lehoczky (1990), exact for any deadlines: for job q = 0, 1, … of the
// level-i busy period that starts at the critical instant, the completion
// w is the least fixed point of
//
//	w = (q+1)·C_i + Σ_{j above i} ⌈w / T_j⌉·C_j
//
// and the response is w − q·T_i; the busy period ends with the first job
// that completes by the next release. For D ≤ T and a schedulable task
// this is Joseph & Pandya's (1986) R = C_i + Σ ⌈R/T_j⌉·C_j. A task whose
// level-i utilization exceeds 1, or whose busy period passes
// AnalysisHorizon, gets Unbounded.
func ResponseTimes(ts []PeriodicTask, order []int) []des.Duration {
	out := make([]des.Duration, len(ts))
	var above []PeriodicTask
	for _, i := range order {
		t := ts[i]
		above = append(above, t)
		if !utilizationAtMostOne(above) {
			out[i] = Unbounded
			continue
		}
		out[i] = busyPeriodResponse(t, above[:len(above)-1])
	}
	return out
}

// utilizationAtMostOne reports Σ C/T ≤ 1 exactly (rational arithmetic:
// floating point cannot tell 1 from 1 + 1e-17).
func utilizationAtMostOne(ts []PeriodicTask) bool {
	sum := new(big.Rat)
	for _, t := range ts {
		sum.Add(sum, big.NewRat(int64(t.WCET), int64(t.Period)))
	}
	return sum.Cmp(big.NewRat(1, 1)) <= 0
}

// busyPeriodResponse is the worst response of t under interference from
// above, over the level-i busy period.
func busyPeriodResponse(t PeriodicTask, above []PeriodicTask) des.Duration {
	var worst des.Duration
	w := t.WCET
	for q := int64(0); ; q++ {
		w = max(w, des.Duration(q+1)*t.WCET)
		for {
			next := des.Duration(q+1) * t.WCET
			for _, h := range above {
				next += ceilDiv(w, h.Period) * h.WCET
			}
			if next == w {
				break
			}
			if next > AnalysisHorizon {
				return Unbounded
			}
			w = next
		}
		worst = max(worst, w-des.Duration(q)*t.Period)
		if w <= des.Duration(q+1)*t.Period {
			return worst
		}
	}
}

// BusyPeriod returns the length of the synchronous busy period of ts on
// one processor (the least L > 0 with L = Σ ⌈L/T_j⌉·C_j), or Unbounded if
// the utilization exceeds 1 or it passes AnalysisHorizon. Every task's worst response is reached by a
// job released inside it.
func BusyPeriod(ts []PeriodicTask) des.Duration {
	if !utilizationAtMostOne(ts) {
		return Unbounded
	}
	var l des.Duration
	for _, t := range ts {
		l += t.WCET
	}
	for {
		var next des.Duration
		for _, t := range ts {
			next += ceilDiv(l, t.Period) * t.WCET
		}
		if next == l {
			return l
		}
		if next > AnalysisHorizon {
			return Unbounded
		}
		l = next
	}
}

func ceilDiv(a, b des.Duration) des.Duration { return (a + b - 1) / b }

// Schedulable reports whether every task meets its deadline by the exact
// test (ResponseTimes ≤ Deadline).
func Schedulable(ts []PeriodicTask, o PriorityOrder) bool {
	for i, r := range ResponseTimes(ts, o.Order(ts)) {
		if r > ts[i].deadline() {
			return false
		}
	}
	return true
}

// LiuLaylandBound is n(2^{1/n} − 1), the utilization below which any n
// implicit-deadline periodic tasks are schedulable under rate-monotonic
// priorities (Liu & Layland 1973). The test is sufficient, not necessary.
func LiuLaylandBound(n int) float64 {
	return float64(n) * (math.Pow(2, 1/float64(n)) - 1)
}

// UUniFast draws n task utilizations summing to u, uniformly over that
// simplex (Bini & Buttazzo 2005). u may exceed 1 (then single tasks may
// too: use UUniFastDiscard for multiprocessor sets).
func UUniFast(r *rand.Rand, n int, u float64) []float64 {
	out := make([]float64, n)
	sum := u
	for i := 0; i < n-1; i++ {
		next := sum * math.Pow(r.Float64(), 1/float64(n-1-i))
		out[i] = sum - next
		sum = next
	}
	out[n-1] = sum
	return out
}

// UUniFastDiscard is UUniFast that redraws any set with a task above
// limit (1 for tasks that must fit one processor), as Davis & Burns (2009)
// propose for multiprocessor sets. It gives up after 1000 draws and
// returns false.
func UUniFastDiscard(r *rand.Rand, n int, u, limit float64) ([]float64, bool) {
	for range 1000 {
		us := UUniFast(r, n, u)
		if slices.Max(us) <= limit {
			return us, true
		}
	}
	return nil, false
}

// LogUniformPeriod draws a period log-uniformly from [lo, hi], rounded
// down to a multiple of gran (at least gran), the period distribution of
// Emberson, Stafford & Davis (2010).
func LogUniformPeriod(r *rand.Rand, lo, hi, gran des.Duration) des.Duration {
	x := math.Exp(math.Log(float64(lo)) + r.Float64()*(math.Log(float64(hi))-math.Log(float64(lo))))
	p := des.Duration(x) / gran * gran
	return max(p, gran)
}

// GenSpec says how to draw a random task set.
type GenSpec struct {
	Tasks       int
	Utilization float64
	PeriodMin   des.Duration
	PeriodMax   des.Duration
	Granularity des.Duration // periods are multiples of it (default 1µs)
	// Constrained draws each deadline uniformly from [C, T]; otherwise
	// deadlines are implicit (D = T).
	Constrained bool
	// Discard redraws sets with a task above utilization 1.
	Discard bool
}

// GenerateDiscard draws a set as Generate does with Discard, and reports
// false (no set) when UUniFastDiscard gives up instead of falling back.
func (g GenSpec) GenerateDiscard(r *rand.Rand) ([]PeriodicTask, bool) {
	g.Discard = true
	us, ok := g.utilizations(r)
	if !ok {
		return nil, false
	}
	return g.withUtilizations(r, us), true
}

// Generate draws one task set by spec from r: UUniFast utilizations,
// log-uniform periods, WCET = round(U·T) (at least 1 ns). With Discard,
// if UUniFastDiscard gives up it falls back to plain UUniFast (a task may
// then exceed utilization 1); GenerateDiscard reports that instead.
func (g GenSpec) Generate(r *rand.Rand) []PeriodicTask {
	us, ok := g.utilizations(r)
	if !ok {
		us = UUniFast(r, g.Tasks, g.Utilization)
	}
	return g.withUtilizations(r, us)
}

// utilizations draws the task utilizations: UUniFast, or with Discard
// UUniFastDiscard below 1 (false when it gives up).
func (g GenSpec) utilizations(r *rand.Rand) ([]float64, bool) {
	if g.Discard {
		return UUniFastDiscard(r, g.Tasks, g.Utilization, 1)
	}
	return UUniFast(r, g.Tasks, g.Utilization), true
}

// withUtilizations draws periods (and constrained deadlines) for us.
func (g GenSpec) withUtilizations(r *rand.Rand, us []float64) []PeriodicTask {
	gran := cmp.Or(g.Granularity, des.Microsecond)
	ts := make([]PeriodicTask, g.Tasks)
	for i, u := range us {
		p := LogUniformPeriod(r, g.PeriodMin, g.PeriodMax, gran)
		c := max(des.Duration(math.Round(u*float64(p))), 1)
		t := PeriodicTask{Name: fmt.Sprintf("t%d", i), Period: p, WCET: c, Deadline: p}
		if g.Constrained && c < p {
			t.Deadline = c + des.Duration(r.Int64N(int64(p-c)+1))
		}
		ts[i] = t
	}
	return ts
}
