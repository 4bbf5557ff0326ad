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

	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

func cmdSAML(ctx context.Context, e env) error {
	action, e, err := subcommand(e, "gatehouse saml configure | show --tenant SLUG")
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("saml "+action, flag.ContinueOnError)
	slug := tenantFlag(fs)
	var file, mdURL string
	sign := optBool()
	attrFlags := map[string]*string{}
	switch action {
	case "configure":
		fs.StringVar(&file, "metadata-file", "", "the IdP's SAML metadata XML file (Entra ID: \"Federation Metadata XML\"; Okta: \"Identity Provider metadata\")")
		fs.StringVar(&mdURL, "metadata-url", "", "https URL the server fetches the IdP's metadata from (Entra ID: \"App Federation Metadata Url\"; Okta: \"Metadata URL\")")
		for _, a := range []struct{ flag, help string }{
			{"email-attr", "assertion attribute with the user's email (default: email, mail or the emailaddress claim)"},
			{"given-name-attr", "attribute with the given name (default: firstName, givenName or the givenname claim)"},
			{"family-name-attr", "attribute with the family name (default: lastName, sn or the surname claim)"},
			{"groups-attr", "attribute with the user's groups (default: groups or the Microsoft groups claim)"},
		} {
			attrFlags[a.flag] = fs.String(a.flag, "", a.help+`; "" = the defaults`)
		}
		fs.Var(sign, "sign-requests", "true: sign AuthnRequests (forced on when the IdP's metadata asks for it)")
	case "show":
	default:
		return fmt.Errorf("unknown saml action %q: use configure or show", action)
	}
	cfg, args, err := parse(e, "saml", fs)
	if err != nil {
		return err
	}
	if len(args) > 0 {
		return fmt.Errorf("saml %s takes no arguments, got %q", action, args)
	}
	bdb, svc, t, err := openTenant(ctx, cfg, *slug)
	if err != nil {
		return err
	}
	defer bdb.Close()

	switch action {
	case "configure":
		in := tenancy.SAMLConfigInput{MetadataURL: mdURL, SignRequests: sign.value()}
		if file != "" {
			if in.MetadataXML, err = readMetadataFile(file); err != nil {
				return err
			}
		}
		given := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
		if given["email-attr"] || given["given-name-attr"] || given["family-name-attr"] || given["groups-attr"] {
			// Flags not given keep what is configured.
			attrs := tenancy.SAMLAttributeMap{}
			if cur, err := svc.SAMLConnection(ctx, t.ID); err == nil {
				attrs = cur.Attributes
			} else if !apperr.Is(err, apperr.KindNotFound) {
				return err
			}
			for name, dst := range map[string]*string{"email-attr": &attrs.Email, "given-name-attr": &attrs.GivenName,
				"family-name-attr": &attrs.FamilyName, "groups-attr": &attrs.Groups} {
				if given[name] {
					*dst = *attrFlags[name]
				}
			}
			in.Attributes = &attrs
		}
		if len(in.MetadataXML) == 0 && in.MetadataURL == "" && in.Attributes == nil && in.SignRequests == nil {
			return fmt.Errorf("usage: gatehouse saml configure --tenant %s (--metadata-file idp.xml | --metadata-url https://…) [--email-attr NAME] [--given-name-attr NAME] [--family-name-attr NAME] [--groups-attr NAME] [--sign-requests=true|false]", t.Slug)
		}
		conn, err := svc.ConfigureSAML(ctx, t.ID, in)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "SAML connection of %s saved.\n\n", t.Slug)
		printSAML(e.stdout, cfg, t, &conn)
	case "show":
		conn, err := svc.SAMLConnection(ctx, t.ID)
		switch {
		case err == nil:
			printSAML(e.stdout, cfg, t, &conn)
		case apperr.Is(err, apperr.KindNotFound):
			// The SP values are what the admin needs to create the IdP application, so
			// they are shown before there is a connection.
			printSAML(e.stdout, cfg, t, nil)
		default:
			return err
		}
	}
	return nil
}

func readMetadataFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the metadata file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, tenancy.MaxMetadataBytes+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read the metadata file: %w", err)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("the metadata file %s is empty", path)
	}
	return b, nil // the size limit is enforced, with its message, by the parser
}

func bindingName(b string) string {
	return strings.TrimPrefix(b, "urn:oasis:names:tc:SAML:2.0:bindings:")
}

// printSAML prints what an admin needs on both sides: the service provider values to
// enter at the IdP, the IdP connection (conn, nil when there is none yet) and the
// tenant's SSO settings.
func printSAML(w io.Writer, cfg config.Config, t tenancy.Tenant, conn *tenancy.SAMLConnection) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	p := tenancy.SAMLPaths(t.Slug)
	fmt.Fprintln(tw, "Service provider (enter these at the IdP):")
	fmt.Fprintf(tw, "  Entity ID (Identifier, Audience URI)\t%s\n", cfg.URL(p.EntityID))
	fmt.Fprintf(tw, "  ACS URL (Reply URL, Single sign-on URL)\t%s\n", cfg.URL(p.ACS))
	fmt.Fprintf(tw, "  SP metadata\t%s\n", cfg.URL(p.Metadata))
	fmt.Fprintf(tw, "  Sign-in URL\t%s\n", cfg.URL(p.Login))
	fmt.Fprintf(tw, "  Logout URL (Single Logout)\t%s\n", cfg.URL(p.SLO))
	tw.Flush()
	fmt.Fprintln(w)

	now := time.Now()
	if conn == nil {
		fmt.Fprintln(w, "Identity provider: not configured yet. Create the SAML application at the IdP with the values above, then:")
		fmt.Fprintf(w, "  gatehouse saml configure --tenant %s --metadata-url https://… (or --metadata-file idp.xml)\n\n", t.Slug)
	} else {
		fmt.Fprintln(tw, "Identity provider:")
		fmt.Fprintf(tw, "  entity ID\t%s\n", conn.IdPEntityID)
		fmt.Fprintf(tw, "  SSO URL\t%s (%s)\n", conn.SSOURL, bindingName(conn.SSOBinding))
		if conn.SLOURL != "" {
			fmt.Fprintf(tw, "  SLO URL\t%s (%s)\n", conn.SLOURL, bindingName(conn.SLOBinding))
		} else {
			fmt.Fprintf(tw, "  SLO URL\t(none)\n")
		}
		fmt.Fprintf(tw, "  NameID format\t%s\n", conn.NameIDFormat)
		signing := "no"
		if conn.SignRequests {
			signing = "yes"
			if conn.IdPWantsSignedRequests {
				signing = "yes (the IdP requires it)"
			}
		}
		fmt.Fprintf(tw, "  sign requests\t%s\n", signing)
		if conn.MetadataURL != "" {
			fmt.Fprintf(tw, "  metadata\tfetched from %s\n", conn.MetadataURL)
		} else {
			fmt.Fprintf(tw, "  metadata\tuploaded\n")
		}
		certs, err := conn.X509Certificates()
		if err != nil {
			fmt.Fprintf(tw, "  certificates\tunreadable: %v\n", err)
		}
		for i, c := range certs {
			state := ""
			switch {
			case now.After(c.NotAfter):
				state = "  EXPIRED"
			case now.Before(c.NotBefore):
				state = "  NOT YET VALID"
			}
			fmt.Fprintf(tw, "  certificate %d\t%s\n", i+1, c.Subject)
			fmt.Fprintf(tw, "  \tSHA-256 %s\n", tenancy.CertificateFingerprint(c))
			fmt.Fprintf(tw, "  \tvalid until %s%s\n", c.NotAfter.UTC().Format(time.RFC3339), state)
		}
		email, given, family, groups := conn.Attributes.Candidates()
		for _, a := range []struct {
			what       string
			configured string
			names      []string
		}{{"email", conn.Attributes.Email, email}, {"given name", conn.Attributes.GivenName, given},
			{"family name", conn.Attributes.FamilyName, family}, {"groups", conn.Attributes.Groups, groups}} {
			src := "default"
			if a.configured != "" {
				src = "configured"
			}
			fmt.Fprintf(tw, "  %s attribute\t%s (%s; the first present is used)\n", a.what, strings.Join(a.names, ", "), src)
		}
		tw.Flush()
		if warnings := conn.Warnings(now); len(warnings) > 0 {
			fmt.Fprintln(w, "Warnings:")
			for _, wr := range warnings {
				fmt.Fprintf(w, "  - %s\n", wr)
			}
		}
		fmt.Fprintln(w)
	}

	fmt.Fprintln(tw, "SSO settings (change with `gatehouse tenant update`):")
	fmt.Fprintf(tw, "  JIT provisioning\t%s\n", onOff(t.JITProvisioning))
	fmt.Fprintf(tw, "  IdP-initiated SSO\t%s\n", onOff(t.IdPInitiatedSSO))
	fmt.Fprintf(tw, "  session idle timeout\t%s\n", shortDuration(t.SessionIdleTimeout))
	fmt.Fprintf(tw, "  session max lifetime\t%s\n", shortDuration(t.SessionMaxLifetime))
	tw.Flush()
}
