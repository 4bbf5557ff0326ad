package tenancy

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"database/sql"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
	"github.com/gatehouse-dev/gatehouse/modules/platform/db"
)

// SAMLConnection is a tenant's SAML identity provider: where to send people to sign in
// and which certificates the IdP signs with. A tenant has at most one.
type SAMLConnection struct {
	TenantID    string
	IdPEntityID string
	SSOURL      string
	SSOBinding  string // SAMLBindingHTTPRedirect preferred, else SAMLBindingHTTPPost
	SLOURL      string // may be ""
	SLOBinding  string // binding of SLOURL; "" when SLOURL is ""
	// Certificates are PEM "CERTIFICATE" blocks of the IdP's signing certificates; one
	// or more (rollover). Only public certificates: nothing here is secret.
	Certificates []string
	NameIDFormat string
	Attributes   SAMLAttributeMap
	// SignRequests: sign AuthnRequests. On when the IdP asks for it
	// (WantAuthnRequestsSigned) or the admin sets it.
	SignRequests bool
	// IdPWantsSignedRequests is the IdP's WantAuthnRequestsSigned from its metadata.
	IdPWantsSignedRequests bool
	MetadataURL            string // where metadata was fetched from, "" if uploaded
	CreatedAt, UpdatedAt   time.Time
}

// SAMLAttributeMap names the assertion attributes that carry a user's details, as the
// admin configured them; an empty name means "use the common names" (see Candidates).
type SAMLAttributeMap struct {
	Email, GivenName, FamilyName, Groups string
}

// Attribute names that Entra ID, Okta and other IdPs commonly send, tried after the
// configured name.
var (
	samlEmailAttributes = []string{"email", "mail",
		"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress", "urn:oid:0.9.2342.19200300.100.1.3"}
	samlGivenNameAttributes = []string{"firstName", "givenName",
		"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname", "urn:oid:2.5.4.42"}
	samlFamilyNameAttributes = []string{"lastName", "sn",
		"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname", "urn:oid:2.5.4.4"}
	samlGroupsAttributes = []string{"groups",
		"http://schemas.microsoft.com/ws/2008/06/identity/claims/groups", "memberOf"}
)

func candidates(configured string, common []string) []string {
	out := make([]string, 0, len(common)+1)
	if configured != "" {
		out = append(out, configured)
	}
	for _, c := range common {
		if c != configured {
			out = append(out, c)
		}
	}
	return out
}

// Candidates returns, for each user detail, the attribute names to look for in an
// assertion, in order: the configured name first, then the common ones (email: "email",
// "mail", the emailaddress claim URI, the mail OID; given name: "firstName", "givenName",
// the givenname claim URI, the givenName OID; family name: "lastName", "sn", the surname
// claim URI, the sn OID; groups: "groups", the Microsoft groups claim URI, "memberOf").
// The first name present in the assertion wins.
func (m SAMLAttributeMap) Candidates() (email, given, family, groups []string) {
	return candidates(m.Email, samlEmailAttributes), candidates(m.GivenName, samlGivenNameAttributes),
		candidates(m.FamilyName, samlFamilyNameAttributes), candidates(m.Groups, samlGroupsAttributes)
}

func (m SAMLAttributeMap) normalize() (SAMLAttributeMap, error) {
	out := SAMLAttributeMap{Email: strings.TrimSpace(m.Email), GivenName: strings.TrimSpace(m.GivenName),
		FamilyName: strings.TrimSpace(m.FamilyName), Groups: strings.TrimSpace(m.Groups)}
	for _, a := range []struct{ what, v string }{{"email", out.Email}, {"given name", out.GivenName},
		{"family name", out.FamilyName}, {"groups", out.Groups}} {
		if len(a.v) > 256 {
			return SAMLAttributeMap{}, apperr.Invalid("the %s attribute name is %d characters; the limit is 256", a.what, len(a.v))
		}
	}
	return out, nil
}

// X509Certificates parses Certificates.
func (c SAMLConnection) X509Certificates() ([]*x509.Certificate, error) {
	out := make([]*x509.Certificate, 0, len(c.Certificates))
	for i, p := range c.Certificates {
		b, _ := pem.Decode([]byte(p))
		if b == nil || b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("SAML connection of tenant %s: certificate %d is not a PEM CERTIFICATE block", c.TenantID, i+1)
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("SAML connection of tenant %s: certificate %d: %w", c.TenantID, i+1, err)
		}
		out = append(out, cert)
	}
	return out, nil
}

// Warnings lists what an admin should fix in the connection at time now: expired or
// not yet valid certificates, plain-http IdP endpoints.
func (c SAMLConnection) Warnings(now time.Time) []string {
	certs, err := c.X509Certificates()
	if err != nil {
		return []string{err.Error()}
	}
	w := certificateWarnings(certs, now)
	if strings.HasPrefix(c.SSOURL, "http:") {
		w = append(w, "the IdP's sign-in URL uses plain http; use https outside development")
	}
	return w
}

// CertificateFingerprint is the certificate's SHA-256 fingerprint as colon-separated
// upper-case hex, the form `openssl x509 -fingerprint -sha256` prints.
func CertificateFingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	var b strings.Builder
	for i, x := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", x)
	}
	return b.String()
}

// SAMLServicePaths are the paths (under the public URL) of a tenant's SAML service
// provider endpoints; they follow from the slug alone.
type SAMLServicePaths struct {
	EntityID string // the SP entity ID, as a path: /saml/{slug}
	ACS      string // Assertion Consumer Service ("Reply URL" in Entra ID): /saml/{slug}/acs
	Metadata string // SP metadata: /saml/{slug}/metadata
	Login    string // SP-initiated sign-in: /saml/{slug}/login
	SLO      string // Single Logout (HTTP-Redirect and HTTP-POST): /saml/{slug}/slo
}

// SAMLPaths returns the SAML service provider paths of the tenant with this slug.
func SAMLPaths(slug string) SAMLServicePaths {
	base := "/saml/" + slug
	return SAMLServicePaths{EntityID: base, ACS: base + "/acs", Metadata: base + "/metadata", Login: base + "/login", SLO: base + "/slo"}
}

// samlConnectionRow is a SAMLConnection as stored.
type samlConnectionRow struct {
	bun.BaseModel `bun:"table:saml_connections"`

	TenantID               string    `bun:"tenant_id,pk"`
	IdPEntityID            string    `bun:"idp_entity_id"`
	SSOURL                 string    `bun:"sso_url"`
	SSOBinding             string    `bun:"sso_binding"`
	SLOURL                 string    `bun:"slo_url"`
	SLOBinding             string    `bun:"slo_binding"`
	Certificates           []string  `bun:"certificates,type:jsonb"`
	NameIDFormat           string    `bun:"name_id_format"`
	AttrEmail              string    `bun:"attr_email"`
	AttrGivenName          string    `bun:"attr_given_name"`
	AttrFamilyName         string    `bun:"attr_family_name"`
	AttrGroups             string    `bun:"attr_groups"`
	SignRequests           bool      `bun:"sign_requests"`
	IdPWantsSignedRequests bool      `bun:"idp_wants_signed_requests"`
	MetadataURL            string    `bun:"metadata_url"`
	CreatedAt              time.Time `bun:"created_at"`
	UpdatedAt              time.Time `bun:"updated_at"`
}

func toSAMLConnection(r samlConnectionRow) SAMLConnection {
	return SAMLConnection{TenantID: r.TenantID, IdPEntityID: r.IdPEntityID, SSOURL: r.SSOURL,
		SSOBinding: r.SSOBinding, SLOURL: r.SLOURL, SLOBinding: r.SLOBinding,
		Certificates: slices.Clone(r.Certificates), NameIDFormat: r.NameIDFormat,
		Attributes: SAMLAttributeMap{Email: r.AttrEmail, GivenName: r.AttrGivenName,
			FamilyName: r.AttrFamilyName, Groups: r.AttrGroups},
		SignRequests: r.SignRequests, IdPWantsSignedRequests: r.IdPWantsSignedRequests,
		MetadataURL: r.MetadataURL, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
}

func fromSAMLConnection(c SAMLConnection) samlConnectionRow {
	return samlConnectionRow{TenantID: c.TenantID, IdPEntityID: c.IdPEntityID, SSOURL: c.SSOURL,
		SSOBinding: c.SSOBinding, SLOURL: c.SLOURL, SLOBinding: c.SLOBinding,
		Certificates: slices.Clone(c.Certificates), NameIDFormat: c.NameIDFormat,
		AttrEmail: c.Attributes.Email, AttrGivenName: c.Attributes.GivenName,
		AttrFamilyName: c.Attributes.FamilyName, AttrGroups: c.Attributes.Groups,
		SignRequests: c.SignRequests, IdPWantsSignedRequests: c.IdPWantsSignedRequests,
		MetadataURL: c.MetadataURL, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
}

func certificatePEM(c *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}

// fingerprints returns the SHA-256 fingerprints of PEM certificates, for audit events.
func fingerprints(pems []string) []string {
	out := make([]string, 0, len(pems))
	for _, p := range pems {
		b, _ := pem.Decode([]byte(p))
		if b == nil {
			continue
		}
		if c, err := x509.ParseCertificate(b.Bytes); err == nil {
			out = append(out, CertificateFingerprint(c))
		}
	}
	return out
}

// SAMLConfigInput configures a tenant's SAML connection. Give the IdP's metadata as
// MetadataXML or MetadataURL (fetched by the server), not both; with neither, an
// existing connection keeps its IdP settings and only Attributes and SignRequests
// change.
type SAMLConfigInput struct {
	MetadataXML []byte
	MetadataURL string
	// Attributes replaces the attribute mapping; nil keeps the existing one (or the
	// defaults, for a new connection).
	Attributes *SAMLAttributeMap
	// SignRequests sets whether AuthnRequests are signed; nil keeps the existing value
	// (off for a new connection). It cannot be turned off for an IdP whose metadata
	// requires signed requests.
	SignRequests *bool
}

func (s *Service) samlRow(ctx context.Context, idb bun.IDB, tenantID string) (samlConnectionRow, bool, error) {
	var r samlConnectionRow
	err := idb.NewSelect().Model(&r).Where("tenant_id = ?", tenantID).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return samlConnectionRow{}, false, nil
	}
	return r, err == nil, err
}

// ConfigureSAML creates or replaces the tenant's SAML connection from the IdP's
// metadata and records a saml.connection_changed event with what changed (entity ID,
// URLs, certificate fingerprints; only public material). Metadata with expired
// certificates is accepted: see SAMLConnection.Warnings.
func (s *Service) ConfigureSAML(ctx context.Context, tenantID string, in SAMLConfigInput) (SAMLConnection, error) {
	if len(in.MetadataXML) > 0 && in.MetadataURL != "" {
		return SAMLConnection{}, apperr.Invalid("give the IdP metadata either as a document or as a URL, not both")
	}
	var md *IdPMetadata
	switch {
	case len(in.MetadataXML) > 0:
		m, _, err := parseIdPMetadata(in.MetadataXML, s.clock.Now())
		if err != nil {
			return SAMLConnection{}, err
		}
		md = &m
	case in.MetadataURL != "":
		if _, err := s.Tenant(ctx, tenantID); err != nil {
			return SAMLConnection{}, err // do not fetch on behalf of a tenant that does not exist
		}
		doc, err := s.metadata.fetch(ctx, in.MetadataURL)
		if err != nil {
			return SAMLConnection{}, err
		}
		m, _, err := parseIdPMetadata(doc, s.clock.Now())
		if err != nil {
			return SAMLConnection{}, apperr.Invalid("fetched %s, but %s", in.MetadataURL, apperr.PublicMessage(err))
		}
		md = &m
	}
	var attrs *SAMLAttributeMap
	if in.Attributes != nil {
		a, err := in.Attributes.normalize()
		if err != nil {
			return SAMLConnection{}, err
		}
		attrs = &a
	}

	var conn SAMLConnection
	err := db.RunInTx(ctx, s.db, func(ctx context.Context, tx bun.Tx) error {
		t, err := tenantWhere(ctx, tx, "id = ?", tenantID)
		if err != nil {
			return err
		}
		old, exists, err := s.samlRow(ctx, tx, tenantID)
		if err != nil {
			return err
		}
		if !exists && md == nil {
			return apperr.Invalid("tenant %q has no SAML connection yet: give the IdP's metadata (a file or a URL)", t.Slug)
		}
		now := s.clock.Now()
		before := toSAMLConnection(old)
		conn = before
		if !exists {
			conn = SAMLConnection{TenantID: tenantID, CreatedAt: now}
		}
		if md != nil {
			conn.IdPEntityID, conn.SSOURL, conn.SSOBinding = md.EntityID, md.SSOURL, md.SSOBinding
			conn.SLOURL, conn.SLOBinding = md.SLOURL, md.SLOBinding
			conn.NameIDFormat = md.NameIDFormat
			conn.IdPWantsSignedRequests = md.WantAuthnRequestsSigned
			conn.MetadataURL = in.MetadataURL
			conn.Certificates = make([]string, len(md.Certificates))
			for i, c := range md.Certificates {
				conn.Certificates[i] = certificatePEM(c)
			}
		}
		if attrs != nil {
			conn.Attributes = *attrs
		}
		if in.SignRequests != nil {
			if !*in.SignRequests && conn.IdPWantsSignedRequests {
				return apperr.Invalid("the IdP requires signed AuthnRequests (WantAuthnRequestsSigned=\"true\" in its metadata), so request signing cannot be turned off")
			}
			conn.SignRequests = *in.SignRequests
		}
		if conn.IdPWantsSignedRequests {
			conn.SignRequests = true
		}

		changes := samlChanges(before, conn, exists)
		if len(changes) == 0 {
			return nil
		}
		conn.UpdatedAt = now
		row := fromSAMLConnection(conn)
		if exists {
			_, err = tx.NewUpdate().Model(&row).WherePK().Exec(ctx)
		} else {
			_, err = tx.NewInsert().Model(&row).Exec(ctx)
		}
		if err != nil {
			if db.IsUniqueViolation(err) {
				return apperr.Conflict("the SAML connection of tenant %q was configured at the same time by someone else; try again", t.Slug)
			}
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{TenantID: tenantID, Action: "saml.connection_changed",
			Target: audit.Target{Type: "saml_connection", ID: tenantID, Display: conn.IdPEntityID}, Changes: changes})
	})
	if err != nil {
		return SAMLConnection{}, err
	}
	return conn, nil
}

// samlChanges lists what differs between two versions of a connection, for the audit
// event. Certificates appear as SHA-256 fingerprints.
func samlChanges(before, after SAMLConnection, existed bool) map[string]audit.Change {
	changes := map[string]audit.Change{}
	str := func(key, b, a string) {
		if b != a {
			changes[key] = audit.Change{Before: b, After: a}
		}
	}
	str("idpEntityId", before.IdPEntityID, after.IdPEntityID)
	str("ssoUrl", before.SSOURL, after.SSOURL)
	str("ssoBinding", before.SSOBinding, after.SSOBinding)
	str("sloUrl", before.SLOURL, after.SLOURL)
	str("nameIdFormat", before.NameIDFormat, after.NameIDFormat)
	str("metadataUrl", before.MetadataURL, after.MetadataURL)
	if fb, fa := fingerprints(before.Certificates), fingerprints(after.Certificates); !slices.Equal(fb, fa) {
		changes["certificates"] = audit.Change{Before: fb, After: fa}
	}
	if before.Attributes != after.Attributes {
		changes["attributes"] = audit.Change{Before: before.Attributes, After: after.Attributes}
	}
	if before.SignRequests != after.SignRequests || !existed {
		changes["signRequests"] = audit.Change{Before: before.SignRequests, After: after.SignRequests}
	}
	return changes
}

// SAMLConnection returns the tenant's SAML connection.
func (s *Service) SAMLConnection(ctx context.Context, tenantID string) (SAMLConnection, error) {
	r, ok, err := s.samlRow(ctx, s.db, tenantID)
	if err != nil {
		return SAMLConnection{}, err
	}
	if !ok {
		t, err := s.Tenant(ctx, tenantID)
		if err != nil {
			return SAMLConnection{}, err
		}
		return SAMLConnection{}, apperr.NotFound("tenant %q has no SAML connection: run `gatehouse saml configure --tenant %s --metadata-url …` (or --metadata-file)", t.Slug, t.Slug)
	}
	return toSAMLConnection(r), nil
}
