package main

import (
	"context"
	"flag"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/identity"
	"github.com/gatehouse-dev/gatehouse/modules/keys"
	"github.com/gatehouse-dev/gatehouse/modules/platform/clock"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

// cmdSession lists and revokes a user's sessions. Revocation deletes the rows and
// buries the sessions in the shared cache (Redis). With the embedded in-process cache
// the command cannot reach a running server's cache, so it waits (about 2 s) until the
// server has read the ended sessions from the database: when it returns, they are
// refused everywhere.
func cmdSession(ctx context.Context, e env) error {
	action, e, err := subcommand(e, "gatehouse session list | revoke --tenant SLUG --user USERNAME_OR_ID")
	if err != nil {
		return err
	}
	if action != "list" && action != "revoke" {
		return fmt.Errorf("unknown session action %q: use list or revoke", action)
	}
	fs := flag.NewFlagSet("session "+action, flag.ContinueOnError)
	slug := tenantFlag(fs)
	who := fs.String("user", "", "the user's userName (or email) or id (required)")
	cfg, _, err := parse(e, "session", fs)
	if err != nil {
		return err
	}
	bdb, _, t, err := openTenant(ctx, cfg, *slug)
	if err != nil {
		return err
	}
	defer bdb.Close()
	if *who == "" {
		return fmt.Errorf("--user is required")
	}
	log := newLogger(cfg, e.stderr)
	c, err := openCache(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer c.Close()
	clk := clock.System{}
	ids := identity.New(bdb, clk, audit.New(clk), c, log)
	u, err := ids.FindForSignIn(ctx, t.ID, *who, *who)
	if err != nil {
		if u, err = ids.GetUser(ctx, t.ID, *who); err != nil {
			return fmt.Errorf("no user %q in tenant %s", *who, t.Slug)
		}
	}
	ks, err := keys.New(bdb, clk, cfg.SecretKey)
	if err != nil {
		return err
	}
	sessions := ids.Sessions(ks, identity.SessionsConfig{Issuer: cfg.PublicURL.String()})
	switch action {
	case "list":
		ss, err := sessions.ListForUser(ctx, t.ID, u.ID)
		if err != nil {
			return err
		}
		if len(ss) == 0 {
			fmt.Fprintf(e.stdout, "%s has no live sessions\n", u.UserName)
			return nil
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tMETHOD\tCREATED\tLAST SEEN\tEXPIRES\tIP\tUSER AGENT")
		for _, s := range ss {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%.40s\n", s.ID, s.Method, s.CreatedAt.Format(time.RFC3339),
				s.LastSeenAt.Format(time.RFC3339), s.ExpiresAt.Format(time.RFC3339), s.IP, s.UserAgent)
		}
		return tw.Flush()
	default:
		n, err := sessions.RevokeUser(ctx, t.ID, u.ID)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "revoked %d session(s) of %s\n", n, u.UserName)
		return nil
	}
}

// cmdKeys shows and rotates the deployment's signing keys.
func cmdKeys(ctx context.Context, e env) error {
	action, e, err := subcommand(e, "gatehouse keys list | add | activate KID | retire KID --purpose session|saml")
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("keys "+action, flag.ContinueOnError)
	purpose := fs.String("purpose", "", "session (JWT signing) or saml (SAML SP signing); list shows both when empty")
	cfg, args, err := parse(e, "keys", fs)
	if err != nil {
		return err
	}
	bdb, _, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer bdb.Close()
	ks, err := keys.New(bdb, clock.System{}, cfg.SecretKey)
	if err != nil {
		return err
	}
	switch action {
	case "list":
		ps := keys.Purposes
		if *purpose != "" {
			ps = []keys.Purpose{keys.Purpose(*purpose)}
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "KID\tPURPOSE\tALG\tSTATUS\tCREATED\tCERT SHA-256")
		for _, p := range ps {
			list, err := ks.List(ctx, p)
			if err != nil {
				return err
			}
			for _, k := range list {
				thumb := "-"
				if k.Certificate != nil {
					thumb = tenancy.CertificateFingerprint(k.Certificate)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Purpose, k.Algorithm, k.Status, k.CreatedAt.Format(time.RFC3339), thumb)
			}
		}
		return tw.Flush()
	case "add":
		k, err := ks.Add(ctx, keys.Purpose(*purpose))
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "added %s key %s as next: published now, signing after `gatehouse keys activate %s`\n", k.Purpose, k.ID, k.ID)
		if k.Purpose == keys.PurposeSAML {
			fmt.Fprintln(e.stdout, "IdPs that verify signed AuthnRequests must re-read the SP metadata before you activate it.")
		}
		return nil
	case "activate", "retire":
		if len(args) != 1 {
			return fmt.Errorf("usage: gatehouse keys %s KID (see `gatehouse keys list`)", action)
		}
		var k keys.Key
		if action == "activate" {
			k, err = ks.Activate(ctx, args[0])
		} else {
			k, err = ks.Retire(ctx, args[0])
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s key %s is now %s\n", k.Purpose, k.ID, k.Status)
		return nil
	}
	return fmt.Errorf("unknown keys action %q: use list, add, activate or retire", action)
}
