package kernel_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// apcLog records which APC routines ran, at which IRQL, in order.
type apcLog struct {
	k   *kernel.Kernel
	ran []string
}

func (l *apcLog) special(name string) kernel.ApcKernelRoutine {
	return func(*kernel.KAPC, *kernel.ApcNormalRoutine, *any, *any, *any) {
		l.ran = append(l.ran, name+"@"+l.k.KeGetCurrentIrql().String())
	}
}

func (l *apcLog) normal(name string) kernel.ApcNormalRoutine {
	return func(any, any, any) { l.ran = append(l.ran, name+"@"+l.k.KeGetCurrentIrql().String()) }
}

// REFERENCE §4.10: a special kernel APC runs at APC_LEVEL as soon as the
// target is below APC_LEVEL; a normal one runs its kernel routine at
// APC_LEVEL, then its normal routine at PASSIVE_LEVEL; special ones are
// queued ahead of normal ones.
func TestApcKindsAndOrder(t *testing.T) {
	m := newMachine(t, oneCPU(), nil)
	k := m.Kernel
	l := &apcLog{k: k}
	var self *kernel.Thread
	self = k.PsCreateSystemThread("t", 8, func() {
		old := k.KeRaiseIrql(kernel.APC_LEVEL)
		n := k.KeInitializeApc(self, "n", l.special("n-kernel"), l.normal("n-normal"), kernel.KernelMode, nil)
		s := k.KeInitializeApc(self, "s", l.special("s"), nil, kernel.KernelMode, nil)
		require.True(t, k.KeInsertQueueApc(n, nil, nil, 0))
		require.True(t, k.KeInsertQueueApc(s, nil, nil, 0))
		assert.False(t, k.KeInsertQueueApc(s, nil, nil, 0), "already queued")
		assert.Empty(t, l.ran, "held off at APC_LEVEL")
		k.KeLowerIrql(old)
		l.ran = append(l.ran, "after-lower")
	})
	out := k.Run()
	require.NoError(t, out.Err)
	assert.Equal(t, []string{"s@APC_LEVEL", "n-kernel@APC_LEVEL", "n-normal@PASSIVE_LEVEL", "after-lower"}, l.ran)
}

// REFERENCE §4.10: a critical region holds off normal kernel APCs but not
// special ones; a guarded region holds off both; leaving delivers them.
func TestApcRegions(t *testing.T) {
	m := newMachine(t, oneCPU(), nil)
	k := m.Kernel
	l := &apcLog{k: k}
	var self *kernel.Thread
	self = k.PsCreateSystemThread("t", 8, func() {
		k.KeEnterCriticalRegion()
		assert.True(t, k.KeAreApcsDisabled())
		assert.False(t, k.KeAreAllApcsDisabled())
		k.KeInsertQueueApc(k.KeInitializeApc(self, "n", nil, l.normal("n"), kernel.KernelMode, nil), nil, nil, 0)
		k.KeInsertQueueApc(k.KeInitializeApc(self, "s1", l.special("s1"), nil, kernel.KernelMode, nil), nil, nil, 0)
		l.ran = append(l.ran, "in-critical")
		k.KeEnterGuardedRegion()
		assert.True(t, k.KeAreAllApcsDisabled())
		k.KeInsertQueueApc(k.KeInitializeApc(self, "s2", l.special("s2"), nil, kernel.KernelMode, nil), nil, nil, 0)
		l.ran = append(l.ran, "in-guarded")
		k.KeLeaveGuardedRegion()
		l.ran = append(l.ran, "left-guarded")
		k.KeLeaveCriticalRegion()
		l.ran = append(l.ran, "left-critical")
	})
	require.NoError(t, k.Run().Err)
	assert.Equal(t, []string{"s1@APC_LEVEL", "in-critical", "in-guarded", "s2@APC_LEVEL", "left-guarded", "n@PASSIVE_LEVEL", "left-critical"}, l.ran)
}

// REFERENCE §4.10: a kernel APC queued to a thread that waits at
// PASSIVE_LEVEL runs in that thread and the wait resumes; the wait still
// returns what satisfied it.
func TestKernelApcInterruptsWaitThatResumes(t *testing.T) {
	m := newMachine(t, kernel.DefaultConfig(), nil)
	k := m.Kernel
	l := &apcLog{k: k}
	e := k.KeInitializeEvent("e", kernel.NotificationEvent, false)
	var waiter *kernel.Thread
	var got kernel.NTSTATUS
	waiter = k.PsCreateSystemThread("waiter", 8, func() {
		got = k.KeWaitForSingleObject(e, kernel.Infinite)
		l.ran = append(l.ran, "woke")
	})
	k.PsCreateSystemThread("other", 8, func() {
		k.KeDelayExecutionThread(des.Millisecond)
		k.KeInsertQueueApc(k.KeInitializeApc(waiter, "s", l.special("s"), nil, kernel.KernelMode, nil), nil, nil, 0)
		k.KeDelayExecutionThread(des.Millisecond)
		l.ran = append(l.ran, "set")
		k.KeSetEvent(e, 0, false)
	})
	require.NoError(t, k.Run().Err)
	assert.Equal(t, []string{"s@APC_LEVEL", "set", "woke"}, l.ran)
	assert.Equal(t, kernel.STATUS_WAIT_0, got)
}

// REFERENCE §4.10: an alertable user-mode wait ends with STATUS_USER_APC
// after the user APC ran; a non-alertable one does not; KeAlertThread ends
// an alertable wait with STATUS_ALERTED, and an alert given beforehand ends
// the next alertable wait at once.
func TestAlertableWaits(t *testing.T) {
	m := newMachine(t, kernel.DefaultConfig(), nil)
	k := m.Kernel
	l := &apcLog{k: k}
	e := k.KeInitializeEvent("e", kernel.NotificationEvent, false)
	var got []kernel.NTSTATUS
	var waiter *kernel.Thread
	waiter = k.PsCreateSystemThread("waiter", 8, func() {
		got = append(got, k.KeWaitForSingleObjectEx(e, kernel.UserMode, true, kernel.Infinite))
		got = append(got, k.KeWaitForSingleObjectEx(e, kernel.KernelMode, true, kernel.Infinite))
		got = append(got, k.KeWaitForSingleObjectEx(e, kernel.UserMode, false, 5*des.Millisecond))
		got = append(got, k.KeDelayExecutionThreadEx(kernel.KernelMode, true, des.Second))
	})
	k.PsCreateSystemThread("other", 8, func() {
		k.KeDelayExecutionThread(des.Millisecond)
		k.KeInsertQueueApc(k.KeInitializeApc(waiter, "u", nil, l.normal("u"), kernel.UserMode, nil), nil, nil, 0)
		k.KeDelayExecutionThread(des.Millisecond)
		assert.False(t, k.KeAlertThread(waiter, kernel.KernelMode))
		k.KeDelayExecutionThread(des.Millisecond)
		// The third wait is not alertable: the user APC stays queued and
		// the wait times out.
		k.KeInsertQueueApc(k.KeInitializeApc(waiter, "u2", nil, l.normal("u2"), kernel.UserMode, nil), nil, nil, 0)
		assert.False(t, k.KeAlertThread(waiter, kernel.KernelMode), "kept for the next alertable wait")
		assert.True(t, k.KeAlertThread(waiter, kernel.KernelMode), "already alerted")
	})
	require.NoError(t, k.Run().Err)
	assert.Equal(t, []kernel.NTSTATUS{kernel.STATUS_USER_APC, kernel.STATUS_ALERTED, kernel.STATUS_TIMEOUT, kernel.STATUS_ALERTED}, got)
	assert.Equal(t, []string{"u@PASSIVE_LEVEL"}, l.ran)
}

// completeFromDpc completes irp with STATUS_SUCCESS from a DPC queued by a
// second thread after a millisecond: the completion runs in an arbitrary
// context, so the I/O completion APC has to reach the issuer.
func completeFromDpc(k *kernel.Kernel, irp *kernel.IRP) {
	dpc := k.KeInitializeDpc("complete", func(*kernel.KDPC, any, any, any) {
		irp.IoStatus.Status = kernel.STATUS_SUCCESS
		k.IoCompleteRequest(irp, kernel.IO_DISK_INCREMENT)
	}, nil)
	k.PsCreateSystemThread("device", 8, func() {
		k.KeDelayExecutionThread(des.Millisecond)
		k.KeInsertQueueDpc(dpc, nil, nil)
	})
}

// REFERENCE §4.10: a threaded IRP completed from a DPC reaches its issuer
// through the I/O completion special kernel APC, which sets the issuer's
// event and status block in the issuer's own context.
func TestIrpCompletionApcReachesIssuer(t *testing.T) {
	m := newMachine(t, kernel.DefaultConfig(), nil)
	k := m.Kernel
	var iosb kernel.IO_STATUS_BLOCK
	var issuer *kernel.Thread
	issuer = k.PsCreateSystemThread("issuer", 8, func() {
		irp := k.IoAllocateIrp("read")
		irp.UserEvent = k.KeInitializeEvent("user", kernel.NotificationEvent, false)
		irp.UserIosb = &iosb
		k.IoQueueThreadIrp(irp)
		assert.Equal(t, issuer, irp.Thread())
		completeFromDpc(k, irp)
		k.KeWaitForSingleObject(irp.UserEvent, kernel.Infinite)
	})
	require.NoError(t, k.Run().Err)
	assert.Equal(t, kernel.STATUS_SUCCESS, iosb.Status)
	assert.Contains(t, m.trace.String(), "run-apc")
}

// REFERENCE §4.10: the classic deadlock — a thread that waits for its own
// threaded IRP at APC_LEVEL (here under a fast mutex) or inside a guarded
// region never gets the completion APC: a hang whose wait-for story names
// the blocked APC.
func TestWaitForOwnIrpWithApcsDisabledHangs(t *testing.T) {
	for _, c := range []struct {
		name, why string
		enter     func(k *kernel.Kernel) func()
	}{
		{"fast mutex (APC_LEVEL)", "waits at APC_LEVEL", func(k *kernel.Kernel) func() {
			mu := k.ExInitializeFastMutex("m")
			k.ExAcquireFastMutex(mu)
			return func() { k.ExReleaseFastMutex(mu) }
		}},
		{"guarded region", "inside a guarded region", func(k *kernel.Kernel) func() {
			k.KeEnterGuardedRegion()
			return k.KeLeaveGuardedRegion
		}},
		{"passive (correct)", "", func(*kernel.Kernel) func() { return func() {} }},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := newMachine(t, kernel.DefaultConfig(), nil)
			k := m.Kernel
			k.PsCreateSystemThread("issuer", 8, func() {
				leave := c.enter(k)
				irp := k.IoAllocateIrp("read")
				irp.UserEvent = k.KeInitializeEvent("user", kernel.NotificationEvent, false)
				k.IoQueueThreadIrp(irp)
				completeFromDpc(k, irp)
				k.KeWaitForSingleObject(irp.UserEvent, kernel.Infinite)
				leave()
			})
			out := k.Run()
			if c.why == "" {
				require.NoError(t, out.Err)
				return
			}
			var d *kernel.Deadlock
			require.ErrorAs(t, out.Err, &d)
			require.Len(t, d.Cycle, 1, d.Error())
			assert.Equal(t, "issuer", d.Cycle[0].Waiter)
			assert.Contains(t, d.Cycle[0].Owner, "IopCompleteRequest irp 1")
			assert.Contains(t, d.Cycle[0].Owner, c.why)
		})
	}
}

// REFERENCE §4.10: leaving a guarded region one never entered is
// APC_INDEX_MISMATCH; exiting inside one is KERNEL_APC_PENDING_DURING_EXIT.
func TestGuardedRegionBugChecks(t *testing.T) {
	requireBugCheck(t, runOne(t, kernel.DefaultConfig(), func(k *kernel.Kernel) { k.KeLeaveGuardedRegion() }),
		kernel.APC_INDEX_MISMATCH, 0)
	requireBugCheck(t, runOne(t, kernel.DefaultConfig(), func(k *kernel.Kernel) { k.KeEnterGuardedRegion() }),
		kernel.KERNEL_APC_PENDING_DURING_EXIT, 0)
}

// REFERENCE §4.10: an APC routine must return at the IRQL it ran at.
func TestApcReturningAtWrongIrql(t *testing.T) {
	out := runOne(t, kernel.DefaultConfig(), func(k *kernel.Kernel) {
		self := k.KeGetCurrentThread()
		k.KeInsertQueueApc(k.KeInitializeApc(self, "bad", func(*kernel.KAPC, *kernel.ApcNormalRoutine, *any, *any, *any) {
			k.KeRaiseIrql(kernel.DISPATCH_LEVEL)
		}, nil, kernel.KernelMode, nil), nil, nil, 0)
	})
	bc := requireBugCheck(t, out, kernel.IRQL_NOT_LESS_OR_EQUAL, 0)
	assert.Contains(t, bc.Detail, "APC bad returned at DISPATCH_LEVEL")
}
