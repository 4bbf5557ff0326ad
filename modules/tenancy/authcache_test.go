package tenancy_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
	"github.com/gatehouse-dev/gatehouse/modules/platform/bus"
	"github.com/gatehouse-dev/gatehouse/modules/platform/clock"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

// A replica remembers the SCIM tokens it has looked up for a moment, but a token revoked
// or a tenant changed on another replica is refused or seen on this one as soon as the
// change's announcement arrives over the bus (well before the second a remembered
// lookup lasts), and within a second when no announcement comes. The replica that made
// the change sees it at once.
func TestSCIMAuthenticationFollowsChangesAcrossReplicas(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		ctx := context.Background()
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		replica := func() *tenancy.Service {
			return tenancy.New(bdb, clock.System{}, audit.New(clock.System{}), fakeDNS{})
		}
		shared := bus.NewMemory()
		a, b, cli := replica(), replica(), replica()
		watch, stop := context.WithCancel(ctx)
		defer stop()
		for _, s := range []*tenancy.Service{a, b} {
			if err := s.ShareChanges(watch, shared, log); err != nil {
				t.Fatal(err)
			}
		}
		acme, err := a.CreateTenant(ctx, tenancy.CreateTenantInput{Slug: "acme", Features: []tenancy.Feature{tenancy.FeatureUserGroups}})
		if err != nil {
			t.Fatal(err)
		}
		issue := func() tenancy.IssuedToken {
			it, err := a.IssueSCIMToken(ctx, acme.ID, "Okta", 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.AuthenticateSCIM(ctx, it.Secret); err != nil { // remembered on A
				t.Fatal(err)
			}
			return it
		}

		// soon polls f for the time a remembered lookup lasts at most, less a margin.
		soon := func(what string, f func() bool) {
			t.Helper()
			for deadline := time.Now().Add(500 * time.Millisecond); !f(); time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("%s: not seen on replica A within 500 ms", what)
				}
			}
		}

		// Revoked on A: refused on A at once. Revoked on B: on A as the announcement comes.
		it := issue()
		if err := a.RevokeSCIMToken(ctx, acme.ID, it.Token.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := a.AuthenticateSCIM(ctx, it.Secret); !apperr.Is(err, apperr.KindUnauthenticated) {
			t.Fatalf("a token this replica revoked is accepted: %v", err)
		}
		it = issue()
		if err := b.RevokeSCIMToken(ctx, acme.ID, it.Token.ID); err != nil {
			t.Fatal(err)
		}
		soon("a token revoked on B", func() bool {
			_, err := a.AuthenticateSCIM(ctx, it.Secret)
			return apperr.Is(err, apperr.KindUnauthenticated)
		})

		// A setting changed on B: A's principal carries it.
		it = issue()
		if _, err := b.UpdateSettings(ctx, acme.ID, tenancy.SettingsPatch{Features: &[]tenancy.Feature{}}); err != nil {
			t.Fatal(err)
		}
		soon("user_groups removed on B", func() bool {
			p, err := a.AuthenticateSCIM(ctx, it.Secret)
			return err == nil && !slices.Contains(p.Tenant.Features, tenancy.FeatureUserGroups)
		})

		// Revoked where no bus reaches (a CLI command beside an embedded server): refused
		// within a second.
		it = issue()
		if err := cli.RevokeSCIMToken(ctx, acme.ID, it.Token.ID); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1100 * time.Millisecond)
		if _, err := a.AuthenticateSCIM(ctx, it.Secret); !apperr.Is(err, apperr.KindUnauthenticated) {
			t.Fatalf("a token revoked without an announcement is still accepted after a second: %v", err)
		}
	})
}
