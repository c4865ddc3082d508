package proptest

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/wqsim/wqsim/internal/atomicfile"
)

// FailFileName is the file name a fail file gets in its directory: the
// scenario, variant, base seed and execution index, so explorations with
// other seeds and the shards of one exploration (whose executions are
// disjoint) never pick the same name.
func FailFileName(f *FailFile) string {
	return fmt.Sprintf("%s-%s-seed%d-exec%d.fail", f.Scenario, f.Variant, f.BaseSeed, f.Exec)
}

// SaveFailFile writes f into dir and returns its path. A file already
// there is replaced only if it holds the same failure (the same execution
// of the same exploration: the shrunk schedule replaces the one saved
// before shrinking); a different failure under that name is kept and f
// goes to NAME-2.fail, NAME-3.fail, …
func SaveFailFile(dir string, f *FailFile) (string, error) {
	base := FailFileName(f)
	for k := 1; ; k++ {
		path := filepath.Join(dir, base)
		if k > 1 {
			path = filepath.Join(dir, fmt.Sprintf("%s-%d.fail", base[:len(base)-len(".fail")], k))
		}
		old, err := ReadFailFile(path)
		switch {
		case errors.Is(err, fs.ErrNotExist), err == nil && sameFailure(old, f):
			return path, WriteFailFile(path, f)
		case k > 1000:
			return "", fmt.Errorf("fail file %s: 1000 other failures already use this name", path)
		}
		// taken by another failure, or by something that is not a fail
		// file we can read: never overwrite it
	}
}

// sameFailure reports whether a and b record the same execution.
func sameFailure(a, b *FailFile) bool {
	return a.Scenario == b.Scenario && a.Variant == b.Variant && a.Seed == b.Seed &&
		a.Strategy == b.Strategy && a.Exec == b.Exec && a.BaseSeed == b.BaseSeed
}

// CheckFailDir makes sure fail files can be written into dir (creating
// it), so an exploration learns before it starts, not after it found a
// failure, that it could not save one.
func CheckFailDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("fail-file directory %s: %w", dir, err)
	}
	tmp, err := atomicfile.Temp(dir, func(w io.Writer) error { return nil })
	if err != nil {
		return fmt.Errorf("fail-file directory %s is not writable: %w", dir, err)
	}
	return os.Remove(tmp)
}

// SavedFailFiles lists the fail files of a scenario variant in dir, in
// name order, including the single name earlier versions used.
func SavedFailFiles(dir, scenario, variant string) []string {
	found, _ := filepath.Glob(filepath.Join(dir, scenario+"-"+variant+"-seed*-exec*.fail"))
	legacy := filepath.Join(dir, scenario+"-"+variant+".fail")
	if _, err := os.Stat(legacy); err == nil {
		found = append(found, legacy)
	}
	slices.Sort(found)
	return found
}
