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

// newFlagSet returns the flag set of command name; its Usage prints the
// usage lines, then the flags.
func newFlagSet(name string, usage ...string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		for _, l := range usage {
			fmt.Fprintln(fs.Output(), l)
		}
		printFlags(fs)
	}
	return fs
}

// printFlags lists fs's flags as the documentation writes them: --name
// (a one-letter flag keeps one dash, -o), its value, its meaning and
// default.
func printFlags(fs *flag.FlagSet) {
	any := false
	fs.VisitAll(func(f *flag.Flag) {
		if !any {
			fmt.Fprintln(fs.Output(), "flags:")
			any = true
		}
		dash := "--"
		if len(f.Name) == 1 {
			dash = "-"
		}
		value, usage := flag.UnquoteUsage(f)
		line := "  " + dash + f.Name
		if value != "" {
			line += " " + value
		}
		line += "\n    \t" + usage
		if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "false" && f.DefValue != "0s" {
			line += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintln(fs.Output(), line)
	})
}

// helpRequested is -h or --help among a command's flags: its usage goes to
// standard output and wqsim exits 0.
type helpRequested struct{ command string }

func (h *helpRequested) Error() string { return "help requested for " + h.command }

// parseFlags parses args (flags may follow positional arguments, as users
// type them) and returns the positional ones.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, &helpRequested{fs.Name()}
			}
			return nil, usagef("%s: %v (run `wqsim help %s`)", fs.Name(), strings.Replace(err.Error(), ": -", ": --", 1), fs.Name())
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// oneArg parses args for a command that takes one positional argument
// and returns it; missing is the error when there is not exactly one.
func oneArg(fs *flag.FlagSet, args []string, missing string) (string, error) {
	pos, err := parseFlags(fs, args)
	if err != nil {
		return "", err
	}
	if len(pos) != 1 {
		return "", &usageError{missing}
	}
	return pos[0], nil
}

// resolve turns "scenario[:variant]" into a scenario, with a clear error.
func resolve(spec string) (*model.Scenario, string, error) {
	s, v, err := model.Resolve(spec)
	if err != nil {
		return nil, "", usagef("%v", err)
	}
	return s, v, nil
}

// runScenario runs variant v of s once into sink, under the seed's random
// schedule or, if natural, taking every natural choice, and under the
// watchdog (limit; 0 is the default).
func runScenario(ctx context.Context, limit time.Duration, s *model.Scenario, v string, seed uint64, natural bool, sink des.Sink) (model.Result, error) {
	var c des.Chooser = proptest.NewRandomWalk().Chooser(seed)
	if natural {
		c = des.Natural{}
	}
	r, err := proptest.RunWatched(ctx, limit, s, v, model.RunConfig{Seed: seed, Chooser: c, Sink: sink})
	if err != nil {
		return r, usagef("%v", err)
	}
	return r, nil
}

// budgetFlags defines --step-budget and --decision-budget on fs, which
// override the scenario's own budget (model.Scenario.Budget) for every run
// of the command; withBudget applies them.
func budgetFlags(fs *flag.FlagSet, b *model.Budget) {
	fs.Uint64Var(&b.Steps, "step-budget", 0, fmt.Sprintf("events plus kernel calls one run may take before it is reported as a livelock (default: the scenario's budget, else %d)", model.DefaultStepBudget))
	fs.Uint64Var(&b.Decisions, "decision-budget", 0, fmt.Sprintf("decisions one run may make before it is reported as a livelock (default: the scenario's budget, else %d)", model.DefaultDecisionBudget))
}

// withBudget returns s with the budget flags b applied (s itself when
// neither is given).
func withBudget(s *model.Scenario, b model.Budget) *model.Scenario {
	if b == (model.Budget{}) {
		return s
	}
	return s.WithBudget(b)
}

// budgetText is " budget=steps:N,decisions:N" for a header line when s's
// budget is not the default one, else "": what the run needs to be repeated.
func budgetText(s *model.Scenario) string {
	b := s.RunBudget(model.RunConfig{})
	if b == model.DefaultBudget {
		return ""
	}
	return fmt.Sprintf(" budget=steps:%d,decisions:%d", b.Steps, b.Decisions)
}

// parseShard parses "i/n".
func parseShard(s string) (int, int, error) {
	i, n, err := proptest.ParseShard(s)
	if err != nil {
		return 0, 0, usagef("--shard %q: want i/n with 0 ≤ i < n, e.g. --shard 0/4", s)
	}
	return i, n, nil
}

// outcomeCode maps a run's outcome to its exit code: its class's.
func outcomeCode(err error) int { return des.Classify(err).ExitCode() }

func outcomeLine(err error) string {
	if err == nil {
		return "outcome: ok (no failure)"
	}
	return "outcome: " + proptest.OutcomeText(err)
}

// printStuck prints the last trace records of a run the watchdog gave up on.
func printStuck(w io.Writer, err error) {
	var st *proptest.StuckError
	if !errors.As(err, &st) {
		return
	}
	fmt.Fprintf(w, "last trace records before it stuck (%d decisions made):\n", len(st.Decisions))
	tw := &des.TextSink{W: w}
	for i := range st.Tail {
		tw.Write(&st.Tail[i])
	}
}

func printPanic(w io.Writer, err error) {
	var pe *des.PanicError
	if errors.As(err, &pe) {
		fmt.Fprintf(w, "panic stack:\n%s\n", pe.Stack)
	}
}

// watchdogFlag defines --watchdog on fs.
func watchdogFlag(fs *flag.FlagSet, d *time.Duration, what string) {
	fs.DurationVar(d, "watchdog", 0, what+" may run this long without yielding before wqsim reports it stuck (exit 17)")
}

// checkWatchdog rejects a negative --watchdog.
func checkWatchdog(d time.Duration) error {
	if d < 0 {
		return usagef("--watchdog %v: must not be negative (0 means the default)", d)
	}
	return nil
}

// maxScheduleLines caps the schedule printed in words: a long unshrunk
// log once sent 201 MB to standard output. The fail file has all of it.
const maxScheduleLines = 200

// capLines keeps the first max lines and says how many were left out.
func capLines(lines []string, max int) []string {
	if len(lines) <= max {
		return lines
	}
	return append(lines[:max:max], fmt.Sprintf("… and %d more (all of them are in the fail file)", len(lines)-max))
}
