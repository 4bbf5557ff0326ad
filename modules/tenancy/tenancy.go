// Package tenancy owns tenants (the customer organisations), their email domains, plan
// features, provisioning and SSO settings, SCIM bearer tokens and SAML IdP connections.
// A request's tenant always comes from a credential resolved here, never from what the
// request says.
package tenancy

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
	"github.com/gatehouse-dev/gatehouse/modules/platform/bus"
	"github.com/gatehouse-dev/gatehouse/modules/platform/clock"
	"github.com/gatehouse-dev/gatehouse/modules/platform/db"
	"github.com/gatehouse-dev/gatehouse/modules/platform/ids"
)

// ProvisioningMode says who may create and change a tenant's users and groups.
type ProvisioningMode string

const (
	// ProvisioningSCIM: the IdP owns people and groups, through SCIM.
	ProvisioningSCIM ProvisioningMode = "scim"
	// ProvisioningManual: people and groups are managed in the app.
	ProvisioningManual ProvisioningMode = "manual"
	// ProvisioningMixed: the IdP owns the people and groups it provisioned; the app may
	// add and manage people of its own (contractors, say) beside them.
	ProvisioningMixed ProvisioningMode = "mixed"
)

// Feature is a plan feature a tenant may have.
type Feature string

// FeatureUserGroups enables groups (SCIM /Groups, group-based space access).
const FeatureUserGroups Feature = "user_groups"

// KnownFeatures lists every feature a tenant can be given.
var KnownFeatures = []Feature{FeatureUserGroups}

// Tenant is a customer organisation.
type Tenant struct {
	ID               string
	Slug             string
	Name             string
	ProvisioningMode ProvisioningMode
	Features         []Feature
	// JITProvisioning creates unknown users at SSO when their email domain is verified
	// for this tenant.
	JITProvisioning bool
	// IdPInitiatedSSO accepts unsolicited SAML responses (off by default).
	IdPInitiatedSSO bool
	// SessionIdleTimeout ends a session nobody has used for this long.
	SessionIdleTimeout time.Duration
	// SessionMaxLifetime ends a session this long after sign-in, used or not.
	SessionMaxLifetime time.Duration
	// AuditRetentionDays is how long the tenant's audit events are kept; 0 keeps them
	// forever. The server prunes older ones (audit.Log.PruneExpired).
	AuditRetentionDays int
	// SCIMRateLimit is the tenant's SCIM budget in requests per second (bursts of twice
	// it); 0 takes the deployment's default.
	SCIMRateLimit int
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// Session lifetime defaults and bounds (a tenant's settings stay within them).
const (
	DefaultSessionIdleTimeout = 8 * time.Hour
	DefaultSessionMaxLifetime = 24 * time.Hour
	MinSessionTimeout         = 5 * time.Minute
	MaxSessionIdleTimeout     = 30 * 24 * time.Hour
	MaxSessionMaxLifetime     = 90 * 24 * time.Hour
)

// Audit retention bounds: 0 (keep forever) or MinAuditRetentionDays to
// MaxAuditRetentionDays.
const (
	MinAuditRetentionDays = 7
	MaxAuditRetentionDays = 3650
)

// MaxSCIMRateLimit bounds a tenant's SCIM rate limit (1 to it, or 0 for the default).
const MaxSCIMRateLimit = 10000

// tenantRow is a tenant as stored. Durations are kept as whole seconds, which reads the
// same on PostgreSQL, SQLite and to a person looking at the table.
type tenantRow struct {
	bun.BaseModel `bun:"table:tenants"`

	ID                 string           `bun:"id,pk"`
	Slug               string           `bun:"slug"`
	Name               string           `bun:"name"`
	ProvisioningMode   ProvisioningMode `bun:"provisioning_mode"`
	Features           []Feature        `bun:"features,type:jsonb"`
	JITProvisioning    bool             `bun:"jit_provisioning"`
	IdPInitiatedSSO    bool             `bun:"idp_initiated_sso"`
	SessionIdleSeconds int64            `bun:"session_idle_seconds"`
	SessionMaxSeconds  int64            `bun:"session_max_seconds"`
	AuditRetentionDays int              `bun:"audit_retention_days"`
	SCIMRateLimit      int              `bun:"scim_rate_limit_per_second"`
	CreatedAt          time.Time        `bun:"created_at"`
	UpdatedAt          time.Time        `bun:"updated_at"`
}

func toTenant(r tenantRow) Tenant {
	return Tenant{ID: r.ID, Slug: r.Slug, Name: r.Name, ProvisioningMode: r.ProvisioningMode,
		Features: r.Features, JITProvisioning: r.JITProvisioning, IdPInitiatedSSO: r.IdPInitiatedSSO,
		SessionIdleTimeout: time.Duration(r.SessionIdleSeconds) * time.Second,
		SessionMaxLifetime: time.Duration(r.SessionMaxSeconds) * time.Second,
		AuditRetentionDays: r.AuditRetentionDays,
		SCIMRateLimit:      r.SCIMRateLimit,
		CreatedAt:          r.CreatedAt, UpdatedAt: r.UpdatedAt}
}

func fromTenant(t Tenant) tenantRow {
	return tenantRow{ID: t.ID, Slug: t.Slug, Name: t.Name, ProvisioningMode: t.ProvisioningMode,
		Features: t.Features, JITProvisioning: t.JITProvisioning, IdPInitiatedSSO: t.IdPInitiatedSSO,
		SessionIdleSeconds: int64(t.SessionIdleTimeout / time.Second),
		SessionMaxSeconds:  int64(t.SessionMaxLifetime / time.Second),
		AuditRetentionDays: t.AuditRetentionDays,
		SCIMRateLimit:      t.SCIMRateLimit,
		CreatedAt:          t.CreatedAt, UpdatedAt: t.UpdatedAt}
}

// Has reports whether the tenant's plan includes f.
func (t Tenant) Has(f Feature) bool { return slices.Contains(t.Features, f) }

// Service is the tenancy module's API.
type Service struct {
	db       *bun.DB
	clock    clock.Clock
	audit    *audit.Log
	resolver TXTResolver
	// metadata fetches SAML metadata URLs; see AllowPrivateMetadataURLs.
	metadata *metadataFetcher
	// scimAuth remembers recent SCIM token lookups (authcache.go); bus, when set,
	// carries tenant changes between processes, and log says when it cannot.
	scimAuth scimAuthCache
	bus      bus.Bus
	log      *slog.Logger
}

// TXTResolver looks up DNS TXT records; *net.Resolver satisfies it.
type TXTResolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

// New returns the tenancy service.
func New(bdb *bun.DB, clk clock.Clock, log *audit.Log, resolver TXTResolver) *Service {
	return &Service{db: bdb, clock: clk, audit: log, resolver: resolver, metadata: newMetadataFetcher(false), scimAuth: newSCIMAuthCache()}
}

// Slugs are DNS-label shaped so they work in URLs (/saml/{slug}/…) and hostnames.
var slugRE = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$`)

// CreateTenantInput is what a new tenant needs.
type CreateTenantInput struct {
	Slug             string
	Name             string
	ProvisioningMode ProvisioningMode
	Features         []Feature
}

func validateMode(m ProvisioningMode) error {
	switch m {
	case ProvisioningSCIM, ProvisioningManual, ProvisioningMixed:
		return nil
	}
	return apperr.Invalid("provisioning mode %q is not valid: use scim or manual, or mixed (people from the IdP plus people managed in the app)", m)
}

func validateFeatures(fs []Feature) ([]Feature, error) {
	out := []Feature{}
	for _, f := range fs {
		if !slices.Contains(KnownFeatures, f) {
			return nil, apperr.Invalid("feature %q is not known: known features are %v", f, KnownFeatures)
		}
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out, nil
}

// CreateTenant creates a tenant. Slug must be unique.
func (s *Service) CreateTenant(ctx context.Context, in CreateTenantInput) (Tenant, error) {
	if !slugRE.MatchString(in.Slug) {
		return Tenant{}, apperr.Invalid("slug %q is not valid: use 1-63 lower-case letters, digits and hyphens, starting and ending with a letter or digit (e.g. \"acme\")", in.Slug)
	}
	name := strings.TrimSpace(in.Name)
	if name == "" {
		name = in.Slug
	}
	if len(name) > 200 {
		return Tenant{}, apperr.Invalid("name is %d characters; the limit is 200", len(name))
	}
	if in.ProvisioningMode == "" {
		in.ProvisioningMode = ProvisioningSCIM
	}
	if err := validateMode(in.ProvisioningMode); err != nil {
		return Tenant{}, err
	}
	features, err := validateFeatures(in.Features)
	if err != nil {
		return Tenant{}, err
	}
	now := s.clock.Now()
	t := Tenant{ID: ids.NewAt(now), Slug: in.Slug, Name: name, ProvisioningMode: in.ProvisioningMode,
		Features: features, SessionIdleTimeout: DefaultSessionIdleTimeout,
		SessionMaxLifetime: DefaultSessionMaxLifetime, CreatedAt: now, UpdatedAt: now}
	err = db.RunInTx(ctx, s.db, func(ctx context.Context, tx bun.Tx) error {
		row := fromTenant(t)
		if _, err := tx.NewInsert().Model(&row).Exec(ctx); err != nil {
			if db.IsUniqueViolation(err) {
				return apperr.Conflict("a tenant with slug %q already exists", in.Slug).WithCode("uniqueness")
			}
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{TenantID: t.ID, Action: "tenant.created",
			Target: audit.Target{Type: "tenant", ID: t.ID, Display: t.Slug},
			Changes: map[string]audit.Change{
				"slug": {After: t.Slug}, "name": {After: t.Name},
				"provisioningMode": {After: t.ProvisioningMode}, "features": {After: t.Features},
			}})
	})
	return t, err
}

// SettingsPatch changes tenant settings; nil fields are left alone.
type SettingsPatch struct {
	Name             *string
	ProvisioningMode *ProvisioningMode
	Features         *[]Feature
	JITProvisioning  *bool
	IdPInitiatedSSO  *bool
	// SessionIdleTimeout: 5m to 30 days; SessionMaxLifetime: 5m to 90 days; the idle
	// timeout may not exceed the maximum lifetime. Whole seconds are kept.
	SessionIdleTimeout *time.Duration
	SessionMaxLifetime *time.Duration
	// AuditRetentionDays: 0 (keep forever) or 7 to 3650 days.
	AuditRetentionDays *int
	// SCIMRateLimit: 1 to 10000 requests per second, or 0 for the deployment's default.
	SCIMRateLimit *int
}

// applySSOSettings applies p's SSO and session fields to t, recording what changed.
func applySSOSettings(t *Tenant, p SettingsPatch, changes map[string]audit.Change) error {
	if p.JITProvisioning != nil && *p.JITProvisioning != t.JITProvisioning {
		changes["jitProvisioning"] = audit.Change{Before: t.JITProvisioning, After: *p.JITProvisioning}
		t.JITProvisioning = *p.JITProvisioning
	}
	if p.IdPInitiatedSSO != nil && *p.IdPInitiatedSSO != t.IdPInitiatedSSO {
		changes["idpInitiatedSso"] = audit.Change{Before: t.IdPInitiatedSSO, After: *p.IdPInitiatedSSO}
		t.IdPInitiatedSSO = *p.IdPInitiatedSSO
	}
	idle, lifetime := t.SessionIdleTimeout, t.SessionMaxLifetime
	if p.SessionIdleTimeout != nil {
		idle = p.SessionIdleTimeout.Truncate(time.Second)
		if idle < MinSessionTimeout || idle > MaxSessionIdleTimeout {
			return apperr.Invalid("session idle timeout %s is out of range: use 5m to 720h (30 days)", *p.SessionIdleTimeout)
		}
	}
	if p.SessionMaxLifetime != nil {
		lifetime = p.SessionMaxLifetime.Truncate(time.Second)
		if lifetime < MinSessionTimeout || lifetime > MaxSessionMaxLifetime {
			return apperr.Invalid("session maximum lifetime %s is out of range: use 5m to 2160h (90 days)", *p.SessionMaxLifetime)
		}
	}
	if idle > lifetime {
		return apperr.Invalid("session idle timeout %s is longer than the maximum session lifetime %s: the idle timeout must not exceed it", idle, lifetime)
	}
	if idle != t.SessionIdleTimeout {
		changes["sessionIdleTimeout"] = audit.Change{Before: t.SessionIdleTimeout.String(), After: idle.String()}
		t.SessionIdleTimeout = idle
	}
	if lifetime != t.SessionMaxLifetime {
		changes["sessionMaxLifetime"] = audit.Change{Before: t.SessionMaxLifetime.String(), After: lifetime.String()}
		t.SessionMaxLifetime = lifetime
	}
	return nil
}

// UpdateSettings applies p to the tenant and records what changed.
func (s *Service) UpdateSettings(ctx context.Context, tenantID string, p SettingsPatch) (Tenant, error) {
	var t Tenant
	err := db.RunInTx(ctx, s.db, func(ctx context.Context, tx bun.Tx) error {
		var err error
		if t, err = tenantWhere(ctx, tx, "id = ?", tenantID); err != nil {
			return err
		}
		changes := map[string]audit.Change{}
		if p.Name != nil && strings.TrimSpace(*p.Name) != t.Name {
			n := strings.TrimSpace(*p.Name)
			if n == "" || len(n) > 200 {
				return apperr.Invalid("name must be 1 to 200 characters")
			}
			changes["name"] = audit.Change{Before: t.Name, After: n}
			t.Name = n
		}
		if p.ProvisioningMode != nil && *p.ProvisioningMode != t.ProvisioningMode {
			if err := validateMode(*p.ProvisioningMode); err != nil {
				return err
			}
			changes["provisioningMode"] = audit.Change{Before: t.ProvisioningMode, After: *p.ProvisioningMode}
			t.ProvisioningMode = *p.ProvisioningMode
		}
		if p.Features != nil {
			fs, err := validateFeatures(*p.Features)
			if err != nil {
				return err
			}
			if !slices.Equal(fs, t.Features) {
				changes["features"] = audit.Change{Before: t.Features, After: fs}
				t.Features = fs
			}
		}
		if err := applySSOSettings(&t, p, changes); err != nil {
			return err
		}
		if p.AuditRetentionDays != nil && *p.AuditRetentionDays != t.AuditRetentionDays {
			d := *p.AuditRetentionDays
			if d != 0 && (d < MinAuditRetentionDays || d > MaxAuditRetentionDays) {
				return apperr.Invalid("audit retention of %d days is out of range: use 0 (keep forever) or %d to %d days", d, MinAuditRetentionDays, MaxAuditRetentionDays)
			}
			changes["auditRetentionDays"] = audit.Change{Before: t.AuditRetentionDays, After: d}
			t.AuditRetentionDays = d
		}
		if p.SCIMRateLimit != nil && *p.SCIMRateLimit != t.SCIMRateLimit {
			n := *p.SCIMRateLimit
			if n < 0 || n > MaxSCIMRateLimit {
				return apperr.Invalid("a SCIM rate limit of %d requests per second is out of range: use 1 to %d, or 0 for the deployment's default", n, MaxSCIMRateLimit)
			}
			changes["scimRateLimit"] = audit.Change{Before: t.SCIMRateLimit, After: n}
			t.SCIMRateLimit = n
		}
		if len(changes) == 0 {
			return nil
		}
		t.UpdatedAt = s.clock.Now()
		row := fromTenant(t)
		if _, err := tx.NewUpdate().Model(&row).WherePK().Exec(ctx); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{TenantID: t.ID, Action: "tenant.settings_changed",
			Target: audit.Target{Type: "tenant", ID: t.ID, Display: t.Slug}, Changes: changes})
	})
	if err == nil {
		s.changed(ctx, t.ID)
	}
	return t, err
}

func tenantWhere(ctx context.Context, idb bun.IDB, where string, arg any) (Tenant, error) {
	var r tenantRow
	err := idb.NewSelect().Model(&r).Where(where, arg).Limit(1).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return Tenant{}, apperr.NotFound("no such tenant")
	}
	if err != nil {
		return Tenant{}, err
	}
	return toTenant(r), nil
}

// Tenant returns the tenant with the given id.
func (s *Service) Tenant(ctx context.Context, id string) (Tenant, error) {
	return tenantWhere(ctx, s.db, "id = ?", id)
}

// TenantBySlug returns the tenant with the given slug.
func (s *Service) TenantBySlug(ctx context.Context, slug string) (Tenant, error) {
	t, err := tenantWhere(ctx, s.db, "slug = ?", slug)
	if apperr.Is(err, apperr.KindNotFound) {
		return Tenant{}, apperr.NotFound("no tenant with slug %q (see `gatehouse tenant list`)", slug)
	}
	return t, err
}

// ListTenants returns every tenant, oldest first.
func (s *Service) ListTenants(ctx context.Context) ([]Tenant, error) {
	var rows []tenantRow
	if err := s.db.NewSelect().Model(&rows).OrderExpr("id").Scan(ctx); err != nil {
		return nil, err
	}
	ts := make([]Tenant, len(rows))
	for i, r := range rows {
		ts[i] = toTenant(r)
	}
	return ts, nil
}
