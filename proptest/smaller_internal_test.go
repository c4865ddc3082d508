package proptest

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/wqsim/wqsim/des"
)

// nextCombination walks every k-subset of n once, in lexicographic order.
func TestNextCombinationVisitsEachSubsetOnce(t *testing.T) {
	seen := map[[3]int]bool{}
	pick := []int{0, 1, 2}
	for {
		key := [3]int{pick[0], pick[1], pick[2]}
		assert.False(t, seen[key], "visited twice: %v", key)
		assert.True(t, pick[0] < pick[1] && pick[1] < pick[2], "not ascending: %v", pick)
		seen[key] = true
		if !nextCombination(pick, 6) {
			break
		}
	}
	assert.Len(t, seen, 20, "C(6,3)")
}

// sparseChooser perturbs exactly the points it was given, with a valid
// non-zero option, and leaves two-way-less points alone.
func TestSparseChooserPerturbsOnlyItsPoints(t *testing.T) {
	c := &sparseChooser{at: map[int]uint32{1: 7, 3: 0, 4: 5}}
	got := []int{c.Choose(des.Point{}, 3), c.Choose(des.Point{}, 3), c.Choose(des.Point{}, 2), c.Choose(des.Point{}, 4), c.Choose(des.Point{}, 1)}
	assert.Equal(t, []int{0, 1 + 7%2, 0, 1, 0}, got)
}
