// Command drivers is wqsim's command line with the example drivers'
// scenarios: go run ./examples/drivers/cmd/drivers explore devicestack:correct -execs 100000
package main

import (
	"os"

	"github.com/wqsim/wqsim/cli"
	"github.com/wqsim/wqsim/examples/drivers"
)

func main() { os.Exit(cli.Main(os.Args[1:], drivers.All...)) }
