// Package drivers holds small drivers written the way a user of wqsim
// writes one: only against the public API (kernel, queues, queues/fltmgr,
// model, proptest), each with a correct variant and one bug. They were
// written from the package docs alone, as a check that the API serves code
// the project did not write, and they stay as regression tests: a correct
// driver must never get a finding, and each bug must be found, be the one
// declared, and shrink to a short schedule.
//
//   - ClassicCancel: a WDM device driver without IoCsq. Dispatch queues
//     IRPs under its own spin lock with a cancel routine, the device's ISR
//     queues a DPC that completes them, an application cancels one. The bug
//     completes an IRP without first winning the IoSetCancelRoutine(NULL)
//     race against the cancel routine (REFERENCE §1.7).
//   - CsqDriver: the same device with an IoCsq and a driver thread that
//     serves it; the bug takes IRPs off the list directly, bypassing
//     IoCsqRemoveNextIrp, so the cancel routine is still set at completion
//     (REFERENCE §1.6, §1.8).
//   - PendFilter: a minifilter that pends reads into a FltCbdq and drains
//     them with a generic work item it queues at most once at a time; the
//     bug lets the work routine clear its "running" flag without the lock,
//     so a read pended in between is never served (REFERENCE §1.3, §1.5).
//   - ResourceCache: readers and a writer on an ERESOURCE, fed by a KQUEUE
//     and a delayed work item; the bug takes the resource without a
//     critical region (REFERENCE §4.6).
//   - DeviceStack: an upper driver attached over a lower one that pends
//     requests under an in-stack queued spin lock, with its own cancel
//     routine, and completes them from a timer DPC. The upper driver reads
//     by forward-and-wait (STATUS_MORE_PROCESSING_REQUIRED, then its own
//     IoCompleteRequest) and passes writes through, propagating the pending
//     mark; the application cancels both. The bug's forward-and-wait
//     completion routine continues completion, so the IRP is completed
//     twice (REFERENCE §5.6).
//   - MutexApc: a KMUTEX taken recursively by a worker thread, an
//     application thread and a normal kernel APC that a timer DPC queues to
//     the worker, plus a guarded mutex; unload stops the worker (which arms
//     the timer) before cancelling the timer and flushing DPCs. The bug
//     returns from the recursive acquisition without its release
//     (REFERENCE §4.8, §4.10, §6.8).
//   - TryWork: an ISR's DPC hands samples to one I/O work item, first with
//     IoTryQueueWorkItem (queues only if a worker is free at once), then
//     with IoQueueWorkItemEx; unload disconnects the interrupt, flushes
//     DPCs and waits for the item to go idle before freeing it. The bug
//     reads IoTryQueueWorkItem's FALSE as "already queued" (REFERENCE §1.2).
//   - FltPair: two minifilters on one volume; the upper one asks for a
//     post-read with a completion context and posts it to a generic work
//     item (MORE_PROCESSING_REQUIRED, FltCompletePendedPostOperation), the
//     lower one synchronizes its reads; the file system may pend and honours
//     cancels. The bug returns FINISHED_PROCESSING after posting the work
//     (REFERENCE §1.3, §1.4, §5.3, §5.4).
//   - WaitAll: workers take a KMUTEX and a KSEMAPHORE in one
//     KeWaitForMultipleObjects(WaitAll), a monitor polls the mutex with
//     WaitAny and a timeout; the bug waits WaitAny and releases both
//     (REFERENCE §4.8).
//   - DpcRearm: a one-shot timer re-armed by its own DPC (adaptive
//     polling); unload sets a "stopping" flag under the DPC's lock before
//     KeCancelTimer and KeFlushQueuedDpcs. The bug cancels and flushes
//     without the flag: a DPC running at the cancel arms the timer again
//     (REFERENCE §4.8, §6.8).
//   - DpcRemove: an ISR queues a DPC that fills a nonpaged buffer; unload
//     disconnects the interrupt, removes the queued DPC, flushes, frees.
//     The bugs trust KeRemoveQueueDpc to stop a DPC that is already
//     running, or remove the DPC before disconnecting the interrupt that
//     queues it (REFERENCE §4.8, §6.8).
//   - OwnIrp: a prefetch driver reads with its own
//     IoBuildAsynchronousFsdRequest IRPs, freed by the completion routine,
//     which returns STATUS_MORE_PROCESSING_REQUIRED; unload waits for the
//     reads in flight. The bugs return STATUS_SUCCESS after IoFreeIrp, and
//     unload while a completion routine can still be called (REFERENCE
//     §5.6, §6.8).
//   - ResUpgrade: a name cache behind an ERESOURCE, looked up by delayed
//     work items; a miss drops the shared hold, takes exclusive and looks
//     again. The bugs upgrade in place (the work item waits for itself)
//     or insert without the second look (REFERENCE §4.6).
//   - Rundown: a session context guarded by run-down protection
//     (EX_RUNDOWN_REF), used by a DPC and by I/O work items that carry a
//     hold from the notification that queued them; close waits for the
//     run-down and frees the context. The bugs queue the item although
//     the acquire failed, and release before the last use (REFERENCE
//     §4.8).
//   - DeferredPre: a scanning minifilter posts each pre-read to a deferred
//     I/O work item that completes it with FltCompletePendedPreOperation,
//     and is unloaded while reads arrive. The bug returns
//     FLT_PREOP_PENDING although FltQueueDeferredIoWorkItem refused the
//     post at teardown (REFERENCE §1.3, §1.4, §5.5).
//   - RemoveLock: reads take an IO_REMOVE_LOCK in dispatch and release it
//     in the I/O work routine that completes them; the remove path
//     acquires, then IoReleaseRemoveLockAndWait, then frees the hardware
//     context. The bugs skip the remove path's own acquisition, or release
//     in dispatch while the work item is still queued (REFERENCE §5.6).
//   - Heartbeat: a periodic heartbeat timer whose DPC samples the requests
//     in flight; unload waits for the last completion to set idle, then
//     cancels the timer and flushes DPCs. The bug decrements the count with
//     a plain read and write, loses a completion and leaves unload waiting
//     while the heartbeat fires on: a hang the kernel decides by its
//     stalled-timer rule (kernel.Config.HangTimerPeriods; REFERENCE §4.8,
//     §6.8, §9).
//   - CsqTimeout: requests in an IoCsq, each inserted with an
//     IO_CSQ_IRP_CONTEXT and guarded by a timeout timer whose DPC takes it
//     out with IoCsqRemoveIrp; a thread serves the queue and the
//     application cancels one. The bug completes the remembered IRP when
//     IoCsqRemoveIrp returned NULL (REFERENCE §1.6, §2.4).
//   - WaitAny: a service thread waits WaitAny on (stop, data ready) with a
//     timeout meaning "poll anyway", and drains on stop (WaitAny reports
//     the lowest index satisfied). The bug dispatches on
//     status − STATUS_WAIT_0 through a handler table without handling
//     STATUS_TIMEOUT first (REFERENCE §4.8).
//   - ResWriter: a request thread holding an ERESOURCE shared waits for
//     a helper work item that acquires it shared too, while a writer work
//     item asks for it exclusive; a waiting writer makes new sharers wait.
//     The bug waits holding the resource (REFERENCE §4.6, §6.9).
//   - Mailbox: a one-slot hand-off from a producer to two consumers with
//     a "full" and an "empty" event. The bug makes "full" a notification
//     event cleared after the wait: setting it wakes both consumers, which
//     take the same message (REFERENCE §4.8).
//   - StatsLock: a DPC and a passive-level thread share counters under a
//     spin lock. The bugs take it from the thread with
//     KeAcquireSpinLockAtDpcLevel at PASSIVE_LEVEL, or allocate paged pool
//     under it on a rarely taken path (REFERENCE §4.6, §4.9).
//   - Outstanding: a work item per request, counted so unload can wait
//     for them before freeing their buffer. The bugs skip the wait, or use
//     ExQueueWorkItem, which holds no reference on the image while the
//     last routine returns (REFERENCE §1.2, §6.8).
//   - Inversion: priority inversion on a FAST_MUTEX (no inheritance).
//     Bounded medium-priority work only delays the high thread and gets no
//     finding; the bug's medium threads spin on a flag, starving the
//     low-priority owner: a livelock (REFERENCE §4.4, §4.6).
//   - LockOrder: a DPC and a thread take two spin locks; the bug's thread
//     takes them in the opposite order, a spinning deadlock across the two
//     processors (REFERENCE §4.6).
//   - FltWork: an auditing minifilter queues a generic work item per read
//     against the filter while reads race the unload. The bugs free the
//     audit buffer before FltUnregisterFilter (which waits for routines
//     holding the filter's rundown), or keep the item when
//     FltQueueGenericWorkItem fails during teardown (REFERENCE §1.3, §6.8).
//   - IsrSync: an ISR counts transfers with a plain read-modify-write and
//     a driver thread collects and resets the count inside
//     KeSynchronizeExecution. The bugs hold a DISPATCH_LEVEL spin lock, or
//     only raise to DIRQL, and lose interrupts (REFERENCE §4.13).
//   - ReuseIrp: one IoAllocateIrp IRP polls a disk, reused with IoReuseIrp
//     after each completion routine returns
//     STATUS_MORE_PROCESSING_REQUIRED. The bugs let completion reach the
//     top of the thread-less IRP, or reuse it on a wait timeout while the
//     disk still holds it (REFERENCE §1.9, §1.10).
//
// All lists them; cmd/drivers is the wqsim command line with them
// (go run ./examples/drivers/cmd/drivers explore devicestack:correct).
// drivers_test.go checks each correct variant with proptest.FixesSurvive
// and finds each bug with proptest.Find.
package drivers
