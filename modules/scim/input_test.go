package scim_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"maps"
	"net/url"
	"testing"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// TestNULCharactersAreRefused: JSON lets a string carry U+0000 ("\u0000"), which no
// database column can hold; such data is the client's mistake (400 invalidValue), not
// the server's (500), however it arrives.
func TestNULCharactersAreRefused(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		e := newEnv(t, bdb)
		ada := e.do("POST", "/Users", user("ada@acme.com")).must(t, 201)
		id := ada.str("id")
		grp := e.do("POST", "/Groups", group("Eng", id)).must(t, 201)
		gid := grp.str("id")
		ada = e.do("GET", "/Users/"+id, nil).must(t, 200) // joining Eng changed its version

		e.do("POST", "/Users", user("nul\x00@acme.com")).scimError(t, 400, "invalidValue")
		e.do("POST", "/Users", user("bob@acme.com", "externalId", "a\x00b")).scimError(t, 400, "invalidValue")
		e.do("POST", "/Users", user("bob@acme.com", enterpriseURN, map[string]any{"department": "R\x00D"})).scimError(t, 400, "invalidValue")
		e.do("PUT", "/Users/"+id, user("ada@acme.com", "title", "\x00")).scimError(t, 400, "invalidValue")
		e.do("PATCH", "/Users/"+id, patchOp(op("replace", "displayName", "a\x00"))).scimError(t, 400, "invalidValue")
		e.do("PATCH", "/Users/"+id, patchOp(op("replace", "", map[string]any{"name.givenName": "\x00"}))).scimError(t, 400, "invalidValue")
		e.do("POST", "/Groups", group("G\x00")).scimError(t, 400, "invalidValue")
		e.do("PATCH", "/Groups/"+gid, patchOp(op("add", "members", []any{map[string]any{"value": "a\x00"}}))).scimError(t, 400, "invalidValue")
		e.do("PATCH", "/Groups/"+gid, patchOp(op("remove", "members", []any{map[string]any{"value": "a\x00"}}))).scimError(t, 400, "invalidValue")

		// Nothing was written.
		if g := e.do("GET", "/Groups/"+gid, nil).must(t, 200); g.str("meta.version") != grp.str("meta.version") {
			t.Fatalf("group changed: %s", g.Raw)
		}
		if g := e.do("GET", "/Users/"+id, nil).must(t, 200); g.str("meta.version") != ada.str("meta.version") {
			t.Fatalf("user changed: %s", g.Raw)
		}
		if l := e.do("GET", "/Users?filter="+url.QueryEscape(`userName sw "nul"`), nil).must(t, 200); l.num("totalResults") != 0 {
			t.Fatalf("user created: %s", l.Raw)
		}
	})
}

// TestNULCharactersInLookups: a filter literal, a resource id in the URL or a Bulk
// path, a member filter or a cursor holding U+0000 cannot name anything stored; each is
// answered as the client's mistake or as "not found", never as a 500.
func TestNULCharactersInLookups(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		e := newEnv(t, bdb)
		id := e.do("POST", "/Users", user("ada@acme.com", "title", "Engineer")).must(t, 201).str("id")
		e.do("POST", "/Users", user("bob@acme.com", "title", "Engineer")).must(t, 201)
		grp := e.do("POST", "/Groups", group("Eng", id)).must(t, 201)
		gid := grp.str("id")

		e.do("GET", "/Users?filter="+url.QueryEscape(`userName eq "ada\u0000"`), nil).scimError(t, 400, "invalidFilter")
		e.do("GET", "/Users?filter="+url.QueryEscape(`emails[value co "\u0000"]`), nil).scimError(t, 400, "invalidFilter")
		e.do("GET", "/Groups?filter="+url.QueryEscape(`displayName sw "E\u0000"`), nil).scimError(t, 400, "invalidFilter")
		e.do("GET", "/Groups?filter="+url.QueryEscape(`members.value eq "\u0000"`), nil).scimError(t, 400, "invalidFilter")

		for _, m := range []string{"GET", "DELETE"} {
			e.do(m, "/Users/a%00b", nil).scimError(t, 404, "")
			e.do(m, "/Groups/a%00b", nil).scimError(t, 404, "")
		}
		e.do("PATCH", "/Users/a%00b", patchOp(op("replace", "title", "x"))).scimError(t, 404, "")
		e.do("PUT", "/Groups/a%00b", group("Eng")).scimError(t, 404, "")
		bulk := e.do("POST", "/Bulk", map[string]any{
			"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:BulkRequest"},
			"Operations": []any{map[string]any{"method": "DELETE", "path": "/Users/a\x00b"}},
		}).must(t, 200)
		if s := bulk.str("Operations.0.status"); s != "404" {
			t.Fatalf("bulk: %s", bulk.Raw)
		}

		// Removing a member that cannot exist removes nobody.
		e.do("PATCH", "/Groups/"+gid, patchOp(op("remove", `members[value eq "a\u0000"]`, nil))).must(t, 204)
		if g := e.do("GET", "/Groups/"+gid, nil).must(t, 200); len(g.Body["members"].([]any)) != 1 {
			t.Fatalf("members: %s", g.Raw)
		}

		// A cursor altered to carry U+0000 (its binding is not secret) is not ours.
		page := e.do("GET", "/Users?cursor=&count=1&sortBy=title", nil).must(t, 200)
		raw, err := base64.RawURLEncoding.DecodeString(page.str("nextCursor"))
		if err != nil {
			t.Fatal(err)
		}
		var c map[string]any
		if err := json.Unmarshal(raw, &c); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"v", "i"} {
			forged := maps.Clone(c)
			forged[k] = "x\x00"
			b, _ := json.Marshal(forged)
			e.do("GET", "/Users?count=1&sortBy=title&cursor="+base64.RawURLEncoding.EncodeToString(b), nil).scimError(t, 400, "invalidCursor")
		}
	})
}

// TestDateTimesOutsideTheCalendar: RFC 3339 lets a dateTime name year 0000, or a year
// past 9999 through its offset ("9999-12-31T23:59:59-14:00" is 10000-01-01 UTC);
// PostgreSQL has no year 0 and neither database reads a five-digit year back. Such a
// value is 400 invalidValue (data) or invalidFilter (a filter), never a 500 or a value
// that compares wrongly.
func TestDateTimesOutsideTheCalendar(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		e := newEnv(t, bdb)
		if _, err := e.identity.SetUserExtension(context.Background(), e.tenant.ID, []byte(acmeSchema)); err != nil {
			t.Fatal(err)
		}
		id := e.do("POST", "/Users", user("ada@acme.com", acmeURN, map[string]any{"costCenterCode": 1, "hiredAt": "0001-01-01T00:00:00Z"})).must(t, 201).str("id")
		bad := []string{"0000-01-01T00:00:00Z", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"}
		for _, v := range bad {
			e.do("POST", "/Users", user("bob@acme.com", acmeURN, map[string]any{"costCenterCode": 1, "hiredAt": v})).scimError(t, 400, "invalidValue")
			e.do("PATCH", "/Users/"+id, patchOp(op("replace", acmeURN+":hiredAt", v))).scimError(t, 400, "invalidValue")
			for _, f := range []string{`meta.created gt "` + v + `"`, `meta.lastModified lt "` + v + `"`, acmeURN + `:hiredAt ge "` + v + `"`} {
				e.do("GET", "/Users?filter="+url.QueryEscape(f), nil).scimError(t, 400, "invalidFilter")
			}
		}
		// Nor can a cursor altered to seek from such a time.
		e.do("POST", "/Users", user("bob@acme.com")).must(t, 201)
		page := e.do("GET", "/Users?cursor=&count=1&sortBy=meta.lastModified", nil).must(t, 200)
		raw, _ := base64.RawURLEncoding.DecodeString(page.str("nextCursor"))
		var c map[string]any
		if err := json.Unmarshal(raw, &c); err != nil {
			t.Fatalf("cursor %q: %v", raw, err)
		}
		c["v"] = "0000-01-01T00:00:00Z"
		b, _ := json.Marshal(c)
		e.do("GET", "/Users?count=1&sortBy=meta.lastModified&cursor="+base64.RawURLEncoding.EncodeToString(b), nil).scimError(t, 400, "invalidCursor")

		e.do("PATCH", "/Users/"+id, patchOp(op("replace", acmeURN+":hiredAt", "9999-12-31T23:59:59Z"))).must(t, 200)
		if l := e.do("GET", "/Users?filter="+url.QueryEscape(acmeURN+`:hiredAt gt "0001-01-01T00:00:00Z"`), nil).must(t, 200); l.num("totalResults") != 1 {
			t.Fatalf("filter: %s", l.Raw)
		}
	})
}

// TestSearchRequestTypes: a SearchRequest member of the wrong JSON type is refused
// (invalidSyntax) rather than dropped; a dropped filter lists every resource, which an
// IdP matching an account by userName would take as its match. null is unassigned.
func TestSearchRequestTypes(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		e := newEnv(t, bdb)
		e.do("POST", "/Users", user("ada@acme.com")).must(t, 201)
		e.do("POST", "/Users", user("bob@acme.com")).must(t, 201)
		search := func(kv ...any) map[string]any {
			m := map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:SearchRequest"}}
			for i := 0; i+1 < len(kv); i += 2 {
				m[kv[i].(string)] = kv[i+1]
			}
			return m
		}
		for _, body := range []map[string]any{
			search("filter", 5),
			search("filter", []string{`userName eq "bob@acme.com"`}),
			search("filter", map[string]any{"userName": "bob@acme.com"}),
			search("sortBy", true),
			search("sortOrder", 1),
			search("attributes", 7),
			search("excludedAttributes", map[string]any{}),
			search("attributes", []any{"userName", 3}),
			search("startIndex", true),
			search("count", []any{1}),
		} {
			for _, rt := range []string{"/Users", "/Groups"} {
				e.do("POST", rt+"/.search", body).scimError(t, 400, "invalidSyntax")
			}
		}
		r := e.do("POST", "/Users/.search", search("filter", nil, "startIndex", nil, "count", nil, "sortBy", nil,
			"sortOrder", nil, "attributes", nil, "excludedAttributes", nil)).must(t, 200)
		if r.num("totalResults") != 2 || r.num("startIndex") != 1 || len(r.resources()) != 2 {
			t.Fatalf("nulls: %s", r.Raw)
		}
	})
}

// TestOnePrimaryValue: RFC 7643 §2.4, "the primary attribute value true MUST appear no
// more than once". PATCH keeps to it (the value made primary last wins); POST and PUT
// do the same with a body that marks several.
func TestOnePrimaryValue(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		e := newEnv(t, bdb)
		two := []any{
			map[string]any{"value": "a@acme.com", "type": "work", "primary": true},
			map[string]any{"value": "b@acme.com", "type": "home", "primary": "True"},
			map[string]any{"value": "c@acme.com", "type": "other"},
		}
		phones := []any{map[string]any{"value": "+1", "primary": true}, map[string]any{"value": "+2", "primary": true}}
		check := func(r resp) {
			t.Helper()
			for attr, want := range map[string]string{"emails": "b@acme.com", "phoneNumbers": "+2"} {
				var primaries []string
				for _, v := range r.Body[attr].([]any) {
					if m := v.(map[string]any); m["primary"] == true {
						primaries = append(primaries, m["value"].(string))
					}
				}
				if len(primaries) != 1 || primaries[0] != want {
					t.Fatalf("%s: primary values %v, want [%s]: %s", attr, primaries, want, r.Raw)
				}
			}
		}
		created := e.do("POST", "/Users", user("ada@acme.com", "emails", two, "phoneNumbers", phones)).must(t, 201)
		check(created)
		check(e.do("GET", "/Users/"+created.str("id"), nil).must(t, 200))
		id := e.do("POST", "/Users", user("bob@acme.com")).must(t, 201).str("id")
		check(e.do("PUT", "/Users/"+id, user("bob@acme.com", "emails", two, "phoneNumbers", phones)).must(t, 200))
	})
}

// TestActiveIsNeverAssumedOnReplace: a PUT or PATCH result without "active" keeps the
// user as they are. A deprovisioned user comes back only when the IdP says so: a
// sloppy replace (or a PATCH removing "active") must not reactivate them. A POST
// without "active" creates an active user (RFC 7643 §4.1.1 gives no default; every IdP
// sends it, and an inactive new user could never sign in).
func TestActiveIsNeverAssumedOnReplace(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		e := newEnv(t, bdb)
		without := user("ada@acme.com")
		delete(without, "active")
		id := e.do("POST", "/Users", without).must(t, 201).str("id")
		if r := e.do("GET", "/Users/"+id, nil).must(t, 200); get(r.Body, "active") != true {
			t.Fatalf("POST without active: %s", r.Raw)
		}
		e.do("PATCH", "/Users/"+id, patchOp(op("replace", "active", false))).must(t, 200)
		if r := e.do("PUT", "/Users/"+id, without).must(t, 200); get(r.Body, "active") != false {
			t.Fatalf("PUT without active reactivated the user: %s", r.Raw)
		}
		if r := e.do("PATCH", "/Users/"+id, patchOp(op("remove", "active", nil))).must(t, 200); get(r.Body, "active") != false {
			t.Fatalf("PATCH removing active reactivated the user: %s", r.Raw)
		}
		if r := e.do("PUT", "/Users/"+id, user("ada@acme.com")).must(t, 200); get(r.Body, "active") != true {
			t.Fatalf("PUT with active true: %s", r.Raw)
		}
	})
}
