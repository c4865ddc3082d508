package queues_test

// Helpers shared by the work-item and pool tests. Names carry a "wi"
// prefix so they cannot collide with helpers of the other test files of
// this package.

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues"
)

// wiRig is a machine with worker pools: kernel, System, simulation, and
// the text trace (kept only when asked for).
type wiRig struct {
	k     *kernel.Kernel
	sys   *queues.System
	sim   *des.Sim
	trace *bytes.Buffer   // text trace, nil with a custom sink
	recs  *des.RecordSink // records, nil with a custom sink
}

// wiOpts tunes a rig.
type wiOpts struct {
	chooser des.Chooser
	seed    uint64
	sink    des.Sink // replaces the text trace
	budget  uint64   // step budget; 0 = 5e6
}

func newWIRig(t testing.TB, kcfg kernel.Config, pcfg queues.PoolConfig) *wiRig {
	return newWIRigOpts(t, kcfg, pcfg, wiOpts{})
}

func newWIRigOpts(t testing.TB, kcfg kernel.Config, pcfg queues.PoolConfig, o wiOpts) *wiRig {
	t.Helper()
	r := &wiRig{}
	sink := o.sink
	if sink == nil {
		r.trace, r.recs = &bytes.Buffer{}, &des.RecordSink{}
		sink = des.MultiSink{&des.TextSink{W: r.trace}, r.recs}
	}
	if o.budget == 0 {
		o.budget = 5_000_000
	}
	r.sim = des.New(des.Config{Seed: o.seed, Chooser: o.chooser, Sink: sink, StepBudget: o.budget})
	t.Cleanup(r.sim.Close)
	k, err := kernel.New(r.sim, kcfg)
	require.NoError(t, err)
	r.k = k
	r.sys, err = queues.NewSystem(k, pcfg)
	require.NoError(t, err)
	return r
}

// run runs to the end and logs the trace tail when the test fails.
func (r *wiRig) run(t testing.TB) des.Outcome {
	t.Helper()
	out := r.k.Run()
	t.Cleanup(func() {
		if t.Failed() && r.trace != nil {
			lines := strings.Split(r.trace.String(), "\n")
			if len(lines) > 80 {
				lines = lines[len(lines)-80:]
			}
			t.Logf("outcome: %v\ntrace tail:\n%s", out.Err, strings.Join(lines, "\n"))
		}
	})
	return out
}

// driver starts body in a thread named "driver" at priority prio.
func (r *wiRig) driver(prio int, body func()) *kernel.Thread {
	return r.k.PsCreateSystemThread("driver", prio, body)
}

func wiCPUs(n int) kernel.Config {
	c := kernel.DefaultConfig()
	c.Processors = n
	return c
}

// wiPool returns the default pool config with policy p.
func wiPool(p queues.PoolPolicy) queues.PoolConfig {
	c := queues.DefaultPoolConfig()
	c.Policy = p
	return c
}

// wiAnyP1 tells wiRequireBugCheck not to compare P1 (a routine's hash).
const wiAnyP1 = ^uint64(0)

func wiRequireBugCheck(t *testing.T, out des.Outcome, code uint32, p1 uint64) *kernel.BugCheck {
	t.Helper()
	var bc *kernel.BugCheck
	require.ErrorAs(t, out.Err, &bc, "want bug check 0x%X", code)
	assert.Equal(t, code, bc.Code, bc.Error())
	if p1 != wiAnyP1 {
		assert.Equal(t, p1, bc.Params[0], bc.Error())
	}
	return bc
}

// wiCurrent returns the name of the calling simulated thread.
func wiCurrent(k *kernel.Kernel) string {
	if t := k.Layer().ThreadOrNil(); t != nil {
		return t.Name()
	}
	return "dpc"
}

// wiThread finds a thread by name.
func wiThread(k *kernel.Kernel, name string) *kernel.Thread {
	for _, t := range k.Layer().Threads() {
		if t.Name() == name {
			return t
		}
	}
	return nil
}
