package cli

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/proptest"
)

// TestMain lets a test run the command line as a separate process (the
// test binary re-executed with WQSIM_CLI_CHILD=1): a stuck simulated
// thread cannot be stopped, so those tests need a process to end.
func TestMain(m *testing.M) {
	if os.Getenv("WQSIM_CLI_CHILD") == "1" {
		os.Exit(Main(os.Args[1:], spinScenario()))
	}
	os.Exit(m.Run())
}

// spinScenario has one thread that, for seeds ≡ 2 (mod 3), loops in pure Go
// after a little simulated work: it never reaches the kernel again.
func spinScenario() *model.Scenario {
	return &model.Scenario{
		Name: "spin", Doc: "a thread that loops without calling the kernel (watchdog tests)",
		Variants: []model.Variant{{Name: "loop", Bug: true}},
		Config: func(string) kernel.Config {
			c := kernel.DefaultConfig()
			c.Processors = 1
			return c
		},
		Setup: func(env *model.Env) error {
			k := env.K
			k.PsCreateSystemThread("spinner", 8, func() {
				k.Compute(10 * des.Microsecond)
				if env.Sim.Seed()%3 == 2 {
					// tell a signalling test the loop is entered (the child
					// runs in a temporary directory of its own)
					_ = os.WriteFile(spinMark, nil, 0o644)
					for spinForever() {
					}
				}
			})
			return nil
		},
	}
}

var spinning = true

// spinMark is the file a child creates in its directory as its thread
// enters the loop.
const spinMark = "spinning.mark"

func spinForever() bool { return spinning }

// child runs the command line in a new process and returns its exit code
// and output; it fails the test if the process does not end within limit.
func child(t *testing.T, limit time.Duration, args ...string) (int, string, string) {
	t.Helper()
	cmd := childCmd(t, args...)
	var out, errb syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	require.NoError(t, cmd.Start())
	return waitChild(t, cmd, limit, &out, &errb)
}

// childCmd is the command line re-executed as a child, in a directory of
// its own: whatever it writes by default (a fail file under
// testdata/wqsim-fail) lands there, not in the source tree.
func childCmd(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	bin, err := filepath.Abs(os.Args[0])
	require.NoError(t, err)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "WQSIM_CLI_CHILD=1")
	cmd.Dir = t.TempDir()
	return cmd
}

// syncBuffer is a bytes.Buffer that the child's output goroutine may fill
// while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func waitChild(t *testing.T, cmd *exec.Cmd, limit time.Duration, out, errb *syncBuffer) (int, string, string) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(limit):
		cmd.Process.Kill()
		<-done
		t.Fatalf("wqsim %v did not end within %v\nstdout:\n%s\nstderr:\n%s", cmd.Args[1:], limit, out, errb)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errb.String()
}

// firstSpinExec is the first execution of an exploration with base seed
// that runs a spinning thread.
func firstSpinExec(seed uint64) (int, uint64) {
	for i := 0; ; i++ {
		if s := proptest.ExecSeed(seed, i); s%3 == 2 {
			return i, s
		}
	}
}

// A thread in a pure Go loop is reported by the watchdog, with its
// execution, seed, actor and last records, a fail file is written, and the
// process exits 17: in explore, run, replay and trace.
func TestWatchdogStuckThread(t *testing.T) {
	dir := t.TempDir()
	code, out, errs := child(t, 60*time.Second, "explore", "spin:loop", "--seed", "5", "--faildir", dir, "--watchdog", "1s", "--parallel", "2")
	require.Equal(t, exitStuck, code, out+errs)
	k, seed := firstSpinExec(5)
	assert.Contains(t, out, "execution "+strconv.Itoa(k)+" (seed "+strconv.FormatUint(seed, 10)+") did not yield for")
	assert.Contains(t, out, "may loop without calling the kernel")
	assert.Contains(t, out, "last in the trace: spinner")
	assert.Contains(t, out, "last trace records before it stuck")
	files, _ := filepath.Glob(filepath.Join(dir, "*.fail"))
	require.Len(t, files, 1, out)
	ff, err := proptest.ReadFailFile(files[0])
	require.NoError(t, err)
	assert.Equal(t, seed, ff.Seed)
	assert.Contains(t, ff.Outcome, "did not yield")

	for _, args := range [][]string{
		{"replay", files[0], "--watchdog", "1s"},
		{"trace", files[0], "--watchdog", "1s", "-o", filepath.Join(dir, "t.txt")},
		{"run", "spin:loop", "--seed", strconv.FormatUint(seed, 10), "--watchdog", "1s"},
	} {
		code, out, errs := child(t, 30*time.Second, args...)
		assert.Equal(t, exitStuck, code, "%v: %s%s", args, out, errs)
		assert.Contains(t, out+errs, "did not yield for", args)
	}
}

// Ctrl-C on a stuck run: the first stops it within about a second (the
// watchdog reports the stuck execution); SIGTERM does the same; a second
// signal ends the process at once.
func TestSignalsEndAStuckRun(t *testing.T) {
	_, seed := firstSpinExec(1)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		code, out, errs := signalled(t, []os.Signal{sig}, "run", "spin:loop", "--seed", strconv.FormatUint(seed, 10))
		assert.Equal(t, exitStuck, code, "%v: %s%s", sig, out, errs)
		assert.Contains(t, out, "did not yield")
	}
	// the second Ctrl-C does not wait for anything
	code, out, errs := signalled(t, []os.Signal{syscall.SIGINT, syscall.SIGINT}, "explore", "spin:loop", "--watchdog", "10m", "--faildir", t.TempDir())
	assert.Equal(t, exitInterrupted, code, out+errs)
	assert.Contains(t, errs, "interrupted twice")
}

// signalled starts wqsim, waits until its simulated thread spins (the
// child creates spinMark; waiting for its first line plus a fixed delay
// was flaky on a loaded machine, where the signal could arrive before the
// loop), sends sigs 300 ms apart (closer signals of one kind may merge
// into one while pending) and requires the process to end within 15 s of
// the first (it takes well under a second on an idle machine).
func signalled(t *testing.T, sigs []os.Signal, args ...string) (int, string, string) {
	t.Helper()
	cmd := childCmd(t, args...)
	var out, errb syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	require.NoError(t, cmd.Start())
	mark := filepath.Join(cmd.Dir, spinMark)
	for start := time.Now(); time.Since(start) < 60*time.Second; {
		if _, err := os.Stat(mark); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, s := range sigs {
		require.NoError(t, cmd.Process.Signal(s))
		time.Sleep(300 * time.Millisecond)
	}
	return waitChild(t, cmd, 15*time.Second, &out, &errb)
}
