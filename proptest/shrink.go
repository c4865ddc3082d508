package proptest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
)

// Signature classifies a failure so shrinking keeps "the same bug": the
// bug-check code, the invariant name, or the finding's type.
func Signature(err error) string {
	var bc *kernel.BugCheck
	var inv *model.InvariantError
	var dl *kernel.Deadlock
	var pe *des.PanicError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &bc):
		return fmt.Sprintf("bugcheck 0x%X", bc.Code)
	case errors.As(err, &inv):
		return "invariant " + inv.Name
	case errors.As(err, &dl):
		if len(dl.Cycle) > 0 {
			return "deadlock"
		}
		return "hang"
	case errors.As(err, new(*kernel.Leak)):
		return "leak"
	case errors.As(err, new(*kernel.Livelock)):
		return "livelock"
	case errors.As(err, &pe):
		return "panic"
	case errors.As(err, new(*des.ReplayMismatch)):
		return "replay mismatch"
	case errors.As(err, new(*StuckError)):
		return "stuck"
	}
	return "error " + strings.SplitN(err.Error(), ":", 2)[0]
}

// ShrinkOptions bounds the shrinker.
type ShrinkOptions struct {
	MaxRuns int             // executions to spend; 0 means 2000
	Budget  time.Duration   // wall-clock budget; 0 means 10s
	Context context.Context // stops shrinking early when done (Ctrl-C)
	// Watchdog is how long one candidate run may take before shrinking
	// gives up on it (and on shrinking); 0 means DefaultWatchdog.
	Watchdog time.Duration
}

// Shrink minimises a failing decision log: it tries zeroing, then deleting,
// chunks of the non-zero decisions (halving the chunk size, as delta
// debugging does),
// then lowering single choices, keeping every candidate whose replay (a
// guided run that follows the log while it matches and takes choice 0
// after) fails with the same Signature. The result is re-recorded from the
// last successful run and has no trailing zero decisions.
//
// Shrinking runs on a goroutine of its own so that it always comes back:
// within half a second of Context being done, or when a candidate run
// exceeds the watchdog, Shrink returns the smallest failing log found so
// far (the candidate's goroutine is abandoned).
func Shrink(s *model.Scenario, variant string, seed uint64, log []des.Decision, opts ShrinkOptions) ([]des.Decision, model.Result, error) {
	if opts.MaxRuns == 0 {
		opts.MaxRuns = 2000
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
		log []des.Decision
		res model.Result
		err error
	}
	sw := &shrinkWatch{}
	done := make(chan out, 1)
	go func() {
		l, r, err := shrink(s, variant, seed, log, opts, sw)
		done <- out{l, r, err}
	}()
	tick := time.NewTicker(watchTick(opts.Watchdog))
	defer tick.Stop()
	var cancelled time.Time
	for {
		select {
		case o := <-done:
			return o.log, o.res, o.err
		case now := <-tick.C:
			if opts.Context.Err() != nil && cancelled.IsZero() {
				cancelled = now
			}
			started := sw.slot.start.Load()
			late := started != 0 && now.Sub(time.Unix(0, started)) >= opts.Watchdog
			if late || (!cancelled.IsZero() && now.Sub(cancelled) >= 500*time.Millisecond) {
				if st := sw.best.Load(); st != nil {
					return st.log, st.res, nil
				}
				return nil, model.Result{}, fmt.Errorf("shrink: interrupted before the log was replayed once")
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

func shrink(s *model.Scenario, variant string, seed uint64, log []des.Decision, opts ShrinkOptions, sw *shrinkWatch) ([]des.Decision, model.Result, error) {
	sim := des.New(des.Config{})
	defer sim.Close()
	try := func(cand []des.Decision) (model.Result, error) {
		return sw.run(func() (model.Result, error) {
			return model.Run(s, variant, model.RunConfig{Seed: seed, Chooser: &prefixChooser{prefix: cand}, Sim: sim})
		})
	}
	best, err := try(log)
	if err != nil {
		return nil, best, err
	}
	best = cloneResult(best) // the Sim is reused: keep our own copy
	want := Signature(best.Outcome.Err)
	if want == "ok" {
		return nil, best, fmt.Errorf("shrink: the log does not fail when replayed")
	}
	cur := trimZeros(best.Outcome.Decisions)
	sw.best.Store(&shrinkState{cur, best})
	tryAnchored := func(cand []des.Decision) (model.Result, error) {
		return sw.run(func() (model.Result, error) {
			return model.Run(s, variant, model.RunConfig{Seed: seed, Chooser: newAnchoredChooser(cand), Sim: sim})
		})
	}
	ctx := opts.Context
	sh := &shrinker{try: try, want: want, max: opts.MaxRuns, deadline: time.Now().Add(opts.Budget), ctx: ctx, watch: sw}
	// Alternate two parametrizations until neither helps: positional (a
	// decision is its index in the log) and anchored (a perturbation is tied
	// to its actor's own scheduling points, so removing an early one does
	// not slide the later ones onto different points).
	anch := &shrinker{try: tryAnchored, want: want, max: opts.MaxRuns, deadline: sh.deadline, ctx: ctx, watch: sw}
	for {
		before := nonZero(cur)
		cur, best = sh.zeroChunks(cur, best)
		cur, best = anch.zeroChunks(cur, best)
		if nonZero(cur) >= before || sh.spent() || anch.spent() {
			break
		}
	}
	cur, best = sh.lowerEach(cur, best)
	return cur, best, nil
}

type shrinker struct {
	try      func([]des.Decision) (model.Result, error)
	want     string
	runs     int
	max      int
	deadline time.Time
	ctx      context.Context
	watch    *shrinkWatch
}

func (s *shrinker) spent() bool {
	return s.runs >= s.max || time.Now().After(s.deadline) || s.ctx.Err() != nil
}

// attempt runs cand and reports whether it still fails the same way.
func (s *shrinker) attempt(cand []des.Decision) (model.Result, bool) {
	s.runs++
	r, err := s.try(cand)
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
		if d.Choice == 1 {
			return "early quantum end (another ready thread runs)"
		}
		return "stall (this processor is held up while the others run)"
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
