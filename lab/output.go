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
// file as run (experiment.json, when r came from a parsed file), tasks.csv
// when real-time tasks ran and, per workload with work-item streams,
// cdf-<workload> (the queueing-latency CDF per policy) and bars-<workload>
// (p99 latency, throughput, preemptions, inversion per policy), per
// workload with tasks rt-<workload> (worst response over deadline and miss
// ratio per task and policy), each as .png and .svg.
func (r *Results) Files() ([]File, error) {
	if r.Experiment.Acceptance != nil {
		return r.acceptanceFiles()
	}
	if r.Experiment.Placement != nil {
		return r.placementFiles()
	}
	var csv bytes.Buffer
	if err := r.WriteCSV(&csv); err != nil {
		return nil, err
	}
	files := []File{{Name: "results.csv", Data: csv.Bytes()}}
	if src := r.Experiment.Source(); src != nil {
		files = append(files, File{Name: "experiment.json", Data: src})
	}
	if r.hasTasks() {
		var tc bytes.Buffer
		if err := r.WriteTaskCSV(&tc); err != nil {
			return nil, err
		}
		files = append(files, File{Name: "tasks.csv", Data: tc.Bytes()})
	}
	for i := range r.Experiment.Workloads {
		w := &r.Experiment.Workloads[i]
		for _, mk := range r.figuresOf(w) {
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

// acceptanceFiles renders an acceptance-ratio experiment: acceptance.csv,
// experiment.json and acceptance.png/.svg.
func (r *Results) acceptanceFiles() ([]File, error) {
	var b bytes.Buffer
	if err := r.WriteAcceptanceCSV(&b); err != nil {
		return nil, err
	}
	files := []File{{Name: "acceptance.csv", Data: b.Bytes()}}
	if src := r.Experiment.Source(); src != nil {
		files = append(files, File{Name: "experiment.json", Data: src})
	}
	f, err := r.acceptanceFigure()
	if err != nil {
		return nil, fmt.Errorf("plotting acceptance: %w", err)
	}
	png, svg, err := f.render()
	if err != nil {
		return nil, fmt.Errorf("rendering acceptance: %w", err)
	}
	return append(files, File{Name: "acceptance.png", Data: png}, File{Name: "acceptance.svg", Data: svg}), nil
}

// figureMaker names one figure of a workload.
type figureMaker struct {
	prefix string
	fig    func(*Workload) (figure, error)
}

// figuresOf returns the figures of w: the queueing CDF and bars when it has
// work-item streams, the real-time chart when it has tasks.
func (r *Results) figuresOf(w *Workload) []figureMaker {
	var out []figureMaker
	if len(w.Streams) > 0 {
		out = append(out, figureMaker{"cdf-", r.cdfFigure}, figureMaker{"bars-", r.barsFigure})
	}
	for _, a := range r.workloadAggregates(w.Name) {
		if len(a.Tasks) > 0 {
			out = append(out, figureMaker{"rt-", r.rtFigure})
			break
		}
	}
	return out
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
