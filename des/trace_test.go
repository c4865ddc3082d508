package des_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/wqsim/wqsim/des"
)

// A layer's ShowArgsAs makes the text form write codes in hex (negative
// numbers stay decimal); other records keep decimal.
func TestShowArgsAsHex(t *testing.T) {
	const kind des.Kind = 9999
	des.ShowArgsAs(kind, "status", des.Hex, des.Decimal)
	line := string(des.AppendRecordText(nil, &des.Record{Kind: kind, What: "status", A: 0xC0000120, B: 7}))
	assert.True(t, strings.HasSuffix(line, " 0xC0000120 7"), line)
	line = string(des.AppendRecordText(nil, &des.Record{Kind: kind, What: "status", A: -1, B: 7}))
	assert.True(t, strings.HasSuffix(line, " -1 7"), line)
	line = string(des.AppendRecordText(nil, &des.Record{Kind: kind, What: "count", A: 258, B: 7}))
	assert.True(t, strings.HasSuffix(line, " 258 7"), line)
}
