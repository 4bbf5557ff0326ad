package main

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/platform/clock"
	"github.com/gatehouse-dev/gatehouse/modules/platform/db"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

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

// The operator verifies a tenant's audit log (and sees a tampered one refused), and
// tails it, filtered and following.
func TestAuditCommands(t *testing.T) {
	defer func(d time.Duration) { tailPollEvery = d }(tailPollEvery)
	tailPollEvery = 20 * time.Millisecond
	for _, dbCase := range dbURLs {
		t.Run(dbCase.name, func(t *testing.T) {
			url := dbCase.url(t)
			getenv := envOf("GATEHOUSE_DATABASE_URL", url)
			mustCLI(t, getenv, "tenant", "create", "--slug", "acme")
			mustCLI(t, getenv, "tenant", "create", "--slug", "globex")
			mustCLI(t, getenv, "tenant", "update", "--tenant", "acme", "--audit-retention-days", "365") // acme's event #2

			ctx := context.Background()
			bdb, err := db.Open(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			defer bdb.Close()
			al := audit.New(clock.System{})
			acme, err := tenancy.New(bdb, clock.System{}, al, nil).TenantBySlug(ctx, "acme")
			if err != nil {
				t.Fatal(err)
			}
			// 30 more events: 32 in all.
			octx := audit.WithActor(ctx, audit.Actor{Type: audit.ActorSCIMToken, ID: "tok", Name: "Okta"})
			for i := range 30 {
				action := "user.updated"
				if i%10 == 0 {
					action = "user.deactivated"
				}
				if err := al.Record(octx, bdb, audit.Event{TenantID: acme.ID, Action: action,
					Target:  audit.Target{Type: "user", ID: fmt.Sprintf("u%d", i), Display: fmt.Sprintf("user%d@acme.com", i)},
					Changes: map[string]audit.Change{"active": {Before: true, After: false}, "title": {After: "line\nbreak"}}}); err != nil {
					t.Fatal(err)
				}
			}

			if out := mustCLI(t, getenv, "audit", "verify", "--tenant", "acme"); out != "audit log of acme: 32 events verified, chain intact\n" {
				t.Fatalf("audit verify:\n%s", out)
			}

			out := mustCLI(t, getenv, "audit", "tail", "--tenant", "acme")
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != 20 || !strings.HasPrefix(lines[0], "#13  ") || !strings.HasPrefix(lines[19], "#32  ") {
				t.Fatalf("audit tail printed %d lines:\n%s", len(lines), out)
			}
			if want := regexp.MustCompile(`^#32  \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ  user\.updated  scim_token:Okta  user:user29@acme\.com  active=true→false title="line\\nbreak"$`); !want.MatchString(lines[19]) {
				t.Fatalf("event line: %q", lines[19])
			}
			out = mustCLI(t, getenv, "audit", "tail", "--tenant", "acme", "--action", "user.deactivated,tenant.settings_changed")
			lines = strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != 4 || !strings.Contains(lines[0], "#2  ") || !strings.Contains(lines[0], "tenant.settings_changed  cli:") ||
				!strings.Contains(lines[0], "auditRetentionDays=0→365") || !strings.HasPrefix(lines[3], "#23  ") {
				t.Fatalf("audit tail --action:\n%s", out)
			}
			if out := mustCLI(t, getenv, "audit", "tail", "--tenant", "globex", "--action", "user.deleted"); out != "no matching audit events in globex\n" {
				t.Fatalf("tail of nothing:\n%s", out)
			}

			// --follow prints what is committed after it started, until interrupted.
			fctx, stop := context.WithCancel(ctx)
			var buf syncBuffer
			done := make(chan error, 1)
			go func() {
				done <- run(fctx, []string{"audit", "tail", "--tenant", "acme", "--follow", "--action", "user.deleted", "-n", "1"}, getenv, &buf, &buf)
			}()
			waitFor := func(want string) {
				t.Helper()
				deadline := time.Now().Add(10 * time.Second)
				for !strings.Contains(buf.String(), want) {
					if time.Now().After(deadline) {
						t.Fatalf("tail --follow did not print %q:\n%s", want, buf.String())
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
			time.Sleep(100 * time.Millisecond) // let it start and print nothing
			for _, action := range []string{"user.updated", "user.deleted", "user.updated", "user.deleted"} {
				if err := al.Record(octx, bdb, audit.Event{TenantID: acme.ID, Action: action, Target: audit.Target{Type: "user", ID: "u1"}}); err != nil {
					t.Fatal(err)
				}
			}
			waitFor("#36  ")
			stop()
			if err := <-done; err != nil {
				t.Fatalf("tail --follow ended with %v", err)
			}
			if got := strings.Split(strings.TrimSpace(buf.String()), "\n"); len(got) != 2 || !strings.HasPrefix(got[0], "#34  ") || !strings.Contains(got[0], "user.deleted") {
				t.Fatalf("tail --follow printed:\n%s", buf.String())
			}

			// Pruned before #10, then tampered with.
			tenth, _, err := al.Page(ctx, bdb, acme.ID, audit.Filter{}, 9, 1)
			if err != nil {
				t.Fatal(err)
			}
			if n, err := al.Prune(ctx, bdb, acme.ID, tenth[0].OccurredAt); err != nil || n != 9 {
				t.Fatalf("Prune = %d, %v", n, err)
			}
			if out := mustCLI(t, getenv, "audit", "verify", "--tenant", "acme"); out != "audit log of acme: 27 events verified, chain intact\n"+
				"(verified from the checkpoint after event #9: older events were pruned or predate the chain)\n" {
				t.Fatalf("audit verify after a prune:\n%s", out)
			}
			var name string
			if err := bdb.NewSelect().Table("audit_events").Column("actor_name").Where("tenant_id = ? AND seq = 20", acme.ID).Scan(ctx, &name); err != nil {
				t.Fatal(err)
			}
			if _, err := bdb.ExecContext(ctx, "UPDATE audit_events SET actor_name = 'someone else' WHERE tenant_id = ? AND seq = 20", acme.ID); err != nil {
				t.Fatal(err)
			}
			out, err = cli(t, getenv, "audit", "verify", "--tenant", "acme")
			if err == nil || !strings.Contains(err.Error(), "broken at event #20") ||
				!regexp.MustCompile(`^BROKEN at event #20 \(id \w+\): its contents do not match its hash: the event was edited\n10 events before it verified\n$`).MatchString(out) {
				t.Fatalf("audit verify of a tampered log: %v\n%s", err, out)
			}
			// The edit undone, a deleted row is named as missing.
			if _, err := bdb.ExecContext(ctx, "UPDATE audit_events SET actor_name = ? WHERE tenant_id = ? AND seq = 20", name, acme.ID); err != nil {
				t.Fatal(err)
			}
			mustCLI(t, getenv, "audit", "verify", "--tenant", "acme")
			if _, err := bdb.ExecContext(ctx, "DELETE FROM audit_events WHERE tenant_id = ? AND seq = 25", acme.ID); err != nil {
				t.Fatal(err)
			}
			out, err = cli(t, getenv, "audit", "verify", "--tenant", "acme")
			if err == nil || !strings.Contains(err.Error(), "broken at event #25") ||
				out != "BROKEN at event #25 (missing): event #25 is missing: the log goes from #24 to #26 (deleted, or its seq or tenant changed)\n15 events before it verified\n" {
				t.Fatalf("audit verify of a log with a deleted event: %v\n%s", err, out)
			}
			if out := mustCLI(t, getenv, "audit", "verify", "--tenant", "globex"); out != "audit log of globex: 1 events verified, chain intact\n" {
				t.Fatalf("another tenant:\n%s", out)
			}
			if _, err := cli(t, getenv, "audit", "rewrite", "--tenant", "acme"); err == nil || !strings.Contains(err.Error(), `unknown audit action "rewrite"`) {
				t.Fatalf("audit rewrite: %v", err)
			}
		})
	}
}

// The retention job of `gatehouse serve`: once a tenant has a retention, the running
// server deletes its events older than that (at the next run of the job) and the log
// still verifies from the checkpoint the prune left; a tenant that keeps its log
// forever keeps even its oldest events.
func TestAuditRetentionJob(t *testing.T) {
	defer func(d time.Duration) { auditPruneEvery = d }(auditPruneEvery)
	auditPruneEvery = 50 * time.Millisecond
	for _, dbCase := range dbURLs {
		t.Run(dbCase.name, func(t *testing.T) {
			url := dbCase.url(t)
			getenv := envOf("GATEHOUSE_DATABASE_URL", url)
			mustCLI(t, getenv, "migrate", "up")
			ctx := context.Background()
			bdb, err := db.Open(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			defer bdb.Close()
			// Two tenants created 40 days ago, each with 10 events of that time.
			past := clock.NewManual(time.Now().AddDate(0, 0, -40))
			al := audit.New(past)
			ten := tenancy.New(bdb, past, al, nil)
			old := map[string]string{}
			for _, slug := range []string{"acme", "globex"} {
				tn, err := ten.CreateTenant(ctx, tenancy.CreateTenantInput{Slug: slug})
				if err != nil {
					t.Fatal(err)
				}
				old[slug] = tn.ID
				for i := range 10 {
					if err := al.Record(ctx, bdb, audit.Event{TenantID: tn.ID, Action: "user.updated", Target: audit.Target{Type: "user", ID: fmt.Sprint(i)}}); err != nil {
						t.Fatal(err)
					}
					past.Advance(time.Minute)
				}
			}
			count := func(slug string) int64 {
				t.Helper()
				n, err := bdb.NewSelect().Table("audit_events").Where("tenant_id = ? AND occurred_at < ?", old[slug], time.Now().AddDate(0, 0, -30)).Count(ctx)
				if err != nil {
					t.Fatal(err)
				}
				return n
			}

			_, _, stop := startServer(t, getenv)
			defer stop()
			mustCLI(t, getenv, "tenant", "update", "--tenant", "acme", "--audit-retention-days", "30") // acme's event #12
			deadline := time.Now().Add(20 * time.Second)
			for count("acme") > 0 {
				if time.Now().After(deadline) {
					t.Fatalf("%d events of acme older than 30 days are still there", count("acme"))
				}
				time.Sleep(20 * time.Millisecond)
			}
			if out := mustCLI(t, getenv, "audit", "verify", "--tenant", "acme"); out != "audit log of acme: 1 events verified, chain intact\n"+
				"(verified from the checkpoint after event #11: older events were pruned or predate the chain)\n" {
				t.Fatalf("audit verify after the job pruned:\n%s", out)
			}
			if n := count("globex"); n != 11 {
				t.Fatalf("globex keeps its log forever, but %d of its 11 events are left", n)
			}
		})
	}
}
