package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/identity"
	"github.com/gatehouse-dev/gatehouse/modules/platform/cache"
	"github.com/gatehouse-dev/gatehouse/modules/platform/clock"
)

// cmdSCIMExtension declares a tenant's own SCIM User extension schemas. Every change is
// audited (scim_extension.changed) as the operator's.
func cmdSCIMExtension(ctx context.Context, e env) error {
	action, e, err := subcommand(e, "gatehouse scim-extension set --tenant SLUG --file SCHEMA.json | list --tenant SLUG | remove --tenant SLUG --urn URN")
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("scim-extension "+action, flag.ContinueOnError)
	slug := tenantFlag(fs)
	var file, urn string
	switch action {
	case "set":
		fs.StringVar(&file, "file", "", "an RFC 7643 §7 schema resource declaring the extension, \"-\" for stdin (required)")
	case "list":
	case "remove":
		fs.StringVar(&urn, "urn", "", "the extension's URN (required)")
	default:
		return fmt.Errorf("unknown scim-extension action %q: use set, list or remove", action)
	}
	cfg, _, err := parse(e, "scim-extension", fs)
	if err != nil {
		return err
	}
	var def []byte
	switch {
	case action == "set" && file == "":
		return fmt.Errorf("--file is required")
	case action == "set" && file == "-":
		def, err = io.ReadAll(os.Stdin)
	case action == "set":
		def, err = os.ReadFile(file)
	case action == "remove" && urn == "":
		return fmt.Errorf("--urn is required (see `gatehouse scim-extension list --tenant %s`)", *slug)
	}
	if err != nil {
		return err
	}
	bdb, _, t, err := openTenant(ctx, cfg, *slug)
	if err != nil {
		return err
	}
	defer bdb.Close()
	// Declarations end no session, so the identity service needs no shared cache here.
	c := cache.NewMemory()
	defer c.Close()
	ids := identity.New(bdb, clock.System{}, audit.New(clock.System{}), c, newLogger(cfg, e.stderr))
	switch action {
	case "set":
		x, err := ids.SetUserExtension(ctx, t.ID, def)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "Extension %s declared for %s with %d attribute(s); SCIM clients see it in /Schemas.\n", x.URN, t.Slug, len(x.Attributes))
	case "remove":
		if err := ids.RemoveUserExtension(ctx, t.ID, urn); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "Extension %s removed from %s with every value of it.\n", urn, t.Slug)
	case "list":
		exts, err := ids.UserExtensions(ctx, t.ID)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "URN\tATTRIBUTE\tTYPE\tCHARACTERISTICS\tUPDATED")
		for _, x := range exts {
			for _, a := range x.Attributes {
				var ch []string
				for _, f := range []struct {
					on   bool
					name string
				}{{a.MultiValued, "multiValued"}, {a.Required, "required"}, {a.CaseExact, "caseExact"},
					{a.Uniqueness == "server", "unique"}, {a.Indexed, "indexed"}} {
					if f.on {
						ch = append(ch, f.name)
					}
				}
				ch = append(ch, a.Mutability, "returned "+a.Returned)
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", x.URN, a.Name, a.Type, strings.Join(ch, ", "), x.UpdatedAt.UTC().Format(time.RFC3339))
			}
		}
		return tw.Flush()
	}
	return nil
}
