package proptest

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// FormatMarks renders a Report's Marks as "mark (n executions); …" in
// name order, or "none" when no racy path was reached.
func FormatMarks(marks map[string]int) string {
	if len(marks) == 0 {
		return "none"
	}
	parts := make([]string, 0, len(marks))
	for _, m := range slices.Sorted(maps.Keys(marks)) {
		parts = append(parts, fmt.Sprintf("%s (%d executions)", m, marks[m]))
	}
	return strings.Join(parts, "; ")
}
