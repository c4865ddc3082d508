package kernel

import (
	"errors"
	"fmt"

	"github.com/wqsim/wqsim/des"
)

// Costs is the virtual CPU time each kind of kernel call consumes. A call
// with a zero cost is not a scheduling point unless a perturbation is
// injected there.
type Costs struct {
	Call          des.Duration // a plain kernel call (KeSetEvent, IoSetCancelRoutine, ...)
	Interlocked   des.Duration // a shared-memory access or Interlocked* operation
	ContextSwitch des.Duration // charged to the incoming thread at each dispatch
	Interrupt     des.Duration // entering an ISR or the DPC drain on a processor
}

// Config is the kernel model's configuration. DefaultConfig holds the
// Windows defaults; every number is a parameter so research can vary it.
type Config struct {
	// Processors is the number of simulated CPUs.
	Processors int
	// ClockTick is the clock interrupt interval (15.625 ms, REFERENCE §4.3).
	ClockTick des.Duration
	// QuantumUnits is a thread's quantum in units; a clock tick is
	// UnitsPerTick units (client 6, server 36; 3 per tick, REFERENCE §4.3).
	QuantumUnits int
	UnitsPerTick int
	// WaitQuantumUnits is charged to a variable-priority thread (base < 14)
	// when its wait completes (classic NT: 1 unit, REFERENCE §4.3).
	WaitQuantumUnits int
	// Costs of kernel calls.
	Costs Costs
	// Boosts enables wait-completion priority boosts (REFERENCE §4.4).
	Boosts bool
	// StarvationBoost enables the balance-set manager's anti-starvation
	// boost: a ready thread of priority 1–14 waiting StarvationTicks clock
	// ticks is raised to 15 with a 4-unit quantum, checked once a second,
	// at most 10 threads per scan (REFERENCE §4.4).
	StarvationBoost bool
	StarvationTicks int
	// Verifier makes IRQL and lock misuse fail with the Driver Verifier bug
	// checks of REFERENCE §1.8 (0xC4, 0xC9). Without it the same misuse is
	// reported as IRQL_NOT_LESS_OR_EQUAL (0xA) where Windows would
	// eventually crash that way, and ignored where it would not.
	Verifier bool
	// ForcePageableOut is Driver Verifier's Force IRQL Checking: every
	// touch of paged pool or pageable code (PAGED_CODE) at IRQL ≥
	// DISPATCH_LEVEL finds the page out and bug-checks 0xD1, instead of
	// that being a decision whose choice 0 is "resident" (REFERENCE §4.9).
	ForcePageableOut bool
	// ResourceOwnerBoost is WRK's priority-inversion avoidance for
	// ERESOURCEs: a thread that has waited ResourceTimeout (4 s) for one
	// raises its owners below both its own priority and 14 to 14
	// (REFERENCE §4.6). On in DefaultConfig, as in Windows.
	ResourceOwnerBoost bool
	// Policy chooses the dispatcher; nil means Windows' per-processor
	// dispatching (NewPerProcessorDispatcher, REFERENCE §4.7: a ready queue
	// per processor, ideal processors, affinity). NewNTDispatcher() is the
	// same rules over one global ready structure (§4.2), kept for research.
	Policy Policy
	// HangTimerPeriods is how many times every armed KTIMER must fire,
	// with nothing observable happening in between, before a machine whose
	// threads all wait for ever is reported as a hang while the timers keep
	// the event queue busy (kernel/stall.go; README pitfalls). 0 means
	// DefaultHangTimerPeriods; a negative value turns the heuristic off
	// (the exact rule for timers without a DPC or a waiter stays). A
	// correct driver whose DPC counts down more quiet periods than this
	// before it signals would be reported falsely: raise it for such a
	// driver.
	HangTimerPeriods int

	// Exploration knobs: each makes a decision whose choice 0 is "no
	// perturbation".
	//
	// InjectPreemption offers, at each scheduling point of a thread below
	// DISPATCH_LEVEL, an early quantum end (round-robin to an equal-priority
	// ready thread) or a stall of StallTime (an interrupt storm on that
	// processor while the others run on).
	InjectPreemption bool
	StallTime        des.Duration
	// FineStalls (with InjectPreemption) refines the stalls: a thread
	// below DISPATCH_LEVEL may also stall for ShortStallTime (choice 3 of
	// its point; 0–2 keep their meaning), and code at DISPATCH_LEVEL or
	// above — a DPC, a thread holding a spin lock — is offered a stall of
	// ShortStallTime or StallTime at each of its scheduling points (a
	// PointStall decision). Real hardware delays such code too (cache
	// misses, SMIs, a hypervisor preempting the vCPU), so a stall there is
	// faithful; an early quantum end is not, and is never offered there.
	// ISR bodies are not stalled: in this model they are a few calls that
	// queue a DPC, whose own stalls delay the same code. Off, the
	// decision logs are those of fail files before format 6, which replay
	// with it off (model.RunConfig.CoarseStalls).
	FineStalls     bool
	ShortStallTime des.Duration
	// JitterLevels > 1 makes each explicit Compute a decision among that
	// many lengths: choice c stretches it by c/JitterLevels.
	JitterLevels int
	// DecideReadyOrder makes the choice among ready threads of the top
	// priority a decision (choice 0 = the FIFO head, as NT does).
	DecideReadyOrder bool
	// InjectAllocFailures makes each pool allocation a decision: choice 1
	// returns NULL (STATUS_INSUFFICIENT_RESOURCES paths).
	InjectAllocFailures bool
	// DisableThreadedDpcs runs threaded DPCs (KeInitializeThreadedDpc) as
	// ordinary DPCs at DISPATCH_LEVEL, as Windows does when the
	// ThreadDpcEnable registry value is 0; by default they run at
	// PASSIVE_LEVEL in a real-time thread of their processor (REFERENCE
	// §4.21). A threaded DPC routine must be correct both ways.
	DisableThreadedDpcs bool
}

// DefaultShortStallTime is the default of Config.ShortStallTime: the width
// of the races between a DPC and code on another processor in the example
// drivers (a read-modify-write around a couple of microseconds of work), so
// that a short stall opens such a window without the 50µs stall carrying
// the stalled code past everything the other processor does.
const DefaultShortStallTime = 5 * des.Microsecond

// DefaultConfig returns Windows client defaults on a 2-processor machine
// with Driver Verifier on and no perturbations.
func DefaultConfig() Config {
	return Config{
		Processors:       2,
		ClockTick:        15625 * des.Microsecond,
		QuantumUnits:     6,
		UnitsPerTick:     3,
		WaitQuantumUnits: 1,
		Costs: Costs{
			Call:          200 * des.Nanosecond,
			Interlocked:   50 * des.Nanosecond,
			ContextSwitch: 2 * des.Microsecond,
			Interrupt:     1 * des.Microsecond,
		},
		Boosts:             true,
		ResourceOwnerBoost: true,
		StarvationTicks:    300,
		Verifier:           true,
		StallTime:          50 * des.Microsecond,
		ShortStallTime:     DefaultShortStallTime,
	}
}

// ServerConfig returns DefaultConfig with the server quantum (36 units).
func ServerConfig() Config {
	c := DefaultConfig()
	c.QuantumUnits = 36
	return c
}

// Quantum returns the quantum as virtual time.
func (c Config) Quantum() des.Duration {
	return c.ClockTick * des.Duration(c.QuantumUnits) / des.Duration(c.UnitsPerTick)
}

func (c Config) unit() des.Duration {
	return c.ClockTick / des.Duration(c.UnitsPerTick)
}

// Validate reports every impossible value, each with what to do.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.Processors < 1 || c.Processors > 64 {
		bad("Processors = %d: need 1 to 64 simulated processors", c.Processors)
	}
	if c.ClockTick <= 0 {
		bad("ClockTick = %v: the clock interval must be positive (Windows default 15.625ms)", c.ClockTick)
	}
	if c.UnitsPerTick <= 0 {
		bad("UnitsPerTick = %d: must be positive (Windows charges 3 units per tick)", c.UnitsPerTick)
	}
	if c.QuantumUnits <= 0 || c.QuantumUnits > 0x7F {
		bad("QuantumUnits = %d: must be 1..127 (client 6, server 36)", c.QuantumUnits)
	}
	if c.WaitQuantumUnits < 0 {
		bad("WaitQuantumUnits = %d: must not be negative", c.WaitQuantumUnits)
	}
	if c.Costs.Call < 0 || c.Costs.Interlocked < 0 || c.Costs.ContextSwitch < 0 || c.Costs.Interrupt < 0 {
		bad("Costs %+v: call costs must not be negative", c.Costs)
	}
	if c.StarvationBoost && c.StarvationTicks <= 0 {
		bad("StarvationTicks = %d: must be positive when StarvationBoost is on (Windows: 300)", c.StarvationTicks)
	}
	if c.InjectPreemption && c.StallTime <= 0 {
		bad("StallTime = %v: must be positive when InjectPreemption is on", c.StallTime)
	}
	if c.InjectPreemption && c.FineStalls && c.ShortStallTime <= 0 {
		bad("ShortStallTime = %v: must be positive when FineStalls is on (default %v)", c.ShortStallTime, DefaultShortStallTime)
	}
	if c.JitterLevels < 0 {
		bad("JitterLevels = %d: use 0 or 1 for no jitter, more for that many levels", c.JitterLevels)
	}
	return errors.Join(errs...)
}
