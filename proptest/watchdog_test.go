package proptest_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/proptest"
)

// spin is released when a test ends, so the goroutines the watchdog
// abandoned finish instead of spinning through the remaining tests.
var spin atomic.Bool

// spinScenario: one thread that, for seeds ≡ 2 (mod 3), loops in pure Go
// after a little simulated work, never reaching the kernel again.
func spinScenario(t *testing.T) *model.Scenario {
	spin.Store(true)
	t.Cleanup(func() { spin.Store(false) })
	return &model.Scenario{
		Name: "spin", Variants: []model.Variant{{Name: "loop", Bug: true}},
		Config: func(string) kernel.Config {
			c := kernel.DefaultConfig()
			c.Processors = 1
			return c
		},
		Setup: func(env *model.Env) error {
			k := env.K
			k.PsCreateSystemThread("spinner", 8, func() {
				k.Compute(10 * des.Microsecond)
				if env.Sim.Seed()%3 == 2 {
					for spin.Load() {
					}
				}
			})
			return nil
		},
	}
}

func firstSpin(base uint64) int {
	for i := 0; ; i++ {
		if proptest.ExecSeed(base, i)%3 == 2 {
			return i
		}
	}
}

// Explore (and so Find and Check in go test) comes back from an execution
// stuck in a Go loop: the failure names the execution, seed and actor.
func TestWatchdogExplore(t *testing.T) {
	s := spinScenario(t)
	start := time.Now()
	f := proptest.Find(t, s, "loop", proptest.Options{Execs: 100, Seed: 3, Parallel: 2, Watchdog: 300 * time.Millisecond, FailDir: t.TempDir()})
	assert.Less(t, time.Since(start), 10*time.Second)
	var st *proptest.StuckError
	require.ErrorAs(t, f.MinFinal.Outcome.Err, &st)
	assert.Equal(t, firstSpin(3), st.Exec)
	assert.Equal(t, proptest.ExecSeed(3, st.Exec), st.Seed)
	assert.Equal(t, "spinner", st.Actor)
	assert.True(t, st.Reproduced)
	assert.NotEmpty(t, st.Tail)
	assert.FileExists(t, f.File)
	assert.Equal(t, "stuck", proptest.Signature(st))
	assert.Contains(t, st.Error(), "did not yield for")
}

func TestWatchdogCheck(t *testing.T) {
	s := spinScenario(t)
	t.Setenv("WQSIM_FAILDIR", t.TempDir())
	fake := &fakeTB{TB: t}
	proptest.Check(fake, s, "loop", proptest.CheckOptions{Execs: 100, Seed: 3, Watchdog: 300 * time.Millisecond})
	require.True(t, fake.failed)
	assert.Contains(t, fake.msgs[0], "may loop without calling the kernel")
}

// A single watched run, and a shrink that is interrupted, come back.
func TestWatchdogRunAndShrinkInterrupt(t *testing.T) {
	s := spinScenario(t)
	seed := proptest.ExecSeed(3, firstSpin(3))
	r, err := proptest.RunWatched(context.Background(), 300*time.Millisecond, s, "loop", model.RunConfig{Seed: seed})
	require.NoError(t, err)
	assert.ErrorAs(t, r.Outcome.Err, new(*proptest.StuckError))

	// Ctrl-C while shrinking: back within a second with what it has.
	f := proptest.Find(t, lostUpdate(t), "racy", proptest.Options{Execs: 5000, Seed: 7})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	log, res, err := proptest.Shrink(lostUpdate(t), "racy", f.Seed, f.Result.Outcome.Decisions, proptest.ShrinkOptions{Context: ctx})
	require.NoError(t, err)
	assert.Less(t, time.Since(start), 20*time.Second, "came back instead of shrinking on")
	assert.True(t, res.Failed())
	assert.NotEmpty(t, log)
}
