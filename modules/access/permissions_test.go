package access_test

import (
	"strings"
	"testing"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/samltest"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/access"
	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/identity"
	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

type persona struct {
	name string
	v    access.Viewer
}

// personas are a member, an admin, an owner and, for every permission, someone whose
// custom role carries just that permission.
func personas(f *fx, tenantID string) []persona {
	ps := []persona{
		{"member", f.person(tenantID, "Mia Member", access.RoleMember)},
		{"admin", f.person(tenantID, "Ada Admin", access.RoleAdmin)},
		{"owner", f.person(tenantID, "Olga Owner", access.RoleOwner)},
	}
	for _, p := range access.AllPermissions {
		r := f.role(tenantID, "Only "+string(p), p)
		ps = append(ps, persona{"only " + string(p), f.person(tenantID, "Cus "+string(p), r.ID)})
	}
	return ps
}

// permissionCase is one function: the permission it needs ("" = any viewer of the
// tenant), how a refusal looks, and prep, which sets up what the call needs and returns
// the call.
type permissionCase struct {
	name   string
	perm   access.Permission
	denied apperr.Kind
	prep   func(f *fx, tid string, v access.Viewer) func() error
}

// ownerOnly are the functions that need the owner role besides their permission: what
// they do would hand whoever does it every role.
var ownerOnly = map[string]bool{"ConfigureSAML": true, "IssueSCIMToken": true}

// seeSpace creates a space the viewer can see (a viewer grant), so that a refusal is
// Forbidden rather than not found.
func seeSpace(f *fx, tid string, v access.Viewer) access.Space {
	sp := f.space(tid, f.name("Space"))
	if v.UserID != "" {
		f.grant(tid, sp.ID, access.PrincipalUser, v.UserID, access.SpaceViewer)
	}
	return sp
}

var permissionCases = []permissionCase{
	{"ListRoles", "", "", func(f *fx, tid string, v access.Viewer) func() error {
		return func() error { _, err := f.acc.ListRoles(ctx, v); return err }
	}},
	{"RoleMappings", "", "", func(f *fx, tid string, v access.Viewer) func() error {
		return func() error { _, err := f.acc.RoleMappings(ctx, v); return err }
	}},
	{"CreateRole", access.PermManageCompanySettings, apperr.KindForbidden, func(f *fx, tid string, v access.Viewer) func() error {
		return func() error { _, err := f.acc.CreateRole(ctx, v, f.name("Role"), nil); return err }
	}},
	{"UpdateRole", access.PermManageCompanySettings, apperr.KindForbidden, func(f *fx, tid string, v access.Viewer) func() error {
		r := f.role(tid, f.name("Role"))
		name := f.name("Renamed")
		return func() error { _, err := f.acc.UpdateRole(ctx, v, r.ID, &name, nil); return err }
	}},
	{"DeleteRole", access.PermManageCompanySettings, apperr.KindForbidden, func(f *fx, tid string, v access.Viewer) func() error {
		r := f.role(tid, f.name("Role"))
		return func() error { return f.acc.DeleteRole(ctx, v, r.ID) }
	}},
	{"SetUserRole", access.PermManageUsers, apperr.KindForbidden, func(f *fx, tid string, v access.Viewer) func() error {
		u := f.user(tid, "Target", identity.SourceApp)
		r := f.role(tid, f.name("Reader"))
		return func() error { return f.acc.SetUserRole(ctx, v, u.ID, r.ID) }
	}},
	{"MapGroupToRole", access.PermManageCompanySettings, apperr.KindForbidden, func(f *fx, tid string, v access.Viewer) func() error {
		g := f.group(tid, f.name("Group"), identity.SourceApp)
		r := f.role(tid, f.name("Reader"))
		return func() error { return f.acc.MapGroupToRole(ctx, v, g.ID, r.ID) }
	}},
	{"UnmapGroupRole", access.PermManageCompanySettings, apperr.KindForbidden, func(f *fx, tid string, v access.Viewer) func() error {
		g := f.group(tid, f.name("Group"), identity.SourceApp)
		r := f.role(tid, f.name("Reader"))
		must(f.t, f.acc.MapGroupToRole(ctx, f.op(tid), g.ID, r.ID))
		return func() error { return f.acc.UnmapGroupRole(ctx, v, g.ID, r.ID) }
	}},
	{"CreateSpace", access.PermManageSpaces, apperr.KindForbidden, func(f *fx, tid string, v access.Viewer) func() error {
		return func() error { _, err := f.acc.CreateSpace(ctx, v, f.name("Space"), "d"); return err }
	}},
	{"UpdateSpace", access.PermManageSpaces, apperr.KindForbidden, func(f *fx, tid string, v access.Viewer) func() error {
		sp := seeSpace(f, tid, v)
		name := f.name("Renamed")
		return func() error { _, err := f.acc.UpdateSpace(ctx, v, sp.ID, &name, nil); return err }
	}},
	{"DeleteSpace", access.PermManageSpaces, apperr.KindForbidden, func(f *fx, tid string, v access.Viewer) func() error {
		sp := seeSpace(f, tid, v)
		return func() error { return f.acc.DeleteSpace(ctx, v, sp.ID) }
	}},
	{"Space", access.PermManageSpaces, apperr.KindNotFound, func(f *fx, tid string, v access.Viewer) func() error {
		sp := f.space(tid, f.name("Space"))
		return func() error { _, err := f.acc.Space(ctx, v, sp.ID); return err }
	}},
	{"ListSpaces", "", "", func(f *fx, tid string, v access.Viewer) func() error {
		return func() error { _, _, err := f.acc.ListSpaces(ctx, v, "", 10); return err }
	}},
	{"GrantAccess", access.PermManageSpaces, apperr.KindForbidden, func(f *fx, tid string, v access.Viewer) func() error {
		sp := seeSpace(f, tid, v)
		u := f.user(tid, "Grantee", identity.SourceApp)
		return func() error {
			_, err := f.acc.GrantAccess(ctx, v, sp.ID, access.PrincipalUser, u.ID, access.SpaceEditor)
			return err
		}
	}},
	{"RevokeAccess", access.PermManageSpaces, apperr.KindForbidden, func(f *fx, tid string, v access.Viewer) func() error {
		sp := seeSpace(f, tid, v)
		u := f.user(tid, "Grantee", identity.SourceApp)
		f.grant(tid, sp.ID, access.PrincipalUser, u.ID, access.SpaceEditor)
		return func() error { return f.acc.RevokeAccess(ctx, v, sp.ID, access.PrincipalUser, u.ID) }
	}},
	{"EffectiveMembers", access.PermManageSpaces, apperr.KindNotFound, func(f *fx, tid string, v access.Viewer) func() error {
		sp := f.space(tid, f.name("Space"))
		return func() error { _, _, err := f.acc.EffectiveMembers(ctx, v, sp.ID, "", 10); return err }
	}},
	{"CreateUser", access.PermManageUsers, apperr.KindForbidden, func(f *fx, tid string, v access.Viewer) func() error {
		return func() error {
			_, err := f.acc.CreateUser(ctx, v, identity.User{UserName: f.name("new") + "@example.test", Active: true})
			return err
		}
	}},
	{"UpdateUser", access.PermManageUsers, apperr.KindForbidden, func(f *fx, tid string, v access.Viewer) func() error {
		u := f.user(tid, "Target", identity.SourceApp)
		return func() error {
			_, err := f.acc.UpdateUser(ctx, v, u.ID, 0, func(u *identity.User) error { u.Title = "Contractor"; return nil })
			return err
		}
	}},
	{"SetUserActive", access.PermManageUsers, apperr.KindForbidden, func(f *fx, tid string, v access.Viewer) func() error {
		u := f.user(tid, "Target", identity.SourceApp)
		return func() error { _, err := f.acc.SetUserActive(ctx, v, u.ID, false); return err }
	}},
	{"CreateGroupAs", access.PermManageUserGroups, apperr.KindForbidden, func(f *fx, tid string, v access.Viewer) func() error {
		u := f.user(tid, "Member", identity.SourceApp)
		return func() error { _, err := f.acc.CreateGroupAs(ctx, v, f.name("Group"), []string{u.ID}); return err }
	}},
	{"UpdateGroupAs", access.PermManageUserGroups, apperr.KindForbidden, func(f *fx, tid string, v access.Viewer) func() error {
		g := f.group(tid, f.name("Group"), identity.SourceApp)
		u := f.user(tid, "Member", identity.SourceApp)
		name := f.name("Renamed")
		return func() error { _, err := f.acc.UpdateGroupAs(ctx, v, g.ID, &name, []string{u.ID}, nil); return err }
	}},
	{"DeleteGroupAs", access.PermManageUserGroups, apperr.KindForbidden, func(f *fx, tid string, v access.Viewer) func() error {
		g := f.group(tid, f.name("Group"), identity.SourceApp)
		return func() error { return f.acc.DeleteGroupAs(ctx, v, g.ID) }
	}},

	// Company administration carried out by other modules (company.go).
	{"UpdateTenantSettings", access.PermManageCompanySettings, apperr.KindForbidden, func(f *fx, tid string, v access.Viewer) func() error {
		jit := f.seq%2 == 0
		return func() error {
			_, err := f.acc.UpdateTenantSettings(ctx, v, tenancy.SettingsPatch{JITProvisioning: &jit})
			return err
		}
	}},
	{"ConfigureSAML", access.PermManageCompanySettings, apperr.KindForbidden, func(f *fx, tid string, v access.Viewer) func() error {
		md := samltest.NewIdP(f.t, "https://idp.example.com/"+f.name("idp")).MetadataXML()
		return func() error {
			_, err := f.acc.ConfigureSAML(ctx, v, tenancy.SAMLConfigInput{MetadataXML: md})
			return err
		}
	}},
	{"SAMLConnection", access.PermManageCompanySettings, apperr.KindForbidden, func(f *fx, tid string, v access.Viewer) func() error {
		md := samltest.NewIdP(f.t, "https://idp.example.com/"+f.name("idp")).MetadataXML()
		if _, err := f.tenancy.ConfigureSAML(ctx, tid, tenancy.SAMLConfigInput{MetadataXML: md}); err != nil {
			f.t.Fatal(err)
		}
		return func() error { _, err := f.acc.SAMLConnection(ctx, v); return err }
	}},
	{"IssueSCIMToken", access.PermManageCompanySettings, apperr.KindForbidden, func(f *fx, tid string, v access.Viewer) func() error {
		return func() error { _, err := f.acc.IssueSCIMToken(ctx, v, f.name("Okta"), 0); return err }
	}},
	{"RevokeSCIMToken", access.PermManageCompanySettings, apperr.KindForbidden, func(f *fx, tid string, v access.Viewer) func() error {
		it, err := f.tenancy.IssueSCIMToken(ctx, tid, f.name("Okta"), 0)
		must(f.t, err)
		return func() error { return f.acc.RevokeSCIMToken(ctx, v, it.Token.ID) }
	}},
	{"SCIMTokens", access.PermManageCompanySettings, apperr.KindForbidden, func(f *fx, tid string, v access.Viewer) func() error {
		return func() error { _, err := f.acc.SCIMTokens(ctx, v); return err }
	}},
	{"SetSCIMExtension", access.PermManageCompanySettings, apperr.KindForbidden, func(f *fx, tid string, v access.Viewer) func() error {
		return func() error { _, err := f.acc.SetSCIMExtension(ctx, v, extension(f.name("x"))); return err }
	}},
	{"RemoveSCIMExtension", access.PermManageCompanySettings, apperr.KindForbidden, func(f *fx, tid string, v access.Viewer) func() error {
		x, err := f.ids.SetUserExtension(ctx, tid, extension(f.name("x")))
		must(f.t, err)
		return func() error { return f.acc.RemoveSCIMExtension(ctx, v, x.URN) }
	}},
	{"SCIMExtensions", access.PermManageCompanySettings, apperr.KindForbidden, func(f *fx, tid string, v access.Viewer) func() error {
		return func() error { _, err := f.acc.SCIMExtensions(ctx, v); return err }
	}},
	{"RevokeUserSessions", access.PermManageUsers, apperr.KindForbidden, func(f *fx, tid string, v access.Viewer) func() error {
		u := f.user(tid, "Target", identity.SourceApp)
		return func() error { _, err := f.acc.RevokeUserSessions(ctx, v, u.ID); return err }
	}},
	{"AuditEvents", access.PermViewAuditLog, apperr.KindForbidden, func(f *fx, tid string, v access.Viewer) func() error {
		return func() error { _, _, err := f.acc.AuditEvents(ctx, v, audit.Filter{}, 0, 10); return err }
	}},

	// Reads any person of the company may do.
	{"Users", "", "", func(f *fx, tid string, v access.Viewer) func() error {
		g := f.group(tid, f.name("Group"), identity.SourceApp)
		return func() error {
			_, _, err := f.acc.Users(ctx, v, access.UserQuery{GroupID: g.ID, Search: "u"})
			return err
		}
	}},
	{"UsersByIDs", "", "", func(f *fx, tid string, v access.Viewer) func() error {
		u := f.user(tid, "Someone", identity.SourceApp)
		return func() error { _, err := f.acc.UsersByIDs(ctx, v, []string{u.ID}); return err }
	}},
	{"RolesOfUsers", "", "", func(f *fx, tid string, v access.Viewer) func() error {
		u := f.user(tid, "Someone", identity.SourceApp)
		return func() error { _, err := f.acc.RolesOfUsers(ctx, v, []string{u.ID}); return err }
	}},
	{"PageGroups", "", "", func(f *fx, tid string, v access.Viewer) func() error {
		return func() error { _, _, err := f.acc.PageGroups(ctx, v, "", 10); return err }
	}},
	{"GroupsByIDs", "", "", func(f *fx, tid string, v access.Viewer) func() error {
		g := f.group(tid, f.name("Group"), identity.SourceApp)
		return func() error { _, err := f.acc.GroupsByIDs(ctx, v, []string{g.ID}); return err }
	}},
	{"GroupsOfUsersAs", "", "", func(f *fx, tid string, v access.Viewer) func() error {
		u := f.user(tid, "Someone", identity.SourceApp)
		return func() error { _, err := f.acc.GroupsOfUsersAs(ctx, v, []string{u.ID}); return err }
	}},
	{"MemberPages", "", "", func(f *fx, tid string, v access.Viewer) func() error {
		g := f.group(tid, f.name("Group"), identity.SourceApp)
		return func() error { _, err := f.acc.MemberPages(ctx, v, []string{g.ID}, "", 10); return err }
	}},
	{"SpacesByIDs", "", "", func(f *fx, tid string, v access.Viewer) func() error {
		sp := f.space(tid, f.name("Space"))
		return func() error { _, err := f.acc.SpacesByIDs(ctx, v, []string{sp.ID}); return err }
	}},
	{"GrantsOfSpaces", "", "", func(f *fx, tid string, v access.Viewer) func() error {
		sp := f.space(tid, f.name("Space"))
		return func() error { _, err := f.acc.GrantsOfSpaces(ctx, v, []string{sp.ID}); return err }
	}},
	{"GrantsOfGroups", "", "", func(f *fx, tid string, v access.Viewer) func() error {
		g := f.group(tid, f.name("Group"), identity.SourceApp)
		return func() error { _, err := f.acc.GrantsOfGroups(ctx, v, []string{g.ID}); return err }
	}},
	{"EffectiveSpaces", "", "", func(f *fx, tid string, v access.Viewer) func() error {
		u := f.user(tid, "Someone", identity.SourceApp)
		return func() error { _, err := f.acc.EffectiveSpaces(ctx, v, []string{u.ID}); return err }
	}},
}

// extension is a minimal SCIM User extension declaration named name.
func extension(name string) []byte {
	return []byte(`{"id": "urn:ietf:params:scim:schemas:extension:` + strings.ReplaceAll(name, " ", "") +
		`:2.0:User", "attributes": [{"name": "costCenter"}]}`)
}

// Every function, for a member, an admin, an owner and a one-permission custom role
// per permission: allowed exactly when the viewer has the permission it needs.
func TestPermissionsOfEveryFunction(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		f := newFx(t, bdb)
		tid := f.tenant(tenancy.ProvisioningManual, tenancy.FeatureUserGroups).ID
		ps := personas(f, tid)
		outer := t
		for _, c := range permissionCases {
			t.Run(c.name, func(t *testing.T) {
				f.t = t
				defer func() { f.t = outer }()
				for _, p := range ps {
					call := c.prep(f, tid, p.v)
					err := call()
					hasPerm := c.perm == "" || p.v.Can(c.perm)
					allowed := hasPerm && (!ownerOnly[c.name] || p.v.IsOwner())
					switch {
					case allowed && err != nil:
						t.Errorf("%s: refused: %v", p.name, err)
					case !allowed && hasPerm:
						if apperr.CodeOf(err) != "FORBIDDEN" || !strings.Contains(apperr.PublicMessage(err), "only an owner may") {
							t.Errorf("%s: got %v, want FORBIDDEN: only an owner", p.name, err)
						}
					case !allowed && apperr.KindOf(err) != c.denied:
						t.Errorf("%s: got %v (kind %q), want kind %q", p.name, err, apperr.KindOf(err), c.denied)
					case !allowed && c.denied == apperr.KindForbidden && apperr.CodeOf(err) != "FORBIDDEN":
						t.Errorf("%s: code %q, want FORBIDDEN", p.name, apperr.CodeOf(err))
					case !allowed && c.denied == apperr.KindForbidden && !strings.Contains(apperr.PublicMessage(err), string(c.perm)):
						t.Errorf("%s: message %q does not name %s", p.name, apperr.PublicMessage(err), c.perm)
					}
				}
			})
		}
		// A viewer nobody signed in as is refused everything.
		for _, c := range permissionCases {
			if err := c.prep(f, tid, access.Viewer{})(); apperr.KindOf(err) != apperr.KindUnauthenticated {
				t.Errorf("%s with no viewer: %v", c.name, err)
			}
		}
	})
}

// The permissions each persona ends up with.
func TestViewerPermissions(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		f := newFx(t, bdb)
		tid := f.tenant(tenancy.ProvisioningManual, tenancy.FeatureUserGroups).ID
		for _, p := range personas(f, tid) {
			var want []access.Permission
			switch p.name {
			case "member":
			case "admin", "owner":
				want = access.AllPermissions
			default:
				want = []access.Permission{access.Permission(p.name[len("only "):])}
			}
			if len(p.v.Permissions) != len(want) {
				t.Errorf("%s: permissions %v, want %v", p.name, p.v.Permissions, want)
			}
			for _, w := range want {
				if !p.v.Can(w) {
					t.Errorf("%s cannot %s", p.name, w)
				}
			}
			if p.v.IsOwner() != (p.name == "owner") {
				t.Errorf("%s: IsOwner = %v", p.name, p.v.IsOwner())
			}
			if len(p.v.Roles) != 1 || p.v.Roles[0].Source != access.SourceDirect {
				t.Errorf("%s: roles %+v, want one direct role", p.name, p.v.Roles)
			}
		}
	})
}

// A space manager may change the space and its grants but not delete it; viewers and
// editors may do none of it; someone without access does not see the space at all.
func TestSpaceManagerRights(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		f := newFx(t, bdb)
		tid := f.tenant(tenancy.ProvisioningManual, tenancy.FeatureUserGroups).ID
		grantee := f.user(tid, "Grantee", identity.SourceApp)
		for _, c := range []struct {
			role access.SpaceRole
			may  bool
		}{{access.SpaceViewer, false}, {access.SpaceEditor, false}, {access.SpaceManager, true}, {"", false}} {
			v := f.person(tid, "Sam", access.RoleMember)
			sp := f.space(tid, f.name("Space"))
			// The manager's rights come through a group, to show group grants count.
			if c.role != "" {
				g := f.group(tid, f.name("Team"), identity.SourceApp, v.UserID)
				f.grant(tid, sp.ID, access.PrincipalGroup, g.ID, c.role)
			}
			name := f.name("Renamed")
			_, errUpdate := f.acc.UpdateSpace(ctx, v, sp.ID, &name, nil)
			_, errGrant := f.acc.GrantAccess(ctx, v, sp.ID, access.PrincipalUser, grantee.ID, access.SpaceManager)
			errRevoke := f.acc.RevokeAccess(ctx, v, sp.ID, access.PrincipalUser, grantee.ID)
			errDelete := f.acc.DeleteSpace(ctx, v, sp.ID)
			want := apperr.Kind("")
			switch {
			case c.role == "":
				want = apperr.KindNotFound
			case !c.may:
				want = apperr.KindForbidden
			}
			for what, err := range map[string]error{"update": errUpdate, "grant": errGrant, "revoke": errRevoke} {
				if apperr.KindOf(err) != want {
					t.Errorf("%q %s: %v, want kind %q", c.role, what, err, want)
				}
			}
			wantDelete := apperr.KindForbidden
			if c.role == "" {
				wantDelete = apperr.KindNotFound
			}
			if apperr.KindOf(errDelete) != wantDelete {
				t.Errorf("%q delete: %v, want kind %q", c.role, errDelete, wantDelete)
			}
		}
	})
}

// Nobody raises their own rights: a role is given, taken, created or changed only by
// someone holding every permission it carries, and "owner" only by owners.
func TestNoPrivilegeEscalation(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		f := newFx(t, bdb)
		tid := f.tenant(tenancy.ProvisioningManual, tenancy.FeatureUserGroups).ID
		usersRole := f.role(tid, "People admin", access.PermManageUsers)
		userAdmin := f.person(tid, "Una", usersRole.ID)
		settingsRole := f.role(tid, "Settings", access.PermManageCompanySettings)
		settings := f.person(tid, "Sid", settingsRole.ID)
		admin := f.person(tid, "Ada", access.RoleAdmin)
		owner := f.person(tid, "Olga", access.RoleOwner)

		wantKind(t, f.acc.SetUserRole(ctx, userAdmin, userAdmin.UserID, access.RoleAdmin), apperr.KindForbidden, "FORBIDDEN")
		wantKind(t, f.acc.SetUserRole(ctx, userAdmin, admin.UserID, access.RoleMember), apperr.KindForbidden, "FORBIDDEN")
		other := f.user(tid, "Otto", identity.SourceApp)
		must(t, f.acc.SetUserRole(ctx, userAdmin, other.ID, usersRole.ID)) // a role within their own rights

		_, err := f.acc.CreateRole(ctx, settings, "Everything", access.AllPermissions)
		wantKind(t, err, apperr.KindForbidden, "FORBIDDEN")
		wantMessage(t, err, "manage_users")
		all := access.AllPermissions
		_, err = f.acc.UpdateRole(ctx, settings, settingsRole.ID, nil, &all)
		wantKind(t, err, apperr.KindForbidden, "FORBIDDEN")
		g := f.group(tid, "Gatehouse Admins", identity.SourceApp)
		wantKind(t, f.acc.MapGroupToRole(ctx, settings, g.ID, access.RoleAdmin), apperr.KindForbidden, "FORBIDDEN")

		// Admins are not owners.
		wantKind(t, f.acc.SetUserRole(ctx, admin, other.ID, access.RoleOwner), apperr.KindForbidden, "FORBIDDEN")
		wantKind(t, f.acc.SetUserRole(ctx, admin, owner.UserID, access.RoleAdmin), apperr.KindForbidden, "FORBIDDEN")
		wantKind(t, f.acc.MapGroupToRole(ctx, admin, g.ID, access.RoleOwner), apperr.KindForbidden, "FORBIDDEN")
		_, err = f.acc.SetUserActive(ctx, admin, owner.UserID, false)
		wantKind(t, err, apperr.KindForbidden, "FORBIDDEN")
		// …nor can they make themselves one by joining the owners' group.
		owners := f.group(tid, "Owners", identity.SourceApp)
		must(t, f.acc.MapGroupToRole(ctx, owner, owners.ID, access.RoleOwner))
		_, err = f.acc.UpdateGroupAs(ctx, admin, owners.ID, nil, []string{admin.UserID}, nil)
		wantKind(t, err, apperr.KindForbidden, "FORBIDDEN")
		// …not even through a group nested in it.
		inner := f.group(tid, "Inner", identity.SourceApp)
		f.addMembers(tid, owners.ID, inner.ID)
		_, err = f.acc.UpdateGroupAs(ctx, admin, inner.ID, nil, []string{admin.UserID}, nil)
		wantKind(t, err, apperr.KindForbidden, "FORBIDDEN")
		_, err = f.acc.UpdateGroupAs(ctx, owner, inner.ID, nil, []string{admin.UserID}, nil)
		must(t, err)
		if !f.viewer(tid, admin.UserID).IsOwner() {
			t.Fatal("an owner added to a group nested in the owners' group is not an owner")
		}
		// Nobody deactivates themselves.
		_, err = f.acc.SetUserActive(ctx, owner, owner.UserID, false)
		wantKind(t, err, apperr.KindInvalid, "")
		// Activation goes through SetUserActive only.
		_, err = f.acc.UpdateUser(ctx, owner, other.ID, 0, func(u *identity.User) error { u.Active = false; return nil })
		wantKind(t, err, apperr.KindInvalid, "")
	})
}
