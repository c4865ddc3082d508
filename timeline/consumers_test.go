package timeline

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/kernel"
)

// consumersDir holds the npm project of real trace-event consumers that
// TestPerfettoConsumers loads our files with (install: npm ci there).
const consumersDir = "testdata/consumers"

// traceConsumers returns the node binary, or skips the test when node or
// the installed packages are missing, unless WQSIM_REQUIRE_TRACE_CONSUMERS
// is set (CI sets it), when it fails saying what to install.
func traceConsumers(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(consumersDir, "node_modules", "@paulirish", "trace_engine"))
	}
	if err == nil {
		return node
	}
	if os.Getenv("WQSIM_REQUIRE_TRACE_CONSUMERS") != "" {
		t.Fatalf("WQSIM_REQUIRE_TRACE_CONSUMERS is set but the consumers are missing (install Node.js, then `npm ci --prefix timeline/%s`): %v", consumersDir, err)
	}
	t.Skipf("Node.js or the npm packages in timeline/%s are missing (npm ci there); set WQSIM_REQUIRE_TRACE_CONSUMERS=1 to make this a failure", consumersDir)
	return ""
}

// TestPerfettoConsumers loads Perfetto exports with Chrome DevTools' trace
// engine and TracerBench, which crashed on earlier exports (E events
// without a name, events without a category) or mismatched interleaved
// B/E slices across processors.
func TestPerfettoConsumers(t *testing.T) {
	node := traceConsumers(t)
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, b, 0o644))
		return p
	}
	recs, out := run(t, kernel.DefaultConfig(), demo)
	meta := metaFor("demo", out)
	meta.Perturbations = []Perturbation{{At: recs[3].At, Actor: 2, Text: "decision 4: kernel: inject preemption → stall"}}
	files := []string{write("demo.json", writePerfetto(t, recs, meta))}
	cfg := kernel.DefaultConfig()
	cfg.Processors = 4
	recs, out = run(t, cfg, busy(300))
	files = append(files, write("busy4.json", writePerfetto(t, recs, metaFor("busy4", out))))
	var multi bytes.Buffer
	require.NoError(t, WritePerfettoRuns(&multi, []Run{{metaFor("demo", out), recs}, {metaFor("busy4", out), recs}}))
	files = append(files, write("multi.json", multi.Bytes()))

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	abs, err := filepath.Abs(filepath.Join(consumersDir, "check.mjs"))
	require.NoError(t, err)
	cmd := exec.CommandContext(ctx, node, append([]string{abs}, files...)...)
	cmd.Dir = consumersDir
	outb, err := cmd.CombinedOutput()
	require.NoError(t, err, "a trace consumer rejected the export:\n%s", outb)
	t.Logf("%s", outb)
}
