package timeline

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// A wait satisfied at once (kernel.WhatSatisfied: the object was already
// signalled) does not block, so it must not end the thread's slice; only a
// wait that blocks does. (The walker used to look for a "(satisfied)"
// suffix the kernel no longer emits, so every satisfied wait cut the
// running thread's slice short.)
func TestSatisfiedWaitKeepsThreadSlice(t *testing.T) {
	cfg := kernel.DefaultConfig()
	cfg.Processors = 1
	recs, out := run(t, cfg, func(k *kernel.Kernel) {
		set := k.KeInitializeEvent("set", kernel.NotificationEvent, true)
		never := k.KeInitializeEvent("later", kernel.NotificationEvent, false)
		k.PsCreateSystemThread("waiter", 8, func() {
			k.Compute(10 * des.Microsecond)
			k.KeWaitForSingleObject(set, kernel.Infinite) // satisfied at once
			k.Compute(10 * des.Microsecond)
			k.KeWaitForSingleObject(never, 100*des.Microsecond) // blocks, times out
		})
	})
	require.NoError(t, out.Err)
	var satisfied int
	for _, r := range recs {
		if r.Kind == kernel.KindWait && r.What == kernel.WhatSatisfied {
			satisfied++
		}
	}
	require.Equal(t, 1, satisfied, "the run has one wait satisfied at once")
	m := buildModel(recs, 1, out.End)
	var waiter []*slice
	for _, s := range m.slices {
		if s.kind == sliceThread && s.name == "waiter" {
			waiter = append(waiter, s)
		}
	}
	require.NotEmpty(t, waiter)
	first := waiter[0]
	assert.Equal(t, "waits: KeWaitForSingleObject event later", first.ended,
		"the first slice runs through the satisfied wait and ends at the blocking one")
	assert.Greater(t, first.end.Sub(first.start), 20*des.Microsecond)
}
