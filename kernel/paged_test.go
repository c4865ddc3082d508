package kernel_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// touchPagedUnderSpinLock is the classic bug of REFERENCE §4.9: a field of
// a paged-pool block read while holding a spin lock.
func touchPagedUnderSpinLock(k *kernel.Kernel) {
	b := k.ExAllocatePoolWithTag(kernel.PagedPool, 64, "Pgd1")
	c := k.NewCell("field", 0)
	c.Block = b
	l := k.KeInitializeSpinLock("l")
	old := k.KeAcquireSpinLock(l)
	k.Read(c)
	k.KeReleaseSpinLock(l, old)
	k.ExFreePoolWithTag(b, "Pgd1")
}

// REFERENCE §4.9: touching paged pool at DISPATCH_LEVEL is a decision
// whose choice 0 is "resident" (the bug stays latent); the other choice,
// or Verifier's Force IRQL Checking, is bug check 0xD1 with P2 the IRQL
// and P3 0 for a read.
func TestPagedPoolAtDispatch(t *testing.T) {
	run := func(cfg kernel.Config, c des.Chooser) des.Outcome {
		m := newMachine(t, cfg, c)
		k := m.Kernel
		k.PsCreateSystemThread("driver", 8, func() { touchPagedUnderSpinLock(k) })
		return k.Run()
	}
	out := run(kernel.DefaultConfig(), nil)
	require.NoError(t, out.Err, "choice 0: the page is resident")
	require.NotEmpty(t, out.Decisions)
	assert.Equal(t, kernel.PointPageIn, out.Decisions[len(out.Decisions)-1].Kind)

	log := append([]des.Decision(nil), out.Decisions...)
	log[len(log)-1].Choice = 1 // the page is out this time
	out = run(kernel.DefaultConfig(), des.NewReplay(log))
	bc := requireBugCheck(t, out, kernel.DRIVER_IRQL_NOT_LESS_OR_EQUAL, 1)
	assert.EqualValues(t, kernel.DISPATCH_LEVEL, bc.Params[1])
	assert.EqualValues(t, 0, bc.Params[2], "a read")

	cfg := kernel.DefaultConfig()
	cfg.ForcePageableOut = true
	out = run(cfg, nil)
	requireBugCheck(t, out, kernel.DRIVER_IRQL_NOT_LESS_OR_EQUAL, 1)
}

// REFERENCE §4.9: freeing paged pool above APC_LEVEL is Verifier 0xC4
// P1=0x11 (P2 the IRQL, P3 the pool type).
func TestFreePagedPoolAtDispatchIs0xC4_0x11(t *testing.T) {
	out := runOne(t, kernel.DefaultConfig(), func(k *kernel.Kernel) {
		b := k.ExAllocatePoolWithTag(kernel.PagedPool, 64, "Pgd1")
		k.KeRaiseIrql(kernel.DISPATCH_LEVEL)
		k.ExFreePoolWithTag(b, "Pgd1")
	})
	bc := requireBugCheck(t, out, kernel.DRIVER_VERIFIER_DETECTED_VIOLATION, 0x11)
	assert.EqualValues(t, kernel.DISPATCH_LEVEL, bc.Params[1])
	assert.EqualValues(t, kernel.PagedPool, bc.Params[2])
}

// REFERENCE §4.9: a pageable routine (PAGED_CODE) called at DISPATCH_LEVEL
// faults on its code page when it is out: 0xD1 with P3 = 8 (execute); at
// PASSIVE_LEVEL it is fine whatever the page's state.
func TestPagedCodeAtDispatch(t *testing.T) {
	cfg := kernel.DefaultConfig()
	cfg.ForcePageableOut = true
	pageable := func(k *kernel.Kernel) { k.PAGED_CODE("DriverRoutine") }
	out := runOne(t, cfg, func(k *kernel.Kernel) { pageable(k) })
	require.NoError(t, out.Err)
	out = runOne(t, cfg, func(k *kernel.Kernel) {
		k.KeRaiseIrql(kernel.DISPATCH_LEVEL)
		pageable(k)
	})
	bc := requireBugCheck(t, out, kernel.DRIVER_IRQL_NOT_LESS_OR_EQUAL, 0)
	assert.EqualValues(t, 8, bc.Params[2], "an instruction fetch")
	assert.Equal(t, "DriverRoutine", bc.API)
}
