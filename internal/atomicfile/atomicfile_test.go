package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

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
