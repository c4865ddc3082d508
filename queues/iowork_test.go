package queues_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
	"github.com/wqsim/wqsim/queues"
)

// The bug checks of the I/O work-item routines (REFERENCE §1.2, §6.6, §6.7).
func TestIoWorkItemBugChecks(t *testing.T) {
	nop := func(*queues.DEVICE_OBJECT, any) {}
	cases := []struct {
		name    string
		section string
		body    func(r *wiRig, dev *queues.DEVICE_OBJECT)
		code    uint32
		p1      uint64
	}{
		{"free while queued", "§1.2, §6.7: 0xE4 P1=2", func(r *wiRig, dev *queues.DEVICE_OBJECT) {
			iw := r.sys.IoAllocateWorkItem(dev)
			r.sys.IoQueueWorkItem(iw, nop, queues.DelayedWorkQueue, nil)
			r.sys.IoFreeWorkItem(iw)
		}, kernel.WORKER_INVALID, 2},
		{"queue twice", "§1.2, §6.6: 0xE4 P1=1", func(r *wiRig, dev *queues.DEVICE_OBJECT) {
			iw := r.sys.IoAllocateWorkItem(dev)
			r.sys.IoQueueWorkItem(iw, nop, queues.DelayedWorkQueue, nil)
			r.sys.IoQueueWorkItem(iw, nop, queues.DelayedWorkQueue, nil)
		}, kernel.WORKER_INVALID, 1},
		{"free twice", "§1.8: pool double free 0xC2 P1=7", func(r *wiRig, dev *queues.DEVICE_OBJECT) {
			iw := r.sys.IoAllocateWorkItem(dev)
			r.sys.IoFreeWorkItem(iw)
			r.sys.IoFreeWorkItem(iw)
		}, kernel.BAD_POOL_CALLER, 7},
		{"queue after free", "§6.7: use after free 0xD5", func(r *wiRig, dev *queues.DEVICE_OBJECT) {
			iw := r.sys.IoAllocateWorkItem(dev)
			r.sys.IoFreeWorkItem(iw)
			r.sys.IoQueueWorkItem(iw, nop, queues.DelayedWorkQueue, nil)
		}, kernel.DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL, wiAnyP1},
		{"uninitialise while queued", "§1.2: 0xE4 P1=2", func(r *wiRig, dev *queues.DEVICE_OBJECT) {
			iw := &queues.IO_WORKITEM{}
			r.sys.IoInitializeWorkItem(dev, iw)
			r.sys.IoQueueWorkItem(iw, nop, queues.DelayedWorkQueue, nil)
			r.sys.IoUninitializeWorkItem(iw)
		}, kernel.WORKER_INVALID, 2},
		{"initialise with no object", "§1.2: 0xE4 P1=3", func(r *wiRig, _ *queues.DEVICE_OBJECT) {
			r.sys.IoInitializeWorkItem(nil, &queues.IO_WORKITEM{})
		}, kernel.WORKER_INVALID, 3},
		{"initialise with a nil device", "§1.2: 0xE4 P1=3", func(r *wiRig, _ *queues.DEVICE_OBJECT) {
			var dev *queues.DEVICE_OBJECT
			r.sys.IoInitializeWorkItem(dev, &queues.IO_WORKITEM{})
		}, kernel.WORKER_INVALID, 3},
		{"allocate with no device", "§1.2: 0xE4 P1=3", func(r *wiRig, _ *queues.DEVICE_OBJECT) {
			r.sys.IoAllocateWorkItem(nil)
		}, kernel.WORKER_INVALID, 3},
		{"queue with no routine", "§1.1: 0xE4 P1=7", func(r *wiRig, dev *queues.DEVICE_OBJECT) {
			r.sys.IoQueueWorkItem(r.sys.IoAllocateWorkItem(dev), nil, queues.DelayedWorkQueue, nil)
		}, kernel.WORKER_INVALID, 7},
		{"queue an uninitialised item", "§1.2: 0xE4 P1=7", func(r *wiRig, _ *queues.DEVICE_OBJECT) {
			r.sys.IoQueueWorkItem(&queues.IO_WORKITEM{}, nop, queues.DelayedWorkQueue, nil)
		}, kernel.WORKER_INVALID, 7},
		{"routine returns at DISPATCH", "§1.1, §6.12: 0xE1", func(r *wiRig, dev *queues.DEVICE_OBJECT) {
			r.sys.IoQueueWorkItem(r.sys.IoAllocateWorkItem(dev), func(*queues.DEVICE_OBJECT, any) {
				r.k.KeRaiseIrql(kernel.DISPATCH_LEVEL)
			}, queues.DelayedWorkQueue, nil)
		}, kernel.WORKER_THREAD_RETURNED_AT_BAD_IRQL, wiAnyP1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newWIRig(t, wiCPUs(1), queues.DefaultPoolConfig())
			r.driver(20, func() {
				_, dev := wiLoad(r, "io", nil)
				tc.body(r, dev)
			})
			bc := wiRequireBugCheck(t, r.run(t), tc.code, tc.p1)
			assert.NotEmpty(t, bc.Detail, tc.section)
		})
	}
}

// REFERENCE §1.2, §3.4: 0xE1 from an I/O routine names the driver's
// routine and context, not the I/O manager's wrapper.
func TestIoBadIrqlNamesDriverRoutine(t *testing.T) {
	r := newWIRig(t, wiCPUs(1), queues.DefaultPoolConfig())
	r.driver(8, func() {
		_, dev := wiLoad(r, "io", nil)
		r.sys.IoQueueWorkItem(r.sys.IoAllocateWorkItem(dev), func(*queues.DEVICE_OBJECT, any) {
			r.k.KeRaiseIrql(kernel.DISPATCH_LEVEL)
		}, queues.DelayedWorkQueue, 5)
	})
	bc := wiRequireBugCheck(t, r.run(t), kernel.WORKER_THREAD_RETURNED_AT_BAD_IRQL, wiAnyP1)
	assert.Contains(t, bc.Detail, "TestIoBadIrqlNamesDriverRoutine")
	assert.EqualValues(t, 5, bc.Params[2])
}

// DDI:IoQueueWorkItem: drivers must pass DelayedWorkQueue; anything else is
// a contract violation (Windows does not check it).
func TestIoQueueWorkItemContract(t *testing.T) {
	for _, ex := range []bool{false, true} {
		r := newWIRig(t, wiCPUs(1), queues.DefaultPoolConfig())
		r.driver(8, func() {
			_, dev := wiLoad(r, "io", nil)
			iw := r.sys.IoAllocateWorkItem(dev)
			if ex {
				r.sys.IoQueueWorkItemEx(iw, func(queues.IoObject, any, *queues.IO_WORKITEM) {}, queues.CriticalWorkQueue, nil)
			} else {
				r.sys.IoQueueWorkItem(iw, func(*queues.DEVICE_OBJECT, any) {}, queues.CriticalWorkQueue, nil)
			}
		})
		var cv *queues.ContractViolation
		require.ErrorAs(t, r.run(t).Err, &cv)
		assert.Contains(t, cv.Error(), "drivers must specify DelayedWorkQueue")
	}
}

// DDI:IoQueueWorkItemEx, DDI:IoInitializeWorkItem: an item tied to a driver
// object goes through IoQueueWorkItemEx, whose routine gets the object and
// the item; IoQueueWorkItem on it is a contract violation.
func TestIoWorkItemOnDriverObject(t *testing.T) {
	r := newWIRig(t, wiCPUs(1), queues.DefaultPoolConfig())
	var got queues.IoObject
	var drv *queues.DRIVER_OBJECT
	r.driver(8, func() {
		drv, _ = wiLoad(r, "io", nil)
		iw := &queues.IO_WORKITEM{}
		r.sys.IoInitializeWorkItem(drv, iw)
		r.sys.IoQueueWorkItemEx(iw, func(obj queues.IoObject, _ any, item *queues.IO_WORKITEM) {
			got = obj
			assert.Same(t, iw, item)
			r.sys.IoUninitializeWorkItem(item) // legal from the routine
		}, queues.DelayedWorkQueue, nil)
	})
	require.NoError(t, r.run(t).Err)
	assert.Same(t, drv, got)

	r = newWIRig(t, wiCPUs(1), queues.DefaultPoolConfig())
	r.driver(8, func() {
		d, _ := wiLoad(r, "io", nil)
		iw := &queues.IO_WORKITEM{}
		r.sys.IoInitializeWorkItem(d, iw)
		r.sys.IoQueueWorkItem(iw, func(*queues.DEVICE_OBJECT, any) {}, queues.DelayedWorkQueue, nil)
	})
	var cv *queues.ContractViolation
	require.ErrorAs(t, r.run(t).Err, &cv)
	assert.Equal(t, "IoQueueWorkItem", cv.API)
}

// DDI:IoAllocateWorkItem, DDI:IoInitializeWorkItem: the two ways of getting
// an item are not to be mixed.
func TestIoAllocateAndInitializeDoNotMix(t *testing.T) {
	for _, mix := range []string{"initialize allocated", "free initialized"} {
		r := newWIRig(t, wiCPUs(1), queues.DefaultPoolConfig())
		r.driver(8, func() {
			_, dev := wiLoad(r, "io", nil)
			if mix == "initialize allocated" {
				r.sys.IoInitializeWorkItem(dev, r.sys.IoAllocateWorkItem(dev))
			} else {
				iw := &queues.IO_WORKITEM{}
				r.sys.IoInitializeWorkItem(dev, iw)
				r.sys.IoFreeWorkItem(iw)
			}
		})
		var cv *queues.ContractViolation
		require.ErrorAs(t, r.run(t).Err, &cv, mix)
	}
}

// REFERENCE §1.2: IoAllocateWorkItem returns NULL when the pool is short;
// with InjectAllocFailures that is the kernel's decision.
func TestIoAllocateWorkItemCanFail(t *testing.T) {
	kcfg := wiCPUs(1)
	kcfg.InjectAllocFailures = true
	fail := des.NewReplay([]des.Decision{{Kind: kernel.PointAllocFail, N: 2, Choice: 1}})
	r := newWIRigOpts(t, kcfg, queues.DefaultPoolConfig(), wiOpts{chooser: fail})
	var iw *queues.IO_WORKITEM
	r.driver(8, func() {
		_, dev := wiLoad(r, "io", nil)
		iw = r.sys.IoAllocateWorkItem(dev)
	})
	require.NoError(t, r.run(t).Err)
	assert.Nil(t, iw)
}

// REFERENCE §1.2, §6.20: an item from IoAllocateWorkItem never freed is a
// leak at the end of the run, named with its device.
func TestIoWorkItemLeak(t *testing.T) {
	r := newWIRig(t, wiCPUs(1), queues.DefaultPoolConfig())
	r.driver(8, func() {
		_, dev := wiLoad(r, "leaky", nil)
		iw := r.sys.IoAllocateWorkItem(dev)
		r.sys.IoQueueWorkItem(iw, func(*queues.DEVICE_OBJECT, any) {}, queues.DelayedWorkQueue, nil)
	})
	var leak *kernel.Leak
	require.ErrorAs(t, r.run(t).Err, &leak)
	assert.Contains(t, leak.Error(), "for device leaky0 never freed: IoAllocateWorkItem without IoFreeWorkItem")
	assert.Contains(t, leak.Error(), `tag "IoWk"`, "the pool block is reported too")
	assert.Contains(t, leak.Error(), `never freed: IO_WORKITEM allocated by IoAllocateWorkItem in`, "naming its routine")
	assert.Contains(t, leak.Error(), `for device leaky0, without IoFreeWorkItem`)
}

// REFERENCE §1.2: caller storage set up by IoInitializeWorkItem must be
// uninitialised before it is freed.
func TestIoInitializedStorageFreedWithoutUninitialize(t *testing.T) {
	r := newWIRig(t, wiCPUs(1), queues.DefaultPoolConfig())
	r.driver(8, func() {
		_, dev := wiLoad(r, "io", nil)
		b := r.k.ExAllocatePoolWithTag(kernel.NonPagedPool, queues.IoSizeofWorkItem(), "IoSt")
		iw := &queues.IO_WORKITEM{Block: b}
		r.sys.IoInitializeWorkItem(dev, iw)
		r.k.ExFreePoolWithTag(b, "IoSt")
	})
	var leak *kernel.Leak
	require.ErrorAs(t, r.run(t).Err, &leak)
	assert.Contains(t, leak.Error(), "freed without IoUninitializeWorkItem")
}

// REFERENCE §1.2: the full life of both kinds of item, requeued from the
// routine, ends clean.
func TestIoWorkItemLifecycle(t *testing.T) {
	r := newWIRig(t, wiCPUs(2), queues.DefaultPoolConfig())
	runs, stRuns := 0, 0
	r.driver(8, func() {
		drv, dev := wiLoad(r, "io", nil)
		iw := r.sys.IoAllocateWorkItem(dev)
		var routine queues.IO_WORKITEM_ROUTINE
		routine = func(d *queues.DEVICE_OBJECT, ctx any) {
			runs++
			assert.Same(t, dev, d)
			assert.Equal(t, "ctx", ctx)
			if runs < 3 {
				r.sys.IoQueueWorkItem(iw, routine, queues.DelayedWorkQueue, ctx)
			} else {
				r.sys.IoFreeWorkItem(iw)
			}
		}
		r.sys.IoQueueWorkItem(iw, routine, queues.DelayedWorkQueue, "ctx")
		st := &queues.IO_WORKITEM{}
		r.sys.IoInitializeWorkItem(dev, st)
		r.sys.IoQueueWorkItem(st, func(*queues.DEVICE_OBJECT, any) { stRuns++ }, queues.DelayedWorkQueue, nil)
		r.k.KeDelayExecutionThread(des.Millisecond)
		r.sys.IoUninitializeWorkItem(st)
		assert.Equal(t, kernel.STATUS_SUCCESS, r.sys.UnloadDriver(drv))
		assert.False(t, drv.ImageLoaded())
	})
	require.NoError(t, r.run(t).Err)
	assert.Equal(t, 3, runs)
	assert.Equal(t, 1, stRuns)
	assert.Equal(t, 0x58, queues.IoSizeofWorkItem())
}

// DDI:IoTryQueueWorkItem (REFERENCE §1.2): the item is queued only when a
// worker of the queue is free to take it at once; otherwise nothing is
// queued and the caller keeps the item.
func TestIoTryQueueWorkItemNeedsAFreeWorker(t *testing.T) {
	r := newWIRig(t, wiCPUs(1), wiPool(queues.Fixed()))
	var tried []bool
	ran := 0
	r.driver(8, func() {
		_, dev := wiLoad(r, "try", nil)
		gate := r.k.KeInitializeEvent("gate", kernel.NotificationEvent, false)
		hold := func(_ queues.IoObject, _ any, iw *queues.IO_WORKITEM) {
			r.k.KeWaitForSingleObject(gate, kernel.Infinite)
			ran++
			r.sys.IoFreeWorkItem(iw)
		}
		items := make([]*queues.IO_WORKITEM, 4)
		for i := range items {
			items[i] = r.sys.IoAllocateWorkItem(dev)
		}
		for _, iw := range items { // three delayed workers: the fourth finds none free
			tried = append(tried, r.sys.IoTryQueueWorkItem(iw, hold, queues.DelayedWorkQueue, nil))
		}
		assert.Equal(t, 0, r.sys.Queue(queues.DelayedWorkQueue).Depth, "the refused item was not queued")
		r.k.KeSetEvent(gate, 0, false)
		r.k.Compute(100 * des.Microsecond) // the workers finish and wait again
		tried = append(tried, r.sys.IoTryQueueWorkItem(items[3], hold, queues.DelayedWorkQueue, nil))
	})
	require.NoError(t, r.run(t).Err)
	assert.Equal(t, []bool{true, true, true, false, true}, tried)
	assert.Equal(t, 4, ran, "every accepted item ran once; the refused one only when tried again")
}

// REFERENCE §3.5: caller storage released with IoUninitializeWorkItem is no
// longer an I/O work item; IoQueueWorkItem[Ex] takes only an item
// "allocated by IoAllocateWorkItem or initialized by IoInitializeWorkItem"
// (DDI:IoQueueWorkItemEx), so queueing it again without a new
// IoInitializeWorkItem is a contract violation, while initialising it
// again first is legal.
func TestQueueAfterUninitializeNeedsInitialize(t *testing.T) {
	for _, reinit := range []bool{false, true} {
		r := newWIRig(t, wiCPUs(1), queues.DefaultPoolConfig())
		ran := 0
		r.driver(8, func() {
			_, dev := wiLoad(r, "io", nil)
			iw := &queues.IO_WORKITEM{}
			routine := func(_ queues.IoObject, _ any, item *queues.IO_WORKITEM) {
				ran++
				r.sys.IoUninitializeWorkItem(item)
			}
			r.sys.IoInitializeWorkItem(dev, iw)
			r.sys.IoQueueWorkItemEx(iw, routine, queues.DelayedWorkQueue, nil)
			r.k.KeDelayExecutionThread(100 * des.Microsecond)
			if reinit {
				r.sys.IoInitializeWorkItem(dev, iw)
			}
			r.sys.IoQueueWorkItemEx(iw, routine, queues.DelayedWorkQueue, nil)
			r.k.KeDelayExecutionThread(100 * des.Microsecond)
		})
		err := r.run(t).Err
		if reinit {
			require.NoError(t, err)
			assert.Equal(t, 2, ran)
			continue
		}
		var cv *queues.ContractViolation
		require.ErrorAs(t, err, &cv)
		assert.Contains(t, cv.Error(), "released with IoUninitializeWorkItem at t=")
		assert.Contains(t, cv.Error(), "REFERENCE §3.5")
		assert.Equal(t, 1, ran)
	}
}
