package proptest_test

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/proptest"
)

// A fail file written before the version 4 trace hash (format version 3,
// by wqsim at 09660c0) still replays with its recorded hash checked: the
// replay computes the version 3 hash. The same file relabelled version 4 is
// a hash mismatch, so the version really selects the hash.
func TestVersion3FailFileReplaysWithItsHash(t *testing.T) {
	data, err := os.ReadFile("testdata/failfile-v3/lostupdate-racy.fail")
	require.NoError(t, err)
	f, err := proptest.ParseFailFile(data)
	require.NoError(t, err)
	require.Equal(t, 3, f.Version)

	r, err := proptest.Replay(f, nil)
	require.NoError(t, err, "a version 3 file replays with its hash checked")
	assert.Error(t, r.Outcome.Err, "the recorded failure reproduces")

	relabelled, err := proptest.ParseFailFile([]byte(strings.Replace(string(data), "wqsim-failfile 3", "wqsim-failfile 4", 1)))
	require.NoError(t, err)
	_, err = proptest.Replay(relabelled, nil)
	var mismatch *proptest.HashMismatch
	assert.True(t, errors.As(err, &mismatch), "read as version 4, the version 3 hash does not match: %v", err)
}

// A file written now carries the current format version and replays.
func TestNewFailFilesAreCurrentVersion(t *testing.T) {
	data, err := os.ReadFile("testdata/failfile-v3/lostupdate-racy.fail")
	require.NoError(t, err)
	old, err := proptest.ParseFailFile(data)
	require.NoError(t, err)
	var sink des.RecordSink
	r, err := proptest.Replay(old, &sink)
	require.NoError(t, err)

	cur := *old
	cur.Hash = 0
	cur.Version = 0
	rerun, err := proptest.Replay(&cur, nil) // hash 0 never matches: learn the current hash
	var mismatch *proptest.HashMismatch
	require.True(t, errors.As(err, &mismatch))
	cur.Hash = mismatch.Got
	encoded := cur.Encode("lostupdate-racy.fail")
	assert.True(t, strings.HasPrefix(string(encoded), "wqsim-failfile 6\n"))
	back, err := proptest.ParseFailFile(encoded)
	require.NoError(t, err)
	assert.Equal(t, proptest.FailFileVersion, back.Version)
	_, err = proptest.Replay(back, nil)
	assert.NoError(t, err)
	assert.Equal(t, r.Outcome.Err.Error(), rerun.Outcome.Err.Error(), "same run under either hash")
}

// A fail file written before kernel.Config.FineStalls (format version 5,
// by wqsim at 803a8ea, from `wqsim explore doublecomplete:timeout-race
// --seed 1 --no-shrink`: DPCs race a thread) replays exactly: its runs had no stalls
// at DISPATCH_LEVEL and three choices at a thread's point, and it replays
// with FineStalls off. The same file read as version 6 runs with them on,
// so the DPCs' scheduling points ask decisions the log does not have.
func TestVersion5FailFileReplaysWithoutFineStalls(t *testing.T) {
	data, err := os.ReadFile("testdata/failfile-v5/doublecomplete-timeout-race-seed1-exec2.fail")
	require.NoError(t, err)
	f, err := proptest.ParseFailFile(data)
	require.NoError(t, err)
	require.Equal(t, 5, f.Version)

	r, err := proptest.Replay(f, nil)
	require.NoError(t, err, "a version 5 file replays with its hash checked")
	require.Error(t, r.Outcome.Err)
	assert.Contains(t, r.Outcome.Err.Error(), "0x44", "the recorded double completion reproduces")

	relabelled, err := proptest.ParseFailFile([]byte(strings.Replace(string(data), "wqsim-failfile 5", "wqsim-failfile 6", 1)))
	require.NoError(t, err)
	r, _ = proptest.Replay(relabelled, nil)
	var mismatch *des.ReplayMismatch
	assert.True(t, errors.As(r.Outcome.Err, &mismatch), "read as version 6 the decisions differ: %v", r.Outcome.Err)
}
