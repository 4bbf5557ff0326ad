package access_test

import (
	"testing"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/access"
	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/identity"
	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

// An owner of one tenant (every permission) handed another tenant's ids: every function
// answers not found, and the batch functions return nothing of the other tenant.
func TestTenantIsolation(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		f := newFx(t, bdb)
		a := f.tenant(tenancy.ProvisioningManual, tenancy.FeatureUserGroups).ID
		b := f.tenant(tenancy.ProvisioningManual, tenancy.FeatureUserGroups).ID
		v := f.person(a, "Olga", access.RoleOwner)
		mine := f.user(a, "Mine", identity.SourceApp)
		myGroup := f.group(a, "Mine", identity.SourceApp)
		mySpace := f.space(a, "Mine")
		myRole := f.role(a, "Mine")

		their := f.user(b, "Theirs", identity.SourceApp)
		theirGroup := f.group(b, "Theirs", identity.SourceApp, their.ID)
		theirSpace := f.space(b, "Theirs")
		theirRole := f.role(b, "Theirs")
		f.grant(b, theirSpace.ID, access.PrincipalUser, their.ID, access.SpaceManager)
		f.grant(b, theirSpace.ID, access.PrincipalGroup, theirGroup.ID, access.SpaceViewer)
		must(t, f.acc.MapGroupToRole(ctx, f.op(b), theirGroup.ID, access.RoleAdmin))
		theirToken, err := f.tenancy.IssueSCIMToken(ctx, b, "Okta", 0)
		must(t, err)
		theirExt, err := f.ids.SetUserExtension(ctx, b, extension("theirs"))
		must(t, err)
		name := "x"
		calls := map[string]func() error{
			"RevokeSCIMToken":     func() error { return f.acc.RevokeSCIMToken(ctx, v, theirToken.Token.ID) },
			"RemoveSCIMExtension": func() error { return f.acc.RemoveSCIMExtension(ctx, v, theirExt.URN) },
			"RevokeUserSessions":  func() error { _, err := f.acc.RevokeUserSessions(ctx, v, their.ID); return err },
			"Users by group": func() error {
				_, _, err := f.acc.Users(ctx, v, access.UserQuery{GroupID: theirGroup.ID})
				return err
			},
			"UpdateRole":          func() error { _, err := f.acc.UpdateRole(ctx, v, theirRole.ID, &name, nil); return err },
			"DeleteRole":          func() error { return f.acc.DeleteRole(ctx, v, theirRole.ID) },
			"SetUserRole user":    func() error { return f.acc.SetUserRole(ctx, v, their.ID, myRole.ID) },
			"SetUserRole role":    func() error { return f.acc.SetUserRole(ctx, v, mine.ID, theirRole.ID) },
			"MapGroupToRole grp":  func() error { return f.acc.MapGroupToRole(ctx, v, theirGroup.ID, access.RoleAdmin) },
			"MapGroupToRole role": func() error { return f.acc.MapGroupToRole(ctx, v, myGroup.ID, theirRole.ID) },
			"UnmapGroupRole grp":  func() error { return f.acc.UnmapGroupRole(ctx, v, theirGroup.ID, access.RoleAdmin) },
			"UnmapGroupRole role": func() error { return f.acc.UnmapGroupRole(ctx, v, myGroup.ID, theirRole.ID) },
			"UpdateSpace":         func() error { _, err := f.acc.UpdateSpace(ctx, v, theirSpace.ID, &name, nil); return err },
			"DeleteSpace":         func() error { return f.acc.DeleteSpace(ctx, v, theirSpace.ID) },
			"Space":               func() error { _, err := f.acc.Space(ctx, v, theirSpace.ID); return err },
			"GrantAccess space": func() error {
				_, err := f.acc.GrantAccess(ctx, v, theirSpace.ID, access.PrincipalUser, mine.ID, access.SpaceViewer)
				return err
			},
			"GrantAccess user": func() error {
				_, err := f.acc.GrantAccess(ctx, v, mySpace.ID, access.PrincipalUser, their.ID, access.SpaceViewer)
				return err
			},
			"GrantAccess group": func() error {
				_, err := f.acc.GrantAccess(ctx, v, mySpace.ID, access.PrincipalGroup, theirGroup.ID, access.SpaceViewer)
				return err
			},
			"RevokeAccess space": func() error { return f.acc.RevokeAccess(ctx, v, theirSpace.ID, access.PrincipalUser, their.ID) },
			"RevokeAccess user":  func() error { return f.acc.RevokeAccess(ctx, v, mySpace.ID, access.PrincipalUser, their.ID) },
			"RevokeAccess group": func() error { return f.acc.RevokeAccess(ctx, v, mySpace.ID, access.PrincipalGroup, theirGroup.ID) },
			"EffectiveMembers":   func() error { _, _, err := f.acc.EffectiveMembers(ctx, v, theirSpace.ID, "", 10); return err },
			"UpdateUser": func() error {
				_, err := f.acc.UpdateUser(ctx, v, their.ID, 0, func(u *identity.User) error { u.Title = "x"; return nil })
				return err
			},
			"SetUserActive":        func() error { _, err := f.acc.SetUserActive(ctx, v, their.ID, false); return err },
			"CreateGroupAs member": func() error { _, err := f.acc.CreateGroupAs(ctx, v, "New", []string{their.ID}); return err },
			"UpdateGroupAs group":  func() error { _, err := f.acc.UpdateGroupAs(ctx, v, theirGroup.ID, &name, nil, nil); return err },
			"UpdateGroupAs member": func() error {
				_, err := f.acc.UpdateGroupAs(ctx, v, myGroup.ID, nil, []string{theirGroup.ID}, nil)
				return err
			},
			"DeleteGroupAs": func() error { return f.acc.DeleteGroupAs(ctx, v, theirGroup.ID) },
			"Viewer": func() error {
				_, err := f.acc.Viewer(ctx, identity.Principal{TenantID: a, UserID: their.ID})
				if apperr.KindOf(err) == apperr.KindUnauthenticated {
					return apperr.NotFound("as expected") // a principal naming another tenant's user is not signed in
				}
				return err
			},
		}
		for name, call := range calls {
			if err := call(); apperr.KindOf(err) != apperr.KindNotFound {
				t.Errorf("%s with another tenant's id: %v (kind %q), want not found", name, err, apperr.KindOf(err))
			}
		}

		// Listings show only the viewer's tenant.
		roles, err := f.acc.ListRoles(ctx, v)
		must(t, err)
		for _, r := range roles {
			if r.ID == theirRole.ID {
				t.Error("ListRoles lists another tenant's role")
			}
		}
		maps, err := f.acc.RoleMappings(ctx, v)
		must(t, err)
		if len(maps) != 0 {
			t.Errorf("RoleMappings = %+v", maps)
		}
		spaces, _, err := f.acc.ListSpaces(ctx, v, "", 100)
		must(t, err)
		if len(spaces) != 1 || spaces[0].ID != mySpace.ID {
			t.Errorf("ListSpaces = %+v", spaces)
		}
		tokens, err := f.acc.SCIMTokens(ctx, v)
		must(t, err)
		exts, err := f.acc.SCIMExtensions(ctx, v)
		must(t, err)
		users, _, err := f.acc.Users(ctx, v, access.UserQuery{})
		must(t, err)
		groups, _, err := f.acc.PageGroups(ctx, v, "", 100)
		must(t, err)
		events, _, err := f.acc.AuditEvents(ctx, v, audit.Filter{}, 0, 100)
		must(t, err)
		for _, u := range users {
			if u.TenantID != a {
				t.Errorf("Users lists %s of another tenant", u.UserName)
			}
		}
		for _, e := range events {
			if e.TenantID != a {
				t.Errorf("AuditEvents lists %s of another tenant", e.Action)
			}
		}
		if len(tokens) != 0 || len(exts) != 0 || len(groups) != 1 || groups[0].ID != myGroup.ID || len(events) == 0 {
			t.Errorf("tokens %v, extensions %v, groups %v, %d events", tokens, exts, groups, len(events))
		}
		// Batch functions take the tenant from the viewer and ignore other tenants' ids.
		if m, err := f.acc.UsersByIDs(ctx, v, []string{their.ID}); err != nil || len(m) != 0 {
			t.Errorf("UsersByIDs = %v, %v", m, err)
		}
		if m, err := f.acc.GroupsByIDs(ctx, v, []string{theirGroup.ID}); err != nil || len(m) != 0 {
			t.Errorf("GroupsByIDs = %v, %v", m, err)
		}
		if m, err := f.acc.GroupsOfUsersAs(ctx, v, []string{their.ID}); err != nil || len(m) != 0 {
			t.Errorf("GroupsOfUsersAs = %v, %v", m, err)
		}
		if m, err := f.acc.MemberPages(ctx, v, []string{theirGroup.ID}, "", 10); err != nil || len(m[theirGroup.ID].UserIDs) != 0 {
			t.Errorf("MemberPages = %v, %v", m, err)
		}
		if m, err := f.acc.SpacesByIDs(ctx, f.op(a), []string{theirSpace.ID}); err != nil || len(m) != 0 {
			t.Errorf("SpacesByIDs = %v, %v", m, err)
		}
		if m, err := f.acc.GrantsOfSpaces(ctx, f.op(a), []string{theirSpace.ID}); err != nil || len(m) != 0 {
			t.Errorf("GrantsOfSpaces = %v, %v", m, err)
		}
		if m, err := f.acc.GrantsOfGroups(ctx, f.op(a), []string{theirGroup.ID}); err != nil || len(m) != 0 {
			t.Errorf("GrantsOfGroups = %v, %v", m, err)
		}
		if m, err := f.acc.EffectiveSpaces(ctx, f.op(a), []string{their.ID}); err != nil || len(m) != 0 {
			t.Errorf("EffectiveSpaces = %v, %v", m, err)
		}
		if m, err := f.acc.UserRoles(ctx, a, []string{their.ID}); err != nil || len(m[their.ID]) != 1 || m[their.ID][0].Role.ID != access.RoleMember {
			t.Errorf("UserRoles = %v, %v: another tenant's group role shows", m, err)
		}
		if r, ok, err := f.acc.SpaceAccess(ctx, a, their.ID, theirSpace.ID); err != nil || ok || r != "" {
			t.Errorf("SpaceAccess = %q %v %v", r, ok, err)
		}
		// Nothing of the other tenant changed.
		if got := f.access(b, their.ID, theirSpace.ID); got != access.SpaceManager {
			t.Errorf("their access is now %q", got)
		}
	})
}
