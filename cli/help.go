package cli

import (
	"flag"
	"fmt"
	"io"
)

const helpText = `wqsim — a deterministic simulator of the Windows kernel's work-queue machinery.

Usage: wqsim COMMAND [flags] [args]

Commands:
  list                          scenarios and their variants
  run SCENARIO[:VARIANT]        one execution: outcome and trace
  explore [SCENARIO[:VARIANT]]  search schedules for a failure (default: your
                                command's first scenario; in wqsim itself the
                                cancelSafe minifilter's lost-cancel bug)
  replay FILE                   strict replay of a fail file: outcome and trace
  trace FILE|SCENARIO           write a trace as text, jsonl, perfetto or html
  explain FILE                  a fail file beside the natural run: what had to
                                happen differently, where the runs part
  experiment FILE               compare scheduling and worker-pool policies
  merge DIR...                  combine the shards of one exploration (--shard i/n)
  help [COMMAND]                this text, or a command's flags
  version, --version            the build: module, version, revision, Go

Examples:
  wqsim explore
  wqsim explore cancelsafe:worker-orphan --strategy pct --execs 20000 --parallel 2
  wqsim explore lostupdate:racy --shard 0/4 --seed 7
  wqsim replay testdata/wqsim-fail/cancelsafe-lost-cancel-seed1-exec35.fail
  wqsim trace testdata/wqsim-fail/cancelsafe-lost-cancel-seed1-exec35.fail --format html -o race.html
  wqsim explain testdata/wqsim-fail/cancelsafe-lost-cancel-seed1-exec35.fail --html explain.html
  wqsim run lostupdate:racy --seed 3
  wqsim experiment bench/experiments/pools.json -o out/

Exit codes:
  0 no failure   2 bad input   3 wqsim error   10 bug check   11 deadlock or hang
  12 leak   13 livelock (budget)   14 invariant   15 panic in driver code
  16 replay mismatch   17 stuck (watchdog)   18 contract violation
  19 filter verifier violation   20 cancel-safe queue corruption
  21 uncontrolled nondeterminism   130 interrupted
`

func cmdHelp(args []string, w io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(w, helpText)
		return nil
	}
	fs := flagSets[args[0]]
	if fs == nil {
		return usagef("no help for %q; commands: list run explore replay trace explain experiment", args[0])
	}
	f := fs()
	f.SetOutput(w)
	f.Usage()
	return nil
}

// flagSets maps a command to a constructor of its flag set, for help.
var flagSets = map[string]func() *flag.FlagSet{
	"run":        func() *flag.FlagSet { f, _ := runFlags(); return f },
	"explore":    func() *flag.FlagSet { f, _ := exploreFlags(); return f },
	"replay":     func() *flag.FlagSet { f, _ := replayFlags(); return f },
	"trace":      func() *flag.FlagSet { f, _ := traceFlags(); return f },
	"explain":    func() *flag.FlagSet { f, _ := explainFlags(); return f },
	"experiment": func() *flag.FlagSet { f, _ := experimentFlags(); return f },
	"list":       listFlags,
	"merge":      func() *flag.FlagSet { return newFlagSet("merge", mergeUsage()...) },
}
