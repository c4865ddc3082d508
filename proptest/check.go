package proptest

import (
	"context"
	"flag"
	"fmt"
	"os"
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
	flagExecs    = flag.Int("wqsim.execs", 0, "executions per Check (env WQSIM_EXECS)")
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
	Execs    int
	Strategy Strategy
	Seed     uint64
	// Watchdog bounds one execution's wall-clock time (Options.Watchdog):
	// a simulated thread in an endless Go loop fails the test instead of
	// hanging it.
	Watchdog time.Duration
}

// Check explores a scenario variant that must not fail. A previously saved
// fail file for it is replayed first; a new failure is shrunk, saved, and
// reported with the minimal schedule in words and the reproduce lines.
func Check(t testing.TB, s *model.Scenario, variant string, co CheckOptions) {
	t.Helper()
	st, err := CurrentSettings()
	if err != nil {
		t.Fatal(err)
		return
	}
	if st.FailFile != "" {
		replayForTest(t, st.FailFile)
		return
	}
	for _, path := range SavedFailFiles(st.FailDir, s.Name, variant) {
		f, err := ReadFailFile(path)
		if err != nil {
			t.Logf("saved failure %s: %v", path, err)
			continue
		}
		if r, err := ReplayWatched(context.Background(), co.Watchdog, f, nil); err == nil && r.Failed() {
			t.Fatalf("saved failure still fails: %v\n%s", r.Outcome.Err, reproduceText(path))
			return
		}
		t.Logf("saved failure %s no longer fails; delete it once the fix is reviewed", path)
	}
	o := Options{Scenario: s, Variant: variant, Strategy: co.Strategy, Seed: co.Seed, Execs: co.Execs, Shrink: true, FailDir: st.FailDir, Watchdog: co.Watchdog}
	applySettings(&o, st)
	rep, err := Explore(context.Background(), o)
	if err != nil {
		t.Fatal(err)
		return
	}
	if f := rep.First(); f != nil {
		t.Fatalf("%s:%s failed at execution %d (seed %d) after %d executions: %v\nminimal schedule:\n  %s\n%s",
			s.Name, variant, f.Exec, f.Seed, rep.Execs, f.MinFinal.Outcome.Err,
			strings.Join(DescribeSchedule(f.Minimal), "\n  "), reproduceText(f.File))
		return
	}
	if len(rep.Missed) > 0 && !rep.Stopped {
		t.Fatalf("%s:%s: %d executions (%d distinct schedules) never reached %q, declared with Env.Sometimes: the exploration cannot show the race is absent if it never reaches it (strengthen the workload, or raise the executions)",
			s.Name, variant, rep.Execs, rep.Fingerprints, rep.Missed)
		return
	}
	t.Logf("%s:%s: %d executions, %d distinct schedules, marks reached %v, no failure (%s)", s.Name, variant, rep.Execs, rep.Fingerprints, rep.Marks, rep.Strategy)
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

func reproduceText(path string) string {
	if path == "" {
		return ""
	}
	return "reproduce:\n  " + strings.Join(ReproduceLines(path), "\n  ")
}

func replayForTest(t testing.TB, path string) {
	t.Helper()
	f, err := ReadFailFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Replay(f, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Failed() {
		t.Fatalf("%s:%s still fails: %v", f.Scenario, f.Variant, r.Outcome.Err)
	}
	t.Logf("%s:%s replayed without failure", f.Scenario, f.Variant)
}

// Find explores a bug variant that must fail; it returns the (shrunk)
// failure, or fails the test if none was found in the budget.
func Find(t testing.TB, s *model.Scenario, variant string, o Options) *Failure {
	t.Helper()
	o.Scenario, o.Variant, o.Shrink = s, variant, true
	rep, err := Explore(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	f := rep.First()
	if f == nil {
		t.Fatalf("%s:%s: no failure in %d executions (%s)", s.Name, variant, rep.Execs, rep.Strategy)
	}
	return f
}
