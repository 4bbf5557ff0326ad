// Package scim is the SCIM 2.0 (RFC 7643/7644) transport: discovery, Users, Groups,
// filtering, paging, PATCH and the SCIM error format. It translates the protocol to
// calls on the identity and access modules and back; the rules live there.
package scim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/gatehouse-dev/gatehouse/modules/access"
	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/identity"
	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
	"github.com/gatehouse-dev/gatehouse/modules/platform/ratelimit"
	"github.com/gatehouse-dev/gatehouse/modules/platform/reqmeta"
	"github.com/gatehouse-dev/gatehouse/modules/scim/internal/schema"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

// Limits advertised in /ServiceProviderConfig and enforced.
const (
	// MaxResults is the largest page; larger counts are clamped to it (RFC 7644 §3.4.2.4).
	MaxResults = 1000
	// DefaultCount is the page size when the client gives none.
	DefaultCount = 100
	// MaxPatchOperations bounds one PATCH request.
	MaxPatchOperations = 1000
)

// MediaType is the SCIM media type of every response.
const MediaType = "application/scim+json"

// Config is what the SCIM transport needs from the composition root.
type Config struct {
	// BaseURL is the absolute public URL of the SCIM root, e.g. https://id.example.com/scim/v2.
	BaseURL string
	// MaxBodyBytes bounds every request body (413 past it).
	MaxBodyBytes int64
	// Limiter, when set, holds each tenant's request budget (429 past it); RateLimit is
	// the budget in requests per second of tenants without their own, the burst twice it.
	Limiter   ratelimit.Limiter
	RateLimit int
}

// Handler serves /scim/v2.
type Handler struct {
	cfg      Config
	log      *slog.Logger
	tenancy  *tenancy.Service
	identity *identity.Service
	access   *access.Service
	registry *schema.Registry
	regs     registries // per-tenant User registries, see extensions.go
	mux      *http.ServeMux
}

// New returns the SCIM handler; mount it with http.StripPrefix of the SCIM root path.
func New(cfg Config, log *slog.Logger, t *tenancy.Service, id *identity.Service, ac *access.Service) (*Handler, error) {
	reg, err := schema.NewRegistry()
	if err != nil {
		return nil, err
	}
	h := &Handler{cfg: cfg, log: log, tenancy: t, identity: id, access: ac, registry: reg, mux: http.NewServeMux()}
	h.routes()
	return h, nil
}

func (h *Handler) routes() {
	m := h.mux
	m.HandleFunc("GET /ServiceProviderConfig", h.serviceProviderConfig)
	m.HandleFunc("GET /ResourceTypes", h.resourceTypes)
	m.HandleFunc("GET /ResourceTypes/{name}", h.resourceType)
	m.HandleFunc("GET /Schemas", h.schemas)
	m.HandleFunc("GET /Schemas/{urn}", h.schema)

	m.HandleFunc("POST /Users", h.createUser)
	m.HandleFunc("GET /Users", h.listUsers)
	m.HandleFunc("POST /Users/.search", h.searchUsers)
	m.HandleFunc("GET /Users/{id}", h.getUser)
	m.HandleFunc("PUT /Users/{id}", h.replaceUser)
	m.HandleFunc("PATCH /Users/{id}", h.patchUser)
	m.HandleFunc("DELETE /Users/{id}", h.deleteUser)

	m.HandleFunc("POST /Groups", h.groupsOnly(h.createGroup))
	m.HandleFunc("GET /Groups", h.groupsOnly(h.listGroups))
	m.HandleFunc("POST /Groups/.search", h.groupsOnly(h.searchGroups))
	m.HandleFunc("GET /Groups/{id}", h.groupsOnly(h.getGroup))
	m.HandleFunc("PUT /Groups/{id}", h.groupsOnly(h.replaceGroup))
	m.HandleFunc("PATCH /Groups/{id}", h.groupsOnly(h.patchGroup))
	m.HandleFunc("DELETE /Groups/{id}", h.groupsOnly(h.deleteGroup))

	m.HandleFunc("POST /Bulk", h.bulk)

	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.writeError(w, r, apperr.NotFound("no SCIM endpoint %s %s; see %s/ResourceTypes", r.Method, r.URL.Path, h.cfg.BaseURL))
	})
}

type principalKey struct{}

// principal returns the authenticated SCIM principal of the request.
func principal(ctx context.Context) tenancy.SCIMPrincipal {
	p, _ := ctx.Value(principalKey{}).(tenancy.SCIMPrincipal)
	return p
}

func tenantID(r *http.Request) string { return principal(r.Context()).Tenant.ID }

// ServeHTTP authenticates the bearer token (the tenant comes from it and nothing else),
// bounds the body and dispatches.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	auth := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse-scim"`)
		h.writeError(w, r, apperr.Unauthenticated("send the tenant's SCIM token as \"Authorization: Bearer <token>\""))
		return
	}
	p, err := h.tenancy.AuthenticateSCIM(r.Context(), strings.TrimSpace(token))
	if err != nil {
		if apperr.Is(err, apperr.KindUnauthenticated) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse-scim", error="invalid_token"`)
		}
		h.writeError(w, r, err)
		return
	}
	if h.overLimit(w, r, p.Tenant) {
		return
	}
	if strings.IndexByte(r.URL.Path, 0) >= 0 {
		// No resource id holds U+0000 (the stores could not even look one up).
		h.writeError(w, r, apperr.NotFound("no SCIM resource at %q", r.URL.Path))
		return
	}
	ctx := context.WithValue(r.Context(), principalKey{}, p)
	ctx = audit.WithActor(ctx, audit.Actor{Type: audit.ActorSCIMToken, ID: p.TokenID, Name: p.TokenName})
	if r.Body != nil {
		limit := h.cfg.MaxBodyBytes
		if r.URL.Path == "/Bulk" {
			limit = MaxBulkPayloadBytes
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
	}
	h.mux.ServeHTTP(w, r.WithContext(ctx))
}

// overLimit takes the request from the tenant's budget; past it, it answers 429 with
// Retry-After and says so.
func (h *Handler) overLimit(w http.ResponseWriter, r *http.Request, t tenancy.Tenant) bool {
	rate := t.SCIMRateLimit
	if rate == 0 {
		rate = h.cfg.RateLimit
	}
	if h.cfg.Limiter == nil || rate <= 0 {
		return false
	}
	res := h.cfg.Limiter.Allow(r.Context(), "scim:"+t.ID, ratelimit.Limit{Rate: rate, Burst: 2 * rate})
	if res.Allowed {
		return false
	}
	secs := max(int(math.Ceil(res.RetryAfter.Seconds())), 1)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	writeJSON(w, http.StatusTooManyRequests, map[string]any{
		"schemas": []string{errorURN},
		"status":  strconv.Itoa(http.StatusTooManyRequests),
		"detail": fmt.Sprintf("this tenant's SCIM rate limit of %d requests per second (bursts up to %d) is used up; retry after %d second(s)",
			rate, 2*rate, secs),
	})
	return true
}

// groupsOnly refuses /Groups to tenants whose plan lacks user groups.
func (h *Handler) groupsOnly(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := groupsAllowed(r.Context()); err != nil {
			h.writeError(w, r, err)
			return
		}
		next(w, r)
	}
}

// groupsAllowed says whether the request's tenant may use /Groups.
func groupsAllowed(ctx context.Context) error {
	if !principal(ctx).Tenant.Has(tenancy.FeatureUserGroups) {
		return apperr.Forbidden("this tenant's plan does not include user groups; ask the application's administrator to enable the user_groups feature")
	}
	return nil
}

// Error URNs and helpers (RFC 7644 §3.12).
const (
	errorURN        = "urn:ietf:params:scim:api:messages:2.0:Error"
	listResponseURN = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	searchURN       = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
)

func statusOf(err error) (int, string) {
	scimType := apperr.CodeOf(err)
	switch apperr.KindOf(err) {
	case apperr.KindInvalid:
		if scimType == "" {
			scimType = "invalidValue"
		}
		return http.StatusBadRequest, scimType
	case apperr.KindNotFound:
		return http.StatusNotFound, ""
	case apperr.KindConflict:
		if scimType == "" {
			scimType = "uniqueness"
		}
		return http.StatusConflict, scimType
	case apperr.KindUnauthenticated:
		return http.StatusUnauthorized, ""
	case apperr.KindForbidden:
		return http.StatusForbidden, ""
	case apperr.KindPreconditionFailed:
		return http.StatusPreconditionFailed, ""
	case apperr.KindUnavailable:
		return http.StatusServiceUnavailable, ""
	}
	return http.StatusInternalServerError, ""
}

// writeError writes err in the SCIM error format. Internal errors are logged with the
// request id and shown only as "internal error".
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, body := h.errorBody(r.Context(), r.Method, r.URL.Path, err)
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	writeJSON(w, status, body)
}

// errorBody is the status and SCIM error body for err (also a Bulk operation's
// "response"); internal errors are logged with the request id, method and path.
func (h *Handler) errorBody(ctx context.Context, method, path string, err error) (int, map[string]any) {
	status, scimType := statusOf(err)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		status, scimType = http.StatusRequestEntityTooLarge, ""
		err = apperr.Invalid("the request body is larger than %d bytes", mbe.Limit)
	}
	if status >= 500 {
		h.log.ErrorContext(ctx, "scim request failed", "request_id", reqmeta.From(ctx).RequestID,
			"method", method, "path", path, "err", err)
	}
	body := map[string]any{
		"schemas": []string{errorURN},
		"status":  strconv.Itoa(status),
		"detail":  apperr.PublicMessage(err),
	}
	if scimType != "" {
		body["scimType"] = scimType
	}
	return status, body
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", MediaType)
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// decodeBody reads a JSON request body into a generic map, numbers as json.Number.
func decodeBody(r *http.Request) (map[string]any, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/scim+json" && mt != "application/json") {
			return nil, apperr.Invalid("Content-Type %q is not supported: send application/scim+json or application/json", ct).WithCode("invalidSyntax")
		}
	}
	dec := json.NewDecoder(r.Body)
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, err
		}
		return nil, apperr.Invalid("the request body is not a JSON object: %v", err).WithCode("invalidSyntax")
	}
	if dec.More() {
		return nil, apperr.Invalid("the request body has data after the JSON object").WithCode("invalidSyntax")
	}
	if m == nil {
		return nil, apperr.Invalid("the request body must be a JSON object").WithCode("invalidSyntax")
	}
	return m, nil
}

func (h *Handler) location(rt, id string) string {
	return h.cfg.BaseURL + "/" + rt + "s/" + id
}

func etag(version int64) string { return `W/"` + strconv.FormatInt(version, 10) + `"` }

// ifMatchVersion parses If-Match. It returns 0 when absent or "*"; a value that is not
// one of our ETags can never match, so it yields -1 (412 on any resource).
func ifMatchVersion(r *http.Request) int64 { return parseVersion(r.Header.Get("If-Match")) }

// parseVersion reads an If-Match value or a Bulk operation's "version" the same way.
func parseVersion(v string) int64 {
	v = strings.TrimSpace(v)
	if v == "" || v == "*" {
		return 0
	}
	v = strings.TrimPrefix(v, "W/")
	n, err := strconv.ParseInt(strings.Trim(v, `"`), 10, 64)
	if err != nil || n <= 0 {
		return -1
	}
	return n
}

// notModified answers 304 when If-None-Match names the current version.
func notModified(w http.ResponseWriter, r *http.Request, version int64) bool {
	inm := r.Header.Get("If-None-Match")
	if inm == "" {
		return false
	}
	tag := etag(version)
	for _, t := range strings.Split(inm, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || t == tag || "W/"+t == tag {
			w.Header().Set("ETag", tag)
			w.WriteHeader(http.StatusNotModified)
			return true
		}
	}
	return false
}
