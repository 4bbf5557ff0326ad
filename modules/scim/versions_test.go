package scim_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/audit"
)

// etag reads a resource and returns its ETag, checking it is the resource's meta.version.
func (e *env) etag(path string) string {
	e.t.Helper()
	r := e.do("GET", path, nil).must(e.t, 200)
	tag := r.Header.Get("ETag")
	if tag == "" || tag != r.str("meta.version") {
		e.t.Fatalf("GET %s: ETag %q, meta.version %q", path, tag, r.str("meta.version"))
	}
	return tag
}

// changed checks that the resource no longer has version tag: If-None-Match with it
// gives 200 and a new ETag. It returns the response.
func (e *env) changed(path, tag, why string) resp {
	e.t.Helper()
	r := e.do("GET", path, nil, "If-None-Match", tag)
	if r.Status != http.StatusOK {
		e.t.Fatalf("%s: GET %s with If-None-Match %s: status %d, want 200 (the version did not change)", why, path, tag, r.Status)
	}
	if now := r.Header.Get("ETag"); now == "" || now == tag || now != r.str("meta.version") {
		e.t.Fatalf("%s: ETag %q (meta.version %q) after version %s", why, now, r.str("meta.version"), tag)
	}
	return r
}

// unchanged checks that the resource still has version tag (304).
func (e *env) unchanged(path, tag, why string) {
	e.t.Helper()
	r := e.do("GET", path, nil, "If-None-Match", tag)
	if r.Status != http.StatusNotModified || r.Header.Get("ETag") != tag {
		e.t.Fatalf("%s: GET %s with If-None-Match %s: status %d ETag %q, want 304 with it", why, path, tag, r.Status, r.Header.Get("ETag"))
	}
}

func groupNames(r resp) []string {
	var out []string
	gs, _ := r.Body["groups"].([]any)
	for _, g := range gs {
		out = append(out, get(g, "display").(string))
	}
	return out
}

// A user's "groups" and a group's "members" are part of the resource, so meta.version
// follows them: joining or leaving a group changes the user's version (and only the
// users who joined or left), and deleting a member user or group changes the groups it
// was in and, for a group, its member users.
func TestVersionsFollowMemberships(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		e := newEnv(t, bdb)
		id := map[string]string{}
		for _, n := range []string{"a", "b", "c", "d"} {
			id[n] = "/Users/" + e.do("POST", "/Users", user(n+"@acme.com")).must(t, 201).str("id")
		}
		tag := func(n string) string { return e.etag(id[n]) }
		uid := func(n string) string { return strings.TrimPrefix(id[n], "/Users/") }

		a, b, c := tag("a"), tag("b"), tag("c")
		g := "/Groups/" + e.do("POST", "/Groups", group("Team", uid("a"))).must(t, 201).str("id")
		if r := e.changed(id["a"], a, "a created as a member"); strings.Join(groupNames(r), ",") != "Team" {
			t.Fatalf("a's groups: %s", r.Raw)
		}
		e.unchanged(id["b"], b, "b is in no group")
		a = tag("a")

		gt := e.etag(g)
		e.do("PATCH", g, patchOp(op("add", "members", []any{map[string]any{"value": uid("b")}}))).must(t, 204)
		b = e.changed(id["b"], b, "b added by PATCH").Header.Get("ETag")
		e.unchanged(id["a"], a, "a stays a member")
		e.unchanged(id["c"], c, "c was not named")
		gt = e.changed(g, gt, "b added").Header.Get("ETag")

		e.do("PATCH", g, patchOp(op("remove", `members[value eq "`+uid("a")+`"]`, nil))).must(t, 204)
		if r := e.changed(id["a"], a, "a removed by PATCH"); r.Body["groups"] != nil {
			t.Fatalf("a still lists groups: %s", r.Raw)
		}
		e.unchanged(id["b"], b, "b stays a member")
		a = tag("a")

		// PUT replaces the members: b leaves, c joins; a, in neither list, is untouched.
		e.do("PUT", g, group("Team", uid("c"))).must(t, 200)
		b = e.changed(id["b"], b, "b dropped by PUT").Header.Get("ETag")
		c = e.changed(id["c"], c, "c added by PUT").Header.Get("ETag")
		e.unchanged(id["a"], a, "a was not a member")

		// Deleting a member user changes the group; a deletion refused (a stale If-Match)
		// changes nothing, the group's membership included: one transaction.
		gt = e.etag(g)
		e.do("DELETE", id["c"], nil, "If-Match", `W/"999"`).must(t, 412)
		e.unchanged(g, gt, "a refused deletion of member c")
		if r := e.do("GET", g, nil).must(t, 200); len(memberValues(r)) != 1 {
			t.Fatalf("c left the group although its deletion was refused: %s", r.Raw)
		}
		e.do("DELETE", id["c"], nil).must(t, 204)
		if r := e.changed(g, gt, "member c deleted"); len(memberValues(r)) != 0 {
			t.Fatalf("members after c was deleted: %s", r.Raw)
		}

		// Deleting a group changes the groups it was in and its member users.
		e.do("PATCH", g, patchOp(op("add", "members", []any{map[string]any{"value": uid("d")}}))).must(t, 204)
		parent := "/Groups/" + e.do("POST", "/Groups", group("All", strings.TrimPrefix(g, "/Groups/"))).must(t, 201).str("id")
		pt, d := e.etag(parent), tag("d")
		b = tag("b")
		e.do("DELETE", g, nil).must(t, 204)
		if r := e.changed(parent, pt, "member group deleted"); len(memberValues(r)) != 0 {
			t.Fatalf("parent's members after its member group was deleted: %s", r.Raw)
		}
		if r := e.changed(id["d"], d, "d's group deleted"); r.Body["groups"] != nil {
			t.Fatalf("d still lists groups: %s", r.Raw)
		}
		e.unchanged(id["b"], b, "b was not in the deleted group")

		// A user deleted from a group is recorded as leaving it, by the token.
		events, _, err := e.audit.Page(context.Background(), bdb, e.tenant.ID, audit.Filter{Actions: []string{"group.members_removed"}}, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, ev := range events {
			if "/Groups/"+ev.TargetID == g && fmt.Sprint(ev.Changes["members"].Before) == "["+uid("c")+"]" && ev.ActorType == audit.ActorSCIMToken {
				found = true
			}
		}
		if !found {
			t.Fatalf("no group.members_removed event by the token for c leaving Team on its deletion: %+v", events)
		}
	})
}

// A user's version changes with its extension values: written alone, deleted by a
// redeclaration, or removed with the extension; users without values keep theirs.
func TestVersionsFollowExtensionValues(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		e := newEnv(t, bdb)
		ctx := context.Background()
		if _, err := e.identity.SetUserExtension(ctx, e.tenant.ID, []byte(acmeSchema)); err != nil {
			t.Fatal(err)
		}
		x := "/Users/" + e.do("POST", "/Users", user("x@acme.com", acmeURN, map[string]any{
			"managementLevel": "Senior", "costCenterCode": 7, "isContractor": true})).must(t, 201).str("id")
		y := "/Users/" + e.do("POST", "/Users", user("y@acme.com")).must(t, 201).str("id")
		xt, yt := e.etag(x), e.etag(y)

		e.do("PATCH", x, patchOp(op("replace", acmeURN+":managementLevel", "Lead"))).must(t, 200)
		xt = e.changed(x, xt, "extension-only PATCH").Header.Get("ETag")

		// Redeclared with the same attributes: nothing of x changes.
		if _, err := e.identity.SetUserExtension(ctx, e.tenant.ID, []byte(acmeSchema)); err != nil {
			t.Fatal(err)
		}
		e.unchanged(x, xt, "same declaration")

		// Redeclared without isContractor: x's value of it goes.
		if _, err := e.identity.SetUserExtension(ctx, e.tenant.ID, []byte(strings.Replace(acmeSchema,
			`{"name": "isContractor", "type": "boolean", "indexed": true},`, "", 1))); err != nil {
			t.Fatal(err)
		}
		if r := e.changed(x, xt, "a value deleted by a redeclaration"); r.acme("isContractor") != nil {
			t.Fatalf("after redeclaring: %s", r.Raw)
		}
		e.unchanged(y, yt, "y has no values")
		xt = e.etag(x)

		// Redeclared with managementLevel returned only on request: x is shown without it.
		if _, err := e.identity.SetUserExtension(ctx, e.tenant.ID, []byte(strings.Replace(acmeSchema,
			`{"name": "managementLevel", "type": "string", "indexed": true}`, `{"name": "managementLevel", "type": "string", "indexed": true, "returned": "request"}`, 1))); err != nil {
			t.Fatal(err)
		}
		if r := e.changed(x, xt, "a value now returned only on request"); r.acme("managementLevel") != nil {
			t.Fatalf("after redeclaring returned: %s", r.Raw)
		}
		xt = e.etag(x)

		if err := e.identity.RemoveUserExtension(ctx, e.tenant.ID, acmeURN); err != nil {
			t.Fatal(err)
		}
		if r := e.changed(x, xt, "extension removed"); strings.Contains(r.Raw, acmeURN) {
			t.Fatalf("after removal: %s", r.Raw)
		}
		e.unchanged(y, yt, "y had no values")
	})
}

// If-Match on PUT, PATCH and DELETE of users and groups: a stale version is 412 and
// changes nothing, the current one (or *) goes through; a list of tags never matches.
// Groups answer 304 to If-None-Match and carry ETag like users.
func TestPreconditions(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		e := newEnv(t, bdb)
		u := "/Users/" + e.do("POST", "/Users", user("p@acme.com")).must(t, 201).str("id")
		old := e.etag(u)
		e.do("PATCH", u, patchOp(op("replace", "title", "A")), "If-Match", old).must(t, 200)
		cur := e.etag(u)
		e.do("PUT", u, user("p@acme.com", "title", "B"), "If-Match", old).scimError(t, 412, "")
		e.do("DELETE", u, nil, "If-Match", old).scimError(t, 412, "")
		e.do("DELETE", u, nil, "If-Match", `W/"1", `+cur).scimError(t, 412, "")
		e.unchanged(u, cur, "refused writes")
		if r := e.do("PUT", u, user("p@acme.com", "title", "B"), "If-Match", cur).must(t, 200); r.Header.Get("ETag") == cur {
			t.Fatalf("PUT kept ETag %s", cur)
		}
		e.do("DELETE", u, nil, "If-Match", e.etag(u)).must(t, 204)

		g := "/Groups/" + e.do("POST", "/Groups", group("Ops")).must(t, 201).str("id")
		gOld := e.etag(g)
		e.unchanged(g, gOld, "a new group")
		r := e.do("PATCH", g, patchOp(op("replace", "displayName", "Ops 2")), "If-Match", gOld).must(t, 204)
		gCur := r.Header.Get("ETag")
		if gCur == "" || gCur == gOld {
			t.Fatalf("group PATCH answered ETag %q after %q", gCur, gOld)
		}
		e.changed(g, gOld, "renamed")
		e.do("PATCH", g, patchOp(op("replace", "displayName", "Ops 3")), "If-Match", gOld).scimError(t, 412, "")
		e.do("PUT", g, group("Ops 3"), "If-Match", gOld).scimError(t, 412, "")
		e.do("DELETE", g, nil, "If-Match", gOld).scimError(t, 412, "")
		e.unchanged(g, gCur, "refused writes")
		if r := e.do("PUT", g, group("Ops 3"), "If-Match", "*").must(t, 200); r.Header.Get("ETag") != r.str("meta.version") || r.str("displayName") != "Ops 3" {
			t.Fatalf("PUT with If-Match *: ETag %q, %s", r.Header.Get("ETag"), r.Raw)
		}
		e.do("DELETE", g, nil, "If-Match", e.etag(g)).must(t, 204)
		e.do("GET", g, nil).scimError(t, 404, "")
	})
}
