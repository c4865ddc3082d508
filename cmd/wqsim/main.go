// Command wqsim explores the schedules of simulated Windows drivers and
// hands back every race it finds as a minimal, replayable schedule.
//
// Run `wqsim help` for the subcommands and `wqsim help COMMAND` for flags.
// The command is a thin shell over package cli, which a user's own main can
// call with its own scenarios.
package main

import (
	"os"

	"github.com/wqsim/wqsim/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
