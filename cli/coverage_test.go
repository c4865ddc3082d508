package cli

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/wqsim/wqsim/proptest"
)

// TestCoverageLineSaysEstimate: beyond proptest.ExactFingerprints distinct
// schedules the coverage line marks its figure as an estimate.
func TestCoverageLineSaysEstimate(t *testing.T) {
	exact := &proptest.Report{Execs: 10, Fingerprints: 7}
	assert.Equal(t, "coverage: 7 distinct schedules of 10 executions", coverageLine(exact))
	est := &proptest.Report{Execs: 1000000, Fingerprints: 864287, FingerprintsEstimated: true}
	assert.Equal(t, "coverage: ~864287 distinct schedules (estimate: over 65536, HyperLogLog, ±5 %) of 1000000 executions", coverageLine(est))
}
