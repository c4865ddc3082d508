package proptest

import (
	"context"
	"fmt"
	"runtime"
	"slices"
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
	Execs    int      // executions (across all shards); 0 means DefaultExecs
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
	// Watchdog is how long one execution may run without coming back
	// before the exploration reports it stuck; 0 means the larger of
	// DefaultWatchdog and 1000 times the median execution time so far.
	// The exploration also gives up on a running execution one second
	// after ctx is done or Duration has passed.
	Watchdog time.Duration
	// ShrinkBudget bounds the wall-clock time spent shrinking the first
	// failure; 0 means the shrinker's default, 10 s (the command line's).
	// Find uses FindShrinkBudget when it is 0, so that a loaded machine
	// does not cut a test's shrinking short.
	ShrinkBudget time.Duration
	// Reproduce, if set, is how the fail file says to re-run it (see
	// Reproduce); nil means DefaultReproduce. Check and Find set it to the
	// calling test.
	Reproduce *Reproduce
	// AnyFailure makes Find accept any failure; by default Find also
	// requires the variant's declared Want and Marks.
	AnyFailure bool
}

// DefaultExecs is the exploration budget when none is given: Explore,
// Check, Find and the command line's --execs all default to it. Raise it
// with CheckOptions.Execs, Options.Execs, -wqsim.execs or WQSIM_EXECS; a
// smaller budget misses real races (a user's cancel-safe minifilter race
// went unfound at 1,000 executions and was found within 10,000).
const DefaultExecs = 10_000

// Progress is a snapshot for progress lines.
type Progress struct {
	Execs    int
	Failures int
	Elapsed  time.Duration
}

// Failure is one failing execution, and its minimised form.
type Failure struct {
	// Exec is the execution's 0-based index in the exploration: its seed
	// is ExecSeed(base seed, Exec), and it was the (Exec+1)-th execution.
	// Messages print it as "execution index N".
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

	scenario *model.Scenario // for WriteTimelines
}

// Perturbations returns how many decisions of the failure's final schedule
// (the shrunk one if it was shrunk) are not natural: the injected
// preemptions, stalls, jitters and non-default workload choices the
// failure needs.
func (f *Failure) Perturbations() int {
	log := f.Minimal
	if log == nil {
		log = f.Result.Outcome.Decisions
	}
	n := 0
	for _, d := range log {
		if d.Choice != 0 {
			n++
		}
	}
	return n
}

// Report summarises an exploration.
type Report struct {
	Strategy string
	Execs    int
	Failures []Failure // sorted by execution index
	Elapsed  time.Duration
	Stopped  bool // ended before its executions ran: End says why
	End      End
	// Marks counts, for every coverage mark (racy path) reached, the
	// executions that reached it.
	Marks map[string]int
	// Fingerprints counts the distinct schedules run: executions whose
	// traces differ (the trace hash covers every event, so executions with
	// one fingerprint behaved identically). Up to 65,536 distinct
	// schedules the count is exact; beyond, so that an exploration's memory
	// does not grow with its length, it is a HyperLogLog estimate (4,096
	// registers, relative standard error ≈ 1.6 %, so within ±5 % in
	// 99.7 % of explorations) and FingerprintsEstimated is set. Exact or
	// estimated, it depends only on the executions counted, never on how
	// they were split among workers or shards of one Explore call.
	// Missed lists the marks declared with model.Env.Sometimes that no
	// execution reached. With KeepGoing off, both count only the
	// executions up to the first failure, as a serial run would.
	Fingerprints          int
	FingerprintsEstimated bool
	Missed                []string
}

// End says why an exploration ended.
type End uint8

const (
	EndComplete    End = iota // every execution of the budget ran
	EndFailure                // stopped at the first failure
	EndTime                   // Options.Duration ran out
	EndInterrupted            // the context was cancelled (Ctrl-C)
	EndExhausted              // a Sequential strategy explored every schedule
	EndStuck                  // the watchdog gave up on an execution
	EndError                  // an execution could not be set up
)

var endNames = [...]string{"complete", "failure", "time limit", "interrupted", "exhausted", "stuck", "error"}

func (e End) String() string {
	if int(e) < len(endNames) {
		return endNames[e]
	}
	return fmt.Sprintf("End(%d)", e)
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
//
// An execution that does not come back within the watchdog limit (see
// Options.Watchdog) ends the exploration: it is reported as a failure whose
// outcome is a *StuckError, and its goroutine is abandoned.
func Explore(ctx context.Context, o Options) (*Report, error) {
	if err := o.normalise(); err != nil {
		return nil, err
	}
	if pr, ok := o.Strategy.(Preparer); ok {
		prof, err := naturalProfile(ctx, o.Watchdog, o.Scenario, o.Variant, o.Seed)
		if err != nil {
			return nil, err
		}
		o.Strategy = pr.Prepare(prof)
	}
	x := &exploration{o: o, ctx: ctx, start: time.Now()}
	rep := x.run()
	rep.Strategy = o.Strategy.Describe()
	rep.Elapsed = time.Since(x.start)
	for i := range rep.Failures {
		rep.Failures[i].scenario = o.Scenario
	}
	if f := rep.First(); f != nil && o.Shrink {
		if err := finishFailure(ctx, &o, f); err != nil {
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
		o.Execs = DefaultExecs
	}
	if o.Shards <= 0 {
		o.Shards = 1
	}
	if o.Shard < 0 || o.Shard >= o.Shards {
		return fmt.Errorf("explore: shard %d/%d is out of range; use i/n with 0 ≤ i < n", o.Shard, o.Shards)
	}
	if o.Parallel <= 0 {
		o.Parallel = runtime.GOMAXPROCS(0)
	}
	// More workers than executions, or than MaxParallel, only cost memory:
	// each builds a simulation.
	o.Parallel = max(1, min(o.Parallel, MaxParallel, countMine(o, o.Execs)))
	return nil
}

// MaxParallel caps Options.Parallel: beyond it workers only add memory.
const MaxParallel = 1024

// mine reports whether global execution i belongs to this shard.
func (o *Options) mine(i int) bool { return i%o.Shards == o.Shard }

func runExec(o *Options, sim *des.Sim, i int, kept *choosers) (model.Result, error) {
	seed := ExecSeed(o.Seed, i)
	return model.Run(o.Scenario, o.Variant, model.RunConfig{Seed: seed, Chooser: o.reusedChooser(i, kept), Sim: sim})
}

// choosers is one worker's choosers, one per strategy (indexed by a
// portfolio's member), reused from execution to execution through Recycler.
type choosers []des.Chooser

// reusedChooser returns the chooser of execution i, which is the one
// chooser(i) returns, recycled from kept when its strategy is a Recycler.
func (o *Options) reusedChooser(i int, kept *choosers) des.Chooser {
	st, slot := o.Strategy, 0
	if p, ok := st.(*Portfolio); ok {
		// p.ChooserAt(i, seed) is this member's Chooser(seed).
		slot = i % len(p.Members)
		st = p.Members[slot]
	} else if _, ok := st.(Indexed); ok {
		return o.chooser(i)
	}
	r, ok := st.(Recycler)
	if !ok {
		return o.chooser(i)
	}
	for len(*kept) <= slot {
		*kept = append(*kept, nil)
	}
	c := r.Rechoose((*kept)[slot], ExecSeed(o.Seed, i))
	(*kept)[slot] = c
	return c
}

// chooser returns the chooser of execution i.
func (o *Options) chooser(i int) des.Chooser {
	seed := ExecSeed(o.Seed, i)
	if ix, ok := o.Strategy.(Indexed); ok {
		return ix.ChooserAt(i, seed)
	}
	return o.Strategy.Chooser(seed)
}

// newFailure records failing execution i.
func newFailure(o *Options, i int, r model.Result) Failure {
	by := o.Strategy.Describe()
	if ix, ok := o.Strategy.(Indexed); ok {
		by = ix.MemberAt(i)
	}
	return Failure{Exec: i, Seed: r.Seed, By: by, Result: cloneResult(r)}
}

func countMine(o *Options, upTo int) int {
	// executions i < upTo with i%Shards == Shard
	if upTo <= o.Shard {
		return 0
	}
	return (upTo-o.Shard-1)/o.Shards + 1
}

func lowerTo(v *atomic.Int64, x int64) {
	for {
		cur := v.Load()
		if x >= cur || v.CompareAndSwap(cur, x) {
			return
		}
	}
}

// cloneResult copies the parts of a result that a reused Sim overwrites.
func cloneResult(r model.Result) model.Result {
	r.Outcome.Decisions = append([]des.Decision(nil), r.Outcome.Decisions...)
	r.Outcome.Tail = append([]des.Record(nil), r.Outcome.Tail...)
	r.Marks = slices.Clone(r.Marks)
	r.Sometimes = slices.Clone(r.Sometimes)
	return r
}

// finishFailure checks that the failure reproduces, shrinks it and writes
// its fail file.
func finishFailure(ctx context.Context, o *Options, f *Failure) error {
	if _, stuck := f.Result.Outcome.Err.(*StuckError); stuck {
		// Replaying or shrinking it would get stuck again.
		return writeFailure(o, f, f.Result.Outcome.Decisions, f.Result)
	}
	if err := CheckDeterministic(o.Scenario, o.Variant, f.Seed, f.Result.Outcome); err != nil {
		return fmt.Errorf("execution %d (seed %d): %w", f.Exec, f.Seed, err)
	}
	sh, err := Minimize(o.Scenario, o.Variant, f.Seed, f.Result.Outcome.Decisions, ShrinkOptions{Context: ctx, Watchdog: o.Watchdog, Budget: o.ShrinkBudget})
	if err != nil {
		return fmt.Errorf("shrinking execution %d: %w", f.Exec, err)
	}
	f.ShrinkComplete = sh.Complete
	return writeFailure(o, f, sh.Log, sh.Final)
}

// writeFailure records the final schedule of f and writes its fail file
// when o.FailDir is set.
func writeFailure(o *Options, f *Failure, log []des.Decision, res model.Result) error {
	if log == nil {
		// The natural schedule fails: the shrunk log is empty, and must
		// not read as "not shrunk" (Perturbations would count the
		// original's).
		log = []des.Decision{}
	}
	f.Minimal, f.MinFinal = log, res
	if o.FailDir == "" {
		return nil
	}
	ff := NewFailFile(o, f, log, res)
	ff.Reproduce = o.Reproduce
	path, err := SaveFailFile(o.FailDir, ff)
	if err != nil {
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

// NewFailFile builds the fail file of failure f of the exploration o,
// recording log (the failing schedule, shrunk or not) and its result res.
func NewFailFile(o *Options, f *Failure, log []des.Decision, res model.Result) *FailFile {
	return &FailFile{
		Scenario: o.Scenario.Name, Variant: o.Variant, Seed: f.Seed, Strategy: o.Strategy.Describe(),
		Exec: f.Exec, BaseSeed: o.Seed, Shard: o.Shard, Shards: max(o.Shards, 1),
		Hash: res.Outcome.Hash, Budget: res.Budget, Outcome: errText(res.Outcome.Err), Marks: res.Marks,
		Tail: res.Outcome.Tail, Decisions: log,
	}
}

// Replay runs a fail file strictly: every decision must match, and the
// trace hash must equal the recorded one. It is ReplayWatched with the
// default watchdog.
func Replay(f *FailFile, sink des.Sink) (model.Result, error) {
	return ReplayWatched(context.Background(), 0, f, sink)
}

// ReplayWatched is Replay under the watchdog (see RunWatched): a replay
// that stops progressing for limit, or a second after ctx is done, comes
// back with a *StuckError outcome.
func ReplayWatched(ctx context.Context, limit time.Duration, f *FailFile, sink des.Sink) (model.Result, error) {
	s, err := model.Lookup(f.Scenario)
	if err != nil {
		return model.Result{}, err
	}
	return ReplayScenario(ctx, limit, s, f, sink)
}

// ReplayScenario is ReplayWatched against a given scenario, which need not
// be registered (a test's own scenario); the fail file must name it.
func ReplayScenario(ctx context.Context, limit time.Duration, s *model.Scenario, f *FailFile, sink des.Sink) (model.Result, error) {
	if f.Scenario != s.Name {
		return model.Result{}, fmt.Errorf("fail file is for scenario %q, not %q", f.Scenario, s.Name)
	}
	if _, ok := s.Variant(f.Variant); !ok {
		return model.Result{}, fmt.Errorf("fail file names variant %q, which scenario %q does not have (its variants: %v)", f.Variant, f.Scenario, s.VariantNames())
	}
	rp := des.NewReplay(f.Decisions)
	b := f.Budget.Or(model.DefaultBudget) // the run's own budget, whatever s declares now
	r, err := RunWatched(ctx, limit, s, f.Variant, model.RunConfig{Seed: f.Seed, Chooser: rp, Sink: sink, HashV3: f.Version == 3,
		CoarseStalls: f.Version != 0 && f.Version < firstFineStallsVersion,
		StepBudget:   b.Steps, DecisionBudget: b.Decisions})
	if err != nil {
		return r, err
	}
	if _, stuck := r.Outcome.Err.(*StuckError); stuck {
		return r, nil
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

// Class implements des.Finding.
func (m *HashMismatch) Class() des.Class { return des.ClassReplayMismatch }

// Signature implements des.Finding.
func (m *HashMismatch) Signature() string { return "replay mismatch" }
