package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/modules/access"
	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/identity"
	"github.com/gatehouse-dev/gatehouse/modules/platform/cache"
	"github.com/gatehouse-dev/gatehouse/modules/platform/clock"
	"github.com/gatehouse-dev/gatehouse/modules/platform/db"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

// The operator bootstraps a tenant's first owner and maps IdP groups to roles.
func TestRoleCommands(t *testing.T) {
	for _, dbCase := range dbURLs {
		t.Run(dbCase.name, func(t *testing.T) {
			url := dbCase.url(t)
			getenv := envOf("GATEHOUSE_DATABASE_URL", url)
			mustCLI(t, getenv, "tenant", "create", "--slug", "acme", "--features", "user_groups")

			// People and a group, as SCIM would provision them.
			ctx := context.Background()
			bdb, err := db.Open(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			defer bdb.Close()
			clk := clock.System{}
			al := audit.New(clk)
			ten := tenancy.New(bdb, clk, al, nil)
			acme, err := ten.TenantBySlug(ctx, "acme")
			if err != nil {
				t.Fatal(err)
			}
			c := cache.NewMemory()
			defer c.Close()
			ids := identity.New(bdb, clk, al, c, slog.New(slog.NewTextHandler(io.Discard, nil)))
			acc := access.New(bdb, clk, al, ids, access.WithTenancy(ten))
			ada, err := ids.CreateUser(ctx, acme.ID, identity.User{UserName: "ada@acme.com", Active: true})
			if err != nil {
				t.Fatal(err)
			}
			bob, err := ids.CreateUser(ctx, acme.ID, identity.User{UserName: "bob@acme.com", Active: true})
			if err != nil {
				t.Fatal(err)
			}
			admins, err := acc.CreateGroup(ctx, acme.ID, access.Group{DisplayName: "Gatehouse Admins"}, []string{bob.ID})
			if err != nil {
				t.Fatal(err)
			}
			wantErr := func(contains string, args ...string) {
				t.Helper()
				_, err := cli(t, getenv, args...)
				if err == nil || !strings.Contains(err.Error(), contains) {
					t.Fatalf("gatehouse %s: want error containing %q, got %v", strings.Join(args, " "), contains, err)
				}
			}

			out := squash(mustCLI(t, getenv, "role", "list", "--tenant", "acme"))
			for _, want := range []string{"Owner owner manage_company_settings,manage_users,manage_user_groups,manage_spaces,view_audit_log", "Member member -", "nobody has a role yet"} {
				if !strings.Contains(out, want) {
					t.Fatalf("role list lacks %q:\n%s", want, out)
				}
			}

			out = mustCLI(t, getenv, "role", "set", "--tenant", "acme", "--user", "ada@acme.com", "--role", "owner")
			if !strings.Contains(out, "ada@acme.com's role in acme is now Owner") {
				t.Fatalf("role set:\n%s", out)
			}
			latest, _ := al.Latest(ctx, bdb, acme.ID)
			e, _, err := al.Page(ctx, bdb, acme.ID, audit.Filter{}, latest-1, 1)
			if err != nil || len(e) != 1 || e[0].Action != "role.assigned" || e[0].ActorType != audit.ActorCLI || e[0].TargetID != ada.ID {
				t.Fatalf("audit of role set: %+v %v", e, err)
			}
			// By id, and by a role's name in any case.
			mustCLI(t, getenv, "role", "set", "--tenant", "acme", "--user", bob.ID, "--role", "ADMIN")
			mustCLI(t, getenv, "role", "set", "--tenant", "acme", "--user", bob.ID, "--role", "member")

			out = mustCLI(t, getenv, "role", "map", "--tenant", "acme", "--group", "gatehouse admins", "--role", "admin")
			if !strings.Contains(out, `members of "Gatehouse Admins" now hold Admin in acme`) {
				t.Fatalf("role map:\n%s", out)
			}
			v, err := acc.Viewer(ctx, identity.Principal{TenantID: acme.ID, UserID: bob.ID})
			if err != nil || !v.Can(access.PermManageUsers) {
				t.Fatalf("a member of the mapped group: %+v %v", v, err)
			}
			out = squash(mustCLI(t, getenv, "role", "list", "--tenant", "acme"))
			for _, want := range []string{"ada@acme.com Owner " + ada.ID, "Gatehouse Admins Admin " + admins.ID} {
				if !strings.Contains(out, want) {
					t.Fatalf("role list lacks %q:\n%s", want, out)
				}
			}
			mustCLI(t, getenv, "role", "unmap", "--tenant", "acme", "--group", admins.ID, "--role", "admin")
			if v, _ := acc.Viewer(ctx, identity.Principal{TenantID: acme.ID, UserID: bob.ID}); v.Can(access.PermManageUsers) {
				t.Fatal("still an admin after unmap")
			}

			wantErr("would leave this company without an owner", "role", "set", "--tenant", "acme", "--user", "ada@acme.com", "--role", "member")
			wantErr(`no role "boss"`, "role", "set", "--tenant", "acme", "--user", "ada@acme.com", "--role", "boss")
			wantErr(`no user "zed@acme.com"`, "role", "set", "--tenant", "acme", "--user", "zed@acme.com", "--role", "admin")
			wantErr(`no group with id or name "Nobody"`, "role", "map", "--tenant", "acme", "--group", "Nobody", "--role", "admin")
			wantErr("--role is required", "role", "map", "--tenant", "acme", "--group", "Gatehouse Admins")
			wantErr("--user is required", "role", "set", "--tenant", "acme", "--role", "admin")
			wantErr("--tenant is required", "role", "list")
			wantErr(`unknown role action "grant"`, "role", "grant")
			wantErr("everyone is a member already", "role", "map", "--tenant", "acme", "--group", "Gatehouse Admins", "--role", "member")
		})
	}
}

// squash collapses the padding of tabwriter columns to one space, line by line.
func squash(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.Join(strings.Fields(l), " ")
	}
	return strings.Join(lines, "\n")
}
