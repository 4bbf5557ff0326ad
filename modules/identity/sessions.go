package identity

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/keys"
	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
	"github.com/gatehouse-dev/gatehouse/modules/platform/cache"
	"github.com/gatehouse-dev/gatehouse/modules/platform/clock"
	"github.com/gatehouse-dev/gatehouse/modules/platform/db"
	"github.com/gatehouse-dev/gatehouse/modules/platform/ids"
)

// Session is a signed-in person's session. The row is the truth: a session is alive
// while its row exists and neither its absolute nor its idle deadline has passed.
type Session struct {
	bun.BaseModel `bun:"table:sessions,alias:s"`

	ID               string    `bun:"id,pk"`
	TenantID         string    `bun:"tenant_id"`
	UserID           string    `bun:"user_id"`
	CreatedAt        time.Time `bun:"created_at"`
	ExpiresAt        time.Time `bun:"expires_at"`
	LastSeenAt       time.Time `bun:"last_seen_at"`
	IdleSeconds      int64     `bun:"idle_seconds"`
	IP               string    `bun:"ip"`
	UserAgent        string    `bun:"user_agent"`
	Method           string    `bun:"method"`
	SAMLNameID       string    `bun:"saml_name_id"`
	SAMLSessionIndex string    `bun:"saml_session_index"`
}

// IdleDeadline is when the session ends if it is not used before.
func (s Session) IdleDeadline() time.Time {
	return s.LastSeenAt.Add(time.Duration(s.IdleSeconds) * time.Second)
}

func (s Session) aliveAt(now time.Time) bool {
	return now.Before(s.ExpiresAt) && now.Before(s.IdleDeadline())
}

// Principal is who an authenticated request acts as. It travels in the request context.
type Principal struct {
	TenantID  string
	UserID    string
	SessionID string
	ExpiresAt time.Time
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal of an authenticated request.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// SessionsConfig is what the session layer needs from the deployment.
type SessionsConfig struct {
	// Issuer is the JWT iss: the public base URL.
	Issuer string
	// Audience is the JWT aud the tokens are minted for and checked against.
	Audience string
}

// Sessions is the session layer: it starts sessions, mints their JWTs and decides on
// every request whether a token's session is still alive.
type Sessions struct {
	db    bun.IDB
	clock clock.Clock
	audit *audit.Log
	ended *ended
	keys  *keys.Store
	cfg   SessionsConfig
	log   *slog.Logger
	// verified remembers the claims of tokens whose signature, issuer and audience were
	// checked, so a token used again skips the Ed25519 verification (most of the
	// check's CPU). Only what verification accepted goes in; expiry, the signing key's
	// standing and the session itself are still checked on every use.
	verified *lru.Cache[string, claims]
	// beforeTouch, when set (tests only), runs just before a session's last-seen time is
	// written, so a test can end the session between the read and the write.
	beforeTouch func()
}

// verifiedTokens bounds the verified-token memory (a few MB at most).
const verifiedTokens = 10000

// Sessions returns the session layer over this service's database, cache and view of
// ended sessions.
func (s *Service) Sessions(k *keys.Store, cfg SessionsConfig) *Sessions {
	if cfg.Audience == "" {
		cfg.Audience = DefaultAudience
	}
	verified, _ := lru.New[string, claims](verifiedTokens)
	return &Sessions{db: s.db, clock: s.clock, audit: s.audit, ended: s.ended, keys: k, cfg: cfg, log: s.ended.log, verified: verified}
}

// DefaultAudience is the aud of session tokens.
const DefaultAudience = "gatehouse"

const (
	// touchEvery bounds how often a session's last-seen time is written; idle
	// deadlines are therefore accurate to this much.
	touchEvery = time.Minute
	// cacheFor bounds how long a cache entry may speak for a session without the
	// database being asked again.
	cacheFor = 5 * time.Minute
	// leeway absorbs clock differences between replicas when checking exp.
	leeway = 5 * time.Second
	// maxNameIDLen and maxSessionIndexLen are how much of a SAML sign-in's NameID and
	// SessionIndex a session keeps.
	maxNameIDLen       = 512
	maxSessionIndexLen = 256
)

// NewSession is what starting a session needs.
type NewSession struct {
	TenantID, UserID     string
	IdleTimeout, MaxLife time.Duration
	IP, UserAgent        string
	Method               string
	// SAMLNameID and SAMLSessionIndex are the assertion's, for Single Logout.
	SAMLNameID, SAMLSessionIndex string
	// Audit, when set, is the sign-in's audit event (e.g. sso.login_succeeded). It is
	// recorded in the session's own transaction, with the new session's id added to its
	// changes as "session", so a session never exists without its record.
	Audit *audit.Event
}

// Start stores a session and returns it with its signed token.
func (s *Sessions) Start(ctx context.Context, in NewSession) (Session, string, error) {
	now := s.clock.Now()
	sess := Session{ID: ids.NewAt(now), TenantID: in.TenantID, UserID: in.UserID, CreatedAt: now,
		ExpiresAt: now.Add(in.MaxLife), LastSeenAt: now, IdleSeconds: int64(in.IdleTimeout / time.Second),
		IP: in.IP, UserAgent: truncate(in.UserAgent, 512), Method: in.Method,
		SAMLNameID: truncate(in.SAMLNameID, maxNameIDLen), SAMLSessionIndex: truncate(in.SAMLSessionIndex, maxSessionIndexLen)}
	err := db.RunInTx(ctx, s.db, func(ctx context.Context, tx bun.Tx) error {
		if err := lockActiveUser(ctx, tx, in.TenantID, in.UserID); err != nil {
			return err
		}
		if _, err := tx.NewInsert().Model(&sess).Exec(ctx); err != nil {
			return err
		}
		if in.Audit == nil {
			return nil
		}
		e := *in.Audit
		e.Changes = make(map[string]audit.Change, len(in.Audit.Changes)+1)
		for k, v := range in.Audit.Changes {
			e.Changes[k] = v
		}
		e.Changes["session"] = audit.Change{After: sess.ID}
		return s.audit.Record(ctx, tx, e)
	})
	if err != nil {
		return Session{}, "", err
	}
	s.remember(ctx, sess)
	tok, err := s.mint(ctx, sess)
	if err != nil {
		return Session{}, "", err
	}
	return sess, tok, nil
}

// lockActiveUser refuses a user who is not active and holds their row for the rest of tx
// against a deactivation or deletion, which lock it for update. A sign-in racing a
// deprovisioning therefore either commits first, and its session is ended with the
// others, or waits and is refused: no session outlives the deprovisioning.
func lockActiveUser(ctx context.Context, tx bun.Tx, tenantID, userID string) error {
	var active bool
	q := tx.NewSelect().Model((*User)(nil)).Column("active").Where("tenant_id = ? AND id = ?", tenantID, userID)
	if db.DialectOf(tx) == db.Postgres {
		q = q.For("SHARE") // SQLite needs none: its transactions take the write lock at BEGIN
	}
	err := q.Scan(ctx, &active)
	if db.IsNoRows(err) || (err == nil && !active) {
		return apperr.Forbidden("this account is not active: ask your organization's administrator")
	}
	return err
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

type claims struct {
	jwt.RegisteredClaims
	TenantID  string `json:"tid"`
	SessionID string `json:"sid"`
	kid       string // the header's key id, kept with the claims of a verified token
}

func (s *Sessions) mint(ctx context.Context, sess Session) (string, error) {
	k, err := s.keys.Active(ctx, keys.PurposeSession)
	if err != nil {
		return "", err
	}
	c := claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: s.cfg.Issuer, Subject: sess.UserID, Audience: jwt.ClaimStrings{s.cfg.Audience},
			IssuedAt: jwt.NewNumericDate(sess.CreatedAt), ExpiresAt: jwt.NewNumericDate(sess.ExpiresAt),
			ID: sess.ID,
		},
		TenantID: sess.TenantID, SessionID: sess.ID,
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	t.Header["kid"] = k.ID
	return t.SignedString(k.Signer)
}

var errSessionEnded = apperr.Unauthenticated("your session has ended: sign in again")

// Authenticate checks a session token and that its session is alive, and returns the
// principal. The signature algorithm is pinned to EdDSA, exp/iss/aud are required (a
// token verified before is not verified again, but its expiry and key are), and the
// session is looked up on every call (cache first, the database on a miss), so a revoked
// session is refused at once.
func (s *Sessions) Authenticate(ctx context.Context, token string) (Principal, error) {
	c, err := s.verify(ctx, token)
	if err != nil {
		return Principal{}, err
	}
	sess, err := s.alive(ctx, c.SessionID, c.Subject)
	if err != nil {
		return Principal{}, err
	}
	if sess.TenantID != c.TenantID {
		return Principal{}, errSessionEnded
	}
	return Principal{TenantID: sess.TenantID, UserID: sess.UserID, SessionID: sess.ID, ExpiresAt: sess.ExpiresAt}, nil
}

var errBadToken = apperr.Unauthenticated("the session token is not valid: sign in again")

// verify checks a token's signature (algorithm pinned to EdDSA, a published key),
// issuer, audience and expiry, and returns its claims.
func (s *Sessions) verify(ctx context.Context, token string) (claims, error) {
	if c, ok := s.verified.Get(token); ok {
		// Verified before: what can have changed since is the time and the key.
		if _, err := s.keys.Verifier(ctx, keys.PurposeSession, c.kid); err != nil ||
			!s.clock.Now().Before(c.ExpiresAt.Add(leeway)) {
			s.verified.Remove(token)
			return claims{}, errBadToken
		}
		return c, nil
	}
	var c claims
	parser := jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(s.cfg.Issuer), jwt.WithAudience(s.cfg.Audience), jwt.WithExpirationRequired(),
		jwt.WithLeeway(leeway), jwt.WithTimeFunc(s.clock.Now))
	_, err := parser.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		c.kid, _ = t.Header["kid"].(string)
		if c.kid == "" {
			return nil, errors.New("token has no kid")
		}
		k, err := s.keys.Verifier(ctx, keys.PurposeSession, c.kid)
		if err != nil {
			return nil, err
		}
		return k.Public, nil
	})
	if err != nil || c.SessionID == "" || c.Subject == "" || c.TenantID == "" {
		return claims{}, errBadToken
	}
	s.verified.Add(token, c)
	return c, nil
}

// Check reports whether the principal's session is still alive (nil) or has ended
// (an unauthenticated error); long-lived connections call it now and then.
func (s *Sessions) Check(ctx context.Context, p Principal) error {
	_, err := s.alive(ctx, p.SessionID, p.UserID)
	return err
}

// cached is a session's cache entry.
type cached struct {
	TenantID    string    `json:"t"`
	UserID      string    `json:"u"`
	ExpiresAt   time.Time `json:"x"`
	LastSeenAt  time.Time `json:"l"`
	IdleSeconds int64     `json:"i"`
}

// sessionKey puts every session of a user in one Redis Cluster hash slot ({user}), so
// purging a user's sessions is one atomic multi-key delete.
func sessionKey(userID, sessionID string) string {
	return "session:{" + userID + "}:" + sessionID
}

// alive returns the session if it is alive, touching its last-seen time at most once
// per touchEvery.
func (s *Sessions) alive(ctx context.Context, sessionID, userID string) (Session, error) {
	now := s.clock.Now()
	var sess Session
	fromCache := false
	if s.ended.trusted(sessionID) {
		b, err := s.ended.cache.Get(ctx, sessionKey(userID, sessionID))
		switch {
		case errors.Is(err, cache.ErrBuried):
			return Session{}, errSessionEnded
		case err == nil:
			var e cached
			// Trusted again after the read: it may have come through a new connection to
			// a restarted Redis (see cache.Generation).
			if json.Unmarshal(b, &e) == nil && e.UserID == userID && s.ended.trusted(sessionID) {
				sess = Session{ID: sessionID, TenantID: e.TenantID, UserID: e.UserID, ExpiresAt: e.ExpiresAt,
					LastSeenAt: e.LastSeenAt, IdleSeconds: e.IdleSeconds}
				fromCache = true
			}
		case !errors.Is(err, cache.ErrMiss):
			s.log.WarnContext(ctx, "session cache unavailable; checking the database", "err", err)
		}
	}
	if !fromCache {
		// The session's owner must still be active: belt and braces, since ending the
		// sessions is part of every deactivation.
		err := s.db.NewSelect().Model(&sess).
			Join("JOIN users AS u ON u.id = s.user_id AND u.active").
			Where("s.id = ? AND s.user_id = ?", sessionID, userID).Scan(ctx)
		if err != nil {
			if db.IsNoRows(err) {
				return Session{}, errSessionEnded
			}
			return Session{}, apperr.Unavailable(err, "cannot check the session right now; retry")
		}
	}
	// A session found ended here never has its cache entry deleted: the entry may be
	// the burial left by whoever ended it (read here a moment before), and deleting it
	// would let a request that read the row before the end write the session back. An
	// entry past its deadline expires on its own (its TTL is bounded by the deadlines).
	if !sess.aliveAt(now) {
		return Session{}, errSessionEnded
	}
	if now.Sub(sess.LastSeenAt) >= touchEvery {
		if s.beforeTouch != nil {
			s.beforeTouch()
		}
		res, err := s.db.NewUpdate().Model((*Session)(nil)).Set("last_seen_at = ?", now).
			Where("id = ? AND user_id = ?", sessionID, userID).Exec(ctx)
		if err != nil {
			return Session{}, apperr.Unavailable(err, "cannot check the session right now; retry")
		}
		if n, _ := res.RowsAffected(); n == 0 {
			// The row is gone: bury the entry (never delete it, see above).
			if err := s.ended.cache.Bury(ctx, cacheFor, sessionKey(userID, sessionID)); err != nil {
				s.log.WarnContext(ctx, "session cache unavailable; sessions are checked in the database", "err", err)
			}
			return Session{}, errSessionEnded
		}
		sess.LastSeenAt = now
		fromCache = false
	}
	if !fromCache {
		s.remember(ctx, sess)
	}
	return sess, nil
}

// remember writes a session read from (or just written to) the database into the cache,
// unless it has ended meanwhile: known here, or buried in the cache by whoever ended it
// after this request read the row.
func (s *Sessions) remember(ctx context.Context, sess Session) {
	ttl := min(cacheFor, sess.ExpiresAt.Sub(s.clock.Now()), sess.IdleDeadline().Sub(s.clock.Now()))
	if ttl <= 0 || s.ended.known(sess.ID) {
		return
	}
	b, _ := json.Marshal(cached{TenantID: sess.TenantID, UserID: sess.UserID, ExpiresAt: sess.ExpiresAt,
		LastSeenAt: sess.LastSeenAt, IdleSeconds: sess.IdleSeconds})
	if _, err := s.ended.cache.SetUnlessBuried(ctx, sessionKey(sess.UserID, sess.ID), b, ttl); err != nil {
		s.log.WarnContext(ctx, "session cache unavailable; sessions are checked in the database", "err", err)
	}
}

// End ends one session of the tenant (logout). Ending an absent session is not an error.
func (s *Sessions) End(ctx context.Context, tenantID, sessionID string) error {
	_, err := s.endWhere(ctx, tenantID, "logout", "s.tenant_id = ? AND s.id = ?", tenantID, sessionID)
	return err
}

// RevokeUser ends every session of a user and returns how many there were.
func (s *Sessions) RevokeUser(ctx context.Context, tenantID, userID string) (int, error) {
	return s.endWhere(ctx, tenantID, "revoked", "s.tenant_id = ? AND s.user_id = ?", tenantID, userID)
}

// EndSAMLSessions ends the SAML sessions signed in with nameID that sessionIndexes
// name (Single Logout, SAML core §3.7.3.2). No index ends all of them, and so does an
// index longer than a session keeps, which could never match: a logout the IdP asked
// for never ends none of them. The NameID, not a user, identifies them: people found by
// their email attribute sign in with an opaque NameID that matches no user field.
func (s *Sessions) EndSAMLSessions(ctx context.Context, tenantID, nameID string, sessionIndexes []string) (int, error) {
	where, args := "s.tenant_id = ? AND s.method = 'saml' AND s.saml_name_id = ?", []any{tenantID, truncate(nameID, maxNameIDLen)}
	if len(sessionIndexes) > 0 && !slices.ContainsFunc(sessionIndexes, func(i string) bool { return len(i) > maxSessionIndexLen }) {
		where, args = where+" AND s.saml_session_index IN (?)", append(args, bun.In(sessionIndexes))
	}
	return s.endWhere(ctx, tenantID, "saml_logout", where, args...)
}

// endWhere ends the matching sessions: rows, tombstones and one session.revoked audit
// event per person (naming the sessions it ended) in a transaction, then the cache
// purge. Only after the purge does it return, so the caller can promise the sessions
// are gone everywhere. Ending no session records nothing.
func (s *Sessions) endWhere(ctx context.Context, tenantID, reason, where string, args ...any) (int, error) {
	var gone []Session
	err := db.RunInTx(ctx, s.db, func(ctx context.Context, tx bun.Tx) error {
		var err error
		if gone, err = endTx(ctx, tx, s.clock.Now(), where, args...); err != nil {
			return err
		}
		byUser := map[string][]string{}
		var order []string
		for _, g := range gone {
			if _, ok := byUser[g.UserID]; !ok {
				order = append(order, g.UserID)
			}
			byUser[g.UserID] = append(byUser[g.UserID], g.ID)
		}
		for _, userID := range order {
			ended := byUser[userID]
			err := s.audit.Record(ctx, tx, audit.Event{TenantID: tenantID, Action: "session.revoked",
				Target: audit.Target{Type: "user", ID: userID, Display: userNameOf(ctx, tx, userID)},
				Changes: map[string]audit.Change{"reason": {After: reason}, "sessions": {After: ended},
					"sessionsRevoked": {After: len(ended)}}})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	s.ended.purge(ctx, gone)
	return len(gone), nil
}

// userNameOf returns a user's userName for an audit target, or "" when it cannot be
// read (the event is still recorded, by id).
func userNameOf(ctx context.Context, idb bun.IDB, userID string) string {
	var name string
	if err := idb.NewSelect().Model((*User)(nil)).Column("user_name").Where("id = ?", userID).Scan(ctx, &name); err != nil {
		return ""
	}
	return name
}

// ListForUser returns a user's live sessions, newest first.
func (s *Sessions) ListForUser(ctx context.Context, tenantID, userID string) ([]Session, error) {
	var out []Session
	now := s.clock.Now()
	err := s.db.NewSelect().Model(&out).Where("s.tenant_id = ? AND s.user_id = ? AND s.expires_at > ?", tenantID, userID, now).
		OrderExpr("s.id DESC").Scan(ctx)
	live := out[:0]
	for _, x := range out {
		if x.aliveAt(now) {
			live = append(live, x)
		}
	}
	return live, err
}

// Session returns one session of the tenant.
func (s *Sessions) Session(ctx context.Context, tenantID, sessionID string) (Session, error) {
	var out Session
	err := s.db.NewSelect().Model(&out).Where("s.tenant_id = ? AND s.id = ?", tenantID, sessionID).Scan(ctx)
	if db.IsNoRows(err) {
		return Session{}, apperr.NotFound("no session %q", sessionID)
	}
	return out, err
}
