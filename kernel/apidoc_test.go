package kernel_test

import (
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

var updateAPIDoc = flag.Bool("update-api-doc", false, "rewrite docs/API.md from the doc comments")

// apiSurface is one group of NT routines a driver calls: where they live
// and how a scenario reaches them.
type apiSurface struct {
	dir, recv, title, reach string
}

var apiSurfaces = []apiSurface{
	{".", "Kernel", "Kernel routines", "methods of `*kernel.Kernel` (`env.K` in a scenario)"},
	{"../queues", "System", "I/O manager and executive work queues", "methods of `*queues.System` (`queues.NewSystem(env.K, …)`)"},
	{"../queues", "DRIVER_OBJECT", "Driver-object helpers", "methods of `*queues.DRIVER_OBJECT`, for code tied to a driver image"},
	{"../queues", "", "Library routines of package queues", "functions of package `queues` (IoCsq, work-item initialisers)"},
	{"../queues/fltmgr", "FilterManager", "Filter manager", "methods of `*fltmgr.FilterManager` (`fltmgr.New(env.K, sys, …)`)"},
}

var (
	irqlLine  = regexp.MustCompile(`IRQL:\s*(.+?)(?:\s\(|\.\s|\.$|;)`)
	irqlRule  = regexp.MustCompile(`(?:Caller IRQL|caller IRQL|Callers? (?:must be|run) at IRQL)\s*(.+?)(?:\s\(|\.\s|\.$|;|,)`)
	irqlBound = regexp.MustCompile(`\bIRQL\s*((?:≤|<=|<|=)\s*[A-Z_]+(?:_LEVEL)?)`)
	anyIRQL   = regexp.MustCompile(`(?i)\bany IRQL\b|\bany level\b|IRQL: any`)
	sectionRe = regexp.MustCompile(`§\d+(?:\.\d+)?`)
)

// apiRow is one routine: its name, the IRQL its doc comment states and the
// REFERENCE sections it cites.
type apiRow struct{ name, irql, sections string }

// apiRows returns the routines of one surface, sorted by name.
func apiRows(t *testing.T, s apiSurface) []apiRow {
	files, err := filepath.Glob(filepath.Join(s.dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var rows []apiRow
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range af.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || !fd.Name.IsExported() || !isAPIRoutine(fd.Name.Name) || receiverName(fd) != s.recv {
				continue
			}
			rows = append(rows, apiRowOf(fd.Name.Name, fd.Doc.Text()))
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].name < rows[j].name })
	return rows
}

// isAPIRoutine reports an NT routine name, the filter manager's Flt ones
// included.
func isAPIRoutine(name string) bool {
	return ntRoutine.MatchString(name) || fltRoutine.MatchString(name)
}

var fltRoutine = regexp.MustCompile(`^Flt[A-Z]`)

func receiverName(fd *ast.FuncDecl) string {
	if fd.Recv == nil || len(fd.Recv.List) != 1 {
		return ""
	}
	if star, ok := fd.Recv.List[0].Type.(*ast.StarExpr); ok {
		if id, ok := star.X.(*ast.Ident); ok {
			return id.Name
		}
	}
	return "?"
}

func apiRowOf(name, doc string) apiRow {
	flat := strings.Join(strings.Fields(doc), " ")
	r := apiRow{name: name, irql: "—"}
	if m := irqlLine.FindStringSubmatch(flat); m != nil {
		r.irql = strings.TrimRight(strings.TrimSpace(m[1]), ",")
	} else if m := irqlRule.FindStringSubmatch(flat); m != nil {
		r.irql = strings.TrimRight(strings.TrimSpace(m[1]), ",")
	} else if m := irqlBound.FindStringSubmatch(flat); m != nil {
		r.irql = m[1]
	} else if anyIRQL.MatchString(flat) {
		r.irql = "any"
	}
	seen := map[string]bool{}
	var secs []string
	for _, sec := range sectionRe.FindAllString(flat, -1) {
		if !seen[sec] {
			seen[sec] = true
			secs = append(secs, sec)
		}
	}
	r.sections = strings.Join(secs, ", ")
	return r
}

// apiDoc renders docs/API.md.
func apiDoc(t *testing.T) string {
	var b strings.Builder
	b.WriteString("# The simulated Windows API\n\n")
	b.WriteString("Every Windows routine a scenario can call, by where it lives, with the IRQL its doc comment\n")
	b.WriteString("states and the sections of [REFERENCE.md](REFERENCE.md) it follows. The doc comment (`go doc`)\n")
	b.WriteString("has the details: what misuse is reported and how. This file is generated from the doc\n")
	b.WriteString("comments; `go test ./kernel -run TestAPIDocIsCurrent -update-api-doc` rewrites it, and the\n")
	b.WriteString("test fails when it is stale.\n")
	total := 0
	for _, s := range apiSurfaces {
		rows := apiRows(t, s)
		total += len(rows)
		fmt.Fprintf(&b, "\n## %s (%d)\n\n%s.\n\n| routine | IRQL | REFERENCE |\n|---|---|---|\n", s.title, len(rows), strings.ToUpper(s.reach[:1])+s.reach[1:])
		for _, r := range rows {
			fmt.Fprintf(&b, "| `%s` | %s | %s |\n", r.name, r.irql, r.sections)
		}
	}
	fmt.Fprintf(&b, "\n%d routines in all.\n", total)
	return b.String()
}

// TestAPIDocIsCurrent keeps docs/API.md, the list of modelled routines,
// equal to what the doc comments say.
func TestAPIDocIsCurrent(t *testing.T) {
	want := apiDoc(t)
	path := filepath.Join("..", "docs", "API.md")
	if *updateAPIDoc {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v: generate it with go test ./kernel -run TestAPIDocIsCurrent -update-api-doc", err)
	}
	if string(got) != want {
		t.Fatalf("docs/API.md is stale: regenerate it with go test ./kernel -run TestAPIDocIsCurrent -update-api-doc")
	}
}
