package tenancy_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
	"github.com/gatehouse-dev/gatehouse/modules/platform/clock"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// fakeDNS is the one fake here: DNS is a boundary we do not own and tests have no
// network.
type fakeDNS map[string][]string

func (f fakeDNS) LookupTXT(_ context.Context, name string) ([]string, error) {
	if r, ok := f[name]; ok {
		return r, nil
	}
	return nil, errors.New("no such host")
}

type fixture struct {
	svc   *tenancy.Service
	clock *clock.Manual
	dns   fakeDNS
	log   *audit.Log
	db    *bun.DB
}

// testEpoch is when every fixture's clock starts; certificates made for the tests are
// valid relative to it, so no test depends on the day it runs.
var testEpoch = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func newFixture(bdb *bun.DB) fixture {
	clk := clock.NewManual(testEpoch)
	dns := fakeDNS{}
	log := audit.New(clk)
	return fixture{svc: tenancy.New(bdb, clk, log, dns), clock: clk, dns: dns, log: log, db: bdb}
}

func wantKind(t *testing.T, err error, kind apperr.Kind, contains string) {
	t.Helper()
	if !apperr.Is(err, kind) {
		t.Fatalf("want %s error, got %v", kind, err)
	}
	if !strings.Contains(err.Error(), contains) {
		t.Fatalf("error %q does not mention %q", err, contains)
	}
}

func TestTenants(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		f := newFixture(bdb)
		ctx := context.Background()
		ten, err := f.svc.CreateTenant(ctx, tenancy.CreateTenantInput{Slug: "acme", Name: "Acme Inc", Features: []tenancy.Feature{"user_groups"}})
		if err != nil {
			t.Fatal(err)
		}
		if ten.ProvisioningMode != tenancy.ProvisioningSCIM || !ten.Has(tenancy.FeatureUserGroups) {
			t.Fatalf("unexpected tenant %+v", ten)
		}
		got, err := f.svc.TenantBySlug(ctx, "acme")
		if err != nil || got.ID != ten.ID || got.Name != "Acme Inc" || !got.Has(tenancy.FeatureUserGroups) {
			t.Fatalf("TenantBySlug = %+v, %v", got, err)
		}
		_, err = f.svc.CreateTenant(ctx, tenancy.CreateTenantInput{Slug: "acme"})
		wantKind(t, err, apperr.KindConflict, `slug "acme" already exists`)

		for _, bad := range []string{"", "Acme", "-acme", "acme-", "ac me", "acme_inc", strings.Repeat("a", 64), "ácme"} {
			_, err = f.svc.CreateTenant(ctx, tenancy.CreateTenantInput{Slug: bad})
			wantKind(t, err, apperr.KindInvalid, "is not valid")
		}
		_, err = f.svc.CreateTenant(ctx, tenancy.CreateTenantInput{Slug: "globex", ProvisioningMode: "ldap"})
		wantKind(t, err, apperr.KindInvalid, "use scim or manual")
		_, err = f.svc.CreateTenant(ctx, tenancy.CreateTenantInput{Slug: "globex", Features: []tenancy.Feature{"teleport"}})
		wantKind(t, err, apperr.KindInvalid, `feature "teleport" is not known`)

		_, err = f.svc.TenantBySlug(ctx, "nobody")
		wantKind(t, err, apperr.KindNotFound, `no tenant with slug "nobody"`)

		mode := tenancy.ProvisioningManual
		upd, err := f.svc.UpdateSettings(ctx, ten.ID, tenancy.SettingsPatch{ProvisioningMode: &mode, Features: &[]tenancy.Feature{}})
		if err != nil || upd.ProvisioningMode != mode || upd.Has(tenancy.FeatureUserGroups) {
			t.Fatalf("UpdateSettings = %+v, %v", upd, err)
		}
		list, err := f.svc.ListTenants(ctx)
		if err != nil || len(list) != 1 {
			t.Fatalf("ListTenants = %v, %v", list, err)
		}
		events, _, err := f.log.Page(ctx, bdb, ten.ID, audit.Filter{}, 0, 10)
		if err != nil || len(events) != 2 || events[0].Action != "tenant.created" || events[1].Action != "tenant.settings_changed" {
			t.Fatalf("audit events = %+v, %v", events, err)
		}
		if ch := events[1].Changes["provisioningMode"]; ch.Before != "scim" || ch.After != "manual" {
			t.Fatalf("settings change recorded as %+v", ch)
		}
	})
}

func TestDomains(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		f := newFixture(bdb)
		ctx := context.Background()
		acme, _ := f.svc.CreateTenant(ctx, tenancy.CreateTenantInput{Slug: "acme"})
		evil, _ := f.svc.CreateTenant(ctx, tenancy.CreateTenantInput{Slug: "evil"})

		for _, bad := range []string{"", "acme", "https://acme.com", "ada@acme.com", "acme..com", "-acme.com", "acme.com/x", "10.0.0.1", "ac me.com"} {
			_, err := f.svc.AddDomain(ctx, acme.ID, bad)
			wantKind(t, err, apperr.KindInvalid, "is not valid")
		}
		d, err := f.svc.AddDomain(ctx, acme.ID, "Acme.COM.")
		if err != nil || d.Domain != "acme.com" || d.Verified() {
			t.Fatalf("AddDomain = %+v, %v", d, err)
		}
		_, err = f.svc.AddDomain(ctx, acme.ID, "acme.com")
		wantKind(t, err, apperr.KindConflict, "already added")
		_, err = f.svc.AddDomain(ctx, "no-such-tenant", "acme.com")
		wantKind(t, err, apperr.KindNotFound, "no such tenant")

		// Without the TXT record, DNS verification fails and says what to publish.
		_, err = f.svc.VerifyDomain(ctx, acme.ID, "acme.com", tenancy.VerifyDNS)
		wantKind(t, err, apperr.KindInvalid, d.ChallengeValue())
		f.dns[d.ChallengeName()] = []string{"v=spf1 -all", "gatehouse-domain-verification=wrong"}
		_, err = f.svc.VerifyDomain(ctx, acme.ID, "acme.com", tenancy.VerifyDNS)
		wantKind(t, err, apperr.KindInvalid, "do not include")
		f.dns[d.ChallengeName()] = append(f.dns[d.ChallengeName()], d.ChallengeValue())
		v, err := f.svc.VerifyDomain(ctx, acme.ID, "acme.com", tenancy.VerifyDNS)
		if err != nil || !v.Verified() {
			t.Fatalf("VerifyDomain = %+v, %v", v, err)
		}
		_, err = f.svc.VerifyDomain(ctx, acme.ID, "other.com", tenancy.VerifyManual)
		wantKind(t, err, apperr.KindNotFound, "domain add")

		// Another tenant may claim the domain but never verify it too.
		if _, err := f.svc.AddDomain(ctx, evil.ID, "acme.com"); err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.VerifyDomain(ctx, evil.ID, "acme.com", tenancy.VerifyManual)
		wantKind(t, err, apperr.KindConflict, "already verified by another tenant")

		got, err := f.svc.TenantByVerifiedDomain(ctx, "Ada@ACME.com")
		if err != nil || got.ID != acme.ID {
			t.Fatalf("TenantByVerifiedDomain = %+v, %v", got, err)
		}
		_, err = f.svc.TenantByVerifiedDomain(ctx, "bob@unknown.org")
		wantKind(t, err, apperr.KindNotFound, "unknown.org")
		ds, err := f.svc.ListDomains(ctx, acme.ID)
		if err != nil || len(ds) != 1 {
			t.Fatalf("ListDomains = %v, %v", ds, err)
		}
	})
}

func TestSCIMTokens(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		f := newFixture(bdb)
		ctx := context.Background()
		acme, _ := f.svc.CreateTenant(ctx, tenancy.CreateTenantInput{Slug: "acme"})

		issued, err := f.svc.IssueSCIMToken(ctx, acme.ID, "Okta", 0)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(issued.Secret, tenancy.SCIMTokenPrefix) || len(issued.Secret) != 64 {
			t.Fatalf("secret %q has the wrong shape", issued.Secret)
		}
		// Only the hash is stored.
		var stored string
		if err := bdb.QueryRowContext(ctx, "SELECT token_hash FROM scim_tokens").Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(stored, issued.Secret[len(tenancy.SCIMTokenPrefix):]) || len(stored) != 64 {
			t.Fatalf("stored token column %q is not a SHA-256 hash", stored)
		}

		p, err := f.svc.AuthenticateSCIM(ctx, issued.Secret)
		if err != nil || p.Tenant.ID != acme.ID || p.TokenName != "Okta" {
			t.Fatalf("AuthenticateSCIM = %+v, %v", p, err)
		}
		list, _ := f.svc.ListSCIMTokens(ctx, acme.ID)
		if len(list) != 1 || list[0].LastUsedAt == nil || list[0].State(f.clock.Now()) != "active" {
			t.Fatalf("last use not recorded: %+v", list)
		}

		// Malformed, checksum-broken and unknown tokens are refused alike.
		flipped := []byte(issued.Secret)
		flipped[20] ^= 1
		other := strings.Replace(issued.Secret, issued.Secret[15:25], "0000000000", 1)
		for _, bad := range []string{"", "Bearer x", issued.Secret + "x", string(flipped), other} {
			_, err := f.svc.AuthenticateSCIM(ctx, bad)
			wantKind(t, err, apperr.KindUnauthenticated, "not valid")
		}

		// Expiry.
		short, err := f.svc.IssueSCIMToken(ctx, acme.ID, "Entra", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.AuthenticateSCIM(ctx, short.Secret); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(time.Hour)
		_, err = f.svc.AuthenticateSCIM(ctx, short.Secret)
		wantKind(t, err, apperr.KindUnauthenticated, "not valid")

		// Revocation, and a tenant cannot revoke another tenant's token.
		other2, _ := f.svc.CreateTenant(ctx, tenancy.CreateTenantInput{Slug: "other"})
		err = f.svc.RevokeSCIMToken(ctx, other2.ID, issued.Token.ID)
		wantKind(t, err, apperr.KindNotFound, "no SCIM token")
		if _, err := f.svc.AuthenticateSCIM(ctx, issued.Secret); err != nil {
			t.Fatalf("token revoked through another tenant: %v", err)
		}
		if err := f.svc.RevokeSCIMToken(ctx, acme.ID, issued.Token.ID); err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.AuthenticateSCIM(ctx, issued.Secret)
		wantKind(t, err, apperr.KindUnauthenticated, "not valid")

		_, err = f.svc.IssueSCIMToken(ctx, acme.ID, " ", 0)
		wantKind(t, err, apperr.KindInvalid, "token name")
		_, err = f.svc.IssueSCIMToken(ctx, "nope", "x", 0)
		wantKind(t, err, apperr.KindNotFound, "no such tenant")

		events, _, _ := f.log.Page(ctx, bdb, acme.ID, audit.Filter{}, 0, 10)
		var actions []string
		for _, e := range events {
			actions = append(actions, e.Action)
		}
		if strings.Join(actions, ",") != "tenant.created,scim_token.issued,scim_token.issued,scim_token.revoked" {
			t.Fatalf("audit actions = %v", actions)
		}
	})
}
