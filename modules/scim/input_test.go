package scim_test

import (
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
