package kernel_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// reuseRig is a driver that owns one two-location IRP and sends it to a
// "lower device" whose dispatch routine pends it and has a DPC complete it
// after 20 µs; the driver's completion routine signals back and returns
// STATUS_MORE_PROCESSING_REQUIRED so the driver owns the IRP again.
type reuseRig struct {
	k        *kernel.Kernel
	irp      *kernel.IRP
	back     *kernel.KEVENT
	dpc      *kernel.KDPC
	timer    *kernel.KTIMER
	routine  kernel.IO_COMPLETION_ROUTINE
	routines int
}

func newReuseRig(k *kernel.Kernel) *reuseRig {
	r := &reuseRig{k: k}
	r.irp = k.IoAllocateIrp("own")
	k.Layer().AllocateIrpStack(r.irp, 2)
	r.back = k.KeInitializeEvent("back", kernel.SynchronizationEvent, false)
	r.dpc = k.KeInitializeDpc("lower", func(*kernel.KDPC, any, any, any) {
		r.irp.IoStatus = kernel.IO_STATUS_BLOCK{Status: kernel.STATUS_SUCCESS, Information: 512}
		k.IoCompleteRequest(r.irp, kernel.IO_NO_INCREMENT)
	}, nil)
	r.timer = k.KeInitializeTimer("lower")
	r.routine = func(_ any, irp *kernel.IRP, _ any) kernel.NTSTATUS {
		r.routines++
		k.KeSetEvent(r.back, kernel.IO_NO_INCREMENT, false)
		return kernel.STATUS_MORE_PROCESSING_REQUIRED
	}
	return r
}

// send sets the completion routine and sends the IRP down; the lower
// driver pends it.
func (r *reuseRig) send() {
	k := r.k
	k.IoGetNextIrpStackLocation(r.irp).MajorFunction = 3 // IRP_MJ_READ
	k.IoSetCompletionRoutine(r.irp, r.routine, nil, true, true, true)
	k.Layer().CallDriver(r.irp, "lower", func() kernel.NTSTATUS {
		k.IoMarkIrpPending(r.irp)
		k.KeSetTimer(r.timer, 20*des.Microsecond, r.dpc)
		return kernel.STATUS_PENDING
	})
}

// REFERENCE §1.9: the reuse cycle of a driver-allocated IRP — send it,
// get it back through a completion routine returning
// STATUS_MORE_PROCESSING_REQUIRED, IoReuseIrp, send it again, and free it
// at the end. IoReuseIrp clears what the first trip left (Cancel, the
// pending marks, status and information, stack locations and completion
// routines, driver context) and sets the given status; the second trip
// works like the first and the run ends clean (no leak).
func TestIoReuseIrpResetsAndTheIrpWorksAgain(t *testing.T) {
	m := newMachine(t, oneCPU(), nil)
	k := m.Kernel
	r := newReuseRig(k)
	var after kernel.IO_STATUS_BLOCK
	var cancelled, pendingReturned, routineLeft bool
	var location, stackCount int
	var ctx any
	k.PsCreateSystemThread("driver", 8, func() {
		r.irp.DriverContext[0] = "mine"
		r.send()
		k.IoCancelIrp(r.irp) // no cancel routine: only the Cancel flag is set
		k.KeWaitForSingleObject(r.back, kernel.Infinite)
		require.True(t, r.irp.Cancelled())
		require.True(t, r.irp.PendingReturned())
		k.IoReuseIrp(r.irp, kernel.STATUS_INVALID_DEVICE_REQUEST)
		after, cancelled, pendingReturned = r.irp.IoStatus, r.irp.Cancelled(), r.irp.PendingReturned()
		location, stackCount, ctx = r.irp.CurrentLocation(), r.irp.StackCount(), r.irp.DriverContext[0]
		routineLeft = k.IoGetNextIrpStackLocation(r.irp).CompletionRoutine != nil
		r.send()
		k.KeWaitForSingleObject(r.back, kernel.Infinite)
		k.IoFreeIrp(r.irp)
	})
	require.NoError(t, k.Run().Err)
	assert.Equal(t, kernel.IO_STATUS_BLOCK{Status: kernel.STATUS_INVALID_DEVICE_REQUEST}, after, "status set, information cleared")
	assert.False(t, cancelled, "the Cancel flag is cleared")
	assert.False(t, pendingReturned, "PendingReturned is cleared")
	assert.Equal(t, stackCount, location, "the current location is back above the top")
	assert.Equal(t, 2, stackCount, "the stack size is kept")
	assert.Nil(t, ctx, "driver context is cleared")
	assert.False(t, routineLeft, "the completion routine is cleared")
	assert.Equal(t, 2, r.routines, "the reused IRP made a second full trip")
	assert.Contains(t, m.trace.String(), "IoReuseIrp")
}

// REFERENCE §1.9: reusing an IRP that is not the caller's to reuse is
// reported — after IoFreeIrp (0xD5), while it is down the stack (0xC9
// P1=0x20B), with a cancel routine set (0x20B), queued to a thread (0xC9
// P1=0x20C), from a completion routine that lets completion go on (0x20B),
// and above DISPATCH_LEVEL (0xA).
func TestIoReuseIrpMisuse(t *testing.T) {
	cases := []struct {
		name string
		body func(r *reuseRig)
		code uint32
		p1   uint64
	}{
		{"after IoFreeIrp", func(r *reuseRig) {
			r.k.IoFreeIrp(r.irp)
			r.k.IoReuseIrp(r.irp, kernel.STATUS_SUCCESS)
		}, kernel.DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL, 1}, // P1 the IRP (number 1)
		{"while the lower driver holds it", func(r *reuseRig) {
			r.send()
			r.k.IoReuseIrp(r.irp, kernel.STATUS_SUCCESS)
		}, kernel.DRIVER_VERIFIER_IOMANAGER_VIOLATION, 0x20B},
		{"with a cancel routine set", func(r *reuseRig) {
			r.k.IoSetCancelRoutine(r.irp, func(*kernel.IRP) {})
			r.k.IoReuseIrp(r.irp, kernel.STATUS_SUCCESS)
		}, kernel.DRIVER_VERIFIER_IOMANAGER_VIOLATION, 0x20B},
		{"queued to a thread", func(r *reuseRig) {
			r.k.IoQueueThreadIrp(r.irp)
			r.k.IoReuseIrp(r.irp, kernel.STATUS_SUCCESS)
		}, kernel.DRIVER_VERIFIER_IOMANAGER_VIOLATION, 0x20C},
		{"in a completion routine that lets completion go on", func(r *reuseRig) {
			r.routine = func(_ any, irp *kernel.IRP, _ any) kernel.NTSTATUS {
				r.k.IoReuseIrp(irp, kernel.STATUS_SUCCESS)
				return kernel.STATUS_SUCCESS
			}
			r.send()
			r.k.KeDelayExecutionThread(100 * des.Microsecond)
		}, kernel.DRIVER_VERIFIER_IOMANAGER_VIOLATION, 0x20B},
		{"above DISPATCH_LEVEL", func(r *reuseRig) {
			r.k.KeRaiseIrql(kernel.IRQL(5))
			r.k.IoReuseIrp(r.irp, kernel.STATUS_SUCCESS)
		}, kernel.IRQL_NOT_LESS_OR_EQUAL, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := newMachine(t, oneCPU(), nil)
			k := m.Kernel
			r := newReuseRig(k)
			k.PsCreateSystemThread("driver", 8, func() { c.body(r) })
			bc := requireBugCheck(t, k.Run(), c.code, c.p1)
			api := "IoReuseIrp"
			if c.name == "in a completion routine that lets completion go on" {
				api = "IoCompleteRequest" // found when the routine returns
			}
			assert.Equal(t, api, bc.API, bc.Error())
		})
	}
}

// REFERENCE §1.9: the same correct routine — reuse inside the completion
// routine, then STATUS_MORE_PROCESSING_REQUIRED — is clean: that is the
// documented place to reuse an IRP.
func TestIoReuseIrpInCompletionRoutineWithMoreProcessingIsClean(t *testing.T) {
	m := newMachine(t, oneCPU(), nil)
	k := m.Kernel
	r := newReuseRig(k)
	r.routine = func(_ any, irp *kernel.IRP, _ any) kernel.NTSTATUS {
		r.routines++
		k.IoReuseIrp(irp, kernel.STATUS_SUCCESS)
		k.KeSetEvent(r.back, kernel.IO_NO_INCREMENT, false)
		return kernel.STATUS_MORE_PROCESSING_REQUIRED
	}
	k.PsCreateSystemThread("driver", 8, func() {
		r.send()
		k.KeWaitForSingleObject(r.back, kernel.Infinite)
		r.send()
		k.KeWaitForSingleObject(r.back, kernel.Infinite)
		k.IoFreeIrp(r.irp)
	})
	require.NoError(t, k.Run().Err)
	assert.Equal(t, 2, r.routines)
}

// REFERENCE §1.9: without Verifier nothing checks an IRP in use; as on a
// free build, IoReuseIrp wipes it anyway (here its cancel routine).
func TestIoReuseIrpInUseWithoutVerifierProceeds(t *testing.T) {
	cfg := oneCPU()
	cfg.Verifier = false
	m := newMachine(t, cfg, nil)
	k := m.Kernel
	r := newReuseRig(k)
	var routineAfter kernel.DriverCancel
	k.PsCreateSystemThread("driver", 8, func() {
		k.IoSetCancelRoutine(r.irp, func(*kernel.IRP) {})
		k.IoReuseIrp(r.irp, kernel.STATUS_SUCCESS)
		routineAfter = k.IoSetCancelRoutine(r.irp, nil)
		k.IoFreeIrp(r.irp)
	})
	require.NoError(t, k.Run().Err)
	assert.Nil(t, routineAfter, "the reuse cleared the cancel routine")
}

// REFERENCE §1.9: IoFreeIrp has the same ownership rule, with the I/O
// Verifier codes documented for it: a second free is a use after free
// (0xD5), freeing an IRP still down the stack or in a cancelable queue is
// 0xC9 P1=0x20B, one still queued to a thread 0xC9 P1=0x20C. Freeing it in
// its own completion routine (then STATUS_MORE_PROCESSING_REQUIRED) is
// the correct pattern and clean.
func TestIoFreeIrpOwnership(t *testing.T) {
	cases := []struct {
		name string
		body func(r *reuseRig)
		code uint32
		p1   uint64
	}{
		{"twice", func(r *reuseRig) {
			r.k.IoFreeIrp(r.irp)
			r.k.IoFreeIrp(r.irp)
		}, kernel.DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL, 1},
		{"while the lower driver holds it", func(r *reuseRig) {
			r.send()
			r.k.IoFreeIrp(r.irp)
		}, kernel.DRIVER_VERIFIER_IOMANAGER_VIOLATION, 0x20B},
		{"with a cancel routine set", func(r *reuseRig) {
			r.k.IoSetCancelRoutine(r.irp, func(*kernel.IRP) {})
			r.k.IoFreeIrp(r.irp)
		}, kernel.DRIVER_VERIFIER_IOMANAGER_VIOLATION, 0x20B},
		{"queued to a thread", func(r *reuseRig) {
			r.k.IoQueueThreadIrp(r.irp)
			r.k.IoFreeIrp(r.irp)
		}, kernel.DRIVER_VERIFIER_IOMANAGER_VIOLATION, 0x20C},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := newMachine(t, oneCPU(), nil)
			k := m.Kernel
			r := newReuseRig(k)
			k.PsCreateSystemThread("driver", 8, func() { c.body(r) })
			bc := requireBugCheck(t, k.Run(), c.code, c.p1)
			assert.Equal(t, "IoFreeIrp", bc.API, bc.Error())
		})
	}
	t.Run("in its completion routine", func(t *testing.T) {
		m := newMachine(t, oneCPU(), nil)
		k := m.Kernel
		r := newReuseRig(k)
		r.routine = func(_ any, irp *kernel.IRP, _ any) kernel.NTSTATUS {
			k.IoFreeIrp(irp)
			k.KeSetEvent(r.back, kernel.IO_NO_INCREMENT, false)
			return kernel.STATUS_MORE_PROCESSING_REQUIRED
		}
		k.PsCreateSystemThread("driver", 8, func() {
			r.send()
			k.KeWaitForSingleObject(r.back, kernel.Infinite)
		})
		require.NoError(t, k.Run().Err)
	})
}
