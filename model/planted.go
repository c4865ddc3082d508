package model

import (
	"fmt"

	"github.com/wqsim/wqsim/kernel"
)

// Coverage marks of these scenarios (see Mark).
var (
	markLostUpdate = NewMark("lostupdate: preempted between read and write")
)

// The planted scenarios are small races of known shape, used to test the
// explorer itself (shrinking, replay, strategies) and as the quickest demo.

func init() {
	Register(&Scenario{
		Name: "lostupdate",
		Doc: "Two threads on one processor each add one to a shared counter. The racy variant reads, " +
			"then writes (two scheduling points); the correct one uses InterlockedIncrement. The race needs " +
			"exactly one perturbation: an early quantum end between the read and the write.",
		Section: "§4.2 (round-robin at quantum end), §6 (races in general)",
		Variants: []Variant{
			{Name: "correct", Doc: "InterlockedIncrement"},
			{Name: "racy", Bug: true, Doc: "read-modify-write in two steps", Marks: []*Mark{markLostUpdate}, Want: "counter"},
		},
		Config: func(string) kernel.Config {
			c := kernel.DefaultConfig()
			c.Processors = 1
			c.InjectPreemption = true
			return c
		},
		Setup: setupLostUpdate,
	})
}

func setupLostUpdate(env *Env) error {
	k := env.K
	counter := k.NewCell("counter", 0)
	for _, name := range []string{"adder1", "adder2"} {
		k.PsCreateSystemThread(name, 8, func() {
			if env.Is("correct") {
				k.InterlockedIncrement(counter)
				return
			}
			v := k.Read(counter)
			// The store is an exchange only so the model can see what it
			// overwrote; the bug is the separate read.
			if old := k.InterlockedExchange(counter, v+1); old != v {
				env.Hit(markLostUpdate)
			}
		})
	}
	env.AtEnd("counter", func() error {
		if got := counter.Peek(); got != 2 {
			return fmt.Errorf("counter = %d after two increments, want 2 (an update was lost)", got)
		}
		return nil
	})
	return nil
}
