package model_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/model"
)

// setupPackage returns the import path of the package that defines s's
// Setup function.
func setupPackage(s *model.Scenario) string {
	name := runtime.FuncForPC(reflect.ValueOf(s.Setup).Pointer()).Name() // "path/pkg.func" or "path/pkg.init.func1"
	slash := strings.LastIndex(name, "/")
	dot := strings.Index(name[slash+1:], ".")
	if dot < 0 {
		return name
	}
	return name[:slash+1+dot]
}

var rewrite = flag.Bool("rewrite", false, "rewrite the golden traces under testdata/")

// Every correct variant's natural run (choice 0 everywhere) is a golden
// trace: what the driver does when nothing is perturbed, in the text form
// users see. A change to a scenario, a queue or the kernel shows up here as
// a diff to review. Regenerate with: go test ./model -run Golden -rewrite
//
// Only the built-in scenarios (their Setup is package model's) have golden
// traces; a scenario registered from elsewhere (a package model_test file,
// a user's package) is skipped, and the skip says so.
func TestGoldenNaturalRuns(t *testing.T) {
	for _, s := range model.All() {
		if pkg := setupPackage(s); pkg != "github.com/wqsim/wqsim/model" {
			t.Run(s.Name, func(t *testing.T) {
				t.Skipf("scenario %q is defined in %s, not package model: only built-in scenarios have golden traces", s.Name, pkg)
			})
			continue
		}
		for _, v := range s.Variants {
			if v.Bug {
				continue
			}
			t.Run(s.Name+":"+v.Name, func(t *testing.T) {
				var buf bytes.Buffer
				buf.WriteString("# " + s.Name + ":" + v.Name + " — natural schedule (every decision takes choice 0), seed 1\n")
				buf.WriteString("# columns: time | processor | IRQL | actor | what | object | two numbers\n")
				r, err := model.Run(s, v.Name, model.RunConfig{Seed: 1, Sink: &des.TextSink{W: &buf}})
				require.NoError(t, err)
				require.NoError(t, r.Outcome.Err)
				path := filepath.Join("testdata", s.Name+"-"+v.Name+".trace")
				if *rewrite {
					require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
					return
				}
				want, err := os.ReadFile(path)
				require.NoError(t, err, "missing golden file; run go test ./model -run Golden -rewrite")
				assert.Equal(t, string(want), buf.String(), "%s changed; if intended, rerun with -rewrite and review the diff", path)
			})
		}
	}
}

// A user's scenario registered into the test binary (here from package
// model_test, as a user's own file in model/ would be) is not golden-checked.
func TestGoldenSkipsScenariosFromElsewhere(t *testing.T) {
	assert.Equal(t, "github.com/wqsim/wqsim/model", setupPackage(model.All()[0]))
	assert.Equal(t, "github.com/wqsim/wqsim/model_test", setupPackage(counter))
}
