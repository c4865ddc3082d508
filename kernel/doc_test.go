package kernel_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNTRoutineDocsCiteIRQL checks the promise of the package
// documentation: every NT routine on the driver surface (*Kernel) says in
// its doc comment the IRQL it may be called at and the section of
// docs/REFERENCE.md it follows (issue 10).
func TestNTRoutineDocsCiteIRQL(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		af, err := parser.ParseFile(fset, f, src, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range af.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Recv == nil || len(fd.Recv.List) != 1 || !fd.Name.IsExported() {
				continue
			}
			star, ok := fd.Recv.List[0].Type.(*ast.StarExpr)
			if !ok {
				continue
			}
			if id, ok := star.X.(*ast.Ident); !ok || id.Name != "Kernel" {
				continue
			}
			if !ntRoutine.MatchString(fd.Name.Name) {
				continue
			}
			checked++
			doc := fd.Doc.Text()
			for _, want := range []string{"IRQL", "REFERENCE §"} {
				if !strings.Contains(doc, want) {
					t.Errorf("%s: (*Kernel).%s doc comment lacks %q", fset.Position(fd.Pos()), fd.Name.Name, want)
				}
			}
		}
	}
	if checked < 60 {
		t.Errorf("checked %d NT routines on *Kernel; expected the driver surface (≥ 60)", checked)
	}
}
