package access_test

import (
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/access"
	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/identity"
	"github.com/gatehouse-dev/gatehouse/modules/keys"
	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
	"github.com/gatehouse-dev/gatehouse/modules/platform/clock"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

// useToken issues a SCIM token and uses it once, so it is the tenant's most recently
// used one.
func (f *fx) useToken(tenantID, name string) {
	f.t.Helper()
	tok, err := f.tenancy.IssueSCIMToken(ctx, tenantID, name, 0)
	must(f.t, err)
	_, err = f.tenancy.AuthenticateSCIM(ctx, tok.Secret)
	must(f.t, err)
}

// Who may change people and groups from the app, by provisioning mode and source; a
// refusal names the IdP (the most recently used SCIM token) as the place to change it.
func TestProvisioningModes(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		f := newFx(t, bdb)
		type tenantCase struct {
			mode tenancy.ProvisioningMode
			// mayCreate: app may add people and groups; mayChange[source]: may change them.
			mayCreate bool
			mayChange map[identity.Source]bool
		}
		for _, c := range []tenantCase{
			{tenancy.ProvisioningSCIM, false, map[identity.Source]bool{identity.SourceSCIM: false, identity.SourceSSO: false, identity.SourceApp: false}},
			{tenancy.ProvisioningMixed, true, map[identity.Source]bool{identity.SourceSCIM: false, identity.SourceSSO: false, identity.SourceApp: true}},
			{tenancy.ProvisioningManual, true, map[identity.Source]bool{identity.SourceSCIM: true, identity.SourceSSO: true, identity.SourceApp: true}},
		} {
			tid := f.tenant(c.mode, tenancy.FeatureUserGroups).ID
			f.useToken(tid, "Okta staging")
			time.Sleep(2 * time.Millisecond) // so the second token's last use is the later one
			f.useToken(tid, "Okta production")
			admin := f.person(tid, "Ada Admin", access.RoleAdmin)
			wantAllowed := func(what string, allowed bool, err error) {
				t.Helper()
				if allowed && err != nil {
					t.Errorf("%s mode, %s: refused: %v", c.mode, what, err)
				}
				if !allowed {
					if apperr.KindOf(err) != apperr.KindForbidden || apperr.CodeOf(err) != "SCIM_MANAGED" {
						t.Errorf("%s mode, %s: %v, want SCIM_MANAGED", c.mode, what, err)
					}
					wantMessage(t, err, "managed by your identity provider (“Okta production”)")
				}
			}
			created, err := f.acc.CreateUser(ctx, admin, identity.User{UserName: "contractor@example.test", DisplayName: "Con Tractor", Active: true, Source: identity.SourceSCIM})
			wantAllowed("CreateUser", c.mayCreate, err)
			if err == nil && created.Source != identity.SourceApp {
				t.Errorf("%s mode: CreateUser stored source %q", c.mode, created.Source)
			}
			_, err = f.acc.CreateGroupAs(ctx, admin, "Contractors", nil)
			wantAllowed("CreateGroupAs", c.mayCreate, err)

			for source, may := range c.mayChange {
				u := f.user(tid, "Ada Lovelace", source)
				_, err := f.acc.UpdateUser(ctx, admin, u.ID, 0, func(u *identity.User) error { u.Title = "Countess"; return nil })
				wantAllowed("UpdateUser of a "+string(source)+" user", may, err)
				if !may {
					want := "Ada Lovelace is managed by your identity provider (“Okta production”) through SCIM; make this change there."
					if source == identity.SourceSSO {
						want = "Ada Lovelace is managed by your identity provider (“Okta production”) through single sign-on; make this change there."
					}
					if got := apperr.PublicMessage(err); got != want {
						t.Errorf("%s mode, %s user: message\n%q, want\n%q", c.mode, source, got, want)
					}
				}
				_, err = f.acc.SetUserActive(ctx, admin, u.ID, false)
				wantAllowed("SetUserActive of a "+string(source)+" user", may, err)
				if got, _ := f.ids.GetUser(ctx, tid, u.ID); got.Active == may {
					t.Errorf("%s mode, %s user: active = %v after SetUserActive(false)", c.mode, source, got.Active)
				}
				if source == identity.SourceSSO {
					continue // groups come from SCIM or the app
				}
				g := f.group(tid, f.name("Team"), source)
				name := f.name("Renamed")
				_, err = f.acc.UpdateGroupAs(ctx, admin, g.ID, &name, nil, nil)
				wantAllowed("UpdateGroupAs of a "+string(source)+" group", may, err)
				wantAllowed("DeleteGroupAs of a "+string(source)+" group", may, f.acc.DeleteGroupAs(ctx, admin, g.ID))
			}
		}
		// No token used yet: the message falls back to "your identity provider".
		tid := f.tenant(tenancy.ProvisioningSCIM, tenancy.FeatureUserGroups).ID
		_, err := f.tenancy.IssueSCIMToken(ctx, tid, "Never used", 0)
		must(t, err)
		_, err = f.acc.CreateUser(ctx, f.person(tid, "Ada", access.RoleAdmin), identity.User{UserName: "x@example.test"})
		wantKind(t, err, apperr.KindForbidden, "SCIM_MANAGED")
		if got := apperr.PublicMessage(err); got != "People in this company are managed by your identity provider through SCIM; make this change there." {
			t.Errorf("message without a used token: %q", got)
		}
	})
}

// Groups from the app need the user_groups plan feature.
func TestAppGroupsNeedTheFeature(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		f := newFx(t, bdb)
		tid := f.tenant(tenancy.ProvisioningManual).ID
		admin := f.person(tid, "Ada", access.RoleAdmin)
		_, err := f.acc.CreateGroupAs(ctx, admin, "Team", nil)
		wantKind(t, err, apperr.KindForbidden, "FEATURE_NOT_IN_PLAN")
		g := f.group(tid, "Legacy", identity.SourceApp)
		name := "New"
		_, err = f.acc.UpdateGroupAs(ctx, admin, g.ID, &name, nil, nil)
		wantKind(t, err, apperr.KindForbidden, "FEATURE_NOT_IN_PLAN")
		wantKind(t, f.acc.DeleteGroupAs(ctx, admin, g.ID), apperr.KindForbidden, "FEATURE_NOT_IN_PLAN")
	})
}

// People and groups managed from the app: the changes land, are audited as the viewer's,
// and deactivation ends the person's sessions before it returns.
func TestManagingPeople(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		f := newFx(t, bdb)
		tid := f.tenant(tenancy.ProvisioningMixed, tenancy.FeatureUserGroups).ID
		admin := f.person(tid, "Ada Admin", access.RoleAdmin)
		u, err := f.acc.CreateUser(ctx, admin, identity.User{UserName: "con@example.test", Active: true})
		must(t, err)
		e := f.lastEvent(tid, "user.created")
		if e.TargetID != u.ID || e.ActorType != audit.ActorUser || e.ActorID != admin.UserID || e.ActorName != admin.UserName {
			t.Fatalf("user.created %+v", e)
		}
		u, err = f.acc.UpdateUser(ctx, admin, u.ID, u.Version, func(u *identity.User) error { u.Title = "Contractor"; return nil })
		must(t, err)
		if u.Title != "Contractor" || u.Version != 2 {
			t.Fatalf("updated %+v", u)
		}
		_, err = f.acc.UpdateUser(ctx, admin, u.ID, 1, func(u *identity.User) error { u.Title = "Stale"; return nil })
		wantKind(t, err, apperr.KindPreconditionFailed, "")

		ks, err := keys.New(bdb, clock.System{}, nil)
		must(t, err)
		sessions := f.ids.Sessions(ks, identity.SessionsConfig{Issuer: "https://id.example.test"})
		for range 3 {
			_, _, err := sessions.Start(ctx, identity.NewSession{TenantID: tid, UserID: u.ID, IdleTimeout: time.Hour, MaxLife: time.Hour, Method: "saml"})
			must(t, err)
		}
		u, err = f.acc.SetUserActive(ctx, admin, u.ID, false)
		must(t, err)
		if left, _ := sessions.ListForUser(ctx, tid, u.ID); u.Active || len(left) != 0 {
			t.Fatalf("after deactivation: active=%v, %d sessions", u.Active, len(left))
		}
		if e := f.lastEvent(tid, "user.deactivated"); e.ActorID != admin.UserID || e.Changes["sessionsRevoked"].After != float64(3) {
			t.Fatalf("user.deactivated %+v", e.Changes)
		}
		if u, err = f.acc.SetUserActive(ctx, admin, u.ID, true); err != nil || !u.Active {
			t.Fatalf("reactivation: %+v %v", u, err)
		}

		scimUser := f.user(tid, "Sam", identity.SourceSCIM)
		g, err := f.acc.CreateGroupAs(ctx, admin, "Contractors", []string{u.ID})
		must(t, err)
		if g.Source != identity.SourceApp {
			t.Fatalf("group source %q", g.Source)
		}
		name := "Vendors"
		g, err = f.acc.UpdateGroupAs(ctx, admin, g.ID, &name, []string{scimUser.ID}, []string{u.ID})
		must(t, err)
		ms, err := f.acc.Members(ctx, tid, g.ID, 0, -1)
		must(t, err)
		if g.DisplayName != "Vendors" || len(ms) != 1 || ms[0].ID != scimUser.ID {
			t.Fatalf("group %+v members %+v", g, ms)
		}
		for _, action := range []string{"group.created", "group.renamed", "group.members_added", "group.members_removed"} {
			if e := f.lastEvent(tid, action); e.ActorID != admin.UserID {
				t.Errorf("%s actor %+v", action, e)
			}
		}
		_, err = f.acc.UpdateGroupAs(ctx, admin, g.ID, nil, []string{"01nosuchuser"}, nil)
		wantKind(t, err, apperr.KindNotFound, "")
		must(t, f.acc.DeleteGroupAs(ctx, admin, g.ID))
		if e := f.lastEvent(tid, "group.deleted"); e.TargetID != g.ID || e.Changes["displayName"].Before != "Vendors" ||
			e.Changes["membersRemoved"].After != float64(1) {
			t.Fatalf("group.deleted %+v", e)
		}

		// A transport that names the signed-in person by id only (GraphQL, from the
		// session) gets their userName filled in; another actor it named is kept.
		byID := audit.WithActor(ctx, audit.Actor{Type: audit.ActorUser, ID: admin.UserID})
		_, err = f.acc.CreateGroupAs(byID, admin, "Named", nil)
		must(t, err)
		if e := f.lastEvent(tid, "group.created"); e.ActorID != admin.UserID || e.ActorName != admin.UserName {
			t.Fatalf("group.created by id only: actor %q %q", e.ActorID, e.ActorName)
		}
		byCLI := audit.WithActor(ctx, audit.Actor{Type: audit.ActorCLI, Name: "cli:ops"})
		_, err = f.acc.CreateGroupAs(byCLI, admin, "Operated", nil)
		must(t, err)
		if e := f.lastEvent(tid, "group.created"); e.ActorType != audit.ActorCLI || e.ActorName != "cli:ops" {
			t.Fatalf("group.created from the CLI: actor %+v", e)
		}

		// Reading needs only a viewer of the tenant.
		member := f.person(tid, "Mia", access.RoleMember)
		if users, _, err := f.acc.Users(ctx, member, access.UserQuery{}); err != nil || len(users) == 0 {
			t.Fatalf("a member reading users: %d, %v", len(users), err)
		}
		_, _, err = f.acc.Users(ctx, access.Viewer{}, access.UserQuery{})
		wantKind(t, err, apperr.KindUnauthenticated, "")
	})
}

// Without tenancy the calls that need it fail loudly instead of guessing.
func TestWithoutTenancy(t *testing.T) {
	bdb := testenv.SQLite(t)
	f := newFx(t, bdb)
	tid := f.tenant(tenancy.ProvisioningManual, tenancy.FeatureUserGroups).ID
	bare := access.New(bdb, clock.System{}, f.audit, f.ids)
	_, err := bare.CreateUser(ctx, access.OperatorViewer(tid), identity.User{UserName: "x@example.test"})
	if err == nil || apperr.KindOf(err) != apperr.KindInternal {
		t.Fatalf("CreateUser without tenancy: %v", err)
	}
}
