package lab

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/queues"
)

// Limits that keep one experiment within a few minutes on a laptop; each
// error that hits one says which knob to turn.
const (
	maxProcessors    = 64
	maxDuration      = des.Hour
	maxItemsPerCell  = 2_000_000
	maxLoopsPerCell  = 2_000_000 // competing-thread compute/sleep rounds
	maxCells         = 10_000
	maxSeeds         = 1000
	maxStreams       = 32
	maxCompeting     = 64 // threads per workload
	maxRate          = 1e7
	maxBurst         = 10_000
	maxThreads       = 256
	maxDistDuration  = des.Minute
	defaultGrowLimit = 16
	defaultMaxDyn    = 16
)

// arrivalProcesses and distributions list the accepted names.
var (
	arrivalProcesses = []string{"poisson", "periodic", "bursty"}
	distributions    = []string{"constant", "exponential", "uniform", "lognormal"}
)

// validator collects problems with their paths.
type validator struct{ errs Errors }

func (v *validator) bad(path, format string, a ...any) {
	if len(v.errs) < maxErrors {
		v.errs = append(v.errs, &FieldError{Path: pathOrTop(path), Msg: fmt.Sprintf(format, a...)})
	}
}

// ValidateScaled validates e as it runs with Options.Scale scale: every
// workload's duration multiplied, so a scale cannot carry an experiment
// past the limits (a window over an hour, too many work items per cell).
func (e *Experiment) ValidateScaled(scale float64) error {
	if scale <= 0 {
		scale = 1
	}
	if err := e.Validate(); err != nil || scale == 1 {
		return err
	}
	scaled := *e
	scaled.Workloads = append([]Workload(nil), e.Workloads...)
	for i := range scaled.Workloads {
		d := &scaled.Workloads[i].Duration
		d.D = des.Duration(float64(d.D) * scale)
	}
	if err := scaled.Validate(); err != nil {
		return fmt.Errorf("with --scale %v: %w", scale, err)
	}
	return nil
}

// Validate reports every impossible or missing value of e, each with its
// path and what to do; nil if e can run.
func (e *Experiment) Validate() error {
	v := &validator{}
	v.name("name", e.Name, "the experiment")
	if len(e.Seeds) == 0 {
		v.bad("seeds", "missing or empty; give a list of seeds such as [1, 2, 3] (one run per seed)")
	} else if len(e.Seeds) > maxSeeds {
		v.bad("seeds", "%d seeds; at most %d", len(e.Seeds), maxSeeds)
	}
	seen := map[uint64]int{}
	for i, s := range e.Seeds {
		if j, dup := seen[s]; dup {
			v.bad(fmt.Sprintf("seeds[%d]", i), "%d repeats seeds[%d]; give distinct seeds", s, j)
		}
		seen[s] = i
	}
	if e.Acceptance != nil {
		v.acceptance("acceptance", e.Acceptance, len(e.Seeds))
		if len(e.Workloads)+len(e.Dispatchers)+len(e.Pools) > 0 || e.Placement != nil {
			v.bad("acceptance", "an acceptance-ratio experiment has no workloads, dispatchers or pools; put those in another file")
		}
		if len(v.errs) > 0 {
			return v.errs
		}
		return nil
	}
	if e.Placement != nil {
		v.placement("placement", e.Placement, e)
		if len(e.Workloads)+len(e.Pools) > 0 || e.Acceptance != nil {
			v.bad("placement", "a placement experiment has dispatchers but no workloads, pools or acceptance; put those in another file")
		}
		if len(v.errs) > 0 {
			return v.errs
		}
		return nil
	}
	if len(e.Workloads) == 0 {
		v.bad("workloads", "missing or empty; give at least one workload")
	}
	names := map[string]int{}
	for i := range e.Workloads {
		w := &e.Workloads[i]
		p := fmt.Sprintf("workloads[%d]", i)
		v.workload(p, w)
		if j, dup := names[w.Name]; dup && w.Name != "" {
			v.bad(p+".name", "%q is also the name of workloads[%d]; give each workload its own name", w.Name, j)
		}
		names[w.Name] = i
	}
	v.dispatcherList(e.Dispatchers)
	if len(e.Pools) == 0 {
		v.bad("pools", "missing or empty; give a list of pools such as [{\"policy\": \"fixed\"}, {\"policy\": \"reactos\"}]")
	}
	pseen := map[string]int{}
	for i := range e.Pools {
		p := fmt.Sprintf("pools[%d]", i)
		v.pool(p, &e.Pools[i])
		n := e.Pools[i].label()
		if j, dup := pseen[n]; dup {
			v.bad(p, "its name %q is also that of pools[%d]; give the pools distinct \"name\"s", clip(n), j)
		}
		pseen[n] = i
	}
	if cells := len(e.Workloads) * len(e.Dispatchers) * len(e.Pools) * len(e.Seeds); cells > maxCells {
		v.bad("", "%d cells (workloads × dispatchers × pools × seeds); at most %d: split the experiment or use fewer seeds", cells, maxCells)
	}
	if len(v.errs) > 0 {
		return v.errs
	}
	return nil
}

// name checks a name used in file names and CSV cells.
func (v *validator) name(path, s, what string) {
	switch {
	case s == "":
		v.bad(path, "missing; give %s a name (letters, digits, '-', '_', '.')", what)
	case len(s) > 64:
		v.bad(path, "%q is %d characters; use at most 64", clip(s), len(s))
	case s == "." || s == "..":
		v.bad(path, "%q cannot be a name; use letters, digits, '-', '_', '.'", s)
	default:
		for _, r := range s {
			if !(r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
				v.bad(path, "%q contains %q; names use letters, digits, '-', '_' and '.' only (they become file names)", clip(s), r)
				return
			}
		}
	}
}

func (v *validator) workload(p string, w *Workload) {
	v.name(p+".name", w.Name, "the workload")
	switch {
	case w.Processors == nil:
		v.bad(p+".processors", "missing; give the number of simulated processors, 1 to %d", maxProcessors)
	case *w.Processors < 1 || *w.Processors > maxProcessors:
		v.bad(p+".processors", "%d is impossible; give 1 to %d simulated processors", *w.Processors, maxProcessors)
	}
	if !w.Duration.Set && w.RTApp != nil {
		if imp, errs := rtAppFrom("", w.RTApp.v); len(errs) == 0 && imp.Duration > 0 {
			w.Duration = Dur(imp.Duration) // rt-app's global.duration
		}
	}
	window := v.duration(p+".duration", w.Duration, true, maxDuration, "the arrival window, e.g. \"1s\"")
	tasks := v.rtWorkload(p, w, window)
	if len(w.Streams) == 0 && tasks == 0 && len(w.Competing) == 0 {
		v.bad(p+".streams", "missing or empty; give at least one work-item stream {\"queue\": ..., \"arrivals\": ..., \"service\": ...} or real-time \"tasks\"")
	} else if len(w.Streams) > maxStreams {
		v.bad(p+".streams", "%d streams; at most %d", len(w.Streams), maxStreams)
	}
	items := 0.0
	for i := range w.Streams {
		items += v.stream(fmt.Sprintf("%s.streams[%d]", p, i), &w.Streams[i]) * secs(window)
	}
	if items > maxItemsPerCell {
		v.bad(p, "about %.0f work items per run (rates × duration); at most %d: lower the rates or shorten the duration", items, maxItemsPerCell)
	}
	threads, loops := 0, 0.0
	for i := range w.Competing {
		n, l := v.competing(fmt.Sprintf("%s.competing[%d]", p, i), &w.Competing[i])
		threads += n
		loops += float64(n) * l * secs(window)
	}
	if threads > maxCompeting {
		v.bad(p+".competing", "%d competing threads in all; at most %d", threads, maxCompeting)
	}
	if loops > maxLoopsPerCell {
		v.bad(p+".competing", "about %.0f compute/sleep rounds per run; at most %d: make compute or sleep longer, or the duration shorter", loops, maxLoopsPerCell)
	}
}

// stream checks s and returns its mean rate (items per second), 0 if
// invalid.
func (v *validator) stream(p string, s *Stream) float64 {
	if s.Name != "" {
		v.name(p+".name", s.Name, "the stream")
	}
	if s.Queue == "" {
		v.bad(p+".queue", "missing; give a queue type such as \"DelayedWorkQueue\" or \"CriticalWorkQueue\"")
	} else if _, err := parseQueue(s.Queue); err != nil {
		v.bad(p+".queue", "%v", err)
	}
	rate := v.arrivals(p+".arrivals", &s.Arrivals)
	v.dist(p+".service", &s.Service, "the CPU time of each routine")
	if b := s.Blocking; b != nil {
		switch {
		case b.Fraction == nil:
			v.bad(p+".blocking.fraction", "missing; give the fraction of routines that block, in (0, 1]")
		case !(*b.Fraction > 0 && *b.Fraction <= 1):
			v.bad(p+".blocking.fraction", "%s must be in (0, 1]: the fraction of routines that block (remove \"blocking\" for none)", fmtFloat(*b.Fraction))
		}
		v.dist(p+".blocking.time", &b.Time, "how long a blocking routine waits")
	}
	return rate
}

func (v *validator) arrivals(p string, a *Arrivals) float64 {
	switch {
	case a.Process == "":
		v.bad(p+".process", "missing; give one of %s", strings.Join(arrivalProcesses, ", "))
	case !slices.Contains(arrivalProcesses, a.Process):
		v.bad(p+".process", "unknown arrival process %q; use one of %s", clip(a.Process), strings.Join(arrivalProcesses, ", "))
	}
	rate := 0.0
	switch {
	case a.Rate == nil:
		v.bad(p+".rate", "missing; give the mean arrival rate in items per second, e.g. 1000")
	case !(*a.Rate > 0):
		v.bad(p+".rate", "%s must be positive (items per second)", fmtFloat(*a.Rate))
	case *a.Rate > maxRate:
		v.bad(p+".rate", "%s items per second is more than the %.0f the lab can run; lower it", fmtFloat(*a.Rate), maxRate)
	default:
		rate = *a.Rate
	}
	if a.Process == "bursty" {
		switch {
		case a.Burst == nil:
			v.bad(p+".burst", "missing; bursty arrivals need the number of items per burst (2 or more)")
		case *a.Burst < 2 || *a.Burst > maxBurst:
			v.bad(p+".burst", "%d items per burst is impossible; give 2 to %d (or use \"poisson\" for single arrivals)", *a.Burst, maxBurst)
		}
	} else if a.Burst != nil {
		v.bad(p+".burst", "applies only to \"process\": \"bursty\"; remove it")
	}
	return rate
}

// dist checks a distribution and returns its mean in seconds, 0 if
// invalid.
func (v *validator) dist(p string, d *Dist, what string) float64 {
	switch {
	case d.Dist == "":
		v.bad(p+".dist", "missing; give %s as one of %s", what, strings.Join(distributions, ", "))
		return 0
	case !slices.Contains(distributions, d.Dist):
		v.bad(p+".dist", "unknown distribution %q; use one of %s", clip(d.Dist), strings.Join(distributions, ", "))
		return 0
	}
	only := func(field string, set bool, dists string) {
		if set {
			v.bad(p+"."+field, "does not apply to %q (it is for %s); remove it", d.Dist, dists)
		}
	}
	n := len(v.errs)
	var mean des.Duration
	switch d.Dist {
	case "constant", "exponential", "lognormal":
		mean = v.duration(p+".mean", d.Mean, true, maxDistDuration, what)
		only("min", d.Min.Set, "uniform")
		only("max", d.Max.Set, "uniform")
		if d.Dist == "lognormal" {
			switch {
			case d.CV == nil:
				v.bad(p+".cv", "missing; lognormal needs the coefficient of variation (standard deviation / mean), e.g. 1")
			case !(*d.CV > 0 && *d.CV <= 10):
				v.bad(p+".cv", "%s must be in (0, 10]: the coefficient of variation (standard deviation / mean)", fmtFloat(*d.CV))
			}
		} else {
			only("cv", d.CV != nil, "lognormal")
		}
	case "uniform":
		lo := v.duration(p+".min", d.Min, false, maxDistDuration, "the smallest value")
		hi := v.duration(p+".max", d.Max, true, maxDistDuration, "the largest value")
		if d.Min.Set && d.Max.Set && lo > hi {
			v.bad(p, "min %v is above max %v; swap them", lo, hi)
		}
		only("mean", d.Mean.Set, "constant, exponential and lognormal")
		only("cv", d.CV != nil, "lognormal")
		mean = (lo + hi) / 2
	}
	if len(v.errs) > n {
		return 0
	}
	return secs(mean)
}

// duration checks a duration field; positive requires > 0, else ≥ 0.
func (v *validator) duration(p string, d Duration, positive bool, limit des.Duration, what string) des.Duration {
	switch {
	case !d.Set:
		v.bad(p, "missing; give %s as a string with a unit, like \"1ms\"", what)
	case d.D < 0:
		v.bad(p, "%v is negative; give %s as a positive duration", d.D, what)
	case positive && d.D == 0:
		v.bad(p, "0s is not allowed; give %s as a positive duration", what)
	case d.D > limit:
		v.bad(p, "%v is longer than the %v the lab accepts; shorten it", d.D, limit)
	default:
		return d.D
	}
	return 0
}

// competing checks c and returns its thread count and rounds per second.
func (v *validator) competing(p string, c *Competing) (int, float64) {
	v.name(p+".name", c.Name, "the thread group")
	switch {
	case c.Priority == nil:
		v.bad(p+".priority", "missing; give the threads' base priority, 1 to 31 (16–31 are real-time)")
	case *c.Priority < 1 || *c.Priority > 31:
		v.bad(p+".priority", "%d is not a thread priority; give 1 to 31 (16–31 are real-time)", *c.Priority)
	}
	n := c.threads()
	if n < 1 || n > maxCompeting {
		v.bad(p+".count", "%d threads is impossible; give 1 to %d (or remove the group)", n, maxCompeting)
		n = 0
	}
	a := v.dist(p+".compute", &c.Compute, "how long each round computes")
	b := v.dist(p+".sleep", &c.Sleep, "how long each round sleeps")
	round := a + b
	if round <= 0 {
		return n, 0
	}
	return n, 1 / round
}

func (v *validator) pool(p string, pl *Pool) {
	if pl.Name != "" {
		v.name(p+".name", pl.Name, "the pool")
	}
	known := PoolPolicyNames()
	switch {
	case pl.Policy == "":
		v.bad(p+".policy", "missing; give one of %s", strings.Join(known, ", "))
	case !slices.Contains(known, pl.Policy):
		v.bad(p+".policy", "unknown pool policy %q; use one of %s (a package of your own can add more with lab.RegisterPool)", clip(pl.Policy), strings.Join(known, ", "))
	}
	if pl.Limit != nil {
		if pl.Policy == "fixed" || pl.Policy == "reactos" {
			v.bad(p+".limit", "does not apply to \"policy\": %q; remove it (max_dynamic caps every policy)", pl.Policy)
		} else if *pl.Limit < 1 || *pl.Limit > maxThreads {
			v.bad(p+".limit", "%d is impossible; give 1 to %d dynamic threads per queue", *pl.Limit, maxThreads)
		}
	}
	if pl.MaxDynamic != nil && (*pl.MaxDynamic < 0 || *pl.MaxDynamic > maxThreads) {
		v.bad(p+".max_dynamic", "%d is impossible; give 0 to %d dynamic threads per queue (ReactOS: 16)", *pl.MaxDynamic, maxThreads)
	}
	if pl.Concurrency != nil && (*pl.Concurrency < 1 || *pl.Concurrency > maxThreads) {
		v.bad(p+".concurrency", "%d is impossible; give 1 to %d, or remove it for the processor count", *pl.Concurrency, maxThreads)
	}
	if pl.BalancePeriod.Set {
		v.duration(p+".balance_period", pl.BalancePeriod, true, maxDuration, "the balance manager's pass interval")
	}
	for _, k := range sortedKeys(pl.Static) {
		n := pl.Static[k]
		kp := joinPath(p+".static", k)
		t, err := parseQueue(k)
		switch {
		case err != nil:
			v.bad(kp, "%v", err)
		case t >= queues.MaximumWorkQueue:
			v.bad(kp, "custom-priority queues have no static threads (they get one thread at first use); remove it")
		case n < 0 || n > maxThreads:
			v.bad(kp, "%d static threads is impossible; give 0 to %d", n, maxThreads)
		}
	}
}

// threads is the group's thread count: Count, 1 by default.
func (c *Competing) threads() int {
	if c.Count == nil {
		return 1
	}
	return *c.Count
}

// label names the pool in policy names.
func (pl *Pool) label() string {
	if pl.Name != "" {
		return pl.Name
	}
	return pl.Policy
}

// parseQueue reads a WORK_QUEUE_TYPE name.
func parseQueue(s string) (queues.WORK_QUEUE_TYPE, error) {
	for t := queues.WORK_QUEUE_TYPE(0); t < queues.MaximumWorkQueue; t++ {
		if s == t.String() {
			return t, nil
		}
	}
	if rest, ok := strings.CutPrefix(s, "CustomPriorityWorkQueue+"); ok {
		p, err := strconv.Atoi(rest)
		if err == nil && p >= 1 && p <= 31 && strconv.Itoa(p) == rest {
			return queues.CustomPriorityWorkQueue + queues.WORK_QUEUE_TYPE(p), nil
		}
		return 0, fmt.Errorf("%q: the priority after CustomPriorityWorkQueue+ must be 1 to 31", clip(s))
	}
	var names []string
	for t := queues.WORK_QUEUE_TYPE(0); t < queues.MaximumWorkQueue; t++ {
		names = append(names, t.String())
	}
	return 0, fmt.Errorf("unknown queue type %q; use one of %s, or CustomPriorityWorkQueue+P (P 1–31)", clip(s), strings.Join(names, ", "))
}

// fmtFloat formats a value from the file as Go reads it back ("1e+09",
// "-3").
func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// secs converts virtual time to seconds.
func secs(d des.Duration) float64 { return float64(d) / float64(des.Second) }
