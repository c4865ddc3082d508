package proptest

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/model"
)

// Options configures an exploration.
type Options struct {
	Scenario *model.Scenario
	Variant  string
	Strategy Strategy // nil: the default portfolio (NewPortfolio)
	Seed     uint64   // base seed; execution i runs with ExecSeed(Seed, i)
	Execs    int      // executions (across all shards); 0 means 1000
	Duration time.Duration
	Parallel int // workers; 0 means GOMAXPROCS
	// Shard/Shards partition executions: this run takes i with i%Shards == Shard.
	Shard, Shards int
	// KeepGoing records every failure instead of stopping at the first.
	KeepGoing bool
	// Shrink minimises the first failure and FailDir receives its fail file.
	Shrink  bool
	FailDir string
	// Progress, if set, is called from one goroutine about once a second.
	Progress func(Progress)
}

// Progress is a snapshot for progress lines.
type Progress struct {
	Execs    int
	Failures int
	Elapsed  time.Duration
}

// Failure is one failing execution, and its minimised form.
type Failure struct {
	Exec     int
	Seed     uint64
	By       string // the strategy that ran it (a portfolio's member)
	Result   model.Result
	Minimal  []des.Decision // shrunk log (nil if not shrunk)
	MinFinal model.Result   // outcome of the shrunk log
	// ShrinkComplete reports that shrinking finished (Minimal is
	// 1-minimal); false when its budget cut it short or it did not run.
	ShrinkComplete bool
	File           string // fail file written, if any
}

// Report summarises an exploration.
type Report struct {
	Strategy string
	Execs    int
	Failures []Failure // sorted by execution index
	Elapsed  time.Duration
	Stopped  bool // interrupted by the context or the time budget
	// Fingerprints counts the distinct schedules run: executions whose
	// traces differ (the trace hash covers every event, so executions with
	// one fingerprint behaved identically). Marks lists the marks at least
	// one execution reached, sorted; Missed the marks declared with
	// model.Env.Sometimes that none reached. With KeepGoing off, only the
	// executions up to the first failure count, as a serial run would.
	Fingerprints int
	Marks        []string
	Missed       []string
}

// First returns the lowest-index failure, or nil.
func (r *Report) First() *Failure {
	if len(r.Failures) == 0 {
		return nil
	}
	return &r.Failures[0]
}

// Explore runs executions of one scenario variant. Executions are
// independent and run on Parallel workers; the reported failures are those
// a serial run over the same indexes would report (the lowest-index failure
// first), whatever the interleaving of the workers.
func Explore(ctx context.Context, o Options) (*Report, error) {
	if err := o.normalise(); err != nil {
		return nil, err
	}
	if pr, ok := o.Strategy.(Preparer); ok {
		prof, err := NaturalProfile(o.Scenario, o.Variant, o.Seed)
		if err != nil {
			return nil, err
		}
		o.Strategy = pr.Prepare(prof)
	}
	start := time.Now()
	var rep *Report
	if _, seq := o.Strategy.(Sequential); seq || o.Parallel == 1 {
		rep = exploreSerial(ctx, o, start)
	} else {
		rep = exploreParallel(ctx, o, start)
	}
	rep.Strategy = o.Strategy.Describe()
	rep.Elapsed = time.Since(start)
	if f := rep.First(); f != nil && o.Shrink {
		if err := finishFailure(&o, f); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

func (o *Options) normalise() error {
	if o.Scenario == nil {
		return fmt.Errorf("explore: no scenario")
	}
	if _, ok := o.Scenario.Variant(o.Variant); !ok {
		return fmt.Errorf("explore: scenario %q has no variant %q", o.Scenario.Name, o.Variant)
	}
	if o.Strategy == nil {
		o.Strategy = NewPortfolio()
	}
	if o.Execs <= 0 {
		o.Execs = 1000
	}
	if o.Parallel <= 0 {
		o.Parallel = runtime.GOMAXPROCS(0)
	}
	if o.Shards <= 0 {
		o.Shards = 1
	}
	if o.Shard < 0 || o.Shard >= o.Shards {
		return fmt.Errorf("explore: shard %d/%d is out of range; use i/n with 0 ≤ i < n", o.Shard, o.Shards)
	}
	return nil
}

// mine reports whether global execution i belongs to this shard.
func (o *Options) mine(i int) bool { return i%o.Shards == o.Shard }

func (o *Options) expired(ctx context.Context, start time.Time) bool {
	return ctx.Err() != nil || (o.Duration > 0 && time.Since(start) > o.Duration)
}

func runExec(o *Options, sim *des.Sim, i int) (model.Result, error) {
	seed := ExecSeed(o.Seed, i)
	var ch des.Chooser
	if ix, ok := o.Strategy.(Indexed); ok {
		ch = ix.ChooserAt(i, seed)
	} else {
		ch = o.Strategy.Chooser(seed)
	}
	return model.Run(o.Scenario, o.Variant, model.RunConfig{Seed: seed, Chooser: ch, Sim: sim})
}

// newFailure records failing execution i.
func newFailure(o *Options, i int, r model.Result) Failure {
	by := o.Strategy.Describe()
	if ix, ok := o.Strategy.(Indexed); ok {
		by = ix.MemberAt(i)
	}
	return Failure{Exec: i, Seed: r.Seed, By: by, Result: cloneResult(r)}
}

func exploreSerial(ctx context.Context, o Options, start time.Time) *Report {
	rep := &Report{}
	sim := des.New(des.Config{})
	defer sim.Close()
	cov := newCoverage()
	defer func() { fillCoverage(rep, o.Execs, cov) }()
	seq, _ := o.Strategy.(Sequential)
	last := time.Now()
	for i := 0; i < o.Execs; i++ {
		if o.expired(ctx, start) {
			rep.Stopped = true
			break
		}
		if !o.mine(i) {
			continue
		}
		r, err := runExec(&o, sim, i)
		if err != nil {
			rep.Stopped = true
			break
		}
		rep.Execs++
		cov.add(i, r)
		if r.Failed() {
			rep.Failures = append(rep.Failures, newFailure(&o, i, r))
			if !o.KeepGoing {
				break
			}
		}
		if seq != nil && !seq.Observe(r.Outcome.Decisions) {
			break
		}
		if o.Progress != nil && time.Since(last) > time.Second {
			last = time.Now()
			o.Progress(Progress{Execs: rep.Execs, Failures: len(rep.Failures), Elapsed: time.Since(start)})
		}
	}
	return rep
}

func exploreParallel(ctx context.Context, o Options, start time.Time) *Report {
	var next, done atomic.Int64
	stopAt := atomic.Int64{}
	stopAt.Store(int64(o.Execs))
	var mu sync.Mutex
	var fails []Failure
	var wg sync.WaitGroup
	stopped := atomic.Bool{}
	covs := make([]*coverage, o.Parallel)
	for w := 0; w < o.Parallel; w++ {
		wg.Add(1)
		cov := newCoverage()
		covs[w] = cov
		go func() {
			defer wg.Done()
			sim := des.New(des.Config{})
			defer sim.Close()
			for {
				i := int(next.Add(1) - 1)
				if i >= int(stopAt.Load()) {
					return
				}
				if o.expired(ctx, start) {
					stopped.Store(true)
					return
				}
				if !o.mine(i) {
					continue
				}
				r, err := runExec(&o, sim, i)
				if err != nil {
					stopped.Store(true)
					return
				}
				done.Add(1)
				cov.add(i, r)
				if r.Failed() {
					mu.Lock()
					fails = append(fails, newFailure(&o, i, r))
					mu.Unlock()
					if !o.KeepGoing {
						lowerTo(&stopAt, int64(i))
					}
				}
			}
		}()
	}
	if o.Progress != nil {
		go progressLoop(ctx, &o, start, &done, &mu, &fails, &wg)
	}
	wg.Wait()
	sort.Slice(fails, func(a, b int) bool { return fails[a].Exec < fails[b].Exec })
	if !o.KeepGoing && len(fails) > 1 {
		fails = fails[:1]
	}
	rep := &Report{Execs: int(done.Load()), Failures: fails, Stopped: stopped.Load()}
	upTo := o.Execs
	if !o.KeepGoing && len(fails) == 1 {
		// Executions past the first failure may have run in parallel; a
		// serial run would not have: count only those up to it.
		upTo = fails[0].Exec + 1
		rep.Execs = countMine(&o, upTo)
	}
	fillCoverage(rep, upTo, covs...)
	return rep
}

func countMine(o *Options, upTo int) int {
	n := 0
	for i := 0; i < upTo; i++ {
		if o.mine(i) {
			n++
		}
	}
	return n
}

func lowerTo(v *atomic.Int64, x int64) {
	for {
		cur := v.Load()
		if x >= cur || v.CompareAndSwap(cur, x) {
			return
		}
	}
}

func progressLoop(ctx context.Context, o *Options, start time.Time, done *atomic.Int64, mu *sync.Mutex, fails *[]Failure, wg *sync.WaitGroup) {
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-finished:
			return
		case <-ctx.Done():
			return
		case <-t.C:
			mu.Lock()
			n := len(*fails)
			mu.Unlock()
			o.Progress(Progress{Execs: int(done.Load()), Failures: n, Elapsed: time.Since(start)})
		}
	}
}

// cloneResult copies the parts of a result that a reused Sim overwrites.
func cloneResult(r model.Result) model.Result {
	r.Outcome.Decisions = append([]des.Decision(nil), r.Outcome.Decisions...)
	r.Outcome.Tail = append([]des.Record(nil), r.Outcome.Tail...)
	return r
}

// finishFailure checks that the failure reproduces, shrinks it and writes
// its fail file.
func finishFailure(o *Options, f *Failure) error {
	if err := CheckDeterministic(o.Scenario, o.Variant, f.Seed, f.Result.Outcome); err != nil {
		return fmt.Errorf("execution %d (seed %d): %w", f.Exec, f.Seed, err)
	}
	sh, err := Minimize(o.Scenario, o.Variant, f.Seed, f.Result.Outcome.Decisions, ShrinkOptions{})
	if err != nil {
		return fmt.Errorf("shrinking execution %d: %w", f.Exec, err)
	}
	min, res := sh.Log, sh.Final
	f.Minimal, f.MinFinal, f.ShrinkComplete = min, res, sh.Complete
	if o.FailDir == "" {
		return nil
	}
	path := FailFilePath(o.FailDir, o.Scenario.Name, o.Variant)
	ff := NewFailFile(o.Scenario.Name, o.Variant, f.Seed, o.Strategy.Describe(), min, res)
	if err := WriteFailFile(path, ff); err != nil {
		return err
	}
	f.File = path
	return nil
}

// CheckDeterministic replays a recorded execution from its decision log
// and compares decisions, trace hash and outcome: any difference means
// something outside the decisions reached the run (map order, wall-clock
// time, global random state, a goroutine).
func CheckDeterministic(s *model.Scenario, variant string, seed uint64, first des.Outcome) error {
	again, err := model.Run(s, variant, model.RunConfig{Seed: seed, Chooser: des.NewReplay(first.Decisions)})
	if err != nil {
		return err
	}
	return CompareRuns(first, again.Outcome)
}

// FailFilePath is where the fail file of a scenario variant lives in dir.
func FailFilePath(dir, scenario, variant string) string {
	return filepath.Join(dir, scenario+"-"+variant+".fail")
}

// NewFailFile builds the fail file of a (shrunk) failing run.
func NewFailFile(scenario, variant string, seed uint64, strategy string, log []des.Decision, res model.Result) *FailFile {
	return &FailFile{
		Scenario: scenario, Variant: variant, Seed: seed, Strategy: strategy,
		Hash: res.Outcome.Hash, Outcome: errText(res.Outcome.Err), Marks: res.Marks,
		Tail: res.Outcome.Tail, Decisions: log,
	}
}

// Replay runs a fail file strictly: every decision must match, and the
// trace hash must equal the recorded one.
func Replay(f *FailFile, sink des.Sink) (model.Result, error) {
	s, err := model.Lookup(f.Scenario)
	if err != nil {
		return model.Result{}, err
	}
	if _, ok := s.Variant(f.Variant); !ok {
		return model.Result{}, fmt.Errorf("fail file names variant %q, which scenario %q does not have (its variants: %v)", f.Variant, f.Scenario, s.VariantNames())
	}
	rp := des.NewReplay(f.Decisions)
	r, err := model.Run(s, f.Variant, model.RunConfig{Seed: f.Seed, Chooser: rp, Sink: sink})
	if err != nil {
		return r, err
	}
	if rp.Err() == nil && r.Outcome.Hash != f.Hash {
		return r, &HashMismatch{Scenario: f.Scenario, Variant: f.Variant, Got: r.Outcome.Hash, Want: f.Hash}
	}
	return r, nil
}

// HashMismatch reports that a strict replay followed every decision but
// produced a different trace than the fail file recorded.
type HashMismatch struct {
	Scenario, Variant string
	Got, Want         uint64
}

func (m *HashMismatch) Error() string {
	return fmt.Sprintf("replay of %s:%s reproduced a different trace (hash %#x, file says %#x): the scenario or simulator changed since the file was written",
		m.Scenario, m.Variant, m.Got, m.Want)
}
