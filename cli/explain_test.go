package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// failFileFrom returns the path an explore run printed on its "fail file:"
// line.
func failFileFrom(t *testing.T, out string) string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if p, ok := strings.CutPrefix(l, "fail file: "); ok {
			return strings.TrimSpace(p)
		}
	}
	t.Fatalf("no fail file line in:\n%s", out)
	return ""
}

// explain answers what the failing schedule did differently from the
// natural one and where the two runs part, as text and as an HTML page
// that marks the perturbation, the racy path and the first difference.
func TestExplain(t *testing.T) {
	dir := t.TempDir()
	code, out, _ := wqsim(t, "explore", "lostupdate:racy", "--execs", "3000", "--faildir", dir, "--seed", "4")
	require.Equal(t, exitInvariant, code, out)
	path := failFileFrom(t, out)
	page := filepath.Join(dir, "explain.html")

	code, out, errs := wqsim(t, "explain", path, "--html", page, "--context", "3")
	require.Equal(t, exitOK, code, out+errs)
	assert.Contains(t, out, "natural run:  ok")
	assert.Contains(t, out, "what the failing schedule did differently (1 perturbation)")
	assert.Contains(t, out, "early quantum end")
	assert.Contains(t, out, "both runs agree on their first")
	assert.Contains(t, out, "  natural  ")
	assert.Contains(t, out, "  failing  ")

	b, err := os.ReadFile(page)
	require.NoError(t, err)
	html := string(b)
	for _, want := range []string{`id="perturbations"`, `class="perturbation"`, `id="divergence"`, `id="explain"`,
		"natural run (every decision takes its natural choice)", "racy paths reached"} {
		assert.Contains(t, html, want)
	}
	assert.Equal(t, 2, strings.Count(html, `<svg xmlns="http://www.w3.org/2000/svg" class="timeline"`), "the failing and the natural run's timelines")
	assert.Equal(t, 2, strings.Count(html, `class="overview"`), "each with its overview strip")

	code, _, errs = wqsim(t, "explain", path, "--context", "0")
	assert.Equal(t, exitUsage, code, errs)
}

// trace of a fail file marks the perturbed decisions and lists the marks.
func TestTraceHTMLMarksPerturbations(t *testing.T) {
	dir := t.TempDir()
	code, out, _ := wqsim(t, "explore", "lostupdate:racy", "--execs", "3000", "--faildir", dir, "--seed", "4")
	require.Equal(t, exitInvariant, code, out)
	page := filepath.Join(dir, "race.html")
	code, out, errs := wqsim(t, "trace", failFileFrom(t, out), "--format", "html", "-o", page)
	require.Equal(t, exitOK, code, out+errs)
	b, err := os.ReadFile(page)
	require.NoError(t, err)
	assert.Contains(t, string(b), `id="perturbation-mark-1"`)
	assert.Contains(t, string(b), "early quantum end")
}
