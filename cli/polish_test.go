package cli

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// -h prints the command's usage on stdout and exits 0; help lists every
// command's flags as the docs write them (--flag); flags before any
// command mean explore.
func TestHelpAndFlags(t *testing.T) {
	for _, cmd := range []string{"run", "explore", "replay", "trace", "experiment", "merge", "list"} {
		for _, h := range []string{"-h", "--help"} {
			code, out, errs := wqsim(t, cmd, h)
			assert.Equal(t, exitOK, code, "%s %s: %s", cmd, h, errs)
			assert.Contains(t, out, "usage: wqsim "+cmd, "%s %s", cmd, h)
		}
		code, out, _ := wqsim(t, "help", cmd)
		assert.Equal(t, exitOK, code)
		assert.Contains(t, out, "usage: wqsim "+cmd)
		assert.NotContains(t, out, "Usage of")
	}
	_, out, _ := wqsim(t, "help", "explore")
	assert.Contains(t, out, "  --seed uint")
	assert.Contains(t, out, "  --watchdog duration")
	assert.NotContains(t, out, "\n  -seed")
	_, out, _ = wqsim(t, "help", "trace")
	assert.Contains(t, out, "  -o string", "one-letter flags keep one dash")

	code, out, errs := wqsim(t, "--seed", "3", "--execs", "20", "--faildir", t.TempDir())
	assert.NotEqual(t, exitUsage, code, errs)
	assert.Contains(t, out, "wqsim explore cancelsafe:lost-cancel")
	assert.Contains(t, out, "seed=3")
}

// The outcome line says its class once; marks print as words.
func TestOutcomeTextSaysItOnce(t *testing.T) {
	for _, seed := range []string{"1", "7"} {
		code, out, _ := wqsim(t, "explore", "--seed", seed, "--faildir", t.TempDir(), "--no-shrink")
		require.NotEqual(t, exitOK, code, out)
		line := lineAfter(out, "outcome: ")
		assert.NotContains(t, line, "hang: hang:")
		assert.NotContains(t, line, "bug check 0xC4")
	}
	dir := t.TempDir()
	code, out, _ := wqsim(t, "explore", "lostupdate:racy", "--seed", "4", "--faildir", dir)
	require.Equal(t, exitInvariant, code, out)
	assert.Contains(t, lineAfter(out, "outcome: "), "invariant counter: violated at t=", "the invariant's name is said once")
	_, out, _ = wqsim(t, "replay", onlyFailFile(t, dir), "--quiet")
	assert.Contains(t, out, "racy paths reached: lostupdate: preempted between read and write")
	assert.NotContains(t, out, "marks: [")
}

// A search that found nothing says whether it was complete, cut short by
// --time, or interrupted.
func TestNoFailureSaysHowTheSearchEnded(t *testing.T) {
	code, out, _ := wqsim(t, "explore", "lostupdate:correct", "--execs", "30", "--faildir", t.TempDir())
	assert.Equal(t, exitOK, code)
	assert.Contains(t, out, "no failure; the budget of executions is spent (a sample of the schedules, not all of them")
	assert.NotContains(t, out, "complete", "a budget run is not a complete search (only exhaustive is)")
	code, out, _ = wqsim(t, "explore", "lostupdate:correct", "--execs", "100000000", "--time", "300ms", "--faildir", t.TempDir())
	assert.Equal(t, exitOK, code)
	assert.Contains(t, out, "cut short by --time 300ms")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var o, e strings.Builder
	code = run(ctx, []string{"explore", "lostupdate:correct", "--faildir", t.TempDir()}, &o, &e)
	assert.Equal(t, exitInterrupted, code)
	assert.Contains(t, o.String(), "the search was interrupted")
	code, out, _ = wqsim(t, "explore", "lostupdate:correct", "--strategy", "exhaustive", "--execs", "100000", "--faildir", t.TempDir())
	assert.Equal(t, exitOK, code, out)
	assert.Contains(t, out, "the search space is exhausted")
}
