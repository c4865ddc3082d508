package des_test

// Module-wide hygiene tests. They live in des only because des is the one
// package every layer depends on; they check the whole module:
//
//	TestLayering      which wqsim package may import which (go list -deps)
//	TestTidy          simulated code (des, kernel, queues, model) uses no
//	                  wall clock, no global random source, no goroutines or
//	                  channels and no map iteration order
//	TestTidyChecker   the tidy checker itself, on one bad snippet per rule
//
// Both module tests shell out to the go command found on PATH (go test puts
// GOROOT/bin first) and take a fraction of a second with a warm build cache.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

const modulePath = "github.com/wqsim/wqsim"

// ---------------------------------------------------------------------------
// Layering

// layerRule says which wqsim layers a layer may import. A layer is a
// top-level directory; its subpackages belong to it and may import each
// other. anyLayer marks the layers at the top, which may import everything.
type layerRule struct {
	layer    string
	allowed  []string
	anyLayer bool
	text     string // the rule as failure messages quote it
}

var layerRules = []layerRule{
	{layer: "des", text: "des imports no wqsim package"},
	{layer: "kernel", allowed: []string{"des"}, text: "kernel imports only des"},
	{layer: "queues", allowed: []string{"kernel", "des"}, text: "queues imports only kernel and des"},
	{layer: "model", allowed: []string{"queues", "kernel", "des"}, text: "model imports only queues, kernel and des"},
	{layer: "proptest", allowed: []string{"model", "queues", "kernel", "des", "timeline", "internal"}, text: "proptest imports only model, queues, kernel, des, timeline and internal"},
	{layer: "internal", text: "internal imports no wqsim package"},
	{layer: "timeline", allowed: []string{"queues", "kernel", "des", "internal"}, text: "timeline imports only queues, kernel, des and internal"},
	{layer: "lab", allowed: []string{"queues", "kernel", "des", "internal"}, text: "lab imports only queues, kernel, des and internal"},
	{layer: "bench", anyLayer: true, text: "bench may import any wqsim package"},
	{layer: "cli", anyLayer: true, text: "cli may import any wqsim package"},
	{layer: "cmd/wqsim", anyLayer: true, text: "cmd/wqsim may import any wqsim package"},
}

// ruleFor returns the rule of the layer holding the wqsim package with
// import path p, or nil if no layer holds it.
func ruleFor(p string) *layerRule {
	rel, ok := strings.CutPrefix(p, modulePath+"/")
	if !ok {
		return nil
	}
	for i := range layerRules {
		r := &layerRules[i]
		if rel == r.layer || strings.HasPrefix(rel, r.layer+"/") {
			return r
		}
	}
	return nil
}

func isWqsim(p string) bool { return p == modulePath || strings.HasPrefix(p, modulePath+"/") }

// TestLayering checks every import between wqsim packages against
// layerRules. Only direct imports of non-test files are checked: the allowed
// sets are closed under "imports" (asserted first), so legal direct imports
// make every transitive dependency legal too. Test files may import upward
// (a model test may drive proptest), as Go permits for external tests.
func TestLayering(t *testing.T) {
	for _, r := range layerRules {
		for _, a := range r.allowed {
			if below := ruleFor(modulePath + "/" + a); below == nil || below.anyLayer ||
				slices.ContainsFunc(below.allowed, func(x string) bool { return !slices.Contains(r.allowed, x) }) {
				t.Fatalf("layerRules is not closed: %s may import %s, so it must also allow everything %s may import", r.layer, a, a)
			}
		}
	}
	root := moduleRoot(t)
	pkgs := goList(t, root, "-e", "-f", "{{.ImportPath}}", "./...")
	imports := make(map[string][]string) // direct imports of each package in the closure
	args := append([]string{"-e", "-deps", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}"}, pkgs...)
	for _, line := range goList(t, root, args...) {
		f := strings.Fields(line)
		imports[f[0]] = f[1:]
	}
	// A package of the module that belongs to no layer is a user's: it may
	// import anything, and checkImports makes sure no layer imports it.
	for _, r := range layerRules {
		t.Run(strings.ReplaceAll(r.layer, "/", "_"), func(t *testing.T) {
			var members []string
			for _, p := range pkgs {
				if pr := ruleFor(p); pr != nil && pr.layer == r.layer {
					members = append(members, p)
				}
			}
			if len(members) == 0 {
				t.Skipf("no Go package under %s/ yet", r.layer)
			}
			for _, p := range members {
				checkImports(t, p, imports[p], r)
			}
		})
	}
}

func checkImports(t *testing.T, p string, imports []string, r layerRule) {
	t.Helper()
	for _, imp := range imports {
		if !isWqsim(imp) {
			continue
		}
		to := ruleFor(imp)
		switch {
		case to == nil:
			t.Errorf("%s imports %s, a user package outside the layer stack: wqsim's own packages never import users' (rule: %s)", p, imp, r.text)
		case to.layer == r.layer || r.anyLayer || slices.Contains(r.allowed, to.layer):
		default:
			t.Errorf("%s imports %s: breaks the layering rule %q", p, imp, r.text)
		}
	}
}

// moduleRoot walks up from the working directory to the directory holding
// go.mod.
func moduleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's working directory")
		}
		dir = parent
	}
}

// goList runs `go list args...` in dir and returns its non-empty output lines.
func goList(t testing.TB, dir string, args ...string) []string {
	t.Helper()
	out, err := runGo(dir, append([]string{"list"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

func runGo(dir string, args ...string) ([]byte, error) {
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return out, nil
}

// ---------------------------------------------------------------------------
// Tidy: the rules

// simulatedDirs are the layers whose non-test code runs inside a simulation.
var simulatedDirs = []string{"des", "kernel", "queues", "model"}

// Rule categories, for exemptions.
const (
	catTime     = "wall clock"
	catRand     = "global random source"
	catGo       = "goroutine"
	catChan     = "channel"
	catMapRange = "map order"
)

// exempt lists files allowed to break a category. des/proc.go builds the
// coroutines on iter.Pull and may use what iter.Pull needs: goroutines and
// channels (it uses neither today). Clock, randomness and map order stay
// banned there too.
var exempt = map[string][]string{
	"des/proc.go": {catGo, catChan},
}

var timeFixes = map[string]string{
	"Now":       "use sim.Now() (virtual time)",
	"Since":     "use sim.Now().Sub(t) (virtual time)",
	"Until":     "use t.Sub(sim.Now()) (virtual time)",
	"Sleep":     "use p.Sleep(d) on the running *des.Proc (virtual time)",
	"After":     "use sim.After(d, fn), a cancellable virtual-time event",
	"AfterFunc": "use sim.After(d, fn), a cancellable virtual-time event",
	"NewTimer":  "use sim.After(d, fn), a cancellable virtual-time event",
	"Tick":      "use sim.After(d, fn) and re-arm it from fn (a virtual-time ticker)",
	"NewTicker": "use sim.After(d, fn) and re-arm it from fn (a virtual-time ticker)",
}

// randV2Allowed are the math/rand/v2 names that involve no global source:
// the types and the constructors of explicitly seeded generators. Every
// other exported name of the package is a function of the global source.
var randV2Allowed = map[string]bool{
	"Rand": true, "Source": true, "PCG": true, "ChaCha8": true, "Zipf": true,
	"New": true, "NewPCG": true, "NewChaCha8": true, "NewZipf": true,
}

// mapsIterators yield a map's entries in map order.
var mapsIterators = map[string]bool{"All": true, "Keys": true, "Values": true}

const (
	fixRand     = "use sim.Rand() or a decision via sim.Choose"
	fixGo       = "use sim.Spawn (a coroutine)"
	fixChan     = "use des events (sim.At, sim.After) or kernel wait objects; channels block outside the event loop"
	fixMapRange = "iterate a sorted slice of keys (slices.Sorted(maps.Keys(m)))"
)

// violation is one finding: where, what construct, and what to use instead.
type violation struct {
	pos  token.Position
	cat  string
	what string
	fix  string
}

func (v violation) String() string {
	return fmt.Sprintf("%s:%d: %s: %s", v.pos.Filename, v.pos.Line, v.what, v.fix)
}

// ---------------------------------------------------------------------------
// Tidy: the checker

// checker inspects the files of one package. With type information
// (info != nil) it resolves names and types exactly. Without it (a package
// that does not type-check, a file excluded by build constraints) it falls
// back to syntax: package names come from the file's imports (a local
// variable shadowing an import name is not noticed, nor are dot imports),
// and map-typed expressions are recognised by syntax only (see mapSyntax).
type checker struct {
	fset *token.FileSet
	info *types.Info
	syn  *mapSyntax
	out  []violation
}

// checkFiles returns the violations in files. info may be nil (syntax only);
// all of files must belong to one package.
func checkFiles(fset *token.FileSet, files []*ast.File, info *types.Info) []violation {
	c := &checker{fset: fset, info: info}
	if info == nil {
		c.syn = newMapSyntax(files)
	}
	for _, f := range files {
		c.checkFile(f)
	}
	return c.out
}

func (c *checker) checkFile(f *ast.File) {
	name := filepath.ToSlash(c.fset.Position(f.Pos()).Filename)
	skip := exempt[name]
	imports := importNames(f)
	var fileMaps map[string]bool
	if c.syn != nil {
		fileMaps = c.syn.fileNames(f)
	}
	report := func(n ast.Node, cat, what, fix string) {
		if !slices.Contains(skip, cat) {
			c.out = append(c.out, violation{c.fset.Position(n.Pos()), cat, what, fix})
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.ImportSpec:
			if n.Path.Value == `"math/rand"` {
				report(n, catRand, "math/rand (v1) import", fixRand)
			}
		case *ast.Ident:
			if c.info != nil {
				c.checkTypedFunc(n, report)
			}
		case *ast.SelectorExpr:
			if c.info == nil {
				if id, ok := n.X.(*ast.Ident); ok && imports[id.Name] != "" {
					c.checkPackageFunc(n, imports[id.Name], n.Sel.Name, report)
				}
			}
		case *ast.GoStmt:
			report(n, catGo, "go statement", fixGo)
		case *ast.ChanType:
			report(n, catChan, "channel type", fixChan)
		case *ast.SendStmt:
			report(n, catChan, "channel send", fixChan)
		case *ast.UnaryExpr:
			if n.Op == token.ARROW {
				report(n, catChan, "channel receive", fixChan)
			}
		case *ast.SelectStmt:
			report(n, catChan, "select statement", fixChan)
		case *ast.RangeStmt:
			c.checkRange(n, imports, fileMaps, report)
		}
		return true
	})
}

type reportFunc func(n ast.Node, cat, what, fix string)

// checkTypedFunc reports a use of a banned package-level function, however
// it is named (qualified, renamed import, dot import).
func (c *checker) checkTypedFunc(id *ast.Ident, report reportFunc) {
	fn, ok := c.info.Uses[id].(*types.Func)
	if !ok || fn.Pkg() == nil || fn.Signature().Recv() != nil {
		return
	}
	c.checkPackageFunc(id, fn.Pkg().Path(), fn.Name(), report)
}

func (c *checker) checkPackageFunc(n ast.Node, pkg, name string, report reportFunc) {
	switch {
	case pkg == "time" && timeFixes[name] != "":
		report(n, catTime, "time."+name, timeFixes[name])
	case pkg == "math/rand/v2" && !randV2Allowed[name]:
		report(n, catRand, "math/rand global rand."+name, fixRand)
	}
}

func (c *checker) checkRange(r *ast.RangeStmt, imports map[string]string, fileMaps map[string]bool, report reportFunc) {
	if pkg, name := c.calledFunc(r.X, imports); pkg == "maps" && mapsIterators[name] {
		report(r, catMapRange, "map range (maps."+name+")", fixMapRange)
		return
	}
	if c.info == nil {
		if c.syn.isMap(r.X, fileMaps) {
			report(r, catMapRange, "map range", fixMapRange)
		}
		return
	}
	t := c.info.TypeOf(r.X)
	switch {
	case t == nil:
	case hasCore[*types.Map](t):
		report(r, catMapRange, "map range", fixMapRange)
	case hasCore[*types.Chan](t):
		report(r, catChan, "channel range", fixChan)
	}
}

// calledFunc returns the package path and name of the package-level
// function that e calls, if e is such a call.
func (c *checker) calledFunc(e ast.Expr, imports map[string]string) (pkg, name string) {
	call, ok := ast.Unparen(e).(*ast.CallExpr)
	if !ok {
		return "", ""
	}
	fun := ast.Unparen(call.Fun)
	if ix, ok := fun.(*ast.IndexExpr); ok { // explicit instantiation
		fun = ix.X
	}
	sel, ok := fun.(*ast.SelectorExpr)
	if !ok {
		return "", ""
	}
	if c.info != nil {
		if fn, ok := c.info.Uses[sel.Sel].(*types.Func); ok && fn.Pkg() != nil {
			return fn.Pkg().Path(), fn.Name()
		}
		return "", ""
	}
	if id, ok := sel.X.(*ast.Ident); ok {
		return imports[id.Name], sel.Sel.Name
	}
	return "", ""
}

// hasCore reports whether t's underlying type is a T, or, for a type
// parameter, whether its constraint limits it to types whose underlying
// type is a T.
func hasCore[T types.Type](t types.Type) bool {
	if tp, ok := t.(*types.TypeParam); ok {
		return constrainedTo[T](tp.Constraint().Underlying().(*types.Interface))
	}
	_, ok := t.Underlying().(T)
	return ok
}

func constrainedTo[T types.Type](iface *types.Interface) bool {
	for i := range iface.NumEmbeddeds() {
		e := iface.EmbeddedType(i)
		if u, ok := e.(*types.Union); ok {
			all := u.Len() > 0
			for j := range u.Len() {
				_, isT := u.Term(j).Type().Underlying().(T)
				all = all && isT
			}
			if all {
				return true
			}
		} else if in, ok := e.Underlying().(*types.Interface); ok {
			if constrainedTo[T](in) {
				return true
			}
		} else if _, ok := e.Underlying().(T); ok {
			return true
		}
	}
	return false
}

// importNames maps each name a file's imports bind to the import path.
// Blank and dot imports bind no name.
func importNames(f *ast.File) map[string]string {
	m := make(map[string]string)
	for _, s := range f.Imports {
		p := strings.Trim(s.Path.Value, "`\"")
		name := path.Base(p)
		if dir := path.Dir(p); dir != "." && len(name) > 1 && name[0] == 'v' && strings.Trim(name[1:], "0123456789") == "" {
			name = path.Base(dir) // math/rand/v2 is package rand
		}
		if s.Name != nil {
			name = s.Name.Name
		}
		if name != "_" && name != "." {
			m[name] = p
		}
	}
	return m
}

// ---------------------------------------------------------------------------
// Tidy: map detection without type information

// mapSyntax recognises map-typed expressions from syntax alone, used only
// when a package cannot be type-checked. It knows, by name:
//
//   - named types of the package whose definition is a map type;
//   - struct fields of the package declared with a map type (x.f is a map
//     when any struct of the package has a map field f);
//   - package-level variables and, per file, local variables, parameters,
//     results and receivers declared with a map type or assigned a map
//     literal, make(map...), a conversion to a map type or another such name.
//
// Limits: names are not scoped (a name declared as a map anywhere in a file
// counts as a map everywhere in it, which can give a false report), and a
// map that comes out of a function call, an index expression, a range
// variable or another package is not seen (a missed report). Type-checked
// packages, the normal case, use exact types instead.
type mapSyntax struct {
	types  map[string]bool // named map types
	fields map[string]bool // struct fields with a map type
	vars   map[string]bool // package-level map variables
}

func newMapSyntax(files []*ast.File) *mapSyntax {
	s := &mapSyntax{types: map[string]bool{}, fields: map[string]bool{}, vars: map[string]bool{}}
	for changed := true; changed; { // type M map[..]..; type N M
		changed = false
		for _, f := range files {
			ast.Inspect(f, func(n ast.Node) bool {
				if ts, ok := n.(*ast.TypeSpec); ok && !s.types[ts.Name.Name] && s.isMapType(ts.Type) {
					s.types[ts.Name.Name], changed = true, true
				}
				return true
			})
		}
	}
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			if st, ok := n.(*ast.StructType); ok {
				for _, fld := range st.Fields.List {
					if s.isMapType(fld.Type) {
						for _, id := range fld.Names {
							s.fields[id.Name] = true
						}
					}
				}
			}
			return true
		})
		for _, d := range f.Decls {
			if gd, ok := d.(*ast.GenDecl); ok && gd.Tok == token.VAR {
				for _, spec := range gd.Specs {
					s.addValueSpec(spec.(*ast.ValueSpec), s.vars, nil)
				}
			}
		}
	}
	return s
}

func (s *mapSyntax) isMapType(e ast.Expr) bool {
	switch e := ast.Unparen(e).(type) {
	case *ast.MapType:
		return true
	case *ast.Ident:
		return s.types[e.Name]
	}
	return false
}

// isMap reports whether e is syntactically a map, given the map names
// declared in its file.
func (s *mapSyntax) isMap(e ast.Expr, fileMaps map[string]bool) bool {
	switch e := ast.Unparen(e).(type) {
	case *ast.CompositeLit:
		return e.Type != nil && s.isMapType(e.Type)
	case *ast.CallExpr:
		if id, ok := e.Fun.(*ast.Ident); ok && id.Name == "make" && len(e.Args) > 0 {
			return s.isMapType(e.Args[0])
		}
		return len(e.Args) == 1 && s.isMapType(e.Fun) // conversion M(x)
	case *ast.Ident:
		return fileMaps[e.Name] || s.vars[e.Name]
	case *ast.SelectorExpr:
		return s.fields[e.Sel.Name]
	}
	return false
}

// fileNames returns the names declared as maps anywhere in f.
func (s *mapSyntax) fileNames(f *ast.File) map[string]bool {
	names := make(map[string]bool)
	for changed := true; changed; { // a := m; b := a
		n := len(names)
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.ValueSpec:
				s.addValueSpec(n, names, names)
			case *ast.AssignStmt:
				for i, lhs := range n.Lhs {
					if id, ok := lhs.(*ast.Ident); ok && len(n.Rhs) == len(n.Lhs) && s.isMap(n.Rhs[i], names) {
						names[id.Name] = true
					}
				}
			case *ast.FuncDecl:
				s.addFields(n.Recv, names)
			case *ast.FuncType:
				s.addFields(n.Params, names)
				s.addFields(n.Results, names)
			}
			return true
		})
		changed = len(names) != n
	}
	return names
}

func (s *mapSyntax) addValueSpec(vs *ast.ValueSpec, into, fileMaps map[string]bool) {
	for i, id := range vs.Names {
		if (vs.Type != nil && s.isMapType(vs.Type)) ||
			(vs.Type == nil && len(vs.Values) == len(vs.Names) && s.isMap(vs.Values[i], fileMaps)) {
			into[id.Name] = true
		}
	}
}

func (s *mapSyntax) addFields(fl *ast.FieldList, into map[string]bool) {
	if fl == nil {
		return
	}
	for _, fld := range fl.List {
		if s.isMapType(fld.Type) {
			for _, id := range fld.Names {
				into[id.Name] = true
			}
		}
	}
}

// ---------------------------------------------------------------------------
// Tidy: loading the module

// listedPackage is the part of `go list -json` the checker needs.
type listedPackage struct {
	ImportPath string
	Dir        string
	Export     string
	GoFiles    []string
	Error      *struct{ Err string }
}

// snippetImports are the standard packages TestTidyChecker's snippets use;
// their export data is listed together with the module's.
var snippetImports = []string{"time", "math/rand", "math/rand/v2", "maps", "slices", "iter"}

var (
	listOnce  sync.Once
	listed    map[string]*listedPackage // by import path
	listedErr error
)

// listExports runs one `go list -export -deps` over the simulated layers of
// the module and the snippets' imports, giving the export data the type
// checker imports dependencies from. It runs once per test binary; a layer
// with no package yet only makes go list warn.
func listExports(root string) (map[string]*listedPackage, error) {
	listOnce.Do(func() {
		args := []string{"list", "-e", "-export", "-deps", "-json=ImportPath,Dir,Export,GoFiles,Error"}
		for _, d := range simulatedDirs {
			args = append(args, "./"+d+"/...")
		}
		out, err := runGo(root, append(args, snippetImports...)...)
		listed, listedErr = map[string]*listedPackage{}, err
		for dec := json.NewDecoder(bytes.NewReader(out)); ; {
			p := new(listedPackage)
			if err := dec.Decode(p); err != nil {
				if !errors.Is(err, io.EOF) {
					listedErr = errors.Join(listedErr, err)
				}
				break
			}
			listed[p.ImportPath] = p
		}
		if len(listed) > 0 {
			listedErr = nil // a broken package shows in its own Error field
		}
	})
	return listed, listedErr
}

// newImporter imports packages from the export data go list reported.
func newImporter(fset *token.FileSet, pkgs map[string]*listedPackage) types.Importer {
	return importer.ForCompiler(fset, "gc", func(p string) (io.ReadCloser, error) {
		lp := pkgs[p]
		if lp == nil || lp.Export == "" {
			return nil, fmt.Errorf("no export data for %q (does it compile?)", p)
		}
		return os.Open(lp.Export)
	})
}

// goSourceDirs returns, relative to root and sorted, every directory under
// the simulated layers holding non-test .go files, skipping what the go
// command skips (testdata, names starting with . or _).
func goSourceDirs(t *testing.T, root string) map[string][]string {
	t.Helper()
	dirs := make(map[string][]string)
	for _, top := range simulatedDirs {
		err := filepath.WalkDir(filepath.Join(root, top), func(p string, d fs.DirEntry, err error) error {
			switch {
			case errors.Is(err, fs.ErrNotExist):
				return fs.SkipDir
			case err != nil:
				return err
			case d.IsDir() && p != filepath.Join(root, top) &&
				(d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".") || strings.HasPrefix(d.Name(), "_")):
				return fs.SkipDir
			case d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go"):
				return nil
			}
			rel, err := filepath.Rel(root, p)
			dir := filepath.ToSlash(filepath.Dir(rel))
			dirs[dir] = append(dirs[dir], filepath.ToSlash(rel))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return dirs
}

// checkDir parses every file of one directory and checks it: the files of
// the package go list builds with type information, the rest (files excluded
// by build constraints) and any package that fails to type-check by syntax.
func checkDir(t *testing.T, root, dir string, files []string, pkgs map[string]*listedPackage, imp types.Importer, fset *token.FileSet) []violation {
	t.Helper()
	var typed, untyped []*ast.File
	lp := pkgs[modulePath+"/"+dir]
	for _, name := range files {
		src, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, parser.SkipObjectResolution)
		if err != nil {
			t.Errorf("%v (skipping the file)", err)
			continue
		}
		if lp != nil && slices.Contains(lp.GoFiles, path.Base(name)) {
			typed = append(typed, f)
		} else {
			untyped = append(untyped, f)
		}
	}
	info, err := typeCheck(fset, modulePath+"/"+dir, typed, imp)
	if err != nil {
		t.Logf("%s does not type-check, checking it by syntax only: %v", dir, err)
		return checkFiles(fset, append(typed, untyped...), nil)
	}
	return append(checkFiles(fset, typed, info), checkFiles(fset, untyped, nil)...)
}

func typeCheck(fset *token.FileSet, pkgPath string, files []*ast.File, imp types.Importer) (*types.Info, error) {
	info := &types.Info{Types: map[ast.Expr]types.TypeAndValue{}, Uses: map[*ast.Ident]types.Object{}}
	var errs []error
	conf := types.Config{Importer: imp, Error: func(err error) { errs = append(errs, err) }}
	conf.Check(pkgPath, fset, files, info)
	if len(errs) > 3 {
		errs = append(errs[:3], fmt.Errorf("and %d more errors", len(errs)-3))
	}
	return info, errors.Join(errs...)
}

// TestTidy checks the non-test code of the simulated layers (des, kernel,
// queues, model) against the tidy rules; see checker for what it reports.
func TestTidy(t *testing.T) {
	root := moduleRoot(t)
	dirs := goSourceDirs(t, root)
	if len(dirs) == 0 {
		t.Fatal("found no Go files under " + strings.Join(simulatedDirs, ", "))
	}
	pkgs, err := listExports(root)
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	imp := newImporter(fset, pkgs)
	for _, dir := range slices.Sorted(maps.Keys(dirs)) {
		for _, v := range checkDir(t, root, dir, dirs[dir], pkgs, imp, fset) {
			t.Error(v)
		}
	}
}

// ---------------------------------------------------------------------------
// Tidy: the checker's own test

// checkSource checks one file's source text as if it were the file named
// name, with type information when typed is set.
func checkSource(fset *token.FileSet, imp types.Importer, name, src string, typed bool) ([]violation, error) {
	f, err := parser.ParseFile(fset, name, src, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	var info *types.Info
	if typed {
		if info, err = typeCheck(fset, "p", []*ast.File{f}, imp); err != nil {
			return nil, err
		}
	}
	return checkFiles(fset, []*ast.File{f}, info), nil
}

type tidyCase struct {
	name      string
	file      string // default x/x.go
	src       string // a whole file
	want      string // a substring of one violation; "" means none at all
	typedOnly bool   // only type information can see it
}

func tidyCases() []tidyCase {
	var cases []tidyCase
	for _, fn := range []string{"Now()", "Since(time.Time{})", "Until(time.Time{})", "Sleep(1)", "After(1)",
		"AfterFunc(1, nil)", "NewTimer(1)", "Tick(1)", "NewTicker(1)"} {
		name, _, _ := strings.Cut(fn, "(")
		cases = append(cases, tidyCase{name: "time." + name, want: "time." + name + ": use ",
			src: "package p\nimport \"time\"\nfunc f() { time." + fn + " }\n"})
	}
	return append(cases, []tidyCase{
		{name: "rand v1", want: "math/rand (v1) import: use sim.Rand()", src: "package p\nimport \"math/rand\"\nvar _ = rand.Intn(3)\n"},
		{name: "rand v2 IntN", want: "math/rand global rand.IntN: use sim.Rand() or a decision via sim.Choose", src: "package p\nimport \"math/rand/v2\"\nvar _ = rand.IntN(3)\n"},
		{name: "rand v2 renamed", want: "rand.Float64", src: "package p\nimport mr \"math/rand/v2\"\nvar _ = mr.Float64()\n"},
		{name: "rand v2 generic", want: "rand.N", src: "package p\nimport \"math/rand/v2\"\nvar _ = rand.N(10)\n"},
		{name: "time dot import", typedOnly: true, want: "time.Now", src: "package p\nimport . \"time\"\nvar _ = Now()\n"},
		{name: "go", want: "go statement: use sim.Spawn (a coroutine)", src: "package p\nfunc f() { go f() }\n"},
		{name: "chan type", want: "channel type", src: "package p\nvar c chan int\n"},
		{name: "chan send", want: "channel send", src: "package p\nfunc f(c chan<- int) { c <- 1 }\n"},
		{name: "chan receive", want: "channel receive", src: "package p\nfunc f(c <-chan int) int { return <-c }\n"},
		{name: "select", want: "select statement", src: "package p\nfunc f() { select {} }\n"},
		{name: "chan range", typedOnly: true, want: "channel range", src: "package p\nfunc f(c <-chan int) { for range c {} }\n"},
		{name: "map literal", want: "map range: iterate a sorted slice of keys", src: "package p\nfunc f() { for range (map[int]int{1: 2}) {} }\n"},
		{name: "map local", want: "map range", src: "package p\nfunc f() { m := make(map[int]int); for range m {} }\n"},
		{name: "map param", want: "map range", src: "package p\nfunc f(m map[int]bool) { for k := range m { _ = k } }\n"},
		{name: "map field", want: "map range", src: "package p\ntype S struct{ m map[int]int }\nfunc (s *S) f() { for k, v := range s.m { _, _ = k, v } }\n"},
		{name: "map named type", want: "map range", src: "package p\ntype Set map[int]struct{}\nfunc f(s Set) { for range s {} }\n"},
		{name: "map package var", want: "map range", src: "package p\nvar reg = map[string]int{}\nfunc f() { for range reg {} }\n"},
		{name: "map call result", typedOnly: true, want: "map range", src: "package p\nfunc g() map[int]int { return nil }\nfunc f() { for range g() {} }\n"},
		{name: "map type param", typedOnly: true, want: "map range", src: "package p\nfunc f[M ~map[K]V, K comparable, V any](m M) { for range m {} }\n"},
		{name: "maps.Keys", want: "map range (maps.Keys)", src: "package p\nimport \"maps\"\nfunc f(m map[int]int) { for range maps.Keys(m) {} }\n"},
		{name: "proc.go may go", file: "des/proc.go", src: "package p\nfunc f(c chan int) { go f(c); c <- 1; <-c }\n"},
		{name: "proc.go no clock", file: "des/proc.go", want: "time.Now", src: "package p\nimport \"time\"\nvar _ = time.Now()\n"},
		{name: "good", src: goodSnippet},
	}...)
}

// goodSnippet uses everything near the rules that is allowed.
const goodSnippet = `package p

import (
	"iter"
	"maps"
	"math/rand/v2"
	"slices"
	"time"
)

type S struct {
	byName map[string]int
	order  []string
}

func f(s *S, seed uint64, seq iter.Seq[int]) (int, time.Duration) {
	r := rand.New(rand.NewPCG(seed, 1))
	n := r.IntN(10) + int(r.Float64()*2)
	r.Shuffle(len(s.order), func(i, j int) { s.order[i], s.order[j] = s.order[j], s.order[i] })
	for _, k := range slices.Sorted(maps.Keys(s.byName)) {
		n += s.byName[k]
	}
	for i, name := range s.order {
		n += i + len(name)
	}
	for v := range seq {
		n += v
	}
	m := map[int]int{1: 2}
	m[3] = 4
	delete(m, 1)
	z := rand.NewZipf(r, 1.5, 1, 10)
	var d time.Duration = 3 * time.Millisecond
	return n + len(m) + int(z.Uint64()), d + time.Duration(time.Time{}.Sub(time.Time{}))
}
`

func TestTidyChecker(t *testing.T) {
	pkgs, err := listExports(moduleRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	imp := newImporter(fset, pkgs)
	for _, tc := range tidyCases() {
		for _, typed := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/typed=%v", tc.name, typed), func(t *testing.T) {
				file := tc.file
				if file == "" {
					file = "x/x.go"
				}
				vs, err := checkSource(fset, imp, file, tc.src, typed)
				if err != nil {
					t.Fatalf("snippet does not compile: %v", err)
				}
				want := tc.want
				if tc.typedOnly && !typed {
					want = "" // nothing this rule can see; other rules may still fire
				}
				assertViolations(t, vs, want, tc.want == "")
			})
		}
	}
}

func assertViolations(t *testing.T, vs []violation, want string, wantNone bool) {
	t.Helper()
	var got []string
	found := false
	for _, v := range vs {
		got = append(got, v.String())
		found = found || strings.Contains(v.String(), want)
		if v.pos.Line == 0 || !strings.Contains(v.String(), ".go:") {
			t.Errorf("violation without file:line: %s", v)
		}
	}
	switch {
	case wantNone && len(vs) > 0:
		t.Errorf("want no violation, got:\n%s", strings.Join(got, "\n"))
	case want != "" && !found:
		t.Errorf("want a violation containing %q, got:\n%s", want, strings.Join(got, "\n"))
	}
}
