// Package atomicfile writes wqsim's output files (traces, lab results, fail
// files) so that no reader ever sees one half-written and nothing that is
// not a regular file is ever replaced: a new path or a regular file is
// written under a temporary name in its own directory, synced, and renamed
// into place whole; a character device or a FIFO (`-o /dev/null`, a pipe
// made with mkfifo) is written directly; anything else is refused. It
// imports no wqsim package.
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Mode is the permission of every file written, fail files included:
// readable by everyone, because every output is meant to be shared (a
// trace a browser opens, results a plot script reads, a fail file attached
// to a bug report or uploaded by a CI job running as another user) and
// none holds anything secret.
const Mode = 0o644

// TempPrefix names our temporary files and directories; StaleAge is when one that was left
// behind (the process was killed between create and rename) is removed by
// the next write into the same directory.
const (
	TempPrefix = ".wqsim-tmp-"
	StaleAge   = time.Hour
)

// oldPrefixes are the temporary-file names earlier versions used.
var oldPrefixes = []string{".wqsim-out-", ".wqsim-fail-"}

// Write writes the file at path through write. A missing directory is
// created. A new path or a regular file (also behind a symlink, which
// stays a symlink) is replaced atomically; a character device or FIFO is
// written directly (a FIFO nobody reads is an error, not a hang); a
// directory, block device, socket or dangling symlink is refused. On error
// a regular file at path is as it was and no temporary file remains.
func Write(path string, write func(io.Writer) error) error {
	target, st, err := resolve(path)
	if err != nil {
		return err
	}
	if st != nil && !st.Mode().IsRegular() {
		return writeDirect(target, st, write)
	}
	dir := filepath.Dir(target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := Temp(dir, write)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, target); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// resolve follows a symlink at path to what it names and returns that
// path and its FileInfo (nil when nothing is there yet).
func resolve(path string) (string, fs.FileInfo, error) {
	lst, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return path, nil, nil
	}
	if err != nil {
		return "", nil, err
	}
	if lst.Mode()&fs.ModeSymlink == 0 {
		return path, lst, nil
	}
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", nil, fmt.Errorf("%s is a symlink to nothing (%v); refusing to replace the link", path, err)
	}
	st, err := os.Stat(target)
	if err != nil {
		return "", nil, err
	}
	return target, st, nil
}

// writeDirect writes to a character device or a FIFO in place.
func writeDirect(path string, st fs.FileInfo, write func(io.Writer) error) error {
	m := st.Mode()
	switch {
	case m&fs.ModeCharDevice != 0, m&fs.ModeNamedPipe != 0:
	case m.IsDir():
		return fmt.Errorf("%s is a directory; give a file name", path)
	default:
		return fmt.Errorf("%s is not a regular file (%v); wqsim writes only to regular files, character devices and FIFOs and never replaces anything else", path, m.Type())
	}
	// O_NONBLOCK: opening a FIFO that no process reads fails at once
	// (ENXIO) instead of waiting for ever; writes still wait for the reader.
	f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0)
	if errors.Is(err, syscall.ENXIO) {
		return fmt.Errorf("%s is a FIFO that no process is reading; start the reader first", path)
	}
	if err != nil {
		return err
	}
	err = write(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Temp writes a new temporary file in dir (which must exist) through
// write, synced to disk, with permission Mode, and returns its path; the
// caller renames it into place or removes it. On error nothing is left
// behind. Temporary files of ours older than StaleAge in dir are removed.
func Temp(dir string, write func(io.Writer) error) (string, error) {
	RemoveStale(dir)
	f, err := os.CreateTemp(dir, TempPrefix+"*")
	if err != nil {
		return "", err
	}
	err = write(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), Mode)
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// RemoveStale removes the temporary files of ours in dir that are older
// than StaleAge: a process killed between writing and renaming leaves one.
// Younger ones may belong to a writer still at work and are kept.
func RemoveStale(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !(e.Type().IsRegular() || e.IsDir()) || !ours(e.Name()) {
			continue
		}
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > StaleAge {
			os.RemoveAll(filepath.Join(dir, e.Name())) // a directory is a half-written lab output
		}
	}
}

func ours(name string) bool {
	if strings.HasPrefix(name, TempPrefix) {
		return true
	}
	for _, p := range oldPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}
