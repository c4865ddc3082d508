package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/internal/atomicfile"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/proptest"
	"github.com/wqsim/wqsim/timeline"
)

type explainOpts struct {
	html     string
	context  int
	watchdog time.Duration
}

func explainFlags() (*flag.FlagSet, *explainOpts) {
	o := &explainOpts{}
	fs := newFlagSet("explain", "usage: wqsim explain FILE [--html OUT] [--context N]",
		"  replays a fail file beside the natural run of the same scenario and seed and shows",
		"  what the failing schedule did differently and where the two runs first differ")
	fs.StringVar(&o.html, "html", "", "also write the two timelines, aligned, as a self-contained HTML page to this file")
	fs.IntVar(&o.context, "context", 8, "records to show before and after the first difference")
	watchdogFlag(fs, &o.watchdog, "each run (default 30s)")
	return fs, o
}

// cmdExplain answers the first question about a failure: what had to
// happen differently from the natural schedule, and where the runs part.
func cmdExplain(ctx context.Context, args []string, w io.Writer) error {
	fs, o := explainFlags()
	path, err := oneArg(fs, args, "explain needs one fail FILE")
	if err != nil {
		return err
	}
	if err := checkWatchdog(o.watchdog); err != nil {
		return err
	}
	if o.context < 1 {
		return usagef("--context %d: want at least 1 record", o.context)
	}
	f, err := proptest.ReadFailFile(path)
	if err != nil {
		return usagef("%v", err)
	}
	failing := &des.RecordSink{}
	fr, err := proptest.ReplayWatched(ctx, o.watchdog, f, failing)
	if errors.As(err, new(*proptest.HashMismatch)) {
		fmt.Fprintln(w, "outcome:", err)
		return &exitError{exitMismatch}
	}
	if err != nil {
		return usagef("%v", err)
	}
	s, v, err := resolve(f.Scenario + ":" + f.Variant)
	if err != nil {
		return err
	}
	natural := &des.RecordSink{}
	nr, err := runScenario(ctx, o.watchdog, s.WithBudget(f.Budget), v, f.Seed, true, natural) // the failing run's budget
	if err != nil {
		return err
	}
	e := &timeline.Explanation{
		Natural:       timeline.Run{Meta: runMeta(nr), Records: natural.Records},
		Failing:       timeline.Run{Meta: runMeta(fr), Records: failing.Records},
		Perturbations: perturbations(fr.Outcome.Decisions),
		Context:       o.context,
	}
	fmt.Fprintf(w, "wqsim explain %s: %s:%s seed=%d\n", path, f.Scenario, f.Variant, f.Seed)
	if err := timeline.WriteExplain(w, e); err != nil {
		return err
	}
	if o.html != "" {
		if err := atomicfile.Write(o.html, func(out io.Writer) error { return timeline.WriteExplainHTML(out, e) }); err != nil {
			return fmt.Errorf("writing %s: %w", o.html, err)
		}
		fmt.Fprintf(w, "wrote %s\n", o.html)
	}
	return nil
}

// runMeta describes a run for the timeline exporters: its scenario, seed,
// outcome, end, perturbed decisions and the racy paths it reached.
func runMeta(r model.Result) timeline.Meta {
	return timeline.Meta{
		Scenario: r.Scenario + ":" + r.Variant, Seed: r.Seed, Outcome: errText(r.Outcome.Err), End: r.Outcome.End,
		Perturbations: perturbations(r.Outcome.Decisions), Marks: r.Marks,
	}
}

// perturbations returns the non-natural decisions of a log, in words.
func perturbations(log []des.Decision) []timeline.Perturbation {
	var out []timeline.Perturbation
	for i, d := range log {
		if d.Choice != 0 {
			out = append(out, timeline.Perturbation{At: d.At, Actor: d.Actor, Text: proptest.DescribeDecision(i, d)})
		}
	}
	return out
}
