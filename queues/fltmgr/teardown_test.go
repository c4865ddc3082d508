package fltmgr_test

// Instance teardown, detach and filter unload (REFERENCE §5.5, §5.4).

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues"
	"github.com/wqsim/wqsim/queues/fltmgr"
)

// §5.5 items 2–4, §7.1 step 6: a filter that disables and drains its queue
// in InstanceTeardownStart lets teardown complete; the drained reads go on
// down and succeed; FltUnloadFilter returns once everything is gone.
func TestUnloadDrainsQueueAndCompletes(t *testing.T) {
	for _, lock := range []lockKind{spinLocked, mutexLocked} {
		r := newRig(t, rigOpts{})
		c := newCbdqFilter(r, lock)
		issued := r.gate("issued")
		ios := make([]*fltmgr.IoOp, 3)
		var finals []kernel.IO_STATUS_BLOCK
		var unload kernel.NTSTATUS
		r.thread("app", func() {
			c.start()
			for i := range ios {
				ios[i] = r.vol.Issue(read(uint32(10 * (i + 1))))
			}
			r.open(issued)
			for _, io := range ios {
				finals = append(finals, io.Wait())
			}
		})
		r.thread("unloader", func() {
			r.wait(issued)
			unload = r.fm.FltUnloadFilter(c.f)
		})
		require.NoError(t, r.run().Err, "%v", lock)
		assert.Equal(t, kernel.STATUS_SUCCESS, unload)
		for i, io := range ios {
			assert.Equal(t, kernel.STATUS_PENDING, io.Returned())
			assert.Equal(t, kernel.IO_STATUS_BLOCK{Status: kernel.STATUS_SUCCESS, Information: uint64(10 * (i + 1))}, finals[i])
		}
		assert.Equal(t, []string{"start", "complete"}, c.torndown)
		assert.True(t, c.f.Unregistered())
		assert.True(t, c.inst.Detached())
		assert.Empty(t, r.vol.Instances())
	}
}

// §5.5 item 4, §6.15: a filter that leaves its pended reads in the queue
// at teardown never gets InstanceTeardownComplete; the unload hangs and the
// kernel reports it when the run quiesces, naming what teardown waits for.
func TestTeardownHangsOnPendedOperation(t *testing.T) {
	r := newRig(t, rigOpts{})
	c := newCbdqFilter(r, mutexLocked)
	c.drainOnTeardown = false
	issued := r.gate("issued")
	r.thread("app", func() {
		c.start()
		r.vol.Issue(read(1))
		r.open(issued)
	})
	r.thread("unloader", func() {
		r.wait(issued)
		r.fm.FltUnloadFilter(c.f)
	})
	out := r.run()
	var d *kernel.Deadlock
	require.ErrorAs(t, out.Err, &d)
	assert.Contains(t, d.Error(), "unloader waits for event flt instance cancelsafe@C: teardown: pended operations")
	assert.Equal(t, []string{"start"}, c.torndown, "InstanceTeardownComplete is never called")
	// REFERENCE §5.12: the report names the operation and the filter holding it.
	assert.Contains(t, d.Pending, "cbd 1 (irp 1 (read)) is still pended by cancelsafe@C:'s pre-operation callback (FLT_PREOP_PENDING): "+
		"nothing called FltCompletePendedPreOperation for it (REFERENCE §1.4, §5.12)")
}

// REFERENCE §5.12: a post-op that returns FLT_POSTOP_MORE_PROCESSING_REQUIRED
// and never calls FltCompletePendedPostOperation leaves its issuer waiting;
// the hang report says which filter holds the operation.
func TestHangNamesPostOpHoldingOperation(t *testing.T) {
	r := newRig(t, rigOpts{})
	var seen []postSeen
	f := observingFilter(r, &seen, func(*fltmgr.FLT_CALLBACK_DATA, *fltmgr.FLT_RELATED_OBJECTS, any, fltmgr.FLT_POST_OPERATION_FLAGS) fltmgr.FLT_POSTOP_CALLBACK_STATUS {
		return fltmgr.FLT_POSTOP_MORE_PROCESSING_REQUIRED // and nothing ever completes it
	})
	r.thread("app", func() {
		r.fm.FltStartFiltering(f)
		r.vol.Issue(read(1)).Wait()
	})
	out := r.run()
	var d *kernel.Deadlock
	require.ErrorAs(t, out.Err, &d)
	assert.Contains(t, d.Error(), "app waits for event irp 1 (read) done")
	assert.Contains(t, d.Error(), fmt.Sprintf("cbd 1 (irp 1 (read)) is still held by %s's post-operation callback (FLT_POSTOP_MORE_PROCESSING_REQUIRED): "+
		"nothing called FltCompletePendedPostOperation for it", f.Instances()[0].Name()))
}

// §5.4, §5.5 item 3: an operation waiting below for its post-op when
// teardown starts gets its post-op early, with FLTFL_POST_OPERATION_DRAINING
// and a copy of the data, in the teardown thread; teardown does not wait
// for it, and the real completion later skips the drained post-op.
func TestTeardownDrainsPostOperations(t *testing.T) {
	r := newRig(t, rigOpts{})
	r.vol.Latency = 5 * des.Millisecond
	s := newSimpleFilter(r, "post", 100, true, func(_ *fltmgr.FLT_CALLBACK_DATA, ctx *any) fltmgr.FLT_PREOP_CALLBACK_STATUS {
		*ctx = "ctx"
		return fltmgr.FLT_PREOP_SUCCESS_WITH_CALLBACK
	})
	var io *fltmgr.IoOp
	var unloadedAt, completedAt des.Time
	issued := r.gate("issued")
	r.thread("app", func() {
		r.fm.FltStartFiltering(s.f)
		r.open(issued)
		io = r.vol.Issue(read(64))
		completedAt = r.k.Now()
	})
	r.thread("unloader", func() {
		r.wait(issued)
		r.k.KeDelayExecutionThread(des.Millisecond)
		require.Equal(t, kernel.STATUS_SUCCESS, r.fm.FltUnloadFilter(s.f))
		unloadedAt = r.k.Now()
	})
	require.NoError(t, r.run().Err)
	require.Len(t, s.posts, 1, "the post-op runs once: drained, not again at completion")
	p := s.posts[0]
	assert.Equal(t, fltmgr.FLTFL_POST_OPERATION_DRAINING, p.flags)
	assert.Equal(t, "unloader", p.thread)
	assert.Equal(t, "ctx", p.ctx)
	assert.NotSame(t, io.Data(), p.data, "draining gets a copy of the callback data")
	assert.Less(t, unloadedAt, completedAt, "teardown did not wait for the I/O below")
	assert.Equal(t, kernel.IO_STATUS_BLOCK{Status: kernel.STATUS_SUCCESS, Information: 64}, io.IoStatus())
	assert.Equal(t, 1, r.fm.Hits(fltmgr.MarkPostDrained))
}

// §5.5 item 2: once teardown has started, new operations no longer reach
// the instance's callbacks (operations already started still may).
func TestNewOperationsSkipTearingDownInstance(t *testing.T) {
	r := newRig(t, rigOpts{})
	c := newCbdqFilter(r, spinLocked)
	issued, started, done := r.gate("issued"), r.gate("teardown started"), r.gate("second read done")
	c.onTeardownStart = func() {
		r.open(started)
		r.wait(done)
	}
	var first *fltmgr.IoOp
	var second kernel.IO_STATUS_BLOCK
	r.thread("app", func() {
		c.start()
		first = r.vol.Issue(read(1)) // pended in the queue
		r.open(issued)
		r.wait(started)
		second = r.vol.Send(read(2))
		r.open(done)
		first.Wait()
	})
	r.thread("unloader", func() {
		r.wait(issued)
		r.fm.FltUnloadFilter(c.f)
	})
	require.NoError(t, r.run().Err)
	assert.Len(t, c.inserts, 1, "only the first read reached the pre-op")
	assert.Equal(t, kernel.STATUS_SUCCESS, second.Status)
	assert.Equal(t, kernel.STATUS_SUCCESS, first.IoStatus().Status, "drained at teardown and passed down")
}

// §5.5 item 1: a manual detach asks InstanceQueryTeardown, which may veto
// it; a filter without that callback cannot be detached manually; a
// detach that goes ahead tears down with reason MANUAL.
func TestDetachVolume(t *testing.T) {
	cases := []struct {
		name   string
		query  fltmgr.PFLT_INSTANCE_QUERY_TEARDOWN_CALLBACK
		want   kernel.NTSTATUS
		reason fltmgr.FLT_INSTANCE_TEARDOWN_FLAGS
	}{
		{"no query callback", nil, kernel.STATUS_FLT_DO_NOT_DETACH, 0},
		{"query vetoes", func(*fltmgr.FLT_RELATED_OBJECTS, fltmgr.FLT_INSTANCE_QUERY_TEARDOWN_FLAGS) kernel.NTSTATUS {
			return kernel.STATUS_FLT_DO_NOT_DETACH
		}, kernel.STATUS_FLT_DO_NOT_DETACH, 0},
		{"query agrees", func(*fltmgr.FLT_RELATED_OBJECTS, fltmgr.FLT_INSTANCE_QUERY_TEARDOWN_FLAGS) kernel.NTSTATUS {
			return kernel.STATUS_SUCCESS
		}, kernel.STATUS_SUCCESS, fltmgr.FLTFL_INSTANCE_TEARDOWN_MANUAL},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, rigOpts{})
			var reasons []fltmgr.FLT_INSTANCE_TEARDOWN_FLAGS
			record := func(_ *fltmgr.FLT_RELATED_OBJECTS, reason fltmgr.FLT_INSTANCE_TEARDOWN_FLAGS) {
				reasons = append(reasons, reason)
			}
			f := r.register("f", 100, &fltmgr.FLT_REGISTRATION{InstanceQueryTeardownCallback: tc.query,
				InstanceTeardownStartCallback: record, InstanceTeardownCompleteCallback: record})
			var st kernel.NTSTATUS
			r.thread("admin", func() {
				r.fm.FltStartFiltering(f)
				st = r.fm.FltDetachVolume(f, r.vol)
			})
			require.NoError(t, r.run().Err)
			assert.Equal(t, tc.want, st)
			if tc.want == kernel.STATUS_SUCCESS {
				assert.Equal(t, []fltmgr.FLT_INSTANCE_TEARDOWN_FLAGS{tc.reason, tc.reason}, reasons)
				assert.Empty(t, f.Instances())
			} else {
				assert.Empty(t, reasons)
				assert.Len(t, f.Instances(), 1)
			}
		})
	}
}

// §5.5 item 7: a non-mandatory unload can be refused by the unload
// callback; a mandatory one (service stop) cannot, and tears down with
// MANDATORY_FILTER_UNLOAD; no unload callback, or a filter that does not
// support service stop, cannot be unloaded that way.
func TestUnloadRequests(t *testing.T) {
	cases := []struct {
		name      string
		flags     uint32
		noUnload  bool
		refuse    bool
		mandatory bool
		want      kernel.NTSTATUS
		reason    fltmgr.FLT_INSTANCE_TEARDOWN_FLAGS // 0: not unloaded
	}{
		{"unload", 0, false, false, false, kernel.STATUS_SUCCESS, fltmgr.FLTFL_INSTANCE_TEARDOWN_FILTER_UNLOAD},
		{"unload refused", 0, false, true, false, kernel.STATUS_FLT_DO_NOT_DETACH, 0},
		{"no unload callback", 0, true, false, false, kernel.STATUS_FLT_DO_NOT_DETACH, 0},
		{"service stop", 0, false, false, true, kernel.STATUS_SUCCESS,
			fltmgr.FLTFL_INSTANCE_TEARDOWN_FILTER_UNLOAD | fltmgr.FLTFL_INSTANCE_TEARDOWN_MANDATORY_FILTER_UNLOAD},
		{"service stop not supported", fltmgr.FLTFL_REGISTRATION_DO_NOT_SUPPORT_SERVICE_STOP, false, false, true, kernel.STATUS_FLT_DO_NOT_DETACH, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, rigOpts{})
			var f *fltmgr.FLT_FILTER
			var reasons []fltmgr.FLT_INSTANCE_TEARDOWN_FLAGS
			var gotFlags []fltmgr.FLT_FILTER_UNLOAD_FLAGS
			reg := &fltmgr.FLT_REGISTRATION{Flags: tc.flags,
				InstanceTeardownStartCallback: func(_ *fltmgr.FLT_RELATED_OBJECTS, reason fltmgr.FLT_INSTANCE_TEARDOWN_FLAGS) {
					reasons = append(reasons, reason)
				}}
			if !tc.noUnload {
				reg.FilterUnloadCallback = func(flags fltmgr.FLT_FILTER_UNLOAD_FLAGS) kernel.NTSTATUS {
					gotFlags = append(gotFlags, flags)
					if tc.refuse {
						return kernel.STATUS_FLT_DO_NOT_DETACH
					}
					r.fm.FltUnregisterFilter(f)
					return kernel.STATUS_SUCCESS
				}
			}
			f = r.register("f", 100, reg)
			var st kernel.NTSTATUS
			r.thread("admin", func() {
				r.fm.FltStartFiltering(f)
				if tc.mandatory {
					st = r.fm.ServiceStop(f)
				} else {
					st = r.fm.FltUnloadFilter(f)
				}
			})
			require.NoError(t, r.run().Err)
			assert.Equal(t, tc.want, st)
			assert.Equal(t, tc.reason != 0, f.Unregistered())
			if tc.reason != 0 {
				assert.Equal(t, []fltmgr.FLT_INSTANCE_TEARDOWN_FLAGS{tc.reason}, reasons)
				wantFlags := fltmgr.FLT_FILTER_UNLOAD_FLAGS(0)
				if tc.mandatory {
					wantFlags = fltmgr.FLTFL_FILTER_UNLOAD_MANDATORY
				}
				assert.Equal(t, []fltmgr.FLT_FILTER_UNLOAD_FLAGS{wantFlags}, gotFlags)
			}
		})
	}
}

// §5.5 item 1: a volume dismount tears every instance down with reason
// VOLUME_DISMOUNT; a volume mounted later gets new instances.
func TestDismountAndMount(t *testing.T) {
	r := newRig(t, rigOpts{})
	var reasons []fltmgr.FLT_INSTANCE_TEARDOWN_FLAGS
	var setups []fltmgr.FLT_INSTANCE_SETUP_FLAGS
	f := r.register("f", 100, &fltmgr.FLT_REGISTRATION{
		InstanceSetupCallback: func(_ *fltmgr.FLT_RELATED_OBJECTS, flags fltmgr.FLT_INSTANCE_SETUP_FLAGS) kernel.NTSTATUS {
			setups = append(setups, flags)
			return kernel.STATUS_SUCCESS
		},
		InstanceTeardownStartCallback: func(_ *fltmgr.FLT_RELATED_OBJECTS, reason fltmgr.FLT_INSTANCE_TEARDOWN_FLAGS) {
			reasons = append(reasons, reason)
		}})
	var d *fltmgr.FLT_VOLUME
	r.thread("admin", func() {
		r.fm.FltStartFiltering(f)
		r.fm.DismountVolume(r.vol)
		d = r.fm.MountVolume("D:")
	})
	require.NoError(t, r.run().Err)
	assert.Equal(t, []fltmgr.FLT_INSTANCE_TEARDOWN_FLAGS{fltmgr.FLTFL_INSTANCE_TEARDOWN_VOLUME_DISMOUNT}, reasons)
	assert.Equal(t, []fltmgr.FLT_INSTANCE_SETUP_FLAGS{fltmgr.FLTFL_INSTANCE_SETUP_AUTOMATIC_ATTACHMENT,
		fltmgr.FLTFL_INSTANCE_SETUP_AUTOMATIC_ATTACHMENT | fltmgr.FLTFL_INSTANCE_SETUP_NEWLY_MOUNTED_VOLUME}, setups)
	require.Len(t, f.Instances(), 1)
	assert.Same(t, d, f.Instances()[0].Volume())
}

// §5.5: FltAttachVolume before FltStartFiltering is
// STATUS_FLT_FILTER_NOT_READY (0xC01C0008); after it, an InstanceSetup
// that refuses automatic attachment still accepts a manual one; while the
// filter unregisters, attaching is STATUS_FLT_DELETING_OBJECT.
func TestAttachVolume(t *testing.T) {
	r := newRig(t, rigOpts{})
	var f *fltmgr.FLT_FILTER
	var setups []fltmgr.FLT_INSTANCE_SETUP_FLAGS
	var before, after, during kernel.NTSTATUS
	var inst *fltmgr.FLT_INSTANCE
	f = r.register("manual", 100, &fltmgr.FLT_REGISTRATION{
		InstanceSetupCallback: func(_ *fltmgr.FLT_RELATED_OBJECTS, flags fltmgr.FLT_INSTANCE_SETUP_FLAGS) kernel.NTSTATUS {
			setups = append(setups, flags)
			if flags&fltmgr.FLTFL_INSTANCE_SETUP_AUTOMATIC_ATTACHMENT != 0 {
				return kernel.STATUS_FLT_DO_NOT_ATTACH
			}
			return kernel.STATUS_SUCCESS
		},
		FilterUnloadCallback: func(fltmgr.FLT_FILTER_UNLOAD_FLAGS) kernel.NTSTATUS {
			r.fm.FltUnregisterFilter(f)
			return kernel.STATUS_SUCCESS
		},
		InstanceTeardownStartCallback: func(*fltmgr.FLT_RELATED_OBJECTS, fltmgr.FLT_INSTANCE_TEARDOWN_FLAGS) {
			_, during = r.fm.FltAttachVolume(f, r.vol)
		},
	})
	r.thread("admin", func() {
		_, before = r.fm.FltAttachVolume(f, r.vol)
		r.fm.FltStartFiltering(f)
		inst, after = r.fm.FltAttachVolume(f, r.vol)
		r.fm.FltUnloadFilter(f)
	})
	require.NoError(t, r.run().Err)
	assert.Equal(t, kernel.STATUS_FLT_FILTER_NOT_READY, before)
	assert.Equal(t, kernel.NTSTATUS(0xC01C0008), before)
	assert.Equal(t, kernel.STATUS_SUCCESS, after)
	require.NotNil(t, inst)
	assert.Same(t, r.vol, inst.Volume())
	assert.Equal(t, []fltmgr.FLT_INSTANCE_SETUP_FLAGS{fltmgr.FLTFL_INSTANCE_SETUP_AUTOMATIC_ATTACHMENT, fltmgr.FLTFL_INSTANCE_SETUP_MANUAL_ATTACHMENT}, setups)
	assert.Equal(t, kernel.STATUS_FLT_DELETING_OBJECT, during)
	assert.True(t, f.Unregistered())
}

// REFERENCE §5.11: a minifilter is a driver: the DPCs and threads its code
// creates (here in InstanceSetup) belong to its image, which is unmapped
// once the unload has unregistered the filter. A periodic timer's DPC left
// armed by the teardown runs in the unloaded image (0xCE, naming the
// filter's teardown callbacks); so does a thread still running. Cancelling
// the timer and flushing DPCs (and waiting on the thread) in
// InstanceTeardownStart is clean, and the file system's own completion
// DPCs, created while the filter's code sends an operation down, are not
// the filter's.
func TestFilterImageUnloadedAfterUnregister(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stop   bool // cancel, flush and join in InstanceTeardownStart
		thread bool // a thread instead of a timer DPC
		want   string
	}{
		{name: "timer left armed", want: "DPC refill of driver throttle runs after the image was unloaded"},
		{name: "thread left running", thread: true, want: "thread poller of driver throttle returns into its code after the image was unloaded"},
		{name: "timer stopped", stop: true},
		{name: "thread stopped", stop: true, thread: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, rigOpts{chooser: fsChooser(queues.CompleteFromDpc)})
			var timer *kernel.KTIMER
			var poller *kernel.Thread
			stop := r.k.NewCell("stop", 0)
			reg := &fltmgr.FLT_REGISTRATION{
				InstanceSetupCallback: func(*fltmgr.FLT_RELATED_OBJECTS, fltmgr.FLT_INSTANCE_SETUP_FLAGS) kernel.NTSTATUS {
					if tc.thread {
						poller = r.k.PsCreateSystemThread("poller", 8, func() {
							for r.k.Read(stop) == 0 {
								r.k.KeDelayExecutionThread(10 * des.Microsecond)
							}
						})
						return kernel.STATUS_SUCCESS
					}
					timer = r.k.KeInitializeTimerEx("refill", kernel.NotificationEvent)
					r.k.KeSetTimerEx(timer, 10*des.Microsecond, 10*des.Microsecond, r.k.KeInitializeDpc("refill", func(*kernel.KDPC, any, any, any) {}, nil))
					return kernel.STATUS_SUCCESS
				},
				InstanceTeardownStartCallback: func(*fltmgr.FLT_RELATED_OBJECTS, fltmgr.FLT_INSTANCE_TEARDOWN_FLAGS) {
					if !tc.stop {
						return
					}
					if tc.thread {
						r.k.Write(stop, 1)
						r.k.KeWaitForSingleObject(poller.Object(), kernel.Infinite)
						return
					}
					r.k.KeCancelTimer(timer)
					r.k.KeFlushQueuedDpcs()
				},
				OperationRegistration: []fltmgr.FLT_OPERATION_REGISTRATION{{MajorFunction: fltmgr.IRP_MJ_READ,
					PreOperation: func(*fltmgr.FLT_CALLBACK_DATA, *fltmgr.FLT_RELATED_OBJECTS, *any) fltmgr.FLT_PREOP_CALLBACK_STATUS {
						return fltmgr.FLT_PREOP_SUCCESS_NO_CALLBACK
					}}},
			}
			var f *fltmgr.FLT_FILTER
			reg.FilterUnloadCallback = func(fltmgr.FLT_FILTER_UNLOAD_FLAGS) kernel.NTSTATUS {
				r.fm.FltUnregisterFilter(f)
				return kernel.STATUS_SUCCESS
			}
			f = r.register("throttle", 100, reg)
			r.thread("app", func() {
				r.fm.FltStartFiltering(f)
				r.vol.Issue(read(512)).Wait() // the file system completes it from its own DPC
				require.Equal(t, kernel.STATUS_SUCCESS, r.fm.FltUnloadFilter(f))
				r.k.KeDelayExecutionThread(100 * des.Microsecond)
			})
			out := r.run()
			if tc.want == "" {
				require.NoError(t, out.Err)
				return
			}
			bc := requireBugCheck(t, out, kernel.DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS, out.Err.(*kernel.BugCheck).Params[0])
			assert.Contains(t, bc.Error(), tc.want)
			assert.Contains(t, bc.Error(), "InstanceTeardownStart")
		})
	}
}

// REFERENCE §5.11: a filter registered from a driver's DriverEntry (a
// driver loaded with LoadDriver) is that driver's code: the filter manager
// does not unmap the image at the filter's unload, the driver's own unload
// does, and a timer DPC the filter left armed runs in it until then.
func TestFilterRegisteredByDriverUsesItsImage(t *testing.T) {
	r := newRig(t, rigOpts{})
	var f *fltmgr.FLT_FILTER
	reg := &fltmgr.FLT_REGISTRATION{
		InstanceSetupCallback: func(*fltmgr.FLT_RELATED_OBJECTS, fltmgr.FLT_INSTANCE_SETUP_FLAGS) kernel.NTSTATUS {
			timer := r.k.KeInitializeTimerEx("tick", kernel.NotificationEvent)
			r.k.KeSetTimerEx(timer, 10*des.Microsecond, 10*des.Microsecond, r.k.KeInitializeDpc("tick", func(*kernel.KDPC, any, any, any) {}, nil))
			return kernel.STATUS_SUCCESS
		},
		FilterUnloadCallback: func(fltmgr.FLT_FILTER_UNLOAD_FLAGS) kernel.NTSTATUS {
			r.fm.FltUnregisterFilter(f)
			return kernel.STATUS_SUCCESS
		},
	}
	var drv *queues.DRIVER_OBJECT
	r.thread("scm", func() {
		drv, _ = r.sys.LoadDriver("ticker", func(d *queues.DRIVER_OBJECT) kernel.NTSTATUS {
			d.DriverUnload = func(*queues.DRIVER_OBJECT) {}
			f = r.register("ticker", 100, reg)
			return kernel.STATUS_SUCCESS
		})
		r.fm.FltStartFiltering(f)
		require.Equal(t, kernel.STATUS_SUCCESS, r.fm.FltUnloadFilter(f))
		r.k.KeDelayExecutionThread(50 * des.Microsecond) // the driver is still loaded: its DPC may run
		require.True(t, drv.Image().Loaded())
		r.sys.UnloadDriver(drv)
		r.k.KeDelayExecutionThread(50 * des.Microsecond)
	})
	out := r.run()
	bc := requireBugCheck(t, out, kernel.DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS, out.Err.(*kernel.BugCheck).Params[0])
	assert.Contains(t, bc.Error(), "DPC tick of driver ticker runs after the image was unloaded: DriverUnload must")
}

// REFERENCE §5.11: an executive work item a minifilter queues from its own
// code (ExQueueWorkItem, not FltQueueGenericWorkItem) holds nothing of the
// filter: the unload does not wait for it, and a routine still running (or
// not yet called) when the filter's image is unmapped is 0xCE. The filter
// manager's own items (a generic work item's wrapper) are not the filter's.
func TestFilterExWorkItemAfterUnload(t *testing.T) {
	for _, generic := range []bool{false, true} {
		r := newRig(t, rigOpts{})
		var f *fltmgr.FLT_FILTER
		var item queues.WORK_QUEUE_ITEM
		routine := func() { r.k.KeDelayExecutionThread(200 * des.Microsecond) } // logs the read
		s := newSimpleFilter(r, "auditor", 100, false, func(*fltmgr.FLT_CALLBACK_DATA, *any) fltmgr.FLT_PREOP_CALLBACK_STATUS {
			if generic {
				w := r.fm.FltAllocateGenericWorkItem()
				r.fm.FltQueueGenericWorkItem(w, f, func(w *fltmgr.FLT_GENERIC_WORKITEM, _ fltmgr.FltObject, _ any) {
					routine()
					r.fm.FltFreeGenericWorkItem(w)
				}, queues.DelayedWorkQueue, nil)
			} else {
				queues.ExInitializeWorkItem(&item, func(any) { routine() }, nil)
				r.sys.ExQueueWorkItem(&item, queues.DelayedWorkQueue)
			}
			return fltmgr.FLT_PREOP_SUCCESS_NO_CALLBACK
		})
		f = s.f
		r.thread("app", func() {
			r.fm.FltStartFiltering(f)
			r.vol.Issue(read(1)).Wait()
			require.Equal(t, kernel.STATUS_SUCCESS, r.fm.FltUnloadFilter(f))
		})
		out := r.run()
		if generic {
			require.NoError(t, out.Err, "FltUnregisterFilter waits for the generic work item")
			continue
		}
		bc := requireBugCheck(t, out, kernel.DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS, out.Err.(*kernel.BugCheck).Params[0])
		assert.Contains(t, bc.Error(), "after minifilter auditor's image was unloaded")
		assert.Contains(t, bc.Error(), "FltQueueGenericWorkItem")
	}
}
