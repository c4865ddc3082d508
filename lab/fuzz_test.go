package lab

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

// FuzzParseExperiment feeds arbitrary bytes to the experiment parser. It
// must never panic; it either returns an Errors whose every entry says
// something, or an experiment that validates, has cells (or acceptance
// points) to run, and survives a JSON round trip unchanged.
//
//	go test ./lab -run '^$' -fuzz FuzzParseExperiment -fuzztime 60s
func FuzzParseExperiment(f *testing.F) {
	if src, err := os.ReadFile(examplePath); err == nil {
		f.Add(src)
	}
	f.Add([]byte(valid))
	f.Add([]byte(mm1))
	f.Add([]byte(blocking))
	f.Add([]byte(rtExperiment))
	f.Add([]byte(strings.Replace(placementExperiment, "FIT", "", 1)))
	f.Add([]byte(`{"name": "r", "seeds": [1], "dispatchers": ["nt"], "pools": [{"policy": "fixed"}],
	  "workloads": [{"name": "m", "processors": 2, "rt_app": ` + rtAppExample + `}]}`))
	f.Add([]byte(`{"name": "acc", "seeds": [1], "acceptance": {"tasks": [3], "sets": 2, "utilization_min": 0.6,
	  "utilization_max": 0.7, "utilization_step": 0.1, "period_min": "2ms", "period_max": "20ms", "simulate": true}}`))
	for _, s := range []string{
		"", "{}", "[]", "null", `{"name": 1}`, `{"seeds": [1e400]}`, `{"workloads": [{"duration": "1.5.5s"}]}`,
		strings.Replace(valid, `"rate": 100`, `"rate": -3`, 1),
		strings.Replace(valid, `"processors": 2`, `"processors": 0`, 1),
		strings.Replace(valid, `{"policy": "fixed"}`, `{"policy": "grow-on-demand", "limit": 4, "max_dynamic": 8, "static": {"DelayedWorkQueue": 1, "x y": 2}}`, 1),
		strings.Replace(valid, `"dist": "exponential", "mean": "1ms"`, `"dist": "lognormal", "mean": "1ms", "cv": 0.5`, 1),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := Parse(data)
		if err != nil {
			if e != nil {
				t.Fatal("Parse returned an experiment with an error")
			}
			var es Errors
			if !errors.As(err, &es) || len(es) == 0 || len(es) > maxErrors {
				t.Fatalf("error %T %v is not a non-empty Errors", err, err)
			}
			for _, fe := range es {
				if fe.Msg == "" {
					t.Fatalf("empty message in %v", err)
				}
			}
			return
		}
		if err := e.Validate(); err != nil {
			t.Fatalf("parsed experiment does not validate: %v", err)
		}
		if e.Acceptance == nil && e.Placement == nil && len(e.cells(1)) == 0 {
			t.Fatal("a valid experiment has no cells")
		}
		if a := e.Acceptance; a != nil && len(a.utilizations()) == 0 {
			t.Fatal("a valid acceptance experiment has no points")
		}
		if pl := e.Placement; pl != nil && len(pl.utilizations()) == 0 {
			t.Fatal("a valid placement experiment has no points")
		}
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		e2, err := Parse(b)
		if err != nil {
			t.Fatalf("round trip of %s fails: %v", b, err)
		}
		b2, _ := json.Marshal(e2)
		if string(b) != string(b2) {
			t.Fatalf("round trip changed the experiment:\n%s\n%s", b, b2)
		}
	})
}
