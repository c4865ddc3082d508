package model

import (
	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// Coverage marks of these scenarios (see Mark).
var (
	markTimeoutRaced     = NewMark("timeout raced completion")
	markCancelRoutineRan = NewMark("cancel routine ran")
)

func init() {
	Register(&Scenario{
		Name: "doublecomplete",
		Doc: "A driver starts a device operation and arms a 50µs timeout timer with a DPC. The " +
			"device's interrupt queues a completion DPC. Both DPCs may complete the IRP. The buggy " +
			"driver completes from the device DPC even when KeCancelTimer says the timeout already " +
			"fired; the correct one lets an interlocked exchange decide the single owner.",
		Section: "§6.3, §1.7",
		Variants: []Variant{
			{Name: "correct", Doc: "InterlockedExchange decides who completes"},
			{Name: "timeout-race", Bug: true, Doc: "device DPC completes although the timeout DPC did", Marks: []*Mark{markTimeoutRaced}, Want: "0x44"},
		},
		Setup: setupDoubleComplete,
	})
	Register(&Scenario{
		Name: "dispatchwait",
		Doc: "A cancel routine (DISPATCH_LEVEL, cancel spin lock held) waits for the device to " +
			"acknowledge the abort. Waiting at DISPATCH_LEVEL is illegal: Driver Verifier stops the " +
			"machine. The correct routine signals the device and returns.",
		Section: "§6.13, §4.5, §1.7",
		Variants: []Variant{
			{Name: "correct", Doc: "signal and return"},
			{Name: "wait-in-cancel", Bug: true, Doc: "KeWaitForSingleObject in the cancel routine", Marks: []*Mark{markCancelRoutineRan}, Want: "0xC4"},
		},
		Setup: setupDispatchWait,
	})
}

func setupDoubleComplete(env *Env) error {
	k := env.K
	irp := k.IoAllocateIrp("ioctl")
	owner := k.NewCell("owner", 0)
	timer := k.KeInitializeTimerEx("timeout", kernel.NotificationEvent)
	complete := func(status kernel.NTSTATUS) {
		irp.IoStatus.Status = status
		k.IoCompleteRequest(irp, kernel.IO_NO_INCREMENT)
	}
	timeoutDpc := k.KeInitializeDpc("timeout", func(*kernel.KDPC, any, any, any) {
		if k.InterlockedExchange(owner, 1) == 0 || env.Is("timeout-race") {
			complete(kernel.STATUS_CANCELLED)
		}
	}, nil)
	deviceDpc := k.KeInitializeDpc("device", func(*kernel.KDPC, any, any, any) {
		cancelled := k.KeCancelTimer(timer)
		if !cancelled {
			env.Hit(markTimeoutRaced)
		}
		if env.Is("timeout-race") || k.InterlockedExchange(owner, 1) == 0 {
			complete(kernel.STATUS_SUCCESS)
		}
	}, nil)
	intr, err := k.IoConnectInterrupt("device", 5, func(*kernel.KINTERRUPT, any) bool {
		k.KeInsertQueueDpc(deviceDpc, nil, nil)
		return true
	}, nil)
	if err != nil {
		return err
	}
	// The device answers in 40µs, or a little later under a perturbed
	// workload: 50µs ties with the timeout, 55µs loses to it.
	delay := 40 + 5*env.Choose("doublecomplete: device latency", 4)
	k.PsCreateSystemThread("dispatch", 8, func() {
		k.IoMarkIrpPending(irp)
		k.KeSetTimer(timer, 50*des.Microsecond, timeoutDpc)
		k.DeviceInterrupt(intr, 0, k.Now().Add(des.Duration(delay)*des.Microsecond))
		k.KeWaitForSingleObject(irp.Done(), kernel.Infinite)
		env.BeginDrain()
	})
	return nil
}

func setupDispatchWait(env *Env) error {
	k := env.K
	irp := k.IoAllocateIrp("read")
	ack := k.KeInitializeEvent("device ack", kernel.NotificationEvent, false)
	cancel := func(irp *kernel.IRP) {
		env.Hit(markCancelRoutineRan)
		if env.Is("wait-in-cancel") {
			k.KeWaitForSingleObject(ack, 10*des.Microsecond) // at DISPATCH_LEVEL: illegal
		} else {
			k.KeSetEvent(ack, 0, false)
		}
		k.IoReleaseCancelSpinLock(irp.CancelIrql)
		irp.IoStatus.Status = kernel.STATUS_CANCELLED
		k.IoCompleteRequest(irp, kernel.IO_NO_INCREMENT)
	}
	queued := k.KeInitializeEvent("queued", kernel.NotificationEvent, false)
	k.PsCreateSystemThread("dispatch", 8, func() {
		k.IoMarkIrpPending(irp)
		k.IoSetCancelRoutine(irp, cancel)
		k.KeSetEvent(queued, 0, false)
	})
	k.PsCreateSystemThread("requester", 8, func() {
		k.KeWaitForSingleObject(queued, kernel.Infinite)
		k.Compute(5 * des.Microsecond)
		// Whether the user cancels (1) or the device finishes first (0).
		if env.Choose("dispatchwait: user cancels", 2) == 1 {
			k.IoCancelIrp(irp)
		} else if k.IoSetCancelRoutine(irp, nil) != nil {
			irp.IoStatus.Status = kernel.STATUS_SUCCESS
			k.IoCompleteRequest(irp, kernel.IO_NO_INCREMENT)
		}
		k.KeWaitForSingleObject(irp.Done(), kernel.Infinite)
	})
	return nil
}
