package des_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/wqsim/wqsim/des"
)

// The classes are a closed set with one exit code each; an untyped error is
// ClassInternal and its signature stops at the first colon, and a Finding
// wrapped in another error still classifies as itself.
func TestClassesAreClosed(t *testing.T) {
	seen := map[int]des.Class{}
	for _, c := range des.Classes() {
		prev, dup := seen[c.ExitCode()]
		assert.False(t, dup, "%v and %v share exit code %d", c, prev, c.ExitCode())
		seen[c.ExitCode()] = c
		assert.NotEqual(t, "unknown class", c.String())
	}
	assert.Equal(t, des.ClassOK, des.Classify(nil))
	assert.Equal(t, 0, des.ClassOK.ExitCode())
	plain := errors.New("open out.txt: permission denied")
	assert.Equal(t, des.ClassInternal, des.Classify(plain))
	assert.Equal(t, "error open out.txt", des.Signature(plain))
	wrapped := fmt.Errorf("run 3: %w", &des.PanicError{Proc: "t", Value: 1})
	assert.Equal(t, des.ClassPanic, des.Classify(wrapped))
	assert.Equal(t, "panic", des.Signature(wrapped))
	assert.Equal(t, des.ClassInternal.ExitCode(), des.Class(200).ExitCode(), "out of range: internal")
}
