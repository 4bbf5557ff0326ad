package patch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/modules/scim/internal/schema"
)

const entURN = schema.EnterpriseUserURN

// baseUser is a User with the enterprise extension, as the server would
// pass it to Apply.
const baseUser = `{
	"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
	"id": "2819c223-7f76-453a-919d-413861904646",
	"externalId": "bjensen",
	"userName": "bjensen@example.com",
	"name": {"givenName": "Barbara", "familyName": "Jensen", "formatted": "Ms. Barbara J Jensen III"},
	"displayName": "Babs Jensen",
	"active": true,
	"emails": [
		{"value": "bjensen@example.com", "type": "work", "primary": true},
		{"value": "babs@jensen.org", "type": "home"}
	],
	"groups": [{"value": "e9e30dba", "display": "Tour Guides"}],
	"meta": {"resourceType": "User", "created": "2010-01-23T04:56:22Z", "lastModified": "2011-05-13T04:42:34Z"},
	"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
		"employeeNumber": "701984",
		"department": "Tour Operations",
		"manager": {"value": "26118915", "displayName": "John Smith"}
	}
}`

// plainUser has no emails and no enterprise extension.
const plainUser = `{
	"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
	"id": "u-plain",
	"userName": "plain@example.com",
	"active": true
}`

// baseGroup holds its members (non-delta mode).
const baseGroup = `{
	"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
	"id": "g1",
	"displayName": "Tour Guides",
	"members": [{"value": "u1", "type": "User"}, {"value": "u2"}]
}`

// deltaGroup is a Group as loaded for MembersAsDelta: without members.
const deltaGroup = `{
	"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
	"id": "g1",
	"displayName": "Tour Guides"
}`

// env wraps operations in a PatchOp envelope.
func env(ops ...string) string {
	return `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[` + strings.Join(ops, ",") + `]}`
}

func decode(t *testing.T, s string) map[string]any {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
	return m
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func registry(t *testing.T) *schema.Registry {
	t.Helper()
	reg, err := schema.NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

type applyCase struct {
	name  string
	group bool   // Group instead of User
	delta bool   // MembersAsDelta
	res   string // resource JSON; "" means baseUser, baseGroup or deltaGroup
	body  string // request body

	want    string        // JSON object: expected values of the top-level keys it names
	absent  []string      // top-level keys that must be absent
	changed []string      // expected Result.Changed; nil means not checked
	members *MemberChange // expected Result.Members; nil means zero

	err    string // expected ScimType; "" means success
	detail string // expected substring of the error detail
}

func (tc applyCase) run(t *testing.T, reg *schema.Registry) {
	t.Helper()
	opts := Options{ResourceType: "User", ResourceID: "2819c223-7f76-453a-919d-413861904646", MembersAsDelta: tc.delta}
	src := cmpOr(tc.res, baseUser)
	if tc.group {
		opts.ResourceType, opts.ResourceID = "Group", "g1"
		src = cmpOr(tc.res, baseGroup)
		if tc.delta {
			src = cmpOr(tc.res, deltaGroup)
		}
	}
	res := decode(t, src)
	before := mustJSON(t, res)

	ops, err := ParseRequest([]byte(tc.body), 0)
	var got Result
	if err == nil {
		got, err = Apply(reg, res, ops, opts)
	}

	// Whatever happened, the input is untouched.
	if after := mustJSON(t, res); !bytes.Equal(before, after) {
		t.Errorf("input modified:\nbefore %s\nafter  %s", before, after)
	}
	if tc.err != "" {
		var pe *Error
		if !errors.As(err, &pe) {
			t.Fatalf("got %v (resource %s), want a %s error", err, mustJSON(t, got.Resource), tc.err)
		}
		if pe.ScimType != tc.err || !strings.Contains(pe.Detail, tc.detail) {
			t.Fatalf("got %s: %s\nwant %s: ...%s...", pe.ScimType, pe.Detail, tc.err, tc.detail)
		}
		if got.Resource != nil {
			t.Errorf("failed Apply returned a resource")
		}
		return
	}
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	if tc.want != "" {
		for k, w := range decode(t, tc.want) {
			if g := got.Resource[k]; !reflect.DeepEqual(g, w) {
				t.Errorf("%s\n got: %s\nwant: %s", k, mustJSON(t, g), mustJSON(t, w))
			}
		}
	}
	for _, k := range tc.absent {
		if v, ok := got.Resource[k]; ok {
			t.Errorf("%s = %s, want absent", k, mustJSON(t, v))
		}
	}
	if tc.changed != nil && !slices.Equal(got.Changed, tc.changed) {
		t.Errorf("Changed = %q, want %q", got.Changed, tc.changed)
	}
	var wantMembers MemberChange
	if tc.members != nil {
		wantMembers = *tc.members
	}
	if !reflect.DeepEqual(got.Members, wantMembers) {
		t.Errorf("Members\n got: %+v\nwant: %+v", got.Members, wantMembers)
	}
	if t.Failed() {
		t.Logf("resource: %s", mustJSON(t, got.Resource))
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func runCases(t *testing.T, cases []applyCase) {
	reg := registry(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, reg) })
	}
}

var none = []string{}

// TestEntra covers the request bodies Microsoft documents for Entra ID
// ("Tutorial: Develop and plan provisioning for a SCIM endpoint" and "Known
// issues and resolutions with SCIM 2.0 protocol compliance").
func TestEntra(t *testing.T) {
	runCases(t, []applyCase{
		{name: "replace work email and family name",
			body: `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"emails[type eq \"work\"].value","value":"updatedEmail@microsoft.com"},{"op":"Replace","path":"name.familyName","value":"updatedFamilyName"}]}`,
			want: `{
				"emails": [{"value": "updatedEmail@microsoft.com", "type": "work", "primary": true}, {"value": "babs@jensen.org", "type": "home"}],
				"name": {"givenName": "Barbara", "familyName": "updatedFamilyName", "formatted": "Ms. Barbara J Jensen III"}
			}`,
			changed: []string{"emails", "name"}},
		{name: "replace work email of a user without one creates it",
			res:     plainUser,
			body:    `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"emails[type eq \"work\"].value","value":"updatedEmail@microsoft.com"}]}`,
			want:    `{"emails": [{"type": "work", "value": "updatedEmail@microsoft.com"}]}`,
			changed: []string{"emails"}},
		{name: "add work email of a user without one creates it",
			res:  plainUser,
			body: env(`{"op":"Add","path":"emails[type eq \"work\"].value","value":"a@b.com"}`),
			want: `{"emails": [{"type": "work", "value": "a@b.com"}]}`},
		{name: "disable with string False",
			body:    `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"False"}]}`,
			want:    `{"active": false}`,
			changed: []string{"active"}},
		{name: "no-path replace with string False",
			body:    `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","value":{"active":"False"}}]}`,
			want:    `{"active": false}`,
			changed: []string{"active"}},
		{name: "aadOptscim062020 replace active false",
			body: `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":false}]}`,
			want: `{"active": false}`},
		{name: "aadOptscim062020 add manager as plain id",
			res:     plainUser,
			body:    `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":"2819c223"}]}`,
			want:    `{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "2819c223"}}, "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]}`,
			changed: []string{entURN + ":manager"}},
		{name: "manager as plain id replaces the whole manager",
			body: env(`{"op":"Replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":"2819c223"}`),
			want: `{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "701984", "department": "Tour Operations", "manager": {"value": "2819c223"}}}`},
		{name: "manager as one-element list",
			body: env(`{"op":"Add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":[{"value":"2819c223"}]}`),
			want: `{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "701984", "department": "Tour Operations", "manager": {"value": "2819c223"}}}`},
		{name: "manager as plain id in a path-less value",
			res:  plainUser,
			body: env(`{"op":"replace","value":{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager":"m1"}}`),
			want: `{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "m1"}}}`},
		{name: "manager empty string unassigns it",
			body: env(`{"op":"Replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":""}`),
			want: `{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "701984", "department": "Tour Operations"}}`},
		{name: "single value wrapped in [{value}] (without the flag)",
			body:    env(`{"op":"Add","path":"nickName","value":[{"value":"Babs"}]}`),
			want:    `{"nickName": "Babs"}`,
			changed: []string{"nickName"}},
		{name: "aadOptscim062020 path-less replace of several attributes",
			body: env(`{"op":"replace","value":{"displayName":"Pvlo","emails[type eq \"work\"].value":"pvlo@example.com","name.givenName":"Pvlo","name.familyName":"Tfhdbjr","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber":"Eqpj","active":true}}`),
			want: `{
				"displayName": "Pvlo",
				"emails": [{"value": "pvlo@example.com", "type": "work", "primary": true}, {"value": "babs@jensen.org", "type": "home"}],
				"name": {"givenName": "Pvlo", "familyName": "Tfhdbjr", "formatted": "Ms. Barbara J Jensen III"},
				"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "Eqpj", "department": "Tour Operations", "manager": {"value": "26118915", "displayName": "John Smith"}}
			}`,
			changed: []string{"displayName", "emails", "name", entURN + ":employeeNumber"}},
		{name: "remove work email value drops the email",
			body: env(`{"op":"Remove","path":"emails[type eq \"work\"].value"}`),
			want: `{"emails": [{"value": "babs@jensen.org", "type": "home"}]}`},
		{name: "add member", group: true, delta: true,
			body:    `{"Operations":[{"op":"Add","path":"members","value":[{"$ref":null,"value":"f648f8d5ea4e4cd38e9c"}]}]}`,
			members: &MemberChange{Add: []Member{{Value: "f648f8d5ea4e4cd38e9c"}}},
			changed: []string{"members"}},
		{name: "remove member with a value list removes only it", group: true, delta: true,
			body:    `{"Operations":[{"op":"Remove","path":"members","value":[{"$ref":null,"value":"f648f8d5ea4e4cd38e9c"}]}]}`,
			members: &MemberChange{Remove: []string{"f648f8d5ea4e4cd38e9c"}},
			changed: []string{"members"}},
		{name: "aadOptscim062020 remove member by filter", group: true, delta: true,
			body:    env(`{"op":"remove","path":"members[value eq \"7f4bc1a3-285e-48ae-8202-5accb43efb0e\"]"}`),
			members: &MemberChange{Remove: []string{"7f4bc1a3-285e-48ae-8202-5accb43efb0e"}}},
		{name: "add member without delta", group: true,
			body:    `{"Operations":[{"op":"Add","path":"members","value":[{"$ref":null,"value":"f648f8d5ea4e4cd38e9c"}]}]}`,
			want:    `{"members": [{"value": "u1", "type": "User"}, {"value": "u2"}, {"value": "f648f8d5ea4e4cd38e9c"}]}`,
			changed: []string{"members"}},
		{name: "remove member with a value list without delta", group: true,
			body:    `{"Operations":[{"op":"Remove","path":"members","value":[{"$ref":null,"value":"u1"}]}]}`,
			want:    `{"members": [{"value": "u2"}]}`,
			changed: []string{"members"}},
		{name: "replace group displayName", group: true, delta: true,
			body:    env(`{"op":"Replace","path":"displayName","value":"1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"}`),
			want:    `{"displayName": "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"}`,
			changed: []string{"displayName"}},
	})
}

// TestOkta covers the request bodies Okta documents for its SCIM 2.0
// integrations.
func TestOkta(t *testing.T) {
	runCases(t, []applyCase{
		{name: "deactivate",
			body:    `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}`,
			want:    `{"active": false}`,
			changed: []string{"active"}},
		{name: "group push rename repeats the id", group: true, delta: true,
			body:    env(`{"op":"replace","value":{"id":"g1","displayName":"New Name"}}`),
			want:    `{"id": "g1", "displayName": "New Name"}`,
			changed: []string{"displayName"}},
		{name: "group push with another id", group: true, delta: true,
			body: env(`{"op":"replace","value":{"id":"g2","displayName":"New Name"}}`),
			err:  Mutability, detail: `operation 1 (replace): attribute "id" is readOnly`},
		{name: "add member with display", group: true, delta: true,
			body:    env(`{"op":"add","path":"members","value":[{"value":"u1","display":"a@b.com"}]}`),
			members: &MemberChange{Add: []Member{{Value: "u1", Display: "a@b.com"}}}},
		{name: "remove member by filter", group: true, delta: true,
			body:    env(`{"op":"remove","path":"members[value eq \"u1\"]"}`),
			members: &MemberChange{Remove: []string{"u1"}}},
		{name: "add member with display without delta stores no display", group: true,
			body: env(`{"op":"add","path":"members","value":[{"value":"u3","display":"a@b.com"}]}`),
			want: `{"members": [{"value": "u1", "type": "User"}, {"value": "u2"}, {"value": "u3"}]}`},
		{name: "remove member by filter without delta", group: true,
			body: env(`{"op":"remove","path":"members[value eq \"u1\"]"}`),
			want: `{"members": [{"value": "u2"}]}`},
	})
}

func TestAddReplaceSingleValued(t *testing.T) {
	runCases(t, []applyCase{
		{name: "add to a single-valued attribute replaces it",
			body: env(`{"op":"add","path":"displayName","value":"Barbara"}`),
			want: `{"displayName": "Barbara"}`, changed: []string{"displayName"}},
		{name: "replace with the same value changes nothing",
			body: env(`{"op":"replace","path":"displayName","value":"Babs Jensen"}`),
			want: `{"displayName": "Babs Jensen"}`, changed: none},
		{name: "replace with null unassigns",
			body:   env(`{"op":"replace","path":"displayName","value":null}`),
			absent: []string{"displayName"}, changed: []string{"displayName"}},
		{name: "path is case-insensitive",
			body: env(`{"op":"replace","path":"DISPLAYNAME","value":"B"}`),
			want: `{"displayName": "B"}`, absent: []string{"DISPLAYNAME"}},
		{name: "URN-qualified core attribute",
			body: env(`{"op":"replace","path":"urn:ietf:params:scim:schemas:core:2.0:User:displayName","value":"B"}`),
			want: `{"displayName": "B"}`},
		{name: "password (writeOnly) is set",
			body: env(`{"op":"replace","path":"password","value":"t1meMa$heen"}`),
			want: `{"password": "t1meMa$heen"}`, changed: []string{"password"}},
		{name: "externalId",
			body: env(`{"op":"replace","path":"externalId","value":"x1"}`),
			want: `{"externalId": "x1"}`},
		{name: "add complex merges sub-attributes",
			body: env(`{"op":"add","path":"name","value":{"middleName":"J"}}`),
			want: `{"name": {"givenName": "Barbara", "familyName": "Jensen", "formatted": "Ms. Barbara J Jensen III", "middleName": "J"}}`},
		{name: "replace complex merges sub-attributes",
			body: env(`{"op":"replace","path":"name","value":{"givenName":"Babs","FORMATTED":null}}`),
			want: `{"name": {"givenName": "Babs", "familyName": "Jensen"}}`},
		{name: "replace complex with null unassigns it",
			body:   env(`{"op":"replace","path":"name","value":null}`),
			absent: []string{"name"}},
		{name: "replace complex with {} changes nothing",
			body: env(`{"op":"replace","path":"name","value":{}}`), changed: none},
		{name: "add sub-attribute",
			body: env(`{"op":"add","path":"name.honorificPrefix","value":"Ms."}`),
			want: `{"name": {"givenName": "Barbara", "familyName": "Jensen", "formatted": "Ms. Barbara J Jensen III", "honorificPrefix": "Ms."}}`},
		{name: "add sub-attribute of an unassigned complex attribute",
			res:  plainUser,
			body: env(`{"op":"add","path":"name.givenName","value":"P"}`),
			want: `{"name": {"givenName": "P"}}`},
		{name: "replace sub-attribute with null",
			body: env(`{"op":"replace","path":"name.formatted","value":null}`),
			want: `{"name": {"givenName": "Barbara", "familyName": "Jensen"}}`},
		{name: "extension attribute",
			body:    env(`{"op":"replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department","value":"R&D"}`),
			want:    `{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "701984", "department": "R&D", "manager": {"value": "26118915", "displayName": "John Smith"}}}`,
			changed: []string{entURN + ":department"}},
		{name: "extension attribute without URN",
			body: env(`{"op":"replace","path":"department","value":"R&D"}`),
			want: `{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "701984", "department": "R&D", "manager": {"value": "26118915", "displayName": "John Smith"}}}`},
		{name: "extension attribute, URN in another case",
			body: env(`{"op":"replace","path":"URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER:Department","value":"R&D"}`),
			want: `{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "701984", "department": "R&D", "manager": {"value": "26118915", "displayName": "John Smith"}}}`},
		{name: "extension attribute on a user without the extension adds it to schemas",
			res:  plainUser,
			body: env(`{"op":"add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department","value":"R&D"}`),
			want: `{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D"}, "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]}`},
		{name: "manager sub-attribute",
			body: env(`{"op":"replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value","value":"m2"}`),
			want: `{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "701984", "department": "Tour Operations", "manager": {"value": "m2", "displayName": "John Smith"}}}`},
		{name: "manager object merges and ignores readOnly displayName",
			body: env(`{"op":"replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":{"value":"m2","displayName":"Forged"}}`),
			want: `{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "701984", "department": "Tour Operations", "manager": {"value": "m2", "displayName": "John Smith"}}}`},
		{name: "whole extension by URN path",
			res:  plainUser,
			body: env(`{"op":"add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User","value":{"department":"R&D","manager":"m1"}}`),
			want: `{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D", "manager": {"value": "m1"}}}`},
	})
}

func TestPathless(t *testing.T) {
	runCases(t, []applyCase{
		{name: "keys are paths, matched case-insensitively",
			body: env(`{"op":"replace","value":{"DisplayName":"B","NAME":{"GIVENNAME":"Bee"},"name.familyName":"J"}}`),
			want: `{"displayName": "B", "name": {"givenName": "Bee", "familyName": "J", "formatted": "Ms. Barbara J Jensen III"}}`},
		{name: "extension object keyed by URN",
			res:     plainUser,
			body:    env(`{"op":"add","value":{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"R&D","manager":{"value":"m1"}}}}`),
			want:    `{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D", "manager": {"value": "m1"}}}`,
			changed: []string{entURN + ":department", entURN + ":manager"}},
		{name: "URN-qualified extension attribute key",
			body: env(`{"op":"replace","value":{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department":"R&D"}}`),
			want: `{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "701984", "department": "R&D", "manager": {"value": "26118915", "displayName": "John Smith"}}}`},
		{name: "schemas, meta and the own id are ignored",
			body:    env(`{"op":"replace","value":{"schemas":["x"],"meta":{"version":"W/1"},"id":"2819c223-7f76-453a-919d-413861904646","nickName":"B"}}`),
			want:    `{"nickName": "B", "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"], "meta": {"resourceType": "User", "created": "2010-01-23T04:56:22Z", "lastModified": "2011-05-13T04:42:34Z"}}`,
			changed: []string{"nickName"}},
		{name: "add appends to multi-valued attributes",
			body: env(`{"op":"add","value":{"emails":[{"value":"x@example.com","type":"other"}]}}`),
			want: `{"emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}, {"value": "babs@jensen.org", "type": "home"}, {"value": "x@example.com", "type": "other"}]}`},
		{name: "replace replaces multi-valued attributes",
			body: env(`{"op":"replace","value":{"emails":[{"value":"x@example.com","type":"other"}]}}`),
			want: `{"emails": [{"value": "x@example.com", "type": "other"}]}`},
		{name: "keys apply in document order",
			body: env(`{"op":"replace","value":{"name.givenName":"A","name":{"givenName":"B"}}}`),
			want: `{"name": {"givenName": "B", "familyName": "Jensen", "formatted": "Ms. Barbara J Jensen III"}}`},
		{name: "another id", body: env(`{"op":"replace","value":{"id":"other"}}`),
			err: Mutability, detail: `attribute "id" is readOnly`},
		{name: "readOnly key", body: env(`{"op":"add","value":{"groups":[{"value":"g"}]}}`),
			err: Mutability, detail: `attribute "groups" is readOnly`},
		// Unknown attributes in a value are data the schema lacks, as in a POST body.
		{name: "unknown key", body: env(`{"op":"replace","value":{"nickname":"x","shoeSize":42}}`),
			err: InvalidValue, detail: `unknown attribute "shoeSize"`},
		{name: "unknown sub-attribute key", body: env(`{"op":"replace","value":{"name.nick":"x"}}`),
			err: InvalidValue, detail: `unknown attribute "name.nick"`},
		{name: "unknown key in an extension object", body: env(`{"op":"replace","value":{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"shoeSize":1}}}`),
			err: InvalidValue, detail: `unknown attribute "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:shoeSize"`},
		{name: "undeclared extension object", body: env(`{"op":"add","value":{"urn:ietf:params:scim:schemas:extension:acme:2.0:User":{"level":"x"}}}`),
			err: InvalidValue, detail: `unknown attribute "urn:ietf:params:scim:schemas:extension:acme:2.0:User"`},
		{name: "bad key", body: env(`{"op":"replace","value":{"emails[type eq]":"x"}}`),
			err: InvalidPath, detail: `attribute "emails[type eq]" in value: invalid path`},
		{name: "value not an object", body: env(`{"op":"replace","value":"x"}`),
			err: InvalidValue, detail: "operation 1 (replace): without a path, value must be an object of attributes, got a string"},
		{name: "no value", body: env(`{"op":"add"}`),
			err: InvalidValue, detail: "operation 1 (add): value is required for add"},
		{name: "extension object not an object", body: env(`{"op":"replace","value":{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":"x"}}`),
			err: InvalidValue, detail: "must be an object of the attributes of that schema"},
		{name: "extension object with a key of another schema", body: env(`{"op":"replace","value":{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"urn:ietf:params:scim:schemas:core:2.0:User:nickName":"x"}}}`),
			err: InvalidPath, detail: "is not in schema"},
	})
}

func TestMultiValued(t *testing.T) {
	const work = `{"value": "bjensen@example.com", "type": "work", "primary": true}`
	const home = `{"value": "babs@jensen.org", "type": "home"}`
	runCases(t, []applyCase{
		{name: "add a single value",
			body: env(`{"op":"add","path":"emails","value":{"value":"x@example.com"}}`),
			want: `{"emails": [` + work + `,` + home + `, {"value": "x@example.com"}]}`},
		{name: "add skips values already present",
			body: env(`{"op":"add","path":"emails","value":[{"value":"babs@jensen.org","type":"home"},{"value":"y@example.com"},{"value":"y@example.com"}]}`),
			want: `{"emails": [` + work + `,` + home + `, {"value": "y@example.com"}]}`},
		{name: "add an existing value is no change",
			body:    env(`{"op":"add","path":"emails","value":[{"value":"babs@jensen.org","type":"home"}]}`),
			changed: none},
		{name: "add a primary value takes primary from the others",
			body: env(`{"op":"add","path":"emails","value":[{"value":"x@example.com","primary":"True"}]}`),
			want: `{"emails": [{"value": "bjensen@example.com", "type": "work", "primary": false},` + home + `, {"value": "x@example.com", "primary": true}]}`},
		{name: "two primaries in one op: the last wins",
			res:  plainUser,
			body: env(`{"op":"add","path":"emails","value":[{"value":"a@x","primary":true},{"value":"b@x","primary":true}]}`),
			want: `{"emails": [{"value": "a@x", "primary": false}, {"value": "b@x", "primary": true}]}`},
		{name: "replace the whole list",
			body: env(`{"op":"replace","path":"emails","value":[{"value":"x@example.com","type":"work"}]}`),
			want: `{"emails": [{"value": "x@example.com", "type": "work"}]}`},
		{name: "replace with an empty list unassigns",
			body: env(`{"op":"replace","path":"emails","value":[]}`), absent: []string{"emails"}},
		{name: "replace filtered sub-attribute",
			body: env(`{"op":"replace","path":"emails[type eq \"home\"].value","value":"new@jensen.org"}`),
			want: `{"emails": [` + work + `, {"value": "new@jensen.org", "type": "home"}]}`},
		{name: "filter is case-insensitive for caseExact=false",
			body: env(`{"op":"replace","path":"Emails[Type EQ \"HOME\"].Value","value":"new@jensen.org"}`),
			want: `{"emails": [` + work + `, {"value": "new@jensen.org", "type": "home"}]}`},
		{name: "replace filtered element",
			body: env(`{"op":"replace","path":"emails[type eq \"home\"]","value":{"value":"new@jensen.org","type":"home","display":"N"}}`),
			want: `{"emails": [` + work + `, {"value": "new@jensen.org", "type": "home", "display": "N"}]}`},
		{name: "add to filtered element merges",
			body: env(`{"op":"add","path":"emails[type eq \"home\"]","value":{"display":"N"}}`),
			want: `{"emails": [` + work + `, {"value": "babs@jensen.org", "type": "home", "display": "N"}]}`},
		{name: "replace filtered element without match builds one from the filter",
			body: env(`{"op":"replace","path":"emails[type eq \"other\"]","value":{"value":"o@x"}}`),
			want: `{"emails": [` + work + `,` + home + `, {"type": "other", "value": "o@x"}]}`},
		{name: "filter with and of eq builds an element",
			res:  plainUser,
			body: env(`{"op":"replace","path":"emails[type eq \"work\" and primary eq true].value","value":"w@x"}`),
			want: `{"emails": [{"type": "work", "primary": true, "value": "w@x"}]}`},
		{name: "filtered primary: last match wins",
			body: env(`{"op":"replace","path":"emails[value co \"@\"].primary","value":true}`),
			want: `{"emails": [{"value": "bjensen@example.com", "type": "work", "primary": false}, {"value": "babs@jensen.org", "type": "home", "primary": true}]}`},
		{name: "filtered primary moves primary",
			body: env(`{"op":"replace","path":"emails[type eq \"home\"].primary","value":"true"}`),
			want: `{"emails": [{"value": "bjensen@example.com", "type": "work", "primary": false}, {"value": "babs@jensen.org", "type": "home", "primary": true}]}`},
		{name: "filter on a boolean written True",
			body: env(`{"op":"replace","path":"emails[primary eq True].display","value":"main"}`),
			want: `{"emails": [{"value": "bjensen@example.com", "type": "work", "primary": true, "display": "main"},` + home + `]}`},
		{name: "sub-attribute without filter applies to every element",
			body: env(`{"op":"replace","path":"emails.display","value":"d"}`),
			want: `{"emails": [{"value": "bjensen@example.com", "type": "work", "primary": true, "display": "d"}, {"value": "babs@jensen.org", "type": "home", "display": "d"}]}`},
		{name: "or filter without match is noTarget",
			res:  plainUser,
			body: env(`{"op":"replace","path":"emails[type eq \"work\" or type eq \"home\"].value","value":"x@y"}`),
			err:  NoTarget, detail: `operation 1 (replace): "emails[type eq \"work\" or type eq \"home\"].value" matches no value of "emails"`},
		{name: "ne filter without match is noTarget",
			res:  plainUser,
			body: env(`{"op":"add","path":"emails[type ne \"work\"].value","value":"x@y"}`),
			err:  NoTarget},
		{name: "contradictory filter without match is noTarget",
			res:  plainUser,
			body: env(`{"op":"add","path":"emails[type eq \"work\" and type eq \"home\"].value","value":"x@y"}`),
			err:  NoTarget},
		{name: "remove filtered elements",
			body: env(`{"op":"remove","path":"emails[type eq \"home\"]"}`),
			want: `{"emails": [` + work + `]}`, changed: []string{"emails"}},
		{name: "remove with a filter matching nothing is no error",
			body: env(`{"op":"remove","path":"emails[type eq \"other\"]"}`),
			want: `{"emails": [` + work + `,` + home + `]}`, changed: none},
		{name: "remove the last element unassigns the attribute",
			body: env(`{"op":"remove","path":"emails[value ew \".com\" or value ew \".org\"]"}`), absent: []string{"emails"}},
		{name: "remove filtered sub-attribute",
			body: env(`{"op":"remove","path":"emails[type eq \"work\"].primary"}`),
			want: `{"emails": [{"value": "bjensen@example.com", "type": "work"},` + home + `]}`},
		{name: "remove the whole attribute",
			body: env(`{"op":"remove","path":"emails"}`), absent: []string{"emails"}, changed: []string{"emails"}},
		{name: "remove listed values only",
			body: env(`{"op":"remove","path":"emails","value":[{"value":"babs@jensen.org","type":"home"}]}`),
			want: `{"emails": [` + work + `]}`},
		{name: "remove listed value matched on the sub-attributes given",
			body: env(`{"op":"remove","path":"emails","value":{"type":"work"}}`),
			want: `{"emails": [` + home + `]}`},
		{name: "remove with an empty value list removes nothing",
			body: env(`{"op":"remove","path":"emails","value":[]}`), changed: none},
		{name: "remove a listed value without its value", group: true,
			body: env(`{"op":"remove","path":"members","value":[{"value":"u1"},{"display":"b"}]}`),
			err:  InvalidValue, detail: `value 2 to remove from "members" does not say which value it is`},
		{name: "remove a listed value with only null sub-attributes removes nothing",
			body: env(`{"op":"remove","path":"emails","value":[{"display":null}]}`), changed: none},
	})
}

func TestRemove(t *testing.T) {
	runCases(t, []applyCase{
		{name: "path is required",
			body: env(`{"op":"replace","path":"nickName","value":"B"}`, `{"op":"remove"}`),
			err:  NoTarget, detail: "operation 2 (remove): path is required for remove"},
		{name: "single-valued attribute",
			body: env(`{"op":"remove","path":"displayName"}`), absent: []string{"displayName"}, changed: []string{"displayName"}},
		{name: "unassigned attribute is no error",
			body: env(`{"op":"remove","path":"nickName"}`), changed: none},
		{name: "value is ignored for single-valued attributes",
			body: env(`{"op":"Remove","path":"displayName","value":[{"value":"Babs Jensen"}]}`), absent: []string{"displayName"}},
		{name: "sub-attribute",
			body: env(`{"op":"remove","path":"name.givenName"}`),
			want: `{"name": {"familyName": "Jensen", "formatted": "Ms. Barbara J Jensen III"}}`},
		{name: "last sub-attribute unassigns the attribute",
			res:  `{"id":"x","userName":"u","name":{"givenName":"A"}}`,
			body: env(`{"op":"remove","path":"name.givenName"}`), absent: []string{"name"}},
		{name: "extension attribute",
			body:    env(`{"op":"remove","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"}`),
			want:    `{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "701984", "department": "Tour Operations"}}`,
			changed: []string{entURN + ":manager"}},
		{name: "last extension attribute drops the extension from schemas",
			res:    `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],"id":"x","userName":"u","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"D"}}`,
			body:   env(`{"op":"remove","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"}`),
			want:   `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"]}`,
			absent: []string{entURN}},
		{name: "whole extension",
			body:   env(`{"op":"remove","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"}`),
			want:   `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"]}`,
			absent: []string{entURN}, changed: []string{entURN + ":employeeNumber", entURN + ":department", entURN + ":manager"}},
		{name: "required attribute",
			body: env(`{"op":"remove","path":"userName"}`),
			err:  InvalidValue, detail: `operation 1 (remove): attribute "userName" is required and cannot be removed`},
		{name: "required attribute set to null",
			body: env(`{"op":"replace","path":"userName","value":null}`),
			err:  InvalidValue, detail: `attribute "userName" is required`},
		{name: "the core schema",
			body: env(`{"op":"remove","path":"urn:ietf:params:scim:schemas:core:2.0:User"}`),
			err:  InvalidPath, detail: "the core schema cannot be removed"},
	})
}

func TestMutability(t *testing.T) {
	runCases(t, []applyCase{
		{name: "id", body: env(`{"op":"replace","path":"id","value":"2819c223-7f76-453a-919d-413861904646"}`),
			err: Mutability, detail: `operation 1 (replace): attribute "id" is readOnly`},
		{name: "meta", body: env(`{"op":"replace","path":"meta","value":{"version":"x"}}`),
			err: Mutability, detail: `attribute "meta" is readOnly`},
		{name: "meta sub-attribute", body: env(`{"op":"replace","path":"meta.lastModified","value":"2020-01-01T00:00:00Z"}`),
			err: Mutability, detail: `attribute "meta" is readOnly`},
		{name: "groups on User", body: env(`{"op":"add","path":"groups","value":[{"value":"g"}]}`),
			err: Mutability, detail: `attribute "groups" is readOnly`},
		{name: "remove groups filter", body: env(`{"op":"remove","path":"groups[value eq \"e9e30dba\"]"}`),
			err: Mutability, detail: `attribute "groups" is readOnly`},
		{name: "manager displayName", body: env(`{"op":"replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.displayName","value":"x"}`),
			err: Mutability, detail: `attribute "manager.displayName" is readOnly`},
		{name: "members display", group: true, body: env(`{"op":"replace","path":"members[value eq \"u1\"].display","value":"x"}`),
			err: Mutability, detail: `attribute "members.display" is readOnly`},
		{name: "members value of an existing member", group: true, body: env(`{"op":"replace","path":"members[value eq \"u1\"].value","value":"u9"}`),
			err: Mutability, detail: `attribute "members.value" is immutable and cannot be changed once set`},
		{name: "members element replaced by another member", group: true, body: env(`{"op":"replace","path":"members[value eq \"u1\"]","value":{"value":"u9"}}`),
			err: Mutability, detail: `attribute "members.value" is immutable`},
		{name: "members type of an existing member", group: true, body: env(`{"op":"replace","path":"members[value eq \"u1\"].type","value":"Group"}`),
			err: Mutability, detail: `attribute "members.type" is immutable`},
		{name: "members type set where unassigned (RFC 7644 §3.5.2)", group: true,
			body: env(`{"op":"add","path":"members[value eq \"u2\"].type","value":"User"}`),
			want: `{"members": [{"value": "u1", "type": "User"}, {"value": "u2", "type": "User"}]}`},
		{name: "members value set on a new element", group: true,
			body: env(`{"op":"add","path":"members[value eq \"u3\"].type","value":"User"}`),
			want: `{"members": [{"value": "u1", "type": "User"}, {"value": "u2"}, {"value": "u3", "type": "User"}]}`},
		{name: "members element replaced by itself", group: true,
			body:    env(`{"op":"replace","path":"members[value eq \"u1\"]","value":{"value":"u1","type":"User"}}`),
			changed: none},
		{name: "remove an immutable sub-attribute", group: true, body: env(`{"op":"remove","path":"members[value eq \"u1\"].type"}`),
			err: Mutability, detail: `attribute "members.type" is immutable`},
	})
}

func TestInvalid(t *testing.T) {
	runCases(t, []applyCase{
		{name: "unknown attribute", body: env(`{"op":"replace","path":"shoeSize","value":42}`),
			err: InvalidPath, detail: `operation 1 (replace): unknown attribute "shoeSize" for resource type "User"`},
		{name: "unknown sub-attribute", body: env(`{"op":"replace","path":"name.nick","value":"x"}`),
			err: InvalidPath, detail: `unknown attribute "name.nick"`},
		// A path into an extension naming what it does not define is undeclared
		// extension data: invalidValue, as in a POST body.
		{name: "unknown extension attribute", body: env(`{"op":"replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:shoeSize","value":1}`),
			err: InvalidValue, detail: `unknown attribute "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:shoeSize"`},
		{name: "undeclared extension attribute", body: env(`{"op":"remove","path":"urn:ietf:params:scim:schemas:extension:acme:2.0:User:level"}`),
			err: InvalidValue, detail: `unknown attribute "urn:ietf:params:scim:schemas:extension:acme:2.0:User:level"`},
		{name: "undeclared extension", body: env(`{"op":"remove","path":"urn:ietf:params:scim:schemas:extension:acme:2.0:User"}`),
			err: InvalidValue, detail: `unknown attribute "urn:ietf:params:scim:schemas:extension:acme:2.0:User"`},
		{name: "unknown core sub-attribute by path stays invalidPath", body: env(`{"op":"replace","path":"urn:ietf:params:scim:schemas:core:2.0:User:nickName.x","value":1}`),
			err: InvalidPath, detail: `unknown attribute "urn:ietf:params:scim:schemas:core:2.0:User:nickName.x"`},
		{name: "filter on a single-valued attribute", body: env(`{"op":"replace","path":"name[givenName eq \"B\"].familyName","value":"x"}`),
			err: InvalidPath, detail: `attribute "name" is single-valued`},
		{name: "bad filter syntax", body: env(`{"op":"replace","path":"emails[type eq].value","value":"x"}`),
			err: InvalidPath, detail: `operation 1 (replace): invalid path at offset`},
		{name: "filter on an unknown sub-attribute", body: env(`{"op":"replace","path":"emails[kind eq \"work\"].value","value":"x"}`),
			err: InvalidPath, detail: `attribute "emails" has no sub-attribute "kind"`},
		{name: "sub-attribute after filter unknown", body: env(`{"op":"replace","path":"emails[type eq \"work\"].address","value":"x"}`),
			err: InvalidPath, detail: `attribute "emails" has no sub-attribute "address"`},
		{name: "filter literal of the wrong type", body: env(`{"op":"replace","path":"emails[primary eq \"yes\"].value","value":"x"}`),
			err: InvalidPath, detail: `emails.primary is a boolean`},
		{name: "filter on a string with a number", body: env(`{"op":"remove","path":"emails[type eq 1]"}`),
			err: InvalidPath, detail: `emails.type is a string`},
		{name: "boolean as another string", body: env(`{"op":"replace","path":"active","value":"maybe"}`),
			err: InvalidValue, detail: `operation 1 (replace): attribute "active" must be a boolean (true or false), got "maybe"`},
		{name: "boolean as another string in a path-less value", body: env(`{"op":"replace","value":{"active":"yes"}}`),
			err: InvalidValue, detail: `attribute "active" must be a boolean (true or false), got "yes"`},
		{name: "string as number", body: env(`{"op":"replace","path":"userName","value":5}`),
			err: InvalidValue, detail: `attribute "userName" must be a string, got 5`},
		{name: "complex as string", body: env(`{"op":"replace","path":"emails","value":"x@y"}`),
			err: InvalidValue, detail: `attribute "emails" must be an object with sub-attributes, got "x@y"`},
		{name: "filtered sub-attribute value type", body: env(`{"op":"replace","path":"emails[type eq \"work\"].primary","value":"yes"}`),
			err: InvalidValue, detail: `attribute "emails.primary" must be a boolean`},
		{name: "dotted sub-attribute value type", body: env(`{"op":"replace","path":"name.givenName","value":true}`),
			err: InvalidValue, detail: `attribute "name.givenName" must be a string, got true`},
		{name: "unknown sub-attribute in value", body: env(`{"op":"add","path":"emails","value":[{"value":"x@y","kind":"work"}]}`),
			err: InvalidValue, detail: `attribute "emails" has no sub-attribute "kind"`},
		{name: "add without value", body: env(`{"op":"add","path":"nickName"}`),
			err: InvalidValue, detail: "operation 1 (add): value is required for add"},
		{name: "replace without value", body: env(`{"op":"replace","path":"nickName"}`),
			err: InvalidValue, detail: "value is required for replace"},
		{name: "schemas is not an attribute", body: env(`{"op":"replace","path":"schemas","value":[]}`),
			err: InvalidPath, detail: `unknown attribute "schemas"`},
		{name: "members is not a User attribute", body: env(`{"op":"add","path":"members","value":[{"value":"x"}]}`),
			err: InvalidPath, detail: `unknown attribute "members"`},
	})
}

func TestAtomic(t *testing.T) {
	runCases(t, []applyCase{
		{name: "op 3 of 3 fails",
			body: env(
				`{"op":"replace","path":"displayName","value":"X"}`,
				`{"op":"remove","path":"emails[type eq \"home\"]"}`,
				`{"op":"replace","path":"active","value":"perhaps"}`),
			err: InvalidValue, detail: "operation 3 (replace):"},
		{name: "op 3 of 3 fails in delta mode", group: true, delta: true,
			body: env(
				`{"op":"replace","path":"displayName","value":"X"}`,
				`{"op":"add","path":"members","value":[{"value":"u1"}]}`,
				`{"op":"remove","path":"members[display eq \"x\"]"}`),
			err: InvalidPath, detail: "operation 3 (remove):"},
	})
}

func TestGroupDelta(t *testing.T) {
	m := func(ids ...string) []Member {
		out := make([]Member, len(ids))
		for i, id := range ids {
			out[i] = Member{Value: id}
		}
		return out
	}
	add := func(ids ...string) string {
		vals := make([]string, len(ids))
		for i, id := range ids {
			vals[i] = fmt.Sprintf(`{"value":%q}`, id)
		}
		return `{"op":"add","path":"members","value":[` + strings.Join(vals, ",") + `]}`
	}
	removeID := func(id string) string {
		return fmt.Sprintf(`{"op":"remove","path":"members[value eq \"%s\"]"}`, id)
	}
	runCases(t, []applyCase{
		{name: "members of res are not touched", group: true, delta: true, res: baseGroup,
			body:    env(add("u9"), `{"op":"remove","path":"members"}`),
			want:    `{"members": [{"value": "u1", "type": "User"}, {"value": "u2"}]}`,
			members: &MemberChange{RemoveAll: true}, changed: []string{"members"}},
		{name: "add keeps all fields", group: true, delta: true,
			body:    env(`{"op":"add","path":"members","value":[{"value":"u1","$ref":"https://example.com/v2/Users/u1","type":"User","display":"A"}]}`),
			members: &MemberChange{Add: []Member{{Value: "u1", Ref: "https://example.com/v2/Users/u1", Type: "User", Display: "A"}}}},
		{name: "a single member object", group: true, delta: true,
			body:    env(`{"op":"add","path":"members","value":{"value":"u1"}}`),
			members: &MemberChange{Add: m("u1")}},
		{name: "duplicates within one op", group: true, delta: true,
			body: env(add("a", "b", "a")), members: &MemberChange{Add: m("a", "b")}},
		{name: "add x then remove x", group: true, delta: true,
			body: env(add("x"), removeID("x")), members: &MemberChange{Remove: []string{"x"}}},
		{name: "remove x then add x", group: true, delta: true,
			body: env(removeID("x"), add("x")), members: &MemberChange{Add: m("x")}},
		{name: "or-ed value filter", group: true, delta: true,
			body:    env(`{"op":"remove","path":"members[value eq \"a\" or value eq \"b\" or Value EQ \"c\"]"}`),
			members: &MemberChange{Remove: []string{"a", "b", "c"}}},
		{name: "remove all", group: true, delta: true,
			body: env(add("a"), `{"op":"remove","path":"members"}`), members: &MemberChange{RemoveAll: true}},
		{name: "remove all then add", group: true, delta: true,
			body: env(`{"op":"remove","path":"members"}`, add("a"), removeID("b")), members: &MemberChange{ReplaceAll: true, Add: m("a")}},
		{name: "replace", group: true, delta: true,
			body:    env(add("z"), `{"op":"replace","path":"members","value":[{"value":"a"},{"value":"b"}]}`, removeID("b")),
			members: &MemberChange{ReplaceAll: true, Add: m("a")}},
		{name: "replace with an empty list", group: true, delta: true,
			body: env(`{"op":"replace","path":"members","value":[]}`), members: &MemberChange{RemoveAll: true}},
		{name: "replace then remove everything added", group: true, delta: true,
			body: env(`{"op":"replace","path":"members","value":[{"value":"a"}]}`, removeID("a")), members: &MemberChange{RemoveAll: true}},
		{name: "remove with an empty value list removes nobody", group: true, delta: true,
			body: env(`{"op":"remove","path":"members","value":[]}`), changed: none},
		{name: "path-less replace with members", group: true, delta: true,
			body: env(`{"op":"replace","value":{"displayName":"New","members":[{"value":"a"}]}}`),
			want: `{"displayName": "New"}`, absent: []string{"members"},
			members: &MemberChange{ReplaceAll: true, Add: m("a")}, changed: []string{"displayName", "members"}},
		{name: "path in another case", group: true, delta: true,
			body: env(`{"op":"Add","path":"Members","value":[{"Value":"a"}]}`), members: &MemberChange{Add: m("a")}},
		{name: "filter on display", group: true, delta: true,
			body: env(`{"op":"remove","path":"members[display eq \"x\"]"}`),
			err:  InvalidPath, detail: `only filters of the form members[value eq "<id>"], optionally joined with or, are supported on members; got "display eq \"x\""`},
		{name: "and filter", group: true, delta: true,
			body: env(`{"op":"remove","path":"members[value eq \"a\" and value eq \"b\"]"}`), err: InvalidPath},
		{name: "ne filter", group: true, delta: true,
			body: env(`{"op":"remove","path":"members[value ne \"a\"]"}`), err: InvalidPath},
		{name: "replace a filtered member", group: true, delta: true,
			body: env(`{"op":"replace","path":"members[value eq \"a\"]","value":{"value":"b"}}`),
			err:  Mutability, detail: "members cannot be modified in place"},
		{name: "remove a member sub-attribute", group: true, delta: true,
			body: env(`{"op":"remove","path":"members[value eq \"a\"].type"}`),
			err:  Mutability, detail: "members cannot be modified in place"},
		{name: "member display", group: true, delta: true,
			body: env(`{"op":"replace","path":"members[value eq \"a\"].display","value":"x"}`),
			err:  Mutability, detail: `attribute "members.display" is readOnly`},
		{name: "member without value", group: true, delta: true,
			body: env(`{"op":"add","path":"members","value":[{"value":"a"},{"display":"b"}]}`),
			err:  InvalidValue, detail: `operation 1 (add): member 2 has no "value" (the id of the member)`},
		{name: "member value of the wrong type", group: true, delta: true,
			body: env(`{"op":"add","path":"members","value":[{"value":5}]}`),
			err:  InvalidValue, detail: `attribute "members.value" must be a string, got 5`},
		{name: "required displayName", group: true, delta: true,
			body: env(`{"op":"remove","path":"displayName"}`),
			err:  InvalidValue, detail: `attribute "displayName" is required`},
	})
}

func TestGroupWithoutDelta(t *testing.T) {
	runCases(t, []applyCase{
		{name: "adding an existing member is a no-op", group: true,
			body: env(`{"op":"add","path":"members","value":[{"value":"u1","display":"other"}]}`), changed: none},
		{name: "duplicates within one op", group: true,
			body: env(`{"op":"add","path":"members","value":[{"value":"u3"},{"value":"u3","type":"User"}]}`),
			want: `{"members": [{"value": "u1", "type": "User"}, {"value": "u2"}, {"value": "u3"}]}`},
		{name: "removing a non-member is no error", group: true,
			body: env(`{"op":"remove","path":"members[value eq \"nobody\"]"}`,
				`{"op":"remove","path":"members","value":[{"value":"nobody"}]}`), changed: none},
		{name: "remove all", group: true,
			body: env(`{"op":"remove","path":"members"}`), absent: []string{"members"}, changed: []string{"members"}},
		{name: "replace", group: true,
			body: env(`{"op":"replace","path":"members","value":[{"value":"u2"},{"value":"u5"}]}`),
			want: `{"members": [{"value": "u2"}, {"value": "u5"}]}`},
		{name: "remove by a filter on display works without delta", group: true,
			res:  `{"id":"g1","displayName":"G","members":[{"value":"u1","display":"A"},{"value":"u2","display":"B"}]}`,
			body: env(`{"op":"remove","path":"members[display eq \"a\"]"}`),
			want: `{"members": [{"value": "u2", "display": "B"}]}`},
	})
}

func TestManyMembers(t *testing.T) {
	const n = 5000
	vals := make([]string, n)
	want := make([]Member, n)
	for i := range vals {
		id := fmt.Sprintf("user-%05d", i)
		vals[i] = fmt.Sprintf(`{"value":%q}`, id)
		want[i] = Member{Value: id}
	}
	body := env(`{"op":"add","path":"members","value":[` + strings.Join(vals, ",") + `]}`)
	ops, err := ParseRequest([]byte(body), 0)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Apply(registry(t), map[string]any{"id": "g1", "displayName": "G"}, ops,
		Options{ResourceType: "Group", ResourceID: "g1", MembersAsDelta: true})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Members.Add, want) {
		t.Fatalf("got %d members to add, want %d", len(got.Members.Add), n)
	}
}

// TestResultIsIndependent checks that the result shares nothing mutable
// with the input, so a caller may modify it freely.
func TestResultIsIndependent(t *testing.T) {
	res := decode(t, baseUser)
	before := mustJSON(t, res)
	got, err := Apply(registry(t), res, nil, Options{ResourceType: "User"})
	if err != nil {
		t.Fatal(err)
	}
	got.Resource["name"].(map[string]any)["givenName"] = "changed"
	got.Resource["emails"].([]any)[0].(map[string]any)["value"] = "changed"
	got.Resource[entURN].(map[string]any)["manager"].(map[string]any)["value"] = "changed"
	got.Resource["schemas"].([]any)[0] = "changed"
	if after := mustJSON(t, res); !bytes.Equal(before, after) {
		t.Fatalf("modifying the result changed the input:\n%s", after)
	}
	if len(got.Changed) != 0 {
		t.Errorf("Changed = %q for no operations", got.Changed)
	}
}

func TestApplyCallerErrors(t *testing.T) {
	if _, err := Apply(nil, nil, nil, Options{ResourceType: "User"}); err == nil {
		t.Error("nil registry: no error")
	}
	_, err := Apply(registry(t), nil, nil, Options{ResourceType: "Printer"})
	var pe *Error
	if err == nil || errors.As(err, &pe) {
		t.Errorf("unknown resource type: got %v, want a non-*Error error", err)
	}
	// A nil resource is an empty one.
	got, err := Apply(registry(t), nil, []Operation{{Op: "Add", Path: "displayName", Value: []byte(`"G"`)}},
		Options{ResourceType: "Group"})
	if err != nil || got.Resource["displayName"] != "G" {
		t.Errorf("nil resource: got %v, %v", got.Resource, err)
	}
}

// TestStoredKeysInOtherCase checks that a resource stored with
// non-canonical keys is patched under the canonical key, without
// duplicates.
func TestStoredKeysInOtherCase(t *testing.T) {
	res := map[string]any{"id": "x", "username": "u", "DisplayName": "old"}
	ops := []Operation{{Op: "replace", Path: "displayName", Value: []byte(`"new"`)}}
	got, err := Apply(registry(t), res, ops, Options{ResourceType: "User"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got.Resource["DisplayName"]; ok || got.Resource["displayName"] != "new" {
		t.Fatalf("got %v", got.Resource)
	}
}
