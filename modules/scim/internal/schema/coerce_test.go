package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// decodeJSON decodes s as the SCIM server does: with UseNumber.
func decodeJSON(t *testing.T, s string) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader([]byte(s)))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
	return v
}

func TestCoerce(t *testing.T) {
	user := UserSchema()
	ent := EnterpriseUserSchema()
	group := GroupSchema()
	common := CommonAttributes()
	get := func(s *Schema, name string) *Attribute {
		a := s.Attribute(name)
		if a == nil {
			t.Fatalf("no attribute %q in %s", name, s.ID)
		}
		return a
	}
	integer := attr("integer", "count", "")
	decimal := attr("decimal", "weight", "")
	multiInt := attr("integer", "lucky", "", multi)

	tests := []struct {
		name string
		attr *Attribute
		in   string // JSON
		want any
	}{
		{"string", get(user, "userName"), `"bjensen"`, "bjensen"},
		{"empty string stays", get(user, "displayName"), `""`, ""},
		{"null is unassigned", get(user, "displayName"), `null`, nil},
		{"bool true", get(user, "active"), `true`, true},
		{"bool false", get(user, "active"), `false`, false},
		{"bool string False (Entra)", get(user, "active"), `"False"`, false},
		{"bool string TRUE", get(user, "active"), `"TRUE"`, true},
		{"bool string tRuE", get(user, "active"), `"tRuE"`, true},
		{"integer", integer, `42`, json.Number("42")},
		{"negative integer", integer, `-7`, json.Number("-7")},
		{"decimal", decimal, `1.5e3`, json.Number("1.5e3")},
		{"decimal integer literal", decimal, `2`, json.Number("2")},
		{"integer string (Okta, Entra)", integer, `"123"`, json.Number("123")},
		{"decimal string (Okta, Entra)", decimal, `" 1.5 "`, json.Number("1.5")},
		{"dateTime", findAttr(common, "meta").Sub("created"), `"2008-01-23T04:56:22Z"`, "2008-01-23T04:56:22Z"},
		{"dateTime fraction and offset", findAttr(common, "meta").Sub("lastModified"), `"2011-05-13T04:42:34.123+02:00"`, "2011-05-13T04:42:34.123+02:00"},
		{"reference", get(user, "profileUrl"), `"https://login.example.com/bjensen"`, "https://login.example.com/bjensen"},
		{"binary std", get(user, "x509Certificates").Sub("value"), `"TUlJREhE+/8="`, "TUlJREhE+/8="},
		{"binary url", get(user, "x509Certificates").Sub("value"), `"TUlJREhE-_8="`, "TUlJREhE-_8="},
		{"binary unpadded", get(user, "x509Certificates").Sub("value"), `"TUlJREhE-_8"`, "TUlJREhE-_8"},
		{"complex canonical keys", get(user, "name"), `{"GIVENNAME":"Barbara","familyname":"Jensen"}`,
			map[string]any{"givenName": "Barbara", "familyName": "Jensen"}},
		{"complex null sub dropped", get(user, "name"), `{"givenName":"Barbara","middleName":null}`,
			map[string]any{"givenName": "Barbara"}},
		{"complex all null is unassigned", get(user, "name"), `{"givenName":null}`, nil},
		{"complex empty is unassigned", get(user, "name"), `{}`, nil},
		{"multi complex", get(user, "emails"), `[{"value":"a@example.com","type":"work","Primary":"True"},{"value":"b@example.com"}]`,
			[]any{
				map[string]any{"value": "a@example.com", "type": "work", "primary": true},
				map[string]any{"value": "b@example.com"},
			}},
		{"multi single object is one-element list", get(user, "emails"), `{"value":"a@example.com"}`,
			[]any{map[string]any{"value": "a@example.com"}}},
		{"multi empty list is unassigned", get(user, "emails"), `[]`, nil},
		{"multi element with only nulls dropped", get(group, "members"), `[{"$ref":null},{"value":"u1","$ref":null}]`,
			[]any{map[string]any{"value": "u1"}}},
		{"multi simple", multiInt, `[1,2]`, []any{json.Number("1"), json.Number("2")}},
		{"multi simple single value", multiInt, `3`, []any{json.Number("3")}},
		{"manager as string id (Entra)", get(ent, "manager"), `"2819c223"`, map[string]any{"value": "2819c223"}},
		{"manager as one-element list (Entra)", get(ent, "manager"), `[{"value":"2819c223"}]`, map[string]any{"value": "2819c223"}},
		{"manager as list of string", get(ent, "manager"), `["2819c223"]`, map[string]any{"value": "2819c223"}},
		{"manager as object", get(ent, "manager"), `{"Value":"2819c223","$ref":"../Users/2819c223"}`,
			map[string]any{"value": "2819c223", "$ref": "../Users/2819c223"}},
		{"manager empty string is unassigned", get(ent, "manager"), `""`, nil},
		{"manager empty list is unassigned", get(ent, "manager"), `[]`, nil},
		{"single-valued simple as [{value}] (Entra)", get(user, "nickName"), `[{"value":"Babs"}]`, "Babs"},
		{"single-valued simple as one-element list", get(user, "nickName"), `["Babs"]`, "Babs"},
		{"single-valued bool as [{value}]", get(user, "active"), `[{"value":"False"}]`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Coerce(tt.attr, decodeJSON(t, tt.in))
			if err != nil {
				t.Fatalf("Coerce(%s): %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Coerce(%s)\n got: %#v\nwant: %#v", tt.in, got, tt.want)
			}
		})
	}
}

func TestCoerceGoValues(t *testing.T) {
	integer := attr("integer", "count", "")
	decimal := attr("decimal", "weight", "")
	tests := []struct {
		name string
		attr *Attribute
		in   any
		want any
	}{
		{"float64 integer", integer, float64(12), json.Number("12")},
		{"int", integer, 12, json.Number("12")},
		{"int64", integer, int64(-3), json.Number("-3")},
		{"float64 decimal", decimal, 0.25, json.Number("0.25")},
		{"int decimal", decimal, 4, json.Number("4")},
		{"[]map elements", GroupSchema().Attribute("members"), []map[string]any{{"value": "u1"}},
			[]any{map[string]any{"value": "u1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Coerce(tt.attr, tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestCoerceErrors(t *testing.T) {
	user := UserSchema()
	ent := EnterpriseUserSchema()
	integer := attr("integer", "count", "")
	decimal := attr("decimal", "weight", "")
	created := CommonAttributes()[2].Sub("created")
	cert := user.Attribute("x509Certificates")

	tests := []struct {
		name string
		attr *Attribute
		in   string
		msg  string // the whole message
	}{
		{"bool other string", user.Attribute("active"), `"maybe"`, `attribute "active" must be a boolean (true or false), got "maybe"`},
		{"bool yes", user.Attribute("active"), `"yes"`, `attribute "active" must be a boolean (true or false), got "yes"`},
		{"bool number", user.Attribute("active"), `1`, `attribute "active" must be a boolean (true or false), got 1`},
		{"bool object", user.Attribute("active"), `{}`, `attribute "active" must be a boolean (true or false), got an object`},
		{"string number", user.Attribute("userName"), `5`, `attribute "userName" must be a string, got 5`},
		{"string bool", user.Attribute("userName"), `true`, `attribute "userName" must be a string, got true`},
		{"reference number", user.Attribute("profileUrl"), `5`, `attribute "profileUrl" must be a string (a reference), got 5`},
		{"integer fraction", integer, `1.5`, `attribute "count" must be an integer (no fraction or exponent), got 1.5`},
		{"integer exponent", integer, `1e3`, `attribute "count" must be an integer (no fraction or exponent), got 1e3`},
		{"integer string not a number", integer, `"five"`, `attribute "count" must be an integer, got "five"`},
		{"integer string fraction", integer, `"1.5"`, `attribute "count" must be an integer (no fraction or exponent), got "1.5"`},
		{"integer overflow", integer, `9223372036854775808`, `attribute "count" must be an integer between -9223372036854775808 and 9223372036854775807, got 9223372036854775808`},
		{"decimal string not a number", decimal, `"NaN"`, `attribute "weight" must be a number, got "NaN"`},
		{"decimal overflow", decimal, `1e400`, `attribute "weight" must be a number within the range of a 64-bit float, got 1e400`},
		{"dateTime no zone", created, `"2008-01-23T04:56:22"`, `attribute "created" must be a dateTime in RFC 3339 format (e.g. "2008-01-23T04:56:22Z"), got "2008-01-23T04:56:22"`},
		{"dateTime date only", created, `"2008-01-23"`, `attribute "created" must be a dateTime in RFC 3339 format (e.g. "2008-01-23T04:56:22Z"), got "2008-01-23"`},
		{"dateTime number", created, `1`, `attribute "created" must be a dateTime in RFC 3339 format (e.g. "2008-01-23T04:56:22Z"), got 1`},
		{"binary not base64", cert.Sub("value"), `"not base64!"`, `attribute "value" must be a base64-encoded string, got "not base64!"`},
		{"binary in element", cert, `[{"value":"%%%"}]`, `attribute "x509Certificates.value" must be a base64-encoded string, got "%%%"`},
		{"unknown sub-attribute", user.Attribute("name"), `{"givenName":"B","nickname":"x"}`, `attribute "name" has no sub-attribute "nickname"`},
		{"unknown sub-attribute in element", user.Attribute("emails"), `[{"value":"a@b","kind":"work"}]`, `attribute "emails" has no sub-attribute "kind"`},
		{"duplicate sub-attribute", user.Attribute("name"), `{"givenName":"a","GivenName":"b"}`, `attribute "name" has sub-attribute "givenName" more than once (names are case-insensitive)`},
		{"sub-attribute type", user.Attribute("emails"), `[{"value":"a@b","primary":"yes"}]`, `attribute "emails.primary" must be a boolean (true or false), got "yes"`},
		{"complex scalar without value sub", user.Attribute("name"), `"Barbara"`, `attribute "name" must be an object with sub-attributes, got "Barbara"`},
		{"multi complex scalar", user.Attribute("emails"), `"a@b.com"`, `attribute "emails" must be an object with sub-attributes, got "a@b.com"`},
		{"multi null element", user.Attribute("emails"), `[null]`, `attribute "emails" must not contain null values`},
		{"multi nested array", user.Attribute("emails"), `[[]]`, `attribute "emails" must not contain nested arrays`},
		{"single-valued long array", user.Attribute("nickName"), `["a","b"]`, `attribute "nickName" is single-valued, got an array of 2 values`},
		{"manager two elements", ent.Attribute("manager"), `[{"value":"a"},{"value":"b"}]`, `attribute "manager" is single-valued, got an array of 2 values`},
		{"single-valued simple as other object", user.Attribute("nickName"), `[{"display":"Babs"}]`, `attribute "nickName" must be a string, got an object`},
		{"single-valued simple object", user.Attribute("nickName"), `{"value":"Babs"}`, `attribute "nickName" must be a string, got an object`},
		{"long value truncated", user.Attribute("active"), `"` + strings.Repeat("x", 50) + `"`,
			`attribute "active" must be a boolean (true or false), got "` + strings.Repeat("x", 40) + `"...`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Coerce(tt.attr, decodeJSON(t, tt.in))
			if err == nil {
				t.Fatalf("Coerce(%s) = %#v, want error", tt.in, got)
			}
			if !errors.Is(err, ErrInvalidValue) {
				t.Errorf("error %v does not wrap ErrInvalidValue", err)
			}
			if err.Error() != tt.msg {
				t.Errorf("message\n got: %s\nwant: %s", err, tt.msg)
			}
		})
	}
}

func TestCoerceRejectsNonJSONNumbers(t *testing.T) {
	decimal := attr("decimal", "weight", "")
	for _, n := range []string{"NaN", "Inf", "0x10", "1_0", `"1"`, ""} {
		if v, err := Coerce(decimal, json.Number(n)); err == nil {
			t.Errorf("Coerce(json.Number(%q)) = %v, want error", n, v)
		}
	}
}
