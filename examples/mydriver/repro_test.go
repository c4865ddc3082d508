package mydriver_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/wqsim/wqsim/examples/mydriver"
	"github.com/wqsim/wqsim/proptest"
)

// TestRacyCheck is what a user's failing test looks like: Check on the
// racy variant. It runs only when MYDRIVER_RACY_CHECK=1 (it fails by
// design); TestReproduceLinesWork drives it.
func TestRacyCheck(t *testing.T) {
	if os.Getenv("MYDRIVER_RACY_CHECK") != "1" {
		t.Skip("fails by design; set MYDRIVER_RACY_CHECK=1 (TestReproduceLinesWork does)")
	}
	proptest.Check(t, mydriver.Scenario, "racy", proptest.CheckOptions{Seed: 1})
}

// A scenario in a package of its own: the reproduce lines its failures
// print work when pasted at the repository root. The CLI is built from the
// five-line cmd/mydriver; its explore prints a replay line naming that
// binary; go test prints a line naming this package and test; both
// reproduce the failure.
func TestReproduceLinesWork(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the example's command and go test")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "mydriver")
	run(t, root, nil, 0, "go", "build", "-o", bin, "./examples/mydriver/cmd/mydriver")

	out := run(t, root, nil, 14, bin, "explore", "mydriver:racy", "--seed", "1", "--faildir", filepath.Join(tmp, "cli"))
	lines := reproduceLines(t, out)
	if len(lines) != 1 || !strings.HasPrefix(lines[0], bin+" replay "+tmp) {
		t.Fatalf("want one replay line naming %s; got %q", bin, lines)
	}
	replayed := run(t, root, nil, 14, "sh", "-c", lines[0])
	if !strings.Contains(replayed, "outstanding") {
		t.Errorf("the pasted replay line did not reproduce the failure:\n%s", replayed)
	}

	env := []string{"MYDRIVER_RACY_CHECK=1", "WQSIM_FAILDIR=" + filepath.Join(tmp, "test")}
	out = run(t, root, env, 1, "go", "test", "./examples/mydriver", "-run", "^TestRacyCheck$", "-count=1")
	var goTest string
	for _, l := range reproduceLines(t, out) {
		if strings.HasPrefix(l, "go test ./examples/mydriver -run '^TestRacyCheck$' -wqsim.failfile="+tmp) {
			goTest = l
		}
	}
	if goTest == "" {
		t.Fatalf("no go test line naming this package and test in:\n%s", out)
	}
	for _, what := range []string{"timeline: ", "perfetto: "} {
		m := regexp.MustCompile(what + `(\S+)`).FindStringSubmatch(out)
		if m == nil {
			t.Errorf("the report does not say where the %s is", what)
		} else if _, err := os.Stat(m[1]); err != nil {
			t.Errorf("%s%v", what, err)
		}
	}
	replayed = run(t, root, env, 1, "sh", "-c", goTest+" -count=1")
	if !strings.Contains(replayed, "mydriver:racy still fails") {
		t.Errorf("the pasted go test line did not replay the failure:\n%s", replayed)
	}
}

// run runs a command in dir and requires exit code want.
func run(t *testing.T, dir string, env []string, want int, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if code != want {
		t.Fatalf("%s %s: exit %d, want %d\n%s", name, strings.Join(args, " "), code, want, out)
	}
	return string(out)
}

// reproduceLines returns the indented lines after a "reproduce" heading.
func reproduceLines(t *testing.T, out string) []string {
	t.Helper()
	var lines []string
	in := false
	for _, l := range strings.Split(out, "\n") {
		trimmed := strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(trimmed, "reproduce"):
			in = true
		case in && strings.HasPrefix(l, "  ") && trimmed != "":
			lines = append(lines, trimmed)
		default:
			in = false
		}
	}
	return lines
}
