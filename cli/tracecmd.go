package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/internal/atomicfile"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/proptest"
	"github.com/wqsim/wqsim/timeline"
)

type traceOpts struct {
	format   string
	out      string
	seed     uint64
	natural  bool
	watchdog time.Duration
	budget   model.Budget
}

func traceFlags() (*flag.FlagSet, *traceOpts) {
	o := &traceOpts{}
	fs := newFlagSet("trace",
		"usage: wqsim trace FILE|SCENARIO[:VARIANT] [--format text|jsonl|perfetto|perfetto-proto|html] [-o OUT]",
		"  perfetto (Chrome trace-event JSON) and perfetto-proto (native Perfetto protobuf: track tree; counters",
		"  with units for IRQL, ready threads and queue depths; work-item and IRP flows) open in",
		"  https://ui.perfetto.dev; html is a self-contained offline timeline")
	fs.StringVar(&o.format, "format", "text", "text|jsonl|perfetto|perfetto-proto|html")
	fs.StringVar(&o.out, "o", "", "output file; - or nothing is standard output. A regular file is replaced whole; a device or FIFO is written in place")
	fs.Uint64Var(&o.seed, "seed", 1, "seed, when tracing a SCENARIO rather than a fail file")
	fs.BoolVar(&o.natural, "natural", false, "with a SCENARIO: take every natural choice")
	watchdogFlag(fs, &o.watchdog, "the run (default 30s)")
	budgetFlags(fs, &o.budget)
	return fs, o
}

func cmdTrace(ctx context.Context, args []string, w io.Writer) error {
	fs, o := traceFlags()
	arg, err := oneArg(fs, args, "trace needs one fail FILE or SCENARIO[:VARIANT]")
	if err != nil {
		return err
	}
	if err := checkWatchdog(o.watchdog); err != nil {
		return err
	}
	switch o.format {
	case "text", "jsonl", "perfetto", "perfetto-proto", "html":
	default:
		return usagef("--format %q: choose text, jsonl, perfetto, perfetto-proto or html", o.format)
	}
	recs := &des.RecordSink{}
	res, err := traceRun(ctx, arg, o, recs)
	if err != nil {
		return err
	}
	meta := runMeta(res)
	write := func(out io.Writer) error { return writeTrace(out, o.format, recs.Records, meta) }
	if o.out == "" || o.out == "-" {
		if err := write(w); err != nil {
			return err
		}
		return traceVerdict(io.Discard, res.Outcome.Err)
	}
	if err := atomicfile.Write(o.out, write); err != nil {
		return fmt.Errorf("writing %s: %w", o.out, err)
	}
	fmt.Fprintf(w, "wrote %s (%s, %d records): %s\n", o.out, o.format, len(recs.Records), outcomeLine(res.Outcome.Err))
	return traceVerdict(w, res.Outcome.Err)
}

// traceVerdict: trace writes the trace of whatever happened and exits 0,
// except when the trace is not the one asked for: a replay that diverged
// (exit 16) or a run the watchdog gave up on (exit 17).
func traceVerdict(w io.Writer, err error) error {
	switch c := outcomeCode(err); c {
	case exitMismatch, exitStuck:
		printStuck(w, err)
		return &exitError{c}
	}
	return nil
}

// traceRun replays a fail file, or runs a scenario, into sink.
func traceRun(ctx context.Context, arg string, o *traceOpts, sink des.Sink) (model.Result, error) {
	if st, err := os.Stat(arg); err == nil && !st.IsDir() {
		if o.budget != (model.Budget{}) {
			return model.Result{}, usagef("--step-budget and --decision-budget apply to a SCENARIO; a fail file replays with the budget it records")
		}
		f, err := proptest.ReadFailFile(arg)
		if err != nil {
			return model.Result{}, usagef("%v", err)
		}
		r, err := proptest.ReplayWatched(ctx, o.watchdog, f, sink)
		if errors.As(err, new(*proptest.HashMismatch)) {
			return r, err // a changed simulator, not bad input: exit 16 like replay
		}
		if err != nil {
			return r, usagef("%v", err)
		}
		return r, nil
	}
	s, v, err := resolve(arg)
	if err != nil {
		return model.Result{}, usagef("%v (and no file named %q exists)", err, arg)
	}
	return runScenario(ctx, o.watchdog, withBudget(s, o.budget), v, o.seed, o.natural, sink)
}

func writeTrace(w io.Writer, format string, recs []des.Record, meta timeline.Meta) error {
	switch format {
	case "jsonl":
		return timeline.WriteJSONL(w, recs)
	case "perfetto":
		return timeline.WritePerfetto(w, recs, meta)
	case "perfetto-proto":
		return timeline.WritePerfettoProto(w, recs, meta)
	case "html":
		return timeline.WriteHTML(w, recs, meta)
	}
	sink := &des.TextSink{W: w}
	for i := range recs {
		sink.Write(&recs[i])
	}
	return sink.Err
}

func errText(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}
