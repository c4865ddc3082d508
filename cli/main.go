package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/proptest"
)

// Exit codes: those of the command line itself, then one per outcome class,
// declared once with the classes in des (des.Class.ExitCode; README "Exit
// codes" and `wqsim help` list them).
const (
	exitOK          = 0
	exitUsage       = 2 // bad flags, arguments or input files
	exitInterrupted = 130
)

var (
	exitInternal  = des.ClassInternal.ExitCode()
	exitInvariant = des.ClassInvariant.ExitCode()
	exitMismatch  = des.ClassReplayMismatch.ExitCode()
	exitStuck     = des.ClassStuck.ExitCode()
)

// Main runs the wqsim command line with args (without the program name)
// and returns the process exit code. Scenarios given here are registered
// beside the built-in ones (see model.Register), so a user's own main can
// be:
//
//	func main() { os.Exit(cli.Main(os.Args[1:], mydriver.Scenario)) }
//
// Main handles SIGINT and SIGTERM itself: the first one stops the current
// command cleanly (exit 130), keeping what was already written; a second
// one ends the process at once with exit 130, whatever it was doing.
func Main(args []string, scenarios ...*model.Scenario) int {
	if err := registerUser(scenarios); err != nil {
		fmt.Fprintln(os.Stderr, "wqsim:", err)
		return exitUsage
	}
	ctx, stop := interruptible(os.Stderr)
	defer stop()
	return run(ctx, args, os.Stdout, os.Stderr)
}

// registerUser registers the scenarios a user's command gives Main. A
// scenario already registered (Main called twice) is kept; a different
// scenario under a name that is taken (a built-in's, say) is an error:
// registering neither would make every command silently run the other
// one.
func registerUser(scenarios []*model.Scenario) error {
	for _, s := range scenarios {
		reg, err := model.Lookup(s.Name)
		switch {
		case err != nil:
			model.Register(s)
		case reg != s:
			return fmt.Errorf("scenario name %q is taken by another registered scenario (%s); give yours a name of its own", s.Name, reg.Doc)
		}
		if !slices.Contains(userScenarios, s) {
			userScenarios = append(userScenarios, s)
		}
	}
	return nil
}

// interruptible returns a context that is cancelled by the first SIGINT or
// SIGTERM; the second exits the process (a simulated thread in an endless
// loop cannot be stopped any other way).
func interruptible(stderr io.Writer) (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	quit := make(chan struct{})
	go func() {
		select {
		case <-sigs:
			cancel()
		case <-quit:
			return
		}
		select {
		case <-sigs:
			fmt.Fprintln(stderr, "\nwqsim: interrupted twice: exiting now")
			os.Exit(exitInterrupted)
		case <-quit:
		}
	}()
	return ctx, func() { signal.Stop(sigs); close(quit); cancel() }
}

// usageError is bad input from the user: exit 2 with the message.
type usageError struct{ msg string }

func (u *usageError) Error() string { return u.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

// exitError carries a non-zero exit code for an outcome already printed.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := "explore" // no command, or flags first: explore
	if len(args) > 0 && (!strings.HasPrefix(args[0], "-") || isHelp(args[0])) {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "list":
		err = cmdList(args, stdout)
	case "run":
		err = cmdRun(ctx, args, stdout)
	case "explore":
		err = cmdExplore(ctx, args, stdout, stderr)
	case "replay":
		err = cmdReplay(ctx, args, stdout)
	case "trace":
		err = cmdTrace(ctx, args, stdout)
	case "explain":
		err = cmdExplain(ctx, args, stdout)
	case "merge":
		err = cmdMerge(args, stdout)
	case "experiment":
		err = cmdExperiment(ctx, args, stdout)
	case "help", "-h", "--help", "-help":
		err = cmdHelp(args, stdout)
	case "version", "--version":
		_, err = fmt.Fprintln(stdout, versionLine(buildInfo()))
	default:
		err = usagef("unknown command %q; run `wqsim help`", cmd)
	}
	var help *helpRequested
	if errors.As(err, &help) {
		err = cmdHelp([]string{help.command}, stdout)
	}
	return exitCode(err, stderr)
}

func isHelp(arg string) bool { return arg == "-h" || arg == "--help" || arg == "-help" }

func exitCode(err error, stderr io.Writer) int {
	var ue *usageError
	var ee *exitError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ue):
		fmt.Fprintln(stderr, "wqsim:", ue.msg)
		return exitUsage
	case errors.As(err, new(*proptest.HashMismatch)), errors.As(err, new(*des.ReplayMismatch)):
		fmt.Fprintln(stderr, "wqsim:", err)
		return exitMismatch
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(stderr, "wqsim: interrupted")
		return exitInterrupted
	}
	fmt.Fprintln(stderr, "wqsim:", err)
	return exitInternal
}
