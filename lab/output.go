package lab

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/wqsim/wqsim/internal/atomicfile"
)

// File is one output file, rendered in memory.
type File struct {
	Name string // base name inside the output directory
	Data []byte
}

// Files renders every output of r in memory: results.csv, the experiment
// file as run (experiment.json, when r came from a parsed file) and, per
// workload, cdf-<workload> (the queueing-latency CDF per policy) and
// bars-<workload> (p99 latency, throughput, preemptions, inversion per
// policy), each as .png and .svg.
func (r *Results) Files() ([]File, error) {
	var csv bytes.Buffer
	if err := r.WriteCSV(&csv); err != nil {
		return nil, err
	}
	files := []File{{Name: "results.csv", Data: csv.Bytes()}}
	if src := r.Experiment.Source(); src != nil {
		files = append(files, File{Name: "experiment.json", Data: src})
	}
	for i := range r.Experiment.Workloads {
		w := &r.Experiment.Workloads[i]
		for _, mk := range []struct {
			prefix string
			fig    func(*Workload) (figure, error)
		}{{"cdf-", r.cdfFigure}, {"bars-", r.barsFigure}} {
			f, err := mk.fig(w)
			if err != nil {
				return nil, fmt.Errorf("plotting %s%s: %w", mk.prefix, w.Name, err)
			}
			png, svg, err := f.render()
			if err != nil {
				return nil, fmt.Errorf("rendering %s%s: %w", mk.prefix, w.Name, err)
			}
			files = append(files, File{Name: mk.prefix + w.Name + ".png", Data: png}, File{Name: mk.prefix + w.Name + ".svg", Data: svg})
		}
	}
	return files, nil
}

// WriteDir writes files into dir so that no file is ever half-written: a
// new directory is filled under a temporary name and renamed into place
// whole; into an existing directory every file is first written to a
// temporary file, and only when all are written are they renamed over the
// old ones. On error nothing new is left behind.
func WriteDir(dir string, files []File) (err error) {
	st, statErr := os.Stat(dir)
	switch {
	case statErr == nil && !st.IsDir():
		return fmt.Errorf("output %s exists and is not a directory; choose another -o", dir)
	case errors.Is(statErr, fs.ErrNotExist):
		return writeNewDir(dir, files)
	case statErr != nil:
		return statErr
	}
	for _, f := range files {
		if st, err := os.Lstat(filepath.Join(dir, f.Name)); err == nil && !st.Mode().IsRegular() {
			return fmt.Errorf("%s exists and is not a regular file (%v); refusing to replace it: choose another -o", filepath.Join(dir, f.Name), st.Mode().Type())
		}
	}
	var tmps []string
	defer func() {
		if err != nil {
			for _, t := range tmps {
				os.Remove(t)
			}
		}
	}()
	for _, f := range files {
		t, err := atomicfile.Temp(dir, func(w io.Writer) error {
			_, err := w.Write(f.Data)
			return err
		})
		if err != nil {
			return fmt.Errorf("writing %s: %w", filepath.Join(dir, f.Name), err)
		}
		tmps = append(tmps, t)
	}
	for i, f := range files {
		if err := os.Rename(tmps[i], filepath.Join(dir, f.Name)); err != nil {
			return fmt.Errorf("writing %s: %w", filepath.Join(dir, f.Name), err)
		}
	}
	return nil
}

func writeNewDir(dir string, files []File) error {
	parent := filepath.Dir(filepath.Clean(dir))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	atomicfile.RemoveStale(parent)
	tmp, err := os.MkdirTemp(parent, atomicfile.TempPrefix+"*")
	if err != nil {
		return err
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(tmp, f.Name), f.Data, atomicfile.Mode); err != nil {
			os.RemoveAll(tmp)
			return fmt.Errorf("writing %s: %w", filepath.Join(dir, f.Name), err)
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	return nil
}
