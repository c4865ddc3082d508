package des_test

import (
	"fmt"

	"github.com/wqsim/wqsim/des"
)

// Two simulated processes sleep in virtual time; the event loop resumes
// them in time order, and the run is the same every time.
func ExampleSim() {
	sim := des.New(des.Config{Seed: 1})
	defer sim.Close()
	for _, d := range []des.Duration{3 * des.Millisecond, 2 * des.Millisecond} {
		p := sim.Spawn(fmt.Sprint("sleeper-", d), func(p *des.Proc) {
			p.Sleep(d)
			fmt.Println(p.Name(), "woke at", sim.Now())
		})
		sim.ResumeAt(0, p)
	}
	out := sim.Run()
	fmt.Println("ended at", out.End, "error:", out.Err)
	// Output:
	// sleeper-2ms woke at 0.002000000s
	// sleeper-3ms woke at 0.003000000s
	// ended at 0.003000000s error: <nil>
}

// Every nondeterministic choice goes through Choose and is logged; a strict
// replay of the log makes the same choices again.
func ExampleReplay() {
	pick := des.Point{Kind: 100, Label: "example: which branch"}
	run := func(c des.Chooser) ([]int, []des.Decision) {
		sim := des.New(des.Config{Chooser: c})
		defer sim.Close()
		var got []int
		for i := 0; i < 3; i++ {
			got = append(got, sim.Choose(pick, 4))
		}
		return got, append([]des.Decision(nil), sim.Decisions()...)
	}
	first, log := run(des.NewSeeded(7))
	again, _ := run(des.NewReplay(log))
	fmt.Println(len(log), "decisions; replay identical:", fmt.Sprint(first) == fmt.Sprint(again))
	// Output: 3 decisions; replay identical: true
}
