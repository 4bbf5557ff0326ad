package access_test

import (
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/access"
	"github.com/gatehouse-dev/gatehouse/modules/identity"
	"github.com/gatehouse-dev/gatehouse/modules/keys"
	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
	"github.com/gatehouse-dev/gatehouse/modules/platform/clock"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

// Company administration done for a person is audited as theirs, and the operator's
// settings stay the operator's.
func TestCompanyAdministration(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		f := newFx(t, bdb)
		tid := f.tenant(tenancy.ProvisioningManual, tenancy.FeatureUserGroups).ID
		admin := f.person(tid, "Ada", access.RoleAdmin)
		owner := f.person(tid, "Olive", access.RoleOwner)
		jit := true
		if _, err := f.acc.UpdateTenantSettings(ctx, admin, tenancy.SettingsPatch{JITProvisioning: &jit}); err != nil {
			t.Fatal(err)
		}
		if e := f.lastEvent(tid, "tenant.settings_changed"); e.ActorID != admin.UserID || e.ActorName != admin.UserName {
			t.Errorf("settings changed by %q %q, want the admin", e.ActorID, e.ActorName)
		}
		none := []tenancy.Feature{}
		retention, limit := 30, 500
		for _, p := range []tenancy.SettingsPatch{{Features: &none}, {AuditRetentionDays: &retention}, {SCIMRateLimit: &limit}} {
			_, err := f.acc.UpdateTenantSettings(ctx, admin, p)
			wantKind(t, err, apperr.KindForbidden, "FORBIDDEN")
			wantMessage(t, err, "operator")
		}
		if tn, _ := f.tenancy.Tenant(ctx, tid); !tn.Has(tenancy.FeatureUserGroups) {
			t.Fatal("a company admin took a plan feature away")
		}

		// Issuing a token is an owner's: an admin is refused, and revokes what an owner
		// issued.
		_, err := f.acc.IssueSCIMToken(ctx, admin, "Okta", time.Hour)
		wantKind(t, err, apperr.KindForbidden, "FORBIDDEN")
		it, err := f.acc.IssueSCIMToken(ctx, owner, "Okta", time.Hour)
		must(t, err)
		if e := f.lastEvent(tid, "scim_token.issued"); e.ActorID != owner.UserID || it.Secret == "" {
			t.Errorf("token issued by %q", e.ActorID)
		}
		must(t, f.acc.RevokeSCIMToken(ctx, admin, it.Token.ID))
		if e := f.lastEvent(tid, "scim_token.revoked"); e.ActorID != admin.UserID {
			t.Errorf("token revoked by %q", e.ActorID)
		}
		x, err := f.acc.SetSCIMExtension(ctx, admin, extension("acme"))
		must(t, err)
		if e := f.lastEvent(tid, "scim_extension.changed"); e.ActorID != admin.UserID || e.TargetID != x.URN {
			t.Errorf("extension declared by %q", e.ActorID)
		}

		// Ending someone's sessions ends them, audited as the admin's.
		bob := f.user(tid, "Bob", identity.SourceApp)
		ks, err := keys.New(bdb, clock.System{}, nil)
		must(t, err)
		_, tok, err := f.ids.Sessions(ks, identity.SessionsConfig{}).Start(ctx, identity.NewSession{TenantID: tid, UserID: bob.ID,
			IdleTimeout: time.Hour, MaxLife: time.Hour, Method: "saml"})
		must(t, err)
		n, err := f.acc.RevokeUserSessions(ctx, admin, bob.ID)
		if err != nil || n != 1 || tok == "" {
			t.Fatalf("RevokeUserSessions = %d, %v", n, err)
		}
		if e := f.lastEvent(tid, "session.revoked"); e.ActorID != admin.UserID || e.TargetID != bob.ID {
			t.Errorf("sessions revoked by %q of %q", e.ActorID, e.TargetID)
		}
	})
}
