package proptest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/internal/atomicfile"
	"github.com/wqsim/wqsim/model"
)

// FailFileVersion is the format version written in the first line.
// Version 2 added the exec, base-seed and shard fields. Version 3: the
// trace hash covers each record's sub-kind (What); the hashes in older
// files were computed without it, so they cannot be checked and such files
// are refused with that reason. Version 4 (2026-12-05): the trace hash
// folds one digest per record (des.HashRecord); version 3 files are still
// read, and replayed with the version 3 hash (des.Config.HashV3), so their
// recorded hash is checked as before. Version 5 (2026-12-05) adds the
// budget line: the step and decision budgets the run had (a scenario may
// declare its own, model.Scenario.Budget, and the command line may
// override it), so that a run ending on its budget replays with the same
// one. Files of versions 3 and 4 have no budget line; every run then had
// the defaults (model.DefaultBudget), which is what they replay with.
// Version 6 (2026-12-05): the runs had kernel.Config.FineStalls as their
// scenario configures it (short stalls, stalls at DISPATCH_LEVEL); files of
// versions 3 to 5 were written without them and replay with them off
// (model.RunConfig.CoarseStalls), so their decision logs still match.
const FailFileVersion = 6

// firstFineStallsVersion is the first format whose runs may have had
// kernel.Config.FineStalls.
const firstFineStallsVersion = 6

// firstBudgetVersion is the first format with a budget line.
const firstBudgetVersion = 5

// oldestHashCheckedVersion is the oldest format whose hash can be checked.
const oldestHashCheckedVersion = 3

// MaxFailFileDecisions is the longest decision log a fail file holds: the
// writer refuses a longer one (the failure is then printed instead) and
// the reader refuses a file announcing more, so every file written can be
// read back. MaxFailFileBytes caps how much of a file the reader takes.
const (
	MaxFailFileDecisions = 1_000_000
	MaxFailFileBytes     = 256 << 20
)

const failMagic = "wqsim-failfile"

// FailFile is a failing execution saved for replay.
type FailFile struct {
	Scenario string
	Variant  string
	Seed     uint64
	Strategy string // informational
	// Exec is the execution's index in its exploration, BaseSeed that
	// exploration's --seed and Shard/Shards its --shard: which execution
	// of which run found the failure (wqsim merge compares them).
	Exec          int
	BaseSeed      uint64
	Shard, Shards int
	Hash          uint64 // trace hash of the recorded run; a replay must match
	// Budget is the run's budget (model.Result.Budget); a replay runs with
	// it, whatever the scenario declares now.
	Budget model.Budget
	// Version is the format version the file was read with (Encode always
	// writes FailFileVersion); it says which trace hash Hash is and whether
	// the run had kernel.Config.FineStalls. 0 (a FailFile built in memory)
	// is the current version.
	Version   int
	Outcome   string // informational (# line)
	Marks     []string
	Tail      []des.Record
	Decisions []des.Decision
	// Reproduce, if set, says how the file is re-run in its "# reproduce:"
	// comments; nil means DefaultReproduce. Not read back.
	Reproduce *Reproduce
}

// Encode renders f in the text format:
//
//	wqsim-failfile 6
//	scenario: NAME
//	variant: NAME
//	seed: N
//	strategy: TEXT
//	exec: N
//	base-seed: N
//	shard: I/N
//	hash: 0xHEX
//	budget: steps=N decisions=N
//	# outcome / marks / trace tail / reproduce lines
//	decisions: N
//	KIND OPTIONS CHOICE LABEL     (one per decision)
//	end
func (f *FailFile) Encode(path string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %d\n", failMagic, FailFileVersion)
	fmt.Fprintf(&b, "scenario: %s\nvariant: %s\nseed: %d\nstrategy: %s\n", f.Scenario, f.Variant, f.Seed, oneLine(f.Strategy))
	fmt.Fprintf(&b, "exec: %d\nbase-seed: %d\nshard: %d/%d\nhash: %#x\n", f.Exec, f.BaseSeed, f.Shard, max(f.Shards, 1), f.Hash)
	bud := f.Budget
	if bud == (model.Budget{}) {
		bud = model.DefaultBudget // a FailFile built by hand: what its run had
	}
	fmt.Fprintf(&b, "budget: steps=%d decisions=%d\n", bud.Steps, bud.Decisions)
	fmt.Fprintf(&b, "# outcome: %s\n", oneLine(f.Outcome))
	if len(f.Marks) > 0 {
		fmt.Fprintf(&b, "# marks: %s\n", strings.Join(f.Marks, "; "))
	}
	if len(f.Tail) > 0 {
		b.WriteString("# trace tail:\n")
		var line []byte
		for i := range f.Tail {
			line = des.AppendRecordText(line[:0], &f.Tail[i])
			fmt.Fprintf(&b, "#   %s\n", line)
		}
	}
	how := DefaultReproduce
	if f.Reproduce != nil {
		how = *f.Reproduce
	}
	for _, l := range how.Lines(path) {
		fmt.Fprintf(&b, "# reproduce: %s\n", l)
	}
	fmt.Fprintf(&b, "decisions: %d\n", len(f.Decisions))
	for _, d := range f.Decisions {
		fmt.Fprintf(&b, "%d %d %d %s\n", d.Kind, d.N, d.Choice, oneLine(d.Label))
	}
	b.WriteString("end\n")
	return b.Bytes()
}

func oneLine(s string) string { return strings.NewReplacer("\n", " ", "\r", " ").Replace(s) }

// WriteFailFile writes f to path atomically (see internal/atomicfile: a
// temporary file in the same directory, synced, then renamed, so a reader
// never sees half a file), with permission 0644 like every output.
func WriteFailFile(path string, f *FailFile) error {
	if len(f.Decisions) > MaxFailFileDecisions {
		return fmt.Errorf("fail file %s: the run made %d decisions, more than the %d a fail file holds", path, len(f.Decisions), MaxFailFileDecisions)
	}
	if err := atomicfile.Write(path, func(w io.Writer) error {
		_, err := w.Write(f.Encode(path))
		return err
	}); err != nil {
		return fmt.Errorf("fail file %s: %w", path, err)
	}
	return nil
}

// ReadFailFile reads and parses a fail file. Only a regular file of at
// most MaxFailFileBytes is read: a FIFO would block and /dev/zero would
// never end.
func ReadFailFile(path string) (*FailFile, error) {
	data, err := ReadInput(path, MaxFailFileBytes)
	if err != nil {
		return nil, fmt.Errorf("cannot read fail file: %w", err)
	}
	f, err := ParseFailFile(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// ParseError says where a fail file is malformed and what to do.
type ParseError struct {
	Line int
	Msg  string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
}

// ParseFailFile parses the text format strictly: wrong version, missing or
// reordered header fields, bad numbers, a decision count that does not
// match, or a missing "end" line (a truncated file) are errors.
func ParseFailFile(data []byte) (*FailFile, error) {
	p := &failParser{sc: bufio.NewScanner(bytes.NewReader(data))}
	p.sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	f := &FailFile{}
	if err := p.header(f); err != nil {
		return nil, err
	}
	var err error
	if f.Scenario, err = p.field("scenario"); err != nil {
		return nil, err
	}
	if f.Variant, err = p.field("variant"); err != nil {
		return nil, err
	}
	if f.Seed, err = p.uintField("seed", 10); err != nil {
		return nil, err
	}
	if f.Strategy, err = p.field("strategy"); err != nil {
		return nil, err
	}
	if err := p.origin(f); err != nil {
		return nil, err
	}
	if f.Hash, err = p.uintField("hash", 0); err != nil {
		return nil, err
	}
	if err := p.budget(f); err != nil {
		return nil, err
	}
	if err := p.comments(f); err != nil {
		return nil, err
	}
	if err := p.decisions(f); err != nil {
		return nil, err
	}
	return f, nil
}

type failParser struct {
	sc   *bufio.Scanner
	line int
	text string
	peek bool
}

func (p *failParser) next() bool {
	if p.peek {
		p.peek = false
		return true
	}
	if !p.sc.Scan() {
		return false
	}
	p.line++
	p.text = strings.TrimRight(p.sc.Text(), "\r")
	return true
}

func (p *failParser) errf(format string, a ...any) error {
	return &ParseError{Line: p.line, Msg: fmt.Sprintf(format, a...)}
}

func (p *failParser) header(f *FailFile) error {
	if !p.next() {
		return p.errf("empty file; a fail file starts with %q", fmt.Sprintf("%s %d", failMagic, FailFileVersion))
	}
	magic, ver, ok := strings.Cut(p.text, " ")
	if !ok || magic != failMagic {
		return p.errf("not a wqsim fail file (first line %q, want %q)", p.text, fmt.Sprintf("%s %d", failMagic, FailFileVersion))
	}
	v, err := strconv.Atoi(ver)
	if err == nil && (v == 1 || v == 2) {
		return p.errf("fail file format version %d: written by an older wqsim whose trace hash left out each record's sub-kind, so its hash cannot be checked; re-run the exploration that found it (same scenario and seed) to write a version %d file", v, FailFileVersion)
	}
	if err != nil || v < oldestHashCheckedVersion || v > FailFileVersion {
		return p.errf("fail file format version %q, this wqsim reads versions %d to %d; re-run the exploration with this version to regenerate it", ver, oldestHashCheckedVersion, FailFileVersion)
	}
	f.Version = v
	return nil
}

func (p *failParser) field(name string) (string, error) {
	if !p.next() {
		return "", p.errf("file ends before the %q field (truncated?)", name)
	}
	val, ok := strings.CutPrefix(p.text, name+": ")
	if !ok {
		return "", p.errf("want field %q, found %q", name+": …", p.text)
	}
	return val, nil
}

func (p *failParser) uintField(name string, base int) (uint64, error) {
	s, err := p.field(name)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseUint(s, base, 64)
	if err != nil {
		return 0, p.errf("field %q: %q is not an unsigned number", name, s)
	}
	return v, nil
}

// comments reads # lines, keeping the outcome and marks.
func (p *failParser) comments(f *FailFile) error {
	for p.next() {
		if !strings.HasPrefix(p.text, "#") {
			p.peek = true
			return nil
		}
		if o, ok := strings.CutPrefix(p.text, "# outcome: "); ok {
			f.Outcome = o
		}
		if m, ok := strings.CutPrefix(p.text, "# marks: "); ok {
			f.Marks = strings.Split(m, "; ")
		}
	}
	return p.errf("file ends before the decisions (truncated?)")
}

func (p *failParser) decisions(f *FailFile) error {
	countText, err := p.field("decisions")
	if err != nil {
		return err
	}
	count, err := strconv.Atoi(countText)
	if err != nil || count < 0 {
		return p.errf("decisions: %q is not a valid count", countText)
	}
	if count > MaxFailFileDecisions {
		return p.errf("decisions: %d is more than the %d a fail file may hold", count, MaxFailFileDecisions)
	}
	f.Decisions = make([]des.Decision, 0, min(count, 4096))
	for p.next() {
		if p.text == "end" {
			if len(f.Decisions) != count {
				return p.errf("header says %d decisions, file has %d", count, len(f.Decisions))
			}
			if p.next() && strings.TrimSpace(p.text) != "" {
				return p.errf("unexpected text after \"end\": %q", p.text)
			}
			return nil
		}
		d, err := p.decision()
		if err != nil {
			return err
		}
		f.Decisions = append(f.Decisions, d)
		if len(f.Decisions) > count {
			return p.errf("more decisions than the %d the header announces", count)
		}
	}
	return p.errf("missing \"end\" line: the file is truncated (%d of %d decisions read)", len(f.Decisions), count)
}

// budget reads the budget line of a version 5 or later file; older files get the
// defaults every run had before scenarios could declare a budget.
func (p *failParser) budget(f *FailFile) error {
	if f.Version < firstBudgetVersion {
		f.Budget = model.DefaultBudget
		return nil
	}
	s, err := p.field("budget")
	if err != nil {
		return err
	}
	var b model.Budget
	if n, err := fmt.Sscanf(s, "steps=%d decisions=%d", &b.Steps, &b.Decisions); err != nil || n != 2 ||
		b.Steps == 0 || b.Decisions == 0 || s != fmt.Sprintf("steps=%d decisions=%d", b.Steps, b.Decisions) {
		return p.errf("budget: %q, want \"steps=N decisions=N\" with both positive", s)
	}
	f.Budget = b
	return nil
}

// origin reads the exec, base-seed and shard fields.
func (p *failParser) origin(f *FailFile) error {
	exec, err := p.uintField("exec", 10)
	if err != nil {
		return err
	}
	if exec > 1<<40 {
		return p.errf("exec: %d is not a plausible execution index", exec)
	}
	f.Exec = int(exec)
	if f.BaseSeed, err = p.uintField("base-seed", 10); err != nil {
		return err
	}
	s, err := p.field("shard")
	if err != nil {
		return err
	}
	if f.Shard, f.Shards, err = ParseShard(s); err != nil {
		return p.errf("shard: %v", err)
	}
	return nil
}

func (p *failParser) decision() (des.Decision, error) {
	fields := strings.SplitN(p.text, " ", 4)
	if len(fields) < 3 {
		return des.Decision{}, p.errf("decision line %q: want \"KIND OPTIONS CHOICE LABEL\"", p.text)
	}
	kind, err1 := strconv.ParseUint(fields[0], 10, 16)
	n, err2 := strconv.ParseInt(fields[1], 10, 32)
	c, err3 := strconv.ParseInt(fields[2], 10, 32)
	if err1 != nil || err2 != nil || err3 != nil {
		return des.Decision{}, p.errf("decision line %q: KIND, OPTIONS and CHOICE must be numbers", p.text)
	}
	if n < 2 || c < 0 || c >= n {
		return des.Decision{}, p.errf("decision line %q: need OPTIONS ≥ 2 and 0 ≤ CHOICE < OPTIONS", p.text)
	}
	d := des.Decision{Kind: des.PointKind(kind), N: int32(n), Choice: int32(c)}
	if len(fields) == 4 {
		d.Label = fields[3]
	}
	return d, nil
}
