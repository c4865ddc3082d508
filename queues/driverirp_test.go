package queues_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues"
)

// ownIrpEnding is how a driver's completion routine for its own IRP ends.
type ownIrpEnding int

const (
	noRoutine       ownIrpEnding = iota // bug: no completion routine at all
	routineSuccess                      // bug: a routine that lets completion go on
	routineFreeMore                     // correct: IoFreeIrp, STATUS_MORE_PROCESSING_REQUIRED
	routineKeepMore                     // correct: keep it (STATUS_MORE_PROCESSING_REQUIRED), reuse, free later
)

// REFERENCE §1.10: an IRP a driver allocates itself (IoAllocateIrp) has
// no thread, so its completion must stop in the allocating driver's
// completion routine. A driver that sets no routine, or one that lets
// completion go on, has it completed to the top: the I/O manager
// dereferences the missing thread — 0xA from the disk's DPC (DISPATCH_LEVEL),
// 0x7E in a thread. Freeing it and returning
// STATUS_MORE_PROCESSING_REQUIRED, or keeping it for IoReuseIrp, is clean,
// whoever completes it.
func TestDriverAllocatedIrpMustNotCompleteToTheTop(t *testing.T) {
	for _, fixed := range []int{queues.CompleteInline, queues.CompleteFromDpc, queues.CompleteFromWorker} {
		for _, end := range []ownIrpEnding{noRoutine, routineSuccess, routineFreeMore, routineKeepMore} {
			r := newWIRig(t, wiCPUs(2), queues.DefaultPoolConfig())
			routines := 0
			r.driver(8, func() {
				k := r.k
				disk := r.sys.NewSimDevice("disk", 10*des.Microsecond)
				disk.Fixed = fixed
				irp := r.sys.IoAllocateIrp(disk.Device.StackSize, "own")
				back := k.KeInitializeEvent("back", kernel.NotificationEvent, false)
				send := func() {
					k.IoGetNextIrpStackLocation(irp).MajorFunction = queues.IRP_MJ_READ
					if end != noRoutine {
						k.IoSetCompletionRoutine(irp, func(_ any, irp *kernel.IRP, _ any) kernel.NTSTATUS {
							routines++
							k.KeSetEvent(back, kernel.IO_NO_INCREMENT, false)
							switch end {
							case routineFreeMore:
								k.IoFreeIrp(irp)
								return kernel.STATUS_MORE_PROCESSING_REQUIRED
							case routineKeepMore:
								return kernel.STATUS_MORE_PROCESSING_REQUIRED
							}
							return kernel.STATUS_SUCCESS
						}, nil, true, true, true)
					}
					r.sys.IoCallDriver(disk.Device, irp)
				}
				send()
				if end != routineKeepMore {
					k.KeDelayExecutionThread(100 * des.Microsecond)
					return
				}
				k.KeWaitForSingleObject(back, kernel.Infinite)
				k.KeClearEvent(back)
				k.IoReuseIrp(irp, kernel.STATUS_SUCCESS)
				send()
				k.KeWaitForSingleObject(back, kernel.Infinite)
				k.IoFreeIrp(irp)
			})
			out := r.run(t)
			switch end {
			case routineFreeMore, routineKeepMore:
				require.NoError(t, out.Err, "choice %d, ending %d", fixed, end)
				want := map[ownIrpEnding]int{routineFreeMore: 1, routineKeepMore: 2}[end]
				assert.Equal(t, want, routines, "choice %d, ending %d", fixed, end)
				continue
			}
			code := kernel.SYSTEM_THREAD_EXCEPTION_NOT_HANDLED
			if fixed == queues.CompleteFromDpc {
				code = kernel.IRQL_NOT_LESS_OR_EQUAL
			}
			bc := wiRequireBugCheck(t, out, code, wiAnyP1)
			assert.Equal(t, "IoCompleteRequest", bc.API, "choice %d, ending %d", fixed, end)
			assert.Contains(t, bc.Detail, "completed to the top", "choice %d, ending %d", fixed, end)
		}
	}
}

// REFERENCE §1.10: the rule is about the driver's own IRPs only. The I/O
// manager's — a synchronous request built for the calling thread, here
// sent without any completion routine — complete to the top as their
// normal end.
func TestIoManagerIrpCompletesToTheTopCleanly(t *testing.T) {
	for _, fixed := range []int{queues.CompleteInline, queues.CompleteFromDpc, queues.CompleteFromWorker} {
		r := newWIRig(t, wiCPUs(2), queues.DefaultPoolConfig())
		var iosb kernel.IO_STATUS_BLOCK
		r.driver(8, func() {
			k := r.k
			disk := r.sys.NewSimDevice("disk", 10*des.Microsecond)
			disk.Fixed = fixed
			ev := k.KeInitializeEvent("done", kernel.NotificationEvent, false)
			irp := r.sys.IoBuildSynchronousFsdRequest(queues.IRP_MJ_READ, disk.Device, ev, &iosb, "sync")
			if r.sys.IoCallDriver(disk.Device, irp) == kernel.STATUS_PENDING {
				k.KeWaitForSingleObject(ev, kernel.Infinite)
			}
		})
		require.NoError(t, r.run(t).Err, "choice %d", fixed)
		assert.Equal(t, kernel.STATUS_SUCCESS, iosb.Status, "choice %d", fixed)
	}
}
