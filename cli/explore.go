package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/proptest"
)

// builtinExplore is what `wqsim explore` runs with no scenario in wqsim's
// own command: the cancelSafe minifilter's lost-cancel bug, so the first
// command a newcomer types shows the product finding a race.
const builtinExplore = "cancelsafe:lost-cancel"

// exploreDefault is the scenario `explore` runs when none is named: in a
// user's own command (Main given scenarios) the first of theirs, with its
// first bug variant (model.Resolve's rule), because that is the driver the
// command was built to test; otherwise builtinExplore.
func exploreDefault() string {
	if len(userScenarios) > 0 {
		return userScenarios[0].Name
	}
	return builtinExplore
}

type exploreOpts struct {
	strategy string
	execs    int
	dur      time.Duration
	parallel int
	shard    string
	seed     uint64
	failDir  string
	noShrink bool
	depth    int
	bound    int
	watchdog time.Duration
	json     bool
	budget   model.Budget
}

func exploreFlags() (*flag.FlagSet, *exploreOpts) {
	o := &exploreOpts{}
	fs := newFlagSet("explore", "usage: wqsim explore [SCENARIO[:VARIANT]] [flags]   (default "+exploreDefault()+")")
	fs.StringVar(&o.strategy, "strategy", "portfolio", strings.Join(proptest.StrategyNames, "|"))
	fs.IntVar(&o.execs, "execs", proptest.DefaultExecs, "executions to run (all shards together)")
	fs.DurationVar(&o.dur, "time", 0, "stop after this wall-clock time (e.g. 30s); 0 = no limit")
	fs.IntVar(&o.parallel, "parallel", runtime.GOMAXPROCS(0), "executions run in parallel")
	fs.StringVar(&o.shard, "shard", "0/1", "run shard i of n: executions with index%n == i")
	fs.Uint64Var(&o.seed, "seed", 1, "base seed; execution i uses a seed derived from it")
	fs.StringVar(&o.failDir, "faildir", "testdata/wqsim-fail", "where fail files are written")
	fs.BoolVar(&o.noShrink, "no-shrink", false, "keep the failing schedule as found")
	fs.IntVar(&o.depth, "pct-depth", 3, "PCT bug depth d")
	fs.IntVar(&o.bound, "bound", 2, "perturbations allowed by --strategy bounded")
	watchdogFlag(fs, &o.watchdog, "one execution (default: 1000 × the median execution, at least 30s)")
	budgetFlags(fs, &o.budget)
	fs.BoolVar(&o.json, "json", false, "print the summary (also written to FAILDIR) as JSON on standard output; the text goes to standard error")
	return fs, o
}

func (o *exploreOpts) build(spec string) (proptest.Options, error) {
	s, v, err := resolve(spec)
	if err != nil {
		return proptest.Options{}, err
	}
	if o.execs <= 0 {
		return proptest.Options{}, usagef("--execs %d: must be positive", o.execs)
	}
	if o.parallel <= 0 {
		return proptest.Options{}, usagef("--parallel %d: must be positive", o.parallel)
	}
	if o.dur < 0 {
		return proptest.Options{}, usagef("--time %v: must not be negative", o.dur)
	}
	shard, shards, err := parseShard(o.shard)
	if err != nil {
		return proptest.Options{}, err
	}
	st, err := o.strategyOf()
	if err != nil {
		return proptest.Options{}, err
	}
	if err := checkWatchdog(o.watchdog); err != nil {
		return proptest.Options{}, err
	}
	// Workers beyond the executions or proptest.MaxParallel would only
	// build simulations nobody uses.
	parallel := min(o.parallel, proptest.MaxParallel, o.execs)
	s = withBudget(s, o.budget)
	return proptest.Options{Scenario: s, Variant: v, Strategy: st, Seed: o.seed, Execs: o.execs, Duration: o.dur,
		Parallel: parallel, Shard: shard, Shards: shards, Watchdog: o.watchdog}, nil
}

func (o *exploreOpts) strategyOf() (proptest.Strategy, error) {
	switch o.strategy {
	case "pct":
		if o.depth < 1 {
			return nil, usagef("--pct-depth %d: must be at least 1", o.depth)
		}
		return proptest.NewPCT(o.depth, 2000), nil
	case "bounded":
		if o.bound < 1 {
			return nil, usagef("--bound %d: must be at least 1", o.bound)
		}
		return proptest.NewBounded(o.bound), nil
	}
	st, err := proptest.NewStrategy(o.strategy)
	if err != nil {
		return nil, usagef("--strategy: %v", err)
	}
	return st, nil
}

func cmdExplore(ctx context.Context, args []string, w, errw io.Writer) error {
	fs, o := exploreFlags()
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	spec := exploreDefault()
	switch len(pos) {
	case 0:
	case 1:
		spec = pos[0]
	default:
		return usagef("explore takes at most one SCENARIO[:VARIANT]")
	}
	opts, err := o.build(spec)
	if err != nil {
		return err
	}
	if err := proptest.CheckFailDir(o.failDir); err != nil {
		return usagef("%v; choose another --faildir", err)
	}
	out := w
	if o.json { // standard output carries the JSON summary alone
		w = errw
	}
	fmt.Fprintf(w, "wqsim explore %s:%s %s seed=%d execs=%d time=%v parallel=%d shard=%s faildir=%s%s\n",
		opts.Scenario.Name, opts.Variant, opts.Strategy.Describe(), opts.Seed, opts.Execs, opts.Duration, opts.Parallel, o.shard, o.failDir,
		budgetText(opts.Scenario))
	if isTerminal(errw) { // the progress line goes there
		opts.Progress = func(p proptest.Progress) {
			fmt.Fprintf(errw, "\r%d executions, %.0f/s, %d failures, %v elapsed   ", p.Execs,
				float64(p.Execs)/p.Elapsed.Seconds(), p.Failures, p.Elapsed.Round(time.Second))
		}
	}
	rep, err := proptest.Explore(ctx, opts)
	if err != nil {
		return usagef("%v", err)
	}
	if opts.Progress != nil {
		fmt.Fprintln(errw)
	}
	sum := newSummary(&opts, rep)
	err = reportExplore(ctx, w, o, &opts, rep, sum)
	if serr := sum.write(o.failDir, out, o.json); serr != nil && err == nil {
		err = serr
	}
	return err
}

// reportExplore prints how the exploration ended and, for a failure, saves
// and shrinks it (finishExplore).
func reportExplore(ctx context.Context, w io.Writer, o *exploreOpts, opts *proptest.Options, rep *proptest.Report, sum *summary) error {
	rate := float64(rep.Execs) / rep.Elapsed.Seconds()
	f := rep.First()
	fmt.Fprintln(w, coverageLine(rep))
	if f == nil {
		fmt.Fprintf(w, "%d executions in %v (%.0f/s): no failure; %s\n", rep.Execs, rep.Elapsed.Round(time.Millisecond), rate, endText(rep, opts))
		if len(rep.Marks) > 0 {
			fmt.Fprintf(w, "racy paths reached: %s\n", formatCoverage(rep.Marks))
		}
		if rep.End == proptest.EndInterrupted {
			return context.Canceled
		}
		return nil
	}
	fmt.Fprintf(w, "failure at execution %d (seed %d) after %d executions in %v (%.0f/s), found by %s\n",
		f.Exec, f.Seed, rep.Execs, rep.Elapsed.Round(time.Millisecond), rate, strings.TrimPrefix(f.By, "strategy="))
	return finishExplore(ctx, w, o, opts, f, sum)
}

// endText says why an exploration without a failure ended: a search that
// was cut short is not a complete one.
func endText(rep *proptest.Report, opts *proptest.Options) string {
	switch rep.End {
	case proptest.EndComplete:
		// Not "complete": a user read that as "every schedule was tried".
		return "the budget of executions is spent (a sample of the schedules, not all of them: raise --execs to search longer)"
	case proptest.EndTime:
		return fmt.Sprintf("the search was cut short by --time %v (raise --time or --execs for more)", opts.Duration)
	case proptest.EndInterrupted:
		return "the search was interrupted"
	case proptest.EndExhausted:
		return "the search space is exhausted: every schedule within the strategy's bounds ran"
	}
	return "the search stopped early (" + rep.End.String() + ")"
}

// finishExplore saves the failure at once, then shrinks it and saves the
// minimal schedule over it: an interrupt during shrinking loses nothing.
// A failure that cannot be saved is printed in full instead.
func finishExplore(ctx context.Context, w io.Writer, o *exploreOpts, opts *proptest.Options, f *proptest.Failure, sum *summary) error {
	path := ""
	save := func(log []des.Decision, res model.Result) error {
		ff := proptest.NewFailFile(opts, f, log, res)
		ff.Reproduce = reproduceFor(opts.Scenario)
		var err error
		if path == "" {
			path, err = proptest.SaveFailFile(o.failDir, ff)
		} else {
			err = proptest.WriteFailFile(path, ff)
		}
		if err != nil {
			fmt.Fprintf(w, "wqsim: could not save the fail file (%v); here it is in full:\n%s", err, ff.Encode("FILE"))
		}
		return err
	}
	final, log := f.Result, f.Result.Outcome.Decisions
	if err := save(log, final); err != nil {
		return &exitError{exitInternal}
	}
	_, stuck := final.Outcome.Err.(*proptest.StuckError)
	if !o.noShrink && !stuck { // shrinking a stuck run would get stuck again
		start := time.Now()
		sh, err := proptest.Minimize(opts.Scenario, opts.Variant, f.Seed, log, proptest.ShrinkOptions{Context: ctx, Watchdog: o.watchdog})
		if err == nil {
			final, log = sh.Final, sh.Log
			if err := save(log, final); err != nil {
				return &exitError{exitInternal}
			}
			state := "finished: 1-minimal, no single perturbation can be removed"
			if !sh.Complete {
				state = "cut short by its budget or an interrupt: some perturbations may be unneeded"
			}
			fmt.Fprintf(w, "shrunk %d → %d perturbations (%d → %d decisions) in %v, %d runs; shrinking %s\n", countNonZero(f.Result.Outcome.Decisions), countNonZero(log), len(f.Result.Outcome.Decisions), len(log), time.Since(start).Round(time.Millisecond), sh.Runs, state)
		}
	}
	sum.setFailure(f, final, log, path)
	fmt.Fprintln(w, outcomeLine(final.Outcome.Err))
	if len(final.Marks) > 0 {
		fmt.Fprintf(w, "racy paths reached: %s\n", strings.Join(final.Marks, "; "))
	}
	heading := "minimal schedule:"
	if stuck || o.noShrink {
		heading = "schedule (not shrunk):"
	}
	fmt.Fprintln(w, heading+"\n  "+strings.Join(capLines(proptest.DescribeSchedule(log), maxScheduleLines), "\n  "))
	fmt.Fprintf(w, "fail file: %s\nreproduce:\n  %s\n", path, strings.Join(reproduceFor(opts.Scenario).Lines(path), "\n  "))
	printPanic(w, final.Outcome.Err)
	printStuck(w, final.Outcome.Err)
	if ctx.Err() != nil && !stuck {
		return ctx.Err()
	}
	return &exitError{outcomeCode(final.Outcome.Err)}
}

// coverageLine summarises what an exploration reached.
func coverageLine(rep *proptest.Report) string {
	line := fmt.Sprintf("coverage: %d distinct schedules of %d executions", rep.Fingerprints, rep.Execs)
	if rep.FingerprintsEstimated {
		line = fmt.Sprintf("coverage: ~%d distinct schedules (estimate: over %d, HyperLogLog, ±5 %%) of %d executions",
			rep.Fingerprints, proptest.ExactFingerprints, rep.Execs)
	}
	if len(rep.Missed) > 0 {
		line += "; declared (Sometimes) but never reached: " + strings.Join(rep.Missed, "; ")
	}
	return line
}

func countNonZero(log []des.Decision) int {
	n := 0
	for _, d := range log {
		if d.Choice != 0 {
			n++
		}
	}
	return n
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
