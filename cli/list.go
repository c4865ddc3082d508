package cli

import (
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/wqsim/wqsim/model"
)

func cmdList(args []string, w io.Writer) error {
	if pos, err := parseFlags(listFlags(), args); err != nil {
		return err
	} else if len(pos) > 0 {
		return usagef("list takes no arguments")
	}
	for _, s := range listOrder() {
		fmt.Fprintf(w, "%s  (%s)\n", s.Name, s.Section)
		fmt.Fprintf(w, "    %s\n", wrap(s.Doc, 76, "    "))
		width := 0
		for _, v := range s.Variants {
			width = max(width, len(s.Name)+1+len(v.Name))
		}
		for _, v := range s.Variants {
			kind := "correct"
			if v.Bug {
				kind = "bug"
			}
			fmt.Fprintf(w, "    %-*s  %-7s %s\n", width, s.Name+":"+v.Name, kind, v.Doc)
		}
	}
	return nil
}

// listOrder is every registered scenario, a user's own (those Main was
// given) first, in the order given, then the rest in registry order: in a
// user's command their driver is what they look for.
func listOrder() []*model.Scenario {
	out := slices.Clone(userScenarios)
	for _, s := range model.All() {
		if !slices.Contains(userScenarios, s) {
			out = append(out, s)
		}
	}
	return out
}

// listFlags is list's flag set: it has no flags.
func listFlags() *flag.FlagSet {
	return newFlagSet("list", "usage: wqsim list",
		"  prints every scenario (with the REFERENCE sections it re-creates) and its variants,",
		"  each marked correct or bug; run one with `wqsim run SCENARIO:VARIANT`")
}

func wrap(text string, width int, indent string) string {
	var b strings.Builder
	col := 0
	for i, word := range strings.Fields(text) {
		if i > 0 && col+1+len(word) > width {
			b.WriteString("\n" + indent)
			col = 0
		} else if i > 0 {
			b.WriteByte(' ')
			col++
		}
		b.WriteString(word)
		col += len(word)
	}
	return b.String()
}
