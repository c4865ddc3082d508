package timeline_test

import (
	"fmt"
	"io"
	"os"

	"github.com/wqsim/wqsim/des"
	"github.com/wqsim/wqsim/model"
	"github.com/wqsim/wqsim/timeline"
)

// Record one run's trace with a des.RecordSink, then render it: here the
// first two records as JSON lines; WriteHTML, WritePerfetto and
// WritePerfettoProto take the same records and a Meta.
func Example() {
	s, _ := model.Lookup("lostupdate")
	recs := &des.RecordSink{}
	r, err := model.Run(s, "racy", model.RunConfig{Seed: 1, Sink: recs})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := timeline.WriteJSONL(os.Stdout, recs.Records[:2]); err != nil {
		fmt.Println(err)
	}
	meta := timeline.Meta{Scenario: "lostupdate:racy", Seed: r.Seed, Outcome: "ok"}
	fmt.Println(timeline.WriteHTML(io.Discard, recs.Records, meta))
	// Output:
	// {"at":0,"cpu":-1,"irql":-1,"thread":1,"kind":100,"what":"create","actor":"adder1","object":"adder1","a":8,"b":0}
	// {"at":0,"cpu":-1,"irql":-1,"thread":1,"kind":101,"what":"ready","actor":"adder1","object":"adder1","a":8,"b":0}
	// <nil>
}
