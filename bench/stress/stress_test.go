//go:build stress

package stress

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"
)

var (
	budget   = flag.Duration("stress.budget", time.Second, "wall-clock budget per program")
	gosched  = flag.Bool("stress.gosched", false, "runtime.Gosched after every shared access")
	watchdog = flag.Duration("stress.watchdog", 50*time.Millisecond, "an execution not done by then is a hang")
	only     = flag.String("stress.only", "", "run only the program with this scenario:variant name")
	child    = flag.String("stress.child", "", "internal: run one program once with plain words (detector child)")
)

func all() []program {
	ps := append(sctPrograms(), cvePrograms()...)
	ps = append(ps, program{name: "cancelsafe:lost-cancel", run: cancelSafeLostCancel})
	return append(ps, reportPrograms()...)
}

// TestStress runs every program in a loop for the budget and prints one
// table row per program: executions, executions that showed the bug, and
// the time to the first.
func TestStress(t *testing.T) {
	var rows []string
	for _, p := range all() {
		if *only != "" && p.name != *only {
			continue
		}
		start := time.Now()
		execs, hits := 0, 0
		var first time.Duration
		var firstErr error
		for time.Since(start) < *budget {
			err := once(p, false, *gosched, *watchdog)
			execs++
			if err != nil {
				if hits == 0 {
					first, firstErr = time.Since(start), err
				}
				hits++
				if err == errHang {
					break // its goroutines stay blocked: stop piling them up
				}
			}
		}
		firstText := "-"
		if hits > 0 {
			firstText = first.Round(time.Microsecond).String()
		}
		rows = append(rows, fmt.Sprintf("| %s | %d | %d | %s |", p.name, execs, hits, firstText))
		t.Logf("%s: %d executions, %d hits, first after %s (%v)", p.name, execs, hits, firstText, firstErr)
	}
	t.Logf("\n| program | executions | hits | first hit |\n|---|---|---|---|\n%s", strings.Join(rows, "\n"))
}

// TestDetector runs each program a few times with plain shared words in a
// child process that exits at the race detector's first report, and prints
// which programs the detector flags.
func TestDetector(t *testing.T) {
	if *child != "" {
		for _, p := range all() {
			if p.name == *child {
				for range 200 {
					_ = once(p, true, false, *watchdog)
				}
				return
			}
		}
		t.Fatalf("no program %q", *child)
	}
	var flagged, quiet []string
	for _, p := range all() {
		cmd := exec.Command(os.Args[0], "-test.run=^TestDetector$", "-stress.child="+p.name)
		cmd.Env = append(os.Environ(), "GORACE=halt_on_error=1 exitcode=66")
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 66 {
			flagged = append(flagged, p.name)
		} else {
			quiet = append(quiet, p.name)
		}
	}
	sort.Strings(flagged)
	t.Logf("race detector flags (%d): %s", len(flagged), strings.Join(flagged, ", "))
	t.Logf("race detector quiet (%d): %s", len(quiet), strings.Join(quiet, ", "))
}
