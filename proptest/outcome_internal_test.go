package proptest

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// The outcome text says the failure's class once (moved here from cli with
// withoutPrefix, so Find's Want check and the outcome line agree).
func TestWithoutPrefix(t *testing.T) {
	assert.Equal(t, "DRIVER_VERIFIER_DETECTED_VIOLATION (0x135)", withoutPrefix("bug check 0xC4 DRIVER_VERIFIER_DETECTED_VIOLATION (0x135)", "bugcheck 0xC4"))
	assert.Equal(t, "nothing can wake", withoutPrefix("hang: nothing can wake", "hang"))
	assert.Equal(t, "x", withoutPrefix("x", "hang"))
	assert.Equal(t, "violated at t=1s: total is 5", withoutPrefix(`invariant "every interrupt counted" violated at t=1s: total is 5`, "invariant every interrupt counted"),
		"an invariant's quoted name is not said twice")
	assert.Equal(t, `invariant "a" violated`, withoutPrefix(`invariant "a" violated`, "invariant ab"))
}
