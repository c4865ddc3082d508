package model_test

import (
	"context"
	"fmt"

	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/proptest"
)

// A scenario of your own, in your own package: a declared mark, a correct
// and a racy variant asked with env.Is, driver code on env.K, and an
// invariant checked at the end.

// markLost is the racy path: declared once, listed by the racy variant and
// hit by the driver code.
var markLost = model.NewMark("counter: preempted between read and write")

var counter = &model.Scenario{
	Name:    "counter",
	Doc:     "Two threads each add one to a shared counter; the racy variant reads, then writes.",
	Section: "REFERENCE §4.2",
	Variants: []model.Variant{
		{Name: "correct", Doc: "InterlockedIncrement"},
		{Name: "racy", Bug: true, Doc: "read, then write", Marks: []*model.Mark{markLost}, Want: "counter"},
	},
	Config: func(string) kernel.Config {
		c := kernel.DefaultConfig()
		c.Processors = 1
		c.InjectPreemption = true // let the explorer end a quantum early at any call
		return c
	},
	Setup: func(env *model.Env) error {
		k := env.K
		n := k.NewCell("n", 0)
		for _, name := range []string{"adder1", "adder2"} {
			k.PsCreateSystemThread(name, 8, func() {
				if env.Is("correct") {
					k.InterlockedIncrement(n)
					return
				}
				v := k.Read(n)
				if k.InterlockedExchange(n, v+1) != v {
					env.Hit(markLost)
				}
			})
		}
		env.AtEnd("counter", func() error {
			if got := n.Peek(); got != 2 {
				return fmt.Errorf("n = %d after two increments", got)
			}
			return nil
		})
		return nil
	},
}

// Run one execution with natural choices, then explore the racy variant.
// In a test, proptest.Check(t, counter, "correct", proptest.CheckOptions{})
// and proptest.Find(t, counter, "racy", proptest.Options{}) do the
// exploring and report a failure with its reproduce line.
func Example() {
	r, err := model.Run(counter, "racy", model.RunConfig{Seed: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("natural run:", r.Outcome.Err)

	rep, err := proptest.Explore(context.Background(), proptest.Options{Scenario: counter, Variant: "racy", Seed: 1, Shrink: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	f := rep.First()
	fmt.Println("found:", proptest.Signature(f.MinFinal.Outcome.Err))
	fmt.Println("perturbations needed:", f.Perturbations())
	fmt.Println("racy path reached:", f.MinFinal.Marks)
	// Output:
	// natural run: <nil>
	// found: invariant counter
	// perturbations needed: 1
	// racy path reached: [counter: preempted between read and write]
}
