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
}
