package kernel_test

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// machine is a kernel plus its simulation and a text trace, for tests.
type machine struct {
	*kernel.Kernel
	sim   *des.Sim
	trace bytes.Buffer
}

func newMachine(t testing.TB, cfg kernel.Config, chooser des.Chooser) *machine {
	t.Helper()
	m := &machine{}
	m.sim = des.New(des.Config{Chooser: chooser, Sink: &des.TextSink{W: &m.trace}, StepBudget: 1_000_000})
	t.Cleanup(m.sim.Close)
	k, err := kernel.New(m.sim, cfg)
	require.NoError(t, err)
	m.Kernel = k
	return m
}

func oneCPU() kernel.Config {
	c := kernel.DefaultConfig()
	c.Processors = 1
	return c
}
