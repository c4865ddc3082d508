package bench

import (
	"context"
	"encoding/csv"
	"flag"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/model"
	_ "github.com/wqsim/wqsim/model/reports"
	_ "github.com/wqsim/wqsim/model/sct"
	"github.com/wqsim/wqsim/proptest"
)

// The published protocol (SURW, RFF): per program and strategy, Seeds
// independent runs of up to Execs executions each; a run is a success when
// it finds the bug, and the figure is successes out of Seeds and the median
// executions to the bug over the successful runs. Run the full protocol with
//
//	go test ./bench -run '^TestProtocol$' -wqsim.protocol -timeout 0
//
// and a reduced one with the flags below (say -wqsim.protocol.seeds 5
// -wqsim.protocol.strategies portfolio). TestProtocolReduced runs a small
// slice of it in every go test.
var (
	flagProtocol   = flag.Bool("wqsim.protocol", false, "run the published protocol (TestProtocol)")
	flagPSeeds     = flag.Int("wqsim.protocol.seeds", 20, "runs (seeds) per program and strategy")
	flagPExecs     = flag.Int("wqsim.protocol.execs", 10000, "executions per run")
	flagPPrograms  = flag.String("wqsim.protocol.programs", "", "regexp on scenario:variant (default: every bug variant)")
	flagPStrats    = flag.String("wqsim.protocol.strategies", "portfolio,random,pct,pos,surw", "strategies, comma-separated")
	flagPSurvive   = flag.Int("wqsim.protocol.survive", 0, "also run every correct variant this many executions under the default")
	flagPShrink    = flag.Bool("wqsim.protocol.shrink", true, "shrink every failure the default finds and report its perturbations")
	flagPParallel  = flag.Int("wqsim.protocol.parallel", 0, "workers per run (0: GOMAXPROCS)")
	flagPPublished = flag.String("wqsim.protocol.published", "published/published.csv", "published per-program figures")
)

// protocolRow is one program under one strategy.
type protocolRow struct {
	program  string // scenario:variant
	strategy string
	hits     int
	runs     int
	toBug    []int // executions to the bug of each successful run
	perturbs []int // perturbations left after shrinking (default only)
	complete int   // shrinks that finished (1-minimal)
}

func (r protocolRow) median() string {
	if len(r.toBug) == 0 {
		return "-"
	}
	s := slices.Clone(r.toBug)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return strconv.Itoa(s[len(s)/2])
	}
	return strconv.FormatFloat(float64(s[len(s)/2-1]+s[len(s)/2])/2, 'f', -1, 64)
}

// protocolPrograms lists the bug variants matching pattern.
func protocolPrograms(t testing.TB, pattern string) []string {
	re, err := regexp.Compile(pattern)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range model.All() {
		for _, v := range s.Variants {
			if name := s.Name + ":" + v.Name; v.Bug && re.MatchString(name) {
				out = append(out, name)
			}
		}
	}
	return out
}

// runProtocol runs every program under every strategy.
func runProtocol(t testing.TB, programs, strategies []string, seeds, execs, parallel int, shrink bool) []protocolRow {
	var rows []protocolRow
	for _, p := range programs {
		s, v, err := model.Resolve(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range strategies {
			row := protocolRow{program: p, strategy: name, runs: seeds}
			for seed := 1; seed <= seeds; seed++ {
				st, err := proptest.NewStrategy(name)
				if err != nil {
					t.Fatal(err)
				}
				rep, err := proptest.Explore(context.Background(), proptest.Options{Scenario: s, Variant: v, Strategy: st,
					Execs: execs, Seed: uint64(seed), Parallel: parallel})
				if err != nil {
					t.Fatal(err)
				}
				f := rep.First()
				if f == nil {
					continue
				}
				row.hits++
				row.toBug = append(row.toBug, f.Exec+1)
				if shrink && name == "portfolio" {
					sh, err := proptest.Minimize(s, v, f.Seed, f.Result.Outcome.Decisions, proptest.ShrinkOptions{})
					if err != nil {
						t.Fatal(err)
					}
					row.perturbs = append(row.perturbs, nonZero(sh.Log))
					if sh.Complete {
						row.complete++
					}
				}
			}
			rows = append(rows, row)
		}
	}
	return rows
}

func nonZero(log []des.Decision) int {
	n := 0
	for _, d := range log {
		if d.Choice != 0 {
			n++
		}
	}
	return n
}

// published reads the per-program figures suite collected: for each of our
// scenario:variant names, tool → "hits/runs (median)".
func published(path string) map[string]map[string]string {
	out := map[string]map[string]string{}
	f, err := os.Open(path)
	if err != nil {
		return out
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil || len(recs) < 2 {
		return out
	}
	for _, r := range recs[1:] {
		if len(r) < 7 {
			continue
		}
		prog, tool := r[2], r[3]
		if out[prog] == nil {
			out[prog] = map[string]string{}
		}
		med := r[6]
		if med == "" {
			med = "-"
		}
		key := tool
		if strings.HasPrefix(r[0], "RFF") {
			key = "RFF:" + tool
		}
		out[prog][key] = fmt.Sprintf("%s/%s (%s)", r[5], r[4], med)
	}
	return out
}

// protocolTable renders rows as markdown beside the published figures.
func protocolTable(rows []protocolRow, pub map[string]map[string]string) string {
	var b strings.Builder
	b.WriteString("| program | strategy | found | median execs to bug | perturbations after shrinking (1-minimal/total) | published SURW | PCT-3 | POS | RW | RFF | RFF:PCT3 | RFF:POS |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		shr := "-"
		if len(r.perturbs) > 0 {
			shr = fmt.Sprintf("max %d, %v (%d/%d)", slices.Max(r.perturbs), r.perturbs, r.complete, len(r.perturbs))
		}
		p := pub[r.program]
		get := func(k string) string {
			if v, ok := p[k]; ok {
				return v
			}
			return ""
		}
		fmt.Fprintf(&b, "| %s | %s | %d/%d | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.program, r.strategy, r.hits, r.runs, r.median(), shr,
			get("SURW"), get("PCT-3"), get("POS"), get("RW"), get("RFF:RFF"), get("RFF:PCT3"), get("RFF:POS"))
	}
	return b.String()
}

// TestProtocol is the published protocol, behind -wqsim.protocol.
func TestProtocol(t *testing.T) {
	if !*flagProtocol {
		t.Skip("run with -wqsim.protocol (see the comment on the flags)")
	}
	programs := protocolPrograms(t, *flagPPrograms)
	rows := runProtocol(t, programs, strings.Split(*flagPStrats, ","), *flagPSeeds, *flagPExecs, *flagPParallel, *flagPShrink)
	t.Logf("protocol: %d seeds × %d executions\n%s", *flagPSeeds, *flagPExecs, protocolTable(rows, published(*flagPPublished)))
	if n := *flagPSurvive; n > 0 {
		survive(t, n)
	}
}

// survive runs every correct variant n executions under the default.
func survive(t *testing.T, n int) {
	for _, s := range model.All() {
		for _, v := range s.Variants {
			if v.Bug {
				continue
			}
			rep, err := proptest.Explore(context.Background(), proptest.Options{Scenario: s, Variant: v.Name, Execs: n, Seed: 1, Parallel: *flagPParallel})
			if err != nil {
				t.Fatal(err)
			}
			if f := rep.First(); f != nil {
				t.Errorf("%s:%s failed at execution %d: %v", s.Name, v.Name, f.Exec, f.Result.Outcome.Err)
				continue
			}
			t.Logf("%s:%s survived %d executions (%d distinct schedules)", s.Name, v.Name, rep.Execs, rep.Fingerprints)
		}
	}
}

// TestProtocolReduced runs a slice of the protocol in every go test: two
// seeds of the default on reorder_5 and reorder_100 (where PCT, POS and the
// random walk published 0–1 of 20 at 100) and a ConVul CVE, each found and
// shrunk to at most 3 perturbations, 1-minimal.
func TestProtocolReduced(t *testing.T) {
	programs := protocolPrograms(t, `^sct-reorder:n(5|100)$|^cve-2016-7911:bug$`)
	if len(programs) == 0 {
		t.Skip("no suite programs registered")
	}
	rows := runProtocol(t, programs, []string{"portfolio"}, 2, 10000, 0, true)
	for _, r := range rows {
		if r.hits != r.runs {
			t.Errorf("%s: found in %d of %d runs of 10,000", r.program, r.hits, r.runs)
		}
		for _, p := range r.perturbs {
			if p > 3 {
				t.Errorf("%s: shrunk to %d perturbations", r.program, p)
			}
		}
		if r.complete != len(r.perturbs) {
			t.Errorf("%s: %d of %d shrinks cut short", r.program, len(r.perturbs)-r.complete, len(r.perturbs))
		}
	}
	t.Logf("\n%s", protocolTable(rows, published(*flagPPublished)))
}
