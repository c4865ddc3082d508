package kernel

import "github.com/wqsim/wqsim/des"

// Sub-kinds of the kernel's trace records: the What field, which the text
// trace prints and the trace hash covers. Every record the kernel emits
// takes one of these (or, for a blocking wait, the name of the routine that
// blocks); tools that read traces (timeline, lab) compare against them
// instead of matching text. The values are stable: changing one changes
// every trace hash.
const (
	WhatDispatch               des.What = "dispatch"          // a thread switched onto an idle processor
	WhatPreempt                des.What = "preempt"           // a higher priority took the processor
	WhatRoundRobin             des.What = "round-robin"       // an equal priority took it at quantum end
	WhatAffinity               des.What = "affinity"          // KeSetSystemAffinityThreadEx / KeRevert…: A = the new set
	WhatAffinityMove           des.What = "affinity-move"     // a thread left a processor outside its affinity
	WhatSetPriority            des.What = "set-priority"      // KeSetPriorityThread: A = new, B = old priority
	WhatSetBasePriority        des.What = "set-base-priority" // KeSetBasePriorityThread: A = new base, B = old increment
	WhatAcquire                des.What = "acquire"
	WhatAcquireExcl            des.What = "acquire-excl"
	WhatAcquireShared          des.What = "acquire-shared"
	WhatConvertToShared        des.What = "convert-to-shared" // ExConvertExclusiveToSharedLite: A = acquisitions kept
	WhatAlert                  des.What = "alert"
	WhatAlloc                  des.What = "alloc"
	WhatAllocFail              des.What = "alloc-fail"
	WhatBugCheck               des.What = "BUGCHECK"
	WhatCompletionRoutine      des.What = "completion-routine"
	WhatCreate                 des.What = "create"
	WhatDeviceQueueBusy        des.What = "devqueue-busy"   // KeInsert(ByKey)DeviceQueue found the device idle and made it busy: A = key
	WhatDeviceQueueInsert      des.What = "devqueue-insert" // an IRP queued for a busy device: A = depth after, B = key
	WhatDeviceQueueRemove      des.What = "devqueue-remove" // an IRP taken off a device queue: A = depth after, B = 1 by KeRemoveEntryDeviceQueue
	WhatDeviceQueueIdle        des.What = "devqueue-idle"   // the queue was empty: the device is idle again
	WhatEnter                  des.What = "enter"
	WhatExAcquireResource      des.What = "ExAcquireResource"
	WhatExit                   des.What = "exit"
	WhatFlushDpcs              des.What = "flush-dpcs"
	WhatFree                   des.What = "free"
	WhatLookasideInit          des.What = "lookaside-init"   // ExInitializeNPagedLookasideList: A = entry size, B = depth
	WhatLookasideHit           des.What = "lookaside-alloc"  // ExAllocateFromNPagedLookasideList from the cache: B = entries left
	WhatLookasideFree          des.What = "lookaside-free"   // ExFreeToNPagedLookasideList into the cache: B = entries cached
	WhatLookasideDelete        des.What = "lookaside-delete" // ExDeleteNPagedLookasideList
	WhatSListPush              des.What = "slist-push"       // an S-list push: A = depth after, B = 1 if the list was empty (the push returned NULL)
	WhatSListPop               des.What = "slist-pop"        // an S-list pop: A = depth after, B = 1 if an entry was taken
	WhatSListFlush             des.What = "slist-flush"      // an S-list flush: A = entries taken
	WhatInjectStall            des.What = "inject-stall"
	WhatInjectYield            des.What = "inject-yield"
	WhatInterlockedAdd         des.What = "interlocked-add"
	WhatInterlockedCmpxchg     des.What = "interlocked-cmpxchg"
	WhatInterlockedXchg        des.What = "interlocked-xchg"
	WhatInterrupt              des.What = "interrupt"
	WhatInterruptWait          des.What = "interrupt-wait"
	WhatIoCallDriver           des.What = "IoCallDriver"
	WhatIoCancelIrp            des.What = "IoCancelIrp"
	WhatIoCompleteRequest      des.What = "IoCompleteRequest"
	WhatIoMarkIrpPending       des.What = "IoMarkIrpPending"
	WhatIoQueueThreadIrp       des.What = "IoQueueThreadIrp"
	WhatIoReuseIrp             des.What = "IoReuseIrp"
	WhatIoSetCancelRoutine     des.What = "IoSetCancelRoutine"
	WhatIrql                   des.What = "irql"
	WhatIsr                    des.What = "isr"
	WhatKeInsertQueue          des.What = "KeInsertQueue"
	WhatKeReleaseSemaphore     des.What = "KeReleaseSemaphore"
	WhatKeRemoveQueue          des.What = "KeRemoveQueue"
	WhatKeSetEvent             des.What = "KeSetEvent"
	WhatLeave                  des.What = "leave"
	WhatMoreProcessingRequired des.What = "more-processing-required"
	WhatQuantumEnd             des.What = "quantum-end"
	WhatQueueApc               des.What = "queue-apc"
	WhatQueueDpc               des.What = "queue-dpc"
	WhatReady                  des.What = "ready"
	WhatRelease                des.What = "release"
	WhatResourceBoost          des.What = "resource-boost"
	WhatRunApc                 des.What = "run-apc"
	WhatRemoveLockAcquire      des.What = "removelock-acquire" // IoAcquireRemoveLock: A = count after
	WhatRemoveLockRefused      des.What = "removelock-refused" // IoAcquireRemoveLock returned STATUS_DELETE_PENDING: A = count
	WhatRemoveLockRelease      des.What = "removelock-release" // IoReleaseRemoveLock: A = count after
	WhatRemoveLockWait         des.What = "removelock-wait"    // IoReleaseRemoveLockAndWait began: A = count after its two decrements
	WhatRundownAcquire         des.What = "rundown-acquire"    // ExAcquireRundownProtection: A = holds after
	WhatRundownRefused         des.What = "rundown-refused"    // ExAcquireRundownProtection returned FALSE: A = holds
	WhatRundownRelease         des.What = "rundown-release"    // ExReleaseRundownProtection: A = holds after
	WhatRundownWait            des.What = "rundown-wait"       // ExWaitForRundownProtectionRelease began: A = holds
	WhatRundownReinit          des.What = "rundown-reinit"     // ExReInitializeRundownProtection
	WhatRunDpc                 des.What = "run-dpc"
	WhatSatisfied              des.What = "satisfied"
	WhatSetCancel              des.What = "set-cancel"
	WhatSpin                   des.What = "spin"
	WhatStarvationBoost        des.What = "starvation-boost"
	WhatTimerExpire            des.What = "timer-expire"
	WhatTimersOnly             des.What = "timers-only" // the run ends: only quiet timers tick, nobody waits (stall.go)
	WhatWaitAborted            des.What = "wait-aborted"
	WhatWake                   des.What = "wake"
	WhatWrite                  des.What = "write"
)
