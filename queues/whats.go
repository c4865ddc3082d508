package queues

import "github.com/wqsim/wqsim/des"

// Sub-kinds of this package's trace records (the What field; see
// kernel/whats.go): tools compare against them instead of matching text.
// Work-item queueing records carry the queueing routine's name instead.
const (
	WhatApcDisableRepaired     des.What = "apc-disable-repaired"
	WhatDeadlockDetected       des.What = "deadlock-detected"
	WhatDequeue                des.What = "dequeue"
	WhatDereference            des.What = "dereference"
	WhatDeviceDetach           des.What = "device-detach"
	WhatDeviceAttach           des.What = "device-attach"
	WhatDeviceCreate           des.What = "device-create"
	WhatDeviceDelete           des.What = "device-delete"
	WhatDeviceGone             des.What = "device-gone"
	WhatDriverEntry            des.What = "DriverEntry"
	WhatDriverLoad             des.What = "driver-load"
	WhatDriverUnload           des.What = "driver-unload"
	WhatGrowOnInsert           des.What = "grow-on-insert"
	WhatImageUnloaded          des.What = "image-unloaded"
	WhatIoAllocateWorkItem     des.What = "IoAllocateWorkItem"
	WhatIoFreeWorkItem         des.What = "IoFreeWorkItem"
	WhatIoInitializeWorkItem   des.What = "IoInitializeWorkItem"
	WhatIoUninitializeWorkItem des.What = "IoUninitializeWorkItem"
	WhatIoTryQueueRefused      des.What = "IoTryQueueWorkItem-refused" // no free worker: nothing queued
	WhatReference              des.What = "reference"
	WhatReturn                 des.What = "return"
	WhatRun                    des.What = "run"
	WhatTimerArmed             des.What = "timer-armed"
	WhatTimerDisarmed          des.What = "timer-disarmed"
	WhatWorkerCreate           des.What = "worker-create"
	WhatWorkerExit             des.What = "worker-exit"
)
