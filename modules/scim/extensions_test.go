package scim_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

const acmeURN = "urn:ietf:params:scim:schemas:extension:acme:2.0:User"

const acmeSchema = `{
  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
  "id": "urn:ietf:params:scim:schemas:extension:acme:2.0:User",
  "name": "AcmeUser",
  "description": "Acme's own user attributes",
  "attributes": [
    {"name": "managementLevel", "type": "string", "indexed": true},
    {"name": "costCenterCode", "type": "integer", "required": true, "indexed": true},
    {"name": "isContractor", "type": "boolean", "indexed": true},
    {"name": "badge", "type": "string", "uniqueness": "server", "caseExact": true},
    {"name": "hrId", "type": "string", "mutability": "immutable"},
    {"name": "riskScore", "type": "decimal", "mutability": "readOnly"},
    {"name": "pin", "type": "string", "mutability": "writeOnly"},
    {"name": "skills", "type": "string", "multiValued": true, "returned": "request"},
    {"name": "hiredAt", "type": "dateTime", "indexed": true}
  ]
}`

// acme reads an attribute of the acme extension (its URN has dots).
func (r resp) acme(attr string) any {
	m, _ := r.Body[acmeURN].(map[string]any)
	return m[attr]
}

func TestTenantExtensionSchemas(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		e := newEnv(t, bdb)
		ctx := context.Background()
		// Before any declaration, data under the URN is refused.
		e.do("POST", "/Users", user("early@acme.com", acmeURN, map[string]any{"costCenterCode": 1})).scimError(t, 400, "invalidValue")
		if _, err := e.identity.SetUserExtension(ctx, e.tenant.ID, []byte(acmeSchema)); err != nil {
			t.Fatal(err)
		}
		_, otherToken := e.newTenant("globex")

		// Discovery: only this tenant sees it.
		rt := e.do("GET", "/ResourceTypes/User", nil).must(t, 200)
		if !strings.Contains(rt.Raw, `{"schema":"`+acmeURN+`","required":false}`) {
			t.Fatalf("ResourceTypes: %s", rt.Raw)
		}
		if s := e.do("GET", "/Schemas", nil).must(t, 200); s.num("totalResults") != 4 {
			t.Fatalf("Schemas: %s", s.Raw)
		}
		s := e.do("GET", "/Schemas/"+acmeURN, nil).must(t, 200)
		if !strings.Contains(s.Raw, `"name":"costCenterCode","type":"integer"`) {
			t.Fatalf("schema: %s", s.Raw)
		}
		if r := e.doAs(otherToken, "GET", "/ResourceTypes/User", nil).must(t, 200); strings.Contains(r.Raw, acmeURN) {
			t.Fatalf("another tenant sees the extension: %s", r.Raw)
		}
		e.doAs(otherToken, "GET", "/Schemas/"+acmeURN, nil).scimError(t, 404, "")
		e.doAs(otherToken, "POST", "/Users", user("x@globex.com", acmeURN, map[string]any{"costCenterCode": 1})).scimError(t, 400, "invalidValue")

		// Create with Okta-style strings, coerced; readOnly ignored; writeOnly never returned.
		ext := map[string]any{"managementLevel": "Senior", "costCenterCode": "123", "isContractor": "True",
			"badge": "B-1", "hrId": "H1", "riskScore": 9.5, "pin": "s3cr3t-pin", "skills": []any{"go", "sql"}, "hiredAt": "2020-01-02T03:04:05Z"}
		body := user("ada@acme.com", acmeURN, ext)
		body["schemas"] = []string{"urn:ietf:params:scim:schemas:core:2.0:User", acmeURN}
		ada := e.do("POST", "/Users", body).must(t, 201)
		if ada.acme("costCenterCode") != float64(123) || ada.acme("isContractor") != true || ada.acme("managementLevel") != "Senior" ||
			ada.acme("riskScore") != nil || ada.acme("pin") != nil || ada.acme("skills") != nil || ada.acme("hiredAt") != "2020-01-02T03:04:05Z" {
			t.Fatalf("created: %s", ada.Raw)
		}
		if !strings.Contains(ada.Raw, `"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","`+acmeURN+`"]`) {
			t.Fatalf("schemas: %s", ada.Raw)
		}
		id := ada.str("id")
		got := e.do("GET", "/Users/"+id+"?attributes="+url.QueryEscape(acmeURN+":skills,userName"), nil).must(t, 200)
		if sk, _ := got.acme("skills").([]any); len(sk) != 2 || got.acme("costCenterCode") != nil {
			t.Fatalf("projection: %s", got.Raw)
		}
		got = e.do("GET", "/Users/"+id+"?excludedAttributes="+url.QueryEscape(acmeURN+":managementLevel"), nil).must(t, 200)
		if got.acme("managementLevel") != nil || got.acme("costCenterCode") != float64(123) {
			t.Fatalf("excludedAttributes: %s", got.Raw)
		}

		// writeOnly values are never copied into the audit log, before or after a change.
		e.do("PATCH", "/Users/"+id, patchOp(op("replace", acmeURN+":pin", "0ther-pin"))).must(t, 200)
		for _, secret := range []string{"s3cr3t-pin", "0ther-pin"} {
			n, err := e.db.NewSelect().Table("audit_events").Where("CAST(changes AS text) LIKE ?", "%"+secret+"%").Count(ctx)
			if err != nil || n != 0 {
				t.Fatalf("the writeOnly value %q is in %d audit events (%v)", secret, n, err)
			}
		}
		if n, _ := e.db.NewSelect().Table("audit_events").Where("CAST(changes AS text) LIKE ?", "%(set)%").Count(ctx); n != 2 {
			t.Fatalf("%d audit events record the writeOnly value as set, want 2", n)
		}

		// Validation.
		r := e.do("POST", "/Users", user("bob@acme.com", acmeURN, map[string]any{"managementLevel": "x"})).scimError(t, 400, "invalidValue")
		if !strings.Contains(r.Raw, "costCenterCode") {
			t.Fatalf("required: %s", r.Raw)
		}
		r = e.do("POST", "/Users", user("bob@acme.com", acmeURN, map[string]any{"costCenterCode": "lots"})).scimError(t, 400, "invalidValue")
		if !strings.Contains(r.Raw, "costCenterCode") {
			t.Fatalf("wrong type: %s", r.Raw)
		}
		r = e.do("POST", "/Users", user("bob@acme.com", acmeURN, map[string]any{"costCenterCode": 1, "shoeSize": 44})).scimError(t, 400, "invalidValue")
		if !strings.Contains(r.Raw, "shoeSize") {
			t.Fatalf("undeclared attribute: %s", r.Raw)
		}
		unknown := user("bob@acme.com")
		unknown["schemas"] = []string{"urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:other:2.0:User"}
		e.do("POST", "/Users", unknown).scimError(t, 400, "invalidValue")
		e.do("POST", "/Users", user("bob@acme.com", acmeURN, map[string]any{"costCenterCode": 1, "badge": "B-1"})).scimError(t, 409, "uniqueness")
		bob := e.do("POST", "/Users", user("bob@acme.com", acmeURN, map[string]any{"costCenterCode": 50, "badge": "b-1", "isContractor": false, "hiredAt": "2024-06-01T00:00:00Z"})).must(t, 201)
		e.do("POST", "/Users", user("cy@acme.com")).must(t, 201) // no extension data: not held to it

		// PATCH: URN paths, a no-path value keyed by the URN, readOnly and immutable.
		p := e.do("PATCH", "/Users/"+id, patchOp(op("replace", acmeURN+":costCenterCode", "200"))).must(t, 200)
		if p.acme("costCenterCode") != float64(200) || p.acme("managementLevel") != "Senior" {
			t.Fatalf("patch path: %s", p.Raw)
		}
		p = e.do("PATCH", "/Users/"+id, patchOp(op("replace", "", map[string]any{acmeURN: map[string]any{"managementLevel": "Lead"}}))).must(t, 200)
		if p.acme("managementLevel") != "Lead" || p.acme("costCenterCode") != float64(200) {
			t.Fatalf("patch no path: %s", p.Raw)
		}
		e.do("PATCH", "/Users/"+id, patchOp(op("replace", acmeURN+":riskScore", 1))).scimError(t, 400, "mutability")
		e.do("PATCH", "/Users/"+id, patchOp(op("replace", acmeURN+":hrId", "H2"))).scimError(t, 400, "mutability")
		e.do("PATCH", "/Users/"+id, patchOp(op("replace", acmeURN+":isContractor", "maybe"))).scimError(t, 400, "invalidValue")
		e.do("PATCH", "/Users/"+id, patchOp(op("remove", acmeURN+":costCenterCode", nil))).scimError(t, 400, "invalidValue")
		e.do("PATCH", "/Users/"+bob.str("id"), patchOp(op("replace", acmeURN+":badge", "B-1"))).scimError(t, 409, "uniqueness")
		// An undeclared attribute is invalidValue naming it, whichever way PATCH sends it
		// (as POST and PUT answer it).
		for name, o := range map[string]map[string]any{
			"path":               op("replace", acmeURN+":shoeSize", 44),
			"remove path":        op("remove", acmeURN+":shoeSize", nil),
			"no path, URN key":   op("add", "", map[string]any{acmeURN: map[string]any{"shoeSize": 44}}),
			"no path, attr key":  op("replace", "", map[string]any{acmeURN + ":shoeSize": 44}),
			"undeclared URN":     op("add", "urn:ietf:params:scim:schemas:extension:other:2.0:User:shoeSize", 44),
			"undeclared URN key": op("add", "", map[string]any{"urn:ietf:params:scim:schemas:extension:other:2.0:User": map[string]any{"shoeSize": 44}}),
		} {
			r := e.do("PATCH", "/Users/"+id, patchOp(o)).scimError(t, 400, "invalidValue")
			if !strings.Contains(r.Raw, "shoeSize") && !strings.Contains(r.Raw, "extension:other:2.0:User") {
				t.Errorf("PATCH by %s: the error does not name the attribute: %s", name, r.Raw)
			}
		}

		// PUT: hrId kept (immutable, same value), a different one refused.
		put := user("ada@acme.com", acmeURN, map[string]any{"costCenterCode": 300, "hrId": "H1", "isContractor": true})
		p = e.do("PUT", "/Users/"+id, put).must(t, 200)
		if p.acme("costCenterCode") != float64(300) || p.acme("managementLevel") != nil || p.acme("hrId") != "H1" {
			t.Fatalf("put: %s", p.Raw)
		}
		put[acmeURN] = map[string]any{"costCenterCode": 300, "hrId": "H9"}
		e.do("PUT", "/Users/"+id, put).scimError(t, 400, "mutability")

		// Filters and sorting through the typed columns.
		count := func(f string) int {
			t.Helper()
			return e.do("GET", "/Users?filter="+url.QueryEscape(f), nil).must(t, 200).num("totalResults")
		}
		for f, want := range map[string]int{
			acmeURN + ":costCenterCode gt 100":                       1,
			acmeURN + ":costCenterCode le 100":                       1,
			acmeURN + ":isContractor eq true":                        1,
			acmeURN + ":isContractor eq false":                       1,
			acmeURN + ":costCenterCode pr":                           2,
			"not (" + acmeURN + ":costCenterCode pr)":                1,
			acmeURN + `:hiredAt gt "2022-01-01T00:00:00Z"`:           1,
			acmeURN + `:managementLevel eq "x" or userName sw "cy@"`: 1,
		} {
			if got := count(f); got != want {
				t.Errorf("%s: %d users, want %d", f, got, want)
			}
		}
		e.do("GET", "/Users?filter="+url.QueryEscape(acmeURN+`:badge eq "B-1"`), nil).scimError(t, 400, "invalidFilter") // not indexed
		e.do("GET", "/Users?filter="+url.QueryEscape(acmeURN+`:nope eq 1`), nil).scimError(t, 400, "invalidFilter")
		e.do("GET", "/Users?filter="+url.QueryEscape(acmeURN+`:costCenterCode gt "a"`), nil).scimError(t, 400, "invalidFilter")
		l := e.do("GET", "/Users?sortBy="+url.QueryEscape(acmeURN+":costCenterCode")+"&sortOrder=descending", nil).must(t, 200)
		if got := get(l.Body, "Resources.0.userName"); got != "cy@acme.com" { // unassigned first descending
			t.Fatalf("sort desc: %s", l.Raw)
		}
		if get(l.Body, "Resources.1.userName") != "ada@acme.com" || get(l.Body, "Resources.2.userName") != "bob@acme.com" {
			t.Fatalf("sort desc: %s", l.Raw)
		}
		l = e.do("GET", "/Users?count=1&cursor=&sortBy="+url.QueryEscape(acmeURN+":costCenterCode"), nil).must(t, 200)
		if get(l.Body, "Resources.0.userName") != "bob@acme.com" {
			t.Fatalf("sort asc: %s", l.Raw)
		}
		next, _ := l.Body["nextCursor"].(string)
		l = e.do("GET", "/Users?count=1&cursor="+url.QueryEscape(next)+"&sortBy="+url.QueryEscape(acmeURN+":costCenterCode"), nil).must(t, 200)
		if get(l.Body, "Resources.0.userName") != "ada@acme.com" {
			t.Fatalf("sort asc page 2: %s", l.Raw)
		}

		// Redeclaring without an attribute drops its values; removing drops the extension.
		if _, err := e.identity.SetUserExtension(ctx, e.tenant.ID, []byte(strings.Replace(acmeSchema,
			`{"name": "isContractor", "type": "boolean", "indexed": true},`, "", 1))); err != nil {
			t.Fatal(err)
		}
		if g := e.do("GET", "/Users/"+id, nil).must(t, 200); g.acme("isContractor") != nil || g.acme("costCenterCode") != float64(300) {
			t.Fatalf("after redeclaring: %s", g.Raw)
		}
		if err := e.identity.RemoveUserExtension(ctx, e.tenant.ID, acmeURN); err != nil {
			t.Fatal(err)
		}
		if g := e.do("GET", "/Users/"+id, nil).must(t, 200); strings.Contains(g.Raw, acmeURN) {
			t.Fatalf("after removal: %s", g.Raw)
		}
		if s := e.do("GET", "/Schemas", nil).must(t, 200); s.num("totalResults") != 3 {
			t.Fatalf("Schemas after removal: %s", s.Raw)
		}
		e.do("PATCH", "/Users/"+id, patchOp(op("replace", acmeURN+":costCenterCode", 1))).scimError(t, 400, "invalidValue")
	})
}

func TestTenantExtensionDeclarationIsStrict(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		e := newEnv(t, bdb)
		many := `{"id":"urn:ietf:params:scim:schemas:extension:big:2.0:User","attributes":[` +
			strings.Repeat(`{"name":"a"},`, 50) + `{"name":"b"}]}`
		for name, def := range map[string]string{
			"enterprise":  `{"id":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User","attributes":[{"name":"x"}]}`,
			"core":        `{"id":"urn:ietf:params:scim:schemas:core:2.0:User","attributes":[{"name":"x"}]}`,
			"not a user":  `{"id":"urn:ietf:params:scim:schemas:extension:acme:2.0:Group","attributes":[{"name":"x"}]}`,
			"bad name":    `{"id":"urn:ietf:params:scim:schemas:extension:acme:2.0:User","attributes":[{"name":"1x"}]}`,
			"duplicate":   `{"id":"urn:ietf:params:scim:schemas:extension:acme:2.0:User","attributes":[{"name":"x"},{"name":"X"}]}`,
			"complex":     `{"id":"urn:ietf:params:scim:schemas:extension:acme:2.0:User","attributes":[{"name":"x","type":"complex"}]}`,
			"mutability":  `{"id":"urn:ietf:params:scim:schemas:extension:acme:2.0:User","attributes":[{"name":"x","mutability":"sometimes"}]}`,
			"unknown key": `{"id":"urn:ietf:params:scim:schemas:extension:acme:2.0:User","attributes":[{"name":"x","colour":"red"}]}`,
			"too many":    many,
			"none":        `{"id":"urn:ietf:params:scim:schemas:extension:acme:2.0:User","attributes":[]}`,
			"quote":       `{"id":"urn:ietf:params:scim:schemas:extension:ac'me:2.0:User","attributes":[{"name":"x"}]}`,
		} {
			if _, err := e.identity.SetUserExtension(context.Background(), e.tenant.ID, []byte(def)); err == nil {
				t.Errorf("%s: accepted", name)
			}
		}
	})
}
