package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/proptest"
)

type replayOpts struct{ quiet bool }

func replayFlags() (*flag.FlagSet, *replayOpts) {
	o := &replayOpts{}
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.BoolVar(&o.quiet, "quiet", false, "print only the outcome, not the trace")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: wqsim replay FILE [--quiet]")
		fs.PrintDefaults()
	}
	return fs, o
}

func cmdReplay(args []string, w io.Writer) error {
	fs, o := replayFlags()
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("replay needs one fail FILE")
	}
	f, err := proptest.ReadFailFile(pos[0])
	if err != nil {
		return usagef("%v", err)
	}
	fmt.Fprintf(w, "wqsim replay %s: %s:%s seed=%d, %d decisions\n", pos[0], f.Scenario, f.Variant, f.Seed, len(f.Decisions))
	var sink des.Sink
	if !o.quiet {
		sink = &des.TextSink{W: w}
	}
	r, err := proptest.Replay(f, sink)
	if err != nil {
		if strings.Contains(err.Error(), "different trace") {
			fmt.Fprintln(w, "outcome:", err)
			return &exitError{exitMismatch}
		}
		return usagef("%v", err)
	}
	fmt.Fprintln(w, "schedule:\n  "+strings.Join(proptest.DescribeSchedule(f.Decisions), "\n  "))
	return report(w, r)
}
