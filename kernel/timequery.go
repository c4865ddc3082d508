package kernel

import "github.com/wqsim/wqsim/des"

// Clock and processor queries (REFERENCE §4.16). Windows counts interrupt
// time and system time in 100-nanosecond units; the model derives both from
// the virtual clock, so they are exact and the same in every replay.

// SystemTimeAtBoot is the system time, in 100-ns units since 1601-01-01
// UTC, at virtual time 0: 2026-01-01 00:00:00 UTC. A fixed boot instant
// keeps KeQuerySystemTime deterministic.
const SystemTimeAtBoot int64 = 134116992000000000

// PerformanceFrequency is the performance counter's rate, in counts per
// second, that KeQueryPerformanceCounter reports: 10 MHz, the rate current
// x64 Windows reports.
const PerformanceFrequency int64 = 10_000_000

// TimeIncrement is the clock-tick length KeQueryTimeIncrement returns, in
// 100-ns units: 156,250 (15.625 ms, the default clock rate).
const TimeIncrement uint32 = 156250

// KeQueryInterruptTime returns the time since boot in 100-ns units.
// IRQL: any (REFERENCE §4.16).
func (k *Kernel) KeQueryInterruptTime() uint64 {
	k.tick()
	return uint64(k.sim.Now()) / 100
}

// KeQuerySystemTime returns the system time, in 100-ns units since
// 1601-01-01 UTC (SystemTimeAtBoot plus the time since boot). Windows
// returns it through a LARGE_INTEGER pointer; here it is the result.
// IRQL: any (REFERENCE §4.16).
func (k *Kernel) KeQuerySystemTime() int64 {
	k.tick()
	return SystemTimeAtBoot + int64(k.sim.Now())/100
}

// KeQuerySystemTimePrecise is KeQuerySystemTime: the model's clock has no
// tick granularity to refine. IRQL: any (REFERENCE §4.16).
func (k *Kernel) KeQuerySystemTimePrecise() int64 { return k.KeQuerySystemTime() }

// KeQueryPerformanceCounter returns the performance counter and its
// frequency in counts per second (PerformanceFrequency). IRQL: any
// (REFERENCE §4.16).
func (k *Kernel) KeQueryPerformanceCounter() (counter, frequency int64) {
	k.tick()
	return int64(k.sim.Now()) / (int64(des.Second) / PerformanceFrequency), PerformanceFrequency
}

// KeQueryTickCount returns the number of clock ticks (TimeIncrement each)
// since boot. IRQL: any (REFERENCE §4.16).
func (k *Kernel) KeQueryTickCount() uint64 {
	k.tick()
	return uint64(k.sim.Now()) / (uint64(TimeIncrement) * 100)
}

// KeQueryTimeIncrement returns the clock-tick length in 100-ns units.
// IRQL: any (REFERENCE §4.16).
func (k *Kernel) KeQueryTimeIncrement() uint32 { return TimeIncrement }

// KeQueryActiveProcessorCount returns the number of processors and, as
// Windows does through its optional argument, the mask of their numbers.
// IRQL: any (REFERENCE §4.16).
func (k *Kernel) KeQueryActiveProcessorCount() (count int, mask uint64) {
	k.tick()
	n := len(k.cpus)
	return n, uint64(1)<<uint(n) - 1
}

// KeGetCurrentProcessorNumberEx returns the caller's processor number;
// the model has a single processor group, so it equals
// KeGetCurrentProcessorNumber. IRQL: any (REFERENCE §4.16).
func (k *Kernel) KeGetCurrentProcessorNumberEx() int {
	return k.cur("KeGetCurrentProcessorNumberEx").cpu.id
}

// KeStallExecutionProcessor busy-waits for the given number of
// microseconds on the caller's processor (at the caller's IRQL, which it
// does not change); the processor stays busy and nothing else runs there unless an interrupt of
// a higher IRQL arrives (REFERENCE §4.16). Microsoft asks callers to keep
// stalls under 50 µs; longer ones are legal and are simulated as asked.
// IRQL: any.
func (k *Kernel) KeStallExecutionProcessor(microseconds uint32) {
	e := k.cur("KeStallExecutionProcessor")
	k.point(e, des.Duration(microseconds)*des.Microsecond)
}
