package main

import (
	"context"
	"flag"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/gatehouse-dev/gatehouse/modules/access"
	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/identity"
	"github.com/gatehouse-dev/gatehouse/modules/platform/cache"
	"github.com/gatehouse-dev/gatehouse/modules/platform/clock"
)

// cmdRole shows and assigns a tenant's company roles and maps IdP groups to them. The
// operator acts as access.OperatorViewer — the owner role and every permission — which
// is how a tenant gets its first owner; every change is audited as the operator's.
func cmdRole(ctx context.Context, e env) error {
	action, e, err := subcommand(e, "gatehouse role list | set | map | unmap --tenant SLUG [--user USER | --group GROUP] [--role ROLE]")
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("role "+action, flag.ContinueOnError)
	slug := tenantFlag(fs)
	var who, group, roleArg string
	switch action {
	case "list":
	case "set":
		fs.StringVar(&who, "user", "", "the user's userName (or email) or id (required)")
	case "map", "unmap":
		fs.StringVar(&group, "group", "", "the group's display name or id (required), e.g. \"Gatehouse Admins\"")
	default:
		return fmt.Errorf("unknown role action %q: use list, set, map or unmap", action)
	}
	if action != "list" {
		fs.StringVar(&roleArg, "role", "", "owner, admin, member, or a custom role's name or id (required)")
	}
	cfg, _, err := parse(e, "role", fs)
	if err != nil {
		return err
	}
	bdb, ten, t, err := openTenant(ctx, cfg, *slug)
	if err != nil {
		return err
	}
	defer bdb.Close()
	clk := clock.System{}
	al := audit.New(clk)
	// Role changes end no session, so the identity service needs no shared cache here.
	c := cache.NewMemory()
	defer c.Close()
	ids := identity.New(bdb, clk, al, c, newLogger(cfg, e.stderr))
	acc := access.New(bdb, clk, al, ids, access.WithTenancy(ten))
	operator := access.OperatorViewer(t.ID)

	if action == "list" {
		return listRoles(ctx, e, acc, ids, operator)
	}
	if roleArg == "" {
		return fmt.Errorf("--role is required (see `gatehouse role list --tenant %s`)", t.Slug)
	}
	role, err := findRole(ctx, acc, operator, roleArg)
	if err != nil {
		return fmt.Errorf("%w (see `gatehouse role list --tenant %s`)", err, t.Slug)
	}
	switch action {
	case "set":
		if who == "" {
			return fmt.Errorf("--user is required")
		}
		u, err := ids.FindForSignIn(ctx, t.ID, who, who)
		if err != nil {
			if u, err = ids.GetUser(ctx, t.ID, who); err != nil {
				return fmt.Errorf("no user %q in tenant %s", who, t.Slug)
			}
		}
		if err := acc.SetUserRole(ctx, operator, u.ID, role.ID); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s's role in %s is now %s\n", u.UserName, t.Slug, role.Name)
	default:
		if group == "" {
			return fmt.Errorf("--group is required")
		}
		g, err := acc.FindGroup(ctx, t.ID, group)
		if err != nil {
			return err
		}
		if action == "map" {
			if err := acc.MapGroupToRole(ctx, operator, g.ID, role.ID); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "members of %q now hold %s in %s\n", g.DisplayName, role.Name, t.Slug)
		} else {
			if err := acc.UnmapGroupRole(ctx, operator, g.ID, role.ID); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "membership of %q no longer gives %s in %s\n", g.DisplayName, role.Name, t.Slug)
		}
	}
	return nil
}

// findRole resolves a role by id or, ignoring case, by name.
func findRole(ctx context.Context, acc *access.Service, v access.Viewer, idOrName string) (access.Role, error) {
	roles, err := acc.ListRoles(ctx, v)
	if err != nil {
		return access.Role{}, err
	}
	for _, r := range roles {
		if r.ID == idOrName || strings.EqualFold(r.Name, strings.TrimSpace(idOrName)) {
			return r, nil
		}
	}
	return access.Role{}, fmt.Errorf("no role %q in this tenant", idOrName)
}

func listRoles(ctx context.Context, e env, acc *access.Service, ids *identity.Service, v access.Viewer) error {
	roles, err := acc.ListRoles(ctx, v)
	if err != nil {
		return err
	}
	direct, err := acc.DirectRoles(ctx, v)
	if err != nil {
		return err
	}
	maps, err := acc.RoleMappings(ctx, v)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROLE\tID\tPERMISSIONS")
	for _, r := range roles {
		perms := make([]string, len(r.Permissions))
		for i, p := range r.Permissions {
			perms[i] = string(p)
		}
		list := strings.Join(perms, ",")
		if list == "" {
			list = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Name, r.ID, list)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	userIDs := make([]string, 0, len(direct))
	for id := range direct {
		userIDs = append(userIDs, id)
	}
	users, err := ids.ExistingUserIDs(ctx, v.TenantID, userIDs)
	if err != nil {
		return err
	}
	sort.Slice(userIDs, func(i, j int) bool { return users[userIDs[i]].UserName < users[userIDs[j]].UserName })
	fmt.Fprintln(e.stdout)
	if len(userIDs) == 0 {
		fmt.Fprintf(e.stdout, "nobody has a role yet (everyone is a member): gatehouse role set --tenant SLUG --user USER --role owner\n")
	} else {
		tw = tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "USER\tROLE\tUSER ID")
		for _, id := range userIDs {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", users[id].UserName, direct[id].Name, id)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(maps) > 0 {
		fmt.Fprintln(e.stdout)
		tw = tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "GROUP\tROLE\tGROUP ID")
		for _, m := range maps {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", m.GroupName, m.Role.Name, m.GroupID)
		}
		return tw.Flush()
	}
	return nil
}
