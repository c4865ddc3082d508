package kernel

// Helpers for package queues (executive worker pools, work items, driver
// objects). Each reads or adjusts one piece of kernel state the queues layer
// needs, so that layer never reaches into kernel internals. None allocates
// except Entries, which is for end-of-run reports only.

// CriticalRegionDepth returns how many KeEnterCriticalRegion calls of t are
// not yet matched by KeLeaveCriticalRegion: NT's KernelApcDisable, negated.
// A worker thread checks it after every work routine (REFERENCE §1.1, §3.3).
func (t *Thread) CriticalRegionDepth() int { return t.criticalRegion }

// RepairCriticalRegion resets t's critical-region depth to zero: what the
// ReactOS worker does (after a warning) when a routine returned with normal
// kernel APCs still disabled (REFERENCE §1.1).
func (t *Thread) RepairCriticalRegion() { t.criticalRegion = 0 }

// MarkExecutiveWorker marks t as a system worker thread of an executive
// worker pool: PsTerminateSystemThread from one of its work routines is
// bug check 0xE9 (REFERENCE §1.1, §4.18).
func (t *Thread) MarkExecutiveWorker() { t.exWorker = true }

// Entries returns a copy of q's queued entries, oldest first. Cost O(n);
// meant for end-of-run reports, not for simulated code.
func (q *KQUEUE) Entries() []any { return append([]any(nil), q.entries...) }
