package sso

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/identity"
	"github.com/gatehouse-dev/gatehouse/modules/keys"
	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
	"github.com/gatehouse-dev/gatehouse/modules/platform/reqmeta"
)

// Principal authenticates a request: the token comes from "Authorization: Bearer" (API
// clients) or the session cookie (browsers), and its session must be alive. ok is false
// when the request carries no credential at all. Cookie-authenticated requests that
// change state must come from this site (Origin, or Referer when a browser sends no
// Origin), which stops cross-site request forgery; Bearer requests carry no ambient
// credential and need no such check.
func (h *Handler) Principal(r *http.Request) (p identity.Principal, ok bool, err error) {
	token, fromCookie := bearer(r), false
	if token == "" {
		if c, err := r.Cookie(SessionCookie); err == nil {
			token, fromCookie = c.Value, true
		}
	}
	if token == "" {
		return identity.Principal{}, false, nil
	}
	if fromCookie && !safeMethod(r.Method) && !h.sameOrigin(r) {
		return identity.Principal{}, true, apperr.Forbidden("cross-site request refused: a cookie-authenticated request that changes state must come from %s", h.origin())
	}
	p, err = h.sessions.Authenticate(r.Context(), token)
	return p, true, err
}

// Authenticate is middleware for the endpoints a signed-in person calls: it refuses a
// request without a valid credential and puts the principal (and the audit actor) in
// the request context.
func (h *Handler) Authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok, err := h.Principal(r)
		if !ok {
			err = apperr.Unauthenticated("sign in first: send the session cookie or an Authorization: Bearer token")
		}
		if err != nil {
			writeJSONError(w, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
	})
}

// WithPrincipal returns ctx carrying p as the request's principal and audit actor.
func WithPrincipal(ctx context.Context, p identity.Principal) context.Context {
	ctx = identity.WithPrincipal(ctx, p)
	return audit.WithActor(ctx, audit.Actor{Type: audit.ActorUser, ID: p.UserID})
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

func (h *Handler) origin() string {
	return h.cfg.PublicURL.Scheme + "://" + h.cfg.PublicURL.Host
}

func (h *Handler) sameOrigin(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" {
		return o == h.origin()
	}
	if ref := r.Header.Get("Referer"); ref != "" {
		u, err := url.Parse(ref)
		return err == nil && u.Scheme+"://"+u.Host == h.origin()
	}
	return false
}

func clientIP(r *http.Request) string {
	if ip := reqmeta.From(r.Context()).RemoteIP; ip != "" {
		return ip
	}
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	return host
}

type sessionJSON struct {
	ID         string    `json:"id"`
	CreatedAt  time.Time `json:"createdAt"`
	ExpiresAt  time.Time `json:"expiresAt"`
	LastSeenAt time.Time `json:"lastSeenAt"`
	IP         string    `json:"ip"`
	UserAgent  string    `json:"userAgent"`
	Method     string    `json:"method"`
	Current    bool      `json:"current"`
}

func toSessionJSON(s identity.Session, current string) sessionJSON {
	return sessionJSON{ID: s.ID, CreatedAt: s.CreatedAt, ExpiresAt: s.ExpiresAt, LastSeenAt: s.LastSeenAt,
		IP: s.IP, UserAgent: s.UserAgent, Method: s.Method, Current: s.ID == current}
}

// whoami answers who the token belongs to.
func (h *Handler) whoami(w http.ResponseWriter, r *http.Request) {
	p, _ := identity.PrincipalFrom(r.Context())
	u, err := h.identity.GetUser(r.Context(), p.TenantID, p.UserID)
	if err != nil {
		writeJSONError(w, err)
		return
	}
	t, err := h.tenancy.Tenant(r.Context(), p.TenantID)
	if err != nil {
		writeJSONError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"user":    map[string]any{"id": u.ID, "userName": u.UserName, "displayName": u.DisplayName, "email": u.PrimaryEmail()},
		"tenant":  map[string]any{"id": t.ID, "slug": t.Slug, "name": t.Name},
		"session": map[string]any{"id": p.SessionID, "expiresAt": p.ExpiresAt},
	})
}

// listSessions lists the caller's own live sessions.
func (h *Handler) listSessions(w http.ResponseWriter, r *http.Request) {
	p, _ := identity.PrincipalFrom(r.Context())
	ss, err := h.sessions.ListForUser(r.Context(), p.TenantID, p.UserID)
	if err != nil {
		writeJSONError(w, err)
		return
	}
	out := make([]sessionJSON, len(ss))
	for i, s := range ss {
		out[i] = toSessionJSON(s, p.SessionID)
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": out})
}

// logout ends the caller's session and clears the cookie.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	p, _ := identity.PrincipalFrom(r.Context())
	if err := h.sessions.End(r.Context(), p.TenantID, p.SessionID); err != nil {
		writeJSONError(w, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		Secure: h.secure(), SameSite: http.SameSiteLaxMode})
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// jwks publishes the session-token verification keys (next, active and previous), so
// a service holding a token can check its signature without calling Gatehouse. The
// signature alone does not say the session is still alive: /auth/session does.
func (h *Handler) jwks(w http.ResponseWriter, r *http.Request) {
	ks, err := h.keys.Published(r.Context(), keys.PurposeSession)
	if err != nil {
		writeJSONError(w, err)
		return
	}
	out := []jwk{}
	for _, k := range ks {
		pub, ok := k.Public.(ed25519.PublicKey)
		if !ok {
			continue
		}
		out = append(out, jwk{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(pub), Kid: k.ID, Alg: "EdDSA", Use: "sig"})
	}
	w.Header().Set("Cache-Control", "max-age=300")
	writeJSON(w, http.StatusOK, map[string]any{"keys": out})
}
