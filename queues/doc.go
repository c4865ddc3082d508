// Package queues models the Windows work-queue APIs on top of the kernel
// model: executive work items (ExInitializeWorkItem, ExQueueWorkItem), the
// system worker thread pools that run them, driver and device objects with
// reference counts and unload, I/O work items (IoAllocateWorkItem,
// IoQueueWorkItem[Ex], IoFreeWorkItem, IoInitializeWorkItem, ...), and, in
// other files of the package, the cancel-safe queues; the filter manager
// lives in queues/fltmgr.
//
// Simulated driver code calls these routines by their NT names on a
// *System, line for line as a driver calls the real ones:
//
//	sys := queues.MustNewSystem(k, queues.DefaultPoolConfig())
//	...
//	drv.ExInitializeWorkItem(&item, routine, ctx)
//	sys.ExQueueWorkItem(&item, queues.DelayedWorkQueue)
//
// Each routine's doc comment gives the IRQL it may be called at, what it
// does, what misuse it catches (with the real bug-check code) and the
// section of docs/REFERENCE.md it follows. Where the sources disagree,
// the documented behaviour is the default and the other reading is a
// PoolConfig switch (CriticalRealTime, DoubleQueue, RepairApcDisable).
//
// The worker pools follow the ReactOS model (REFERENCE §3.2–3.3): per queue
// type a KQUEUE (FIFO items, LIFO wake of idle workers, concurrency limit =
// processors, a worker that blocks elsewhere frees its slot), static
// threads 5 critical / 3 delayed / 1 hypercritical, and a balance manager
// thread that adds dynamic threads as a pluggable PoolPolicy decides
// (Fixed, ReactOS, GrowOnDemand). Dynamic threads exit after 10 minutes
// idle. The manager's timer is armed only while items wait, so an idle
// machine quiesces and a stuck one is reported as a hang.
//
// Findings are the kernel's: *kernel.BugCheck with the real code and
// parameters (addresses, which the model does not have, are replaced by
// stable numbers: an item's ID, a hash of the routine's Go symbol),
// *kernel.Deadlock for a hang, *kernel.Leak for items still queued or I/O
// work items never freed at the end, and this package's *ContractViolation
// for documented rules Windows does not enforce.
//
// Trace record kinds 200–219 belong to the work-item, pool and driver
// files (see KindWorkQueue and the constants after it); the cancel-safe
// queue and the filter manager define theirs beside their code. The
// work-item and pool files make no decisions of their own: every
// interleaving they expose goes through kernel scheduling points.
//
// Layering: queues imports only kernel and des (and the standard library).
// Like them it uses no goroutines, channels, wall clock or global random
// source: all concurrency is simulated.
package queues
