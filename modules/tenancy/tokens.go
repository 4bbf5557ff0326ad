package tenancy

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"hash/crc32"
	"math/big"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
	"github.com/gatehouse-dev/gatehouse/modules/platform/db"
	"github.com/gatehouse-dev/gatehouse/modules/platform/ids"
)

// SCIMTokenPrefix starts every SCIM token, so secret scanners and people recognise one.
const SCIMTokenPrefix = "gatehouse_scim_"

// A token is the prefix, 256 random bits in base62 (43 characters) and a 6-character
// base62 CRC-32 of those, so a mistyped or truncated token is refused without a lookup
// and scanners can tell a real token from a look-alike.
const (
	tokenBodyLen     = 43
	tokenChecksumLen = 6
	tokenLen         = len(SCIMTokenPrefix) + tokenBodyLen + tokenChecksumLen
)

// lastUsedGranularity bounds how often a token's last-used time is written: recording
// every request would turn each SCIM read into a write.
const lastUsedGranularity = time.Minute

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

func encodeBase62(b []byte, width int) string {
	n := new(big.Int).SetBytes(b)
	out := make([]byte, width)
	base := big.NewInt(62)
	mod := new(big.Int)
	for i := width - 1; i >= 0; i-- {
		n.DivMod(n, base, mod)
		out[i] = base62[mod.Int64()]
	}
	return string(out)
}

func tokenChecksum(body string) string {
	c := crc32.ChecksumIEEE([]byte(body))
	return encodeBase62([]byte{byte(c >> 24), byte(c >> 16), byte(c >> 8), byte(c)}, tokenChecksumLen)
}

func newSCIMSecret() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	body := encodeBase62(b[:], tokenBodyLen)
	return SCIMTokenPrefix + body + tokenChecksum(body)
}

// wellFormed checks prefix, length, alphabet and checksum.
func wellFormed(secret string) bool {
	if len(secret) != tokenLen || !strings.HasPrefix(secret, SCIMTokenPrefix) {
		return false
	}
	rest := secret[len(SCIMTokenPrefix):]
	for i := 0; i < len(rest); i++ {
		if strings.IndexByte(base62, rest[i]) < 0 {
			return false
		}
	}
	return tokenChecksum(rest[:tokenBodyLen]) == rest[tokenBodyLen:]
}

func hashSecret(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// SCIMToken is a tenant's SCIM bearer token as stored: only its hash is kept.
type SCIMToken struct {
	bun.BaseModel `bun:"table:scim_tokens"`

	ID         string     `bun:"id,pk"`
	TenantID   string     `bun:"tenant_id"`
	Name       string     `bun:"name"`
	TokenHash  string     `bun:"token_hash"`
	Hint       string     `bun:"hint"` // last 4 characters, to tell tokens apart in lists
	CreatedAt  time.Time  `bun:"created_at"`
	LastUsedAt *time.Time `bun:"last_used_at"`
	ExpiresAt  *time.Time `bun:"expires_at"`
	RevokedAt  *time.Time `bun:"revoked_at"`
}

// State is "active", "expired" or "revoked" at time now.
func (t SCIMToken) State(now time.Time) string {
	switch {
	case t.RevokedAt != nil:
		return "revoked"
	case t.ExpiresAt != nil && !now.Before(*t.ExpiresAt):
		return "expired"
	}
	return "active"
}

// IssuedToken is a new token with its secret, which is shown once and never stored.
type IssuedToken struct {
	Token  SCIMToken
	Secret string
}

// IssueSCIMToken creates a SCIM token for the tenant. ttl 0 means it does not expire.
func (s *Service) IssueSCIMToken(ctx context.Context, tenantID, name string, ttl time.Duration) (IssuedToken, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 100 {
		return IssuedToken{}, apperr.Invalid("token name must be 1 to 100 characters (e.g. \"Okta production\")")
	}
	if ttl < 0 {
		return IssuedToken{}, apperr.Invalid("token lifetime must not be negative")
	}
	secret := newSCIMSecret()
	now := s.clock.Now()
	t := SCIMToken{ID: ids.NewAt(now), TenantID: tenantID, Name: name, TokenHash: hashSecret(secret),
		Hint: secret[len(secret)-4:], CreatedAt: now}
	if ttl > 0 {
		exp := now.Add(ttl)
		t.ExpiresAt = &exp
	}
	err := db.RunInTx(ctx, s.db, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tenantWhere(ctx, tx, "id = ?", tenantID); err != nil {
			return err
		}
		if _, err := tx.NewInsert().Model(&t).Exec(ctx); err != nil {
			return err
		}
		changes := map[string]audit.Change{"name": {After: name}}
		if t.ExpiresAt != nil {
			changes["expiresAt"] = audit.Change{After: *t.ExpiresAt}
		}
		return s.audit.Record(ctx, tx, audit.Event{TenantID: tenantID, Action: "scim_token.issued",
			Target: audit.Target{Type: "scim_token", ID: t.ID, Display: name}, Changes: changes})
	})
	if err != nil {
		return IssuedToken{}, err
	}
	return IssuedToken{Token: t, Secret: secret}, nil
}

// ListSCIMTokens returns the tenant's tokens (without secrets), oldest first.
func (s *Service) ListSCIMTokens(ctx context.Context, tenantID string) ([]SCIMToken, error) {
	var ts []SCIMToken
	err := s.db.NewSelect().Model(&ts).Where("tenant_id = ?", tenantID).OrderExpr("created_at, id").Scan(ctx)
	return ts, err
}

// RevokeSCIMToken revokes one of the tenant's tokens; from then on it is refused.
func (s *Service) RevokeSCIMToken(ctx context.Context, tenantID, tokenID string) error {
	err := db.RunInTx(ctx, s.db, func(ctx context.Context, tx bun.Tx) error {
		var t SCIMToken
		err := tx.NewSelect().Model(&t).Where("id = ? AND tenant_id = ?", tokenID, tenantID).Scan(ctx)
		if errors.Is(err, sql.ErrNoRows) {
			return apperr.NotFound("no SCIM token %q in this tenant (see `gatehouse scim-token list`)", tokenID)
		}
		if err != nil {
			return err
		}
		if t.RevokedAt != nil {
			return nil
		}
		now := s.clock.Now()
		t.RevokedAt = &now
		if _, err := tx.NewUpdate().Model(&t).Column("revoked_at").WherePK().Exec(ctx); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{TenantID: tenantID, Action: "scim_token.revoked",
			Target: audit.Target{Type: "scim_token", ID: t.ID, Display: t.Name}})
	})
	if err == nil {
		s.changed(ctx, tenantID)
	}
	return err
}

// SCIMPrincipal is who a valid SCIM token speaks for.
type SCIMPrincipal struct {
	Tenant    Tenant
	TokenID   string
	TokenName string
}

// errBadToken is deliberately the same for every refusal, so a caller learns nothing
// about which tokens exist.
var errBadToken = apperr.Unauthenticated("the bearer token is not valid: it may be mistyped, revoked or expired; ask the tenant's administrator for a new SCIM token")

// AuthenticateSCIM resolves a bearer secret to its tenant. Malformed, unknown, revoked
// and expired tokens are all refused the same way.
func (s *Service) AuthenticateSCIM(ctx context.Context, secret string) (SCIMPrincipal, error) {
	if !wellFormed(secret) {
		return SCIMPrincipal{}, errBadToken
	}
	hash := hashSecret(secret)
	now := s.clock.Now()
	// The invalidation count is read before the lookup: an entry found and then
	// invalidated (a revocation in between) is then not remembered again below.
	forgets := s.scimAuth.forgets.Load()
	e, ok := s.scimAuth.get(hash)
	if !ok {
		// The token and its tenant in one round trip.
		var row struct {
			SCIMToken `bun:",extend"`
			Tenant    *tenantRow `bun:"rel:belongs-to,join:tenant_id=id"`
		}
		err := s.db.NewSelect().Model(&row).Relation("Tenant").Where("token_hash = ?", hash).Scan(ctx)
		if errors.Is(err, sql.ErrNoRows) {
			return SCIMPrincipal{}, errBadToken
		}
		if err != nil {
			return SCIMPrincipal{}, apperr.Unavailable(err, "cannot check the token right now; retry shortly")
		}
		if row.Tenant == nil {
			return SCIMPrincipal{}, errBadToken
		}
		e = scimAuthEntry{token: row.SCIMToken, at: time.Now(),
			principal: SCIMPrincipal{Tenant: toTenant(*row.Tenant), TokenID: row.ID, TokenName: row.Name}}
	}
	t := e.token
	if t.State(now) != "active" { // expiry is checked on every use, remembered or not
		s.scimAuth.entries.Remove(hash)
		return SCIMPrincipal{}, errBadToken
	}
	if t.LastUsedAt == nil || now.Sub(*t.LastUsedAt) >= lastUsedGranularity {
		// Best effort: a failed bookkeeping write must not fail the request.
		_, _ = s.db.NewUpdate().Model((*SCIMToken)(nil)).Set("last_used_at = ?", now).
			Where("id = ?", t.ID).Exec(ctx)
		e.token.LastUsedAt = &now
	}
	if !ok || e.token.LastUsedAt != t.LastUsedAt {
		s.scimAuth.remember(hash, e, forgets)
	}
	return e.principal, nil
}
