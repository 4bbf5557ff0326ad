// Package sso is the browser-facing sign-in transport: the SAML 2.0 service provider
// (metadata, SP- and IdP-initiated login, the assertion consumer, Single Logout),
// home-realm discovery, and the HTTP side of sessions (cookie and Bearer
// authentication, logout, the JWKS). Rules about who may sign in and what a session is
// live in identity and tenancy; this package checks SAML documents and speaks HTTP.
package sso

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/identity"
	"github.com/gatehouse-dev/gatehouse/modules/keys"
	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
	"github.com/gatehouse-dev/gatehouse/modules/platform/cache"
	"github.com/gatehouse-dev/gatehouse/modules/platform/clock"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

// Config is what the SSO transport needs from the deployment.
type Config struct {
	// PublicURL is the base URL browsers and IdPs reach this server at.
	PublicURL *url.URL
	// ClockSkew is how far an assertion's validity window may be off this clock.
	ClockSkew time.Duration
	// MaxBodyBytes bounds the ACS and SLO request bodies.
	MaxBodyBytes int64
}

// Handler serves every sign-in route.
type Handler struct {
	cfg      Config
	log      *slog.Logger
	db       bun.IDB
	clock    clock.Clock
	cache    cache.Cache
	audit    *audit.Log
	tenancy  *tenancy.Service
	identity *identity.Service
	sessions *identity.Sessions
	keys     *keys.Store
	mux      *http.ServeMux
}

// Deps are the modules the handler calls.
type Deps struct {
	DB       bun.IDB
	Clock    clock.Clock
	Cache    cache.Cache
	Audit    *audit.Log
	Tenancy  *tenancy.Service
	Identity *identity.Service
	Sessions *identity.Sessions
	Keys     *keys.Store
}

// New returns the handler. Mount it at the root: it answers /saml/…, /sso, /auth/… and
// /.well-known/jwks.json.
func New(cfg Config, log *slog.Logger, d Deps) *Handler {
	h := &Handler{cfg: cfg, log: log, db: d.DB, clock: d.Clock, cache: d.Cache, audit: d.Audit,
		tenancy: d.Tenancy, identity: d.Identity, sessions: d.Sessions, keys: d.Keys, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /saml/{tenant}/metadata", h.metadata)
	h.mux.HandleFunc("GET /saml/{tenant}/login", h.login)
	h.mux.HandleFunc("POST /saml/{tenant}/acs", h.acs)
	h.mux.HandleFunc("GET /saml/{tenant}/slo", h.slo)
	h.mux.HandleFunc("POST /saml/{tenant}/slo", h.slo)
	h.mux.HandleFunc("GET /sso", h.discover)
	h.mux.HandleFunc("GET /.well-known/jwks.json", h.jwks)
	h.mux.Handle("GET /auth/session", h.Authenticate(http.HandlerFunc(h.whoami)))
	h.mux.Handle("GET /auth/sessions", h.Authenticate(http.HandlerFunc(h.listSessions)))
	h.mux.Handle("POST /auth/logout", h.Authenticate(http.HandlerFunc(h.logout)))
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// Routes lists the path patterns the handler answers, for mounting.
var Routes = []string{"/saml/", "/sso", "/auth/", "/.well-known/jwks.json"}

// SessionCookie carries the session token in browsers.
const SessionCookie = "gatehouse_session"

func (h *Handler) secure() bool { return h.cfg.PublicURL.Scheme == "https" }

func (h *Handler) url(path string) string { return h.cfg.PublicURL.String() + path }

// The SP's URLs for a tenant. The entity ID is the metadata URL, which is what Entra's
// "Identifier (Entity ID)" and Okta's "Audience URI" are set to.
func (h *Handler) spEntityID(slug string) string { return h.url(tenancy.SAMLPaths(slug).EntityID) }
func (h *Handler) acsURL(slug string) string     { return h.url(tenancy.SAMLPaths(slug).ACS) }
func (h *Handler) sloURL(slug string) string     { return h.url(tenancy.SAMLPaths(slug).SLO) }

// safeReturnTo accepts only a relative path on this host, so a login link can never be
// turned into an open redirect. Anything else becomes "/".
func safeReturnTo(raw string) string {
	if raw == "" || len(raw) > 2048 || !strings.HasPrefix(raw, "/") || strings.HasPrefix(raw, "//") ||
		strings.ContainsAny(raw, "\\\r\n\t") {
		return "/"
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || !strings.HasPrefix(u.Path, "/") {
		return "/"
	}
	return u.RequestURI()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	if w.Header().Get("Cache-Control") == "" {
		w.Header().Set("Cache-Control", "no-store")
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeJSONError(w http.ResponseWriter, err error) {
	status, code := http.StatusInternalServerError, "INTERNAL"
	switch apperr.KindOf(err) {
	case apperr.KindUnauthenticated:
		status, code = http.StatusUnauthorized, "UNAUTHENTICATED"
		w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse"`)
	case apperr.KindForbidden:
		status, code = http.StatusForbidden, "FORBIDDEN"
	case apperr.KindNotFound:
		status, code = http.StatusNotFound, "NOT_FOUND"
	case apperr.KindUnavailable:
		status, code = http.StatusServiceUnavailable, "UNAVAILABLE"
	case apperr.KindInvalid:
		status, code = http.StatusBadRequest, "INVALID"
	}
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": apperr.PublicMessage(err)}})
}

func (h *Handler) recordFailure(ctx context.Context, t tenancy.Tenant, reason string) {
	err := h.audit.Record(ctx, h.db, audit.Event{TenantID: t.ID, Action: "sso.login_failed",
		Target:  audit.Target{Type: "tenant", ID: t.ID, Display: t.Slug},
		Changes: map[string]audit.Change{"reason": {After: reason}}})
	if err != nil {
		h.log.ErrorContext(ctx, "cannot record a failed sign-in", "err", err)
	}
}
