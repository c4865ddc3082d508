// Package drivers holds four small drivers written the way a user of wqsim
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
//
// drivers_test.go checks each correct variant with proptest.FixesSurvive
// and finds each bug with proptest.Find.
package drivers
