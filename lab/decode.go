package lab

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// FieldError is one problem in an experiment file: where (a field path
// such as "workloads[1].arrivals.rate", or "line 3, column 7" for a syntax
// error) and what is wrong, with what to do.
type FieldError struct {
	Path string
	Msg  string
}

func (e *FieldError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// Errors is every problem found in an experiment file, in file order as
// far as it can be told. Its message lists them one per line.
type Errors []*FieldError

func (es Errors) Error() string {
	if len(es) == 1 {
		return es[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d problems:", len(es))
	for _, e := range es {
		b.WriteString("\n  ")
		b.WriteString(e.Error())
	}
	return b.String()
}

// maxErrors bounds how many problems one parse reports.
const maxErrors = 20

// maxFileSize bounds an experiment file (they are a few kilobytes).
const maxFileSize = 1 << 20

// ParseFile reads and parses the experiment file at path. Its errors name
// the file.
func ParseFile(path string) (*Experiment, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the experiment file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read the experiment file %s: %w", path, err)
	}
	e, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return e, nil
}

// Parse decodes an experiment file strictly and validates it. Its error,
// an Errors, names the path of every wrong field and what to do.
func Parse(data []byte) (*Experiment, error) {
	if len(data) > maxFileSize {
		return nil, Errors{{Msg: fmt.Sprintf("the file is %d bytes; experiment files are at most %d (1 MiB)", len(data), maxFileSize)}}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, Errors{{Msg: `the file is empty; an experiment is a JSON object {"name": ..., "seeds": [...], "workloads": [...], "dispatchers": [...], "pools": [...]}`}}
	}
	if !utf8.Valid(data) {
		return nil, Errors{{Msg: "the file is not UTF-8 text; save it as UTF-8 JSON"}}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var raw any
	if err := dec.Decode(&raw); err != nil {
		return nil, Errors{syntaxError(data, err)}
	}
	if _, err := dec.Token(); err != io.EOF {
		off := dec.InputOffset()
		return nil, Errors{{Path: position(data, off), Msg: "unexpected data after the experiment object; a file holds one JSON object"}}
	}
	e := &Experiment{}
	d := &decoder{}
	d.value("", raw, reflect.ValueOf(e).Elem())
	// Validate even when decoding failed, so that one pass reports every
	// problem; a field that could not be decoded is not also reported as
	// missing.
	errs := d.errs
	if verr, ok := e.Validate().(Errors); ok {
		for _, ve := range verr {
			if !d.failed[ve.Path] && len(errs) < maxErrors {
				errs = append(errs, ve)
			}
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	e.source = bytes.Clone(data)
	return e, nil
}

// syntaxError turns a JSON decoding error into a FieldError with a line
// and column.
func syntaxError(data []byte, err error) *FieldError {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return &FieldError{Path: position(data, se.Offset), Msg: "invalid JSON: " + se.Error() + " (look for a missing comma or quote, or a trailing comma)"}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &FieldError{Msg: "invalid JSON: the file ends in the middle of a value (an unclosed { or [ ?)"}
	}
	return &FieldError{Msg: "invalid JSON: " + err.Error()}
}

// position formats a byte offset as "line L, column C" (1-based).
func position(data []byte, off int64) string {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	if off < 0 {
		off = 0
	}
	before := data[:off]
	line := bytes.Count(before, []byte{'\n'}) + 1
	col := utf8.RuneCount(before[bytes.LastIndexByte(before, '\n')+1:]) + 1
	return fmt.Sprintf("line %d, column %d", line, col)
}

// decoder fills a Go value from a generic JSON tree, strictly: unknown
// fields and wrong types are errors naming their path.
type decoder struct {
	errs   Errors
	failed map[string]bool // paths whose value could not be decoded
}

// fail reports that the value at path could not be decoded.
func (d *decoder) fail(path, format string, a ...any) {
	if d.failed == nil {
		d.failed = map[string]bool{}
	}
	d.failed[pathOrTop(path)] = true
	d.report(path, fmt.Sprintf(format, a...))
}

func (d *decoder) report(path, msg string) {
	if len(d.errs) < maxErrors {
		d.errs = append(d.errs, &FieldError{Path: pathOrTop(path), Msg: msg})
	}
}

func pathOrTop(p string) string {
	if p == "" {
		return "(top level)"
	}
	return p
}

var (
	durationType = reflect.TypeFor[Duration]()
	rawJSONType  = reflect.TypeFor[RawJSON]()
)

// RawJSON is a JSON value kept as parsed (objects as map[string]any,
// numbers as json.Number), for embedded formats the lab reads itself
// (rt-app workloads).
type RawJSON struct{ v any }

// MarshalJSON writes the value back.
func (r RawJSON) MarshalJSON() ([]byte, error) { return json.Marshal(r.v) }

// value fills v from raw by v's Go kind, reporting a JSON value of the
// wrong kind or out of range at path.
func (d *decoder) value(path string, raw any, v reflect.Value) {
	if raw == nil {
		d.fail(path, "null is not a value here; give a value or remove the field")
		return
	}
	switch v.Type() {
	case durationType:
		d.duration(path, raw, v)
		return
	case rawJSONType:
		v.Set(reflect.ValueOf(RawJSON{v: raw}))
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		d.value(path, raw, p.Elem())
		v.Set(p)
	case reflect.Struct:
		d.object(path, raw, v)
	case reflect.Slice:
		d.list(path, raw, v)
	case reflect.Map:
		d.mapping(path, raw, v)
	case reflect.String:
		d.text(path, raw, v)
	case reflect.Bool:
		b, ok := raw.(bool)
		if !ok {
			d.fail(path, "%s is %s; want true or false", describe(raw), kindOf(raw))
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Uint64, reflect.Float64:
		d.number(path, raw, v)
	default:
		panic("lab: decoder has no case for " + v.Type().String())
	}
}

// duration fills a Duration from a string with a unit.
func (d *decoder) duration(path string, raw any, v reflect.Value) {
	s, ok := raw.(string)
	if !ok {
		d.fail(path, "%s is %s; durations are strings with a unit, like \"2s\", \"1.5ms\" or \"250us\"", describe(raw), kindOf(raw))
		return
	}
	dur, err := parseDuration(s)
	if err != nil {
		d.fail(path, "%q is not a duration; write it with a unit, like \"2s\", \"1.5ms\" or \"250us\"", clip(s))
		return
	}
	v.Set(reflect.ValueOf(Dur(dur)))
}

// list fills a slice from a JSON list, element by element.
func (d *decoder) list(path string, raw any, v reflect.Value) {
	arr, ok := raw.([]any)
	if !ok {
		d.fail(path, "%s is %s; want a list [...]", describe(raw), kindOf(raw))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(arr), len(arr))
	for i, x := range arr {
		d.value(fmt.Sprintf("%s[%d]", path, i), x, s.Index(i))
	}
	v.Set(s)
}

// mapping fills a map from a JSON object, in key order so that errors
// come out in the same order every time.
func (d *decoder) mapping(path string, raw any, v reflect.Value) {
	obj, ok := raw.(map[string]any)
	if !ok {
		d.fail(path, "%s is %s; want an object {...}", describe(raw), kindOf(raw))
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), len(obj))
	for _, k := range sortedKeys(obj) {
		ev := reflect.New(v.Type().Elem()).Elem()
		d.value(joinPath(path, k), obj[k], ev)
		m.SetMapIndex(reflect.ValueOf(k), ev)
	}
	v.Set(m)
}

// text fills a string.
func (d *decoder) text(path string, raw any, v reflect.Value) {
	s, ok := raw.(string)
	if !ok {
		d.fail(path, "%s is %s; want a string \"...\"", describe(raw), kindOf(raw))
		return
	}
	v.SetString(s)
}

// numberKind says how a JSON number fills one Go number kind.
type numberKind struct {
	want  string                   // what the field takes, for a value that is not a number
	bad   string                   // the message (%s: the number) when it does not parse or fit
	parse func(string) (any, bool) // the value, or false
}

// numberKinds are the number kinds the experiment types use: a fraction
// or a number out of range is an error, never rounded or clamped.
var numberKinds = map[reflect.Kind]numberKind{
	reflect.Int: {"a whole number", "%s is not a whole number in range; write an integer such as 4",
		func(n string) (any, bool) {
			i, err := strconv.ParseInt(n, 10, strconv.IntSize)
			return int(i), err == nil
		}},
	reflect.Uint64: {"a whole number ≥ 0", "%s is not a whole number from 0 to 18446744073709551615",
		func(n string) (any, bool) { u, err := strconv.ParseUint(n, 10, 64); return u, err == nil }},
	reflect.Float64: {"a number", "%s is out of range for a number",
		func(n string) (any, bool) { f, err := strconv.ParseFloat(n, 64); return f, err == nil }},
}

// number fills an int, a uint64 or a float64 from a JSON number.
func (d *decoder) number(path string, raw any, v reflect.Value) {
	k := numberKinds[v.Kind()]
	n, ok := raw.(json.Number)
	if !ok {
		d.fail(path, "%s is %s; want %s", describe(raw), kindOf(raw), k.want)
		return
	}
	x, ok := k.parse(string(n))
	if !ok {
		d.fail(path, k.bad, clip(string(n)))
		return
	}
	v.Set(reflect.ValueOf(x).Convert(v.Type()))
}

// object fills struct v from a JSON object, in field order; unknown keys
// are errors listing the known ones.
func (d *decoder) object(path string, raw any, v reflect.Value) {
	obj, ok := raw.(map[string]any)
	if !ok {
		d.fail(path, "%s is %s; want an object {...}", describe(raw), kindOf(raw))
		return
	}
	t := v.Type()
	var known []string
	for i := 0; i < t.NumField(); i++ {
		name := jsonName(t.Field(i))
		if name == "" {
			continue
		}
		known = append(known, name)
		if x, ok := obj[name]; ok {
			d.value(joinPath(path, name), x, v.Field(i))
		}
	}
	for _, k := range sortedKeys(obj) {
		if slices.Contains(known, k) {
			continue
		}
		msg := fmt.Sprintf("unknown field %q", clip(k))
		if s := suggest(k, known); s != "" {
			msg += fmt.Sprintf("; did you mean %q?", s)
		} else {
			msg += "; remove it or use one of: " + strings.Join(known, ", ")
		}
		d.report(path, msg) // the object itself decoded: its checks still apply
	}
}

// jsonName returns the JSON key of an exported field, "" if it has none.
func jsonName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	tag := f.Tag.Get("json")
	name, _, _ := strings.Cut(tag, ",")
	if name == "-" {
		return ""
	}
	if name == "" {
		return f.Name
	}
	return name
}

func joinPath(path, key string) string {
	if !isIdent(key) {
		return fmt.Sprintf("%s[%q]", path, clip(key))
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r == '-' || r == '+' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// sortedKeys returns m's keys in order, so that messages come out in the
// same order every time.
func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// describe renders a raw JSON value briefly for a message.
func describe(raw any) string {
	switch x := raw.(type) {
	case string:
		return strconv.Quote(clip(x))
	case json.Number:
		return clip(string(x))
	case bool:
		return strconv.FormatBool(x)
	case map[string]any:
		return "{...}"
	case []any:
		return "[...]"
	}
	return "null"
}

func kindOf(raw any) string {
	switch raw.(type) {
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	}
	return "null"
}

// clip shortens s for messages.
func clip(s string) string { return clipTo(s, 40) }

// clipTo shortens s to n runes and an ellipsis, if it is longer.
func clipTo(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

// suggest returns the known name closest to k (case-insensitively) if it
// is close enough to be a typo.
func suggest(k string, known []string) string {
	best, bestD := "", 3
	lk := strings.ToLower(k)
	if len(lk) > 64 {
		return ""
	}
	for _, n := range known {
		if dd := editDistance(lk, strings.ToLower(n)); dd < bestD {
			best, bestD = n, dd
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c++
			}
			cur[j] = min(c, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
