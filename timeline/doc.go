// Package timeline renders the trace records of a wqsim run
// (des.Record, kinds of package kernel and of the layers above it) as
// timelines:
//
//   - WritePerfetto / WritePerfettoRuns: Chrome trace-event JSON for
//     ui.perfetto.dev and chrome://tracing, one process per simulated
//     machine and one track per processor, every record an instant;
//   - WritePerfettoProto / WritePerfettoProtoRuns: a native Perfetto
//     protobuf trace (TrackEvent) with a track tree (machine → processor →
//     IRQL counter; threads), counters with units (IRQL, ready threads,
//     cancel-safe queue and work-queue depths), work-item flows and IRP
//     lifecycle flows (IrpFlows);
//   - WriteHTML: a self-contained offline page with one SVG lane per
//     processor;
//   - WriteJSONL: every record as one JSON object per line.
//
// All timelines come from one model, built by replaying the records
// through each processor's context stack (thread, DPC drain, ISR):
//
//   - a thread owns a processor from its KindSwitch record ("dispatch",
//     "preempt", "round-robin") until the next switch on that processor,
//     its blocking KindWait (not a kernel.WhatSatisfied one) or its exit;
//   - KindInterrupt "enter"/"leave" of dpc/cpuN and isr/cpuN bound the DPC
//     drain and ISR contexts, which nest in the thread's slice; "run-dpc"
//     and "isr" records start each routine inside them;
//   - a context spins from its "spin" record until the spin lock is
//     released to it (first spinner first, as package kernel hands it
//     over) and it is on top of its processor again;
//   - a processor's IRQL is the IRQL of the context on top of it, 0 when
//     idle, taken from the records that context emits;
//   - work-item flows pair queue and run records by WorkItemRole and
//     WorkItemKey (PairFlows): that is the contract for layers that trace
//     work items.
//
// Output is deterministic: the same records give the same bytes.
//
// Start here: record a run's trace with a des.RecordSink
// (model.RunConfig.Sink), then pass its Records to a writer (see the
// package example). proptest.Failure.WriteTimelines does this for a
// failure found by an exploration.
package timeline
