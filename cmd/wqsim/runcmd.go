package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/proptest"
)

type runOpts struct {
	seed    uint64
	natural bool
	quiet   bool
}

func runFlags() (*flag.FlagSet, *runOpts) {
	o := &runOpts{}
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the workload and of the random schedule")
	fs.BoolVar(&o.natural, "natural", false, "take every natural choice (no perturbation)")
	fs.BoolVar(&o.quiet, "quiet", false, "print only the outcome, not the trace")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: wqsim run SCENARIO[:VARIANT] [--seed N] [--natural] [--quiet]")
		fs.PrintDefaults()
	}
	return fs, o
}

func cmdRun(_ context.Context, args []string, w io.Writer) error {
	fs, o := runFlags()
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("run needs one SCENARIO[:VARIANT]; see `wqsim list`")
	}
	s, v, err := resolve(pos[0])
	if err != nil {
		return err
	}
	var chooser des.Chooser = proptest.NewRandomWalk().Chooser(o.seed)
	if o.natural {
		chooser = des.Natural{}
	}
	fmt.Fprintf(w, "wqsim run %s:%s seed=%d natural=%v\n", s.Name, v, o.seed, o.natural)
	var sink des.Sink
	if !o.quiet {
		sink = &des.TextSink{W: w}
	}
	r, err := model.Run(s, v, model.RunConfig{Seed: o.seed, Chooser: chooser, Sink: sink})
	if err != nil {
		return usagef("%v", err)
	}
	return report(w, r)
}

// report prints a result and turns its outcome into the exit code.
func report(w io.Writer, r model.Result) error {
	fmt.Fprintln(w, outcomeLine(r.Outcome.Err))
	if len(r.Marks) > 0 {
		fmt.Fprintf(w, "marks: %v\n", r.Marks)
	}
	fmt.Fprintf(w, "end: t=%v, %d events, trace hash %#x\n", r.Outcome.End, r.Outcome.Steps, r.Outcome.Hash)
	printPanic(w, r.Outcome.Err)
	if code := outcomeCode(r.Outcome.Err); code != exitOK {
		return &exitError{code}
	}
	return nil
}
