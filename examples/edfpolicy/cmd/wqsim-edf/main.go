// Command wqsim-edf is wqsim with the example EDF dispatcher registered:
// the way a researcher links a policy of their own into the tool.
package main

import (
	"os"

	"github.com/wqsim/wqsim/cli"
	_ "github.com/wqsim/wqsim/examples/edfpolicy" // registers the "edf" dispatcher
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
