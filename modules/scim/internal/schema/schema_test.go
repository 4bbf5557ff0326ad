package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
)

const base = "https://example.com/scim/v2"

func newRegistry(t *testing.T, extra ...*Schema) *Registry {
	t.Helper()
	r, err := NewRegistry(extra...)
	if err != nil {
		t.Fatalf("NewRegistry: %v", err)
	}
	return r
}

// roundTrip encodes v as JSON and decodes it into generic values, which is
// what a client sees.
func roundTrip(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	return m
}

func decode(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	return m
}

// wireAttr finds the attribute at path ("emails", "emails.type") in a
// rendered schema.
func wireAttr(t *testing.T, rendered map[string]any, path string) map[string]any {
	t.Helper()
	attrs, _ := rendered["attributes"].([]any)
	var found map[string]any
	for part := range strings.SplitSeq(path, ".") {
		found = nil
		for _, a := range attrs {
			if m := a.(map[string]any); m["name"] == part {
				found = m
			}
		}
		if found == nil {
			t.Fatalf("%s: attribute %q not rendered", rendered["id"], path)
		}
		attrs, _ = found["subAttributes"].([]any)
	}
	return found
}

func TestSchemaSpotChecks(t *testing.T) {
	r := newRegistry(t)
	tests := []struct {
		schema, path, field string
		want                any
	}{
		{UserURN, "userName", "uniqueness", "server"},
		{UserURN, "userName", "required", true},
		{UserURN, "userName", "caseExact", false},
		{UserURN, "userName", "returned", "default"},
		{UserURN, "password", "returned", "never"},
		{UserURN, "password", "mutability", "writeOnly"},
		{UserURN, "groups", "mutability", "readOnly"},
		{UserURN, "groups.$ref", "referenceTypes", []any{"User", "Group"}},
		{UserURN, "groups.type", "canonicalValues", []any{"direct", "indirect"}},
		{UserURN, "emails", "multiValued", true},
		{UserURN, "emails", "type", "complex"},
		{UserURN, "emails.type", "canonicalValues", []any{"work", "home", "other"}},
		{UserURN, "phoneNumbers.type", "canonicalValues", []any{"work", "home", "mobile", "fax", "pager", "other"}},
		{UserURN, "ims.type", "canonicalValues", []any{"aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"}},
		{UserURN, "photos.value", "type", "reference"},
		{UserURN, "photos.value", "referenceTypes", []any{"external"}},
		{UserURN, "profileUrl", "referenceTypes", []any{"external"}},
		{UserURN, "active", "type", "boolean"},
		{UserURN, "name", "multiValued", false},
		{UserURN, "addresses", "multiValued", true},
		{UserURN, "addresses.primary", "type", "boolean"},
		{UserURN, "x509Certificates.value", "type", "binary"},
		{UserURN, "x509Certificates", "multiValued", true},
		{GroupURN, "displayName", "required", true},
		{GroupURN, "displayName", "uniqueness", "server"},
		{GroupURN, "displayName", "returned", "default"},
		{GroupURN, "members", "multiValued", true},
		{GroupURN, "members", "mutability", "readWrite"},
		{GroupURN, "members.value", "mutability", "immutable"},
		{GroupURN, "members.$ref", "mutability", "immutable"},
		{GroupURN, "members.$ref", "referenceTypes", []any{"User", "Group"}},
		{GroupURN, "members.display", "mutability", "readOnly"},
		{GroupURN, "members.type", "mutability", "immutable"},
		{GroupURN, "members.type", "canonicalValues", []any{"User", "Group"}},
		{EnterpriseUserURN, "manager", "type", "complex"},
		{EnterpriseUserURN, "manager.displayName", "mutability", "readOnly"},
		{EnterpriseUserURN, "manager.$ref", "referenceTypes", []any{"User"}},
		{EnterpriseUserURN, "manager.value", "mutability", "readWrite"},
		{EnterpriseUserURN, "department", "type", "string"},
	}
	for _, tt := range tests {
		t.Run(tt.schema[strings.LastIndexByte(tt.schema, ':')+1:]+"/"+tt.path+"/"+tt.field, func(t *testing.T) {
			s, ok := r.Schema(tt.schema)
			if !ok {
				t.Fatalf("schema %s not registered", tt.schema)
			}
			a := wireAttr(t, roundTrip(t, r.SchemaResource(s, base)), tt.path)
			if got := a[tt.field]; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s = %#v, want %#v", tt.field, got, tt.want)
			}
		})
	}
}

// TestSchemaCompleteness checks that every attribute and sub-attribute of
// RFC 7643 §4 is defined, nothing else is, and every characteristic is
// encoded.
func TestSchemaCompleteness(t *testing.T) {
	plural := []string{"value", "display", "type", "primary"}
	want := map[string]map[string][]string{
		UserURN: {
			"userName": nil, "name": {"formatted", "familyName", "givenName", "middleName", "honorificPrefix", "honorificSuffix"},
			"displayName": nil, "nickName": nil, "profileUrl": nil, "title": nil, "userType": nil,
			"preferredLanguage": nil, "locale": nil, "timezone": nil, "active": nil, "password": nil,
			"emails": plural, "phoneNumbers": plural, "ims": plural, "photos": plural,
			"addresses":    {"formatted", "streetAddress", "locality", "region", "postalCode", "country", "type", "primary"},
			"groups":       {"value", "$ref", "display", "type"},
			"entitlements": plural, "roles": plural, "x509Certificates": plural,
		},
		EnterpriseUserURN: {
			"employeeNumber": nil, "costCenter": nil, "organization": nil, "division": nil, "department": nil,
			"manager": {"value", "$ref", "displayName"},
		},
		GroupURN: {
			"displayName": nil, "members": {"value", "$ref", "display", "type"},
		},
	}
	r := newRegistry(t)
	for urn, attrs := range want {
		s, _ := r.Schema(urn)
		rendered := roundTrip(t, r.SchemaResource(s, base))
		got := map[string][]string{}
		for _, a := range rendered["attributes"].([]any) {
			am := a.(map[string]any)
			checkEncoded(t, urn, am)
			var subs []string
			for _, sa := range asSlice(am["subAttributes"]) {
				sm := sa.(map[string]any)
				checkEncoded(t, urn, sm)
				if _, nested := sm["subAttributes"]; nested {
					t.Errorf("%s: %s.%s has sub-attributes (RFC 7643 §2.3.8)", urn, am["name"], sm["name"])
				}
				subs = append(subs, sm["name"].(string))
			}
			got[am["name"].(string)] = subs
		}
		if !reflect.DeepEqual(got, attrs) {
			t.Errorf("%s attributes:\n got %v\nwant %v", urn, got, attrs)
		}
		// RFC 7643 §8.7.1 does not list the common attributes.
		for _, common := range []string{"id", "externalId", "meta"} {
			if s.Attribute(common) != nil {
				t.Errorf("%s lists common attribute %s", urn, common)
			}
		}
	}
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

func checkEncoded(t *testing.T, urn string, a map[string]any) {
	t.Helper()
	for _, k := range []string{"name", "type", "multiValued", "description", "required", "caseExact", "mutability", "returned", "uniqueness"} {
		if _, ok := a[k]; !ok {
			t.Errorf("%s: attribute %v lacks %q", urn, a["name"], k)
		}
	}
	if a["description"] == "" {
		t.Errorf("%s: attribute %v has no description", urn, a["name"])
	}
	if a["type"] == TypeComplex && len(asSlice(a["subAttributes"])) == 0 {
		t.Errorf("%s: complex attribute %v has no subAttributes", urn, a["name"])
	}
	if _, ok := a["canonicalValues"]; ok && len(asSlice(a["canonicalValues"])) == 0 {
		t.Errorf("%s: attribute %v encodes empty canonicalValues", urn, a["name"])
	}
}

func TestCommonAttributes(t *testing.T) {
	r := newRegistry(t)
	common := r.CommonAttributes()
	id, ext, meta := findAttr(common, "id"), findAttr(common, "externalId"), findAttr(common, "meta")
	if id == nil || ext == nil || meta == nil {
		t.Fatalf("common attributes: %v", common)
	}
	if id.Returned != ReturnedAlways || id.Mutability != MutabilityReadOnly || !id.CaseExact || id.Uniqueness != UniquenessServer {
		t.Errorf("id = %+v", id)
	}
	if !ext.CaseExact || ext.Mutability != MutabilityReadWrite {
		t.Errorf("externalId = %+v", ext)
	}
	if meta.Mutability != MutabilityReadOnly || meta.Returned != ReturnedDefault {
		t.Errorf("meta = %+v", meta)
	}
	for _, sub := range []string{"resourceType", "created", "lastModified", "location", "version"} {
		if s := meta.Sub(sub); s == nil || s.Mutability != MutabilityReadOnly {
			t.Errorf("meta.%s = %+v", sub, s)
		}
	}
	if meta.Sub("lastModified").Type != TypeDateTime {
		t.Errorf("meta.lastModified type = %s", meta.Sub("lastModified").Type)
	}
}

func TestSchemaResource(t *testing.T) {
	r := newRegistry(t)
	s, _ := r.Schema(EnterpriseUserURN)
	got := roundTrip(t, r.SchemaResource(s, base+"/"))
	if !reflect.DeepEqual(got["schemas"], []any{SchemaURN}) {
		t.Errorf("schemas = %v", got["schemas"])
	}
	if got["id"] != EnterpriseUserURN || got["name"] != "EnterpriseUser" || got["description"] != "Enterprise User" {
		t.Errorf("id/name/description = %v/%v/%v", got["id"], got["name"], got["description"])
	}
	wantMeta := map[string]any{"resourceType": "Schema", "location": base + "/Schemas/" + EnterpriseUserURN}
	if !reflect.DeepEqual(got["meta"], wantMeta) {
		t.Errorf("meta = %v, want %v", got["meta"], wantMeta)
	}
}

func TestResourceTypeResource(t *testing.T) {
	r := newRegistry(t)
	user, ok := r.ResourceType("user")
	if !ok {
		t.Fatal("no User resource type")
	}
	got := roundTrip(t, r.ResourceTypeResource(user, base))
	want := decode(t, `{
		"schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
		"id": "User", "name": "User", "endpoint": "/Users", "description": "User Account",
		"schema": "urn:ietf:params:scim:schemas:core:2.0:User",
		"schemaExtensions": [{"schema": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "required": false}],
		"meta": {"resourceType": "ResourceType", "location": "https://example.com/scim/v2/ResourceTypes/User"}
	}`)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("User resource type:\n got %v\nwant %v", got, want)
	}

	group, _ := r.ResourceType("Group")
	got = roundTrip(t, r.ResourceTypeResource(group, base))
	if got["endpoint"] != "/Groups" || got["schema"] != GroupURN {
		t.Errorf("Group resource type = %v", got)
	}
	if _, ok := got["schemaExtensions"]; ok {
		t.Errorf("Group has schemaExtensions: %v", got["schemaExtensions"])
	}
	if n := len(r.ResourceTypeResources(base)); n != 2 {
		t.Errorf("ResourceTypeResources: %d entries", n)
	}
}

func TestServiceProviderConfig(t *testing.T) {
	got := roundTrip(t, ServiceProviderConfig(base, SPConfig{
		DocumentationURI:      "https://example.com/docs/scim",
		Patch:                 true,
		Bulk:                  BulkConfig{Supported: false, MaxOperations: 0, MaxPayloadSize: 1 << 20},
		Filter:                FilterConfig{Supported: true, MaxResults: 200},
		Sort:                  true,
		ETag:                  true,
		AuthenticationSchemes: []AuthenticationScheme{OAuthBearerToken()},
	}))
	want := decode(t, `{
		"schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
		"documentationUri": "https://example.com/docs/scim",
		"patch": {"supported": true},
		"bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 1048576},
		"filter": {"supported": true, "maxResults": 200},
		"changePassword": {"supported": false},
		"sort": {"supported": true},
		"etag": {"supported": true},
		"authenticationSchemes": [{
			"type": "oauthbearertoken",
			"name": "OAuth Bearer Token",
			"description": "Authentication scheme using the OAuth Bearer Token Standard",
			"specUri": "https://www.rfc-editor.org/info/rfc6750",
			"primary": true
		}],
		"meta": {"resourceType": "ServiceProviderConfig", "location": "https://example.com/scim/v2/ServiceProviderConfig"}
	}`)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ServiceProviderConfig:\n got %v\nwant %v", got, want)
	}

	empty := roundTrip(t, ServiceProviderConfig(base, SPConfig{}))
	if s, ok := empty["authenticationSchemes"].([]any); !ok || len(s) != 0 {
		t.Errorf("authenticationSchemes = %#v, want []", empty["authenticationSchemes"])
	}
	if _, ok := empty["documentationUri"]; ok {
		t.Error("empty documentationUri rendered")
	}
}

func acmeSchema(id string, attrs ...*Attribute) *Schema {
	return &Schema{ID: id, Name: "Acme", Description: "Tenant extension", Attributes: attrs}
}

const (
	acmeURN  = "urn:example:params:scim:schemas:extension:acme:2.0:User"
	otherURN = "urn:example:params:scim:schemas:extension:other:2.0:User"
)

func TestStableJSON(t *testing.T) {
	a := acmeSchema(acmeURN, &Attribute{Name: "badge"})
	b := acmeSchema(otherURN, &Attribute{Name: "badge"})
	r1 := newRegistry(t, a, b)
	r2 := newRegistry(t, b, a)
	var out [2][]byte
	for i, r := range []*Registry{r1, r2} {
		for range 2 {
			j, err := json.Marshal(map[string]any{
				"schemas":       r.SchemaResources(base),
				"resourceTypes": r.ResourceTypeResources(base),
			})
			if err != nil {
				t.Fatal(err)
			}
			if out[i] != nil && !bytes.Equal(out[i], j) {
				t.Fatal("encoding differs between calls")
			}
			out[i] = j
		}
	}
	if !bytes.Equal(out[0], out[1]) {
		t.Error("encoding depends on the order extra schemas were given in")
	}
	var ids []string
	for _, s := range r1.Schemas() {
		ids = append(ids, s.ID)
	}
	if !slices.IsSorted(ids) || len(ids) != 5 {
		t.Errorf("schema order = %v", ids)
	}
}

func TestExtend(t *testing.T) {
	baseReg := newRegistry(t)
	r, err := baseReg.Extend("group", true, acmeSchema("urn:example:acme:Group",
		&Attribute{Name: "costCode", Returned: ReturnedRequest},
		&Attribute{Name: "owner", Type: TypeComplex, SubAttributes: []*Attribute{{Name: "value"}, {Name: "$ref", Type: TypeReference}}},
	))
	if err != nil {
		t.Fatalf("Extend: %v", err)
	}
	if _, ok := baseReg.Schema("urn:example:acme:Group"); ok {
		t.Error("Extend modified the receiver's schemas")
	}
	if g, _ := baseReg.ResourceType("Group"); len(g.SchemaExtensions) != 0 {
		t.Error("Extend modified the receiver's resource type")
	}
	g, _ := r.ResourceType("Group")
	if !reflect.DeepEqual(g.SchemaExtensions, []Extension{{Schema: "urn:example:acme:Group", Required: true}}) {
		t.Errorf("schemaExtensions = %v", g.SchemaExtensions)
	}
	s, _ := r.Schema("URN:EXAMPLE:ACME:GROUP")
	cc := s.Attribute("costcode")
	if cc == nil || cc.Type != TypeString || cc.Mutability != MutabilityReadWrite || cc.Uniqueness != UniquenessNone || cc.Returned != ReturnedRequest {
		t.Errorf("normalized costCode = %+v", cc)
	}

	bad := []struct {
		name string
		s    *Schema
	}{
		{"not a URN", acmeSchema("acme", &Attribute{Name: "x"})},
		{"duplicate schema", acmeSchema(strings.ToLower(EnterpriseUserURN), &Attribute{Name: "x"})},
		{"duplicate attribute", acmeSchema(acmeURN, &Attribute{Name: "x"}, &Attribute{Name: "X"})},
		{"bad name", acmeSchema(acmeURN, &Attribute{Name: "1x"})},
		{"bad returned", acmeSchema(acmeURN, &Attribute{Name: "x", Returned: "sometimes"})},
		{"subs on simple", acmeSchema(acmeURN, &Attribute{Name: "x", SubAttributes: []*Attribute{{Name: "y"}}})},
		{"complex without subs", acmeSchema(acmeURN, &Attribute{Name: "x", Type: TypeComplex})},
		{"nested complex", acmeSchema(acmeURN, &Attribute{Name: "x", Type: TypeComplex, SubAttributes: []*Attribute{
			{Name: "y", Type: TypeComplex, SubAttributes: []*Attribute{{Name: "z"}}}}})},
	}
	for _, tt := range bad {
		if _, err := baseReg.Extend("User", false, tt.s); !errors.Is(err, ErrInvalidSchema) {
			t.Errorf("%s: err = %v, want ErrInvalidSchema", tt.name, err)
		}
	}
	if _, err := baseReg.Extend("Device", false, acmeSchema(acmeURN)); !errors.Is(err, ErrUnknownResourceType) {
		t.Errorf("unknown resource type: err = %v", err)
	}
	if _, err := NewRegistry(acmeSchema("urn:example:acme:Device", &Attribute{Name: "x"})); !errors.Is(err, ErrInvalidSchema) {
		t.Errorf("uninferable resource type: err = %v", err)
	}
}

func TestParsePath(t *testing.T) {
	tests := []struct {
		in   string
		want Path
		ok   bool
	}{
		{"userName", Path{Name: "userName"}, true},
		{" name.givenName ", Path{Name: "name", Sub: "givenName"}, true},
		{"members.$ref", Path{Name: "members", Sub: "$ref"}, true},
		{UserURN + ":userName", Path{URN: UserURN, Name: "userName"}, true},
		{EnterpriseUserURN + ":manager.value", Path{URN: EnterpriseUserURN, Name: "manager", Sub: "value"}, true},
		{"URN:foo:bar:x", Path{URN: "URN:foo:bar", Name: "x"}, true},
		{"", Path{}, false},
		{"name.", Path{}, false},
		{"a.b.c", Path{}, false},
		{`emails[type eq "work"].value`, Path{}, false},
		{"$ref", Path{}, false},
		{"urn:foo:", Path{}, false},
	}
	for _, tt := range tests {
		got, err := ParsePath(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParsePath(%q) = %+v, %v; want %+v, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidPath) {
			t.Errorf("ParsePath(%q) error %v does not wrap ErrInvalidPath", tt.in, err)
		}
		if tt.ok && got.String() != strings.TrimSpace(tt.in) {
			t.Errorf("Path.String() = %q, want %q", got.String(), strings.TrimSpace(tt.in))
		}
	}
}

func TestResolve(t *testing.T) {
	r := newRegistry(t,
		acmeSchema(acmeURN, &Attribute{Name: "badge"}, &Attribute{Name: "floor", Type: TypeInteger}),
		acmeSchema(otherURN, &Attribute{Name: "badge"}),
	)
	type want struct {
		urn, name, sub string
		common, ext    bool
		leafType       string
	}
	tests := []struct {
		rt   string
		p    Path
		want want
		err  error
	}{
		{"User", Path{Name: "username"}, want{UserURN, "userName", "", false, false, TypeString}, nil},
		{"user", Path{Name: "USERNAME"}, want{UserURN, "userName", "", false, false, TypeString}, nil},
		{"User", Path{URN: strings.ToUpper(UserURN), Name: "userName"}, want{UserURN, "userName", "", false, false, TypeString}, nil},
		{"User", Path{Name: "name", Sub: "GIVENNAME"}, want{UserURN, "name", "givenName", false, false, TypeString}, nil},
		{"User", Path{Name: "emails", Sub: "TYPE"}, want{UserURN, "emails", "type", false, false, TypeString}, nil},
		{"User", Path{Name: "emails"}, want{UserURN, "emails", "", false, false, TypeComplex}, nil},
		{"User", Path{Name: "x509certificates", Sub: "value"}, want{UserURN, "x509Certificates", "value", false, false, TypeBinary}, nil},
		{"User", Path{Name: "ID"}, want{UserURN, "id", "", true, false, TypeString}, nil},
		{"User", Path{Name: "externalid"}, want{UserURN, "externalId", "", true, false, TypeString}, nil},
		{"User", Path{Name: "meta", Sub: "lastmodified"}, want{UserURN, "meta", "lastModified", true, false, TypeDateTime}, nil},
		{"User", Path{URN: UserURN, Name: "meta", Sub: "created"}, want{UserURN, "meta", "created", true, false, TypeDateTime}, nil},
		{"Group", Path{Name: "meta", Sub: "lastModified"}, want{GroupURN, "meta", "lastModified", true, false, TypeDateTime}, nil},
		{"User", Path{Name: "department"}, want{EnterpriseUserURN, "department", "", false, true, TypeString}, nil},
		{"User", Path{URN: EnterpriseUserURN, Name: "Department"}, want{EnterpriseUserURN, "department", "", false, true, TypeString}, nil},
		{"User", Path{URN: strings.ToLower(EnterpriseUserURN), Name: "manager", Sub: "$REF"}, want{EnterpriseUserURN, "manager", "$ref", false, true, TypeReference}, nil},
		{"User", Path{Name: "floor"}, want{acmeURN, "floor", "", false, true, TypeInteger}, nil},
		{"User", Path{URN: otherURN, Name: "BADGE"}, want{otherURN, "badge", "", false, true, TypeString}, nil},
		{"Group", Path{Name: "displayname"}, want{GroupURN, "displayName", "", false, false, TypeString}, nil},
		{"Group", Path{Name: "members", Sub: "value"}, want{GroupURN, "members", "value", false, false, TypeString}, nil},

		{"User", Path{Name: "badge"}, want{}, ErrAmbiguousAttribute},
		{"User", Path{Name: "nope"}, want{}, ErrUnknownAttribute},
		{"User", Path{Name: "name", Sub: "nope"}, want{}, ErrUnknownAttribute},
		{"User", Path{Name: "userName", Sub: "value"}, want{}, ErrUnknownAttribute},
		{"User", Path{URN: EnterpriseUserURN, Name: "userName"}, want{}, ErrUnknownAttribute},
		{"User", Path{URN: EnterpriseUserURN, Name: "id"}, want{}, ErrUnknownAttribute},
		{"User", Path{URN: GroupURN, Name: "displayName"}, want{}, ErrUnknownAttribute},
		{"Group", Path{Name: "department"}, want{}, ErrUnknownAttribute},
		{"Group", Path{Name: "userName"}, want{}, ErrUnknownAttribute},
		{"Device", Path{Name: "id"}, want{}, ErrUnknownResourceType},
	}
	for _, tt := range tests {
		t.Run(tt.rt+"/"+tt.p.String(), func(t *testing.T) {
			got, err := r.Resolve(tt.rt, tt.p)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			g := want{got.URN, got.Name, got.Sub, got.Common, got.Extension, got.Leaf().Type}
			if g != tt.want {
				t.Errorf("got %+v, want %+v", g, tt.want)
			}
			if got.Attr.Name != got.Name || (got.Sub != "" && got.SubAttr.Name != got.Sub) || (got.Sub == "" && got.SubAttr != nil) {
				t.Errorf("definitions do not match names: %+v", got)
			}
		})
	}

	_, err := r.Resolve("User", Path{Name: "nope"})
	if msg := err.Error(); !strings.Contains(msg, `"nope"`) || !strings.Contains(msg, `"User"`) {
		t.Errorf("error message %q should name the attribute and the resource type", msg)
	}
}

func TestDefaultSub(t *testing.T) {
	r := newRegistry(t)
	tests := []struct {
		p       Path
		wantSub string
		ok      bool
	}{
		{Path{Name: "emails"}, "value", true},
		{Path{Name: "members"}, "", false}, // on a User: unknown, skipped below
		{Path{Name: "name"}, "", false},
		{Path{Name: "userName"}, "", false},
		{Path{Name: "emails", Sub: "type"}, "type", false},
	}
	for _, tt := range tests {
		res, err := r.Resolve("User", tt.p)
		if err != nil {
			continue
		}
		got, ok := res.DefaultSub()
		if ok != tt.ok || got.Sub != tt.wantSub {
			t.Errorf("%s: DefaultSub = %q, %v; want %q, %v", tt.p, got.Sub, ok, tt.wantSub, tt.ok)
		}
		if ok && (got.SubAttr == nil || got.SubAttr.Name != "value" || res.Sub != "") {
			t.Errorf("%s: DefaultSub modified the receiver or lacks SubAttr", tt.p)
		}
	}
	res, _ := r.Resolve("Group", Path{Name: "members"})
	if got, ok := res.DefaultSub(); !ok || got.Leaf().Mutability != MutabilityImmutable {
		t.Errorf("members DefaultSub = %+v, %v", got, ok)
	}
}

const userJSON = `{
	"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
	"id": "2819c223",
	"externalId": "bjensen-ext",
	"userName": "bjensen@example.com",
	"password": "t1meMa$heen",
	"name": {"formatted": "Ms. Barbara J Jensen III", "familyName": "Jensen", "givenName": "Barbara"},
	"displayName": "Babs Jensen",
	"active": true,
	"emails": [
		{"value": "bjensen@example.com", "type": "work", "primary": true},
		{"value": "babs@jensen.org", "type": "home"}
	],
	"groups": [{"value": "e9e30dba", "display": "Tour Guides"}],
	"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
		"employeeNumber": "701984",
		"department": "Tour Operations",
		"manager": {"value": "26118915", "displayName": "John Smith"}
	},
	"meta": {"resourceType": "User", "lastModified": "2011-05-13T04:42:34Z", "version": "W/\"a330bc54f0671c9\""}
}`

func TestProject(t *testing.T) {
	tenant := acmeSchema(acmeURN,
		&Attribute{Name: "badge"},
		&Attribute{Name: "clearance", Returned: ReturnedRequest},
		&Attribute{Name: "pin", Returned: ReturnedNever},
		&Attribute{Name: "site", Type: TypeComplex, SubAttributes: []*Attribute{
			{Name: "code"}, {Name: "secret", Returned: ReturnedRequest},
		}},
	)
	r := newRegistry(t, tenant)
	user := func() map[string]any {
		u := decode(t, userJSON)
		u[acmeURN] = map[string]any{"badge": "B-7", "clearance": "high", "pin": "1234", "site": map[string]any{"code": "OSL", "secret": "x"}}
		return u
	}
	schemas := []any{UserURN, EnterpriseUserURN}

	tests := []struct {
		name                 string
		attributes, excluded string
		want                 string // JSON, with "schemas" added automatically
	}{
		{
			name: "default drops never and request",
			want: `{"id": "2819c223", "externalId": "bjensen-ext", "userName": "bjensen@example.com",
				"name": {"formatted": "Ms. Barbara J Jensen III", "familyName": "Jensen", "givenName": "Barbara"},
				"displayName": "Babs Jensen", "active": true,
				"emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}, {"value": "babs@jensen.org", "type": "home"}],
				"groups": [{"value": "e9e30dba", "display": "Tour Guides"}],
				"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "701984", "department": "Tour Operations", "manager": {"value": "26118915", "displayName": "John Smith"}},
				"urn:example:params:scim:schemas:extension:acme:2.0:User": {"badge": "B-7", "site": {"code": "OSL"}},
				"meta": {"resourceType": "User", "lastModified": "2011-05-13T04:42:34Z", "version": "W/\"a330bc54f0671c9\""}}`,
		},
		{
			name:       "attributes keeps id always, case-insensitive",
			attributes: "USERNAME, displayname",
			want:       `{"id": "2819c223", "userName": "bjensen@example.com", "displayName": "Babs Jensen"}`,
		},
		{
			name:       "attributes never returns password even when asked",
			attributes: "userName,password",
			want:       `{"id": "2819c223", "userName": "bjensen@example.com"}`,
		},
		{
			name:       "attributes=schemas only",
			attributes: "schemas",
			want:       `{"id": "2819c223"}`,
		},
		{
			name:       "sub-attribute of single complex",
			attributes: "name.givenName",
			want:       `{"id": "2819c223", "name": {"givenName": "Barbara"}}`,
		},
		{
			name:       "sub-attribute projection in multi-valued",
			attributes: "emails.value",
			want:       `{"id": "2819c223", "emails": [{"value": "bjensen@example.com"}, {"value": "babs@jensen.org"}]}`,
		},
		{
			name:       "URN-qualified core sub-attribute",
			attributes: UserURN + ":Emails.Type",
			want:       `{"id": "2819c223", "emails": [{"type": "work"}, {"type": "home"}]}`,
		},
		{
			name:       "absent sub-attribute drops the parent",
			attributes: "name.middleName",
			want:       `{"id": "2819c223"}`,
		},
		{
			name:       "URN-qualified extension attribute keeps only it",
			attributes: EnterpriseUserURN + ":department",
			want:       `{"id": "2819c223", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Tour Operations"}}`,
		},
		{
			name:       "unqualified extension attribute",
			attributes: "employeeNumber",
			want:       `{"id": "2819c223", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "701984"}}`,
		},
		{
			name:       "extension sub-attribute",
			attributes: strings.ToLower(EnterpriseUserURN) + ":manager.value",
			want:       `{"id": "2819c223", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "26118915"}}}`,
		},
		{
			name:       "whole extension by URN",
			attributes: EnterpriseUserURN,
			want: `{"id": "2819c223", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "701984", "department": "Tour Operations",
				"manager": {"value": "26118915", "displayName": "John Smith"}}}`,
		},
		{
			name:       "core URN means all core attributes",
			attributes: UserURN,
			want: `{"id": "2819c223", "userName": "bjensen@example.com",
				"name": {"formatted": "Ms. Barbara J Jensen III", "familyName": "Jensen", "givenName": "Barbara"},
				"displayName": "Babs Jensen", "active": true,
				"emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}, {"value": "babs@jensen.org", "type": "home"}],
				"groups": [{"value": "e9e30dba", "display": "Tour Guides"}]}`,
		},
		{
			name:       "request attribute only when named",
			attributes: "clearance",
			want:       `{"id": "2819c223", "urn:example:params:scim:schemas:extension:acme:2.0:User": {"clearance": "high"}}`,
		},
		{
			name:       "naming a complex attribute includes its request sub-attributes",
			attributes: "site",
			want:       `{"id": "2819c223", "urn:example:params:scim:schemas:extension:acme:2.0:User": {"site": {"code": "OSL", "secret": "x"}}}`,
		},
		{
			name:       "never attribute not returned even by URN",
			attributes: acmeURN,
			want:       `{"id": "2819c223", "urn:example:params:scim:schemas:extension:acme:2.0:User": {"badge": "B-7", "clearance": "high", "site": {"code": "OSL", "secret": "x"}}}`,
		},
		{
			name:       "meta only when named",
			attributes: "meta.lastModified",
			want:       `{"id": "2819c223", "meta": {"lastModified": "2011-05-13T04:42:34Z"}}`,
		},
		{
			name:     "excluded attributes, sub-attributes and extensions",
			excluded: "emails, name.familyName,name.formatted, " + acmeURN + ", urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager, meta, groups",
			want: `{"id": "2819c223", "externalId": "bjensen-ext", "userName": "bjensen@example.com",
				"name": {"givenName": "Barbara"}, "displayName": "Babs Jensen", "active": true,
				"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "701984", "department": "Tour Operations"}}`,
		},
		{
			name:     "excluded cannot remove always or schemas",
			excluded: "id,schemas,userName,displayName,name,emails,groups,active,externalId,meta," + EnterpriseUserURN + "," + acmeURN,
			want:     `{"id": "2819c223"}`,
		},
		{
			name:     "excluded sub-attribute in multi-valued",
			excluded: "emails.value,emails.primary",
			want: `{"id": "2819c223", "externalId": "bjensen-ext", "userName": "bjensen@example.com",
				"name": {"formatted": "Ms. Barbara J Jensen III", "familyName": "Jensen", "givenName": "Barbara"},
				"displayName": "Babs Jensen", "active": true,
				"emails": [{"type": "work"}, {"type": "home"}],
				"groups": [{"value": "e9e30dba", "display": "Tour Guides"}],
				"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "701984", "department": "Tour Operations", "manager": {"value": "26118915", "displayName": "John Smith"}},
				"urn:example:params:scim:schemas:extension:acme:2.0:User": {"badge": "B-7", "site": {"code": "OSL"}},
				"meta": {"resourceType": "User", "lastModified": "2011-05-13T04:42:34Z", "version": "W/\"a330bc54f0671c9\""}}`,
		},
		{
			name:       "excluded wins over attributes",
			attributes: "name,userName",
			excluded:   "name.givenName",
			want:       `{"id": "2819c223", "userName": "bjensen@example.com", "name": {"formatted": "Ms. Barbara J Jensen III", "familyName": "Jensen"}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := user()
			before := roundTrip(t, in)
			got, err := r.Project("User", in, SplitAttrList(tt.attributes), SplitAttrList(tt.excluded))
			if err != nil {
				t.Fatalf("Project: %v", err)
			}
			want := decode(t, tt.want)
			want["schemas"] = schemas
			if g := roundTrip(t, got); !reflect.DeepEqual(g, want) {
				gj, _ := json.Marshal(g)
				wj, _ := json.Marshal(want)
				t.Errorf("projection:\n got %s\nwant %s", gj, wj)
			}
			if after := roundTrip(t, in); !reflect.DeepEqual(before, after) {
				t.Error("Project modified its input")
			}
		})
	}
}

func TestProjectErrors(t *testing.T) {
	r := newRegistry(t,
		acmeSchema(acmeURN, &Attribute{Name: "department"}), // collides with the enterprise extension
	)
	tests := []struct {
		attributes, excluded []string
		err                  error
	}{
		{[]string{"nope"}, nil, ErrUnknownAttribute},
		{nil, []string{"name.nope"}, ErrUnknownAttribute},
		{[]string{"department"}, nil, ErrAmbiguousAttribute},
		{[]string{`emails[type eq "work"]`}, nil, ErrInvalidPath},
	}
	for _, tt := range tests {
		_, err := r.Project("User", decode(t, userJSON), tt.attributes, tt.excluded)
		if !errors.Is(err, tt.err) {
			t.Errorf("Project(%v, %v): err = %v, want %v", tt.attributes, tt.excluded, err, tt.err)
		}
	}
	if _, err := r.Project("Device", nil, nil, nil); !errors.Is(err, ErrUnknownResourceType) {
		t.Errorf("unknown resource type: err = %v", err)
	}
	// Qualified, the colliding name is fine.
	got, err := r.Project("User", decode(t, userJSON), []string{EnterpriseUserURN + ":department"}, nil)
	if err != nil || got[EnterpriseUserURN].(map[string]any)["department"] != "Tour Operations" {
		t.Errorf("qualified department: %v, %v", got, err)
	}
}

func TestProjectGroup(t *testing.T) {
	r := newRegistry(t)
	group := func() map[string]any {
		return decode(t, `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "e9e30dba",
			"displayName": "Tour Guides",
			"members": [{"value": "2819c223", "$ref": "https://example.com/v2/Users/2819c223", "display": "Babs Jensen", "type": "User"}],
			"meta": {"resourceType": "Group"}}`)
	}
	got, err := r.Project("Group", group(), nil, []string{"members"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got["members"]; ok || got["displayName"] != "Tour Guides" || got["id"] != "e9e30dba" {
		t.Errorf("excludedAttributes=members: %v", got)
	}
	got, _ = r.Project("Group", group(), []string{"members.$REF"}, nil)
	want := decode(t, `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "e9e30dba",
		"members": [{"$ref": "https://example.com/v2/Users/2819c223"}]}`)
	if g := roundTrip(t, got); !reflect.DeepEqual(g, want) {
		t.Errorf("attributes=members.$ref: %v", g)
	}
	// Typed slices of objects are projected too.
	typed := group()
	typed["members"] = []map[string]any{{"value": "a", "display": "A"}, {"display": "B"}}
	got, _ = r.Project("Group", typed, []string{"members.value"}, nil)
	if !reflect.DeepEqual(got["members"], []map[string]any{{"value": "a"}}) {
		t.Errorf("typed members: %#v", got["members"])
	}
}

func TestWants(t *testing.T) {
	r := newRegistry(t)
	tests := []struct {
		rt                   string
		attributes, excluded string
		attr                 string
		want                 bool
	}{
		{"Group", "", "", "members", true},
		{"Group", "", "members", "members", false},
		{"Group", "", "MEMBERS", "members", false},
		{"Group", "", GroupURN + ":members", "members", false},
		{"Group", "", "members.display", "members", true},
		{"Group", "displayName", "", "members", false},
		{"Group", "members.value", "", "members", true},
		{"Group", "members", "", "members.value", true},
		{"Group", "displayName", "", "id", true},
		{"Group", "", "id", "id", true},
		{"Group", "id", "", "meta", false},
		{"User", "", "", "password", false},
		{"User", "", "", "groups", true},
		{"User", "userName", "", "groups", false},
		{"User", "", EnterpriseUserURN, "manager", false},
		{"User", "", EnterpriseUserURN + ":manager", EnterpriseUserURN, true},
		{"User", "department", "", EnterpriseUserURN + ":manager.displayName", false},
		{"User", "manager", "", EnterpriseUserURN + ":manager.displayName", true},
		{"User", "", "", "unknownThing", true}, // in doubt: load
		{"User", "bogus", "", "groups", true},  // invalid lists: load
		{"Device", "", "members", "members", true},
	}
	for _, tt := range tests {
		got := r.Wants(tt.rt, SplitAttrList(tt.attributes), SplitAttrList(tt.excluded), tt.attr)
		if got != tt.want {
			t.Errorf("Wants(%s, attributes=%q, excluded=%q, %q) = %v, want %v", tt.rt, tt.attributes, tt.excluded, tt.attr, got, tt.want)
		}
	}
}

func TestSplitAttrList(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{" , ,", nil},
		{"userName", []string{"userName"}},
		{" userName , name.givenName,,emails ", []string{"userName", "name.givenName", "emails"}},
		{EnterpriseUserURN + ":department,id", []string{EnterpriseUserURN + ":department", "id"}},
	}
	for _, tt := range tests {
		if got := SplitAttrList(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("SplitAttrList(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestDefinitionsAreFresh guards the "no shared mutable state" property:
// modifying a returned definition must not leak into a registry.
func TestDefinitionsAreFresh(t *testing.T) {
	UserSchema().Attribute("userName").Returned = ReturnedNever
	CommonAttributes()[0].Returned = ReturnedNever
	r := newRegistry(t)
	s, _ := r.Schema(UserURN)
	if s.Attribute("userName").Returned != ReturnedDefault || findAttr(r.common, "id").Returned != ReturnedAlways {
		t.Error("definitions are shared")
	}
}

func TestConcurrentUse(t *testing.T) {
	r := newRegistry(t)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			reg, err := r.Extend("User", false, acmeSchema(acmeURN, &Attribute{Name: "badge"}))
			if err != nil {
				t.Error(err)
				return
			}
			for range 50 {
				if _, err := reg.Project("User", decode(t, userJSON), []string{"emails.value", "badge"}, []string{"meta"}); err != nil {
					t.Error(err)
				}
				if _, err := reg.Resolve("User", Path{Name: "name", Sub: "givenName"}); err != nil {
					t.Error(err)
				}
				_ = reg.SchemaResources(base)
			}
		})
	}
	wg.Wait()
}

func BenchmarkNewRegistry(b *testing.B) {
	for b.Loop() {
		if _, err := NewRegistry(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkExtend(b *testing.B) {
	r, _ := NewRegistry()
	s := acmeSchema(acmeURN, &Attribute{Name: "badge"})
	for b.Loop() {
		if _, err := r.Extend("User", false, s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkProject(b *testing.B) {
	r, _ := NewRegistry()
	var res map[string]any
	_ = json.Unmarshal([]byte(userJSON), &res)
	for b.Loop() {
		if _, err := r.Project("User", res, []string{"userName", "emails.value"}, nil); err != nil {
			b.Fatal(err)
		}
	}
}
