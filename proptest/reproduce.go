package proptest

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/internal/atomicfile"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/timeline"
)

// Reproduce says how a saved failure is re-run. Its Lines are printed with
// the failure and written into the fail file as comments; every line names
// the fail file by absolute path, so it works wherever it is pasted.
type Reproduce struct {
	// CLI is the command that starts a wqsim command line knowing the
	// scenario: "wqsim" (installed), "go run ./cmd/wqsim" (a checkout of
	// wqsim), "go run ./cmd/mydriver" (your own cli.Main). Empty: no CLI
	// line.
	CLI string
	// Test is what follows "go test" to select a test that replays the
	// file when given -wqsim.failfile: "./mydriver -run '^TestRacy$'".
	// Empty: no go test line.
	Test string
}

// DefaultReproduce is how a built-in scenario is re-run from the root of a
// wqsim checkout: the command line, and proptest's TestReplayFailFile.
var DefaultReproduce = Reproduce{CLI: "go run ./cmd/wqsim", Test: "./proptest -run TestReplayFailFile"}

// Lines returns the copy-paste commands that replay the fail file at path.
func (r Reproduce) Lines(path string) []string {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	var out []string
	if r.CLI != "" {
		out = append(out, r.CLI+" replay "+path)
	}
	if r.Test != "" {
		out = append(out, "go test "+r.Test+" -wqsim.failfile="+path)
	}
	return out
}

// ReproduceLines are DefaultReproduce's lines for path.
func ReproduceLines(path string) []string { return DefaultReproduce.Lines(path) }

// testReproduce is how the failure of a Check or Find in test t is re-run:
// go test of the test's own package (named from the module root, where the
// line is meant to be pasted) and of exactly this test; a CLI line only
// when cli names one.
func testReproduce(t testing.TB, cli string) Reproduce {
	return Reproduce{CLI: cli, Test: testPackage() + " -run '" + runPattern(t.Name()) + "'"}
}

// testPackage returns the package go test is running, as a path relative
// to the module root ("./examples/mydriver"): go test runs a package's
// tests in its directory. Outside a module it is the absolute directory.
func testPackage() string {
	dir, err := os.Getwd()
	if err != nil {
		return "."
	}
	for root := dir; ; {
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
			rel, err := filepath.Rel(root, dir)
			if err != nil {
				return dir
			}
			if rel == "." {
				return "." // a package at the module root: "./." reads like a typo
			}
			return "./" + filepath.ToSlash(rel)
		}
		up := filepath.Dir(root)
		if up == root {
			return dir
		}
		root = up
	}
}

// runPattern anchors each element of a (sub)test name for go test -run.
func runPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

// WriteTimelines replays the failure's final schedule (the shrunk one if
// it was shrunk) and writes its HTML timeline and its Perfetto trace
// (Chrome trace-event JSON, for ui.perfetto.dev) as base+".html" and
// base+".perfetto.json". It returns the two paths. A run the watchdog gave
// up on (a *StuckError) is not replayed.
func (f *Failure) WriteTimelines(base string) (html, perfetto string, err error) {
	if f.scenario == nil {
		return "", "", fmt.Errorf("failure has no scenario: it did not come from Explore")
	}
	if _, stuck := f.Result.Outcome.Err.(*StuckError); stuck {
		return "", "", fmt.Errorf("the run did not come back, so it is not replayed for a timeline")
	}
	log := f.Minimal
	if log == nil {
		log = f.Result.Outcome.Decisions
	}
	recs := &des.RecordSink{}
	r, err := model.Run(f.scenario, f.Result.Variant, model.RunConfig{Seed: f.Seed, Chooser: des.NewReplay(log), Sink: recs})
	if err != nil {
		return "", "", err
	}
	meta := timeline.Meta{Scenario: r.Scenario + ":" + r.Variant, Seed: r.Seed, Outcome: errText(r.Outcome.Err),
		End: r.Outcome.End, Marks: r.Marks}
	for i, d := range r.Outcome.Decisions {
		if d.Choice != 0 {
			meta.Perturbations = append(meta.Perturbations, timeline.Perturbation{At: d.At, Actor: d.Actor, Text: DescribeDecision(i, d)})
		}
	}
	html, perfetto = base+".html", base+".perfetto.json"
	if err := atomicfile.Write(html, func(w io.Writer) error { return timeline.WriteHTML(w, recs.Records, meta) }); err != nil {
		return "", "", err
	}
	if err := atomicfile.Write(perfetto, func(w io.Writer) error { return timeline.WritePerfetto(w, recs.Records, meta) }); err != nil {
		return "", "", err
	}
	return html, perfetto, nil
}
