// Package cli is the wqsim command line as a library: Main takes the
// arguments and the scenarios to offer, and returns the exit code.
//
// The wqsim binary (cmd/wqsim) is a thin shell over it; a user's own
// module gets list, run, explore, replay, trace and experiment for its
// own scenarios, with the same flags, exit codes and outputs, from a
// main of a few lines:
//
//	package main
//
//	import (
//		"os"
//
//		"github.com/wqsim/wqsim/cli"
//		"example.com/mydriver"
//	)
//
//	func main() { os.Exit(cli.Main(os.Args[1:], mydriver.Scenario)) }
//
// Start with `wqsim help`; each command's flags are listed by
// `wqsim help COMMAND`.
package cli
