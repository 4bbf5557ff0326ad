package patch

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseRequest(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []Operation
	}{
		{"standard",
			`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":false}]}`,
			[]Operation{{Op: "replace", Path: "active", Value: []byte("false")}}},
		{"member names in any case",
			`{"SCHEMAS":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"operations":[{"Op":"add","PATH":"nickName","Value":"Babs"}]}`,
			[]Operation{{Op: "add", Path: "nickName", Value: []byte(`"Babs"`)}}},
		{"op names in any case",
			`{"Operations":[{"op":"Replace","path":"a","value":1},{"op":"ADD","path":"b","value":2},{"op":"Remove","path":"c"}]}`,
			[]Operation{
				{Op: "replace", Path: "a", Value: []byte("1")},
				{Op: "add", Path: "b", Value: []byte("2")},
				{Op: "remove", Path: "c"},
			}},
		{"schemas missing (Entra)", `{"Operations":[{"op":"Remove","path":"members"}]}`,
			[]Operation{{Op: "remove", Path: "members"}}},
		{"schemas null", `{"schemas":null,"Operations":[{"op":"remove","path":"x"}]}`,
			[]Operation{{Op: "remove", Path: "x"}}},
		{"PatchOp URN in any case among others",
			`{"schemas":["urn:other","URN:IETF:PARAMS:SCIM:API:MESSAGES:2.0:PATCHOP"],"Operations":[]}`, []Operation{}},
		{"empty Operations is a no-op", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[]}`, []Operation{}},
		{"null Operations is a no-op", `{"Operations":null}`, []Operation{}},
		{"no path, object value", `{"Operations":[{"op":"replace","value":{"active":false}}]}`,
			[]Operation{{Op: "replace", Value: []byte(`{"active":false}`)}}},
		{"null path is no path", `{"Operations":[{"op":"replace","path":null,"value":{}}]}`,
			[]Operation{{Op: "replace", Value: []byte(`{}`)}}},
		{"null value kept", `{"Operations":[{"op":"replace","path":"nickName","value":null}]}`,
			[]Operation{{Op: "replace", Path: "nickName", Value: []byte("null")}}},
		{"unknown members ignored", `{"Operations":[{"op":"remove","path":"x","comment":"hi"}],"extra":1}`,
			[]Operation{{Op: "remove", Path: "x"}}},
		{"whitespace around body", " \n{\"Operations\":[]}\n", []Operation{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRequest([]byte(tt.body), 10)
			if err != nil {
				t.Fatalf("ParseRequest: %v", err)
			}
			if len(got) == 0 && len(tt.want) == 0 {
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseRequestErrors(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		maxOps   int
		scimType string
		detail   string // exact
	}{
		{"empty body", ``, 0, InvalidSyntax, "request body must be a JSON object"},
		{"array body", `[]`, 0, InvalidSyntax, "request body must be a JSON object"},
		{"bad JSON", `{"Operations":[}`, 0, InvalidSyntax, "request body is not valid JSON: invalid character '}' looking for beginning of value"},
		{"trailing data", `{"Operations":[]} {}`, 0, InvalidSyntax, "request body is not valid JSON: invalid character '{' after top-level value"},
		{"wrong schema", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"Operations":[]}`, 0, InvalidSyntax,
			`"schemas" must contain "urn:ietf:params:scim:api:messages:2.0:PatchOp"`},
		{"schemas not a list", `{"schemas":"urn:ietf:params:scim:api:messages:2.0:PatchOp","Operations":[]}`, 0, InvalidSyntax,
			`"schemas" must be an array of strings`},
		{"no Operations", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"]}`, 0, InvalidSyntax,
			`request body has no "Operations" member`},
		{"Operations not a list", `{"Operations":{"op":"add"}}`, 0, InvalidSyntax, `"Operations" must be an array of operations`},
		{"duplicate member in another case", `{"Operations":[],"operations":[]}`, 0, InvalidSyntax, ""},
		{"operation not an object", `{"Operations":["add"]}`, 0, InvalidSyntax, "operation 1 must be a JSON object"},
		{"op missing", `{"Operations":[{"op":"add","path":"a","value":1},{"path":"a"}]}`, 0, InvalidSyntax,
			`operation 2: "op" is required (add, replace or remove)`},
		{"op not a string", `{"Operations":[{"op":1}]}`, 0, InvalidSyntax, `operation 1: "op" must be a string (add, replace or remove)`},
		{"unknown op", `{"Operations":[{"op":"move","path":"a"}]}`, 0, InvalidSyntax, `operation 1: unknown op "move"; expected add, replace or remove`},
		{"duplicate op member", `{"Operations":[{"op":"add","OP":"remove"}]}`, 0, InvalidSyntax, ""},
		{"path not a string", `{"Operations":[{"op":"remove","path":5}]}`, 0, InvalidPath, `operation 1 (remove): "path" must be a string`},
		{"too many", `{"Operations":[{"op":"remove","path":"a"},{"op":"remove","path":"b"},{"op":"remove","path":"c"}]}`, 2, TooMany,
			"request has 3 operations; the limit is 2"},
		{"default limit", `{"Operations":[` + strings.Repeat(`{"op":"remove","path":"a"},`, DefaultMaxOperations) + `{"op":"remove","path":"a"}]}`, 0, TooMany,
			"request has 1001 operations; the limit is 1000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ops, err := ParseRequest([]byte(tt.body), tt.maxOps)
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("ParseRequest = %+v, %v; want *Error", ops, err)
			}
			if pe.ScimType != tt.scimType {
				t.Errorf("scimType = %q, want %q (%s)", pe.ScimType, tt.scimType, pe.Detail)
			}
			if tt.detail != "" && pe.Detail != tt.detail {
				t.Errorf("detail\n got: %s\nwant: %s", pe.Detail, tt.detail)
			}
		})
	}
}
