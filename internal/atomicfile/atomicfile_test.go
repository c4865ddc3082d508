package atomicfile

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func text(s string) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := io.WriteString(w, s)
		return err
	}
}

// Write creates missing directories, replaces the file whole, leaves it
// readable by everyone, and on a failed write keeps the old file and no
// temporary one.
func TestWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a", "b", "trace.html")
	require.NoError(t, Write(path, text("one")))
	require.NoError(t, Write(path, text("two")))
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "two", string(got))
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(Mode), st.Mode().Perm())

	boom := errors.New("disk full")
	err = Write(path, func(w io.Writer) error {
		io.WriteString(w, "half")
		return boom
	})
	assert.ErrorIs(t, err, boom)
	got, _ = os.ReadFile(path)
	assert.Equal(t, "two", string(got), "a failed write leaves the old file")
	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary file left")

	blocker := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(blocker, nil, 0o644))
	assert.Error(t, Write(filepath.Join(blocker, "x"), text("x")), "a file where the directory should be")
}

func TestTempRemovesItselfOnError(t *testing.T) {
	dir := t.TempDir()
	_, err := Temp(dir, func(io.Writer) error { return errors.New("no") })
	assert.Error(t, err)
	entries, _ := os.ReadDir(dir)
	assert.Empty(t, entries)
	name, err := Temp(dir, text("x"))
	require.NoError(t, err)
	assert.Equal(t, dir, filepath.Dir(name))
}

// mknod makes a character device equal to /dev/null (1,3) inside dir; it
// skips the test where the file system or the user cannot.
func mknod(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "null")
	if err := syscall.Mknod(p, syscall.S_IFCHR|0o666, 1<<8|3); err != nil {
		t.Skipf("cannot make a device node here: %v", err)
	}
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("device nodes do not open here (nodev?): %v", err)
	}
	f.Close()
	return p
}

// Nothing that is not a regular file is replaced: a device node and a
// FIFO are written in place and stay what they were; a symlink stays a
// link (its regular target is replaced); a FIFO with no reader is an
// error, not a hang; a socket or directory is refused.
func TestWriteNeverReplacesNonRegular(t *testing.T) {
	dir := t.TempDir()
	dev := mknod(t, dir)
	require.NoError(t, Write(dev, text("into the device")))
	st, err := os.Lstat(dev)
	require.NoError(t, err)
	assert.NotZero(t, st.Mode()&os.ModeCharDevice, "still a device node")

	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o644))
	err = Write(fifo, text("nobody reads"))
	assert.ErrorContains(t, err, "no process is reading")
	got := make(chan string, 1)
	go func() {
		b, _ := os.ReadFile(fifo) // the reader
		got <- string(b)
	}()
	require.Eventually(t, func() bool { return Write(fifo, text("through the pipe")) == nil }, 5*time.Second, 20*time.Millisecond)
	assert.Equal(t, "through the pipe", <-got)
	st, _ = os.Lstat(fifo)
	assert.NotZero(t, st.Mode()&os.ModeNamedPipe, "still a FIFO")

	real := filepath.Join(dir, "real.txt")
	require.NoError(t, os.WriteFile(real, []byte("old"), 0o644))
	link := filepath.Join(dir, "link")
	require.NoError(t, os.Symlink(real, link))
	require.NoError(t, Write(link, text("new")))
	st, _ = os.Lstat(link)
	assert.NotZero(t, st.Mode()&os.ModeSymlink, "still a symlink")
	b, _ := os.ReadFile(real)
	assert.Equal(t, "new", string(b))
	devLink := filepath.Join(dir, "stdout")
	require.NoError(t, os.Symlink(dev, devLink))
	require.NoError(t, Write(devLink, text("x")))
	st, _ = os.Lstat(devLink)
	assert.NotZero(t, st.Mode()&os.ModeSymlink, "a link to a device stays a link")

	assert.ErrorContains(t, Write(dir, text("x")), "is a directory")
	sock := filepath.Join(dir, "sock")
	l, err := net.Listen("unix", sock)
	require.NoError(t, err)
	defer l.Close()
	assert.ErrorContains(t, Write(sock, text("x")), "not a regular file")
}

// A temporary file left by a killed process is removed by the next write
// once it is older than StaleAge; a young one (a writer at work) is kept.
func TestStaleTempFilesRemoved(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, ".wqsim-fail-123")
	young := filepath.Join(dir, TempPrefix+"456")
	for _, p := range []string{old, young} {
		require.NoError(t, os.WriteFile(p, []byte("half"), 0o600))
	}
	past := time.Now().Add(-2 * StaleAge)
	require.NoError(t, os.Chtimes(old, past, past))
	require.NoError(t, Write(filepath.Join(dir, "out.txt"), text("x")))
	assert.NoFileExists(t, old)
	assert.FileExists(t, young)
}
