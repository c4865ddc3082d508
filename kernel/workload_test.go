package kernel_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// The workload helpers of the driver surface that end in a bug check
// (REFERENCE §1.8).
func TestWorkloadHelperBugChecks(t *testing.T) {
	cases := []struct {
		name    string
		section string
		body    func(k *kernel.Kernel)
		code    uint32
		p1      uint64
	}{
		{"pool access after free", "§1.8 0xD5", func(k *kernel.Kernel) {
			b := k.ExAllocatePoolWithTag(kernel.NonPagedPool, 16, "Test")
			k.ExFreePoolWithTag(b, "Test")
			k.AccessPool(b, "ctx->Flags")
		}, kernel.DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL, 1}, // P1: the block
		{"cancelled IRP not completed in time", "§1.8 0xC4/0x135", func(k *kernel.Kernel) {
			irp := k.IoAllocateIrp("read")
			k.IoCancelIrp(irp)
			k.VerifyCancelCompletes(irp, des.Millisecond)
		}, kernel.DRIVER_VERIFIER_DETECTED_VIOLATION, 0x135},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := runOne(t, oneCPU(), tc.body)
			bc := requireBugCheck(t, out, tc.code, tc.p1)
			assert.Equal(t, "driver", bc.Actor, tc.section)
		})
	}
}

// VerifyCancelCompletes returns quietly when the IRP completes before the
// deadline (REFERENCE §1.8 0xC4/0x135).
func TestVerifyCancelCompletesInTime(t *testing.T) {
	out := runOne(t, oneCPU(), func(k *kernel.Kernel) {
		irp := k.IoAllocateIrp("read")
		k.IoSetCancelRoutine(irp, func(irp *kernel.IRP) {
			k.IoReleaseCancelSpinLock(irp.CancelIrql)
			irp.IoStatus.Status = kernel.STATUS_CANCELLED
			k.IoCompleteRequest(irp, 0)
		})
		k.IoCancelIrp(irp)
		k.VerifyCancelCompletes(irp, des.Millisecond)
	})
	require.NoError(t, out.Err)
}
