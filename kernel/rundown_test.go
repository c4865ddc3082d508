package kernel_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// REFERENCE §4.8: run-down protection. Holds taken before the run-down
// keep ExWaitForRundownProtectionRelease waiting until the last is
// released (here from a DPC, at DISPATCH_LEVEL); once it has begun, every
// acquire fails; a second wait returns at once; ExReInitialize makes it
// usable again.
func TestRundownProtection(t *testing.T) {
	m := newMachine(t, kernel.DefaultConfig(), nil)
	k := m.Kernel
	r := k.ExInitializeRundownProtection("ctx")
	var log []string
	k.PsCreateSystemThread("owner", 8, func() {
		require.True(t, k.ExAcquireRundownProtection(r))
		require.True(t, k.ExAcquireRundownProtection(r))
		k.ExReleaseRundownProtection(r)
		dpc := k.KeInitializeDpc("release", func(*kernel.KDPC, any, any, any) {
			log = append(log, "dpc releases")
			k.ExReleaseRundownProtection(r)
		}, nil)
		timer := k.KeInitializeTimer("later")
		k.KeSetTimer(timer, 20*des.Microsecond, dpc)
		k.ExWaitForRundownProtectionRelease(r)
		log = append(log, "run down")
		assert.False(t, k.ExAcquireRundownProtection(r), "refused after run-down")
		n, down := r.Holders()
		assert.Equal(t, int64(0), n)
		assert.True(t, down)
		k.ExWaitForRundownProtectionRelease(r) // returns at once
		k.ExReInitializeRundownProtection(r)
		assert.True(t, k.ExAcquireRundownProtection(r), "usable again")
		k.ExReleaseRundownProtection(r)
	})
	require.NoError(t, k.Run().Err)
	assert.Equal(t, []string{"dpc releases", "run down"}, log)
}

// REFERENCE §4.8: ExWaitForRundownProtectionRelease waits, so it is
// refused at DISPATCH_LEVEL; a release without a hold is a panic naming
// the reference (Windows would corrupt the count silently).
func TestRundownMisuse(t *testing.T) {
	out := runOne(t, kernel.DefaultConfig(), func(k *kernel.Kernel) {
		r := k.ExInitializeRundownProtection("ctx")
		k.KeRaiseIrql(kernel.DISPATCH_LEVEL)
		k.ExWaitForRundownProtectionRelease(r)
	})
	requireBugCheck(t, out, kernel.IRQL_NOT_LESS_OR_EQUAL, 0)
	out = runOne(t, kernel.DefaultConfig(), func(k *kernel.Kernel) {
		k.ExReleaseRundownProtection(k.ExInitializeRundownProtection("ctx"))
	})
	var pe *des.PanicError
	require.ErrorAs(t, out.Err, &pe)
	assert.Contains(t, out.Err.Error(), "no hold outstanding")
}
