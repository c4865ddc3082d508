package proptest_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/proptest"
)

// Explore a scenario variant, shrink the first failure and say what the
// minimal schedule does.
func ExampleExplore() {
	s, _ := model.Lookup("lostupdate")
	rep, err := proptest.Explore(context.Background(), proptest.Options{
		Scenario: s, Variant: "racy", Execs: 1000, Seed: 7, Shrink: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	f := rep.First()
	fmt.Println(proptest.Signature(f.MinFinal.Outcome.Err))
	fmt.Println(strings.Join(proptest.DescribeSchedule(f.Minimal), "\n"))
	// Output:
	// invariant counter
	// decision 2: kernel: inject preemption → early quantum end (another ready thread runs)
}
