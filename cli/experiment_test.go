package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestExperimentCommand(t *testing.T) {
	out := filepath.Join(t.TempDir(), "res")
	code, stdout, stderr := wqsim(t, "experiment", "../bench/experiments/pools.json", "-o", out, "--scale", "0.1", "--parallel", "2")
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, stdout, "90 cells")
	assert.Contains(t, stdout, "nt/grow-on-demand")
	for _, f := range []string{"results.csv", "experiment.json", "cdf-mmc-delayed.png", "cdf-mmc-delayed.svg", "bars-hipri-pollers.png", "bars-hipri-pollers.svg"} {
		assert.FileExists(t, filepath.Join(out, f))
	}
}

// A wrong experiment file is one clear message naming the field, exit 2,
// and no output at all.
func TestExperimentBadFile(t *testing.T) {
	dir := t.TempDir()
	src, err := os.ReadFile("../bench/experiments/pools.json")
	require.NoError(t, err)
	cases := map[string]struct{ old, new, want string }{
		"negative rate":   {`"rate": 2400`, `"rate": -3`, "workloads[0].streams[0].arrivals.rate: -3 must be positive (items per second)"},
		"zero processors": {`"processors": 2`, `"processors": 0`, "workloads[0].processors: 0 is impossible; give 1 to 64 simulated processors"},
		"wrong field":     {`"limit": 16`, `"limits": 16`, `pools[2]: unknown field "limits"; did you mean "limit"?`},
	}
	for name, c := range cases {
		bad := filepath.Join(dir, "bad.json")
		require.NoError(t, os.WriteFile(bad, []byte(replaceOnce(t, string(src), c.old, c.new)), 0o644))
		out := filepath.Join(dir, "out")
		code, stdout, stderr := wqsim(t, "experiment", bad, "-o", out)
		assert.Equal(t, exitUsage, code, name)
		assert.Contains(t, stderr, c.want, name)
		assert.Contains(t, stderr, "bad.json", name)
		assert.Empty(t, stdout, name)
		assert.NoDirExists(t, out, name)
	}
	code, _, stderr := wqsim(t, "experiment", "../bench/experiments/pools.json", "--scale", "0")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, stderr, "--scale 0")
	code, _, stderr = wqsim(t, "experiment")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, stderr, "experiment needs one FILE")
}

func replaceOnce(t *testing.T, s, old, new string) string {
	t.Helper()
	require.Contains(t, s, old, "the example changed")
	return strings.Replace(s, old, new, 1)
}
