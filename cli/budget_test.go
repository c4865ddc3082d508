package cli

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/model"
)

// cliSpinner polls for ever (a trace record a turn), so every run ends on
// its budget; it declares a small one.
var cliSpinner = &model.Scenario{
	Name: "clibudgetspin", Doc: "polls for ever (cli budget tests)", Section: "-",
	Variants: []model.Variant{{Name: "bug", Bug: true, Want: "livelock"}},
	Budget:   model.Budget{Decisions: 1000},
	Setup: func(env *model.Env) error {
		k := env.K
		ev := k.KeInitializeEvent("tick", kernel.SynchronizationEvent, false)
		k.PsCreateSystemThread("spinner", 8, func() {
			for {
				k.KeSetEvent(ev, 0, false)
				k.KeClearEvent(ev)
			}
		})
		return nil
	},
}

// run, explore and replay use the scenario's budget; --decision-budget
// overrides it, the header line says so, the fail file records it and the
// replay uses the recorded one. trace refuses the flags for a fail file.
func TestBudgetFlagsAndScenarioBudget(t *testing.T) {
	saved := userScenarios
	t.Cleanup(func() { userScenarios = saved })
	require.NoError(t, registerUser([]*model.Scenario{cliSpinner}))

	code, out, _ := wqsim(t, "run", "clibudgetspin:bug", "--quiet")
	assert.Equal(t, des.ClassLivelock.ExitCode(), code, out)
	assert.Contains(t, out, "budget=steps:2000000,decisions:1000")
	assert.Contains(t, out, "and 1000 decisions", "the scenario's budget ended it")

	dir := t.TempDir()
	code, out, _ = wqsim(t, "explore", "clibudgetspin:bug", "--execs", "2", "--faildir", dir, "--decision-budget", "300")
	assert.Equal(t, des.ClassLivelock.ExitCode(), code, out)
	assert.Contains(t, strings.SplitN(out, "\n", 2)[0], "budget=steps:2000000,decisions:300")
	file := onlyFailFile(t, dir)
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	assert.Contains(t, string(data), "\nbudget: steps=2000000 decisions=300\n")

	code, out, _ = wqsim(t, "replay", file)
	assert.Equal(t, des.ClassLivelock.ExitCode(), code, out)
	assert.Contains(t, out, "budget steps:2000000 decisions:300")
	assert.Contains(t, out, "and 300 decisions", "the file's budget, not the scenario's 1000")

	code, _, errs := wqsim(t, "trace", file, "--decision-budget", "50")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errs, "a fail file replays with the budget it records")
}
