package schema

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrInvalidValue reports a value that does not fit its attribute's
// definition (RFC 7643 §2.3). Errors returned by [Coerce] wrap it; callers
// answer 400 with scimType "invalidValue" (RFC 7644 §3.12).
var ErrInvalidValue = errors.New("invalid attribute value")

// valueError is an ErrInvalidValue whose message is meant for the API
// client as is: it names the attribute and says what was expected.
type valueError struct{ msg string }

func (e *valueError) Error() string { return e.msg }
func (e *valueError) Unwrap() error { return ErrInvalidValue }

func invalid(path, format string, args ...any) error {
	return &valueError{msg: fmt.Sprintf("attribute %q ", path) + fmt.Sprintf(format, args...)}
}

// Coerce converts v, a value decoded by encoding/json with UseNumber, to the
// canonical Go representation of attribute a:
//
//	string, reference  string, without NUL characters (U+0000), which no database stores
//	binary             string, validated as base64 (standard or URL alphabet, padded or not)
//	dateTime           string, validated as RFC 3339 (xsd:dateTime with a time zone, RFC 7643 §2.3.5), years 0001-9999 in UTC
//	boolean            bool; the strings "true" and "false" are accepted in any case
//	integer            json.Number without fraction or exponent, within int64
//	decimal            json.Number
//	complex            map[string]any keyed by canonical sub-attribute names
//	multi-valued       []any of the above
//
// float64 and Go integer values are accepted for integer and decimal
// attributes too (and returned as json.Number), so values built in code need
// no round trip through JSON.
//
// null (nil) means unassigned (RFC 7643 §2.5) and yields nil, as do an
// empty array and an empty complex value. Null sub-attributes are dropped
// from complex values. Sub-attribute names are matched case-insensitively
// (RFC 7643 §2.1); an unknown or repeated one is an error.
//
// Coerce is lenient where identity providers are known to deviate:
//
//   - A single non-array value for a multi-valued attribute is read as a
//     one-element list.
//   - Booleans given as strings in any case: Microsoft Entra ID sends
//     "False". Integers and decimals given as strings holding a JSON number
//     ("123", "1.5"): Okta's and Entra's attribute mappings send numbers
//     as strings.
//   - A single-valued complex attribute that has a "value" sub-attribute
//     (enterprise manager) accepts a bare string, number or boolean as that
//     value: Entra sends "manager": "2819c223" for {"value": "2819c223"}.
//     The empty string is read as unassigned, since a reference to nothing
//     is no reference.
//   - A single-valued attribute given as a one-element array is read as
//     that element, and a single-valued simple attribute given as
//     [{"value": x}] is read as x: Entra without the aadOptscim062020 flag
//     sends "nickName": [{"value": "Babs"}] and "manager": [{"value": "id"}].
//
// Errors wrap ErrInvalidValue and read like
// `attribute "active" must be a boolean (true or false), got "maybe"`;
// sub-attributes are named "name.givenName". Coerce does not look at
// mutability: keeping clients away from readOnly attributes is the caller's
// business.
func Coerce(a *Attribute, v any) (any, error) {
	return coerce(a.Name, a, v)
}

// coerce recurses only along the schema (attribute → sub-attribute →
// element), never along the input, so its depth is bounded by the schema's.
func coerce(path string, a *Attribute, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	if a.MultiValued {
		return coerceMulti(path, a, v)
	}
	return coerceSingle(path, a, v)
}

func coerceMulti(path string, a *Attribute, v any) (any, error) {
	list, ok := AsList(v)
	if !ok {
		list = []any{v}
	}
	out := make([]any, 0, len(list))
	for _, e := range list {
		if e == nil {
			return nil, invalid(path, "must not contain null values")
		}
		if _, nested := AsList(e); nested {
			return nil, invalid(path, "must not contain nested arrays")
		}
		c, err := coerceSingle(path, a, e)
		if err != nil {
			return nil, err
		}
		if c != nil { // an element with only null sub-attributes is no element
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return nil, nil // RFC 7643 §2.5: an empty array is unassigned
	}
	return out, nil
}

func coerceSingle(path string, a *Attribute, v any) (any, error) {
	if list, ok := AsList(v); ok && !a.MultiValued {
		var err error
		if v, err = unwrapSingle(path, a, list); v == nil || err != nil {
			return nil, err
		}
	}
	switch a.Type {
	case TypeComplex:
		return coerceComplex(path, a, v)
	case TypeBoolean:
		return coerceBool(path, v)
	case TypeInteger:
		return coerceInteger(path, v)
	case TypeDecimal:
		return coerceDecimal(path, v)
	case TypeDateTime:
		return coerceDateTime(path, v)
	case TypeBinary:
		return coerceBinary(path, v)
	case TypeString, TypeReference:
		if s, ok := v.(string); ok {
			// JSON can carry U+0000 ("\u0000"); no database text column can.
			if strings.IndexByte(s, 0) >= 0 {
				return nil, invalid(path, "must not contain the NUL character (U+0000)")
			}
			return s, nil
		}
		return nil, invalid(path, "must be %s, got %s", expected(a), describe(v))
	}
	return nil, invalid(path, "has unsupported type %q", a.Type)
}

// unwrapSingle reads an array given for the single-valued attribute a: an
// empty one is unassigned (RFC 7643 §2.5), a one-element one is its element,
// and for a simple attribute [{"value": x}] is x (Entra's pre-2020 form).
func unwrapSingle(path string, a *Attribute, list []any) (any, error) {
	switch len(list) {
	case 0:
		return nil, nil
	case 1:
	default:
		return nil, invalid(path, "is single-valued, got an array of %d values", len(list))
	}
	e := list[0]
	if m, ok := e.(map[string]any); ok && a.Type != TypeComplex {
		if len(m) != 1 {
			return nil, invalid(path, "must be %s, got an object", expected(a))
		}
		for k, x := range m {
			if !strings.EqualFold(k, "value") {
				return nil, invalid(path, "must be %s, got an object", expected(a))
			}
			e = x
		}
	}
	if _, nested := AsList(e); nested {
		return nil, invalid(path, "must be %s, got a nested array", expected(a))
	}
	return e, nil
}

func coerceComplex(path string, a *Attribute, v any) (any, error) {
	m, ok := v.(map[string]any)
	if !ok {
		valueSub := a.Sub("value")
		if a.MultiValued || valueSub == nil || !isScalar(v) {
			return nil, invalid(path, "must be an object with sub-attributes, got %s", describe(v))
		}
		if v == "" {
			return nil, nil
		}
		m = map[string]any{valueSub.Name: v}
	}
	out := make(map[string]any, len(m))
	seen := make(map[string]bool, len(m))
	// Sorted keys make the reported error deterministic when several are bad.
	for _, k := range slices.Sorted(maps.Keys(m)) {
		sub := a.Sub(k)
		if sub == nil {
			return nil, invalid(path, "has no sub-attribute %q", k)
		}
		if seen[sub.Name] {
			return nil, invalid(path, "has sub-attribute %q more than once (names are case-insensitive)", sub.Name)
		}
		seen[sub.Name] = true
		c, err := coerce(path+"."+sub.Name, sub, m[k])
		if err != nil {
			return nil, err
		}
		if c != nil {
			out[sub.Name] = c
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

func coerceBool(path string, v any) (any, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case string:
		// Entra ID sends "True"/"False" (known SCIM compliance issue).
		switch {
		case strings.EqualFold(x, "true"):
			return true, nil
		case strings.EqualFold(x, "false"):
			return false, nil
		}
	}
	return nil, invalid(path, "must be a boolean (true or false), got %s", describe(v))
}

// numberString reads a string holding a JSON number as that number; other
// values are returned as they are.
func numberString(v any) any {
	s, ok := v.(string)
	if !ok {
		return v
	}
	s = strings.TrimSpace(s)
	if s == "" || (s[0] != '-' && (s[0] < '0' || s[0] > '9')) || !json.Valid([]byte(s)) {
		return v
	}
	return json.Number(s)
}

func coerceInteger(path string, v any) (any, error) {
	if n, ok := numberString(v).(json.Number); ok {
		if _, isStr := v.(string); isStr && strings.ContainsAny(string(n), ".eE") {
			return nil, invalid(path, "must be an integer (no fraction or exponent), got %s", describe(v))
		}
		v = n
	}
	switch x := v.(type) {
	case json.Number:
		s := string(x)
		if strings.ContainsAny(s, ".eE") {
			return nil, invalid(path, "must be an integer (no fraction or exponent), got %s", describe(v))
		}
		if _, err := strconv.ParseInt(s, 10, 64); err != nil {
			return nil, invalid(path, "must be an integer between %d and %d, got %s", math.MinInt64, math.MaxInt64, describe(v))
		}
		return x, nil
	case float64:
		// 2^63 is exactly representable and one past MaxInt64, so the
		// comparison against it is exact.
		if x != math.Trunc(x) || x < math.MinInt64 || x >= 1<<63 {
			return nil, invalid(path, "must be an integer, got %s", describe(v))
		}
		return json.Number(strconv.FormatInt(int64(x), 10)), nil
	}
	if n, ok := goInt(v); ok {
		return json.Number(n), nil
	}
	return nil, invalid(path, "must be an integer, got %s", describe(v))
}

func coerceDecimal(path string, v any) (any, error) {
	v = numberString(v)
	switch x := v.(type) {
	case json.Number:
		s := string(x)
		// json.Valid rejects what ParseFloat would accept but JSON does
		// not ("NaN", "Inf", "0x1p3", "1_0"); a leading digit or '-' rules
		// out other JSON values such as strings.
		if s == "" || (s[0] != '-' && (s[0] < '0' || s[0] > '9')) || !json.Valid([]byte(s)) {
			return nil, invalid(path, "must be a number, got %s", describe(v))
		}
		if _, err := strconv.ParseFloat(s, 64); err != nil {
			return nil, invalid(path, "must be a number within the range of a 64-bit float, got %s", describe(v))
		}
		return x, nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, invalid(path, "must be a finite number, got %s", describe(v))
		}
		return json.Number(strconv.FormatFloat(x, 'g', -1, 64)), nil
	}
	if n, ok := goInt(v); ok {
		return json.Number(n), nil
	}
	return nil, invalid(path, "must be a number, got %s", describe(v))
}

func coerceDateTime(path string, v any) (any, error) {
	s, ok := v.(string)
	if ok {
		// time.RFC3339 also accepts fractional seconds when parsing.
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			// RFC 3339 reaches year 0000, and past 9999 through an offset; PostgreSQL
			// has no year 0 and neither database reads a five-digit year back.
			if y := t.UTC().Year(); y < 1 || y > 9999 {
				return nil, invalid(path, "must be a dateTime between years 0001 and 9999 in UTC, got %s", describe(v))
			}
			return s, nil
		}
	}
	return nil, invalid(path, `must be a dateTime in RFC 3339 format (e.g. "2008-01-23T04:56:22Z"), got %s`, describe(v))
}

// base64Encodings are tried in turn: RFC 7643 §2.3.6 says base64 (RFC 4648
// §4), but clients also send the URL-safe alphabet and drop padding.
var base64Encodings = [...]*base64.Encoding{
	base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding,
}

func coerceBinary(path string, v any) (any, error) {
	s, ok := v.(string)
	if ok {
		for _, enc := range base64Encodings {
			if _, err := enc.DecodeString(s); err == nil {
				return s, nil
			}
		}
	}
	return nil, invalid(path, "must be a base64-encoded string, got %s", describe(v))
}

// expected names the JSON type an attribute takes, for messages.
func expected(a *Attribute) string {
	switch a.Type {
	case TypeComplex:
		return "an object"
	case TypeBoolean:
		return "a boolean"
	case TypeInteger:
		return "an integer"
	case TypeDecimal:
		return "a number"
	case TypeDateTime:
		return "a dateTime string"
	case TypeBinary:
		return "a base64-encoded string"
	case TypeReference:
		return "a string (a reference)"
	}
	return "a string"
}

// maxDescribed bounds how much of a client's value an error message repeats.
const maxDescribed = 40

// describe renders a decoded JSON value for an error message.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		if len(x) <= maxDescribed {
			return strconv.Quote(x)
		}
		i := maxDescribed
		for i > 0 && !utf8.RuneStart(x[i]) {
			i--
		}
		return strconv.Quote(x[:i]) + "..."
	case bool:
		return strconv.FormatBool(x)
	case json.Number:
		if len(x) > maxDescribed {
			return "a number"
		}
		return string(x)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case map[string]any:
		return "an object"
	}
	if _, ok := AsList(v); ok {
		return "an array"
	}
	if n, ok := goInt(v); ok {
		return n
	}
	return fmt.Sprintf("a value of type %T", v)
}

func isScalar(v any) bool {
	switch v.(type) {
	case string, bool, json.Number, float64:
		return true
	}
	_, ok := goInt(v)
	return ok
}

// goInt formats Go integer values built in code (not produced by JSON).
func goInt(v any) (string, bool) {
	switch x := v.(type) {
	case int:
		return strconv.Itoa(x), true
	case int32:
		return strconv.FormatInt(int64(x), 10), true
	case int64:
		return strconv.FormatInt(x, 10), true
	}
	return "", false
}

// AsList returns v as []any when it is a list: []any as decoded by
// encoding/json, or the []map[string]any and []string forms code may build.
func AsList(v any) ([]any, bool) {
	switch x := v.(type) {
	case []any:
		return x, true
	case []map[string]any:
		out := make([]any, len(x))
		for i, m := range x {
			out[i] = m
		}
		return out, true
	case []string:
		out := make([]any, len(x))
		for i, s := range x {
			out[i] = s
		}
		return out, true
	}
	return nil, false
}
