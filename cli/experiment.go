package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/wqsim/wqsim/lab"
)

type experimentOpts struct {
	out      string
	parallel int
	scale    float64
}

func experimentFlags() (*flag.FlagSet, *experimentOpts) {
	o := &experimentOpts{}
	fs := newFlagSet("experiment",
		"usage: wqsim experiment FILE [-o OUTDIR] [--parallel N] [--scale F]",
		"  runs every workload × dispatcher × pool × seed of the JSON experiment FILE and writes",
		"  OUTDIR/results.csv (one row per cell, one aggregate row per workload × policy), the",
		"  plots cdf-WORKLOAD and bars-WORKLOAD as .png and .svg and, for real-time tasks,",
		"  tasks.csv and rt-WORKLOAD; an acceptance-ratio file writes acceptance.csv and",
		"  acceptance.png|svg; every run also writes experiment.json, the experiment file exactly",
		"  as run, so the results directory says what produced it; an M/M/c workload also gets",
		"  Erlang C's prediction beside the measured wait; examples:",
		"  bench/experiments/pools.json, realtime.json, rm-acceptance.json, mmc.json")
	fs.StringVar(&o.out, "o", "", "output directory (default out/NAME, NAME the experiment's name)")
	fs.IntVar(&o.parallel, "parallel", 0, "cells run at once (default: all cores); results do not depend on it")
	fs.Float64Var(&o.scale, "scale", 1, "multiply every workload's duration, e.g. 0.1 for a quick look (placement experiments keep theirs)")
	return fs, o
}

func cmdExperiment(ctx context.Context, args []string, w io.Writer) error {
	fs, o := experimentFlags()
	file, err := oneArg(fs, args, "experiment needs one FILE, e.g. `wqsim experiment bench/experiments/pools.json`")
	if err != nil {
		return err
	}
	if o.parallel < 0 {
		return usagef("--parallel %d: give 0 for all cores or a positive number of cells at once", o.parallel)
	}
	if !(o.scale > 0 && o.scale <= 100) {
		return usagef("--scale %v: give a factor in (0, 100], e.g. 0.1 for a quick look", o.scale)
	}
	e, err := lab.ParseFile(file)
	if err != nil {
		return usagef("%v\nfix the experiment file and run again (`wqsim help experiment`; example: bench/experiments/pools.json)", err)
	}
	if err := e.ValidateScaled(o.scale); err != nil {
		return usagef("%v\nlower --scale, or fix the experiment file", err)
	}
	out := o.out
	if out == "-" {
		return usagef("-o -: experiment writes a directory of files; give a directory")
	}
	if out == "" {
		out = filepath.Join("out", e.Name)
	}
	fmt.Fprintf(w, "wqsim experiment %s: %s\n", e.Name, e.Size())
	res, err := lab.Run(ctx, e, lab.Options{Parallel: o.parallel, Scale: o.scale})
	if err != nil {
		return err
	}
	files, err := res.Files()
	if err != nil {
		return fmt.Errorf("rendering the results (nothing was written): %w", err)
	}
	if err := lab.WriteDir(out, files); err != nil {
		return fmt.Errorf("writing the results (no file was left half-written): %w", err)
	}
	if err := res.WriteTable(w); err != nil {
		return err
	}
	for _, p := range res.Problems() {
		fmt.Fprintln(w, "note:", p)
	}
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = f.Name
	}
	fmt.Fprintf(w, "wrote %d files to %s: %s\n", len(files), out, strings.Join(names, ", "))
	return nil
}
