package access_test

import (
	"slices"
	"testing"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/access"
	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/identity"
	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

func roleIDs(as []access.RoleAssignment) []string {
	var out []string
	for _, a := range as {
		s := a.Role.ID + "/" + a.Source
		if a.GroupName != "" {
			s += "/" + a.GroupName
		}
		out = append(out, s)
	}
	return out
}

// A viewer's roles: the direct one ("member" when none) and those mapped to every group
// they are in, nested groups included; permissions are the union. Inactive, unknown
// and other tenants' users are not signed in.
func TestViewer(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		f := newFx(t, bdb)
		tid := f.tenant(tenancy.ProvisioningManual, tenancy.FeatureUserGroups).ID
		ada := f.user(tid, "Ada", identity.SourceSCIM)
		v := f.viewer(tid, ada.ID)
		if got := roleIDs(v.Roles); !slices.Equal(got, []string{"member/direct"}) || len(v.Permissions) != 0 {
			t.Fatalf("new user: roles %v permissions %v", got, v.Permissions)
		}
		if v.UserName != ada.UserName || v.SessionID != "s1" || v.TenantID != tid {
			t.Fatalf("viewer %+v", v)
		}
		spaces := f.role(tid, "Space keeper", access.PermManageSpaces)
		audits := f.role(tid, "Auditor", access.PermViewAuditLog)
		inner := f.group(tid, "Inner", identity.SourceSCIM, ada.ID)
		outer := f.group(tid, "Outer", identity.SourceSCIM, inner.ID)
		must(t, f.acc.MapGroupToRole(ctx, f.op(tid), inner.ID, spaces.ID))
		must(t, f.acc.MapGroupToRole(ctx, f.op(tid), outer.ID, audits.ID))
		v = f.viewer(tid, ada.ID)
		want := []string{"member/direct", spaces.ID + "/group/Inner", audits.ID + "/group/Outer"}
		if got := roleIDs(v.Roles); !slices.Equal(got, want) {
			t.Fatalf("roles %v, want %v", got, want)
		}
		if !slices.Equal(v.Permissions, []access.Permission{access.PermManageSpaces, access.PermViewAuditLog}) {
			t.Fatalf("permissions %v", v.Permissions)
		}
		// IdP-provisioned admins: map the IdP group to admin.
		admins := f.group(tid, "Gatehouse Admins", identity.SourceSCIM)
		must(t, f.acc.MapGroupToRole(ctx, f.op(tid), admins.ID, access.RoleAdmin))
		f.addMembers(tid, admins.ID, ada.ID)
		if v = f.viewer(tid, ada.ID); !slices.Equal(v.Permissions, access.AllPermissions) {
			t.Fatalf("member of the admins' group: %v", v.Permissions)
		}
		f.changeMembers(tid, admins.ID, access.MemberChange{Remove: []string{ada.ID}})
		if v = f.viewer(tid, ada.ID); v.Can(access.PermManageUsers) {
			t.Fatal("still an admin after leaving the group")
		}

		_, err := f.ids.UpdateUser(ctx, tid, ada.ID, 0, func(u *identity.User) error { u.Active = false; return nil })
		must(t, err)
		_, err = f.acc.Viewer(ctx, identity.Principal{TenantID: tid, UserID: ada.ID})
		wantKind(t, err, apperr.KindUnauthenticated, "")
		_, err = f.acc.Viewer(ctx, identity.Principal{TenantID: tid, UserID: "01nosuchuser"})
		wantKind(t, err, apperr.KindUnauthenticated, "")
		_, err = f.acc.Viewer(ctx, identity.Principal{})
		wantKind(t, err, apperr.KindUnauthenticated, "")
	})
}

// The last owner of a tenant cannot stop being one, however the role would go.
func TestLastOwner(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		f := newFx(t, bdb)
		tid := f.tenant(tenancy.ProvisioningManual, tenancy.FeatureUserGroups).ID
		olga := f.person(tid, "Olga Owner", access.RoleOwner)
		for _, to := range []string{access.RoleAdmin, access.RoleMember} {
			err := f.acc.SetUserRole(ctx, olga, olga.UserID, to)
			wantKind(t, err, apperr.KindConflict, "LAST_OWNER")
			wantMessage(t, err, "Olga Owner would leave this company without an owner")
		}
		if !f.viewer(tid, olga.UserID).IsOwner() {
			t.Fatal("the refused demotion took effect")
		}
		// With a second owner, either may go.
		otto := f.person(tid, "Otto", access.RoleOwner)
		must(t, f.acc.SetUserRole(ctx, otto, olga.UserID, access.RoleAdmin))
		wantKind(t, f.acc.SetUserRole(ctx, otto, otto.UserID, access.RoleMember), apperr.KindConflict, "LAST_OWNER")

		// An owner through a group counts; the group's last owner-making mapping cannot go.
		owners := f.group(tid, "Owners", identity.SourceApp, olga.UserID)
		must(t, f.acc.MapGroupToRole(ctx, otto, owners.ID, access.RoleOwner))
		must(t, f.acc.SetUserRole(ctx, otto, otto.UserID, access.RoleMember))
		olgaV := f.viewer(tid, olga.UserID)
		if !olgaV.IsOwner() {
			t.Fatal("a member of the owners' group is not an owner")
		}
		wantKind(t, f.acc.UnmapGroupRole(ctx, olgaV, owners.ID, access.RoleOwner), apperr.KindConflict, "LAST_OWNER")
		_, err := f.acc.UpdateGroupAs(ctx, olgaV, owners.ID, nil, nil, []string{olga.UserID})
		wantKind(t, err, apperr.KindConflict, "LAST_OWNER")
		wantKind(t, f.acc.DeleteGroupAs(ctx, olgaV, owners.ID), apperr.KindConflict, "LAST_OWNER")
		if !f.viewer(tid, olga.UserID).IsOwner() {
			t.Fatal("a refused change took the owner role away")
		}
		// Once someone else is an owner directly, the group can go.
		must(t, f.acc.SetUserRole(ctx, olgaV, otto.UserID, access.RoleOwner))
		must(t, f.acc.UnmapGroupRole(ctx, olgaV, owners.ID, access.RoleOwner))
		if f.viewer(tid, olga.UserID).IsOwner() {
			t.Fatal("still an owner after the mapping went")
		}
	})
}

// Custom roles: create, rename, change permissions, delete (assignments and mappings go
// with it); names are unique ignoring case and never a built-in's; built-ins are fixed.
func TestCustomRoles(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		f := newFx(t, bdb)
		tid := f.tenant(tenancy.ProvisioningManual, tenancy.FeatureUserGroups).ID
		owner := f.person(tid, "Olga", access.RoleOwner)
		r, err := f.acc.CreateRole(ctx, owner, "  Support  ", []access.Permission{access.PermViewAuditLog, access.PermManageUsers, access.PermManageUsers})
		must(t, err)
		if r.Name != "Support" || r.BuiltIn || !slices.Equal(r.Permissions, []access.Permission{access.PermManageUsers, access.PermViewAuditLog}) || len(r.ID) != 26 {
			t.Fatalf("created %+v", r)
		}
		e := f.lastEvent(tid, "role.created")
		if e.TargetID != r.ID || e.ActorType != audit.ActorUser || e.ActorID != owner.UserID || e.Changes["name"].After != "Support" {
			t.Fatalf("role.created event %+v", e)
		}
		for _, bad := range []string{"support", "SUPPORT", "Owner", "admin", "member", ""} {
			_, err := f.acc.CreateRole(ctx, owner, bad, nil)
			if bad == "" {
				wantKind(t, err, apperr.KindInvalid, "")
			} else {
				wantKind(t, err, apperr.KindConflict, "uniqueness")
			}
		}
		_, err = f.acc.CreateRole(ctx, owner, "Bogus", []access.Permission{"fly"})
		wantKind(t, err, apperr.KindInvalid, "")

		for _, id := range []string{access.RoleOwner, access.RoleAdmin, access.RoleMember} {
			name := "Boss"
			_, err := f.acc.UpdateRole(ctx, owner, id, &name, nil)
			wantKind(t, err, apperr.KindInvalid, "BUILT_IN_ROLE")
			wantKind(t, f.acc.DeleteRole(ctx, owner, id), apperr.KindInvalid, "BUILT_IN_ROLE")
		}

		name := "Helpdesk"
		perms := []access.Permission{access.PermManageUsers}
		r, err = f.acc.UpdateRole(ctx, owner, r.ID, &name, &perms)
		must(t, err)
		if r.Name != "Helpdesk" || !slices.Equal(r.Permissions, perms) {
			t.Fatalf("updated %+v", r)
		}
		e = f.lastEvent(tid, "role.updated")
		if e.Changes["name"].Before != "Support" || e.Changes["name"].After != "Helpdesk" || e.Changes["permissions"].Before == nil {
			t.Fatalf("role.updated event %+v", e.Changes)
		}
		// No change, no event.
		_, err = f.acc.UpdateRole(ctx, owner, r.ID, &name, nil)
		must(t, err)
		if n := len(f.events(tid, "role.updated")); n != 1 {
			t.Fatalf("%d role.updated events after a no-op update", n)
		}
		roles, err := f.acc.ListRoles(ctx, owner)
		must(t, err)
		var ids []string
		for _, r := range roles {
			ids = append(ids, r.ID)
		}
		if !slices.Equal(ids, []string{access.RoleOwner, access.RoleAdmin, access.RoleMember, r.ID}) {
			t.Fatalf("ListRoles = %v", ids)
		}

		// Assign and map it, then delete it: both go, the holder is a member again.
		u := f.user(tid, "Hal", identity.SourceSCIM)
		must(t, f.acc.SetUserRole(ctx, owner, u.ID, r.ID))
		e = f.lastEvent(tid, "role.assigned")
		if e.TargetID != u.ID || e.Changes["role"].Before != "Member" || e.Changes["role"].After != "Helpdesk" || e.Changes["roleId"].After != r.ID {
			t.Fatalf("role.assigned event %+v", e.Changes)
		}
		g := f.group(tid, "Helpdesk team", identity.SourceSCIM, u.ID)
		must(t, f.acc.MapGroupToRole(ctx, owner, g.ID, r.ID))
		must(t, f.acc.MapGroupToRole(ctx, owner, g.ID, r.ID)) // again: nothing changes
		if n := len(f.events(tid, "role_mapping.changed")); n != 1 {
			t.Fatalf("%d role_mapping.changed events, want 1", n)
		}
		e = f.lastEvent(tid, "role_mapping.changed")
		if e.TargetType != "group" || e.TargetID != g.ID || e.Changes["role"].After != "Helpdesk" {
			t.Fatalf("role_mapping.changed event %+v %+v", e, e.Changes)
		}
		maps, err := f.acc.RoleMappings(ctx, owner)
		must(t, err)
		if len(maps) != 1 || maps[0].GroupName != "Helpdesk team" || maps[0].Role.ID != r.ID {
			t.Fatalf("RoleMappings = %+v", maps)
		}
		direct, err := f.acc.DirectRoles(ctx, owner)
		must(t, err)
		if direct[u.ID].ID != r.ID || direct[owner.UserID].ID != access.RoleOwner || len(direct) != 2 {
			t.Fatalf("DirectRoles = %+v", direct)
		}
		must(t, f.acc.DeleteRole(ctx, owner, r.ID))
		e = f.lastEvent(tid, "role.deleted")
		if e.TargetID != r.ID || e.Changes["assignmentsRemoved"].After != float64(1) || e.Changes["mappingsRemoved"].After != float64(1) {
			t.Fatalf("role.deleted event %+v", e.Changes)
		}
		if got := roleIDs(f.viewer(tid, u.ID).Roles); !slices.Equal(got, []string{"member/direct"}) {
			t.Fatalf("after deleting the role: %v", got)
		}
		if maps, _ := f.acc.RoleMappings(ctx, owner); len(maps) != 0 {
			t.Fatalf("mappings survive their role: %+v", maps)
		}
		wantKind(t, f.acc.DeleteRole(ctx, owner, r.ID), apperr.KindNotFound, "")
		wantKind(t, f.acc.SetUserRole(ctx, owner, u.ID, r.ID), apperr.KindNotFound, "")

		// Unmapping: audited with the role removed; unmapping again changes nothing.
		must(t, f.acc.MapGroupToRole(ctx, owner, g.ID, access.RoleAdmin))
		must(t, f.acc.UnmapGroupRole(ctx, owner, g.ID, access.RoleAdmin))
		must(t, f.acc.UnmapGroupRole(ctx, owner, g.ID, access.RoleAdmin))
		es := f.events(tid, "role_mapping.changed")
		if len(es) != 3 || es[2].Changes["role"].Before != "Admin" || es[2].Changes["role"].After != nil {
			t.Fatalf("role_mapping.changed events %d, last %+v", len(es), es[len(es)-1].Changes)
		}
		wantKind(t, f.acc.MapGroupToRole(ctx, owner, g.ID, access.RoleMember), apperr.KindInvalid, "")

		// Setting "member" clears the direct role; setting the same role changes nothing.
		must(t, f.acc.SetUserRole(ctx, owner, u.ID, access.RoleAdmin))
		must(t, f.acc.SetUserRole(ctx, owner, u.ID, access.RoleAdmin))
		must(t, f.acc.SetUserRole(ctx, owner, u.ID, access.RoleMember))
		es = f.events(tid, "role.assigned")
		last := es[len(es)-1]
		if last.Changes["role"].Before != "Admin" || last.Changes["role"].After != "Member" {
			t.Fatalf("role.assigned %+v", last.Changes)
		}
		if direct, _ := f.acc.DirectRoles(ctx, owner); len(direct) != 1 {
			t.Fatalf("member is stored: %+v", direct)
		}
	})
}
