package proptest

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
)

// Signature classifies a failure so shrinking keeps "the same bug": the
// finding's des.Signature (bug-check code, invariant name, class), which
// leaves out virtual time and actors.
func Signature(err error) string { return des.Signature(err) }

// OutcomeText is a failure as wqsim prints it after "outcome: ": its
// signature, then its message without a leading restatement of the
// signature ("bugcheck 0xC4: DRIVER_VERIFIER_DETECTED_VIOLATION …", not
// "bugcheck 0xC4: bug check 0xC4 …"). A variant's Want is matched against
// it as well as against the error's own text.
func OutcomeText(err error) string {
	sig := Signature(err)
	return sig + ": " + withoutPrefix(err.Error(), sig)
}

// withoutPrefix drops from text a leading restatement of sig (compared
// ignoring case, spaces and quotes: "bug check 0xC4 …" for "bugcheck 0xC4",
// "hang: …" for "hang", `invariant "x" violated …` for "invariant x").
func withoutPrefix(text, sig string) string {
	i, j := 0, 0
	for i < len(text) && j < len(sig) {
		switch {
		case text[i] == ' ' || text[i] == '"':
			i++ // a name the error quotes ("invariant \"x\" violated") still restates sig
		case sig[j] == ' ':
			j++
		case strings.EqualFold(text[i:i+1], sig[j:j+1]):
			i++
			j++
		default:
			return text
		}
	}
	if j < len(sig) {
		return text
	}
	rest := strings.TrimLeft(text[i:], ": \"")
	if rest == "" {
		return text
	}
	return rest
}

// ShrinkOptions bounds the shrinker.
type ShrinkOptions struct {
	// MaxRuns is the executions to spend; 0 means 2000, plus up to
	// 20,000 more for the search for a smaller schedule (see Minimize).
	// A positive MaxRuns bounds every pass, that search included.
	MaxRuns int
	// extra is the search's own run budget (set by Minimize).
	extra   int
	Budget  time.Duration   // wall-clock budget; 0 means 10s
	Context context.Context // stops shrinking early when done (Ctrl-C)
	// Watchdog is how long one candidate run may take before shrinking
	// gives up on it (and on shrinking); 0 means DefaultWatchdog.
	Watchdog time.Duration
}

// Shrunk is the result of minimising a failing decision log.
type Shrunk struct {
	Log   []des.Decision // the minimal log, without trailing zero decisions
	Final model.Result   // the outcome of replaying Log
	// Complete reports that shrinking finished: Log is 1-minimal (zeroing
	// any one of its perturbations no longer fails the same way). False
	// means the run or time budget, the context or the watchdog cut it
	// short: Log still fails the same way but may keep perturbations it
	// does not need.
	Complete bool
	Runs     int // candidate executions spent
}

// Shrink minimises a failing decision log; see Minimize.
func Shrink(s *model.Scenario, variant string, seed uint64, log []des.Decision, opts ShrinkOptions) ([]des.Decision, model.Result, error) {
	r, err := Minimize(s, variant, seed, log, opts)
	return r.Log, r.Final, err
}

// Minimize shrinks a failing decision log to a 1-minimal one. Every
// candidate is replayed (a guided run that follows the log while it matches
// and takes choice 0 after) and kept when it fails with the same Signature;
// an accepted candidate is re-recorded from its run, without trailing zero
// decisions. The passes, in order: the natural schedule alone; each
// perturbation alone (most bugs need one, and delta debugging can miss the
// one that matters when others mask it; with more than 64, after delta
// debugging has brought them down to 64); delta debugging — zeroing, then
// deleting, chunks of perturbations, halving the chunk size — alternating
// a positional and an anchored parametrization until neither helps;
// lowering single choices; a pass that zeroes each remaining perturbation
// alone, starting over after every success, until none can go; and, when
// that 1-minimal log still has more than three perturbations, a search for
// a different, smaller failing schedule (see smaller.go: subsets of two or
// three of its perturbations, then sparse random schedules of one to three)
// with a run budget of its own, whose find is shrunk to 1-minimal again.
//
// Shrinking runs on a goroutine of its own so that it always comes back:
// within half a second of Context being done, or when a candidate run
// exceeds the watchdog, Minimize returns the smallest failing log found so
// far with Complete false (the candidate's goroutine is abandoned).
func Minimize(s *model.Scenario, variant string, seed uint64, log []des.Decision, opts ShrinkOptions) (Shrunk, error) {
	if opts.MaxRuns == 0 {
		opts.MaxRuns, opts.extra = 2000, smallerRuns
	}
	if opts.Budget == 0 {
		opts.Budget = 10 * time.Second
	}
	if opts.Context == nil {
		opts.Context = context.Background()
	}
	if opts.Watchdog <= 0 {
		opts.Watchdog = DefaultWatchdog
	}
	type out struct {
		r   Shrunk
		err error
	}
	sw := &shrinkWatch{}
	done := make(chan out, 1)
	go func() {
		r, err := shrink(s, variant, seed, log, opts, sw)
		done <- out{r, err}
	}()
	tick := time.NewTicker(watchTick(opts.Watchdog))
	defer tick.Stop()
	var cancelled time.Time
	for {
		select {
		case o := <-done:
			return o.r, o.err
		case now := <-tick.C:
			if opts.Context.Err() != nil && cancelled.IsZero() {
				cancelled = now
			}
			started := sw.slot.start.Load()
			late := started != 0 && now.Sub(time.Unix(0, started)) >= opts.Watchdog
			if late || (!cancelled.IsZero() && now.Sub(cancelled) >= 500*time.Millisecond) {
				if st := sw.best.Load(); st != nil {
					return Shrunk{Log: st.log, Final: st.res}, nil
				}
				return Shrunk{}, fmt.Errorf("shrink: interrupted before the log was replayed once")
			}
		}
	}
}

// shrinkWatch is what Shrink's caller sees of the shrinking goroutine: the
// candidate running (for the watchdog) and the best log so far.
type shrinkWatch struct {
	slot execSlot
	best atomic.Pointer[shrinkState]
}

type shrinkState struct {
	log []des.Decision
	res model.Result
}

// run runs one candidate, visible to the watchdog.
func (w *shrinkWatch) run(f func() (model.Result, error)) (model.Result, error) {
	w.slot.start.Store(time.Now().UnixNano())
	defer w.slot.start.Store(0)
	return f()
}

func shrink(s *model.Scenario, variant string, seed uint64, log []des.Decision, opts ShrinkOptions, sw *shrinkWatch) (Shrunk, error) {
	sim := des.New(des.Config{})
	defer sim.Close()
	runWith := func(c des.Chooser) (model.Result, error) {
		return sw.run(func() (model.Result, error) {
			return model.Run(s, variant, model.RunConfig{Seed: seed, Chooser: c, Sim: sim})
		})
	}
	try := func(cand []des.Decision) (model.Result, error) { return runWith(&prefixChooser{prefix: cand}) }
	best, err := try(log)
	if err != nil {
		return Shrunk{Final: best}, err
	}
	best = cloneResult(best) // the Sim is reused: keep our own copy
	want := Signature(best.Outcome.Err)
	if want == "ok" {
		return Shrunk{Final: best}, fmt.Errorf("shrink: the log does not fail when replayed")
	}
	cur := trimZeros(best.Outcome.Decisions)
	sw.best.Store(&shrinkState{cur, best})
	tryAnchored := func(cand []des.Decision) (model.Result, error) {
		return sw.run(func() (model.Result, error) {
			return model.Run(s, variant, model.RunConfig{Seed: seed, Chooser: newAnchoredChooser(cand), Sim: sim})
		})
	}
	ctx := opts.Context
	// Two parametrizations share one budget: positional (a decision is its
	// index in the log) and anchored (a perturbation is tied to its actor's
	// own scheduling points, so removing an early one does not slide the
	// later ones onto different points).
	runs := 0
	sh := &shrinker{try: try, want: want, max: opts.MaxRuns, deadline: time.Now().Add(opts.Budget), ctx: ctx, watch: sw, runs: &runs}
	anch := &shrinker{try: tryAnchored, want: want, max: opts.MaxRuns, deadline: sh.deadline, ctx: ctx, watch: sw, runs: &runs}
	alone := false
	for {
		// Singles first, once there are few enough to try each (a long
		// random schedule can hold hundreds: delta debugging cuts those
		// down first).
		if !alone && nonZero(cur) <= maxAlone {
			cur, best = sh.alone(anch, cur, best)
			alone = true
		}
		before := nonZero(cur)
		cur, best = sh.zeroChunks(cur, best)
		cur, best = anch.zeroChunks(cur, best)
		if nonZero(cur) >= before || sh.spent() {
			break
		}
	}
	cur, best = sh.lowerEach(cur, best)
	cur, best, done := sh.oneMinimal(cur, best)
	if done && nonZero(cur) > smallTarget {
		// With the default MaxRuns the search for a smaller schedule gets
		// a budget of its own (the wall-clock budget still bounds it): its
		// runs are cheap and often many are needed.
		sh.max, anch.max = sh.max+opts.extra, anch.max+opts.extra
		sh.runWith = runWith
		cur, best, done = sh.smaller(anch, cur, best, seed)
	}
	return Shrunk{Log: cur, Final: best, Complete: done, Runs: runs}, nil
}

// smallerRuns is the run budget of the search for a smaller schedule
// after a 1-minimal one (see smaller), on top of the default MaxRuns.
const smallerRuns = 20000

// maxAlone is how many perturbations a log may have for the pass that tries
// each alone.
const maxAlone = 64

// alone tries the natural schedule, then each perturbation of cur on its
// own (positional, then anchored), and returns the first that still fails.
func (s *shrinker) alone(anch *shrinker, cur []des.Decision, best model.Result) ([]des.Decision, model.Result) {
	idx := nonZeroIndexes(cur)
	if len(idx) <= 1 {
		return cur, best
	}
	if r, ok := s.attempt(nil); ok {
		return trimZeros(r.Outcome.Decisions), r
	}
	for _, i := range idx {
		if s.spent() {
			break
		}
		only := zeroAt(cur, idx)
		only[i].Choice = cur[i].Choice
		if r, ok := s.attempt(only); ok {
			return trimZeros(r.Outcome.Decisions), r
		}
		if r, ok := anch.attempt(only); ok {
			return trimZeros(r.Outcome.Decisions), r
		}
	}
	return cur, best
}

// oneMinimal zeroes each perturbation of cur alone, starting over after
// every success, until a whole pass removes none: then no single
// perturbation can go (1-minimal) and it reports true. It reports false
// when the budget ran out first.
func (s *shrinker) oneMinimal(cur []des.Decision, best model.Result) ([]des.Decision, model.Result, bool) {
	for {
		removed := false
		for _, i := range nonZeroIndexes(cur) {
			if s.spent() {
				return cur, best, false
			}
			if r, ok := s.attempt(zeroAt(cur, []int{i})); ok {
				cur, best, removed = trimZeros(r.Outcome.Decisions), r, true
				break
			}
		}
		if !removed {
			return cur, best, true
		}
	}
}

type shrinker struct {
	try      func([]des.Decision) (model.Result, error)
	runWith  func(des.Chooser) (model.Result, error) // for smaller's sparse schedules
	want     string
	runs     *int // shared by the parametrizations
	max      int
	deadline time.Time
	ctx      context.Context
	watch    *shrinkWatch
}

func (s *shrinker) spent() bool {
	return *s.runs >= s.max || time.Now().After(s.deadline) || s.ctx.Err() != nil
}

// attempt runs cand and reports whether it still fails the same way.
func (s *shrinker) attempt(cand []des.Decision) (model.Result, bool) {
	*s.runs++
	r, err := s.try(cand)
	return s.judge(r, err)
}

// judge keeps r when it fails the same way (see attempt).
func (s *shrinker) judge(r model.Result, err error) (model.Result, bool) {
	if err != nil || Signature(r.Outcome.Err) != s.want {
		return r, false
	}
	r = cloneResult(r)
	s.watch.best.Store(&shrinkState{trimZeros(r.Outcome.Decisions), r})
	return r, true
}

func (s *shrinker) zeroChunks(cur []des.Decision, best model.Result) ([]des.Decision, model.Result) {
	for chunk := max(nonZero(cur), 1); chunk >= 1 && !s.spent(); chunk /= 2 {
		for start := 0; !s.spent(); start += chunk {
			idx := nonZeroIndexes(cur)
			if start >= len(idx) {
				break
			}
			window := idx[start:min(start+chunk, len(idx))]
			if r, ok := s.attempt(zeroAt(cur, window)); ok {
				cur, best = trimZeros(r.Outcome.Decisions), r
				start -= chunk // the indexes shifted: retry this window
			} else if r, ok := s.attempt(deleteAt(cur, window)); ok {
				// Removing the decisions (not zeroing them) shifts the later
				// ones earlier: the same perturbation, one point sooner.
				cur, best = trimZeros(r.Outcome.Decisions), r
				start -= chunk
			}
		}
		if chunk == 1 {
			break
		}
	}
	return cur, best
}

// lowerEach tries smaller non-zero values for each remaining choice. An
// accepted candidate re-records the log (it may get shorter), so the
// positions are recomputed after every success.
func (s *shrinker) lowerEach(cur []des.Decision, best model.Result) ([]des.Decision, model.Result) {
	for k := 0; !s.spent(); k++ {
		idx := nonZeroIndexes(cur)
		if k >= len(idx) {
			break
		}
		i := idx[k]
		for v := int32(1); v < cur[i].Choice && !s.spent(); v++ {
			cand := append([]des.Decision(nil), cur...)
			cand[i].Choice = v
			if r, ok := s.attempt(cand); ok {
				cur, best = trimZeros(r.Outcome.Decisions), r
				break
			}
		}
	}
	return cur, best
}

func zeroAt(log []des.Decision, idx []int) []des.Decision {
	cand := append([]des.Decision(nil), log...)
	for _, i := range idx {
		cand[i].Choice = 0
	}
	return cand
}

func deleteAt(log []des.Decision, idx []int) []des.Decision {
	cand := make([]des.Decision, 0, len(log))
	j := 0
	for i, d := range log {
		if j < len(idx) && idx[j] == i {
			j++
			continue
		}
		cand = append(cand, d)
	}
	return cand
}

func nonZero(log []des.Decision) int { return len(nonZeroIndexes(log)) }

func nonZeroIndexes(log []des.Decision) []int {
	var out []int
	for i, d := range log {
		if d.Choice != 0 {
			out = append(out, i)
		}
	}
	return out
}

func trimZeros(log []des.Decision) []des.Decision {
	n := len(log)
	for n > 0 && log[n-1].Choice == 0 {
		n--
	}
	return append([]des.Decision(nil), log[:n]...)
}

// DescribeSchedule says in words what the non-zero decisions of a log did.
func DescribeSchedule(log []des.Decision) []string {
	var out []string
	for i, d := range log {
		if d.Choice == 0 {
			continue
		}
		out = append(out, DescribeDecision(i, d))
	}
	if len(out) == 0 {
		out = append(out, "no perturbation: the natural schedule fails by itself")
	}
	return out
}

// DescribeDecision says in words what decision i (0-based; printed
// 1-based) of a log chose: "decision 89: kernel: inject preemption →
// early quantum end (another ready thread runs)".
func DescribeDecision(i int, d des.Decision) string {
	return fmt.Sprintf("decision %d: %s → %s", i+1, d.Label, describeChoice(d))
}

func describeChoice(d des.Decision) string {
	switch d.Kind {
	case kernel.PointInject:
		switch d.Choice {
		case 1:
			return "early quantum end (another ready thread runs)"
		case 3:
			return "short stall (this processor is held up briefly while the others run)"
		}
		return "stall (this processor is held up while the others run)"
	case kernel.PointStall:
		if d.Choice == 1 {
			return "short stall at DISPATCH_LEVEL (this processor's DPC or lock holder is held up briefly)"
		}
		return "stall at DISPATCH_LEVEL (this processor's DPC or lock holder is held up while the others run)"
	case kernel.PointJitter:
		return fmt.Sprintf("compute stretched by %d/%d", d.Choice, d.N)
	case kernel.PointAllocFail:
		return "allocation fails"
	case kernel.PointPickThread:
		return fmt.Sprintf("ready thread #%d of %d runs first", d.Choice+1, d.N)
	case kernel.PointPickCPU:
		return fmt.Sprintf("idle processor #%d of %d", d.Choice+1, d.N)
	case des.PointTie.Kind:
		return fmt.Sprintf("simultaneous event #%d of %d fires first", d.Choice+1, d.N)
	}
	return fmt.Sprintf("option %d of %d", d.Choice, d.N)
}

// anchorKey names a decision by what it is rather than where it falls in
// the log: its kind, its actor, and how many decisions of that kind the
// actor made before it.
type anchorKey struct {
	kind  des.PointKind
	actor int32
	occ   int
}

// anchoredChooser replays the non-zero decisions of a log by anchorKey and
// answers 0 everywhere else.
type anchoredChooser struct {
	want map[anchorKey]int32
	seen map[anchorKey]int
}

func newAnchoredChooser(log []des.Decision) *anchoredChooser {
	a := &anchoredChooser{want: map[anchorKey]int32{}, seen: map[anchorKey]int{}}
	count := map[anchorKey]int{}
	for _, d := range log {
		base := anchorKey{kind: d.Kind, actor: d.Actor}
		k := anchorKey{kind: d.Kind, actor: d.Actor, occ: count[base]}
		count[base]++
		if d.Choice != 0 {
			a.want[k] = d.Choice
		}
	}
	return a
}

func (a *anchoredChooser) Choose(p des.Point, n int) int {
	base := anchorKey{kind: p.Kind, actor: p.Actor}
	k := anchorKey{kind: p.Kind, actor: p.Actor, occ: a.seen[base]}
	a.seen[base]++
	if c, ok := a.want[k]; ok && int(c) < n {
		return int(c)
	}
	return 0
}
