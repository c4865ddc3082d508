package model

import (
	"fmt"
	"slices"
	"strings"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/kernel"
)

// Scenario is a driver model plus workload plus invariants, in variants.
type Scenario struct {
	Name string // registry key, e.g. "cancelsafe"
	Doc  string // one paragraph: what the driver does, what can go wrong
	// Section cites docs/REFERENCE.md ("§7.1, §6.16").
	Section  string
	Variants []Variant
	// Config returns the kernel configuration for a variant; nil means
	// ExploreConfig(). To change one knob, start from ExploreConfig(), not
	// kernel.DefaultConfig(): the latter has every exploration knob off
	// (no injected preemptions or stalls, no jitter), so the explorer
	// could only vary the workload's own decisions.
	Config func(variant string) kernel.Config
	// Setup builds the driver and the workload on env.K. It runs outside
	// simulated code: create threads there, do the work in them.
	Setup func(env *Env) error
	// Budget bounds every run of the scenario: a run that reaches it is
	// reported as a livelock. The zero value means the defaults
	// (DefaultStepBudget, DefaultDecisionBudget), sized for any scenario;
	// a small scenario whose bug is a livelock declares a budget a little
	// above what its correct variants need, so that a run spinning past it
	// ends in milliseconds instead of after half a million decisions:
	//
	//	Budget: model.Budget{Decisions: 20_000}, // correct runs make < 300
	//
	// Explore, replay, shrinking and the command line all use it; a run's
	// RunConfig, WithBudget and the command line's --step-budget and
	// --decision-budget override it, and fail files record the budget
	// their run had.
	Budget Budget
}

// Budget bounds one run (des.Config.StepBudget and DecisionBudget). A zero
// field means "not set here": the next level decides (RunConfig, then the
// scenario's Budget, then the defaults).
type Budget struct {
	// Steps bounds events fired plus kernel routines called.
	Steps uint64
	// Decisions bounds the decision log (about 40 bytes a decision, and
	// one line each in a fail file).
	Decisions uint64
}

// Or returns b with its unset fields taken from d.
func (b Budget) Or(d Budget) Budget {
	if b.Steps == 0 {
		b.Steps = d.Steps
	}
	if b.Decisions == 0 {
		b.Decisions = d.Decisions
	}
	return b
}

// WithBudget returns a copy of s whose budget is b, field by field where
// b sets one, else s's own: how a caller (the command line's flags, a
// test) runs a scenario with another budget everywhere the scenario goes
// (exploration, shrinking, the fail file). The copy shares s's variants
// and functions.
func (s *Scenario) WithBudget(b Budget) *Scenario {
	c := *s
	c.Budget = b.Or(s.Budget)
	return &c
}

// RunBudget returns the budget a run of s with rc has: rc's StepBudget and
// DecisionBudget where set, else s.Budget's fields, else the defaults.
func (s *Scenario) RunBudget(rc RunConfig) Budget {
	return Budget{Steps: rc.StepBudget, Decisions: rc.DecisionBudget}.Or(s.Budget).Or(DefaultBudget)
}

// Variant is one form of a scenario.
type Variant struct {
	Name string // "correct" or the bug's name
	Doc  string
	Bug  bool // false only for correct variants
	// Marks are the racy paths this bug variant must reach when it fails
	// (proptest.Find checks that the failure it finds reached them).
	Marks []*Mark
	// Want is a substring of the failure the bug produces (e.g. "0x44"),
	// as the outcome line of wqsim explore shows it (its signature,
	// "bugcheck 0x44" or "hang", then its message) or as the error says
	// it; alternatives are separated by "|".
	Want string
}

// Mark is a coverage mark: a racy path that driver code reports reaching
// with Env.Hit and that a bug variant lists in Variant.Marks. It is the one
// mark type of every layer (kernel.Mark), so a variant may also list a
// library's marks (queues.CsqMarkRemoveLostToCancel, fltmgr.MarkPostDrained).
// Declare each mark of your own once, as a package-level variable, and use
// the variable in both places, so its text is written once:
//
//	var markLostUpdate = model.NewMark("lostupdate: preempted between read and write")
//
// The text is what traces, results (Result.Marks) and fail files show.
type Mark = kernel.Mark

// NewMark declares a scenario's mark (see Mark).
func NewMark(text string) *Mark { return kernel.NewMark(text) }

// MarkTexts returns the texts of v's marks, in declaration order.
func (v Variant) MarkTexts() []string {
	out := make([]string, len(v.Marks))
	for i, m := range v.Marks {
		out[i] = m.String()
	}
	return out
}

// listsMark reports whether a variant of s lists m.
func (s *Scenario) listsMark(m *Mark) bool {
	if s == nil {
		return false
	}
	for _, v := range s.Variants {
		if slices.Contains(v.Marks, m) {
			return true
		}
	}
	return false
}

// Variant returns the named variant.
func (s *Scenario) Variant(name string) (Variant, bool) {
	for _, v := range s.Variants {
		if v.Name == name {
			return v, true
		}
	}
	return Variant{}, false
}

// VariantNames lists the variants in declaration order.
func (s *Scenario) VariantNames() []string {
	out := make([]string, len(s.Variants))
	for i, v := range s.Variants {
		out[i] = v.Name
	}
	return out
}

// Wants reports whether a failure message is one this variant produces.
func (v Variant) Wants(msg string) bool {
	for _, w := range strings.Split(v.Want, "|") {
		if strings.Contains(msg, w) {
			return true
		}
	}
	return false
}

// KernelConfig returns the configuration Run uses for variant.
func (s *Scenario) KernelConfig(variant string) kernel.Config {
	if s.Config != nil {
		return s.Config(variant)
	}
	return ExploreConfig()
}

// ExploreConfig is the default kernel configuration for scenarios: Windows
// defaults with every exploration knob on (injected preemptions and stalls,
// compute jitter, decided ready order). Choice 0 everywhere is still the
// plain Windows behaviour.
func ExploreConfig() kernel.Config {
	c := kernel.DefaultConfig()
	c.InjectPreemption = true
	c.FineStalls = true
	c.JitterLevels = 4
	c.DecideReadyOrder = true
	return c
}

var registry []*Scenario

// Register adds s to the registry. It panics on a duplicate or malformed
// scenario: registration happens at init time and is a programming error.
func Register(s *Scenario) {
	if s.Name == "" || s.Setup == nil || len(s.Variants) == 0 {
		panic(fmt.Sprintf("model: scenario %q needs a name, a Setup and at least one variant", s.Name))
	}
	if _, err := Lookup(s.Name); err == nil {
		panic("model: scenario " + s.Name + " registered twice")
	}
	registry = append(registry, s)
	slices.SortFunc(registry, func(a, b *Scenario) int { return strings.Compare(a.Name, b.Name) })
}

// All returns every registered scenario sorted by name.
func All() []*Scenario { return registry }

// Lookup finds a scenario by name.
func Lookup(name string) (*Scenario, error) {
	for _, s := range registry {
		if s.Name == name {
			return s, nil
		}
	}
	names := make([]string, len(registry))
	for i, s := range registry {
		names[i] = s.Name
	}
	return nil, fmt.Errorf("unknown scenario %q; known scenarios: %s (run `wqsim list`)", name, strings.Join(names, ", "))
}

// Resolve parses "scenario[:variant]" and checks both exist. The default
// variant is the first bug variant if any, else the first one.
func Resolve(spec string) (*Scenario, string, error) {
	name, variant, _ := strings.Cut(spec, ":")
	s, err := Lookup(name)
	if err != nil {
		return nil, "", err
	}
	if variant == "" {
		variant = s.Variants[0].Name
		for _, v := range s.Variants {
			if v.Bug {
				variant = v.Name
				break
			}
		}
	}
	if _, ok := s.Variant(variant); !ok {
		return nil, "", fmt.Errorf("scenario %q has no variant %q; its variants: %s", name, variant, strings.Join(s.VariantNames(), ", "))
	}
	return s, variant, nil
}

// PointWorkload is the decision kind of workload choices (Env.Choose).
const PointWorkload des.PointKind = 60
