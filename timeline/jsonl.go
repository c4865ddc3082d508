package timeline

import (
	"bufio"
	"encoding/json"
	"io"

	"github.com/wqsim/wqsim/des"
)

// JSONRecord is the JSON Lines form of a des.Record: every field, under
// lower-case names, with At in virtual nanoseconds and Kind as its number.
type JSONRecord struct {
	At     int64  `json:"at"`
	CPU    int16  `json:"cpu"`
	IRQL   int8   `json:"irql"`
	Thread int32  `json:"thread"`
	Kind   uint16 `json:"kind"`
	What   string `json:"what"`
	Actor  string `json:"actor"`
	Object string `json:"object"`
	A      int64  `json:"a"`
	B      int64  `json:"b"`
}

// Record converts j back to a des.Record.
func (j JSONRecord) Record() des.Record {
	return des.Record{At: des.Time(j.At), CPU: j.CPU, IRQL: j.IRQL, Thread: j.Thread, Kind: des.Kind(j.Kind),
		What: des.What(j.What), Actor: j.Actor, Object: j.Object, A: j.A, B: j.B}
}

// WriteJSONL writes one JSON object per record and line (JSONRecord), in
// the order given:
//
//	{"at":2200,"cpu":0,"irql":0,"thread":1,"kind":104,"what":"KeWaitForSingleObject","actor":"a","object":"event pong","a":-1,"b":1}
func WriteJSONL(w io.Writer, recs []des.Record) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	for i := range recs {
		r := &recs[i]
		if err := enc.Encode(JSONRecord{At: int64(r.At), CPU: r.CPU, IRQL: r.IRQL, Thread: r.Thread, Kind: uint16(r.Kind),
			What: string(r.What), Actor: r.Actor, Object: r.Object, A: r.A, B: r.B}); err != nil {
			return err
		}
	}
	return bw.Flush()
}
