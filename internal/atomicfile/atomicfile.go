// Package atomicfile writes the command's output files so that no reader
// ever sees one half-written: each file is written under a temporary name
// in its own directory and renamed into place whole. It imports no wqsim
// package.
//
// (Fail files have their own writer, proptest.WriteFailFile, which also
// syncs before the rename.)
package atomicfile

import (
	"io"
	"os"
	"path/filepath"
)

// Mode is the permission of every file written: readable by everyone, as
// a results file or a trace that a browser opens should be.
const Mode = 0o644

// Write writes the file at path through write: its directory is created
// if missing, a temporary file beside path is filled and then renamed
// over path. On error path is as it was and no temporary file remains.
func Write(path string, write func(io.Writer) error) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := Temp(dir, write)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// Temp writes a new temporary file in dir (which must exist) through
// write, with permission Mode, and returns its path; the caller renames it
// into place or removes it. On error nothing is left behind.
func Temp(dir string, write func(io.Writer) error) (string, error) {
	f, err := os.CreateTemp(dir, ".wqsim-out-*")
	if err != nil {
		return "", err
	}
	err = write(f)
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
