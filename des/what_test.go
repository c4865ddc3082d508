package des_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/wqsim/wqsim/des"
)

// The trace hash covers every field the text trace shows, and the two it
// does not (Thread, Kind: numbers behind Actor and What); two records that
// differ in one field only (the sub-kind What included) hash differently.
func TestHashCoversEveryShownField(t *testing.T) {
	base := des.Record{At: 5, CPU: 1, IRQL: 2, Thread: 3, Kind: 104, What: "preempt", Actor: "a", Object: "o", A: 7, B: 8}
	variants := map[string]func(r *des.Record){
		"At": func(r *des.Record) { r.At++ }, "CPU": func(r *des.Record) { r.CPU++ },
		"IRQL": func(r *des.Record) { r.IRQL++ }, "Thread": func(r *des.Record) { r.Thread++ },
		"Kind": func(r *des.Record) { r.Kind++ }, "What": func(r *des.Record) { r.What = "round-robin" },
		"Actor": func(r *des.Record) { r.Actor = "b" }, "Object": func(r *des.Record) { r.Object = "p" },
		"A": func(r *des.Record) { r.A++ }, "B": func(r *des.Record) { r.B++ },
	}
	h := des.HashRecord(1, &base)
	for field, change := range variants {
		r := base
		change(&r)
		if field != "Thread" && field != "Kind" {
			assert.NotEqual(t, string(des.AppendRecordText(nil, &base)), string(des.AppendRecordText(nil, &r)), "%s is shown", field)
		}
		assert.NotEqual(t, h, des.HashRecord(1, &r), "%s is hashed", field)
	}
}

// traceCalls are the emitting functions of the simulated layers and the
// position of their What argument.
var traceCalls = map[string]int{"emit": 2, "trace": 1, "Trace": 0, "TraceKind": 1}

// Every record the simulated layers emit takes a declared sub-kind (a
// des.What constant of its package, or a routine or status name passed
// through), never a string literal at the call: readers of traces compare
// against the constants, so a sub-kind renamed in one place cannot silently
// stop matching in another.
func TestTraceSubKindsAreDeclared(t *testing.T) {
	root := moduleRoot(t)
	fset := token.NewFileSet()
	checked := 0
	for _, layer := range []string{"kernel", "queues", "model"} {
		err := filepath.WalkDir(filepath.Join(root, layer), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				return err
			}
			ast.Inspect(f, func(n ast.Node) bool {
				c, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				sel, ok := c.Fun.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				i, traced := traceCalls[sel.Sel.Name]
				if !traced || len(c.Args) <= i {
					return true
				}
				checked++
				if lit, ok := c.Args[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					v, _ := strconv.Unquote(lit.Value)
					t.Errorf("%s: trace sub-kind %q is a literal; declare it as a des.What constant (see kernel/whats.go)", fset.Position(lit.Pos()), v)
				}
				return true
			})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	assert.Greater(t, checked, 80, "the check found the emitting calls")
}
