package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/proptest"
)

// parseFlags parses args (flags may follow positional arguments, as users
// type them) and returns the positional ones.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usagef("%s: %v (run `wqsim help %s`)", fs.Name(), err, fs.Name())
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// resolve turns "scenario[:variant]" into a scenario, with a clear error.
func resolve(spec string) (*model.Scenario, string, error) {
	s, v, err := model.Resolve(spec)
	if err != nil {
		return nil, "", usagef("%v", err)
	}
	return s, v, nil
}

// parseShard parses "i/n".
func parseShard(s string) (int, int, error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return 0, 0, usagef("--shard %q: want i/n with 0 ≤ i < n, e.g. --shard 0/4", s)
	}
	return i, n, nil
}

// outcomeCode maps a run's outcome to its exit code.
func outcomeCode(err error) int {
	var bc *kernel.BugCheck
	var dl *kernel.Deadlock
	var inv *model.InvariantError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &bc):
		return exitBugCheck
	case errors.As(err, &dl):
		return exitDeadlock
	case errors.As(err, new(*kernel.Leak)):
		return exitLeak
	case errors.As(err, new(*kernel.Livelock)), errors.As(err, new(*des.BudgetError)):
		return exitLivelock
	case errors.As(err, &inv):
		return exitInvariant
	case errors.As(err, new(*des.PanicError)):
		return exitPanic
	case errors.As(err, new(*des.ReplayMismatch)):
		return exitMismatch
	}
	return exitInternal
}

func outcomeLine(err error) string {
	if err == nil {
		return "outcome: ok (no failure)"
	}
	return "outcome: " + proptest.Signature(err) + ": " + err.Error()
}

// writeFileAtomic writes data to path through a temporary file and a
// rename, so an interrupted or failed write leaves nothing half-written.
func writeFileAtomic(path string, write func(io.Writer) error) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".wqsim-out-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := write(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func printPanic(w io.Writer, err error) {
	var pe *des.PanicError
	if errors.As(err, &pe) {
		fmt.Fprintf(w, "panic stack:\n%s\n", pe.Stack)
	}
}
