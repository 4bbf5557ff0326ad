package graph_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/samltest"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/access"
	"github.com/gatehouse-dev/gatehouse/modules/identity"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

// Every query and mutation, allowed and denied: each is run by the owner, an admin, a
// member, one user per single-permission custom role and an anonymous caller, and must
// succeed exactly when the caller's roles grant the permission it needs; a refusal is
// FORBIDDEN naming the permission (UNAUTHENTICATED without a session). Each run gets
// targets of its own, so a delete or a deactivation has something to act on every time.
func TestPermissions(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		a := newAPI(t, bdb)
		o := a.newOrg("acme", tenancy.ProvisioningManual, tenancy.FeatureUserGroups)
		f := &targets{t: t, a: a, o: o}
		type query = func(caller string) (string, map[string]any)
		ops := []struct {
			name string
			perm access.Permission // "" = any signed-in person
			q    query
			// denied is how a refusal shows when it is not FORBIDDEN: "null" for a read
			// that answers null for what the caller may not see; "owner" for what needs
			// the permission and the owner role (FORBIDDEN naming the owner to those who
			// have the permission only).
			denied string
		}{
			// Queries.
			{"viewer", "", func(string) (string, map[string]any) {
				return `{ viewer { user { id } tenant { id } permissions roles { role { id } } session { id } sessions { id } } }`, nil
			}, ""},
			{"tenant", "", func(string) (string, map[string]any) {
				return `{ tenant { id slug name provisioningMode features settings { jitProvisioning } serviceProvider { entityId metadataXml } } }`, nil
			}, ""},
			{"tenant.samlConnection", access.PermManageCompanySettings, func(string) (string, map[string]any) {
				return `{ tenant { samlConnection { idpEntityId } } }`, nil
			}, ""},
			{"tenant.scimTokens", access.PermManageCompanySettings, func(string) (string, map[string]any) {
				return `{ tenant { scimTokens { id name state } } }`, nil
			}, ""},
			{"tenant.scimExtensions", access.PermManageCompanySettings, func(string) (string, map[string]any) {
				return `{ tenant { scimExtensions { urn } } }`, nil
			}, ""},
			{"users", "", func(string) (string, map[string]any) {
				return `query($g: ID) { users(first: 5, filter: {active: true, groupId: $g, search: "u"}) { nodes { id roles { role { id } } groups { id } effectiveSpaces { role } } } }`,
					map[string]any{"g": gid("Group", f.group())}
			}, ""},
			{"user", "", func(string) (string, map[string]any) {
				return `query($id: ID!) { user(id: $id) { id userName } }`, map[string]any{"id": gid("User", f.user())}
			}, ""},
			{"groups", "", func(string) (string, map[string]any) {
				return `{ groups(first: 5) { nodes { id members(first: 2) { nodes { id } } spaceGrants { role } } } }`, nil
			}, ""},
			{"group", "", func(string) (string, map[string]any) {
				return `query($id: ID!) { group(id: $id) { id displayName members { nodes { id } } } }`, map[string]any{"id": gid("Group", f.group(f.user()))}
			}, ""},
			{"spaces", "", func(string) (string, map[string]any) {
				return `{ spaces(first: 5) { nodes { id name viewerRole grants { role } effectiveMembers(first: 5) { nodes { role } } } } }`, nil
			}, ""},
			{"space, seen through MANAGE_SPACES", access.PermManageSpaces, func(string) (string, map[string]any) {
				return `query($id: ID!) { space(id: $id) { id grants { role } effectiveMembers { nodes { role } pageInfo { hasNextPage } } } }`, map[string]any{"id": gid("Space", f.space())}
			}, "null"},
			{"space, seen through a grant", "", func(caller string) (string, map[string]any) {
				return `query($id: ID!) { space(id: $id) { id viewerRole grants { role } } }`, map[string]any{"id": gid("Space", f.space(caller))}
			}, ""},
			{"roles", "", func(string) (string, map[string]any) { return `{ roles { id name permissions builtIn } }`, nil }, ""},
			{"roleMappings", "", func(string) (string, map[string]any) {
				return `{ roleMappings { group { id } role { id } } }`, nil
			}, ""},
			{"node", "", func(string) (string, map[string]any) {
				return `query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": gid("User", f.user())}
			}, ""},
			{"auditEvents", access.PermViewAuditLog, func(string) (string, map[string]any) {
				return `{ auditEvents(first: 5) { nodes { id action } pageInfo { hasNextPage } } }`, nil
			}, ""},

			// Spaces and access.
			{"createSpace", access.PermManageSpaces, func(string) (string, map[string]any) {
				return `mutation($n: String!) { createSpace(input: {name: $n}) { id } }`, map[string]any{"n": f.name("space")}
			}, ""},
			{"updateSpace", access.PermManageSpaces, func(caller string) (string, map[string]any) {
				return `mutation($id: ID!) { updateSpace(input: {id: $id, description: "new"}) { id } }`, map[string]any{"id": gid("Space", f.space(caller))}
			}, ""},
			{"deleteSpace", access.PermManageSpaces, func(caller string) (string, map[string]any) {
				return `mutation($id: ID!) { deleteSpace(id: $id) }`, map[string]any{"id": gid("Space", f.space(caller))}
			}, ""},
			{"grantSpaceAccess", access.PermManageSpaces, func(caller string) (string, map[string]any) {
				return `mutation($s: ID!, $p: ID!) { grantSpaceAccess(input: {spaceId: $s, principalId: $p, role: EDITOR}) { id role } }`,
					map[string]any{"s": gid("Space", f.space(caller)), "p": gid("Group", f.group())}
			}, ""},
			{"revokeSpaceAccess", access.PermManageSpaces, func(caller string) (string, map[string]any) {
				sp, u := f.space(caller), f.user()
				f.grant(sp, "user", u)
				return `mutation($s: ID!, $p: ID!) { revokeSpaceAccess(spaceId: $s, principalId: $p) }`,
					map[string]any{"s": gid("Space", sp), "p": gid("User", u)}
			}, ""},

			// Roles.
			{"setUserRole", access.PermManageUsers, func(string) (string, map[string]any) {
				return `mutation($u: ID!, $r: ID!) { setUserRole(userId: $u, roleId: $r) { id } }`,
					map[string]any{"u": gid("User", f.user()), "r": f.role()}
			}, ""},
			{"createRole", access.PermManageCompanySettings, func(string) (string, map[string]any) {
				return `mutation($n: String!) { createRole(name: $n, permissions: []) { id } }`, map[string]any{"n": f.name("role")}
			}, ""},
			{"updateRole", access.PermManageCompanySettings, func(string) (string, map[string]any) {
				return `mutation($id: ID!, $n: String!) { updateRole(id: $id, name: $n) { id name } }`, map[string]any{"id": f.role(), "n": f.name("role")}
			}, ""},
			{"deleteRole", access.PermManageCompanySettings, func(string) (string, map[string]any) {
				return `mutation($id: ID!) { deleteRole(id: $id) }`, map[string]any{"id": f.role()}
			}, ""},
			{"mapGroupToRole", access.PermManageCompanySettings, func(string) (string, map[string]any) {
				return `mutation($g: ID!, $r: ID!) { mapGroupToRole(groupId: $g, roleId: $r) { group { id } role { id } } }`,
					map[string]any{"g": gid("Group", f.group()), "r": f.role()}
			}, ""},
			{"unmapGroupRole", access.PermManageCompanySettings, func(string) (string, map[string]any) {
				g, r := f.group(), f.role()
				if err := a.access.MapGroupToRole(context.Background(), f.op(), g, r); err != nil {
					t.Fatal(err)
				}
				return `mutation($g: ID!, $r: ID!) { unmapGroupRole(groupId: $g, roleId: $r) }`, map[string]any{"g": gid("Group", g), "r": r}
			}, ""},

			// Company settings.
			{"updateTenantSettings", access.PermManageCompanySettings, func(string) (string, map[string]any) {
				return `mutation($s: Int!) { updateTenantSettings(input: {jitProvisioning: true, sessionIdleTimeoutSeconds: $s}) { settings { sessionIdleTimeoutSeconds } } }`,
					map[string]any{"s": 3600 + f.next()}
			}, ""},
			{"configureSAML", access.PermManageCompanySettings, func(string) (string, map[string]any) {
				md := samltest.NewIdP(t, "https://idp.example.com/"+f.name("idp")).MetadataXML()
				return `mutation($md: String!) { configureSAML(input: {metadataXml: $md}) { idpEntityId certificates { sha256Fingerprint } } }`,
					map[string]any{"md": string(md)}
			}, "owner"},
			{"issueSCIMToken", access.PermManageCompanySettings, func(string) (string, map[string]any) {
				return `mutation($n: String!) { issueSCIMToken(name: $n, expiresInSeconds: 3600) { secret token { id } } }`, map[string]any{"n": f.name("Entra")}
			}, "owner"},
			{"revokeSCIMToken", access.PermManageCompanySettings, func(string) (string, map[string]any) {
				return `mutation($id: ID!) { revokeSCIMToken(id: $id) }`, map[string]any{"id": f.token()}
			}, ""},
			{"setScimExtension", access.PermManageCompanySettings, func(string) (string, map[string]any) {
				return `mutation($in: ScimExtensionInput!) { setScimExtension(input: $in) { urn } }`,
					map[string]any{"in": map[string]any{"urn": f.urn(), "attributes": []any{map[string]any{"name": "costCenter"}}}}
			}, ""},
			{"removeScimExtension", access.PermManageCompanySettings, func(string) (string, map[string]any) {
				return `mutation($u: String!) { removeScimExtension(urn: $u) }`, map[string]any{"u": f.extension()}
			}, ""},

			// People and groups.
			{"revokeUserSessions", access.PermManageUsers, func(string) (string, map[string]any) {
				return `mutation($u: ID!) { revokeUserSessions(userId: $u) }`, map[string]any{"u": gid("User", f.user())}
			}, ""},
			{"createUser", access.PermManageUsers, func(string) (string, map[string]any) {
				return `mutation($u: String!) { createUser(input: {userName: $u}) { id source } }`, map[string]any{"u": f.name("new") + "@acme.test"}
			}, ""},
			{"updateUser", access.PermManageUsers, func(string) (string, map[string]any) {
				return `mutation($id: ID!) { updateUser(input: {id: $id, displayName: "Renamed", email: "r@acme.test"}) { displayName email } }`,
					map[string]any{"id": gid("User", f.user())}
			}, ""},
			{"deactivateUser", access.PermManageUsers, func(string) (string, map[string]any) {
				return `mutation($id: ID!) { deactivateUser(id: $id) { active } }`, map[string]any{"id": gid("User", f.user())}
			}, ""},
			{"reactivateUser", access.PermManageUsers, func(string) (string, map[string]any) {
				return `mutation($id: ID!) { reactivateUser(id: $id) { active } }`, map[string]any{"id": gid("User", f.deactivated())}
			}, ""},
			{"createGroup", access.PermManageUserGroups, func(string) (string, map[string]any) {
				return `mutation($n: String!, $m: ID!) { createGroup(input: {displayName: $n, memberIds: [$m]}) { id } }`,
					map[string]any{"n": f.name("group"), "m": gid("User", f.user())}
			}, ""},
			{"updateGroup", access.PermManageUserGroups, func(string) (string, map[string]any) {
				return `mutation($id: ID!, $n: String!, $m: ID!) { updateGroup(input: {id: $id, displayName: $n, addMemberIds: [$m]}) { displayName } }`,
					map[string]any{"id": gid("Group", f.group()), "n": f.name("renamed"), "m": gid("User", f.user())}
			}, ""},
			{"deleteGroup", access.PermManageUserGroups, func(string) (string, map[string]any) {
				return `mutation($id: ID!) { deleteGroup(id: $id) }`, map[string]any{"id": gid("Group", f.group())}
			}, ""},
			// Last: it ends the caller's session.
			{"logout", "", func(string) (string, map[string]any) { return `mutation { logout }`, nil }, ""},
		}
		callers := []string{"owner", "admin", "member", "anonymous"}
		for _, p := range access.AllPermissions {
			callers = append(callers, string(p))
		}
		for _, op := range ops {
			for _, who := range callers {
				hasPerm := who != "anonymous" && (op.perm == "" || who == "owner" || who == "admin" || who == string(op.perm))
				allowed := hasPerm && (op.denied != "owner" || who == "owner")
				q, vars := op.q(o.ids[who])
				r := a.gql(o.tokens[who], q, vars)
				switch {
				case allowed && (len(r.Errors) > 0 || hasNull(r.Data)):
					t.Errorf("%s as %s: refused: %+v %v", op.name, who, r.Errors, r.Data)
				case who == "anonymous" && r.code() != "UNAUTHENTICATED":
					t.Errorf("%s anonymously: %+v; want UNAUTHENTICATED", op.name, r.Errors)
				case allowed || who == "anonymous":
				case op.denied == "null" && (len(r.Errors) > 0 || !hasNull(r.Data)):
					t.Errorf("%s as %s: %+v %v; want null", op.name, who, r.Errors, r.Data)
				case op.denied == "null":
				case op.denied == "owner" && hasPerm:
					if r.code() != "FORBIDDEN" || !strings.Contains(r.Errors[0].Message, "only an owner may") {
						t.Errorf("%s as %s: %+v; want FORBIDDEN: only an owner", op.name, who, r.Errors)
					}
				case r.code() != "FORBIDDEN" || !strings.Contains(r.Errors[0].Message, string(op.perm)):
					t.Errorf("%s as %s: %+v; want FORBIDDEN naming %s", op.name, who, r.Errors, op.perm)
				}
			}
		}
	})
}

// hasNull reports whether a response's data has a null top-level field.
func hasNull(data map[string]any) bool {
	for _, v := range data {
		if v == nil {
			return true
		}
	}
	return len(data) == 0
}

// targets makes fresh things for an operation to act on, as the operator.
type targets struct {
	t *testing.T
	a *api
	o *org
	n int
}

func (f *targets) next() int { f.n++; return f.n }

func (f *targets) name(prefix string) string { return fmt.Sprintf("%s %d", prefix, f.next()) }

func (f *targets) op() access.Viewer { return access.OperatorViewer(f.o.tenant.ID) }

func (f *targets) check(err error) {
	f.t.Helper()
	if err != nil {
		f.t.Fatal(err)
	}
}

// user is a new person of the tenant (SCIM-provisioned; editable in manual mode).
func (f *targets) user() string {
	u, err := f.a.identity.CreateUser(context.Background(), f.o.tenant.ID, identity.User{
		UserName: fmt.Sprintf("u%d@%s.test", f.next(), f.o.tenant.Slug), Active: true})
	f.check(err)
	return u.ID
}

func (f *targets) deactivated() string {
	id := f.user()
	_, err := f.a.access.SetUserActive(context.Background(), f.op(), id, false)
	f.check(err)
	return id
}

func (f *targets) group(members ...string) string {
	g, err := f.a.access.CreateGroupAs(context.Background(), f.op(), f.name("group"), members)
	f.check(err)
	return g.ID
}

// space is a new space; the viewers named see it through a viewer grant.
func (f *targets) space(viewers ...string) string {
	s, err := f.a.access.CreateSpace(context.Background(), f.op(), f.name("space"), "")
	f.check(err)
	for _, v := range viewers {
		if v != "" {
			f.grant(s.ID, "user", v)
		}
	}
	return s.ID
}

func (f *targets) grant(space, typ, id string) {
	_, err := f.a.access.GrantAccess(context.Background(), f.op(), space, typ, id, access.SpaceViewer)
	f.check(err)
}

// role is a new custom role without permissions (anyone may give it).
func (f *targets) role() string {
	r, err := f.a.access.CreateRole(context.Background(), f.op(), f.name("role"), nil)
	f.check(err)
	return r.ID
}

func (f *targets) token() string {
	it, err := f.a.tenancy.IssueSCIMToken(context.Background(), f.o.tenant.ID, f.name("token"), 0)
	f.check(err)
	return it.Token.ID
}

func (f *targets) urn() string {
	return fmt.Sprintf("urn:ietf:params:scim:schemas:extension:%s%d:2.0:User", f.o.tenant.Slug, f.next())
}

// extension is the URN of a newly declared SCIM extension.
func (f *targets) extension() string {
	x, err := f.a.identity.SetUserExtension(context.Background(), f.o.tenant.ID,
		[]byte(`{"id": "`+f.urn()+`", "attributes": [{"name": "costCenter"}]}`))
	f.check(err)
	return x.URN
}

// Another tenant's ids behave exactly like ids that do not exist, in every query and
// mutation that takes one, and no list shows anything of another tenant.
func TestTenantIsolation(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		a := newAPI(t, bdb)
		acme := a.newOrg("acme", tenancy.ProvisioningManual, tenancy.FeatureUserGroups)
		globex := a.newOrg("globex", tenancy.ProvisioningManual, tenancy.FeatureUserGroups)
		mine, theirs := &targets{t: t, a: a, o: acme}, &targets{t: t, a: a, o: globex}
		ctx := context.Background()
		their := struct{ user, deactivated, group, space, role, token, urn string }{theirs.user(), theirs.deactivated(),
			"", theirs.space(), theirs.role(), theirs.token(), theirs.extension()}
		their.group = theirs.group(their.user)
		theirs.grant(their.space, "group", their.group)
		if err := a.access.MapGroupToRole(ctx, theirs.op(), their.group, their.role); err != nil {
			t.Fatal(err)
		}
		my := struct{ user, group, space, role string }{mine.user(), mine.group(), mine.space(), mine.role()}
		owner := acme.tokens["owner"]

		for _, field := range []string{"user", "group", "space", "node"} {
			q := `query($id: ID!) { ` + field + `(id: $id) { id } }`
			for _, id := range []string{gid("User", their.user), gid("Group", their.group), gid("Space", their.space), gid("Tenant", globex.tenant.ID)} {
				if d := a.must(owner, q, map[string]any{"id": id}); d[field] != nil {
					t.Errorf("%s with another tenant's id: %v; want null", field, d)
				}
			}
		}
		muts := []struct {
			name string
			q    string
			vars map[string]any
		}{
			{"users by their group", `query($g: ID!) { users(filter: {groupId: $g}) { nodes { id } } }`, map[string]any{"g": gid("Group", their.group)}},
			{"updateSpace", `mutation($id: ID!) { updateSpace(input: {id: $id, name: "x"}) { id } }`, map[string]any{"id": gid("Space", their.space)}},
			{"deleteSpace", `mutation($id: ID!) { deleteSpace(id: $id) }`, map[string]any{"id": gid("Space", their.space)}},
			{"grantSpaceAccess on their space", `mutation($s: ID!, $p: ID!) { grantSpaceAccess(input: {spaceId: $s, principalId: $p, role: VIEWER}) { id } }`,
				map[string]any{"s": gid("Space", their.space), "p": gid("User", my.user)}},
			{"grantSpaceAccess to their user", `mutation($s: ID!, $p: ID!) { grantSpaceAccess(input: {spaceId: $s, principalId: $p, role: VIEWER}) { id } }`,
				map[string]any{"s": gid("Space", my.space), "p": gid("User", their.user)}},
			{"grantSpaceAccess to their group", `mutation($s: ID!, $p: ID!) { grantSpaceAccess(input: {spaceId: $s, principalId: $p, role: VIEWER}) { id } }`,
				map[string]any{"s": gid("Space", my.space), "p": gid("Group", their.group)}},
			{"revokeSpaceAccess on their space", `mutation($s: ID!, $p: ID!) { revokeSpaceAccess(spaceId: $s, principalId: $p) }`,
				map[string]any{"s": gid("Space", their.space), "p": gid("Group", their.group)}},
			{"revokeSpaceAccess of their user", `mutation($s: ID!, $p: ID!) { revokeSpaceAccess(spaceId: $s, principalId: $p) }`,
				map[string]any{"s": gid("Space", my.space), "p": gid("User", their.user)}},
			{"setUserRole of their user", `mutation($u: ID!, $r: ID!) { setUserRole(userId: $u, roleId: $r) { id } }`, map[string]any{"u": gid("User", their.user), "r": "admin"}},
			{"setUserRole to their role", `mutation($u: ID!, $r: ID!) { setUserRole(userId: $u, roleId: $r) { id } }`, map[string]any{"u": gid("User", my.user), "r": their.role}},
			{"updateRole", `mutation($id: ID!) { updateRole(id: $id, name: "x") { id } }`, map[string]any{"id": their.role}},
			{"deleteRole", `mutation($id: ID!) { deleteRole(id: $id) }`, map[string]any{"id": their.role}},
			{"mapGroupToRole their group", `mutation($g: ID!, $r: ID!) { mapGroupToRole(groupId: $g, roleId: $r) { role { id } } }`, map[string]any{"g": gid("Group", their.group), "r": "admin"}},
			{"mapGroupToRole their role", `mutation($g: ID!, $r: ID!) { mapGroupToRole(groupId: $g, roleId: $r) { role { id } } }`, map[string]any{"g": gid("Group", my.group), "r": their.role}},
			{"unmapGroupRole their group", `mutation($g: ID!, $r: ID!) { unmapGroupRole(groupId: $g, roleId: $r) }`, map[string]any{"g": gid("Group", their.group), "r": their.role}},
			{"unmapGroupRole their role", `mutation($g: ID!, $r: ID!) { unmapGroupRole(groupId: $g, roleId: $r) }`, map[string]any{"g": gid("Group", my.group), "r": their.role}},
			{"revokeSCIMToken", `mutation($id: ID!) { revokeSCIMToken(id: $id) }`, map[string]any{"id": their.token}},
			{"removeScimExtension", `mutation($u: String!) { removeScimExtension(urn: $u) }`, map[string]any{"u": their.urn}},
			{"revokeUserSessions", `mutation($id: ID!) { revokeUserSessions(userId: $id) }`, map[string]any{"id": gid("User", their.user)}},
			{"updateUser", `mutation($id: ID!) { updateUser(input: {id: $id, displayName: "x"}) { id } }`, map[string]any{"id": gid("User", their.user)}},
			{"deactivateUser", `mutation($id: ID!) { deactivateUser(id: $id) { id } }`, map[string]any{"id": gid("User", their.user)}},
			{"reactivateUser", `mutation($id: ID!) { reactivateUser(id: $id) { id } }`, map[string]any{"id": gid("User", their.deactivated)}},
			{"createGroup with their member", `mutation($id: ID!) { createGroup(input: {displayName: "mine", memberIds: [$id]}) { id } }`, map[string]any{"id": gid("User", their.user)}},
			{"updateGroup", `mutation($id: ID!) { updateGroup(input: {id: $id, displayName: "x"}) { id } }`, map[string]any{"id": gid("Group", their.group)}},
			{"updateGroup adding their member", `mutation($id: ID!, $m: ID!) { updateGroup(input: {id: $id, addMemberIds: [$m]}) { id } }`,
				map[string]any{"id": gid("Group", my.group), "m": gid("User", their.user)}},
			{"deleteGroup", `mutation($id: ID!) { deleteGroup(id: $id) }`, map[string]any{"id": gid("Group", their.group)}},
		}
		for _, m := range muts {
			if r := a.gql(owner, m.q, m.vars); r.code() != "NOT_FOUND" {
				t.Errorf("%s: %+v; want NOT_FOUND", m.name, r.Errors)
			}
		}

		// What acme's owner can list shows nothing of globex. (Operations acme runs
		// without ids land in acme: declaring globex's URN makes acme's own.)
		a.must(owner, `mutation($u: String!) { setScimExtension(input: {urn: $u, attributes: [{name: "x"}]}) { urn } }`, map[string]any{"u": their.urn})
		var body []byte
		var d map[string]any
		for _, q := range []string{
			`{ viewer { sessions { id } roles { role { id } group { id } } } tenant { id scimTokens { id name } scimExtensions { urn } }
			   roles { id name } roleMappings { group { id } role { id } } }`,
			`{ users(first: 20) { nodes { id userName groups { id } roles { role { id } group { id } } effectiveSpaces { space { id } } } } }`,
			`{ groups(first: 20) { nodes { id displayName members(first: 20) { nodes { id } } spaceGrants { space { id } } } } }`,
			`{ spaces(first: 20) { nodes { id name grants { principal { ... on User { id } ... on Group { id } } } effectiveMembers { nodes { user { id } } } } } }`,
			`{ auditEvents(first: 100) { nodes { id actor { id } target { id display } changes { before after } } } }`,
		} {
			part := a.must(owner, q, nil)
			if part["users"] != nil {
				d = part
			}
			b, _ := json.Marshal(part)
			body = append(body, b...)
		}
		for _, id := range []string{globex.tenant.ID, their.user, their.deactivated, their.group, their.space, their.role, their.token,
			gid("User", their.user), gid("Group", their.group), gid("Space", their.space), "@globex.test"} {
			if strings.Contains(string(body), id) {
				t.Errorf("acme's lists show %q of globex", id)
			}
		}
		for _, id := range globex.ids {
			if strings.Contains(string(body), id) {
				t.Errorf("acme's lists show globex's user %s", id)
			}
		}
		if n := len(dig(d, "users.nodes").([]any)); n != len(acme.ids)+1 {
			t.Errorf("acme lists %d users, want %d", n, len(acme.ids)+1)
		}

		// And nothing of theirs changed.
		gOwner := globex.tokens["owner"]
		d = a.must(gOwner, `query($u: ID!, $d: ID!, $g: ID!, $s: ID!) { user(id: $u) { active groups { id } }
			off: user(id: $d) { active } group(id: $g) { displayName } space(id: $s) { name grants { role } }
			roles { id name } roleMappings { role { id } } tenant { scimTokens { id state } scimExtensions { urn } } }`,
			map[string]any{"u": gid("User", their.user), "d": gid("User", their.deactivated), "g": gid("Group", their.group), "s": gid("Space", their.space)})
		body, _ = json.Marshal(d)
		if dig(d, "user.active") != true || dig(d, "off.active") != false || dig(d, "group.displayName") == nil ||
			dig(d, "space.grants.0.role") != "VIEWER" || dig(d, "roleMappings.0.role.id") != their.role ||
			!strings.Contains(string(body), `"state":"active"`) || !strings.Contains(string(body), their.urn) ||
			!strings.Contains(string(body), their.role) {
			t.Fatalf("globex's things changed: %s", body)
		}
	})
}

// Every connection pages forward without repeats or gaps, answers an empty last page
// past the end, and refuses a cursor it did not give; the users filters narrow.
func TestPagination(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		a := newAPI(t, bdb)
		o := a.newOrg("acme", tenancy.ProvisioningManual, tenancy.FeatureUserGroups)
		f := &targets{t: t, a: a, o: o}
		ctx := context.Background()
		for i := range 7 {
			o.add(a, fmt.Sprintf("extra%d", i))
		}
		var extras []string
		for i := range 7 {
			extras = append(extras, o.ids[fmt.Sprintf("extra%d", i)])
		}
		big := f.group(extras...)
		for range 4 {
			f.group()
		}
		var spaces []string
		for range 6 {
			spaces = append(spaces, f.space())
		}
		// The member sees three of the six: two granted to them, one through a group.
		f.grant(spaces[1], "user", o.ids["member"])
		f.grant(spaces[4], "user", o.ids["member"])
		f.grant(spaces[5], "group", f.group(o.ids["member"]))
		for _, id := range extras[:2] {
			if _, err := a.access.SetUserActive(ctx, f.op(), id, false); err != nil {
				t.Fatal(err)
			}
		}
		member, manager := o.tokens["member"], o.tokens["manage_spaces"]

		// walk pages a connection (at path, with after as $a) two at a time and returns the
		// ids in order, checking each page and what follows the last.
		walk := func(token, q, path string, vars map[string]any) []string {
			t.Helper()
			if vars == nil {
				vars = map[string]any{}
			}
			var ids []string
			seen := map[string]bool{}
			var after any
			for pages := 0; ; pages++ {
				vars["a"] = after
				d := a.must(token, q, vars)
				nodes := dig(d, path+".nodes").([]any)
				for i, n := range nodes {
					node := n.(map[string]any)
					if u, ok := node["user"]; ok { // a space's member
						node = u.(map[string]any)
					}
					id := node["id"].(string)
					if seen[id] {
						t.Fatalf("%s: %s on two pages", path, id)
					}
					seen[id] = true
					ids = append(ids, id)
					if cur := dig(d, path+".edges."+fmt.Sprint(i)+".cursor"); i == len(nodes)-1 && cur != dig(d, path+".pageInfo.endCursor") {
						t.Fatalf("%s: endCursor %v is not the last edge's cursor %v", path, dig(d, path+".pageInfo.endCursor"), cur)
					}
				}
				if len(nodes) > 2 || len(nodes) < 2 && dig(d, path+".pageInfo.hasNextPage") == true {
					t.Fatalf("%s: page of %d with hasNextPage %v", path, len(nodes), dig(d, path+".pageInfo.hasNextPage"))
				}
				if dig(d, path+".pageInfo.hasNextPage") != true {
					break
				}
				after = dig(d, path+".pageInfo.endCursor")
			}
			// Past the end: an empty page, no next page, no end cursor.
			if after = dig(a.must(token, q, vars), path+".pageInfo.endCursor"); after != nil {
				vars["a"] = after
				d := a.must(token, q, vars)
				if len(dig(d, path+".nodes").([]any)) != 0 || dig(d, path+".pageInfo.hasNextPage") != false || dig(d, path+".pageInfo.endCursor") != nil {
					t.Fatalf("%s past the end: %v", path, d)
				}
			}
			for _, bad := range []string{"garbage", "Y29m", gid("User", o.ids["owner"])} {
				vars["a"] = bad
				if r := a.gql(token, q, vars); r.code() != "BAD_USER_INPUT" || !strings.Contains(r.Errors[0].Message, "cursor") {
					t.Errorf("%s with cursor %q: %+v; want BAD_USER_INPUT", path, bad, r.Errors)
				}
			}
			return ids
		}
		const page = `edges { cursor } nodes { id } pageInfo { hasNextPage endCursor }`
		users := walk(member, `query($a: String) { users(first: 2, after: $a) { `+page+` } }`, "users", nil)
		if len(users) != len(o.ids) {
			t.Errorf("users: %d, want %d", len(users), len(o.ids))
		}
		if groups := walk(member, `query($a: String) { groups(first: 2, after: $a) { `+page+` } }`, "groups", nil); len(groups) != 6 {
			t.Errorf("groups: %d, want 6", len(groups))
		}
		members := walk(member, `query($g: ID!, $a: String) { group(id: $g) { members(first: 2, after: $a) { `+page+` } } }`,
			"group.members", map[string]any{"g": gid("Group", big)})
		if want := mapIDs("User", extras); strings.Join(members, ",") != strings.Join(want, ",") {
			t.Errorf("members:\n%v\nwant\n%v", members, want)
		}
		if all := walk(manager, `query($a: String) { spaces(first: 2, after: $a) { `+page+` } }`, "spaces", nil); strings.Join(all, ",") != strings.Join(mapIDs("Space", spaces), ",") {
			t.Errorf("spaces for a space manager: %v", all)
		}
		// A space's members: seven through the group, one of them also directly.
		f.grant(spaces[0], "group", big)
		f.grant(spaces[0], "user", extras[3])
		spaceMembers := walk(manager, `query($s: ID!, $a: String) { space(id: $s) { effectiveMembers(first: 2, after: $a) {
			edges { cursor } nodes { user { id } } pageInfo { hasNextPage endCursor } } } }`,
			"space.effectiveMembers", map[string]any{"s": gid("Space", spaces[0])})
		if want := mapIDs("User", extras); strings.Join(spaceMembers, ",") != strings.Join(want, ",") {
			t.Errorf("space members:\n%v\nwant\n%v", spaceMembers, want)
		}
		mine := walk(member, `query($a: String) { spaces(first: 2, after: $a) { `+page+` } }`, "spaces", nil)
		if want := mapIDs("Space", []string{spaces[1], spaces[4], spaces[5]}); strings.Join(mine, ",") != strings.Join(want, ",") {
			t.Errorf("spaces for a member: %v, want %v", mine, want)
		}
		for _, first := range []int{0, 101, -1} {
			if r := a.gql(member, `query($f: Int) { users(first: $f) { nodes { id } } }`, map[string]any{"f": first}); r.code() != "BAD_USER_INPUT" {
				t.Errorf("first %d: %+v; want BAD_USER_INPUT", first, r.Errors)
			}
		}

		// Filters: active, groupId, search, and all of them together.
		filtered := func(filter map[string]any) []string {
			t.Helper()
			d := a.must(member, `query($f: UserFilter) { users(first: 100, filter: $f) { nodes { id } } }`, map[string]any{"f": filter})
			var ids []string
			for _, n := range dig(d, "users.nodes").([]any) {
				ids = append(ids, n.(map[string]any)["id"].(string))
			}
			return ids
		}
		for _, c := range []struct {
			name   string
			filter map[string]any
			want   []string
		}{
			{"inactive", map[string]any{"active": false}, extras[:2]},
			{"in the group", map[string]any{"groupId": gid("Group", big)}, extras},
			{"active in the group", map[string]any{"groupId": gid("Group", big), "active": true}, extras[2:]},
			{"search", map[string]any{"search": "EXTRA"}, extras},
			{"search active in the group", map[string]any{"search": "extra6", "active": true, "groupId": gid("Group", big)}, extras[6:]},
		} {
			if got := filtered(c.filter); strings.Join(got, ",") != strings.Join(mapIDs("User", c.want), ",") {
				t.Errorf("%s: %v, want %v", c.name, got, mapIDs("User", c.want))
			}
		}
		if n := len(filtered(map[string]any{"active": true})); n != len(o.ids)-2 {
			t.Errorf("active: %d, want %d", n, len(o.ids)-2)
		}
	})
}

func mapIDs(kind string, raw []string) []string {
	out := make([]string, len(raw))
	for i, r := range raw {
		out[i] = gid(kind, r)
	}
	return out
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

// node(id) returns each kind of object of the viewer's own tenant; users are
// deactivated and reactivated, groups renamed, refilled and deleted, as a front end does.
func TestNodesAndLifecycles(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		a := newAPI(t, bdb)
		o := a.newOrg("acme", tenancy.ProvisioningManual, tenancy.FeatureUserGroups)
		f := &targets{t: t, a: a, o: o}
		admin := o.tokens["admin"]
		user, space := f.user(), f.space()
		group := f.group(user)
		q := `query($id: ID!) { node(id: $id) { __typename id
			... on User { userName } ... on Group { displayName } ... on Space { name } ... on Tenant { slug } } }`
		for _, c := range []struct{ kind, raw, field string }{
			{"User", user, "userName"}, {"Group", group, "displayName"}, {"Space", space, "name"}, {"Tenant", o.tenant.ID, "slug"},
		} {
			d := a.must(admin, q, map[string]any{"id": gid(c.kind, c.raw)})
			if dig(d, "node.__typename") != c.kind || dig(d, "node.id") != gid(c.kind, c.raw) || dig(d, "node."+c.field) == "" || dig(d, "node."+c.field) == nil {
				t.Errorf("node of a %s: %v", c.kind, d)
			}
		}
		for _, bad := range []string{"garbage", gid("Session", "x"), gid("User", "01nosuchuser")} {
			if d := a.must(admin, q, map[string]any{"id": bad}); d["node"] != nil {
				t.Errorf("node(%q): %v; want null", bad, d)
			}
		}

		// Deactivated, the user cannot sign in; reactivated, they may again (anew).
		uid := map[string]any{"id": gid("User", user)}
		if d := a.must(admin, `mutation($id: ID!) { deactivateUser(id: $id) { active } }`, uid); dig(d, "deactivateUser.active") != false {
			t.Fatalf("deactivate: %v", d)
		}
		if d := a.must(admin, `mutation($id: ID!) { reactivateUser(id: $id) { active } }`, uid); dig(d, "reactivateUser.active") != true {
			t.Fatalf("reactivate: %v", d)
		}
		if d := a.must(admin, `query($id: ID!) { user(id: $id) { active } }`, uid); dig(d, "user.active") != true {
			t.Fatalf("after reactivation: %v", d)
		}

		// A group renamed, with one member out and two in; then deleted.
		other, third := f.user(), f.user()
		gidv := gid("Group", group)
		d := a.must(admin, `mutation($id: ID!, $add: [ID!], $rm: [ID!]) { updateGroup(input: {id: $id, displayName: "Platform", addMemberIds: $add, removeMemberIds: $rm}) {
			displayName members { nodes { id } } } }`, map[string]any{"id": gidv, "add": []string{gid("User", other), gid("User", third)}, "rm": []string{gid("User", user)}})
		got, _ := json.Marshal(dig(d, "updateGroup.members.nodes"))
		want, _ := json.Marshal([]map[string]string{{"id": gid("User", other)}, {"id": gid("User", third)}})
		if dig(d, "updateGroup.displayName") != "Platform" || string(got) != string(want) {
			t.Fatalf("updateGroup: %v", d)
		}
		if d := a.must(admin, `mutation($id: ID!) { deleteGroup(id: $id) }`, map[string]any{"id": gidv}); d["deleteGroup"] != gidv {
			t.Fatalf("deleteGroup: %v", d)
		}
		if d := a.must(admin, `query($id: ID!, $u: ID!) { group(id: $id) { id } user(id: $u) { groups { id } } }`, map[string]any{"id": gidv, "u": gid("User", other)}); d["group"] != nil || len(dig(d, "user.groups").([]any)) != 0 {
			t.Fatalf("after deleteGroup: %v", d)
		}
	})
}

// A space's MANAGER (here through a group) may change it and its access without
// MANAGE_SPACES, but not delete it; an EDITOR may do none of it.
func TestSpaceManagerRole(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		a := newAPI(t, bdb)
		o := a.newOrg("acme", tenancy.ProvisioningManual, tenancy.FeatureUserGroups)
		f := &targets{t: t, a: a, o: o}
		sp := f.space()
		managers := f.group(o.ids["member"])
		if _, err := a.access.GrantAccess(context.Background(), f.op(), sp, "group", managers, access.SpaceManager); err != nil {
			t.Fatal(err)
		}
		if _, err := a.access.GrantAccess(context.Background(), f.op(), sp, "user", o.ids["manage_users"], access.SpaceEditor); err != nil {
			t.Fatal(err)
		}
		grantee := gid("User", f.user())
		vars := map[string]any{"s": gid("Space", sp), "p": grantee}
		ops := []struct{ name, q string }{
			{"updateSpace", `mutation($s: ID!) { updateSpace(input: {id: $s, description: "managed"}) { description viewerRole } }`},
			{"grantSpaceAccess", `mutation($s: ID!, $p: ID!) { grantSpaceAccess(input: {spaceId: $s, principalId: $p, role: EDITOR}) { role } }`},
			{"revokeSpaceAccess", `mutation($s: ID!, $p: ID!) { revokeSpaceAccess(spaceId: $s, principalId: $p) }`},
		}
		for _, op := range ops {
			if r := a.gql(o.tokens["manage_users"], op.q, vars); r.code() != "FORBIDDEN" || !strings.Contains(r.Errors[0].Message, "manager role") {
				t.Errorf("%s by an editor: %+v; want FORBIDDEN", op.name, r.Errors)
			}
			if r := a.gql(o.tokens["member"], op.q, vars); len(r.Errors) > 0 {
				t.Errorf("%s by the space's manager: %+v", op.name, r.Errors)
			}
		}
		if r := a.gql(o.tokens["member"], `mutation($s: ID!) { deleteSpace(id: $s) }`, vars); r.code() != "FORBIDDEN" || !strings.Contains(r.Errors[0].Message, "manage_spaces") {
			t.Errorf("deleteSpace by the space's manager: %+v; want FORBIDDEN", r.Errors)
		}
		if d := a.must(o.tokens["member"], `query($s: ID!) { space(id: $s) { description viewerRole } }`, vars); dig(d, "space.viewerRole") != "MANAGER" || dig(d, "space.description") != "managed" {
			t.Errorf("the manager's view: %v", d)
		}
	})
}

// Single sign-on finds a person by userName, then by email, so whoever sets those takes
// over the account at the next sign-in. Changing them is therefore limited like giving
// the person's roles: MANAGE_USERS alone may not rename an admin or an owner to their
// own IdP login, and an admin may not rename an owner; other fields, and people whose
// roles the caller may give, stay editable.
func TestSignInNamesFollowRoles(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		a := newAPI(t, bdb)
		o := a.newOrg("acme", tenancy.ProvisioningManual)
		q := `mutation($id: ID!, $u: String, $e: String, $d: String) { updateUser(input: {id: $id, userName: $u, email: $e, displayName: $d}) { userName email displayName } }`
		for _, c := range []struct {
			caller, target, field string
			allowed               bool
		}{
			{"manage_users", "owner", "u", false},
			{"manage_users", "owner", "e", false},
			{"manage_users", "admin", "u", false},
			{"manage_users", "admin", "e", false},
			{"admin", "owner", "u", false},
			{"admin", "owner", "e", false},
			{"manage_users", "admin", "d", true},
			{"manage_users", "member", "u", true},
			{"manage_users", "manage_users", "u", true},
			{"admin", "admin", "e", true},
			{"owner", "admin", "u", true},
		} {
			vars := map[string]any{"id": gid("User", o.ids[c.target]), c.field: fmt.Sprintf("%s-by-%s-%s@acme.test", c.target, c.caller, c.field)}
			r := a.gql(o.tokens[c.caller], q, vars)
			if c.allowed && len(r.Errors) > 0 {
				t.Errorf("%s changing %s of %s: %+v", c.caller, c.field, c.target, r.Errors)
			}
			if !c.allowed && r.code() != "FORBIDDEN" {
				t.Errorf("%s changing %s of %s: %+v %v; want FORBIDDEN", c.caller, c.field, c.target, r.Errors, r.Data)
			}
		}
	})
}
