package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/proptest"
)

type replayOpts struct {
	quiet    bool
	watchdog time.Duration
}

func replayFlags() (*flag.FlagSet, *replayOpts) {
	o := &replayOpts{}
	fs := newFlagSet("replay", "usage: wqsim replay FILE [--quiet]")
	fs.BoolVar(&o.quiet, "quiet", false, "print only the outcome, not the trace")
	watchdogFlag(fs, &o.watchdog, "the replay (default 30s)")
	return fs, o
}

func cmdReplay(ctx context.Context, args []string, w io.Writer) error {
	fs, o := replayFlags()
	path, err := oneArg(fs, args, "replay needs one fail FILE")
	if err != nil {
		return err
	}
	if err := checkWatchdog(o.watchdog); err != nil {
		return err
	}
	f, err := proptest.ReadFailFile(path)
	if err != nil {
		return usagef("%v", err)
	}
	bud := ""
	if f.Budget != model.DefaultBudget {
		bud = fmt.Sprintf(", budget steps:%d decisions:%d", f.Budget.Steps, f.Budget.Decisions)
	}
	fmt.Fprintf(w, "wqsim replay %s: %s:%s seed=%d, %d decisions%s\n", path, f.Scenario, f.Variant, f.Seed, len(f.Decisions), bud)
	var sink des.Sink
	if !o.quiet {
		sink = &des.TextSink{W: w}
	}
	r, err := proptest.ReplayWatched(ctx, o.watchdog, f, sink)
	if err != nil {
		if errors.As(err, new(*proptest.HashMismatch)) {
			fmt.Fprintln(w, "outcome:", err)
			return &exitError{exitMismatch}
		}
		return usagef("%v", err)
	}
	fmt.Fprintln(w, "schedule:\n  "+strings.Join(capLines(proptest.DescribeSchedule(f.Decisions), maxScheduleLines), "\n  "))
	return report(w, r)
}
