package access_test

import (
	"fmt"
	"testing"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/access"
	"github.com/gatehouse-dev/gatehouse/modules/identity"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

// The batch functions behind dataloaders run a fixed number of queries whether they are
// asked about 1 user (space, group) or 100.
func TestBatchQueriesDoNotGrow(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		f := newFx(t, bdb)
		tid := f.tenant(tenancy.ProvisioningManual, tenancy.FeatureUserGroups).ID
		custom := f.role(tid, "Auditor", access.PermViewAuditLog)
		inner := f.group(tid, "Inner", identity.SourceApp)
		outer := f.group(tid, "Outer", identity.SourceApp, inner.ID)
		must(t, f.acc.MapGroupToRole(ctx, f.op(tid), outer.ID, custom.ID))
		// Batch reads are a viewer's: resolved first, as a request does, so their checks
		// (plan features, which spaces they may see) cost no query of their own.
		admin := f.person(tid, "Ada Admin", access.RoleAdmin)
		var users, spaces, groups []string
		for i := range 100 {
			u := f.user(tid, fmt.Sprintf("User %d", i), identity.SourceApp)
			users = append(users, u.ID)
			sp := f.space(tid, fmt.Sprintf("Space %d", i))
			spaces = append(spaces, sp.ID)
			g := f.group(tid, fmt.Sprintf("Team %d", i), identity.SourceApp, u.ID)
			groups = append(groups, g.ID)
			f.addMembers(tid, inner.ID, u.ID)
			f.grant(tid, sp.ID, access.PrincipalUser, u.ID, access.SpaceViewer)
			f.grant(tid, sp.ID, access.PrincipalGroup, g.ID, access.SpaceEditor)
			f.grant(tid, sp.ID, access.PrincipalGroup, outer.ID, access.SpaceViewer)
			if i%3 == 0 {
				must(t, f.acc.SetUserRole(ctx, f.op(tid), u.ID, custom.ID))
			}
		}
		for _, c := range []struct {
			name string
			max  int64
			call func(ids []string) int
		}{
			{"UserRoles", 2, func(ids []string) int {
				m, err := f.acc.UserRoles(ctx, tid, ids)
				must(t, err)
				return len(m)
			}},
			{"EffectiveSpaces", 3, func(ids []string) int {
				m, err := f.acc.EffectiveSpaces(ctx, admin, ids)
				must(t, err)
				return len(m)
			}},
		} {
			one := f.count(func() {
				if n := c.call(users[:1]); n != 1 {
					t.Fatalf("%s of 1 user: %d results", c.name, n)
				}
			})
			hundred := f.count(func() {
				if n := c.call(users); n != 100 {
					t.Fatalf("%s of 100 users: %d results", c.name, n)
				}
			})
			if one != hundred || hundred > c.max || one == 0 {
				t.Errorf("%s: %d queries for 1 user, %d for 100; want the same, at most %d", c.name, one, hundred, c.max)
			}
		}
		// A member sees the spaces of the first 50 users' teams only: the visibility
		// check is part of the same statement.
		member := f.person(tid, "Mia Member", access.RoleMember)
		for i := range 50 {
			f.addMembers(tid, groups[i], member.UserID)
		}
		for _, v := range []struct {
			name    string
			v       access.Viewer
			visible int
		}{{"admin", admin, 100}, {"member", member, 50}} {
			for _, c := range []struct {
				name string
				ids  []string
				call func(ids []string) int
				all  bool // every viewer sees all 100 (groups are not restricted by spaces)
			}{
				{"SpacesByIDs", spaces, func(ids []string) int {
					m, err := f.acc.SpacesByIDs(ctx, v.v, ids)
					must(t, err)
					return len(m)
				}, false},
				{"GrantsOfSpaces", spaces, func(ids []string) int {
					m, err := f.acc.GrantsOfSpaces(ctx, v.v, ids)
					must(t, err)
					return len(m)
				}, false},
				{"GrantsOfGroups", groups, func(ids []string) int {
					m, err := f.acc.GrantsOfGroups(ctx, v.v, ids)
					must(t, err)
					return len(m)
				}, false},
				{"GroupsByIDs", groups, func(ids []string) int {
					m, err := f.acc.GroupsByIDs(ctx, v.v, ids)
					must(t, err)
					return len(m)
				}, true},
				{"MemberPages", groups, func(ids []string) int {
					m, err := f.acc.MemberPages(ctx, v.v, ids, "", 10)
					must(t, err)
					return len(m)
				}, true},
			} {
				want := v.visible
				if c.all {
					want = 100
				}
				one := f.count(func() { c.call(c.ids[:1]) })
				hundred := f.count(func() {
					if n := c.call(c.ids); n != want {
						t.Fatalf("%s of 100 as %s: %d results, want %d", c.name, v.name, n, want)
					}
				})
				if one != 1 || hundred != 1 {
					t.Errorf("%s as %s: %d queries for 1, %d for 100; want 1", c.name, v.name, one, hundred)
				}
			}
		}
		// What the batch answered is right, too: every third user is an auditor directly,
		// everyone through Inner ⊂ Outer; each is an editor of their own space (direct,
		// their team, Outer) and a viewer of every other (Outer).
		roles, err := f.acc.UserRoles(ctx, tid, users)
		must(t, err)
		eff, err := f.acc.EffectiveSpaces(ctx, admin, users)
		must(t, err)
		for i, id := range users {
			wantDirect := access.RoleMember
			if i%3 == 0 {
				wantDirect = custom.ID
			}
			if rs := roles[id]; len(rs) != 2 || rs[0].Role.ID != wantDirect || rs[1].Role.ID != custom.ID || rs[1].GroupName != "Outer" {
				t.Fatalf("roles of user %d: %+v", i, rs)
			}
			es := eff[id]
			if len(es) != 100 {
				t.Fatalf("user %d has access to %d spaces, want all 100 (through Outer)", i, len(es))
			}
			for _, a := range es {
				own := a.SpaceID == spaces[i]
				if own && (a.Role != access.SpaceEditor || len(a.Sources) != 3) || !own && (a.Role != access.SpaceViewer || len(a.Sources) != 1) {
					t.Fatalf("user %d, space %s (own %v): %+v", i, a.SpaceID, own, a)
				}
			}
		}
		// SpaceAccess, the per-request check, is one query.
		if n := f.count(func() { f.access(tid, users[7], spaces[7]) }); n != 1 {
			t.Errorf("SpaceAccess ran %d queries", n)
		}
	})
}
