package tenancy

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"errors"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
	"github.com/gatehouse-dev/gatehouse/modules/platform/db"
	"github.com/gatehouse-dev/gatehouse/modules/platform/ids"
)

// Domain is an email domain a tenant claims. Once verified (by a DNS TXT record, or by
// an operator who checked it another way) it routes home-realm discovery and allows JIT
// sign-up for that tenant; a domain can be verified for one tenant only.
type Domain struct {
	bun.BaseModel `bun:"table:tenant_domains"`

	ID                string     `bun:"id,pk"`
	TenantID          string     `bun:"tenant_id"`
	Domain            string     `bun:"domain"`
	VerificationToken string     `bun:"verification_token"`
	VerifiedAt        *time.Time `bun:"verified_at"`
	CreatedAt         time.Time  `bun:"created_at"`
}

// Verified reports whether the domain has been verified.
func (d Domain) Verified() bool { return d.VerifiedAt != nil }

// ChallengeName is the DNS name that must carry the TXT record.
func (d Domain) ChallengeName() string { return "_gatehouse-challenge." + d.Domain }

// ChallengeValue is the TXT record value that proves control of the domain.
func (d Domain) ChallengeValue() string {
	return "gatehouse-domain-verification=" + d.VerificationToken
}

// NormalizeDomain lower-cases d, drops one trailing dot and checks that it is a plausible
// DNS name (letters, digits and hyphens in 2+ labels, IDNs in their xn-- form).
func NormalizeDomain(d string) (string, error) {
	n := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")
	bad := apperr.Invalid("domain %q is not valid: give a DNS name such as \"acme.com\" (no scheme, no @, no path; internationalised names in xn-- form)", d)
	if n == "" || len(n) > 253 {
		return "", bad
	}
	labels := strings.Split(n, ".")
	if len(labels) < 2 {
		return "", bad
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return "", bad
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return "", bad
			}
		}
	}
	tld := labels[len(labels)-1]
	if strings.Trim(tld, "0123456789") == "" {
		return "", bad // all-numeric TLD: an IP address, not a domain
	}
	return n, nil
}

func newVerificationToken() string {
	var b [20]byte
	_, _ = rand.Read(b[:])
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// AddDomain claims domain for the tenant and returns it with its DNS challenge.
func (s *Service) AddDomain(ctx context.Context, tenantID, domain string) (Domain, error) {
	name, err := NormalizeDomain(domain)
	if err != nil {
		return Domain{}, err
	}
	now := s.clock.Now()
	d := Domain{ID: ids.NewAt(now), TenantID: tenantID, Domain: name, VerificationToken: newVerificationToken(), CreatedAt: now}
	err = db.RunInTx(ctx, s.db, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tenantWhere(ctx, tx, "id = ?", tenantID); err != nil {
			return err
		}
		if _, err := tx.NewInsert().Model(&d).Exec(ctx); err != nil {
			if db.IsUniqueViolation(err) {
				return apperr.Conflict("domain %q is already added to this tenant", name).WithCode("uniqueness")
			}
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{TenantID: tenantID, Action: "domain.added",
			Target: audit.Target{Type: "domain", ID: d.ID, Display: name}})
	})
	return d, err
}

// VerifyMethod says how a domain's ownership was established.
type VerifyMethod string

const (
	// VerifyDNS checks for the TXT record now.
	VerifyDNS VerifyMethod = "dns"
	// VerifyManual records that an operator verified ownership out of band.
	VerifyManual VerifyMethod = "manual"
)

// VerifyDomain marks the tenant's domain verified, after checking its DNS TXT record
// unless the method is manual.
func (s *Service) VerifyDomain(ctx context.Context, tenantID, domain string, method VerifyMethod) (Domain, error) {
	name, err := NormalizeDomain(domain)
	if err != nil {
		return Domain{}, err
	}
	var d Domain
	err = s.db.NewSelect().Model(&d).Where("tenant_id = ? AND domain = ?", tenantID, name).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return Domain{}, apperr.NotFound("domain %q is not added to this tenant: run `gatehouse domain add` first", name)
	}
	if err != nil {
		return Domain{}, err
	}
	if d.Verified() {
		return d, nil
	}
	switch method {
	case VerifyDNS:
		if err := s.checkTXT(ctx, d); err != nil {
			return Domain{}, err
		}
	case VerifyManual:
	default:
		return Domain{}, apperr.Invalid("verification method %q is not valid: use dns or manual", method)
	}
	now := s.clock.Now()
	d.VerifiedAt = &now
	err = db.RunInTx(ctx, s.db, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewUpdate().Model(&d).Column("verified_at").WherePK().Exec(ctx); err != nil {
			if db.IsUniqueViolation(err) {
				return apperr.Conflict("domain %q is already verified by another tenant", name).WithCode("uniqueness")
			}
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{TenantID: tenantID, Action: "domain.verified",
			Target:  audit.Target{Type: "domain", ID: d.ID, Display: name},
			Changes: map[string]audit.Change{"method": {After: method}}})
	})
	return d, err
}

func (s *Service) checkTXT(ctx context.Context, d Domain) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	records, err := s.resolver.LookupTXT(ctx, d.ChallengeName())
	if err != nil {
		return apperr.Invalid("no TXT record found at %s (%v): publish %q there, wait for DNS to update and try again",
			d.ChallengeName(), err, d.ChallengeValue())
	}
	for _, r := range records {
		if strings.TrimSpace(r) == d.ChallengeValue() {
			return nil
		}
	}
	return apperr.Invalid("the TXT records at %s do not include %q: publish it and try again", d.ChallengeName(), d.ChallengeValue())
}

// ListDomains returns the tenant's domains, oldest first.
func (s *Service) ListDomains(ctx context.Context, tenantID string) ([]Domain, error) {
	var ds []Domain
	err := s.db.NewSelect().Model(&ds).Where("tenant_id = ?", tenantID).OrderExpr("id").Scan(ctx)
	return ds, err
}

// TenantByVerifiedDomain finds the tenant that verified the domain of an email address
// or a bare domain.
func (s *Service) TenantByVerifiedDomain(ctx context.Context, emailOrDomain string) (Tenant, error) {
	dom := emailOrDomain
	if i := strings.LastIndexByte(dom, '@'); i >= 0 {
		dom = dom[i+1:]
	}
	name, err := NormalizeDomain(dom)
	if err != nil {
		return Tenant{}, err
	}
	var d Domain
	err = s.db.NewSelect().Model(&d).Where("domain = ? AND verified_at IS NOT NULL", name).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return Tenant{}, apperr.NotFound("no organisation has verified the domain %q", name)
	}
	if err != nil {
		return Tenant{}, err
	}
	return s.Tenant(ctx, d.TenantID)
}
