package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/model"
)

type runOpts struct {
	seed     uint64
	natural  bool
	quiet    bool
	watchdog time.Duration
	budget   model.Budget
}

func runFlags() (*flag.FlagSet, *runOpts) {
	o := &runOpts{}
	fs := newFlagSet("run", "usage: wqsim run SCENARIO[:VARIANT] [--seed N] [--natural] [--quiet] [--step-budget N] [--decision-budget N]")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the workload and of the random schedule")
	fs.BoolVar(&o.natural, "natural", false, "take every natural choice (no perturbation)")
	fs.BoolVar(&o.quiet, "quiet", false, "print only the outcome, not the trace")
	watchdogFlag(fs, &o.watchdog, "the run (default 30s)")
	budgetFlags(fs, &o.budget)
	return fs, o
}

func cmdRun(ctx context.Context, args []string, w io.Writer) error {
	fs, o := runFlags()
	spec, err := oneArg(fs, args, "run needs one SCENARIO[:VARIANT]; see `wqsim list`")
	if err != nil {
		return err
	}
	if err := checkWatchdog(o.watchdog); err != nil {
		return err
	}
	s, v, err := resolve(spec)
	if err != nil {
		return err
	}
	s = withBudget(s, o.budget)
	fmt.Fprintf(w, "wqsim run %s:%s seed=%d natural=%v%s\n", s.Name, v, o.seed, o.natural, budgetText(s))
	var sink des.Sink
	if !o.quiet {
		sink = &des.TextSink{W: w}
	}
	r, err := runScenario(ctx, o.watchdog, s, v, o.seed, o.natural, sink)
	if err != nil {
		return err
	}
	return report(w, r)
}

// report prints a result and turns its outcome into the exit code.
func report(w io.Writer, r model.Result) error {
	fmt.Fprintln(w, outcomeLine(r.Outcome.Err))
	if len(r.Marks) > 0 {
		fmt.Fprintf(w, "racy paths reached: %s\n", strings.Join(r.Marks, "; "))
	}
	fmt.Fprintf(w, "end: t=%v, %d events, trace hash %#x\n", r.Outcome.End, r.Outcome.Steps, r.Outcome.Hash)
	printPanic(w, r.Outcome.Err)
	printStuck(w, r.Outcome.Err)
	if code := outcomeCode(r.Outcome.Err); code != exitOK {
		return &exitError{code}
	}
	return nil
}
