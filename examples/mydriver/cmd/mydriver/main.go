// Command mydriver is wqsim's command line with the mydriver scenario:
// go run ./examples/mydriver/cmd/mydriver explore mydriver:racy
package main

import (
	"os"

	"github.com/wqsim/wqsim/cli"
	"github.com/wqsim/wqsim/examples/mydriver"
)

func main() { os.Exit(cli.Main(os.Args[1:], mydriver.Scenario)) }
