package graph_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/access"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

// Every permission, allowed and denied: each operation is run by the owner, an admin, a
// member and one user per single-permission custom role, and must succeed exactly when
// the caller's roles grant the permission it needs.
func TestPermissions(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		a := newAPI(t, bdb)
		o := a.newOrg("acme", tenancy.ProvisioningManual, tenancy.FeatureUserGroups)
		ctx := context.Background()
		op := access.OperatorViewer(o.tenant.ID)
		group, err := a.access.CreateGroupAs(ctx, op, "Engineering", nil)
		if err != nil {
			t.Fatal(err)
		}
		space, err := a.access.CreateSpace(ctx, op, "Roadmap", "")
		if err != nil {
			t.Fatal(err)
		}
		settingsRole, err := a.access.CreateRole(ctx, op, "settings", []access.Permission{access.PermManageCompanySettings})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		ops := []struct {
			name   string
			perm   access.Permission // "" = any signed-in member
			q      func() (string, map[string]any)
			denied string // the code of a refusal; FORBIDDEN unless the caller cannot even see the target
		}{
			{"read users", "", func() (string, map[string]any) { return `{ users(first: 5) { nodes { id } } }`, nil }, ""},
			{"read spaces", "", func() (string, map[string]any) { return `{ spaces { nodes { id } } }`, nil }, ""},
			{"createSpace", access.PermManageSpaces, func() (string, map[string]any) {
				return `mutation($n: String!) { createSpace(input: {name: $n}) { id } }`, map[string]any{"n": fmt.Sprintf("space %d", n)}
			}, ""},
			{"grantSpaceAccess", access.PermManageSpaces, func() (string, map[string]any) {
				return `mutation($s: ID!, $p: ID!) { grantSpaceAccess(input: {spaceId: $s, principalId: $p, role: VIEWER}) { id } }`,
					map[string]any{"s": gid("Space", space.ID), "p": gid("Group", group.ID)}
			}, "NOT_FOUND"},
			{"updateTenantSettings", access.PermManageCompanySettings, func() (string, map[string]any) {
				return `mutation { updateTenantSettings(input: {jitProvisioning: true}) { settings { jitProvisioning } } }`, nil
			}, ""},
			{"issueSCIMToken", access.PermManageCompanySettings, func() (string, map[string]any) {
				return `mutation { issueSCIMToken(name: "Entra") { secret token { id } } }`, nil
			}, ""},
			{"read scimTokens", access.PermManageCompanySettings, func() (string, map[string]any) {
				return `{ tenant { scimTokens { id name } } }`, nil
			}, ""},
			{"read samlConnection", access.PermManageCompanySettings, func() (string, map[string]any) {
				return `{ tenant { samlConnection { idpEntityId } } }`, nil
			}, ""},
			{"createRole", access.PermManageCompanySettings, func() (string, map[string]any) {
				return `mutation($n: String!) { createRole(name: $n, permissions: [MANAGE_COMPANY_SETTINGS]) { id } }`, map[string]any{"n": fmt.Sprintf("auditor %d", n)}
			}, ""},
			{"mapGroupToRole", access.PermManageCompanySettings, func() (string, map[string]any) {
				return `mutation($g: ID!, $r: ID!) { mapGroupToRole(groupId: $g, roleId: $r) { role { id } } }`,
					map[string]any{"g": gid("Group", group.ID), "r": settingsRole.ID}
			}, ""},
			{"createUser", access.PermManageUsers, func() (string, map[string]any) {
				return `mutation($u: String!) { createUser(input: {userName: $u}) { id source } }`, map[string]any{"u": fmt.Sprintf("new%d@acme.test", n)}
			}, ""},
			{"setUserRole", access.PermManageUsers, func() (string, map[string]any) {
				return `mutation($u: ID!) { setUserRole(userId: $u, roleId: "member") { id } }`, map[string]any{"u": gid("User", o.ids["member"])}
			}, ""},
			{"revokeUserSessions", access.PermManageUsers, func() (string, map[string]any) {
				return `mutation($u: ID!) { revokeUserSessions(userId: $u) }`, map[string]any{"u": gid("User", o.ids["view_audit_log"])}
			}, ""},
			{"createGroup", access.PermManageUserGroups, func() (string, map[string]any) {
				return `mutation($n: String!) { createGroup(input: {displayName: $n}) { id } }`, map[string]any{"n": fmt.Sprintf("group %d", n)}
			}, ""},
		}
		callers := []string{"owner", "admin", "member"}
		for _, p := range access.AllPermissions {
			if p != access.PermViewAuditLog { // its user's session is revoked above
				callers = append(callers, string(p))
			}
		}
		for _, op := range ops {
			for _, who := range callers {
				n++
				allowed := op.perm == "" || who == "owner" || who == "admin" || who == string(op.perm)
				q, vars := op.q()
				r := a.gql(o.tokens[who], q, vars)
				denied := op.denied
				if denied == "" {
					denied = "FORBIDDEN"
				}
				switch {
				case allowed && len(r.Errors) > 0:
					t.Errorf("%s as %s: refused: %+v", op.name, who, r.Errors)
				case !allowed && r.code() != denied:
					t.Errorf("%s as %s: got %+v, want %s", op.name, who, r.Errors, denied)
				case !allowed && denied == "FORBIDDEN" && !strings.Contains(r.Errors[0].Message, string(op.perm)):
					t.Errorf("%s as %s: the message does not name the permission: %s", op.name, who, r.Errors[0].Message)
				}
			}
		}
	})
}

// Another tenant's ids behave exactly like ids that do not exist.
func TestTenantIsolation(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		a := newAPI(t, bdb)
		acme := a.newOrg("acme", tenancy.ProvisioningManual, tenancy.FeatureUserGroups)
		globex := a.newOrg("globex", tenancy.ProvisioningManual, tenancy.FeatureUserGroups)
		ctx := context.Background()
		op := access.OperatorViewer(globex.tenant.ID)
		g, _ := a.access.CreateGroupAs(ctx, op, "Globex staff", []string{globex.ids["member"]})
		s, _ := a.access.CreateSpace(ctx, op, "Globex plans", "")
		theirs := map[string]string{"user": gid("User", globex.ids["member"]), "group": gid("Group", g.ID), "space": gid("Space", s.ID)}
		owner := acme.tokens["owner"]

		for _, field := range []string{"user", "group", "space", "node"} {
			q := `query($id: ID!) { ` + field + `(id: $id) { id } }`
			for _, id := range theirs {
				if d := a.must(owner, q, map[string]any{"id": id}); d[field] != nil {
					t.Errorf("%s with another tenant's id: %v; want null", field, d)
				}
			}
		}
		muts := []struct {
			q    string
			vars map[string]any
		}{
			{`mutation($id: ID!) { updateSpace(input: {id: $id, name: "x"}) { id } }`, map[string]any{"id": theirs["space"]}},
			{`mutation($id: ID!) { deleteSpace(id: $id) }`, map[string]any{"id": theirs["space"]}},
			{`mutation($s: ID!, $p: ID!) { grantSpaceAccess(input: {spaceId: $s, principalId: $p, role: VIEWER}) { id } }`, map[string]any{"s": theirs["space"], "p": gid("User", acme.ids["member"])}},
			{`mutation($s: ID!, $p: ID!) { grantSpaceAccess(input: {spaceId: $s, principalId: $p, role: VIEWER}) { id } }`, map[string]any{"s": gid("Space", mustSpace(t, a, acme)), "p": theirs["user"]}},
			{`mutation($id: ID!) { setUserRole(userId: $id, roleId: "admin") { id } }`, map[string]any{"id": theirs["user"]}},
			{`mutation($id: ID!) { revokeUserSessions(userId: $id) }`, map[string]any{"id": theirs["user"]}},
			{`mutation($id: ID!) { updateUser(input: {id: $id, displayName: "x"}) { id } }`, map[string]any{"id": theirs["user"]}},
			{`mutation($id: ID!) { deactivateUser(id: $id) { id } }`, map[string]any{"id": theirs["user"]}},
			{`mutation($id: ID!) { updateGroup(input: {id: $id, displayName: "x"}) { id } }`, map[string]any{"id": theirs["group"]}},
			{`mutation($id: ID!) { deleteGroup(id: $id) }`, map[string]any{"id": theirs["group"]}},
			{`mutation($id: ID!) { mapGroupToRole(groupId: $id, roleId: "admin") { role { id } } }`, map[string]any{"id": theirs["group"]}},
			{`mutation($id: ID!) { createGroup(input: {displayName: "mine", memberIds: [$id]}) { id } }`, map[string]any{"id": theirs["user"]}},
		}
		for _, m := range muts {
			if r := a.gql(owner, m.q, m.vars); r.code() != "NOT_FOUND" {
				t.Errorf("%s: %+v; want NOT_FOUND", m.q, r.Errors)
			}
		}
		// And nothing of theirs changed.
		if d := a.must(globex.tokens["owner"], `query($id: ID!) { user(id: $id) { active roles { role { id } } } }`, map[string]any{"id": theirs["user"]}); dig(d, "user.active") != true {
			t.Fatalf("globex's user changed: %v", d)
		}
	})
}

func mustSpace(t *testing.T, a *api, o *org) string {
	s, err := a.access.CreateSpace(context.Background(), access.OperatorViewer(o.tenant.ID), fmt.Sprintf("space of %s", o.tenant.Slug), "")
	if err != nil && !strings.Contains(err.Error(), "exists") {
		t.Fatal(err)
	}
	return s.ID
}

func TestPagination(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		a := newAPI(t, bdb)
		o := a.newOrg("acme", tenancy.ProvisioningManual)
		for i := range 7 {
			o.add(a, fmt.Sprintf("extra%d", i))
		}
		total := len(o.ids)
		q := `query($a: String) { users(first: 4, after: $a) { nodes { userName } pageInfo { hasNextPage endCursor } } }`
		seen := map[string]bool{}
		var after any
		pages := 0
		for {
			d := a.must(o.tokens["member"], q, map[string]any{"a": after})
			for _, n := range dig(d, "users.nodes").([]any) {
				name := n.(map[string]any)["userName"].(string)
				if seen[name] {
					t.Fatalf("%s on two pages", name)
				}
				seen[name] = true
			}
			pages++
			if dig(d, "users.pageInfo.hasNextPage") != true {
				after = dig(d, "users.pageInfo.endCursor")
				break
			}
			after = dig(d, "users.pageInfo.endCursor")
		}
		if len(seen) != total || pages != (total+3)/4 {
			t.Fatalf("paged %d users in %d pages; want %d in %d", len(seen), pages, total, (total+3)/4)
		}
		// Past the end: an empty page, no next page.
		d := a.must(o.tokens["member"], q, map[string]any{"a": after})
		if len(dig(d, "users.nodes").([]any)) != 0 || dig(d, "users.pageInfo.hasNextPage") != false || dig(d, "users.pageInfo.endCursor") != nil {
			t.Fatalf("past the end: %v", d)
		}
		for _, bad := range []string{"garbage", "Y29m", gid("User", o.ids["owner"])} {
			if r := a.gql(o.tokens["member"], q, map[string]any{"a": bad}); r.code() != "BAD_USER_INPUT" {
				t.Errorf("cursor %q: %+v; want BAD_USER_INPUT", bad, r.Errors)
			}
		}
		for _, first := range []int{0, 101, -1} {
			if r := a.gql(o.tokens["member"], `query($f: Int) { users(first: $f) { nodes { id } } }`, map[string]any{"f": first}); r.code() != "BAD_USER_INPUT" {
				t.Errorf("first %d: %+v; want BAD_USER_INPUT", first, r.Errors)
			}
		}
		// Filters: search, active.
		d = a.must(o.tokens["member"], `{ users(filter: {search: "EXTRA"}) { nodes { userName } } }`, nil)
		if len(dig(d, "users.nodes").([]any)) != 7 {
			t.Fatalf("search: %v", d)
		}
	})
}

// The provisioning mode decides what the app may change; the IdP's records answer
// SCIM_MANAGED with a message that names the IdP.
func TestProvisioningModes(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		a := newAPI(t, bdb)
		scimOrg := a.newOrg("scimco", tenancy.ProvisioningSCIM, tenancy.FeatureUserGroups)
		mixed := a.newOrg("mixedco", tenancy.ProvisioningMixed, tenancy.FeatureUserGroups)
		manual := a.newOrg("manualco", tenancy.ProvisioningManual, tenancy.FeatureUserGroups)
		create := `mutation($u: String!) { createUser(input: {userName: $u, email: $u}) { id source editable } }`
		update := `mutation($id: ID!) { updateUser(input: {id: $id, displayName: "Renamed"}) { displayName } }`
		deactivate := `mutation($id: ID!) { deactivateUser(id: $id) { active } }`

		r := a.gql(scimOrg.tokens["admin"], create, map[string]any{"u": "c@scimco.test"})
		if r.code() != "SCIM_MANAGED" || !strings.Contains(r.Errors[0].Message, "Okta production") {
			t.Fatalf("create in scim mode: %+v", r.Errors)
		}
		if r := a.gql(scimOrg.tokens["admin"], update, map[string]any{"id": gid("User", scimOrg.ids["member"])}); r.code() != "SCIM_MANAGED" {
			t.Fatalf("update in scim mode: %+v", r.Errors)
		}
		if r := a.gql(scimOrg.tokens["admin"], `mutation { createGroup(input: {displayName: "x"}) { id } }`, nil); r.code() != "SCIM_MANAGED" {
			t.Fatalf("group in scim mode: %+v", r.Errors)
		}
		if d := a.must(scimOrg.tokens["admin"], `query($id: ID!) { user(id: $id) { editable source } }`, map[string]any{"id": gid("User", scimOrg.ids["member"])}); dig(d, "user.editable") != false || dig(d, "user.source") != "SCIM" {
			t.Fatalf("scim user: %v", d)
		}

		d := a.must(mixed.tokens["admin"], create, map[string]any{"u": "contractor@mixedco.test"})
		contractor := dig(d, "createUser.id").(string)
		if dig(d, "createUser.source") != "APP" || dig(d, "createUser.editable") != true {
			t.Fatalf("mixed create: %v", d)
		}
		a.must(mixed.tokens["admin"], update, map[string]any{"id": contractor})
		if r := a.gql(mixed.tokens["admin"], update, map[string]any{"id": gid("User", mixed.ids["member"])}); r.code() != "SCIM_MANAGED" {
			t.Fatalf("mixed, IdP user: %+v", r.Errors)
		}
		if d := a.must(mixed.tokens["admin"], deactivate, map[string]any{"id": contractor}); dig(d, "deactivateUser.active") != false {
			t.Fatalf("deactivate contractor: %v", d)
		}

		a.must(manual.tokens["admin"], update, map[string]any{"id": gid("User", manual.ids["member"])})
		// Deactivation through GraphQL ends the person's sessions before it answers.
		a.must(manual.tokens["admin"], deactivate, map[string]any{"id": gid("User", manual.ids["member"])})
		if r := a.gql(manual.tokens["member"], `{ viewer { user { id } } }`, nil); r.Status != http.StatusUnauthorized || r.code() != "UNAUTHENTICATED" {
			t.Fatalf("the deactivated member's token: %d %+v; want 401", r.Status, r.Errors)
		}
		// Groups need the plan feature.
		plain := a.newOrg("plainco", tenancy.ProvisioningManual)
		if r := a.gql(plain.tokens["admin"], `{ groups { nodes { id } } }`, nil); r.code() != "FEATURE_NOT_IN_PLAN" {
			t.Fatalf("groups without the feature: %+v", r.Errors)
		}
	})
}

// A space the viewer cannot open by id does not show through any other path either:
// not through a colleague's effectiveSpaces, a group's spaceGrants, a grant's space or
// node(id) — neither its name nor its grants.
func TestSpaceVisibility(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		a := newAPI(t, bdb)
		o := a.newOrg("acme", tenancy.ProvisioningManual, tenancy.FeatureUserGroups)
		ctx := context.Background()
		op := access.OperatorViewer(o.tenant.ID)
		team, err := a.access.CreateGroupAs(ctx, op, "Board", []string{o.ids["admin"]})
		if err != nil {
			t.Fatal(err)
		}
		shared, _ := a.access.CreateSpace(ctx, op, "Handbook", "for everyone")
		secret, _ := a.access.CreateSpace(ctx, op, "Acquisition", "top secret")
		for _, g := range []struct {
			space, typ, id string
		}{{shared.ID, "user", o.ids["member"]}, {shared.ID, "user", o.ids["admin"]}, {secret.ID, "user", o.ids["admin"]}, {secret.ID, "group", team.ID}} {
			if _, err := a.access.GrantAccess(ctx, op, g.space, g.typ, g.id, access.SpaceEditor); err != nil {
				t.Fatal(err)
			}
		}
		q := `query($g: ID!, $s: ID!) {
			users(first: 100) { nodes { userName effectiveSpaces { space { name description grants { role space { name } } } } } }
			group(id: $g) { spaceGrants { space { name } } }
			space(id: $s) { name }
			node(id: $s) { id }
			spaces { nodes { name grants { principal { ... on User { userName } } space { name } } } }
		}`
		vars := map[string]any{"g": gid("Group", team.ID), "s": gid("Space", secret.ID)}
		for _, who := range []string{"member", "manage_spaces"} {
			r := a.gql(o.tokens[who], q, vars)
			if len(r.Errors) > 0 {
				t.Fatalf("%s: %+v", who, r.Errors)
			}
			body, _ := json.Marshal(r.Data)
			seesSecret := strings.Contains(string(body), "Acquisition") || strings.Contains(string(body), "top secret")
			if want := who == "manage_spaces"; seesSecret != want {
				t.Errorf("%s sees the secret space: %v, want %v: %s", who, seesSecret, want, body)
			}
			if !strings.Contains(string(body), "Handbook") {
				t.Errorf("%s does not see the shared space: %s", who, body)
			}
		}
	})
}
