package model_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// frameworkFiles are the files of package model that run scenarios rather
// than being one; they may use the kernel's layer surface.
var frameworkFiles = []string{"env.go", "recycle.go", "run.go", "scenario.go"}

// forbiddenReceivers are the types whose methods scenario code must not
// call: the kernel's layer surface and the simulation engine. A scenario
// uses the driver surface (*kernel.Kernel: NT routines and the documented
// workload helpers) and its *model.Env.
var forbiddenReceivers = []string{
	"github.com/wqsim/wqsim/kernel.Layer",
	"github.com/wqsim/wqsim/des.Sim",
}

type listedPkg struct {
	ImportPath, Dir, Export string
	GoFiles                 []string
}

// TestScenarioSurface type-checks every scenario package of the module
// (model, its subpackages, examples) and fails on a call of a method of
// the layer surface or of the engine from scenario code, and on a
// comparison of Env.Variant (variants are asked with Env.Is, which knows the
// declared names).
func TestScenarioSurface(t *testing.T) {
	if testing.Short() {
		t.Skip("type-checks the scenario packages with go list -export")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"list", "-e", "-export", "-deps", "-json=ImportPath,Dir,Export,GoFiles", "./model/..."}
	if _, err := os.Stat(filepath.Join(root, "examples")); err == nil {
		args = append(args, "./examples/...")
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs := map[string]*listedPkg{}
	for dec := json.NewDecoder(bytes.NewReader(out)); ; {
		p := new(listedPkg)
		if err := dec.Decode(p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs[p.ImportPath] = p
	}
	fset := token.NewFileSet()
	imp := importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		return os.Open(pkgs[path].Export)
	})
	checked := 0
	for _, p := range pkgs {
		rel, ok := strings.CutPrefix(p.ImportPath, "github.com/wqsim/wqsim/")
		if !ok || !(rel == "model" || strings.HasPrefix(rel, "model/") || strings.HasPrefix(rel, "examples/")) {
			continue
		}
		checked++
		for _, v := range scenarioViolations(t, fset, imp, p, rel == "model") {
			t.Error(v)
		}
	}
	if checked == 0 {
		t.Fatal("found no scenario package")
	}
}

// scenarioViolations type-checks one package and reports each forbidden
// method call in its scenario files.
func scenarioViolations(t *testing.T, fset *token.FileSet, imp types.Importer, p *listedPkg, isModel bool) []string {
	var files []*ast.File
	for _, name := range p.GoFiles {
		f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	info := &types.Info{Selections: map[*ast.SelectorExpr]*types.Selection{}}
	if _, err := (&types.Config{Importer: imp}).Check(p.ImportPath, fset, files, info); err != nil {
		t.Fatalf("%s: %v", p.ImportPath, err)
	}
	var out []string
	for sel, s := range info.Selections {
		pos := fset.Position(sel.Pos())
		if isModel && slices.Contains(frameworkFiles, filepath.Base(pos.Filename)) {
			continue
		}
		recv := s.Recv()
		if ptr, ok := recv.(*types.Pointer); ok {
			recv = ptr.Elem()
		}
		if slices.Contains(forbiddenReceivers, recv.String()) {
			out = append(out, pos.String()+": scenario code calls ("+recv.String()+")."+sel.Sel.Name+
				"; use the driver surface (NT routines and workload helpers on *kernel.Kernel) or *model.Env")
		}
	}
	out = append(out, variantComparisons(fset, files, info, isModel)...)
	slices.Sort(out)
	return out
}

// variantComparisons reports each comparison of Env.Variant with == or !=
// and each switch on it in scenario files: variants are asked with Env.Is,
// which panics on a name the scenario does not declare. Reading the name
// (to parse a size out of "n10") is allowed.
func variantComparisons(fset *token.FileSet, files []*ast.File, info *types.Info, isModel bool) []string {
	isVariant := func(e ast.Expr) bool {
		sel, ok := ast.Unparen(e).(*ast.SelectorExpr)
		if !ok || sel.Sel.Name != "Variant" {
			return false
		}
		s := info.Selections[sel]
		return s != nil && s.Kind() == types.FieldVal && strings.HasSuffix(s.Recv().String(), "github.com/wqsim/wqsim/model.Env")
	}
	var out []string
	for _, f := range files {
		if isModel && slices.Contains(frameworkFiles, filepath.Base(fset.Position(f.Pos()).Filename)) {
			continue
		}
		ast.Inspect(f, func(n ast.Node) bool {
			var at token.Pos
			switch n := n.(type) {
			case *ast.BinaryExpr:
				if (n.Op == token.EQL || n.Op == token.NEQ) && (isVariant(n.X) || isVariant(n.Y)) {
					at = n.Pos()
				}
			case *ast.SwitchStmt:
				if n.Tag != nil && isVariant(n.Tag) {
					at = n.Pos()
				}
			}
			if at.IsValid() {
				out = append(out, fset.Position(at).String()+": scenario code compares Env.Variant; ask env.Is(\"name\"), which panics on an undeclared variant")
			}
			return true
		})
	}
	return out
}
