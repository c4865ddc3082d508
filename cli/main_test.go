package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/proptest"
)

func wqsim(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestList(t *testing.T) {
	code, out, _ := wqsim(t, "list")
	assert.Equal(t, exitOK, code)
	assert.Contains(t, out, "lostupdate:racy")
	assert.Contains(t, out, "lostcancel:test-then-set")
	// The built-in set includes the suite of other people's bugs and the
	// bug reports (registered by cli/builtin.go), with their origins.
	assert.Contains(t, out, "sct-reorder:n100")
	assert.Contains(t, out, "cve-2017-15265:bug")
	assert.Contains(t, out, "ebpf-4790:double-remove")
	assert.Contains(t, out, "github.com/mc-imperial/sctbench")
}

// A suite program explores, fails and replays through the CLI like a
// built-in scenario.
func TestExploreSuiteProgram(t *testing.T) {
	dir := t.TempDir()
	code, out, _ := wqsim(t, "explore", "sct-account:bug", "--execs", "2000", "--faildir", dir, "--seed", "1")
	assert.Equal(t, exitInvariant, code, out)
	assert.Contains(t, out, "account: checker ran after both updates")
}

func TestRunPrintsTraceAndOutcome(t *testing.T) {
	code, out, _ := wqsim(t, "run", "lostupdate:correct", "--seed", "3")
	assert.Equal(t, exitOK, code)
	assert.Contains(t, out, "wqsim run lostupdate:correct seed=3")
	assert.Contains(t, out, "outcome: ok")
	assert.Contains(t, out, "adder1")
}

// explore → fail file → replay → trace, with the exit code of the outcome.
func TestExploreReplayTrace(t *testing.T) {
	dir := t.TempDir()
	code, out, _ := wqsim(t, "explore", "lostupdate:racy", "--execs", "3000", "--faildir", dir, "--seed", "4")
	assert.Equal(t, exitInvariant, code, out)
	first := strings.SplitN(out, "\n", 2)[0]
	assert.Contains(t, first, "strategy=portfolio", "seed-derived options are printed first")
	assert.Contains(t, first, "seed=4")
	assert.Contains(t, out, "minimal schedule:")
	assert.Contains(t, out, "early quantum end")
	assert.Contains(t, out, "shrinking finished: 1-minimal")
	assert.Regexp(t, `coverage: \d+ distinct schedules of \d+ executions`, out)
	path := onlyFailFile(t, dir)
	assert.Contains(t, out, "go run ./cmd/wqsim replay "+path)
	assert.Contains(t, out, "-wqsim.failfile="+path)
	// run from a relative fail-file directory, the go test line still names
	// the file absolutely (go test runs in proptest/, not here)
	for _, l := range proptest.ReproduceLines("testdata/x.fail") {
		if strings.HasPrefix(l, "go test") {
			assert.True(t, filepath.IsAbs(strings.TrimPrefix(l[strings.Index(l, "="):], "=")), l)
		}
	}

	code, out, _ = wqsim(t, "replay", path)
	assert.Equal(t, exitInvariant, code)
	assert.Contains(t, out, "an update was lost")
	assert.Contains(t, out, "interlocked-xchg")

	for _, format := range []string{"text", "jsonl", "perfetto", "html"} {
		o := filepath.Join(dir, "trace."+format)
		code, out, errs := wqsim(t, "trace", path, "--format", format, "-o", o)
		require.Equal(t, exitOK, code, out+errs)
		st, err := os.Stat(o)
		require.NoError(t, err)
		assert.Greater(t, st.Size(), int64(100), format)
	}
}

func TestBadInputIsAClearError(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.fail")
	require.NoError(t, os.WriteFile(bad, []byte("wqsim-failfile 9\n"), 0o644))
	trunc := filepath.Join(dir, "trunc.fail")
	require.NoError(t, os.WriteFile(trunc, []byte("wqsim-failfile 3\nscenario: lostupdate\nvariant: racy\nseed: 1\nstrategy: x\nexec: 0\nbase-seed: 1\nshard: 0/1\nhash: 0x1\ndecisions: 3\n12 3 1 x\n"), 0o644))
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, "unknown command \"frobnicate\""},
		{[]string{"explore", "nosuch"}, "unknown scenario \"nosuch\""},
		{[]string{"explore", "lostupdate:nope"}, "has no variant \"nope\""},
		{[]string{"explore", "lostupdate", "--shard", "5/2"}, "--shard \"5/2\": want i/n"},
		{[]string{"explore", "lostupdate", "--execs", "0"}, "--execs 0: must be positive"},
		{[]string{"explore", "lostupdate", "--strategy", "magic"}, "choose one of portfolio, random, pct, pos, surw, fest, bounded, exhaustive"},
		{[]string{"explore", "lostupdate", "--bogus"}, "flag provided but not defined: --bogus"},
		{[]string{"replay", bad}, "format version \"9\""},
		{[]string{"replay", trunc}, "truncated"},
		{[]string{"replay", filepath.Join(dir, "missing.fail")}, "cannot read fail file"},
		{[]string{"trace", "lostupdate", "--format", "pdf"}, "--format \"pdf\""},
	}
	for _, c := range cases {
		code, out, errs := wqsim(t, c.args...)
		assert.Equal(t, exitUsage, code, "%v: %s%s", c.args, out, errs)
		assert.Contains(t, errs, c.want, "%v", c.args)
	}
	// Nothing written half-way: a failed trace leaves no output file.
	o := filepath.Join(dir, "never.html")
	code, _, _ := wqsim(t, "trace", "nosuch", "--format", "html", "-o", o)
	assert.Equal(t, exitUsage, code)
	assert.NoFileExists(t, o)
}

func TestHelp(t *testing.T) {
	code, out, _ := wqsim(t, "help")
	assert.Equal(t, exitOK, code)
	assert.Contains(t, out, "Exit codes:")
	code, out, _ = wqsim(t, "help", "explore")
	assert.Equal(t, exitOK, code)
	assert.Contains(t, out, "-strategy")
}

// Ctrl-C during explore keeps the fail file already found: it is written
// before shrinking, and an interrupted shrink leaves it in place.
func TestInterruptKeepsFailFile(t *testing.T) {
	dir := t.TempDir()
	_, o := exploreFlags()
	o.failDir, o.execs = dir, 3000
	opts, err := o.build("lostupdate:racy")
	require.NoError(t, err)
	rep, err := proptest.Explore(context.Background(), opts)
	require.NoError(t, err)
	require.NotNil(t, rep.First())
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the user pressed Ctrl-C as the failure came in
	var out bytes.Buffer
	err = finishExplore(ctx, &out, o, &opts, rep.First(), newSummary(&opts, rep))
	assert.Equal(t, exitInterrupted, exitCode(err, &out))
	f, err := proptest.ReadFailFile(onlyFailFile(t, dir))
	require.NoError(t, err, "the fail file survived the interrupt")
	r, err := proptest.Replay(f, nil)
	require.NoError(t, err)
	assert.True(t, r.Failed(), "and it still reproduces the failure")
}

// A fail file whose schedule still replays but whose recorded trace hash no
// longer matches (the simulator changed) is a replay mismatch, exit 16, for
// replay and trace alike.
func TestChangedTraceIsAMismatch(t *testing.T) {
	dir := t.TempDir()
	code, out, _ := wqsim(t, "explore", "lostupdate:racy", "--execs", "3000", "--faildir", dir, "--seed", "4")
	require.Equal(t, exitInvariant, code, out)
	path := onlyFailFile(t, dir)
	text, err := os.ReadFile(path)
	require.NoError(t, err)
	f, err := proptest.ParseFailFile(text)
	require.NoError(t, err)
	f.Hash ^= 1
	require.NoError(t, proptest.WriteFailFile(path, f))
	code, out, _ = wqsim(t, "replay", path)
	assert.Equal(t, exitMismatch, code)
	assert.Contains(t, out, "reproduced a different trace")
	code, _, errs := wqsim(t, "trace", path, "--format", "text", "-o", filepath.Join(dir, "t.txt"))
	assert.Equal(t, exitMismatch, code)
	assert.Contains(t, errs, "reproduced a different trace")
}

// onlyFailFile returns the one fail file in dir.
func onlyFailFile(t *testing.T, dir string) string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.fail"))
	require.NoError(t, err)
	require.Len(t, files, 1, "fail files in %s", dir)
	return files[0]
}

// In a user's own command (Main given scenarios), `explore` with no
// scenario explores the user's first one and `list` shows theirs first.
func TestUserCommandDefaultsToUserScenario(t *testing.T) {
	own, err := model.Lookup("lostupdate")
	require.NoError(t, err)
	saved := userScenarios
	userScenarios = []*model.Scenario{own}
	t.Cleanup(func() { userScenarios = saved })

	code, out, _ := wqsim(t, "explore", "--execs", "3000", "--faildir", t.TempDir(), "--seed", "4")
	assert.Equal(t, exitInvariant, code, out)
	assert.Contains(t, strings.SplitN(out, "\n", 2)[0], "lostupdate:racy", "the user's scenario, its first bug variant")
	assert.NotContains(t, out, "cancelsafe")

	code, out, _ = wqsim(t, "list")
	assert.Equal(t, exitOK, code)
	assert.True(t, strings.HasPrefix(out, "lostupdate "), "the user's scenario is listed first:\n%.200s", out)
	assert.Equal(t, 1, strings.Count("\n"+out, "\nlostupdate  ("), "listed once")
}

// A user's scenario under a built-in's name is refused with a message
// naming it: it used to be left unregistered, so explore and run silently
// ran the built-in instead of the user's driver. The same scenario given
// twice is fine.
func TestUserScenarioNameClashIsAnError(t *testing.T) {
	saved := userScenarios
	t.Cleanup(func() { userScenarios = saved })
	mine := &model.Scenario{Name: "lostupdate", Doc: "my own driver", Variants: []model.Variant{{Name: "correct"}},
		Setup: func(*model.Env) error { return nil }}
	err := registerUser([]*model.Scenario{mine})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `scenario name "lostupdate" is taken`)
	builtin, lerr := model.Lookup("lostupdate")
	require.NoError(t, lerr)
	assert.NoError(t, registerUser([]*model.Scenario{builtin, builtin}))
}
