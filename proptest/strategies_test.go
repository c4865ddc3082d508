package proptest_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/proptest"
)

// sequential reports whether a strategy depends on earlier executions.
func sequential(st proptest.Strategy) bool {
	_, ok := st.(proptest.Sequential)
	return ok
}

// For every strategy, a parallel exploration reports what a serial one
// does, and (for those that are not Sequential) shards partition it.
func TestEveryStrategyParallelAndShardsExact(t *testing.T) {
	s := lostUpdate(t)
	for _, name := range proptest.StrategyNames {
		t.Run(name, func(t *testing.T) {
			run := func(par, shard, shards int) *proptest.Report {
				st, err := proptest.NewStrategy(name)
				require.NoError(t, err)
				rep, err := proptest.Explore(context.Background(), proptest.Options{Scenario: s, Variant: "racy", Strategy: st,
					Execs: 120, Seed: 7, Parallel: par, KeepGoing: true, Shard: shard, Shards: shards})
				require.NoError(t, err)
				return rep
			}
			ser, par := run(1, 0, 1), run(3, 0, 1)
			assert.Equal(t, execsOf(ser), execsOf(par))
			assert.Equal(t, ser.Fingerprints, par.Fingerprints)
			assert.Equal(t, ser.Marks, par.Marks)
			for i := range ser.Failures {
				assert.Equal(t, ser.Failures[i].Result.Outcome.Hash, par.Failures[i].Result.Outcome.Hash)
				assert.Equal(t, ser.Failures[i].By, par.Failures[i].By)
			}
			if sequential(ser2(t, name)) {
				return // one corpus per shard: not a partition (documented)
			}
			var union []int
			for i := 0; i < 3; i++ {
				union = append(union, execsOf(run(2, i, 3))...)
			}
			assert.ElementsMatch(t, execsOf(ser), union)
		})
	}
}

func ser2(t *testing.T, name string) proptest.Strategy {
	st, err := proptest.NewStrategy(name)
	require.NoError(t, err)
	return st
}

// workloadBug fails only when its workload decision takes a non-natural
// option: a strategy that never varies the workload cannot find it.
func workloadBug() *model.Scenario {
	return &model.Scenario{
		Name: "workloadbug", Doc: "fails when the workload cancels the second of three requests",
		Variants: []model.Variant{{Name: "bug", Bug: true, Want: "second"}},
		Config: func(string) kernel.Config {
			c := kernel.DefaultConfig()
			c.Processors = 1
			c.InjectPreemption = true
			return c
		},
		Setup: func(env *model.Env) error {
			k := env.K
			x := k.NewCell("x", 0)
			k.PsCreateSystemThread("app", 8, func() {
				k.Write(x, 1)
				if env.Choose("workloadbug: which request to cancel", 3) == 1 {
					env.Violation("second", "cancelled the second request")
				}
			})
			return nil
		},
	}
}

// Every strategy perturbs workload decisions (PCT used to keep them natural
// and missed every bug behind one).
func TestEveryStrategyVariesTheWorkload(t *testing.T) {
	s := workloadBug()
	for _, name := range proptest.StrategyNames {
		st := ser2(t, name)
		rep, err := proptest.Explore(context.Background(), proptest.Options{Scenario: s, Variant: "bug", Strategy: st, Execs: 400, Seed: 3, Parallel: 1})
		require.NoError(t, err)
		assert.NotNil(t, rep.First(), "%s never took the workload's second option in 400 executions", name)
	}
}

// PCT prepared with the natural run reports n, k, d and its bound.
func TestPCTReportsItsParameters(t *testing.T) {
	rep, err := proptest.Explore(context.Background(), proptest.Options{Scenario: lostUpdate(t), Variant: "correct", Strategy: proptest.NewPCT(3, 2000), Execs: 10})
	require.NoError(t, err)
	prof, err := proptest.NaturalProfile(lostUpdate(t), "correct", 0)
	require.NoError(t, err)
	pct := proptest.NewPCT(3, 0).Prepare(prof).(*proptest.PCT)
	assert.Equal(t, len(prof.Actors), pct.Actors)
	assert.Equal(t, prof.Steps, pct.Steps)
	want := fmt.Sprintf("strategy=pct d=3 k=%d n=%d bound=1/(n·k^(d−1))=%.3g", prof.Steps, len(prof.Actors), pct.Bound(len(prof.Actors)))
	assert.Equal(t, want, rep.Strategy)
	assert.Equal(t, 2, len(prof.Actors), "two adders")
}

// The natural run's profile names the shared counter and counts each
// adder's operations on it (read then exchange).
func TestNaturalProfile(t *testing.T) {
	prof, err := proptest.NaturalProfile(lostUpdate(t), "racy", 0)
	require.NoError(t, err)
	require.Len(t, prof.Shared, 1)
	for _, a := range prof.Actors {
		assert.Equal(t, 2, prof.Events[a], "actor %d", a)
	}
}

// Fest keeps mutants that grow hand-off coverage, and finds the race.
func TestFestGrowsItsCorpus(t *testing.T) {
	f := proptest.NewFest()
	rep, err := proptest.Explore(context.Background(), proptest.Options{Scenario: lostUpdate(t), Variant: "racy", Strategy: f, Execs: 2000, Seed: 1})
	require.NoError(t, err)
	require.NotNil(t, rep.First())
	assert.Positive(t, f.Kept, "a mutant that changed a hand-off order was kept")
}

// Coverage: an exploration counts its distinct schedules and the marks it
// reached; a mark declared with Sometimes and never reached fails Check.
func TestCoverageAndSometimes(t *testing.T) {
	rep, err := proptest.Explore(context.Background(), proptest.Options{Scenario: lostUpdate(t), Variant: "racy", Execs: 300, Seed: 2, KeepGoing: true})
	require.NoError(t, err)
	assert.Greater(t, rep.Fingerprints, 1)
	assert.LessOrEqual(t, rep.Fingerprints, rep.Execs)
	assert.Contains(t, rep.Marks, "lostupdate: preempted between read and write")
	assert.Len(t, rep.Marks, 1)

	s := sometimesScenario()
	rep, err = proptest.Explore(context.Background(), proptest.Options{Scenario: s, Variant: "correct", Execs: 200, Seed: 1})
	require.NoError(t, err)
	assert.Equal(t, []string{"sometimes: never reached"}, rep.Missed)
	assert.Contains(t, rep.Marks, "sometimes: reached")
	assert.NotContains(t, rep.Marks, "sometimes: never reached")
	fake := &fakeTB{TB: t}
	proptest.Check(fake, s, "correct", proptest.CheckOptions{Execs: 100})
	assert.True(t, fake.failed, "Check fails when a Sometimes mark is never reached")
	require.Len(t, fake.msgs, 1)
	assert.Contains(t, fake.msgs[0], "never reached")
}

var (
	markReached = model.NewMark("sometimes: reached")
	markNever   = model.NewMark("sometimes: never reached")
)

func sometimesScenario() *model.Scenario {
	return &model.Scenario{
		Name: "sometimes", Doc: "declares two marks and reaches one",
		Variants: []model.Variant{{Name: "correct"}},
		Config: func(string) kernel.Config {
			c := kernel.DefaultConfig()
			c.Processors = 1
			return c
		},
		Setup: func(env *model.Env) error {
			env.Sometimes(markReached)
			env.Sometimes(markNever)
			env.K.PsCreateSystemThread("t", 8, func() { env.Hit(markReached) })
			return nil
		},
	}
}

// guided follows a log while it matches and takes choice 0 after.
type guided struct {
	log []des.Decision
	i   int
	off bool
}

func (g *guided) Choose(p des.Point, n int) int {
	if g.off || g.i >= len(g.log) {
		return 0
	}
	d := g.log[g.i]
	g.i++
	if d.Kind != p.Kind || int(d.N) != n {
		g.off = true
		return 0
	}
	return int(d.Choice)
}

// Shrinking ends 1-minimal, checked property-style: for failures found
// under many seeds across the built-in bug variants, the shrunk log still
// fails the same way, says it finished, and zeroing any single remaining
// perturbation no longer fails the same way.
func TestShrinkIsOneMinimal(t *testing.T) {
	seeds := execs(6, 2)
	checked := 0
	for _, s := range model.All() {
		for _, v := range s.Variants {
			if !v.Bug {
				continue
			}
			for seed := 1; seed <= seeds; seed++ {
				rep, err := proptest.Explore(context.Background(), proptest.Options{Scenario: s, Variant: v.Name,
					Strategy: proptest.NewRandomWalk(), Execs: 5000, Seed: uint64(seed) * 101, Parallel: 1})
				require.NoError(t, err)
				f := rep.First()
				if f == nil {
					continue
				}
				sh, err := proptest.Minimize(s, v.Name, f.Seed, f.Result.Outcome.Decisions, proptest.ShrinkOptions{MaxRuns: 20000})
				require.NoError(t, err)
				want := proptest.Signature(sh.Final.Outcome.Err)
				require.Equal(t, proptest.Signature(f.Result.Outcome.Err), want)
				require.True(t, sh.Complete, "%s:%s seed %d: shrinking was cut short", s.Name, v.Name, seed)
				for i, d := range sh.Log {
					if d.Choice == 0 {
						continue
					}
					cand := append([]des.Decision(nil), sh.Log...)
					cand[i].Choice = 0
					r, err := model.Run(s, v.Name, model.RunConfig{Seed: f.Seed, Chooser: &guided{log: cand}})
					require.NoError(t, err)
					assert.NotEqual(t, want, proptest.Signature(r.Outcome.Err),
						"%s:%s seed %d: perturbation %d of %v is not needed", s.Name, v.Name, seed, i, proptest.DescribeSchedule(sh.Log))
				}
				checked++
			}
		}
	}
	assert.Greater(t, checked, 20)
}

// Exhaustive search enumerates only the decisions it was asked about: a
// scenario's drain (BeginDrain) answers the later ones itself, and
// enumerating those reran one schedule for the whole budget (found on
// cancelsafe:lost-cancel: 1 distinct schedule in 3,000 executions).
// Decisions after the drain add no execution to the search.
func TestExhaustiveSkipsDecisionsAfterTheDrain(t *testing.T) {
	search := func(afterDrain bool) *proptest.Report {
		s := &model.Scenario{Name: "drained", Variants: []model.Variant{{Name: "v"}}, Setup: func(env *model.Env) error {
			env.K.PsCreateSystemThread("t", 8, func() {
				env.Choose("a", 2)
				env.Choose("b", 2)
				env.BeginDrain()
				if afterDrain {
					env.Choose("after the drain", 3)
					env.Choose("after the drain too", 2)
				}
			})
			return nil
		}}
		rep, err := proptest.Explore(context.Background(), proptest.Options{Scenario: s, Variant: "v",
			Strategy: proptest.NewExhaustive(1000), Execs: 1000, Seed: 1})
		require.NoError(t, err)
		return rep
	}
	plain, drained := search(false), search(true)
	assert.Equal(t, proptest.EndExhausted, plain.End)
	assert.Equal(t, proptest.EndExhausted, drained.End)
	assert.Equal(t, plain.Execs, drained.Execs)
	assert.GreaterOrEqual(t, drained.Execs, 4, "both workload decisions enumerated")
}
