package scim_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

func TestDiscovery(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		e := newEnv(t, bdb)
		spc := e.do("GET", "/ServiceProviderConfig", nil).must(t, 200)
		if get(spc.Body, "patch.supported") != true || get(spc.Body, "filter.maxResults") != float64(1000) ||
			get(spc.Body, "bulk.supported") != true || get(spc.Body, "etag.supported") != true ||
			get(spc.Body, "authenticationSchemes.0.type") != "oauthbearertoken" {
			t.Fatalf("ServiceProviderConfig: %s", spc.Raw)
		}
		rts := e.do("GET", "/ResourceTypes", nil).must(t, 200)
		if rts.num("totalResults") != 2 || !strings.Contains(rts.Raw, `"endpoint":"/Users"`) || !strings.Contains(rts.Raw, "enterprise:2.0:User") {
			t.Fatalf("ResourceTypes: %s", rts.Raw)
		}
		e.do("GET", "/ResourceTypes/User", nil).must(t, 200)
		e.do("GET", "/ResourceTypes/Widget", nil).scimError(t, 404, "")
		schemas := e.do("GET", "/Schemas", nil).must(t, 200)
		if schemas.num("totalResults") != 3 {
			t.Fatalf("Schemas: %s", schemas.Raw)
		}
		u := e.do("GET", "/Schemas/urn:ietf:params:scim:schemas:core:2.0:User", nil).must(t, 200)
		if !strings.Contains(u.Raw, `"name":"userName"`) || !strings.Contains(u.Raw, `"name":"x509Certificates"`) {
			t.Fatalf("User schema: %s", u.Raw)
		}
		e.do("GET", "/Nope", nil).scimError(t, 404, "")
	})
}

func TestAuthentication(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		e := newEnv(t, bdb)
		r := e.doAs("", "GET", "/Users", nil).scimError(t, 401, "")
		if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Fatal("no WWW-Authenticate challenge")
		}
		e.doAs("gatehouse_scim_nope", "GET", "/Users", nil).scimError(t, 401, "")
		e.doAs(e.token+"x", "GET", "/ServiceProviderConfig", nil).scimError(t, 401, "")
		// Tenant B's token never sees tenant A's users.
		created := e.do("POST", "/Users", user("ada@acme.com")).must(t, 201)
		_, otherToken := e.newTenant("globex", "user_groups")
		e.doAs(otherToken, "GET", "/Users/"+created.str("id"), nil).scimError(t, 404, "")
		if l := e.doAs(otherToken, "GET", "/Users", nil).must(t, 200); l.num("totalResults") != 0 {
			t.Fatalf("tenant B lists tenant A's users: %s", l.Raw)
		}
		e.doAs(otherToken, "DELETE", "/Users/"+created.str("id"), nil).scimError(t, 404, "")
		// A tenant without the user_groups feature gets 403 on /Groups.
		_, noGroups := e.newTenant("initech")
		e.doAs(noGroups, "GET", "/Groups", nil).scimError(t, 403, "")
		e.doAs(noGroups, "GET", "/Users", nil).must(t, 200)
	})
}

// TestOktaUserLifecycle follows Okta's SCIM 2.0 reference: match by userName, create
// with a password and groups: [], read, GET-then-PUT, deactivate by PATCH.
func TestOktaUserLifecycle(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		e := newEnv(t, bdb)
		none := e.do("GET", `/Users?filter=userName%20eq%20%22isaac.brock%40example.com%22&startIndex=1&count=100`, nil).must(t, 200)
		if none.num("totalResults") != 0 || none.num("startIndex") != 1 || len(none.resources()) != 0 {
			t.Fatalf("empty search: %s", none.Raw)
		}
		body := map[string]any{
			"schemas":     []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
			"userName":    "isaac.brock@example.com",
			"name":        map[string]any{"givenName": "Isaac", "familyName": "Brock"},
			"emails":      []any{map[string]any{"primary": true, "value": "isaac.brock@example.com", "type": "work"}},
			"displayName": "Isaac Brock", "locale": "en-US", "externalId": "00ujl29u0le5T6Aj10h7",
			"groups": []any{}, "password": "1mz050nq", "active": true,
			"id":   "client-chosen-id-is-ignored",
			"meta": map[string]any{"resourceType": "Bogus"},
		}
		c := e.do("POST", "/Users", body).must(t, 201)
		id := c.str("id")
		if id == "" || id == "client-chosen-id-is-ignored" || c.Header.Get("Location") != e.base+"/Users/"+id ||
			c.str("meta.location") != e.base+"/Users/"+id || c.str("meta.resourceType") != "User" ||
			c.str("meta.version") == "" || c.Header.Get("ETag") != c.str("meta.version") || c.str("meta.created") == "" {
			t.Fatalf("create response: %s %v", c.Raw, c.Header)
		}
		if strings.Contains(c.Raw, "1mz050nq") || strings.Contains(c.Raw, "password") {
			t.Fatalf("password returned: %s", c.Raw)
		}
		if c.str("name.givenName") != "Isaac" || c.str("emails.0.value") != "isaac.brock@example.com" || get(c.Body, "active") != true {
			t.Fatalf("create response: %s", c.Raw)
		}
		// Okta matches by userName; matching is case-insensitive.
		found := e.do("GET", `/Users?filter=userName%20eq%20%22ISAAC.BROCK%40EXAMPLE.COM%22`, nil).must(t, 200)
		if found.num("totalResults") != 1 || get(found.Body, "Resources.0.id") != id {
			t.Fatalf("case-insensitive userName: %s", found.Raw)
		}
		e.do("POST", "/Users", user("Isaac.Brock@example.com")).scimError(t, 409, "uniqueness")

		// GET then PUT with a change.
		got := e.do("GET", "/Users/"+id, nil).must(t, 200)
		put := got.Body
		put["name"] = map[string]any{"givenName": "Isaac", "familyName": "Brock-Smith"}
		put["title"] = "Bassist"
		p := e.do("PUT", "/Users/"+id, put).must(t, 200)
		if p.str("name.familyName") != "Brock-Smith" || p.str("title") != "Bassist" || p.str("meta.version") == got.str("meta.version") {
			t.Fatalf("PUT: %s", p.Raw)
		}
		put["id"] = "another"
		e.do("PUT", "/Users/"+id, put).scimError(t, 400, "mutability")

		// Okta deactivates; the user stays readable with active false.
		e.do("PATCH", "/Users/"+id, patchOp(op("replace", "", map[string]any{"active": false}))).must(t, 200)
		if g := e.do("GET", "/Users/"+id, nil).must(t, 200); get(g.Body, "active") != false {
			t.Fatalf("after deactivation: %s", g.Raw)
		}
		if l := e.do("GET", `/Users?filter=active%20eq%20false`, nil).must(t, 200); l.num("totalResults") != 1 {
			t.Fatalf("active eq false: %s", l.Raw)
		}

		e.do("DELETE", "/Users/"+id, nil).must(t, 204)
		e.do("GET", "/Users/"+id, nil).scimError(t, 404, "")
		e.do("DELETE", "/Users/"+id, nil).scimError(t, 404, "")
	})
}

// TestEntraUserRequests replays the requests Microsoft documents for Entra ID
// provisioning, in both PATCH dialects.
func TestEntraUserRequests(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		e := newEnv(t, bdb)
		// Test Connection: a random GUID must give 200 and an empty list, never 404.
		tc := e.do("GET", `/Users?filter=userName+eq+%22Test_User_dfeef4c5-5681-4387-b016-bdf221e82081%22`, nil).must(t, 200)
		if tc.num("totalResults") != 0 {
			t.Fatalf("test connection: %s", tc.Raw)
		}
		body := `{
			"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
			"externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
			"userName": "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1",
			"active": true,
			"emails": [{"primary": true, "type": "work", "value": "Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com"}],
			"meta": {"resourceType": "User"},
			"name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
			"roles": [],
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D", "manager": "mgr-123"}
		}`
		c := e.do("POST", "/Users", body).must(t, 201)
		id := c.str("id")
		if c.ent("department") != "R&D" || c.ent("manager.value") != "mgr-123" {
			t.Fatalf("enterprise extension: %s", c.Raw)
		}
		for _, f := range []string{
			`externalId+eq+%220a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef%22`,
			`emails%5Btype+eq+%22work%22%5D.value+eq+%22test_user_fd0ea19b-0777-472c-9f96-4f70d2226f2e%40testuser.com%22`,
			`urn%3Aietf%3Aparams%3Ascim%3Aschemas%3Aextension%3Aenterprise%3A2.0%3AUser%3Adepartment+eq+%22r%26d%22`,
		} {
			if l := e.do("GET", "/Users?filter="+f, nil).must(t, 200); l.num("totalResults") != 1 {
				t.Fatalf("filter %s: %s", f, l.Raw)
			}
		}
		// externalId is caseExact.
		if l := e.do("GET", `/Users?filter=externalId+eq+%220A21F0F2-8D2A-4F8E-BF98-7363C4AED4EF%22`, nil).must(t, 200); l.num("totalResults") != 0 {
			t.Fatalf("externalId matched case-insensitively: %s", l.Raw)
		}

		// Documented PATCH: replace a filtered email and the family name.
		r := e.do("PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
			{"op":"Replace","path":"emails[type eq \"work\"].value","value":"updatedEmail@microsoft.com"},
			{"op":"Replace","path":"name.familyName","value":"updatedFamilyName"}]}`).must(t, 200)
		if r.str("emails.0.value") != "updatedEmail@microsoft.com" || r.str("name.familyName") != "updatedFamilyName" || r.str("name.givenName") != "givenName" {
			t.Fatalf("patch: %s", r.Raw)
		}
		// Both dialects of deactivation, and the manager as a bare id (aadOptscim062020).
		r = e.do("PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"False"}]}`).must(t, 200)
		if get(r.Body, "active") != false {
			t.Fatalf("string False: %s", r.Raw)
		}
		r = e.do("PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":true},
			{"op":"add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":"mgr-456"}]}`).must(t, 200)
		if get(r.Body, "active") != true || r.ent("manager.value") != "mgr-456" {
			t.Fatalf("flag dialect: %s", r.Raw)
		}
		r = e.do("PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","value":{"active":"False","displayName":"Tester"}}]}`).must(t, 200)
		if get(r.Body, "active") != false || r.str("displayName") != "Tester" {
			t.Fatalf("no-path replace: %s", r.Raw)
		}
		e.do("PATCH", "/Users/"+id, `{"Operations":[{"op":"Replace","path":"active","value":"maybe"}]}`).scimError(t, 400, "invalidValue")
		e.do("PATCH", "/Users/"+id, `{"Operations":[{"op":"remove"}]}`).scimError(t, 400, "noTarget")
		e.do("PATCH", "/Users/"+id, `{"Operations":[{"op":"replace","path":"nonsense","value":1}]}`).scimError(t, 400, "invalidPath")
		e.do("PATCH", "/Users/"+id, `{"Operations":[]}`).must(t, 200)
		// All or nothing: a failing second operation leaves the first unapplied.
		e.do("PATCH", "/Users/"+id, `{"Operations":[{"op":"replace","path":"title","value":"Boss"},{"op":"replace","path":"active","value":"maybe"}]}`).scimError(t, 400, "invalidValue")
		if g := e.do("GET", "/Users/"+id, nil).must(t, 200); g.str("title") != "" {
			t.Fatalf("partial PATCH applied: %s", g.Raw)
		}
	})
}

func TestUserValidation(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		e := newEnv(t, bdb)
		e.do("POST", "/Users", `{"userName":`).scimError(t, 400, "invalidSyntax")
		e.do("POST", "/Users", `[]`).scimError(t, 400, "invalidSyntax")
		e.do("POST", "/Users", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}}).scimError(t, 400, "invalidValue")
		e.do("POST", "/Users", user("a@b.c", "active", "perhaps")).scimError(t, 400, "invalidValue")
		e.do("POST", "/Users", user("a@b.c", "favouriteColour", "blue")).scimError(t, 400, "invalidValue")
		e.do("POST", "/Users", user("a@b.c", "urn:example:unknown:1.0:User", map[string]any{"x": 1})).scimError(t, 400, "invalidValue")
		e.do("POST", "/Users", user("a@b.c", "schemas", []string{"urn:ietf:params:scim:schemas:core:2.0:Group"})).scimError(t, 400, "invalidValue")
		big := strings.Repeat("x", 70<<10)
		e.do("POST", "/Users", user("a@b.c", "title", big)).scimError(t, 413, "")
		r := e.do("POST", "/Users", `{"userName":"x"}`, "Content-Type", "text/plain")
		r.scimError(t, 400, "invalidSyntax")
		// Attribute names match case-insensitively; null means unassigned.
		c := e.do("POST", "/Users", map[string]any{"USERNAME": "Case@Example.com", "Title": nil, "NAME": map[string]any{"GIVENNAME": "C"}}).must(t, 201)
		if c.str("userName") != "Case@Example.com" || c.str("name.givenName") != "C" {
			t.Fatalf("case-insensitive attributes: %s", c.Raw)
		}
		// attributes / excludedAttributes.
		g := e.do("GET", "/Users/"+c.str("id")+"?attributes=userName", nil).must(t, 200)
		if g.str("id") == "" || g.str("userName") == "" || get(g.Body, "name") != nil {
			t.Fatalf("attributes=userName: %s", g.Raw)
		}
		g = e.do("GET", "/Users/"+c.str("id")+"?excludedAttributes=name,meta", nil).must(t, 200)
		if get(g.Body, "name") != nil || get(g.Body, "meta") != nil || g.str("userName") == "" {
			t.Fatalf("excludedAttributes: %s", g.Raw)
		}
		// If-None-Match gives 304; a stale If-Match gives 412.
		etag := g.Header.Get("ETag")
		if r := e.do("GET", "/Users/"+c.str("id"), nil, "If-None-Match", etag); r.Status != http.StatusNotModified {
			t.Fatalf("If-None-Match: %d", r.Status)
		}
		e.do("PATCH", "/Users/"+c.str("id"), patchOp(op("replace", "title", "A")), "If-Match", etag).must(t, 200)
		e.do("PATCH", "/Users/"+c.str("id"), patchOp(op("replace", "title", "B")), "If-Match", etag).scimError(t, 412, "")
	})
}

// TestConcurrentCreates: 50 simultaneous creates of one userName give exactly one 201.
func TestConcurrentCreates(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		e := newEnv(t, bdb)
		var wg sync.WaitGroup
		codes := make(chan int, 50)
		for i := range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				codes <- e.do("POST", "/Users", user(fmt.Sprintf("Same%s@example.com", strings.Repeat("", i)))).Status
			}()
		}
		wg.Wait()
		close(codes)
		count := map[int]int{}
		for c := range codes {
			count[c]++
		}
		if count[201] != 1 || count[409] != 49 {
			t.Fatalf("status counts %v, want one 201 and 49 409", count)
		}
	})
}

// attributes / excludedAttributes name extension attributes by their full URN path
// (RFC 7644 §3.10), on single reads, lists and .search.
func TestExtensionAttributeProjection(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		e := newEnv(t, bdb)
		manager := e.do("POST", "/Users", map[string]any{"userName": "boss@acme.test"}).must(t, 201).str("id")
		u := e.do("POST", "/Users", map[string]any{"schemas": []string{userSchema, enterpriseURN}, "userName": "ada@acme.test",
			"title": "Engineer", enterpriseURN: map[string]any{"department": "R&D", "costCenter": "42", "manager": map[string]any{"value": manager}}}).must(t, 201)
		id := u.str("id")

		only := e.do("GET", "/Users/"+id+"?attributes="+enterpriseURN+":department", nil).must(t, 200)
		ext, _ := only.Body[enterpriseURN].(map[string]any)
		if only.ent("department") != "R&D" || len(ext) != 1 || only.str("title") != "" || only.str("userName") != "" || only.str("id") != id {
			t.Fatalf("attributes=<urn>:department: %s", only.Raw)
		}
		whole := e.do("GET", "/Users/"+id+"?attributes="+enterpriseURN, nil).must(t, 200)
		if whole.ent("department") != "R&D" || whole.ent("costCenter") != "42" || whole.str("title") != "" {
			t.Fatalf("attributes=<urn>: %s", whole.Raw)
		}
		without := e.do("GET", "/Users/"+id+"?excludedAttributes="+enterpriseURN+":manager", nil).must(t, 200)
		if get(without.Body[enterpriseURN], "manager") != nil || without.ent("department") != "R&D" || without.str("title") != "Engineer" {
			t.Fatalf("excludedAttributes=<urn>:manager: %s", without.Raw)
		}
		list := e.do("GET", "/Users?filter=userName+eq+%22ada@acme.test%22&attributes="+enterpriseURN+":costCenter", nil).must(t, 200)
		if r := list.resources(); len(r) != 1 || get(r[0], "userName") != nil || get(r[0].(map[string]any)[enterpriseURN], "costCenter") != "42" {
			t.Fatalf("list with attributes=<urn>:costCenter: %s", list.Raw)
		}
		search := e.do("POST", "/Users/.search", map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:SearchRequest"},
			"filter": `userName eq "ada@acme.test"`, "excludedAttributes": []string{enterpriseURN}}).must(t, 200)
		if r := search.resources(); len(r) != 1 || r[0].(map[string]any)[enterpriseURN] != nil || get(r[0], "title") != "Engineer" {
			t.Fatalf(".search excluding the extension: %s", search.Raw)
		}
		e.do("GET", "/Users/"+id+"?attributes="+enterpriseURN+":nope", nil).scimError(t, 400, "invalidValue")
	})
}
