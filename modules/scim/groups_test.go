package scim_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

func memberValues(r resp) []string {
	var out []string
	ms, _ := get(r.Body, "members").([]any)
	for _, m := range ms {
		out = append(out, get(m, "value").(string))
	}
	return out
}

func TestGroupsAsEntraAndOktaSendThem(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		e := newEnv(t, bdb)
		var users []string
		for i := range 4 {
			users = append(users, e.do("POST", "/Users", user(fmt.Sprintf("u%d@acme.com", i))).must(t, 201).str("id"))
		}
		// Entra's create, with its own extra schema URI.
		c := e.do("POST", "/Groups", map[string]any{
			"schemas":     []string{"urn:ietf:params:scim:schemas:core:2.0:Group", "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"},
			"externalId":  "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
			"displayName": "Group1DisplayName",
			"meta":        map[string]any{"resourceType": "Group"},
		}).must(t, 201)
		gid := c.str("id")
		if c.Header.Get("Location") != e.base+"/Groups/"+gid || c.str("meta.resourceType") != "Group" {
			t.Fatalf("group create: %s", c.Raw)
		}
		e.do("POST", "/Groups", group("group1displayname")).scimError(t, 409, "uniqueness")
		if l := e.do("GET", `/Groups?excludedAttributes=members&filter=displayName+eq+%22Group1DisplayName%22`, nil).must(t, 200); l.num("totalResults") != 1 || strings.Contains(l.Raw, "members") {
			t.Fatalf("displayName filter: %s", l.Raw)
		}

		// Entra adds members with "$ref": null; 204 and no member list back.
		r := e.do("PATCH", "/Groups/"+gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Add","path":"members","value":[
			{"$ref":null,"value":"`+users[0]+`"},{"$ref":null,"value":"`+users[1]+`"},{"$ref":null,"value":"`+users[2]+`"},{"value":"`+users[2]+`"}]}]}`)
		if r.Status != 204 || r.Raw != "" {
			t.Fatalf("group PATCH: %d %s", r.Status, r.Raw)
		}
		g := e.do("GET", "/Groups/"+gid, nil).must(t, 200)
		if len(memberValues(g)) != 3 || get(g.Body, "members.0.type") != "User" || get(g.Body, "members.0.display") == nil {
			t.Fatalf("members after add: %s", g.Raw)
		}
		// Entra's remove with a value list removes only those.
		e.do("PATCH", "/Groups/"+gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Remove","path":"members","value":[{"$ref":null,"value":"`+users[0]+`"}]}]}`).must(t, 204)
		if g := e.do("GET", "/Groups/"+gid, nil); strings.Join(memberValues(g), ",") != users[1]+","+users[2] {
			t.Fatalf("after Entra remove: %s", g.Raw)
		}
		// Okta: remove by filter, rename with the id in the value, add with display.
		e.do("PATCH", "/Groups/"+gid, patchOp(op("remove", `members[value eq "`+users[1]+`"]`, nil))).must(t, 204)
		e.do("PATCH", "/Groups/"+gid, patchOp(op("remove", `members[value eq "not-a-member"]`, nil))).must(t, 204)
		e.do("PATCH", "/Groups/"+gid, patchOp(op("replace", "", map[string]any{"id": gid, "displayName": "Renamed"}))).must(t, 204)
		e.do("PATCH", "/Groups/"+gid, patchOp(op("replace", "", map[string]any{"id": "other", "displayName": "X"}))).scimError(t, 400, "mutability")
		r = e.do("PATCH", "/Groups/"+gid+"?excludedAttributes=members", patchOp(op("add", "members", []any{map[string]any{"value": users[3], "display": "u3@acme.com"}}))).must(t, 200)
		if r.str("displayName") != "Renamed" || strings.Contains(r.Raw, "members") {
			t.Fatalf("PATCH with representation: %s", r.Raw)
		}
		e.do("PATCH", "/Groups/"+gid, patchOp(op("add", "members", []any{map[string]any{"value": "no-such-user"}}))).scimError(t, 400, "invalidValue")
		if g := e.do("GET", "/Groups/"+gid, nil); strings.Join(memberValues(g), ",") != users[2]+","+users[3] {
			t.Fatalf("after Okta ops: %s", g.Raw)
		}
		// Filter groups by member.
		if l := e.do("GET", `/Groups?filter=members.value+eq+%22`+users[3]+`%22`, nil).must(t, 200); l.num("totalResults") != 1 {
			t.Fatalf("members filter: %s", l.Raw)
		}
		// The user's groups attribute is derived.
		if u := e.do("GET", "/Users/"+users[3], nil).must(t, 200); u.str("groups.0.value") != gid || u.str("groups.0.display") != "Renamed" {
			t.Fatalf("user groups: %s", u.Raw)
		}
		// PUT replaces the member list (Okta custom apps push membership this way).
		p := e.do("PUT", "/Groups/"+gid, group("Renamed", users[0], users[3])).must(t, 200)
		if strings.Join(memberValues(p), ",") != users[0]+","+users[3] {
			t.Fatalf("PUT members: %s", p.Raw)
		}
		// Full replace by PATCH, then remove all.
		e.do("PATCH", "/Groups/"+gid, patchOp(op("replace", "members", []any{map[string]any{"value": users[1]}}))).must(t, 204)
		if g := e.do("GET", "/Groups/"+gid, nil); strings.Join(memberValues(g), ",") != users[1] {
			t.Fatalf("replace members: %s", g.Raw)
		}
		// Deleting a user removes its memberships.
		e.do("DELETE", "/Users/"+users[1], nil).must(t, 204)
		if g := e.do("GET", "/Groups/"+gid, nil); len(memberValues(g)) != 0 {
			t.Fatalf("deleted user still a member: %s", g.Raw)
		}
		// excludedAttributes=members on GET, then delete.
		if g := e.do("GET", "/Groups/"+gid+"?excludedAttributes=members", nil).must(t, 200); strings.Contains(g.Raw, "members") {
			t.Fatalf("excludedAttributes=members: %s", g.Raw)
		}
		e.do("DELETE", "/Groups/"+gid, nil).must(t, 204)
		e.do("GET", "/Groups/"+gid, nil).scimError(t, 404, "")
	})
}

// TestGroupMembershipAtScale: a 100,000-member group; adding and removing one member
// touches one row, and reads never load members unless asked.
func TestGroupMembershipAtScale(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		e := newEnv(t, bdb)
		ctx := context.Background()
		gid := e.do("POST", "/Groups", group("Everyone")).must(t, 201).str("id")
		const n = 100_000
		// Seed directly in SQL: this test is about the cost of changes, not of seeding.
		_, err := bdb.ExecContext(ctx, `INSERT INTO users (id, tenant_id, user_name, user_name_key, active, source, version, created_at, updated_at)
			SELECT 'seed' || x, ?, 'seed' || x, 'seed' || x, true, 'scim', 1, ?, ? FROM `+series(bdb, n),
			e.tenant.ID, "2026-01-01 00:00:00+00:00", "2026-01-01 00:00:00+00:00")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := bdb.ExecContext(ctx, `INSERT INTO group_members (group_id, member_id, tenant_id, member_type, user_id, created_at)
			SELECT ?, id, tenant_id, 'User', id, created_at FROM users WHERE tenant_id = ?`, gid, e.tenant.ID); err != nil {
			t.Fatal(err)
		}
		newUser := e.do("POST", "/Users", user("new@acme.com")).must(t, 201).str("id")
		e.do("PATCH", "/Groups/"+gid, patchOp(op("add", "members", []any{map[string]any{"value": newUser}}))).must(t, 204)
		e.do("PATCH", "/Groups/"+gid, patchOp(op("remove", `members[value eq "seed7"]`, nil))).must(t, 204)
		var count int
		if err := bdb.QueryRowContext(ctx, "SELECT count(*) FROM group_members WHERE group_id = ?", gid).Scan(&count); err != nil || count != n {
			t.Fatalf("member count %d (%v), want %d", count, err, n)
		}
		if l := e.do("GET", "/Groups?excludedAttributes=members", nil).must(t, 200); strings.Contains(l.Raw, "members") || l.num("totalResults") != 1 {
			t.Fatalf("list: %.300s", l.Raw)
		}
		if l := e.do("GET", `/Groups?filter=members.value+eq+%22seed99999%22&attributes=displayName`, nil).must(t, 200); l.num("totalResults") != 1 {
			t.Fatalf("member lookup: %.300s", l.Raw)
		}
	})
}

// series returns a FROM item yielding x = 1..n in the test database's dialect.
func series(bdb *bun.DB, n int) string {
	if bdb.Dialect().Name().String() == "pg" {
		return fmt.Sprintf("generate_series(1, %d) AS x", n)
	}
	return fmt.Sprintf("(WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < %d) SELECT x FROM s) AS s", n)
}
