package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/migrations"
	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/platform/bus"
	"github.com/gatehouse-dev/gatehouse/modules/platform/cache"
	"github.com/gatehouse-dev/gatehouse/modules/platform/clock"
	"github.com/gatehouse-dev/gatehouse/modules/platform/db"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

// openStore opens the database for an operator command, migrating it first when
// auto-migrate is on, so `gatehouse tenant create` works on a fresh machine.
func openStore(ctx context.Context, cfg config.Config) (*bun.DB, *tenancy.Service, error) {
	bdb, err := db.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, nil, err
	}
	if cfg.AutoMigrate {
		if _, err := migrations.Up(ctx, bdb); err != nil {
			bdb.Close()
			return nil, nil, fmt.Errorf("migrating the database: %w", err)
		}
	} else if err := requireMigrated(ctx, bdb); err != nil {
		bdb.Close()
		return nil, nil, err
	}
	clk := clock.System{}
	svc := tenancy.New(bdb, clk, audit.New(clk), net.DefaultResolver)
	svc.AllowPrivateMetadataURLs(cfg.SAMLMetadataAllowPrivate)
	return bdb, svc, nil
}

// requireMigrated refuses a database whose schema is behind this binary when
// auto-migrate is off, naming the fix, rather than letting the first query fail with
// "no such table". If the status cannot be read (a database user without the right to
// create bun's migration tables), it lets the process go on.
func requireMigrated(ctx context.Context, bdb *bun.DB) error {
	list, err := migrations.List(ctx, bdb)
	if err != nil {
		return nil
	}
	var pending []string
	for _, m := range list {
		if !m.Applied {
			pending = append(pending, m.Name)
		}
	}
	if len(pending) == 0 {
		return nil
	}
	return fmt.Errorf("the database schema is behind this gatehouse: %d migration(s) pending, from %s; run `gatehouse migrate up` (GATEHOUSE_AUTO_MIGRATE is false)",
		len(pending), pending[0])
}

// announceChanges lets a command's changes to tenants and their SCIM tokens reach the
// running servers at once, over Redis when it is configured (servers then forget what
// they remembered of the tenant); without it they see them within a second. The
// returned function stops announcing.
func announceChanges(ctx context.Context, cfg config.Config, ten *tenancy.Service, log *slog.Logger) func() {
	if cfg.RedisURL == "" {
		return func() {}
	}
	c, err := cache.NewRedis(ctx, cfg.RedisURL, cfg.RedisPrefix)
	if err != nil {
		log.Warn("cannot reach Redis to tell the servers of this change; they see it within a second", "err", err)
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	if err := ten.ShareChanges(ctx, bus.NewRedis(c.Client(), cfg.RedisPrefix), log); err != nil {
		log.Warn("cannot reach Redis to tell the servers of this change; they see it within a second", "err", err)
	}
	return func() { cancel(); c.Close() }
}

// optional is a flag that knows whether it was given, so an update changes only what
// the operator asked for.
type optional[T any] struct {
	set    bool
	v      T
	parse  func(string) (T, error)
	format func(T) string
	usage  string // what a valid value looks like, for the error
	isBool bool
}

func (o *optional[T]) String() string {
	if o == nil || !o.set {
		return ""
	}
	return o.format(o.v)
}

func (o *optional[T]) Set(s string) error {
	v, err := o.parse(s)
	if err != nil {
		return errors.New(o.usage)
	}
	o.v, o.set = v, true
	return nil
}

// IsBoolFlag lets "--jit" alone mean true.
func (o *optional[T]) IsBoolFlag() bool { return o.isBool }

// value returns nil when the flag was not given.
func (o *optional[T]) value() *T {
	if !o.set {
		return nil
	}
	v := o.v
	return &v
}

func optBool() *optional[bool] {
	return &optional[bool]{parse: strconv.ParseBool, format: strconv.FormatBool, usage: "must be true or false", isBool: true}
}

func optDuration() *optional[time.Duration] {
	return &optional[time.Duration]{parse: time.ParseDuration, format: time.Duration.String, usage: `must be a duration such as "30m", "8h" or "720h"`}
}

func optInt() *optional[int] {
	return &optional[int]{parse: strconv.Atoi, format: strconv.Itoa, usage: "must be a whole number"}
}

// retention prints a tenant's audit retention.
func retention(days int) string {
	if days == 0 {
		return "forever"
	}
	return fmt.Sprintf("%d days", days)
}

func scimRateLimit(tenant, deployment int) string {
	if tenant == 0 {
		return fmt.Sprintf("%d/s (the deployment's default)", deployment)
	}
	return fmt.Sprintf("%d/s", tenant)
}

// shortDuration prints 8h rather than 8h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// subcommand splits "tenant create …" into the action and the rest.
func subcommand(e env, usage string) (string, env, error) {
	if len(e.args) == 0 || strings.HasPrefix(e.args[0], "-") {
		return "", e, fmt.Errorf("usage: %s", usage)
	}
	rest := e
	rest.args = e.args[1:]
	return e.args[0], rest, nil
}

func tenantFlag(fs *flag.FlagSet) *string {
	return fs.String("tenant", "", "tenant slug (required)")
}

func requireTenant(ctx context.Context, svc *tenancy.Service, slug string) (tenancy.Tenant, error) {
	if slug == "" {
		return tenancy.Tenant{}, fmt.Errorf("--tenant is required (see `gatehouse tenant list`)")
	}
	return svc.TenantBySlug(ctx, slug)
}

func parseFeatures(s string) []tenancy.Feature {
	var fs []tenancy.Feature
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			fs = append(fs, tenancy.Feature(f))
		}
	}
	return fs
}

func printTenant(e env, t tenancy.Tenant, cfg config.Config) {
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "id\t%s\n", t.ID)
	fmt.Fprintf(tw, "slug\t%s\n", t.Slug)
	fmt.Fprintf(tw, "name\t%s\n", t.Name)
	fmt.Fprintf(tw, "provisioning mode\t%s\n", t.ProvisioningMode)
	fmt.Fprintf(tw, "features\t%s\n", featureList(t.Features))
	fmt.Fprintf(tw, "JIT provisioning\t%s\n", onOff(t.JITProvisioning))
	fmt.Fprintf(tw, "IdP-initiated SSO\t%s\n", onOff(t.IdPInitiatedSSO))
	fmt.Fprintf(tw, "session idle\t%s\n", shortDuration(t.SessionIdleTimeout))
	fmt.Fprintf(tw, "session lifetime\t%s\n", shortDuration(t.SessionMaxLifetime))
	fmt.Fprintf(tw, "audit retention\t%s\n", retention(t.AuditRetentionDays))
	fmt.Fprintf(tw, "SCIM rate limit\t%s\n", scimRateLimit(t.SCIMRateLimit, cfg.SCIMRateLimit))
	fmt.Fprintf(tw, "SCIM base URL\t%s\n", cfg.URL("/scim/v2"))
	fmt.Fprintf(tw, "created\t%s\n", t.CreatedAt.Format(time.RFC3339))
	tw.Flush()
}

func featureList(fs []tenancy.Feature) string {
	if len(fs) == 0 {
		return "(none)"
	}
	s := make([]string, len(fs))
	for i, f := range fs {
		s[i] = string(f)
	}
	return strings.Join(s, ",")
}

func cmdTenant(ctx context.Context, e env) error {
	action, e, err := subcommand(e, "gatehouse tenant create | list | show | update")
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("tenant "+action, flag.ContinueOnError)
	var slug, name, mode, features *string
	jit, idpInitiated := optBool(), optBool()
	idle, lifetime := optDuration(), optDuration()
	auditDays, scimRate := optInt(), optInt()
	switch action {
	case "create", "update":
		slug = fs.String("slug", "", "tenant slug: lower-case letters, digits, hyphens (e.g. acme)")
		name = fs.String("name", "", "display name (e.g. \"Acme Inc\")")
		mode = fs.String("provisioning-mode", "", "scim (the IdP manages people), manual (the app does) or mixed (the IdP manages those it provisions; the app may add others)")
		features = fs.String("features", "", "comma-separated plan features, e.g. user_groups ('none' to clear, on update)")
		if action == "update" {
			fs.StringVar(slug, "tenant", "", "tenant slug (same as --slug)")
			fs.Var(jit, "jit", "true: create unknown users at SAML sign-in when their email domain is verified for the tenant")
			fs.Var(idpInitiated, "idp-initiated-sso", "true: accept sign-ins started at the IdP (unsolicited SAML responses)")
			fs.Var(idle, "session-idle", "end sessions unused for this long, 5m to 720h (default 8h)")
			fs.Var(lifetime, "session-max", "end sessions this long after sign-in, 5m to 2160h (default 24h)")
			fs.Var(auditDays, "audit-retention-days", "delete audit events older than this many days, 7 to 3650; 0 keeps them forever (the default)")
			fs.Var(scimRate, "scim-rate-limit", "SCIM requests per second for this tenant (bursts of twice it), 1 to 10000; 0 takes GATEHOUSE_SCIM_RATE_LIMIT")
		}
	case "show":
		slug = fs.String("slug", "", "tenant slug")
	case "list":
	default:
		return fmt.Errorf("unknown tenant action %q: use create, list, show or update", action)
	}
	cfg, args, err := parse(e, "tenant", fs)
	if err != nil {
		return err
	}
	if slug != nil && *slug == "" && len(args) == 1 {
		*slug = args[0]
	}
	bdb, svc, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer bdb.Close()

	switch action {
	case "create":
		t, err := svc.CreateTenant(ctx, tenancy.CreateTenantInput{Slug: *slug, Name: *name,
			ProvisioningMode: tenancy.ProvisioningMode(*mode), Features: parseFeatures(*features)})
		if err != nil {
			return err
		}
		printTenant(e, t, cfg)
		fmt.Fprintf(e.stdout, "\nNext: gatehouse scim-token issue --tenant %s --name \"Okta\"\n", t.Slug)
	case "update":
		t, err := requireTenant(ctx, svc, *slug)
		if err != nil {
			return err
		}
		var p tenancy.SettingsPatch
		if *name != "" {
			p.Name = name
		}
		if *mode != "" {
			m := tenancy.ProvisioningMode(*mode)
			p.ProvisioningMode = &m
		}
		if *features == "none" {
			p.Features = &[]tenancy.Feature{}
		} else if *features != "" {
			f := parseFeatures(*features)
			p.Features = &f
		}
		p.JITProvisioning, p.IdPInitiatedSSO = jit.value(), idpInitiated.value()
		p.SessionIdleTimeout, p.SessionMaxLifetime = idle.value(), lifetime.value()
		p.AuditRetentionDays = auditDays.value()
		p.SCIMRateLimit = scimRate.value()
		defer announceChanges(ctx, cfg, svc, newLogger(cfg, e.stderr))()
		if t, err = svc.UpdateSettings(ctx, t.ID, p); err != nil {
			return err
		}
		printTenant(e, t, cfg)
	case "show":
		t, err := requireTenant(ctx, svc, *slug)
		if err != nil {
			return err
		}
		printTenant(e, t, cfg)
	case "list":
		ts, err := svc.ListTenants(ctx)
		if err != nil {
			return err
		}
		if len(ts) == 0 {
			fmt.Fprintln(e.stdout, "no tenants yet: gatehouse tenant create --slug acme --name \"Acme Inc\"")
			return nil
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SLUG\tNAME\tPROVISIONING\tFEATURES\tID")
		for _, t := range ts {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.Slug, t.Name, t.ProvisioningMode, featureList(t.Features), t.ID)
		}
		tw.Flush()
	}
	return nil
}

func cmdDomain(ctx context.Context, e env) error {
	action, e, err := subcommand(e, "gatehouse domain add | verify | list --tenant SLUG [DOMAIN]")
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("domain "+action, flag.ContinueOnError)
	slug := tenantFlag(fs)
	manual := false
	if action == "verify" {
		fs.BoolVar(&manual, "manual", false, "mark verified without the DNS check (you verified ownership another way); audited")
	}
	cfg, args, err := parse(e, "domain", fs)
	if err != nil {
		return err
	}
	bdb, svc, t, err := openTenant(ctx, cfg, *slug)
	if err != nil {
		return err
	}
	defer bdb.Close()
	needDomain := func() (string, error) {
		if len(args) != 1 {
			return "", fmt.Errorf("usage: gatehouse domain %s --tenant %s DOMAIN", action, t.Slug)
		}
		return args[0], nil
	}
	switch action {
	case "add":
		name, err := needDomain()
		if err != nil {
			return err
		}
		d, err := svc.AddDomain(ctx, t.ID, name)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "added %s to %s (not verified yet)\n\n", d.Domain, t.Slug)
		fmt.Fprintf(e.stdout, "To verify, publish this DNS TXT record, then run `gatehouse domain verify --tenant %s %s`:\n", t.Slug, d.Domain)
		fmt.Fprintf(e.stdout, "  name:  %s\n  value: %s\n", d.ChallengeName(), d.ChallengeValue())
	case "verify":
		name, err := needDomain()
		if err != nil {
			return err
		}
		method := tenancy.VerifyDNS
		if manual {
			method = tenancy.VerifyManual
		}
		d, err := svc.VerifyDomain(ctx, t.ID, name, method)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s is verified for %s\n", d.Domain, t.Slug)
	case "list":
		ds, err := svc.ListDomains(ctx, t.ID)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "DOMAIN\tVERIFIED\tTXT NAME\tTXT VALUE")
		for _, d := range ds {
			v := "no"
			if d.Verified() {
				v = d.VerifiedAt.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", d.Domain, v, d.ChallengeName(), d.ChallengeValue())
		}
		tw.Flush()
	default:
		return fmt.Errorf("unknown domain action %q: use add, verify or list", action)
	}
	return nil
}

func cmdSCIMToken(ctx context.Context, e env) error {
	action, e, err := subcommand(e, "gatehouse scim-token issue | list | revoke --tenant SLUG")
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("scim-token "+action, flag.ContinueOnError)
	slug := tenantFlag(fs)
	var name *string
	var expiresIn *time.Duration
	if action == "issue" {
		name = fs.String("name", "", "what the token is for, e.g. \"Okta production\" (required)")
		expiresIn = fs.Duration("expires-in", 0, "lifetime, e.g. 8760h; 0 = never expires")
	}
	cfg, args, err := parse(e, "scim-token", fs)
	if err != nil {
		return err
	}
	bdb, svc, t, err := openTenant(ctx, cfg, *slug)
	if err != nil {
		return err
	}
	defer bdb.Close()
	switch action {
	case "issue":
		it, err := svc.IssueSCIMToken(ctx, t.ID, *name, *expiresIn)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "SCIM token %q issued for %s (id %s).\n", it.Token.Name, t.Slug, it.Token.ID)
		fmt.Fprintln(e.stdout, "It is shown only this once; Gatehouse keeps only its hash.")
		fmt.Fprintln(e.stdout)
		fmt.Fprintf(e.stdout, "  SCIM base URL: %s\n", cfg.URL("/scim/v2"))
		fmt.Fprintf(e.stdout, "  Bearer token:  %s\n", it.Secret)
		if it.Token.ExpiresAt != nil {
			fmt.Fprintf(e.stdout, "  Expires:       %s\n", it.Token.ExpiresAt.Format(time.RFC3339))
		}
	case "list":
		ts, err := svc.ListSCIMTokens(ctx, t.ID)
		if err != nil {
			return err
		}
		now := time.Now()
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tENDS WITH\tSTATE\tCREATED\tLAST USED\tEXPIRES")
		for _, tok := range ts {
			fmt.Fprintf(tw, "%s\t%s\t…%s\t%s\t%s\t%s\t%s\n", tok.ID, tok.Name, tok.Hint, tok.State(now),
				tok.CreatedAt.Format(time.RFC3339), timeOrDash(tok.LastUsedAt), timeOrDash(tok.ExpiresAt))
		}
		tw.Flush()
	case "revoke":
		if len(args) != 1 {
			return fmt.Errorf("usage: gatehouse scim-token revoke --tenant %s TOKEN_ID (see `gatehouse scim-token list`)", t.Slug)
		}
		defer announceChanges(ctx, cfg, svc, newLogger(cfg, e.stderr))()
		if err := svc.RevokeSCIMToken(ctx, t.ID, args[0]); err != nil {
			return err
		}
		if cfg.RedisURL == "" {
			fmt.Fprintf(e.stdout, "revoked %s; a running server refuses it within a second\n", args[0])
		} else {
			fmt.Fprintf(e.stdout, "revoked %s; requests with it are refused from now on\n", args[0])
		}
	default:
		return fmt.Errorf("unknown scim-token action %q: use issue, list or revoke", action)
	}
	return nil
}

func timeOrDash(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Format(time.RFC3339)
}
