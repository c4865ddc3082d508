package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/proptest"
)

// userScenarios are the scenarios Main was given (a user's own CLI):
// proptest's replay test does not know them.
var userScenarios []*model.Scenario

// reproduceFor says how a failure of s is re-run: with the command that is
// running now, and, for a built-in scenario, with proptest's replay test.
func reproduceFor(s *model.Scenario) *proptest.Reproduce {
	r := proptest.Reproduce{CLI: commandName(os.Args[0], buildInfo())}
	builtin := true
	for _, u := range userScenarios {
		builtin = builtin && u != s
	}
	if builtin {
		r.Test = proptest.DefaultReproduce.Test
	}
	return &r
}

func buildInfo() *debug.BuildInfo {
	bi, _ := debug.ReadBuildInfo()
	return bi
}

// commandName is how a reproduce line starts the program that is running,
// given its argv[0]: "go run ./cmd/NAME" when go run built it into a
// temporary directory (from the module root, which is where the line is
// meant to be pasted); the bare name when it was found on PATH (an
// installed wqsim); otherwise its absolute path, which works from anywhere.
// In a test binary (cli's own tests) it is wqsim's "go run ./cmd/wqsim".
func commandName(arg0 string, bi *debug.BuildInfo) string {
	if strings.HasSuffix(arg0, ".test") {
		return proptest.DefaultReproduce.CLI // cli's own tests run Main in a test binary
	}
	if strings.Contains(filepath.ToSlash(arg0), "/go-build") && bi != nil && bi.Main.Path != "" {
		if rel, ok := strings.CutPrefix(bi.Path, bi.Main.Path+"/"); ok {
			return "go run ./" + rel
		}
	}
	if !strings.ContainsRune(arg0, filepath.Separator) {
		if found, err := exec.LookPath(arg0); err == nil && found != "" {
			return arg0
		}
	}
	if abs, err := filepath.Abs(arg0); err == nil {
		return abs
	}
	return arg0
}

// versionLine is what `wqsim --version` prints: the program's package, its
// module's version ("(devel)" when built from a checkout), the VCS revision
// and time the build recorded (with "+dirty" for uncommitted changes) and
// the Go version.
func versionLine(bi *debug.BuildInfo) string {
	if bi == nil {
		return "wqsim: no build information (built without module support)"
	}
	line := bi.Path + " " + bi.Main.Version
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	if rev := settings["vcs.revision"]; rev != "" {
		line += " " + rev
		if settings["vcs.modified"] == "true" {
			line += "+dirty"
		}
		if at := settings["vcs.time"]; at != "" {
			line += " " + at
		}
	}
	return line + " " + bi.GoVersion
}
