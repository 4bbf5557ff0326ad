package patch

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strconv"
	"strings"

	"github.com/gatehouse-dev/gatehouse/modules/scim/internal/schema"
)

// The helpers below work on resources in SCIM JSON shape. Their recursion
// follows the resource, which is the server's own data shaped by the schema
// (at most resource → attribute → element → sub-attribute), or values
// already passed through schema.Coerce, never raw client input.

// deepCopy copies the maps and slices of a JSON-shaped value so the copy can
// be modified without touching the original. Other values are immutable
// (strings, numbers, booleans) and shared.
func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		return copyMap(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = deepCopy(e)
		}
		return out
	case []map[string]any:
		out := make([]map[string]any, len(x))
		for i, e := range x {
			out[i] = copyMap(e)
		}
		return out
	case []string:
		return append([]string(nil), x...)
	}
	return v
}

func copyMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = deepCopy(v)
	}
	return out
}

// lookup returns m[name], tolerating a stored key that differs in case: the
// resource should use canonical names, but attribute names are
// case-insensitive (RFC 7643 §2.1) and data written by older code may not.
func lookup(m map[string]any, name string) any {
	if v, ok := m[name]; ok {
		return v
	}
	for k, v := range m {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return nil
}

// store sets m[name] = v under the canonical name, dropping any key that
// differs from it only in case.
func store(m map[string]any, name string, v any) {
	deleteKey(m, name)
	m[name] = v
}

// deleteKey deletes name from m in any case.
func deleteKey(m map[string]any, name string) {
	for k := range m {
		if strings.EqualFold(k, name) {
			delete(m, k)
		}
	}
}

// asList returns a stored multi-valued value as []any. A scalar stored
// where a list belongs is read as a one-element list.
func asList(v any) []any {
	if v == nil {
		return nil
	}
	if l, ok := schema.AsList(v); ok {
		return l
	}
	return []any{v}
}

// unassigned reports null, an empty list or a complex value without
// assigned sub-attributes, which RFC 7643 §2.5 treats alike.
func unassigned(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case map[string]any:
		for _, e := range x {
			if !unassigned(e) {
				return false
			}
		}
		return true
	}
	if l, ok := schema.AsList(v); ok {
		return len(l) == 0
	}
	return false
}

// equal compares two JSON-shaped values exactly (strings case-sensitively),
// treating numbers by value whatever their Go type and every unassigned
// form as equal.
func equal(a, b any) bool {
	if unassigned(a) || unassigned(b) {
		return unassigned(a) && unassigned(b)
	}
	switch x := a.(type) {
	case string:
		y, ok := b.(string)
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok {
			return false
		}
		for k, xv := range x {
			if !equal(xv, y[k]) {
				return false
			}
		}
		for k, yv := range y {
			if _, seen := x[k]; !seen && !unassigned(yv) {
				return false
			}
		}
		return true
	}
	if xl, ok := schema.AsList(a); ok {
		yl, ok := schema.AsList(b)
		if !ok || len(xl) != len(yl) {
			return false
		}
		for i := range xl {
			if !equal(xl[i], yl[i]) {
				return false
			}
		}
		return true
	}
	if xs, ok := numberText(a); ok {
		ys, ok := numberText(b)
		return ok && numbersEqual(xs, ys)
	}
	return reflect.DeepEqual(a, b)
}

// numberText returns a numeric value as decimal text.
func numberText(v any) (string, bool) {
	switch x := v.(type) {
	case json.Number:
		return string(x), true
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), true
	case int:
		return strconv.Itoa(x), true
	case int64:
		return strconv.FormatInt(x, 10), true
	}
	return "", false
}

// numbersEqual compares integers exactly and anything else as float64.
func numbersEqual(a, b string) bool {
	if x, err := strconv.ParseInt(a, 10, 64); err == nil {
		if y, err := strconv.ParseInt(b, 10, 64); err == nil {
			return x == y
		}
	}
	x, errX := strconv.ParseFloat(a, 64)
	y, errY := strconv.ParseFloat(b, 64)
	return errX == nil && errY == nil && x == y
}

func numberValue(v any) (float64, bool) {
	s, ok := numberText(v)
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	return f, err == nil
}

// decodeValue decodes an operation's value the way the rest of the server
// decodes JSON: numbers as json.Number, so integers keep their precision.
func decodeValue(raw json.RawMessage) (any, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("unexpected data after the value")
	}
	return v, nil
}

// member is a name/value pair of a JSON object, in document order.
type member struct {
	key string
	val any
}

// decodeObject decodes a JSON object keeping its members in document order,
// which matters when a path-less operation names overlapping paths (e.g.
// "name" and "name.givenName"): they are applied in the order sent. ok is
// false when raw is valid JSON but not an object.
func decodeObject(raw json.RawMessage) (members []member, ok bool, err error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	tok, err := d.Token()
	if err != nil {
		return nil, false, err
	}
	if tok != json.Delim('{') {
		return nil, false, nil
	}
	for d.More() {
		tok, err := d.Token()
		if err != nil {
			return nil, true, err
		}
		key, _ := tok.(string) // object keys are always strings
		var v any
		if err := d.Decode(&v); err != nil {
			return nil, true, err
		}
		members = append(members, member{key, v})
	}
	if _, err := d.Token(); err != nil { // the closing brace
		return nil, true, err
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return nil, true, errors.New("unexpected data after the value")
	}
	return members, true, nil
}

// jsonKind names the JSON type of raw for messages.
func jsonKind(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}
