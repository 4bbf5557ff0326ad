package scim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/access"
	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/identity"
	"github.com/gatehouse-dev/gatehouse/modules/keys"
	"github.com/gatehouse-dev/gatehouse/modules/platform/cache"
	"github.com/gatehouse-dev/gatehouse/modules/platform/clock"
	"github.com/gatehouse-dev/gatehouse/modules/scim"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// env is a SCIM server over real HTTP on one database, with one tenant and its token.
type env struct {
	t        *testing.T
	db       *bun.DB
	srv      *httptest.Server
	base     string
	token    string
	tenant   tenancy.Tenant
	tenancy  *tenancy.Service
	audit    *audit.Log
	cache    cache.Cache
	identity *identity.Service
	sessions *identity.Sessions
}

// testWriter sends the server's log to the test's log, shown when a test fails.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

type noDNS struct{}

func (noDNS) LookupTXT(context.Context, string) ([]string, error) { return nil, nil }

func newEnv(t *testing.T, bdb *bun.DB) *env {
	t.Helper()
	c := cache.NewMemory()
	t.Cleanup(func() { c.Close() })
	return newEnvWithCache(t, bdb, c)
}

// newEnvWithCache is newEnv on a given session cache, with the session layer running as
// in the server (watching ended sessions), for the deprovisioning tests.
func newEnvWithCache(t *testing.T, bdb *bun.DB, c cache.Cache) *env {
	t.Helper()
	clk := clock.System{}
	log := audit.New(clk)
	slogger := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	ten := tenancy.New(bdb, clk, log, noDNS{})
	ids := identity.New(bdb, clk, log, c, slogger)
	watch, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	ids.WatchEndedSessions(watch)
	ks, err := keys.New(bdb, clk, nil)
	if err != nil {
		t.Fatal(err)
	}
	acc := access.New(bdb, clk, log, ids)
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	h, err := scim.New(scim.Config{BaseURL: srv.URL + "/scim/v2", MaxBodyBytes: 64 << 10}, slogger, ten, ids, acc)
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/scim/v2/", http.StripPrefix("/scim/v2", h))
	e := &env{t: t, db: bdb, srv: srv, base: srv.URL + "/scim/v2", tenancy: ten, audit: log, cache: c,
		identity: ids, sessions: ids.Sessions(ks, identity.SessionsConfig{Issuer: srv.URL})}
	e.tenant, e.token = e.newTenant("acme", tenancy.FeatureUserGroups)
	return e
}

func (e *env) newTenant(slug string, features ...tenancy.Feature) (tenancy.Tenant, string) {
	e.t.Helper()
	ctx := context.Background()
	ten, err := e.tenancy.CreateTenant(ctx, tenancy.CreateTenantInput{Slug: slug, Features: features})
	if err != nil {
		e.t.Fatal(err)
	}
	tok, err := e.tenancy.IssueSCIMToken(ctx, ten.ID, "test", 0)
	if err != nil {
		e.t.Fatal(err)
	}
	return ten, tok.Secret
}

// resp is a decoded HTTP response.
type resp struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    string
}

func (e *env) do(method, path string, body any, hdr ...string) resp {
	e.t.Helper()
	return e.doAs(e.token, method, path, body, hdr...)
}

func (e *env) doAs(token, method, path string, body any, hdr ...string) resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, e.base+path, rd)
	if rd != nil {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := resp{Status: res.StatusCode, Header: res.Header, Raw: string(raw)}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &r.Body); err != nil {
			e.t.Fatalf("%s %s: response is not JSON: %s", method, path, raw)
		}
		if ct := res.Header.Get("Content-Type"); ct != "application/scim+json" {
			e.t.Fatalf("%s %s: Content-Type %q", method, path, ct)
		}
	}
	return r
}

// must checks the status and returns the response.
func (r resp) must(t *testing.T, status int) resp {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Raw)
	}
	return r
}

// scimError checks a SCIM error response (RFC 7644 §3.12).
func (r resp) scimError(t *testing.T, status int, scimType string) resp {
	t.Helper()
	r.must(t, status)
	schemas, _ := r.Body["schemas"].([]any)
	if len(schemas) != 1 || schemas[0] != "urn:ietf:params:scim:api:messages:2.0:Error" {
		t.Fatalf("not a SCIM error: %s", r.Raw)
	}
	if s, _ := r.Body["status"].(string); s != itoa(status) {
		t.Fatalf("status field %v, want the string %q: %s", r.Body["status"], itoa(status), r.Raw)
	}
	if got, _ := r.Body["scimType"].(string); got != scimType {
		t.Fatalf("scimType %q, want %q: %s", got, scimType, r.Raw)
	}
	if d, _ := r.Body["detail"].(string); d == "" {
		t.Fatalf("no detail: %s", r.Raw)
	}
	return r
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// get reads a dotted path ("name.givenName", "emails.0.value") from a JSON object.
func get(m any, path string) any {
	cur := m
	for _, p := range strings.Split(path, ".") {
		switch c := cur.(type) {
		case map[string]any:
			cur = c[p]
		case []any:
			i := 0
			for _, ch := range p {
				i = i*10 + int(ch-'0')
			}
			if i >= len(c) {
				return nil
			}
			cur = c[i]
		default:
			return nil
		}
	}
	return cur
}

func (r resp) str(path string) string { s, _ := get(r.Body, path).(string); return s }

const enterpriseURN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

// ent reads a dotted path inside the enterprise extension (whose URN has dots).
func (r resp) ent(path string) string { s, _ := get(r.Body[enterpriseURN], path).(string); return s }

func (r resp) num(path string) int { f, _ := get(r.Body, path).(float64); return int(f) }

func (r resp) resources() []any { l, _ := r.Body["Resources"].([]any); return l }

// user returns a minimal valid user body.
func user(userName string, extra ...any) map[string]any {
	u := map[string]any{
		"schemas":  []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
		"userName": userName,
		"name":     map[string]any{"givenName": "Ada", "familyName": "Lovelace"},
		"emails":   []any{map[string]any{"value": userName, "type": "work", "primary": true}},
		"active":   true,
	}
	for i := 0; i+1 < len(extra); i += 2 {
		u[extra[i].(string)] = extra[i+1]
	}
	return u
}

func group(name string, members ...string) map[string]any {
	ms := []any{}
	for _, m := range members {
		ms = append(ms, map[string]any{"value": m})
	}
	return map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"}, "displayName": name, "members": ms}
}

func patchOp(ops ...map[string]any) map[string]any {
	l := make([]any, len(ops))
	for i, o := range ops {
		l[i] = o
	}
	return map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"}, "Operations": l}
}

func op(o, path string, value any) map[string]any {
	m := map[string]any{"op": o}
	if path != "" {
		m["path"] = path
	}
	if value != nil {
		m["value"] = value
	}
	return m
}
