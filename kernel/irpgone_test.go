package kernel_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/kernel"
)

// REFERENCE §2.7J: a driver that touches an IRP once it is gone — freed with
// IoFreeIrp, or a threaded IRP whose completion reached its thread, where the
// I/O manager frees it — reads freed memory: 0xD5 with P1 the IRP, at the
// call that touches it.
func TestTouchingAGoneIrpIsUseAfterFree(t *testing.T) {
	threadedAndCompleted := func(k *kernel.Kernel) *kernel.IRP {
		irp := k.IoAllocateIrp("read")
		k.IoQueueThreadIrp(irp)
		k.IoCompleteRequest(irp, 0) // the completion APC runs in this thread and frees it
		return irp
	}
	freed := func(k *kernel.Kernel) *kernel.IRP {
		irp := k.IoAllocateIrp("read")
		k.IoFreeIrp(irp)
		return irp
	}
	cases := []struct {
		name  string
		gone  func(k *kernel.Kernel) *kernel.IRP
		touch func(k *kernel.Kernel, irp *kernel.IRP)
		api   string
		says  string
	}{
		{"IoSetCancelRoutine on a completed threaded IRP", threadedAndCompleted,
			func(k *kernel.Kernel, irp *kernel.IRP) { k.IoSetCancelRoutine(irp, nil) },
			"IoSetCancelRoutine", "completed (by driver) and freed"},
		{"IoSetCancelRoutine on a freed IRP", freed,
			func(k *kernel.Kernel, irp *kernel.IRP) { k.IoSetCancelRoutine(irp, nil) },
			"IoSetCancelRoutine", "after it was freed (IoFreeIrp)"},
		{"IoMarkIrpPending on a completed threaded IRP", threadedAndCompleted,
			func(k *kernel.Kernel, irp *kernel.IRP) { k.IoMarkIrpPending(irp) },
			"IoMarkIrpPending", "marked pending after it was completed"},
		{"IoCancelIrp on a freed IRP", freed,
			func(k *kernel.Kernel, irp *kernel.IRP) { k.IoCancelIrp(irp) },
			"IoCancelIrp", "cancelled after it was freed (IoFreeIrp)"},
		{"Irp->Cancel read on a freed IRP", freed,
			func(k *kernel.Kernel, irp *kernel.IRP) { k.IoIsCancelled(irp) },
			"Irp->Cancel", "read after it was freed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := runOne(t, oneCPU(), func(k *kernel.Kernel) { tc.touch(k, tc.gone(k)) })
			bc := requireBugCheck(t, out, kernel.DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL, 1)
			assert.Equal(t, tc.api, bc.API)
			assert.Contains(t, bc.Error(), tc.says)
		})
	}
}

// An IRP without a thread that was completed stays its issuer's: touching it
// is not a use after free (the scenario's issuer may wait on it, reuse it).
func TestCompletedUnthreadedIrpIsNotGone(t *testing.T) {
	out := runOne(t, oneCPU(), func(k *kernel.Kernel) {
		irp := k.IoAllocateIrp("read")
		k.IoCompleteRequest(irp, 0)
		k.IoSetCancelRoutine(irp, nil)
		k.IoIsCancelled(irp)
	})
	require.NoError(t, out.Err)
}

// A report of a second completion says that the first came from the cancel
// routine IoCancelIrp called, not merely from the thread that cancelled:
// the thread only asked, the driver's routine completed (REFERENCE §1.7).
func TestSecondCompletionNamesTheCancelRoutine(t *testing.T) {
	out := runOne(t, oneCPU(), func(k *kernel.Kernel) {
		irp := k.IoAllocateIrp("read")
		k.IoSetCancelRoutine(irp, func(irp *kernel.IRP) {
			k.IoReleaseCancelSpinLock(irp.CancelIrql)
			irp.IoStatus.Status = kernel.STATUS_CANCELLED
			k.IoCompleteRequest(irp, 0)
		})
		k.IoCancelIrp(irp)
		k.IoCompleteRequest(irp, 0)
	})
	bc := requireBugCheck(t, out, kernel.MULTIPLE_IRP_COMPLETE_REQUESTS, 1)
	assert.Contains(t, bc.Error(), "completed twice (first by driver, in the cancel routine its IoCancelIrp called)")
}
