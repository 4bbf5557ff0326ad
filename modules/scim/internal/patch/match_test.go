package patch

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/modules/platform/filter"
	"github.com/gatehouse-dev/gatehouse/modules/scim/internal/schema"
)

// acmeURN is a test extension of User with the attribute types the
// built-in schemas lack in multi-valued attributes.
const acmeURN = "urn:example:params:scim:schemas:extension:acme:2.0:User"

func acmeRegistry(t *testing.T) *schema.Registry {
	t.Helper()
	reg, err := schema.NewRegistry(&schema.Schema{
		ID: acmeURN,
		Attributes: []*schema.Attribute{
			{Name: "badges", Type: schema.TypeComplex, MultiValued: true, SubAttributes: []*schema.Attribute{
				{Name: "code", CaseExact: true},
				{Name: "value"},
				{Name: "level", Type: schema.TypeInteger},
				{Name: "score", Type: schema.TypeDecimal},
				{Name: "earned", Type: schema.TypeDateTime},
				{Name: "active", Type: schema.TypeBoolean},
				{Name: "primary", Type: schema.TypeBoolean},
				{Name: "tags", MultiValued: true},
			}},
			{Name: "shoeSize", Type: schema.TypeInteger},
			{Name: "serial", Mutability: schema.MutabilityImmutable},
			{Name: "nicknames", MultiValued: true},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func TestMatches(t *testing.T) {
	reg := acmeRegistry(t)
	r, err := reg.Resolve("User", schema.Path{URN: acmeURN, Name: "badges"})
	if err != nil {
		t.Fatal(err)
	}
	badges := r.Attr
	elem := map[string]any{
		"code": "AB-1", "value": "Gold", "level": json.Number("3"), "score": 2.5,
		"earned": "2020-05-01T10:00:00Z", "active": true, "tags": []any{"x", "Y"},
	}
	tests := []struct {
		filter string
		want   bool
	}{
		{`code eq "AB-1"`, true},
		{`code eq "ab-1"`, false}, // caseExact
		{`code co "B-"`, true},
		{`code sw "AB"`, true},
		{`code ew "-1"`, true},
		{`code gt "AA"`, true},
		{`code lt "AA"`, false},
		{`code ne "AB-1"`, false},
		{`value eq "GOLD"`, true}, // not caseExact
		{`value co "OL"`, true},
		{`value le "gold"`, true},
		{`level eq 3`, true},
		{`level eq 3.0`, true},
		{`level ne 3`, false},
		{`level gt 2`, true},
		{`level ge 3`, true},
		{`level lt 3`, false},
		{`level le 3`, true},
		{`score eq 2.5`, true},
		{`score gt 2`, true},
		{`score lt 2`, false},
		{`earned gt "2020-01-01T00:00:00Z"`, true},
		{`earned eq "2020-05-01T12:00:00+02:00"`, true}, // same instant
		{`earned lt "2020-05-01T10:30:00+01:00"`, false},
		{`active eq true`, true},
		{`active eq "TRUE"`, true},
		{`active ne false`, true},
		{`active eq false`, false},
		{`tags eq "y"`, true}, // any value of a multi-valued sub-attribute
		{`tags eq "z"`, false},
		{`code pr`, true},
		{`primary pr`, false},
		{`primary eq null`, true},
		{`code ne null`, true},
		{`code eq null`, false},
		{`primary ne true`, true}, // absent is not equal
		{`primary eq true`, false},
		{`not (code eq "AB-1")`, false},
		{`(level gt 5 or level lt 5) and active eq true`, true},
		{`level gt 5 or (code sw "A" and not (active eq false))`, true},
		{`level gt 5 or level gt 6 or level gt 7`, false},
		{`code eq "AB-1" and level eq 3 and score eq 2.5 and active eq true`, true},
		{`code eq "AB-1" and level eq 3 and score eq 2.5 and active eq false`, false},
	}
	for _, tt := range tests {
		t.Run(tt.filter, func(t *testing.T) {
			p, err := filter.ParsePath("badges[" + tt.filter + "]")
			if err != nil {
				t.Fatal(err)
			}
			if msg := checkFilter(badges, p.Filter); msg != "" {
				t.Fatalf("checkFilter: %s", msg)
			}
			if got := matches(badges, p.Filter, elem); got != tt.want {
				t.Fatalf("matches = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCheckFilter(t *testing.T) {
	reg := acmeRegistry(t)
	r, err := reg.Resolve("User", schema.Path{URN: acmeURN, Name: "badges"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ filter, msg string }{
		{`level eq "3"`, `badges.level is a number, so it cannot be compared with "3" using "eq"`},
		{`code eq 1`, `badges.code is a string, so it cannot be compared with 1 using "eq"`},
		{`active eq "yes"`, `badges.active is a boolean (only eq and ne with true or false apply)`},
		{`active gt "true"`, `badges.active is a boolean (only eq and ne with true or false apply)`},
		{`earned gt 5`, `badges.earned is a dateTime, so it cannot be compared with 5`},
		{`earned gt "yesterday"`, `badges.earned is a dateTime; "yesterday" is not in RFC 3339 format`},
		{`kind eq "x"`, `attribute "badges" has no sub-attribute "kind"`},
		{`kind pr`, `attribute "badges" has no sub-attribute "kind"`},
		{`code pr and not (kind pr)`, `attribute "badges" has no sub-attribute "kind"`},
		{`code pr or (level gt 1 and kind eq 1)`, `attribute "badges" has no sub-attribute "kind"`},
	}
	for _, tt := range tests {
		t.Run(tt.filter, func(t *testing.T) {
			p, err := filter.ParsePath("badges[" + tt.filter + "]")
			if err != nil {
				t.Fatal(err)
			}
			if msg := checkFilter(r.Attr, p.Filter); !strings.Contains(msg, tt.msg) {
				t.Fatalf("checkFilter = %q, want %q", msg, tt.msg)
			}
		})
	}
}

func TestExtensionTypes(t *testing.T) {
	reg := acmeRegistry(t)
	apply := func(t *testing.T, res map[string]any, body string) (Result, error) {
		t.Helper()
		ops, err := ParseRequest([]byte(body), 0)
		if err != nil {
			t.Fatal(err)
		}
		return Apply(reg, res, ops, Options{ResourceType: "User", ResourceID: "u"})
	}
	acme := func(r Result) map[string]any { m, _ := r.Resource[acmeURN].(map[string]any); return m }

	t.Run("numbers compare by value", func(t *testing.T) {
		res := map[string]any{"id": "u", "userName": "u", acmeURN: map[string]any{"shoeSize": float64(42)}}
		got, err := apply(t, res, env(`{"op":"replace","path":"shoeSize","value":42}`))
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Changed) != 0 {
			t.Errorf("Changed = %q, want none", got.Changed)
		}
		got, err = apply(t, res, env(`{"op":"replace","path":"shoeSize","value":43}`))
		if err != nil {
			t.Fatal(err)
		}
		if acme(got)["shoeSize"] != json.Number("43") || len(got.Changed) != 1 {
			t.Errorf("got %v, Changed %q", acme(got), got.Changed)
		}
	})
	t.Run("integer type", func(t *testing.T) {
		_, err := apply(t, map[string]any{}, env(`{"op":"replace","path":"shoeSize","value":42.5}`))
		var pe *Error
		if !errors.As(err, &pe) || pe.ScimType != InvalidValue || !strings.Contains(pe.Detail, `attribute "shoeSize" must be an integer`) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("immutable", func(t *testing.T) {
		res := map[string]any{"id": "u", "userName": "u"}
		got, err := apply(t, res, env(`{"op":"add","path":"serial","value":"S1"}`))
		if err != nil || acme(got)["serial"] != "S1" {
			t.Fatalf("setting an unassigned immutable attribute: %v, %v", got.Resource, err)
		}
		set := got.Resource
		if _, err := apply(t, set, env(`{"op":"replace","path":"serial","value":"S1"}`)); err != nil {
			t.Errorf("same value: %v", err)
		}
		for _, body := range []string{
			env(`{"op":"replace","path":"serial","value":"S2"}`),
			env(`{"op":"remove","path":"serial"}`),
			env(`{"op":"remove","path":"` + acmeURN + `"}`),
		} {
			_, err := apply(t, set, body)
			var pe *Error
			if !errors.As(err, &pe) || pe.ScimType != Mutability || !strings.Contains(pe.Detail, `attribute "serial" is immutable`) {
				t.Errorf("%s: got %v", body, err)
			}
		}
	})
	t.Run("simple multi-valued", func(t *testing.T) {
		res := map[string]any{"id": "u", "userName": "u", acmeURN: map[string]any{"nicknames": []string{"a", "b"}}}
		got, err := apply(t, res, env(
			`{"op":"add","path":"nicknames","value":["b","c"]}`,
			`{"op":"add","path":"nicknames","value":"d"}`,
			`{"op":"remove","path":"nicknames","value":["a"]}`))
		if err != nil {
			t.Fatal(err)
		}
		if want := []any{"b", "c", "d"}; !reflect.DeepEqual(acme(got)["nicknames"], want) {
			t.Errorf("nicknames = %v, want %v", acme(got)["nicknames"], want)
		}
		_, err = apply(t, res, env(`{"op":"remove","path":"nicknames[value eq \"a\"]"}`))
		var pe *Error
		if !errors.As(err, &pe) || pe.ScimType != InvalidPath {
			t.Errorf("filter on a simple multi-valued attribute: got %v", err)
		}
	})
	t.Run("sub-attribute types in new elements", func(t *testing.T) {
		got, err := apply(t, map[string]any{}, env(`{"op":"replace","path":"badges[code eq \"A\" and level eq 2 and active eq \"True\"].score","value":1.5}`))
		if err != nil {
			t.Fatal(err)
		}
		want := []any{map[string]any{"code": "A", "level": json.Number("2"), "active": true, "score": json.Number("1.5")}}
		if !reflect.DeepEqual(acme(got)["badges"], want) {
			t.Errorf("badges = %#v", acme(got)["badges"])
		}
	})
}

func TestLiteralsAndMisc(t *testing.T) {
	if e := (&Error{ScimType: NoTarget, Detail: "d"}); e.Error() != "noTarget: d" {
		t.Errorf("Error() = %q", e.Error())
	}
	if !(MemberChange{}).IsZero() || (MemberChange{RemoveAll: true}).IsZero() {
		t.Error("IsZero")
	}
	for raw, want := range map[string]string{`{}`: "an object", `[1]`: "an array", `"x"`: "a string",
		`true`: "a boolean", `null`: "null", `-1`: "a number", ``: "nothing"} {
		if got := jsonKind(json.RawMessage(raw)); got != want {
			t.Errorf("jsonKind(%s) = %q, want %q", raw, got, want)
		}
	}
	for _, tt := range []struct {
		a, b any
		want bool
	}{
		{json.Number("1"), float64(1), true},
		{json.Number("1.0"), 1, true},
		{int64(9007199254740993), json.Number("9007199254740993"), true},
		{int64(9007199254740993), json.Number("9007199254740992"), false},
		{json.Number("1"), "1", false},
		{nil, []any{}, true},
		{map[string]any{}, nil, true},
		{map[string]any{"a": nil}, map[string]any{}, true},
		{map[string]any{"a": "x"}, map[string]any{"a": "x", "b": "y"}, false},
		{[]string{"a"}, []any{"a"}, true},
		{[]map[string]any{{"a": "x"}}, []any{map[string]any{"a": "x"}}, true},
		{[]any{"a"}, []any{"b"}, false},
		{"a", true, false},
	} {
		if got := equal(tt.a, tt.b); got != tt.want {
			t.Errorf("equal(%#v, %#v) = %v", tt.a, tt.b, got)
		}
	}
}

// TestCodeBuiltResource checks resources built in code rather than decoded
// from JSON: []map[string]any and []string lists are copied, not shared.
func TestCodeBuiltResource(t *testing.T) {
	emails := []map[string]any{{"value": "a@x", "type": "work"}}
	schemas := []string{schema.UserURN}
	res := map[string]any{"id": "u", "userName": "u", "emails": emails, "schemas": schemas}
	ops := []Operation{
		{Op: "replace", Path: `emails[type eq "work"].value`, Value: json.RawMessage(`"b@x"`)},
		{Op: "add", Path: "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", Value: json.RawMessage(`"D"`)},
	}
	got, err := Apply(registry(t), res, ops, Options{ResourceType: "User"})
	if err != nil {
		t.Fatal(err)
	}
	if emails[0]["value"] != "a@x" || len(schemas) != 1 || schemas[0] != schema.UserURN {
		t.Fatalf("input modified: %v %v", emails, schemas)
	}
	if want := []string{schema.UserURN, entURN}; !reflect.DeepEqual(got.Resource["schemas"], want) {
		t.Errorf("schemas = %#v, want %#v", got.Resource["schemas"], want)
	}
	if want := []any{map[string]any{"value": "b@x", "type": "work"}}; !reflect.DeepEqual(got.Resource["emails"], want) {
		t.Errorf("emails = %#v", got.Resource["emails"])
	}
}
