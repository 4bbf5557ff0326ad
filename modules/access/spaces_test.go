package access_test

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/access"
	"github.com/gatehouse-dev/gatehouse/modules/identity"
	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

// Effective access is direct grants plus grants to every group the user is in, nested
// groups included; the highest role wins and every source is listed.
func TestEffectiveAccess(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		f := newFx(t, bdb)
		tid := f.tenant(tenancy.ProvisioningSCIM, tenancy.FeatureUserGroups).ID
		ada := f.user(tid, "Ada", identity.SourceSCIM)
		bob := f.user(tid, "Bob", identity.SourceSCIM)
		cyd := f.user(tid, "Cyd", identity.SourceSCIM)
		eng := f.group(tid, "Engineering", identity.SourceSCIM, ada.ID)
		platform := f.group(tid, "Platform", identity.SourceSCIM, eng.ID, cyd.ID) // Engineering is nested in Platform
		design := f.space(tid, "Design docs")
		runbooks := f.space(tid, "Runbooks")
		secret := f.space(tid, "Secret")
		f.grant(tid, design.ID, access.PrincipalUser, ada.ID, access.SpaceViewer)
		f.grant(tid, design.ID, access.PrincipalGroup, eng.ID, access.SpaceEditor)
		f.grant(tid, design.ID, access.PrincipalGroup, platform.ID, access.SpaceManager)
		f.grant(tid, runbooks.ID, access.PrincipalGroup, platform.ID, access.SpaceViewer)
		f.grant(tid, runbooks.ID, access.PrincipalUser, bob.ID, access.SpaceEditor)

		got, err := f.acc.EffectiveSpaces(ctx, f.op(tid), []string{ada.ID, bob.ID, cyd.ID, "01nosuchuser"})
		must(t, err)
		want := map[string][]access.EffectiveAccess{
			ada.ID: {
				{SpaceID: design.ID, Role: access.SpaceManager, Sources: []access.AccessSource{
					{Kind: "direct", Role: access.SpaceViewer},
					{Kind: "group", GroupID: eng.ID, GroupName: "Engineering", Role: access.SpaceEditor},
					{Kind: "group", GroupID: platform.ID, GroupName: "Platform", Role: access.SpaceManager},
				}},
				{SpaceID: runbooks.ID, Role: access.SpaceViewer, Sources: []access.AccessSource{
					{Kind: "group", GroupID: platform.ID, GroupName: "Platform", Role: access.SpaceViewer},
				}},
			},
			bob.ID: {{SpaceID: runbooks.ID, Role: access.SpaceEditor, Sources: []access.AccessSource{{Kind: "direct", Role: access.SpaceEditor}}}},
			cyd.ID: {
				{SpaceID: design.ID, Role: access.SpaceManager, Sources: []access.AccessSource{{Kind: "group", GroupID: platform.ID, GroupName: "Platform", Role: access.SpaceManager}}},
				{SpaceID: runbooks.ID, Role: access.SpaceViewer, Sources: []access.AccessSource{{Kind: "group", GroupID: platform.ID, GroupName: "Platform", Role: access.SpaceViewer}}},
			},
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("EffectiveSpaces =\n%+v\nwant\n%+v", got, want)
		}
		for _, c := range []struct {
			user, space string
			want        access.SpaceRole
		}{{ada.ID, design.ID, access.SpaceManager}, {ada.ID, runbooks.ID, access.SpaceViewer}, {bob.ID, runbooks.ID, access.SpaceEditor},
			{bob.ID, design.ID, ""}, {ada.ID, secret.ID, ""}, {cyd.ID, design.ID, access.SpaceManager}} {
			if got := f.access(tid, c.user, c.space); got != c.want {
				t.Errorf("SpaceAccess(%s, %s) = %q, want %q", c.user, c.space, got, c.want)
			}
		}
		if !access.SpaceManager.AtLeast(access.SpaceEditor) || access.SpaceViewer.AtLeast(access.SpaceEditor) {
			t.Error("AtLeast is wrong")
		}

		admin := f.person(tid, "Admin", access.RoleAdmin)
		members, more, err := f.acc.EffectiveMembers(ctx, admin, design.ID, "", 100)
		must(t, err)
		wantMembers := []access.EffectiveMember{
			{UserID: ada.ID, Role: access.SpaceManager, Sources: want[ada.ID][0].Sources},
			{UserID: cyd.ID, Role: access.SpaceManager, Sources: want[cyd.ID][0].Sources},
		}
		if !reflect.DeepEqual(members, wantMembers) || more {
			t.Fatalf("EffectiveMembers =\n%+v (more: %v)\nwant\n%+v", members, more, wantMembers)
		}
		// A page at a time: a page counts people, so Ada's three sources stay together.
		var paged []access.EffectiveMember
		for after, pages := "", 0; ; pages++ {
			page, more, err := f.acc.EffectiveMembers(ctx, admin, design.ID, after, 1)
			must(t, err)
			if len(page) != 1 || pages > 2 {
				t.Fatalf("page %d: %+v (more: %v)", pages, page, more)
			}
			paged = append(paged, page...)
			if !more {
				break
			}
			after = page[0].UserID
		}
		if !reflect.DeepEqual(paged, wantMembers) {
			t.Fatalf("EffectiveMembers one at a time =\n%+v\nwant\n%+v", paged, wantMembers)
		}
		// Anyone with access may list who else has it.
		bobV := f.viewer(tid, bob.ID)
		if ms, _, err := f.acc.EffectiveMembers(ctx, bobV, runbooks.ID, "", 100); err != nil || len(ms) != 3 {
			t.Fatalf("EffectiveMembers as a space editor = %+v, %v", ms, err)
		}

		// A cycle of groups (Platform in Engineering too) ends, and changes nothing.
		f.addMembers(tid, eng.ID, platform.ID)
		if got := f.access(tid, cyd.ID, design.ID); got != access.SpaceManager {
			t.Fatalf("with a cycle: %q", got)
		}
		again, err := f.acc.EffectiveSpaces(ctx, f.op(tid), []string{ada.ID, bob.ID, cyd.ID})
		must(t, err)
		// Cyd is now also in Engineering (through Platform), which adds that source.
		if !reflect.DeepEqual(again[ada.ID], want[ada.ID]) || !reflect.DeepEqual(again[bob.ID], want[bob.ID]) || len(again[cyd.ID][0].Sources) != 2 {
			t.Fatalf("with a cycle: %+v", again)
		}
	})
}

// Taking someone out of a group (as SCIM does) takes the access the group gave them away
// on the very next check; deleting a group or a user removes their grants.
func TestAccessFollowsMembership(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		f := newFx(t, bdb)
		tid := f.tenant(tenancy.ProvisioningSCIM, tenancy.FeatureUserGroups).ID
		ada := f.user(tid, "Ada", identity.SourceSCIM)
		eng := f.group(tid, "Engineering", identity.SourceSCIM, ada.ID)
		outer := f.group(tid, "Everyone", identity.SourceSCIM, eng.ID)
		sp := f.space(tid, "Runbooks")
		other := f.space(tid, "Other")
		f.grant(tid, sp.ID, access.PrincipalGroup, eng.ID, access.SpaceEditor)
		f.grant(tid, other.ID, access.PrincipalGroup, outer.ID, access.SpaceViewer)
		if got := f.access(tid, ada.ID, sp.ID); got != access.SpaceEditor {
			t.Fatalf("before: %q", got)
		}
		f.changeMembers(tid, eng.ID, access.MemberChange{Remove: []string{ada.ID}})
		if got := f.access(tid, ada.ID, sp.ID); got != "" {
			t.Fatalf("after leaving the group: %q", got)
		}
		if got := f.access(tid, ada.ID, other.ID); got != "" {
			t.Fatalf("after leaving the nested group: %q", got)
		}
		// Back in, through a full replacement (SCIM PUT).
		f.changeMembers(tid, eng.ID, access.MemberChange{RemoveAll: true, Add: []string{ada.ID}})
		if got := f.access(tid, ada.ID, other.ID); got != access.SpaceViewer {
			t.Fatalf("back in: %q", got)
		}
		// Engineering leaves Everyone: the nested access goes.
		f.changeMembers(tid, outer.ID, access.MemberChange{Remove: []string{eng.ID}})
		if got := f.access(tid, ada.ID, other.ID); got != "" {
			t.Fatalf("after the nested group left: %q", got)
		}

		// Deleting a group deletes its grants.
		must(t, f.acc.DeleteGroup(ctx, tid, eng.ID, 0))
		gs, err := f.acc.GrantsOfSpaces(ctx, f.op(tid), []string{sp.ID})
		must(t, err)
		if len(gs[sp.ID]) != 0 {
			t.Fatalf("grants of a deleted group: %+v", gs)
		}
		// Deleting a user deletes theirs.
		f.grant(tid, sp.ID, access.PrincipalUser, ada.ID, access.SpaceManager)
		must(t, f.ids.DeleteUser(ctx, tid, ada.ID, 0, nil))
		if gs, _ := f.acc.GrantsOfSpaces(ctx, f.op(tid), []string{sp.ID}); len(gs[sp.ID]) != 0 {
			t.Fatalf("grants of a deleted user: %+v", gs)
		}
		// Deleting a space deletes its grants (and is audited with their number).
		bob := f.user(tid, "Bob", identity.SourceSCIM)
		f.grant(tid, other.ID, access.PrincipalUser, bob.ID, access.SpaceManager)
		must(t, f.acc.DeleteSpace(ctx, f.op(tid), other.ID))
		if es, _ := f.acc.EffectiveSpaces(ctx, f.op(tid), []string{bob.ID}); len(es[bob.ID]) != 0 {
			t.Fatalf("access to a deleted space: %+v", es)
		}
		if e := f.lastEvent(tid, "space.deleted"); e.TargetID != other.ID || e.Changes["grantsRemoved"].After != float64(2) {
			t.Fatalf("space.deleted %+v", e.Changes)
		}
	})
}

// Spaces: validation, unique names, grant upserts, revocation, listing, visibility,
// and an audit event for each change.
func TestSpacesAndGrants(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		f := newFx(t, bdb)
		tid := f.tenant(tenancy.ProvisioningManual, tenancy.FeatureUserGroups).ID
		admin := f.person(tid, "Ada Admin", access.RoleAdmin)
		sp, err := f.acc.CreateSpace(ctx, admin, "  Design docs ", " Specs ")
		must(t, err)
		if sp.Name != "Design docs" || sp.Description != "Specs" || sp.Version != 1 || sp.TenantID != tid {
			t.Fatalf("created %+v", sp)
		}
		if e := f.lastEvent(tid, "space.created"); e.TargetID != sp.ID || e.ActorID != admin.UserID || e.Changes["name"].After != "Design docs" {
			t.Fatalf("space.created %+v", e)
		}
		for _, bad := range []string{"", "   ", strings.Repeat("x", 201)} {
			_, err := f.acc.CreateSpace(ctx, admin, bad, "")
			wantKind(t, err, apperr.KindInvalid, "")
		}
		if _, err := f.acc.CreateSpace(ctx, admin, strings.Repeat("é", 200), ""); err != nil {
			t.Fatalf("a 200-character name: %v", err)
		}
		_, err = f.acc.CreateSpace(ctx, admin, "DESIGN DOCS", "")
		wantKind(t, err, apperr.KindConflict, "uniqueness")

		name, desc := "Design", "All specs"
		sp, err = f.acc.UpdateSpace(ctx, admin, sp.ID, &name, &desc)
		must(t, err)
		if sp.Name != "Design" || sp.Description != "All specs" || sp.Version != 2 {
			t.Fatalf("updated %+v", sp)
		}
		if e := f.lastEvent(tid, "space.updated"); e.Changes["name"].Before != "Design docs" || e.Changes["description"].After != "All specs" {
			t.Fatalf("space.updated %+v", e.Changes)
		}
		if sp, err = f.acc.UpdateSpace(ctx, admin, sp.ID, &name, nil); err != nil || sp.Version != 2 {
			t.Fatalf("a no-op update: %+v %v", sp, err)
		}

		ada := f.user(tid, "Ada", identity.SourceApp)
		g := f.group(tid, "Team", identity.SourceApp, ada.ID)
		gr, err := f.acc.GrantAccess(ctx, admin, sp.ID, access.PrincipalUser, ada.ID, access.SpaceViewer)
		must(t, err)
		if gr.SpaceID != sp.ID || gr.PrincipalType != "user" || gr.PrincipalID != ada.ID || gr.Role != access.SpaceViewer || gr.TenantID != tid {
			t.Fatalf("grant %+v", gr)
		}
		gr2, err := f.acc.GrantAccess(ctx, admin, sp.ID, access.PrincipalUser, ada.ID, access.SpaceManager)
		must(t, err)
		if gr2.ID != gr.ID || gr2.Role != access.SpaceManager {
			t.Fatalf("re-grant is not an upsert: %+v", gr2)
		}
		es := f.events(tid, "access.granted")
		if len(es) != 2 || es[1].TargetID != sp.ID || es[1].Changes["role"].Before != "viewer" || es[1].Changes["role"].After != "manager" ||
			es[1].Changes["principalId"].After != ada.ID || es[1].Changes["principal"].After != ada.UserName {
			t.Fatalf("access.granted events %+v", es)
		}
		if _, err := f.acc.GrantAccess(ctx, admin, sp.ID, access.PrincipalUser, ada.ID, access.SpaceManager); err != nil || len(f.events(tid, "access.granted")) != 2 {
			t.Fatalf("granting the same role again: %v", err)
		}
		_, err = f.acc.GrantAccess(ctx, admin, sp.ID, access.PrincipalGroup, g.ID, access.SpaceEditor)
		must(t, err)
		for _, bad := range [][2]string{{"robot", "viewer"}, {"user", "owner"}} {
			_, err := f.acc.GrantAccess(ctx, admin, sp.ID, bad[0], ada.ID, access.SpaceRole(bad[1]))
			wantKind(t, err, apperr.KindInvalid, "")
		}
		_, err = f.acc.GrantAccess(ctx, admin, sp.ID, access.PrincipalUser, g.ID, access.SpaceViewer) // a group id as a user
		wantKind(t, err, apperr.KindNotFound, "")
		_, err = f.acc.GrantAccess(ctx, admin, sp.ID, access.PrincipalGroup, "01nosuchgroup", access.SpaceViewer)
		wantKind(t, err, apperr.KindNotFound, "")

		byGroup, err := f.acc.GrantsOfGroups(ctx, f.op(tid), []string{g.ID})
		must(t, err)
		if len(byGroup[g.ID]) != 1 || byGroup[g.ID][0].Role != access.SpaceEditor {
			t.Fatalf("GrantsOfGroups %+v", byGroup)
		}
		bySpace, err := f.acc.GrantsOfSpaces(ctx, f.op(tid), []string{sp.ID})
		must(t, err)
		if len(bySpace[sp.ID]) != 2 {
			t.Fatalf("GrantsOfSpaces %+v", bySpace)
		}

		must(t, f.acc.RevokeAccess(ctx, admin, sp.ID, access.PrincipalUser, ada.ID))
		must(t, f.acc.RevokeAccess(ctx, admin, sp.ID, access.PrincipalUser, ada.ID)) // nothing left to revoke
		rs := f.events(tid, "access.revoked")
		if len(rs) != 1 || rs[0].Changes["role"].Before != "manager" || rs[0].Changes["principalType"].After != "user" {
			t.Fatalf("access.revoked %+v", rs)
		}
		if got := f.access(tid, ada.ID, sp.ID); got != access.SpaceEditor {
			t.Fatalf("after revoking the direct grant, the group's remains: %q", got)
		}

		// Listing: manage_spaces sees every space; others see theirs; keyset pages.
		var all []string
		for i := range 5 {
			all = append(all, f.space(tid, fmt.Sprintf("Page %d", i)).ID)
		}
		f.grant(tid, all[1], access.PrincipalUser, ada.ID, access.SpaceViewer)
		f.grant(tid, all[3], access.PrincipalGroup, g.ID, access.SpaceViewer)
		var seen []string
		after := ""
		for {
			page, more, err := f.acc.ListSpaces(ctx, admin, after, 2)
			must(t, err)
			for _, s := range page {
				seen = append(seen, s.ID)
			}
			if !more {
				break
			}
			after = page[len(page)-1].ID
		}
		if len(seen) != 7 {
			t.Fatalf("admin pages through %d spaces, want 7", len(seen))
		}
		adaV := f.viewer(tid, ada.ID)
		mine, more, err := f.acc.ListSpaces(ctx, adaV, "", 0) // first clamps to 1
		must(t, err)
		if len(mine) != 1 || mine[0].ID != sp.ID || !more {
			t.Fatalf("first page of Ada's spaces: %+v more=%v", mine, more)
		}
		mine, more, err = f.acc.ListSpaces(ctx, adaV, "", 1000)
		must(t, err)
		if len(mine) != 3 || more || mine[0].ID != sp.ID || mine[1].ID != all[1] || mine[2].ID != all[3] {
			t.Fatalf("Ada's spaces: %+v", mine)
		}
		if _, err := f.acc.Space(ctx, adaV, all[0]); apperr.KindOf(err) != apperr.KindNotFound {
			t.Fatalf("a space without access: %v", err)
		}
		if got, err := f.acc.Space(ctx, adaV, all[3]); err != nil || got.ID != all[3] {
			t.Fatalf("a space through a group: %+v %v", got, err)
		}
		byID, err := f.acc.SpacesByIDs(ctx, f.op(tid), append(all, "01nosuchspace"))
		must(t, err)
		if len(byID) != 5 || byID[all[2]].Name != "Page 2" {
			t.Fatalf("SpacesByIDs %+v", byID)
		}

		must(t, f.acc.DeleteSpace(ctx, admin, sp.ID))
		if e := f.lastEvent(tid, "space.deleted"); e.TargetID != sp.ID || e.Changes["grantsRemoved"].After != float64(1) {
			t.Fatalf("space.deleted %+v", e.Changes)
		}
		wantKind(t, f.acc.DeleteSpace(ctx, admin, sp.ID), apperr.KindNotFound, "")
	})
}

// Granting a group needs the user_groups plan feature.
func TestGroupGrantsNeedTheFeature(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		f := newFx(t, bdb)
		tid := f.tenant(tenancy.ProvisioningManual).ID
		admin := f.person(tid, "Ada", access.RoleAdmin)
		sp := f.space(tid, "Docs")
		g := f.group(tid, "Team", identity.SourceApp)
		_, err := f.acc.GrantAccess(ctx, admin, sp.ID, access.PrincipalGroup, g.ID, access.SpaceViewer)
		wantKind(t, err, apperr.KindForbidden, "FEATURE_NOT_IN_PLAN")
		wantMessage(t, err, "user_groups")
		u := f.user(tid, "Bob", identity.SourceApp)
		if _, err := f.acc.GrantAccess(ctx, admin, sp.ID, access.PrincipalUser, u.ID, access.SpaceViewer); err != nil {
			t.Fatalf("a user grant without the feature: %v", err)
		}
		feats := []tenancy.Feature{tenancy.FeatureUserGroups}
		_, err = f.tenancy.UpdateSettings(ctx, tid, tenancy.SettingsPatch{Features: &feats})
		must(t, err)
		if _, err := f.acc.GrantAccess(ctx, admin, sp.ID, access.PrincipalGroup, g.ID, access.SpaceViewer); err != nil {
			t.Fatalf("with the feature: %v", err)
		}
	})
}

// A space shows through every batch read exactly when the viewer may open it by id: a
// member without access learns nothing of it through a colleague's access, a group's
// grants or the grants themselves; manage_spaces sees everything.
func TestSpacesShowOnlyWhereVisible(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		f := newFx(t, bdb)
		tid := f.tenant(tenancy.ProvisioningManual, tenancy.FeatureUserGroups).ID
		mia := f.person(tid, "Mia", access.RoleMember)
		admin := f.person(tid, "Ada", access.RoleAdmin)
		bob := f.user(tid, "Bob", identity.SourceApp)
		team := f.group(tid, "Team", identity.SourceApp, mia.UserID)
		shared := f.space(tid, "Shared")
		secret := f.space(tid, "Secret")
		f.grant(tid, shared.ID, access.PrincipalGroup, team.ID, access.SpaceViewer)
		f.grant(tid, shared.ID, access.PrincipalUser, bob.ID, access.SpaceEditor)
		f.grant(tid, secret.ID, access.PrincipalUser, bob.ID, access.SpaceManager)
		other := f.group(tid, "Other", identity.SourceApp)
		f.grant(tid, secret.ID, access.PrincipalGroup, other.ID, access.SpaceEditor)

		for _, c := range []struct {
			name string
			v    access.Viewer
			want []string // the spaces seen, in order
		}{{"member", mia, []string{shared.ID}}, {"admin", admin, []string{shared.ID, secret.ID}}} {
			byID, err := f.acc.SpacesByIDs(ctx, c.v, []string{shared.ID, secret.ID})
			must(t, err)
			eff, err := f.acc.EffectiveSpaces(ctx, c.v, []string{bob.ID})
			must(t, err)
			bySpace, err := f.acc.GrantsOfSpaces(ctx, c.v, []string{shared.ID, secret.ID})
			must(t, err)
			byGroup, err := f.acc.GrantsOfGroups(ctx, c.v, []string{other.ID, team.ID})
			must(t, err)
			var effSeen []string
			for _, a := range eff[bob.ID] {
				effSeen = append(effSeen, a.SpaceID)
			}
			if len(byID) != len(c.want) || !slices.Equal(effSeen, c.want) || len(bySpace) != len(c.want) {
				t.Errorf("%s: SpacesByIDs %v, Bob's spaces %v, grants of %d spaces; want %v", c.name, byID, effSeen, len(bySpace), c.want)
			}
			if _, ok := byID[secret.ID]; ok != (c.name == "admin") {
				t.Errorf("%s: the secret space shows: %v", c.name, ok)
			}
			if n := len(byGroup[other.ID]); n != len(c.want)-1 {
				t.Errorf("%s: the other group's grants on the secret space: %d", c.name, n)
			}
			if n := len(byGroup[team.ID]); n != 1 {
				t.Errorf("%s: the team's grants: %d, want 1", c.name, n)
			}
		}
	})
}

// Reading groups needs the user_groups plan feature, like changing them.
func TestGroupReadsNeedTheFeature(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		f := newFx(t, bdb)
		tid := f.tenant(tenancy.ProvisioningManual).ID
		v := f.person(tid, "Ada", access.RoleAdmin)
		g := f.group(tid, "Team", identity.SourceApp, v.UserID)
		calls := map[string]func() error{
			"PageGroups":      func() error { _, _, err := f.acc.PageGroups(ctx, v, "", 10); return err },
			"GroupsByIDs":     func() error { _, err := f.acc.GroupsByIDs(ctx, v, []string{g.ID}); return err },
			"GroupsOfUsersAs": func() error { _, err := f.acc.GroupsOfUsersAs(ctx, v, []string{v.UserID}); return err },
			"MemberPages":     func() error { _, err := f.acc.MemberPages(ctx, v, []string{g.ID}, "", 10); return err },
			"GrantsOfGroups":  func() error { _, err := f.acc.GrantsOfGroups(ctx, v, []string{g.ID}); return err },
			"RoleMappings":    func() error { _, err := f.acc.RoleMappings(ctx, v); return err },
			"MapGroupToRole":  func() error { return f.acc.MapGroupToRole(ctx, v, g.ID, access.RoleAdmin) },
			"UnmapGroupRole":  func() error { return f.acc.UnmapGroupRole(ctx, v, g.ID, access.RoleAdmin) },
			"Users by group": func() error {
				_, _, err := f.acc.Users(ctx, v, access.UserQuery{GroupID: g.ID})
				return err
			},
		}
		for name, call := range calls {
			err := call()
			if apperr.CodeOf(err) != "FEATURE_NOT_IN_PLAN" || !strings.Contains(apperr.PublicMessage(err), "user_groups") {
				t.Errorf("%s without the feature: %v", name, err)
			}
		}
		if _, _, err := f.acc.Users(ctx, v, access.UserQuery{}); err != nil {
			t.Errorf("users without a group filter need no feature: %v", err)
		}
	})
}

// A space shared with more groups than one statement's seeks hold (some nested, some
// overlapping) and with people directly: its members page the same whatever the page
// size, each person once with every source, and a page reads no more than its size from
// each source.
func TestEffectiveMembersOfManyGroups(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		f := newFx(t, bdb)
		tid := f.tenant(tenancy.ProvisioningManual, tenancy.FeatureUserGroups).ID
		op := f.op(tid)
		sp := f.space(tid, "Everyone")
		var people []string
		for i := range 30 {
			people = append(people, f.user(tid, fmt.Sprintf("P%d", i), identity.SourceApp).ID)
		}
		sources := map[string]int{} // person -> how many grants reach them
		var last access.Group
		for i := range 230 {
			// Group i holds persons i%30 and (i+7)%30; every tenth group is nested in the
			// previous tenth one instead of being granted itself.
			g := f.group(tid, fmt.Sprintf("G%03d", i), identity.SourceApp, people[i%30], people[(i+7)%30])
			if i%10 == 0 && i > 0 {
				f.addMembers(tid, last.ID, g.ID)
			} else {
				f.grant(tid, sp.ID, access.PrincipalGroup, g.ID, access.SpaceViewer)
			}
			if i%10 == 0 {
				last = g
			}
		}
		f.grant(tid, sp.ID, access.PrincipalUser, people[3], access.SpaceManager)
		f.grant(tid, sp.ID, access.PrincipalUser, f.user(tid, "Solo", identity.SourceApp).ID, access.SpaceEditor)

		all, more, err := f.acc.EffectiveMembers(ctx, op, sp.ID, "", 100)
		must(t, err)
		if more || len(all) != 31 {
			t.Fatalf("%d members (more: %v), want 31", len(all), more)
		}
		for i, m := range all {
			if i > 0 && all[i-1].UserID >= m.UserID {
				t.Fatalf("members out of order at %d", i)
			}
			sources[m.UserID] = len(m.Sources)
		}
		if a := all[slices.IndexFunc(all, func(m access.EffectiveMember) bool { return m.UserID == people[3] })]; a.Role != access.SpaceManager || a.Sources[0].Kind != "direct" {
			t.Fatalf("the directly granted person: %+v", a)
		}
		for _, size := range []int{1, 7, 30} {
			var paged []access.EffectiveMember
			for after := ""; ; {
				page, more, err := f.acc.EffectiveMembers(ctx, op, sp.ID, after, size)
				must(t, err)
				if len(page) > size || more && len(page) < size {
					t.Fatalf("page of %d (more: %v) at size %d", len(page), more, size)
				}
				paged = append(paged, page...)
				if !more {
					break
				}
				after = page[len(page)-1].UserID
			}
			if !reflect.DeepEqual(paged, all) {
				t.Fatalf("paged by %d: %d members, want the %d of one page, alike", size, len(paged), len(all))
			}
		}
	})
}
