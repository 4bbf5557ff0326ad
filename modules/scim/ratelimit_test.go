package scim_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/access"
	"github.com/gatehouse-dev/gatehouse/modules/platform/cache"
	"github.com/gatehouse-dev/gatehouse/modules/platform/clock"
	"github.com/gatehouse-dev/gatehouse/modules/platform/ids"
	"github.com/gatehouse-dev/gatehouse/modules/platform/ratelimit"
	"github.com/gatehouse-dev/gatehouse/modules/scim"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

// replica is another SCIM server on e's database with the given limiter, as a second
// replica of the deployment would be; it returns a copy of e that talks to it.
func (e *env) replica(lim ratelimit.Limiter, defaultRate int) *env {
	e.t.Helper()
	slogger := slog.New(slog.NewTextHandler(testWriter{e.t}, nil))
	acc := access.New(e.db, clock.System{}, e.audit, e.identity)
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	e.t.Cleanup(srv.Close)
	h, err := scim.New(scim.Config{BaseURL: srv.URL + "/scim/v2", MaxBodyBytes: 64 << 10, Limiter: lim, RateLimit: defaultRate},
		slogger, e.tenancy, e.identity, acc)
	if err != nil {
		e.t.Fatal(err)
	}
	mux.Handle("/scim/v2/", http.StripPrefix("/scim/v2", h))
	c := *e
	c.srv, c.base = srv, srv.URL+"/scim/v2"
	return &c
}

func (e *env) setSCIMRateLimit(t tenancy.Tenant, n int) {
	e.t.Helper()
	if _, err := e.tenancy.UpdateSettings(context.Background(), t.ID, tenancy.SettingsPatch{SCIMRateLimit: &n}); err != nil {
		e.t.Fatal(err)
	}
}

// tooMany checks a 429 in the SCIM error format with Retry-After in seconds.
func tooMany(t *testing.T, r resp) {
	t.Helper()
	r.must(t, 429)
	if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s < 1 {
		t.Fatalf("Retry-After %q", r.Header.Get("Retry-After"))
	}
	if r.str("schemas.0") != "urn:ietf:params:scim:api:messages:2.0:Error" || r.str("status") != "429" ||
		!strings.Contains(r.str("detail"), "1 requests per second") || !strings.Contains(r.str("detail"), "retry after") {
		t.Fatalf("429 body: %s", r.Raw)
	}
}

// TestRateLimit: past its budget a tenant gets 429 with Retry-After, other tenants do
// not, and two replicas on one Redis share the budget; the in-process limiter too.
func TestRateLimit(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		rc, err := cache.NewRedis(context.Background(), testenv.RedisURL(), "test:"+ids.New()+":")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rc.Close() })
		e := newEnv(t, bdb)
		for _, bad := range []int{-1, tenancy.MaxSCIMRateLimit + 1} {
			if _, err := e.tenancy.UpdateSettings(context.Background(), e.tenant.ID, tenancy.SettingsPatch{SCIMRateLimit: &bad}); err == nil {
				t.Fatalf("a SCIM rate limit of %d was accepted", bad)
			}
		}
		slogger := slog.New(slog.NewTextHandler(testWriter{t}, nil))
		for name, lims := range map[string][2]ratelimit.Limiter{
			"redis":  {ratelimit.NewRedis(rc.Client(), "test:"+ids.New()+":", slogger), nil},
			"memory": {ratelimit.NewMemory(), nil},
		} {
			t.Run(name, func(t *testing.T) {
				a := e.replica(lims[0], 1000)
				b := a
				if name == "redis" {
					// A second replica with its own limiter on the same Redis.
					b = e.replica(ratelimit.NewRedis(rc.Client(), lims[0].(*ratelimit.Redis).Prefix(), slogger), 1000)
				}
				ten, tok := e.newTenant("limited-" + name)
				e.setSCIMRateLimit(ten, 1) // 1 per second, bursts of 2
				_, otherTok := e.newTenant("other-" + name)
				// The burst of 2, spread over both replicas, then 429 on either.
				a.doAs(tok, "GET", "/Users", nil).must(t, 200)
				b.doAs(tok, "GET", "/Users", nil).must(t, 200)
				tooMany(t, a.doAs(tok, "GET", "/Users", nil))
				tooMany(t, b.doAs(tok, "GET", "/ServiceProviderConfig", nil))
				// Another tenant, on the deployment's default, is unaffected.
				for range 20 {
					a.doAs(otherTok, "GET", "/Users", nil).must(t, 200)
				}
				// An unauthenticated request is refused before it costs anything.
				a.doAs("nope", "GET", "/Users", nil).scimError(t, 401, "")
				// After the window Retry-After named, the tenant is served again.
				r := b.doAs(tok, "GET", "/Users", nil)
				if r.Status == 429 {
					wait, _ := strconv.Atoi(r.Header.Get("Retry-After"))
					time.Sleep(time.Duration(wait) * time.Second)
				}
				a.doAs(tok, "GET", "/Users", nil).must(t, 200)
			})
		}
	})
}
