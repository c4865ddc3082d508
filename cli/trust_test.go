package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/proptest"
)

// Explorations with other seeds, and shards, sharing one --faildir each
// keep their own fail file; the same exploration again replaces its own.
func TestFailFilesNeverLost(t *testing.T) {
	dir := t.TempDir()
	for _, seed := range []string{"4", "5", "4"} {
		code, out, _ := wqsim(t, "explore", "lostupdate:racy", "--execs", "3000", "--faildir", dir, "--seed", seed, "--no-shrink")
		require.Equal(t, exitInvariant, code, out)
	}
	for _, shard := range []string{"0/2", "1/2"} {
		code, out, _ := wqsim(t, "explore", "lostupdate:racy", "--execs", "3000", "--faildir", dir, "--seed", "9", "--shard", shard, "--no-shrink")
		require.Equal(t, exitInvariant, code, out)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.fail"))
	assert.Len(t, files, 4, "seeds 4 and 5, and the two shards of seed 9: %v", files)
	for _, f := range files {
		st, err := os.Stat(f)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o644), st.Mode().Perm(), "fail files are 0644 like every output")
		ff, err := proptest.ReadFailFile(f)
		require.NoError(t, err)
		assert.Contains(t, filepath.Base(f), "-exec"+itoa(ff.Exec)+".fail", "the name carries the execution")
	}

	// A different failure under the same name is kept; the new one goes
	// beside it.
	ff, err := proptest.ReadFailFile(files[0])
	require.NoError(t, err)
	other := *ff
	other.Strategy = "pct(depth=3)"
	second, err := proptest.SaveFailFile(dir, &other)
	require.NoError(t, err)
	assert.NotEqual(t, files[0], second)
	back, err := proptest.ReadFailFile(files[0])
	require.NoError(t, err)
	assert.Equal(t, ff.Strategy, back.Strategy, "the first failure survived")
}

func itoa(i int) string { return strconv.Itoa(i) }

// An unwritable --faildir is found before exploring; a failure that cannot
// be saved is printed in full.
func TestUnsavableFailure(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(blocker, nil, 0o644))
	start := time.Now()
	code, out, errs := wqsim(t, "explore", "lostupdate:racy", "--faildir", filepath.Join(blocker, "sub"))
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errs, "choose another --faildir")
	assert.NotContains(t, out, "executions", "nothing was explored")
	assert.Less(t, time.Since(start), 20*time.Second, "refused before exploring, not after")

	_, o := exploreFlags()
	o.failDir, o.execs, o.noShrink = dir, 3000, true
	opts, err := o.build("lostupdate:racy")
	require.NoError(t, err)
	rep, err := proptest.Explore(context.Background(), opts)
	require.NoError(t, err)
	o.failDir = filepath.Join(blocker, "gone") // the directory vanished meanwhile
	var buf bytes.Buffer
	err = finishExplore(context.Background(), &buf, o, &opts, rep.First(), newSummary(&opts, rep))
	assert.Equal(t, exitInternal, exitCode(err, &buf))
	assert.Contains(t, buf.String(), "could not save the fail file")
	assert.Contains(t, buf.String(), "wqsim-failfile ")
	assert.Contains(t, buf.String(), "\nend\n", "in full")
}

// replay and trace refuse what is not a regular file at once (a FIFO used
// to block for ever, /dev/zero to exhaust memory) and files over the cap.
func TestInputsRefused(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o644))
	big := filepath.Join(dir, "big.fail")
	require.NoError(t, os.WriteFile(big, []byte("wqsim-failfile 3\n"), 0o644))
	require.NoError(t, os.Truncate(big, proptest.MaxFailFileBytes+1)) // sparse
	inputs := map[string]string{fifo: "not a regular file", big: "more than the"}
	zero := filepath.Join(dir, "zero")
	if err := syscall.Mknod(zero, syscall.S_IFCHR|0o444, 1<<8|5); err == nil {
		inputs[zero] = "not a regular file"
	}
	for path, want := range inputs {
		for _, cmd := range []string{"replay", "trace"} {
			start := time.Now()
			code, _, errs := wqsim(t, cmd, path)
			assert.Equal(t, exitUsage, code, "%s %s", cmd, path)
			assert.Contains(t, errs, want, "%s %s", cmd, path)
			assert.Less(t, time.Since(start), 20*time.Second, "refused at once, not after blocking on the input")
		}
	}
}

// --parallel far beyond the executions makes progress at once.
func TestHugeParallel(t *testing.T) {
	start := time.Now()
	code, out, _ := wqsim(t, "explore", "lostupdate:correct", "--execs", "50", "--parallel", "10000000", "--faildir", t.TempDir())
	assert.Equal(t, exitOK, code, out)
	assert.Contains(t, out, "parallel=50 ")
	assert.Less(t, time.Since(start), 10*time.Second)
}

// -o never replaces a device node, a FIFO or a symlink, and -o - is
// standard output.
func TestTraceOutputNeverDestroys(t *testing.T) {
	dir := t.TempDir()
	code, out, errs := wqsim(t, "trace", "lostupdate:correct", "-o", "-")
	require.Equal(t, exitOK, code, errs)
	assert.Contains(t, out, "adder1")
	assert.NoFileExists(t, "-")

	dev := filepath.Join(dir, "null")
	if err := syscall.Mknod(dev, syscall.S_IFCHR|0o666, 1<<8|3); err == nil {
		code, _, errs := wqsim(t, "trace", "lostupdate:correct", "-o", dev)
		assert.Equal(t, exitOK, code, errs)
		st, err := os.Lstat(dev)
		require.NoError(t, err)
		assert.NotZero(t, st.Mode()&os.ModeCharDevice, "still a device node")
	} else {
		t.Logf("no device node test: %v", err)
	}
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o644))
	code, _, errs = wqsim(t, "trace", "lostupdate:correct", "-o", fifo)
	assert.Equal(t, exitInternal, code)
	assert.Contains(t, errs, "no process is reading")
	st, err := os.Lstat(fifo)
	require.NoError(t, err)
	assert.NotZero(t, st.Mode()&os.ModeNamedPipe, "still a FIFO")
}

// A fail file whose schedule no longer fits the scenario is exit 16 for
// trace as for replay.
func TestStructuralMismatchIs16(t *testing.T) {
	dir := t.TempDir()
	code, out, _ := wqsim(t, "explore", "lostupdate:racy", "--execs", "3000", "--faildir", dir, "--seed", "4")
	require.Equal(t, exitInvariant, code, out)
	path := onlyFailFile(t, dir)
	f, err := proptest.ReadFailFile(path)
	require.NoError(t, err)
	f.Decisions[0].N++
	require.NoError(t, proptest.WriteFailFile(path, f))
	code, _, _ = wqsim(t, "replay", path)
	assert.Equal(t, exitMismatch, code)
	code, out, errs := wqsim(t, "trace", path, "-o", filepath.Join(dir, "t.txt"))
	assert.Equal(t, exitMismatch, code, out+errs)
}
