package model_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/model"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the golden traces under testdata/")

// Every correct variant's natural run (choice 0 everywhere) is a golden
// trace: what the driver does when nothing is perturbed, in the text form
// users see. A change to a scenario, a queue or the kernel shows up here as
// a diff to review. Regenerate with: go test ./model -run Golden -rewrite
func TestGoldenNaturalRuns(t *testing.T) {
	for _, s := range model.All() {
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
