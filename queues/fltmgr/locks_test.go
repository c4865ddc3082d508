package fltmgr_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// REFERENCE §4.25: the filter manager's push lock and resource wrappers
// disable normal kernel APCs themselves (a critical region their release
// leaves), so a minifilter calls nothing else around them; they keep the
// kernel routines' rules (a push lock is not recursive).
func TestFltLockWrappers(t *testing.T) {
	r := newRig(t, rigOpts{})
	k, fm := r.k, r.fm
	pl := fm.FltInitializePushLock("names")
	res := k.ExInitializeResourceLite("table")
	var inside, after []bool
	k.PsCreateSystemThread("filter", 8, func() {
		fm.FltAcquirePushLockShared(pl)
		inside = append(inside, k.KeAreApcsDisabled())
		fm.FltReleasePushLock(pl)
		after = append(after, k.KeAreApcsDisabled())
		fm.FltAcquirePushLockExclusive(pl)
		inside = append(inside, k.KeAreApcsDisabled())
		fm.FltReleasePushLock(pl)
		after = append(after, k.KeAreApcsDisabled())
		fm.FltAcquireResourceExclusive(res) // no 0xC4/0x37: the wrapper entered the critical region
		inside = append(inside, k.KeAreApcsDisabled())
		fm.FltReleaseResource(res)
		fm.FltAcquireResourceShared(res)
		fm.FltReleaseResource(res)
		after = append(after, k.KeAreApcsDisabled())
		fm.FltDeletePushLock(pl)
	})
	require.NoError(t, r.run().Err)
	assert.Equal(t, []bool{true, true, true}, inside)
	assert.Equal(t, []bool{false, false, false}, after)

	r = newRig(t, rigOpts{})
	pl = r.fm.FltInitializePushLock("names")
	r.k.PsCreateSystemThread("filter", 8, func() {
		r.fm.FltAcquirePushLockExclusive(pl)
		r.k.KeDelayExecutionThread(des.Microsecond)
		r.fm.FltAcquirePushLockShared(pl) // recursion: hangs
	})
	var d *kernel.Deadlock
	require.ErrorAs(t, r.run().Err, &d)
	assert.Contains(t, d.Error(), "pushlock names owned by filter itself")
}
