package proptest

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wqsim/wqsim/model"
)

// Flags (mirrored by environment variables WQSIM_FAILFILE, WQSIM_EXECS,
// WQSIM_SEED, WQSIM_STRATEGY, WQSIM_FAILDIR; a flag wins over its variable).
var (
	flagFailFile = flag.String("wqsim.failfile", "", "replay this fail file instead of exploring (env WQSIM_FAILFILE)")
	flagExecs    = flag.Int("wqsim.execs", 0, "executions per Check (env WQSIM_EXECS; default proptest.DefaultExecs)")
	flagSeed     = flag.Uint64("wqsim.seed", 0, "base seed (env WQSIM_SEED)")
	flagStrategy = flag.String("wqsim.strategy", "", "portfolio (default)|random|pct|pos|surw|fest|bounded|exhaustive (env WQSIM_STRATEGY)")
	flagFailDir  = flag.String("wqsim.faildir", "", "where fail files go (env WQSIM_FAILDIR; default testdata/wqsim-fail)")
)

// Settings are the effective flag/env values.
type Settings struct {
	FailFile string
	Execs    int
	Seed     uint64
	Strategy string
	FailDir  string
}

// CurrentSettings reads the wqsim.* flags and, for each one left unset,
// its environment variable. A value that does not parse is an error naming
// the flag or variable; it is never silently ignored.
func CurrentSettings() (Settings, error) {
	s := Settings{
		FailFile: pick(*flagFailFile, "WQSIM_FAILFILE"),
		Strategy: pick(*flagStrategy, "WQSIM_STRATEGY"),
		FailDir:  pick(*flagFailDir, "WQSIM_FAILDIR"),
		Execs:    *flagExecs,
		Seed:     *flagSeed,
	}
	if v := os.Getenv("WQSIM_EXECS"); s.Execs == 0 && v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return s, fmt.Errorf("WQSIM_EXECS=%q: want a non-negative number of executions", v)
		}
		s.Execs = n
	}
	if v := os.Getenv("WQSIM_SEED"); s.Seed == 0 && v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return s, fmt.Errorf("WQSIM_SEED=%q: want an unsigned number", v)
		}
		s.Seed = n
	}
	if s.Strategy != "" {
		if _, err := NewStrategy(s.Strategy); err != nil {
			return s, fmt.Errorf("-wqsim.strategy / WQSIM_STRATEGY: %w", err)
		}
	}
	if s.FailDir == "" {
		s.FailDir = "testdata/wqsim-fail"
	}
	return s, nil
}

// pick returns the flag's value, or the environment variable's when the
// flag was left empty.
func pick(flagValue, env string) string {
	if flagValue != "" {
		return flagValue
	}
	return os.Getenv(env)
}

// CheckOptions tune Check; zero values take the flags or defaults.
type CheckOptions struct {
	// Execs is the budget; 0 takes -wqsim.execs or WQSIM_EXECS, else
	// DefaultExecs.
	Execs    int
	Strategy Strategy
	Seed     uint64
	// Watchdog bounds one execution's wall-clock time (Options.Watchdog):
	// a simulated thread in an endless Go loop fails the test instead of
	// hanging it.
	Watchdog time.Duration
	// CLI is the command of a wqsim command line that knows the scenario
	// (your cli.Main: "go run ./cmd/mydriver"); the failure report then
	// adds a CLI replay line. Default: "go run ./cmd/wqsim" for a
	// registered scenario (model.Register), none otherwise.
	CLI string
	// NoTimeline skips writing the failure's HTML timeline and Perfetto
	// trace next to its fail file.
	NoTimeline bool
}

// Check explores a scenario variant that must not fail; s need not be
// registered. A previously saved fail file for it is replayed first. A new
// failure is shrunk and saved, and the test fails with a report of it: the
// minimal schedule in words, the fail file, an HTML timeline and a
// Perfetto trace of the shrunk run beside it, and the line that reproduces
// it from the module root:
//
//	go test ./your/pkg -run '^TestYours$' -wqsim.failfile=/abs/path/to/testdata/wqsim-fail/s-v.fail
//
// With -wqsim.failfile (or WQSIM_FAILFILE) Check replays that file instead
// of exploring, if it is this scenario variant's.
func Check(t testing.TB, s *model.Scenario, variant string, co CheckOptions) {
	t.Helper()
	st, err := CurrentSettings()
	if err != nil {
		t.Fatal(err)
		return
	}
	if st.FailFile != "" {
		replayForTest(t, s, variant, st.FailFile)
		return
	}
	if co.CLI == "" {
		co.CLI = defaultCLI(s)
	}
	how := testReproduce(t, co.CLI)
	for _, path := range SavedFailFiles(st.FailDir, s.Name, variant) {
		f, err := ReadFailFile(path)
		if err != nil {
			t.Logf("saved failure %s: %v", path, err)
			continue
		}
		if r, err := ReplayScenario(context.Background(), co.Watchdog, s, f, nil); err == nil && r.Failed() {
			t.Fatalf("saved failure still fails: %v\nreproduce (from the module root):\n  %s", r.Outcome.Err, strings.Join(how.Lines(path), "\n  "))
			return
		}
		t.Logf("saved failure %s no longer fails; delete it once the fix is reviewed", path)
	}
	o := Options{Scenario: s, Variant: variant, Strategy: co.Strategy, Seed: co.Seed, Execs: co.Execs, Shrink: true,
		FailDir: st.FailDir, Watchdog: co.Watchdog, Reproduce: &how}
	applySettings(&o, st)
	rep, err := Explore(context.Background(), o)
	if err != nil {
		t.Fatal(err)
		return
	}
	if f := rep.First(); f != nil {
		t.Fatal(failureReport(s, variant, f, rep.Execs, !co.NoTimeline, how))
		return
	}
	if len(rep.Missed) > 0 && !rep.Stopped {
		t.Fatalf("%s:%s: %d executions (%d distinct schedules) never reached %q, declared with Env.Sometimes: the exploration cannot show the race is absent if it never reaches it (strengthen the workload, or raise the executions)",
			s.Name, variant, rep.Execs, rep.Fingerprints, rep.Missed)
		return
	}
	approx := ""
	if rep.FingerprintsEstimated {
		approx = "~"
	}
	t.Logf("%s:%s: %d executions, %s%d distinct schedules, racy paths reached: %s; no failure (%s)", s.Name, variant, rep.Execs, approx, rep.Fingerprints, FormatMarks(rep.Marks), rep.Strategy)
}

// defaultCLI is the CLI of a reproduce line for s: wqsim's own, from a
// checkout, for a registered scenario; none for a test's own.
func defaultCLI(s *model.Scenario) string {
	if reg, err := model.Lookup(s.Name); err == nil && reg == s {
		return DefaultReproduce.CLI
	}
	return ""
}

// failureReport is what Check says about a failure: what failed, the
// minimal schedule, and where the fail file, timelines and reproduce lines
// are.
func failureReport(s *model.Scenario, variant string, f *Failure, execs int, timelines bool, how Reproduce) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:%s failed at execution index %d (seed %d) after %d executions: %v\n",
		s.Name, variant, f.Exec, f.Seed, execs, f.MinFinal.Outcome.Err)
	fmt.Fprintf(&b, "minimal schedule (%d perturbations):\n  %s\n", f.Perturbations(), strings.Join(DescribeSchedule(f.Minimal), "\n  "))
	if len(f.MinFinal.Marks) > 0 {
		fmt.Fprintf(&b, "racy paths reached: %s\n", strings.Join(f.MinFinal.Marks, "; "))
	}
	if f.File == "" {
		return b.String()
	}
	abs, err := filepath.Abs(f.File)
	if err != nil {
		abs = f.File
	}
	fmt.Fprintf(&b, "fail file: %s\n", abs)
	if timelines {
		html, perfetto, err := f.WriteTimelines(strings.TrimSuffix(abs, ".fail"))
		if err != nil {
			fmt.Fprintf(&b, "timeline: not written: %v\n", err)
		} else {
			fmt.Fprintf(&b, "timeline: %s\nperfetto: %s (open in https://ui.perfetto.dev)\n", html, perfetto)
		}
	}
	fmt.Fprintf(&b, "reproduce (from the module root):\n  %s", strings.Join(how.Lines(abs), "\n  "))
	return b.String()
}

func applySettings(o *Options, st Settings) {
	if st.Execs > 0 {
		o.Execs = st.Execs
	}
	if st.Seed != 0 {
		o.Seed = st.Seed
	}
	if st.Strategy != "" {
		o.Strategy, _ = NewStrategy(st.Strategy) // validated by CurrentSettings
	}
}

// replayForTest replays the fail file at path if it is s:variant's (a test
// may check several variants; the others skip).
func replayForTest(t testing.TB, s *model.Scenario, variant, path string) {
	t.Helper()
	f, err := ReadFailFile(path)
	if err != nil {
		t.Fatal(err)
		return
	}
	if f.Scenario != s.Name || f.Variant != variant {
		t.Logf("-wqsim.failfile is for %s:%s; not replaying it for %s:%s", f.Scenario, f.Variant, s.Name, variant)
		return
	}
	r, err := ReplayScenario(context.Background(), 0, s, f, nil)
	if err != nil {
		t.Fatal(err)
		return
	}
	if r.Failed() {
		t.Fatalf("%s:%s still fails: %v", f.Scenario, f.Variant, r.Outcome.Err)
		return
	}
	t.Logf("%s:%s replayed without failure", f.Scenario, f.Variant)
}

// Find explores a bug variant that must fail and returns its shrunk
// failure. The test fails if no failure is found within the budget
// (o.Execs, default DefaultExecs), or, unless o.AnyFailure is set, if the
// failure is not the one the variant declares: its error must match
// Variant.Want and the failing run must have reached every mark in
// Variant.Marks. s need not be registered.
func Find(t testing.TB, s *model.Scenario, variant string, o Options) *Failure {
	t.Helper()
	o.Scenario, o.Variant, o.Shrink = s, variant, true
	if o.ShrinkBudget == 0 {
		o.ShrinkBudget = FindShrinkBudget
	}
	if o.Reproduce == nil {
		how := testReproduce(t, defaultCLI(s))
		o.Reproduce = &how
	}
	rep, err := Explore(context.Background(), o)
	if err != nil {
		t.Fatal(err)
		return nil
	}
	f := rep.First()
	if f == nil {
		t.Fatalf("%s:%s: no failure in %d executions (%s)", s.Name, variant, rep.Execs, rep.Strategy)
		return nil
	}
	if !o.AnyFailure {
		checkDeclared(t, s, variant, f)
	}
	return f
}

// FindShrinkBudget is the wall-clock budget Find gives shrinking unless
// Options.ShrinkBudget says otherwise: generous, because a test that checks
// Failure.ShrinkComplete must not fail when the machine is busy (the
// command line's 10 s cut inversion:spin-on-flag's shrinking short under a
// parallel go test ./... on a shared 2-core host). The run budget
// (ShrinkOptions.MaxRuns) still bounds the work.
const FindShrinkBudget = 5 * time.Minute

// checkDeclared fails t unless f is the failure the variant declares: Want
// matches its error and its runs reached the variant's marks (before or
// after shrinking).
func checkDeclared(t testing.TB, s *model.Scenario, variant string, f *Failure) {
	t.Helper()
	v, _ := s.Variant(variant)
	err := f.MinFinal.Outcome.Err
	if err == nil {
		err = f.Result.Outcome.Err
	}
	// Want is matched against the failure as the outcome line shows it
	// (OutcomeText: "bugcheck 0x44: MULTIPLE_IRP_COMPLETE_REQUESTS …") and
	// as the error says it ("bug check 0x44 …"), so text copied from
	// either matches.
	if v.Want != "" && !v.Wants(OutcomeText(err)) && !v.Wants(Signature(err)+": "+err.Error()) {
		t.Errorf("%s:%s: found a failure, but not the kind the variant declares (Want %q): %v\n(set Options.AnyFailure to accept any failure)",
			s.Name, variant, v.Want, err)
	}
	for _, m := range v.MarkTexts() {
		if !slices.Contains(f.Result.Marks, m) && !slices.Contains(f.MinFinal.Marks, m) {
			t.Errorf("%s:%s: the failure never reached the variant's racy path %q (it reached %q); the failure was: %s\n(set Options.AnyFailure to accept any failure)",
				s.Name, variant, m, f.Result.Marks, OutcomeText(err))
		}
	}
}
