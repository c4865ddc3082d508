package kernel_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/kernel"
)

// REFERENCE §4.5: KeSetEvent with Wait=TRUE returns at DISPATCH_LEVEL; the
// next wait restores the caller's IRQL. Calling anything illegal at
// DISPATCH_LEVEL in between fails as such (here a fast mutex: 0xC4 0x33).
func TestSetEventWaitTrueHoldsDispatchUntilWait(t *testing.T) {
	var irqls []kernel.IRQL
	out := runOne(t, oneCPU(), func(k *kernel.Kernel) {
		e := k.KeInitializeEvent("e", kernel.NotificationEvent, false)
		done := k.KeInitializeEvent("done", kernel.NotificationEvent, true)
		k.KeSetEvent(e, 0, true)
		irqls = append(irqls, k.KeGetCurrentIrql())
		require.Equal(t, kernel.STATUS_SUCCESS, k.KeWaitForSingleObject(done, kernel.Infinite))
		irqls = append(irqls, k.KeGetCurrentIrql())
	})
	require.NoError(t, out.Err)
	assert.Equal(t, []kernel.IRQL{kernel.DISPATCH_LEVEL, kernel.PASSIVE_LEVEL}, irqls)

	out = runOne(t, oneCPU(), func(k *kernel.Kernel) {
		k.KeSetEvent(k.KeInitializeEvent("e", kernel.NotificationEvent, false), 0, true)
		k.ExAcquireFastMutex(k.ExInitializeFastMutex("f"))
	})
	requireBugCheck(t, out, kernel.DRIVER_VERIFIER_DETECTED_VIOLATION, 0x33)
}

// REFERENCE §4.5: without Driver Verifier the HAL catches KeLowerIrql to a
// higher level (and KeRaiseIrql to a lower one) as IRQL_NOT_GREATER_OR_EQUAL
// 0x9 with P1 the requested and P2 the current IRQL; with Verifier it is
// 0xC4 P1=0x31 (0x30).
func TestIrqlDirectionWithoutVerifierIs0x9(t *testing.T) {
	cfg := oneCPU()
	cfg.Verifier = false
	out := runOne(t, cfg, func(k *kernel.Kernel) { k.KeLowerIrql(kernel.DISPATCH_LEVEL) })
	bc := requireBugCheck(t, out, kernel.IRQL_NOT_GREATER_OR_EQUAL, uint64(kernel.DISPATCH_LEVEL))
	assert.EqualValues(t, kernel.PASSIVE_LEVEL, bc.Params[1])
	out = runOne(t, cfg, func(k *kernel.Kernel) {
		k.KeRaiseIrql(kernel.DISPATCH_LEVEL)
		k.KeRaiseIrql(kernel.APC_LEVEL)
	})
	bc = requireBugCheck(t, out, kernel.IRQL_NOT_GREATER_OR_EQUAL, uint64(kernel.APC_LEVEL))
	assert.EqualValues(t, kernel.DISPATCH_LEVEL, bc.Params[1])
}

// REFERENCE §1.8: bug-check parameters in the documented order — 0x48 P1
// the IRP, P2 the cancel routine; 0xC9/0x7 P2 the cancel routine, P3 the
// IRP; 0xC9/0x6 P2 the status, P3 the IRP. The model reports IRPs by
// number and a set routine as 1.
func TestIrpBugCheckParameterOrder(t *testing.T) {
	cfg := oneCPU()
	cfg.Verifier = false
	out := runOne(t, cfg, func(k *kernel.Kernel) {
		irp := k.IoAllocateIrp("read")
		k.IoSetCancelRoutine(irp, func(*kernel.IRP) {})
		k.IoCompleteRequest(irp, 0)
		k.IoCancelIrp(irp)
	})
	bc := requireBugCheck(t, out, kernel.CANCEL_STATE_IN_COMPLETED_IRP, 1)
	assert.EqualValues(t, 1, bc.Params[1], "P2 the cancel routine (non-NULL)")

	out = runOne(t, kernel.DefaultConfig(), func(k *kernel.Kernel) {
		k.IoAllocateIrp("other")
		irp := k.IoAllocateIrp("read")
		k.IoSetCancelRoutine(irp, func(*kernel.IRP) {})
		k.IoCompleteRequest(irp, 0)
	})
	bc = requireBugCheck(t, out, kernel.DRIVER_VERIFIER_IOMANAGER_VIOLATION, 0x7)
	assert.EqualValues(t, 1, bc.Params[1], "P2 the cancel routine")
	assert.EqualValues(t, 2, bc.Params[2], "P3 the IRP")

	out = runOne(t, kernel.DefaultConfig(), func(k *kernel.Kernel) {
		irp := k.IoAllocateIrp("read")
		irp.IoStatus.Status = kernel.STATUS_PENDING
		k.IoCompleteRequest(irp, 0)
	})
	bc = requireBugCheck(t, out, kernel.DRIVER_VERIFIER_IOMANAGER_VIOLATION, 0x6)
	assert.EqualValues(t, kernel.STATUS_PENDING, bc.Params[1], "P2 the status")
	assert.EqualValues(t, 1, bc.Params[2], "P3 the IRP")
}
