package main

import (
	"context"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/platform/clock"
	"github.com/gatehouse-dev/gatehouse/modules/platform/db"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

// dbURLs are the two databases every operator command is tested on.
var dbURLs = []struct {
	name string
	url  func(t *testing.T) string
}{
	{"sqlite", func(t *testing.T) string { return testenv.SQLiteURL(t) }},
	{"postgres", func(t *testing.T) string { return testenv.PostgresDatabaseURL(t) }},
}

// The operator sets how long a tenant's audit events are kept; the setting is shown,
// validated and audited.
func TestAuditRetentionSetting(t *testing.T) {
	for _, dbCase := range dbURLs {
		t.Run(dbCase.name, func(t *testing.T) {
			url := dbCase.url(t)
			getenv := envOf("GATEHOUSE_DATABASE_URL", url)
			mustCLI(t, getenv, "tenant", "create", "--slug", "acme")
			if out := squash(mustCLI(t, getenv, "tenant", "show", "acme")); !strings.Contains(out, "audit retention forever") {
				t.Fatalf("tenant show:\n%s", out)
			}
			if out := squash(mustCLI(t, getenv, "tenant", "update", "--tenant", "acme", "--audit-retention-days", "365")); !strings.Contains(out, "audit retention 365 days") {
				t.Fatalf("tenant update:\n%s", out)
			}
			if out := squash(mustCLI(t, getenv, "tenant", "show", "acme")); !strings.Contains(out, "audit retention 365 days") {
				t.Fatalf("tenant show after update:\n%s", out)
			}
			for _, bad := range []string{"3", "3651", "-1"} {
				if _, err := cli(t, getenv, "tenant", "update", "--tenant", "acme", "--audit-retention-days", bad); err == nil || !strings.Contains(err.Error(), "out of range") {
					t.Fatalf("--audit-retention-days %s: %v", bad, err)
				}
			}
			if _, err := cli(t, getenv, "tenant", "update", "--tenant", "acme", "--audit-retention-days", "a year"); err == nil || !strings.Contains(err.Error(), "whole number") {
				t.Fatalf("--audit-retention-days 'a year': %v", err)
			}

			ctx := context.Background()
			bdb, err := db.Open(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			defer bdb.Close()
			al := audit.New(clock.System{})
			acme, err := tenancy.New(bdb, clock.System{}, al, nil).TenantBySlug(ctx, "acme")
			if err != nil || acme.AuditRetentionDays != 365 {
				t.Fatalf("acme = %+v, %v", acme, err)
			}
			latest, _ := al.Latest(ctx, bdb, acme.ID)
			ev, _, err := al.Page(ctx, bdb, acme.ID, audit.Filter{}, latest-1, 1)
			if err != nil || len(ev) != 1 || ev[0].Action != "tenant.settings_changed" || ev[0].ActorType != audit.ActorCLI ||
				ev[0].Changes["auditRetentionDays"].Before != 0.0 || ev[0].Changes["auditRetentionDays"].After != 365.0 {
				t.Fatalf("the last event: %+v, %v", ev, err)
			}
			mustCLI(t, getenv, "tenant", "update", "--tenant", "acme", "--audit-retention-days", "0")
			if out := squash(mustCLI(t, getenv, "tenant", "show", "acme")); !strings.Contains(out, "audit retention forever") {
				t.Fatalf("tenant show after going back to forever:\n%s", out)
			}
		})
	}
}
