package queues_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues"
)

// ioStack is a filter device attached over a simulated disk.
type ioStack struct {
	t      *testing.T
	r      *wiRig
	disk   *queues.SimDevice
	filter *queues.DEVICE_OBJECT
	lower  *queues.DEVICE_OBJECT
	log    []string
}

// newIoStack loads the disk (completing as fixed) and a filter whose
// dispatch routine is dispatch.
func newIoStack(t *testing.T, r *wiRig, fixed int, dispatch queues.DRIVER_DISPATCH) *ioStack {
	s := &ioStack{t: t, r: r}
	s.disk = r.sys.NewSimDevice("disk", 100*des.Microsecond)
	s.disk.Fixed = fixed
	r.sys.LoadDriver("filter", func(d *queues.DRIVER_OBJECT) kernel.NTSTATUS {
		s.filter, _ = r.sys.IoCreateDevice(d, "filter")
		d.MajorFunction[queues.IRP_MJ_READ] = dispatch
		return kernel.STATUS_SUCCESS
	})
	s.lower = r.sys.IoAttachDeviceToDeviceStack(s.filter, s.disk.Device)
	return s
}

// send issues a synchronous read to the top of the stack the way a
// driver does: build, call, wait on STATUS_PENDING.
func (s *ioStack) send() kernel.IO_STATUS_BLOCK {
	k := s.r.k
	var iosb kernel.IO_STATUS_BLOCK
	ev := k.KeInitializeEvent("read", kernel.NotificationEvent, false)
	irp := s.r.sys.IoBuildSynchronousFsdRequest(queues.IRP_MJ_READ, s.filter, ev, &iosb, "read")
	if st := s.r.sys.IoCallDriver(s.filter, irp); st == kernel.STATUS_PENDING {
		k.KeWaitForSingleObject(ev, kernel.Infinite)
	}
	return iosb
}

// passDown is the usual filter dispatch: copy the location, set a
// completion routine that logs where it runs and propagates the pending
// mark, call the lower device.
func (s *ioStack) passDown(onSuccess, onError bool, propagate bool) queues.DRIVER_DISPATCH {
	k := s.r.k
	return func(dev *queues.DEVICE_OBJECT, irp *kernel.IRP) kernel.NTSTATUS {
		k.IoCopyCurrentIrpStackLocationToNext(irp)
		k.IoSetCompletionRoutine(irp, func(d any, irp *kernel.IRP, ctx any) kernel.NTSTATUS {
			s.log = append(s.log, "completion@"+k.KeGetCurrentIrql().String())
			assert.Equal(s.t, s.filter, d, "the routine gets its own driver's device")
			if propagate && irp.PendingReturned() {
				k.IoMarkIrpPending(irp)
			}
			return kernel.STATUS_SUCCESS
		}, nil, onSuccess, onError, false)
		return s.r.sys.IoCallDriver(s.lower, irp)
	}
}

// REFERENCE §5.6: a filter over a disk; the completion routine runs in
// whatever context completes the IRP — the caller (disk completes
// inline), the disk's DPC at DISPATCH_LEVEL, or a worker thread — and the
// issuer gets the status through the completion APC.
func TestIoCallDriverCompletionContexts(t *testing.T) {
	for _, c := range []struct {
		fixed int
		want  string
	}{
		{queues.CompleteInline, "completion@PASSIVE_LEVEL"},
		{queues.CompleteFromDpc, "completion@DISPATCH_LEVEL"},
		{queues.CompleteFromWorker, "completion@PASSIVE_LEVEL"},
	} {
		r := newWIRig(t, wiCPUs(2), queues.DefaultPoolConfig())
		var s *ioStack
		var iosb kernel.IO_STATUS_BLOCK
		r.driver(8, func() {
			s = newIoStack(t, r, c.fixed, nil)
			s.disk.Length = 512
			s.filter.DriverObject.MajorFunction[queues.IRP_MJ_READ] = s.passDown(true, true, true)
			assert.Equal(t, 2, s.filter.StackSize)
			iosb = s.send()
		})
		require.NoError(t, r.run(t).Err, "choice %d", c.fixed)
		assert.Equal(t, []string{c.want}, s.log, "choice %d", c.fixed)
		assert.Equal(t, kernel.IO_STATUS_BLOCK{Status: kernel.STATUS_SUCCESS, Information: 512}, iosb)
	}
}

// REFERENCE §5.6: the invoke-on flags select the final statuses a
// completion routine sees.
func TestCompletionRoutineInvokeOnFlags(t *testing.T) {
	r := newWIRig(t, wiCPUs(1), queues.DefaultPoolConfig())
	var s *ioStack
	r.driver(8, func() {
		s = newIoStack(t, r, queues.CompleteInline, nil)
		s.filter.DriverObject.MajorFunction[queues.IRP_MJ_READ] = s.passDown(false, true, true) // errors only
		assert.Equal(t, kernel.STATUS_SUCCESS, s.send().Status)
	})
	require.NoError(t, r.run(t).Err)
	assert.Empty(t, s.log, "success: a routine set for errors only is not called")
}

// REFERENCE §5.6: the Verifier's pending checks — STATUS_PENDING without
// IoMarkIrpPending (0xC9 P1=0x23D), a mark with another status (0x23E),
// and a completion routine that does not propagate PendingReturned
// (0x228).
func TestPendingRuleVerifierChecks(t *testing.T) {
	for _, c := range []struct {
		name  string
		fixed int
		setup func(s *ioStack) queues.DRIVER_DISPATCH
		p1    uint64
	}{
		{"pending without mark", queues.CompleteInline, func(s *ioStack) queues.DRIVER_DISPATCH {
			return func(*queues.DEVICE_OBJECT, *kernel.IRP) kernel.NTSTATUS { return kernel.STATUS_PENDING }
		}, 0x23D},
		{"mark without pending", queues.CompleteInline, func(s *ioStack) queues.DRIVER_DISPATCH {
			return func(_ *queues.DEVICE_OBJECT, irp *kernel.IRP) kernel.NTSTATUS {
				s.r.k.IoMarkIrpPending(irp)
				s.r.k.IoCopyCurrentIrpStackLocationToNext(irp)
				s.r.sys.IoCallDriver(s.lower, irp)
				return kernel.STATUS_SUCCESS
			}
		}, 0x23E},
		{"completion routine drops the pending mark", queues.CompleteFromDpc, func(s *ioStack) queues.DRIVER_DISPATCH {
			return s.passDown(true, true, false)
		}, 0x228},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newWIRig(t, wiCPUs(1), queues.DefaultPoolConfig())
			r.driver(8, func() {
				s := newIoStack(t, r, c.fixed, nil)
				s.filter.DriverObject.MajorFunction[queues.IRP_MJ_READ] = c.setup(s)
				s.send()
			})
			wiRequireBugCheck(t, r.run(t), kernel.DRIVER_VERIFIER_IOMANAGER_VIOLATION, c.p1)
		})
	}
}

// REFERENCE §5.6: STATUS_MORE_PROCESSING_REQUIRED stops completion and
// gives the IRP back to the routine's driver: the forward-and-wait
// pattern waits for its event, works on the IRP, then completes it again.
func TestMoreProcessingRequiredForwardAndWait(t *testing.T) {
	for _, fixed := range []int{queues.CompleteInline, queues.CompleteFromDpc, queues.CompleteFromWorker} {
		r := newWIRig(t, wiCPUs(2), queues.DefaultPoolConfig())
		var iosb kernel.IO_STATUS_BLOCK
		var after []string
		r.driver(8, func() {
			k := r.k
			s := newIoStack(t, r, fixed, nil)
			s.filter.DriverObject.MajorFunction[queues.IRP_MJ_READ] = func(_ *queues.DEVICE_OBJECT, irp *kernel.IRP) kernel.NTSTATUS {
				done := k.KeInitializeEvent("forwarded", kernel.NotificationEvent, false)
				k.IoCopyCurrentIrpStackLocationToNext(irp)
				k.IoSetCompletionRoutine(irp, func(any, *kernel.IRP, any) kernel.NTSTATUS {
					k.KeSetEvent(done, kernel.IO_NO_INCREMENT, false)
					return kernel.STATUS_MORE_PROCESSING_REQUIRED
				}, nil, true, true, true)
				if r.sys.IoCallDriver(s.lower, irp) == kernel.STATUS_PENDING {
					k.KeWaitForSingleObject(done, kernel.Infinite)
				}
				after = append(after, "back in the filter")
				assert.False(t, irp.Completed(), "not completed while the filter owns it again")
				irp.IoStatus.Information = 7
				k.IoCompleteRequest(irp, kernel.IO_NO_INCREMENT)
				return kernel.STATUS_SUCCESS
			}
			iosb = s.send()
		})
		require.NoError(t, r.run(t).Err, "choice %d", fixed)
		assert.Equal(t, []string{"back in the filter"}, after)
		assert.Equal(t, kernel.IO_STATUS_BLOCK{Status: kernel.STATUS_SUCCESS, Information: 7}, iosb)
	}
}

// REFERENCE §5.6: an IRP a driver built for itself
// (IoBuildAsynchronousFsdRequest) is freed by its completion routine,
// which must then return STATUS_MORE_PROCESSING_REQUIRED. A routine that
// frees it and lets completion go on leaves the I/O manager walking freed
// memory: 0xD5 under special pool, in whatever context completes it. The
// same routine returning STATUS_MORE_PROCESSING_REQUIRED is clean.
func TestCompletionRoutineFreeingIrpMustStopCompletion(t *testing.T) {
	for _, fixed := range []int{queues.CompleteInline, queues.CompleteFromDpc, queues.CompleteFromWorker} {
		for _, stop := range []bool{true, false} {
			r := newWIRig(t, wiCPUs(2), queues.DefaultPoolConfig())
			freed := false
			r.driver(8, func() {
				k := r.k
				disk := r.sys.NewSimDevice("disk", 10*des.Microsecond)
				disk.Fixed = fixed
				var iosb kernel.IO_STATUS_BLOCK
				irp := r.sys.IoBuildAsynchronousFsdRequest(queues.IRP_MJ_READ, disk.Device, &iosb, "own")
				k.IoSetCompletionRoutine(irp, func(_ any, irp *kernel.IRP, _ any) kernel.NTSTATUS {
					k.IoFreeIrp(irp)
					freed = true
					if stop {
						return kernel.STATUS_MORE_PROCESSING_REQUIRED
					}
					return kernel.STATUS_SUCCESS
				}, nil, true, true, true)
				r.sys.IoCallDriver(disk.Device, irp)
				k.KeDelayExecutionThread(50 * des.Microsecond)
			})
			out := r.run(t)
			assert.True(t, freed, "choice %d: the routine ran", fixed)
			if stop {
				require.NoError(t, out.Err, "choice %d", fixed)
				continue
			}
			bc := wiRequireBugCheck(t, out, kernel.DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL, wiAnyP1)
			assert.Contains(t, bc.Detail, "STATUS_MORE_PROCESSING_REQUIRED", "choice %d", fixed)
		}
	}
}

// REFERENCE §5.6, §6.8: a driver's own IRP sent to another driver's
// device holds nothing of the sender's image, so a sender that unloads
// before the IRP comes back has its completion routine called in an
// unloaded image: 0xCE. Waiting in DriverUnload for the routine to run is
// clean.
func TestCompletionRoutineOfUnloadedDriverIs0xCE(t *testing.T) {
	for _, wait := range []bool{true, false} {
		r := newWIRig(t, wiCPUs(2), queues.DefaultPoolConfig())
		r.driver(8, func() {
			k := r.k
			disk := r.sys.NewSimDevice("disk", 20*des.Microsecond)
			disk.Fixed = queues.CompleteFromDpc
			back := k.KeInitializeEvent("back", kernel.NotificationEvent, false)
			drv, _ := r.sys.LoadDriver("sender", func(d *queues.DRIVER_OBJECT) kernel.NTSTATUS {
				irp := r.sys.IoBuildAsynchronousFsdRequest(queues.IRP_MJ_READ, disk.Device, nil, "own")
				k.IoSetCompletionRoutine(irp, func(_ any, irp *kernel.IRP, _ any) kernel.NTSTATUS {
					k.IoFreeIrp(irp)
					k.KeSetEvent(back, kernel.IO_NO_INCREMENT, false)
					return kernel.STATUS_MORE_PROCESSING_REQUIRED
				}, nil, true, true, true)
				r.sys.IoCallDriver(disk.Device, irp)
				d.DriverUnload = func(*queues.DRIVER_OBJECT) {
					if wait {
						k.KeWaitForSingleObject(back, kernel.Infinite)
					}
				}
				return kernel.STATUS_SUCCESS
			})
			r.sys.UnloadDriver(drv)
			k.KeDelayExecutionThread(50 * des.Microsecond)
		})
		out := r.run(t)
		if wait {
			require.NoError(t, out.Err)
			continue
		}
		bc := wiRequireBugCheck(t, out, kernel.DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS, wiAnyP1)
		assert.Contains(t, bc.Detail, "completion routine driver sender set")
	}
}

// REFERENCE §5.6, §6.8: IoSetCompletionRoutineEx holds the sender's
// device, so a sender that unloads without waiting still has its routine
// called with the image mapped; the image goes once the routine returns.
func TestCompletionRoutineExKeepsTheImage(t *testing.T) {
	r := newWIRig(t, wiCPUs(2), queues.DefaultPoolConfig())
	ran := false
	var drv *queues.DRIVER_OBJECT
	r.driver(8, func() {
		k := r.k
		disk := r.sys.NewSimDevice("disk", 20*des.Microsecond)
		disk.Fixed = queues.CompleteFromDpc
		drv, _ = r.sys.LoadDriver("sender", func(d *queues.DRIVER_OBJECT) kernel.NTSTATUS {
			dev, st := r.sys.IoCreateDevice(d, "sender0")
			if st != kernel.STATUS_SUCCESS {
				return st
			}
			irp := r.sys.IoBuildAsynchronousFsdRequest(queues.IRP_MJ_READ, disk.Device, nil, "own")
			require.Equal(t, kernel.STATUS_SUCCESS, r.sys.IoSetCompletionRoutineEx(dev, irp, func(_ any, irp *kernel.IRP, _ any) kernel.NTSTATUS {
				assert.True(t, d.ImageLoaded(), "the image is mapped while the routine runs")
				ran = true
				k.IoFreeIrp(irp)
				return kernel.STATUS_MORE_PROCESSING_REQUIRED
			}, nil, true, true, true))
			r.sys.IoCallDriver(disk.Device, irp)
			d.DriverUnload = func(d *queues.DRIVER_OBJECT) { r.sys.IoDeleteDevice(dev) }
			return kernel.STATUS_SUCCESS
		})
		r.sys.UnloadDriver(drv)
		assert.True(t, drv.ImageLoaded(), "held by the completion routine's reference")
		k.KeDelayExecutionThread(50 * des.Microsecond)
	})
	require.NoError(t, r.run(t).Err)
	assert.True(t, ran)
	assert.False(t, drv.ImageLoaded(), "unloaded once the routine returned")
}

// REFERENCE §5.6: an IRP sent further than its stack allows is bug check
// 0x35 NO_MORE_IRP_STACK_LOCATIONS.
func TestNoMoreStackLocations(t *testing.T) {
	r := newWIRig(t, wiCPUs(1), queues.DefaultPoolConfig())
	r.driver(8, func() {
		disk := r.sys.NewSimDevice("disk", 0)
		irp := r.sys.IoBuildAsynchronousFsdRequest(queues.IRP_MJ_READ, disk.Device, nil, "read")
		disk.Device.DriverObject.MajorFunction[queues.IRP_MJ_READ] = func(dev *queues.DEVICE_OBJECT, irp *kernel.IRP) kernel.NTSTATUS {
			r.k.IoCopyCurrentIrpStackLocationToNext(irp) // a one-location IRP has no next location
			return kernel.STATUS_SUCCESS
		}
		r.sys.IoCallDriver(disk.Device, irp)
	})
	wiRequireBugCheck(t, r.run(t), kernel.NO_MORE_IRP_STACK_LOCATIONS, 1)
}

// REFERENCE §4.10, §5.6: the classic deadlock through the I/O path: a
// thread that sends a synchronous request while holding a fast mutex
// (APC_LEVEL) hangs when the device pends it; with inline completion it
// does not wait and does not hang.
func TestSynchronousRequestAtApcLevelHangsWhenPended(t *testing.T) {
	for _, fixed := range []int{queues.CompleteInline, queues.CompleteFromDpc} {
		r := newWIRig(t, wiCPUs(1), queues.DefaultPoolConfig())
		r.driver(8, func() {
			s := newIoStack(t, r, fixed, nil)
			s.filter.DriverObject.MajorFunction[queues.IRP_MJ_READ] = s.passDown(true, true, true)
			m := r.k.ExInitializeFastMutex("m")
			r.k.ExAcquireFastMutex(m)
			s.send()
			r.k.ExReleaseFastMutex(m)
		})
		out := r.run(t)
		if fixed == queues.CompleteInline {
			require.NoError(t, out.Err)
			continue
		}
		var d *kernel.Deadlock
		require.ErrorAs(t, out.Err, &d)
		require.Len(t, d.Cycle, 1)
		assert.Contains(t, d.Cycle[0].Owner, "IopCompleteRequest irp 1 (read) APC, which cannot run because it waits at APC_LEVEL")
	}
}

// REFERENCE §4.8, §4.10: the counterpart of the deadlock above. Holding
// what disables only normal kernel APCs — a critical region around an
// unsafe fast mutex or an ERESOURCE, or a KMUTEX — leaves special kernel
// APCs on, so the I/O completion APC runs and a thread waiting for its own
// pended synchronous request is woken. None of these may be reported.
func TestSynchronousRequestWithOnlyNormalApcsOffCompletes(t *testing.T) {
	holds := []struct {
		name string
		hold func(k *kernel.Kernel) (release func())
	}{
		{"critical region + ExAcquireFastMutexUnsafe", func(k *kernel.Kernel) func() {
			m := k.ExInitializeFastMutex("m")
			k.KeEnterCriticalRegion()
			k.ExAcquireFastMutexUnsafe(m)
			return func() { k.ExReleaseFastMutexUnsafe(m); k.KeLeaveCriticalRegion() }
		}},
		{"critical region + ERESOURCE", func(k *kernel.Kernel) func() {
			res := k.ExInitializeResourceLite("res")
			k.KeEnterCriticalRegion()
			k.ExAcquireResourceExclusiveLite(res, true)
			return func() { k.ExReleaseResourceLite(res); k.KeLeaveCriticalRegion() }
		}},
		{"KMUTEX", func(k *kernel.Kernel) func() {
			m := k.KeInitializeMutex("m", 0)
			k.KeWaitForSingleObject(m, kernel.Infinite)
			return func() { k.KeReleaseMutex(m, false) }
		}},
	}
	for _, h := range holds {
		t.Run(h.name, func(t *testing.T) {
			r := newWIRig(t, wiCPUs(1), queues.DefaultPoolConfig())
			var iosb kernel.IO_STATUS_BLOCK
			r.driver(8, func() {
				s := newIoStack(t, r, queues.CompleteFromDpc, nil)
				s.filter.DriverObject.MajorFunction[queues.IRP_MJ_READ] = s.passDown(true, true, true)
				release := h.hold(r.k)
				iosb = s.send()
				release()
			})
			require.NoError(t, r.run(t).Err)
			assert.Equal(t, kernel.STATUS_SUCCESS, iosb.Status)
		})
	}
}
