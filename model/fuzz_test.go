package model_test

import (
	"strings"
	"testing"

	"github.com/wqsim/wqsim/model"
)

// FuzzResolve: a scenario spec never panics the resolver; what it accepts
// names a registered scenario and one of its variants, and an empty
// variant picks the documented default (the first bug variant, else the
// first).
//
//	go test ./model -run '^$' -fuzz FuzzResolve -fuzztime 5m -parallel 1
func FuzzResolve(f *testing.F) {
	for _, s := range []string{"lostupdate", "lostupdate:racy", "cancelsafe:lost-cancel", ":", "", "x:y:z", "lostupdate:", "lostupdate:racy:extra", "LOSTUPDATE"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		s, v, err := model.Resolve(spec)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an error with no message")
			}
			return
		}
		name, variant, _ := strings.Cut(spec, ":")
		if s.Name != name {
			t.Fatalf("%q resolved to scenario %q", spec, s.Name)
		}
		if _, ok := s.Variant(v); !ok {
			t.Fatalf("%q resolved to variant %q, which %s does not have", spec, v, s.Name)
		}
		if variant != "" && v != variant {
			t.Fatalf("%q resolved to variant %q", spec, v)
		}
		if variant == "" {
			want := s.Variants[0].Name
			for _, x := range s.Variants {
				if x.Bug {
					want = x.Name
					break
				}
			}
			if v != want {
				t.Fatalf("%q: default variant %q, want %q", spec, v, want)
			}
		}
	})
}
