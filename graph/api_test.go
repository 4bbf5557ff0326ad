package graph_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/graph"
	"github.com/gatehouse-dev/gatehouse/modules/access"
	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/identity"
	"github.com/gatehouse-dev/gatehouse/modules/keys"
	"github.com/gatehouse-dev/gatehouse/modules/platform/bus"
	"github.com/gatehouse-dev/gatehouse/modules/platform/cache"
	"github.com/gatehouse-dev/gatehouse/modules/platform/clock"
	"github.com/gatehouse-dev/gatehouse/modules/platform/httpmw"
	"github.com/gatehouse-dev/gatehouse/modules/sso"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

// api is the GraphQL endpoint over real HTTP with the real modules, authenticated by
// real session tokens.
type api struct {
	t        *testing.T
	db       *bun.DB
	srv      *httptest.Server
	tenancy  *tenancy.Service
	identity *identity.Service
	sessions *identity.Sessions
	access   *access.Service
	audit    *audit.Log
	keys     *keys.Store
	queries  *atomic.Int64 // SQL statements run, for the dataloader test
	logs     *logBuffer    // what the server logged
}

// logBuffer collects the server's log lines; requests log from their own goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type queryCounter struct{ n *atomic.Int64 }

// BeforeQuery counts the statements requests run; the background work of the server
// (the audit relay, the ended-sessions poll) is not a request's.
func (c queryCounter) BeforeQuery(ctx context.Context, e *bun.QueryEvent) context.Context {
	switch q := strings.TrimSpace(e.Query); {
	case strings.Contains(q, "audit_outbox"), strings.Contains(q, "ended_sessions"),
		q == "BEGIN", q == "COMMIT", q == "ROLLBACK": // transaction brackets, counted by their statements
	default:
		c.n.Add(1)
	}
	return ctx
}
func (queryCounter) AfterQuery(context.Context, *bun.QueryEvent) {}

func newAPI(t *testing.T, bdb *bun.DB) *api { return newAPIOn(t, bdb, bus.NewMemory()) }

// newAPIOn is newAPI with live events on the given bus (Redis for cross-replica tests).
func newAPIOn(t *testing.T, bdb *bun.DB, b bus.Bus) *api {
	t.Helper()
	clk := clock.System{}
	al := audit.New(clk)
	a := &api{t: t, db: bdb, queries: &atomic.Int64{}, logs: &logBuffer{}}
	log := slog.New(slog.NewTextHandler(a.logs, nil))
	c := cache.NewMemory()
	t.Cleanup(func() { c.Close() })
	bdb.AddQueryHook(queryCounter{a.queries})
	a.tenancy = tenancy.New(bdb, clk, al, noDNS{})
	a.identity = identity.New(bdb, clk, al, c, log)
	watch, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	a.identity.WatchEndedSessions(watch)
	ks, err := keys.New(bdb, clk, nil)
	if err != nil {
		t.Fatal(err)
	}
	a.keys = ks
	a.srv = httptest.NewUnstartedServer(nil)
	a.srv.Start()
	t.Cleanup(a.srv.Close)
	a.sessions = a.identity.Sessions(ks, identity.SessionsConfig{Issuer: a.srv.URL})
	a.access = access.New(bdb, clk, al, a.identity, access.WithTenancy(a.tenancy))
	a.identity.AnnounceEndedSessions(b)
	live := graph.NewLive(b, log)
	if err := live.Run(watch); err != nil {
		t.Fatal(err)
	}
	go al.RunRelay(watch, log, bdb, b, 10*time.Millisecond)
	a.audit = al
	pub, _ := url.Parse(a.srv.URL)
	authn := sso.New(sso.Config{PublicURL: pub, ClockSkew: time.Minute, MaxBodyBytes: 1 << 20}, log,
		sso.Deps{DB: bdb, Clock: clk, Cache: c, Audit: al, Tenancy: a.tenancy, Identity: a.identity, Sessions: a.sessions, Keys: ks})
	// As served: request ids, recovery and the access log around the endpoint.
	a.srv.Config.Handler = httpmw.Wrap(log, graph.NewHandler(&graph.Resolver{Tenancy: a.tenancy, Identity: a.identity,
		Sessions: a.sessions, Access: a.access, PublicURL: a.srv.URL, SP: authn, Audit: al, DB: bdb, Bus: b, Live: live, Log: log},
		graph.HandlerConfig{}, log, authn))
	return a
}

// org is a tenant with people in it, each with a session token.
type org struct {
	tenant tenancy.Tenant
	tokens map[string]string // userName -> session token
	ids    map[string]string // userName -> raw user id
}

// newOrg creates a tenant with an owner, an admin, a plain member and one custom-role
// user per permission, all signed in.
func (a *api) newOrg(slug string, mode tenancy.ProvisioningMode, features ...tenancy.Feature) *org {
	a.t.Helper()
	ctx := context.Background()
	t, err := a.tenancy.CreateTenant(ctx, tenancy.CreateTenantInput{Slug: slug, ProvisioningMode: mode, Features: features})
	if err != nil {
		a.t.Fatal(err)
	}
	it, err := a.tenancy.IssueSCIMToken(ctx, t.ID, "Okta production", 0)
	if err != nil {
		a.t.Fatal(err)
	}
	if _, err := a.tenancy.AuthenticateSCIM(ctx, it.Secret); err != nil { // the IdP has used it
		a.t.Fatal(err)
	}
	o := &org{tenant: t, tokens: map[string]string{}, ids: map[string]string{}}
	op := access.OperatorViewer(t.ID)
	for _, who := range []string{"owner", "admin", "member"} {
		o.add(a, who)
		if who != "member" {
			if err := a.access.SetUserRole(ctx, op, o.ids[who], who); err != nil {
				a.t.Fatal(err)
			}
		}
	}
	for _, p := range access.AllPermissions {
		role, err := a.access.CreateRole(ctx, op, "only "+string(p), []access.Permission{p})
		if err != nil {
			a.t.Fatal(err)
		}
		o.add(a, string(p))
		if err := a.access.SetUserRole(ctx, op, o.ids[string(p)], role.ID); err != nil {
			a.t.Fatal(err)
		}
	}
	return o
}

// add creates a SCIM-provisioned user named who@<slug>.test and signs them in.
func (o *org) add(a *api, who string) {
	a.t.Helper()
	ctx := context.Background()
	u, err := a.identity.CreateUser(ctx, o.tenant.ID, identity.User{UserName: who + "@" + o.tenant.Slug + ".test", Active: true,
		DisplayName: strings.ToUpper(who[:1]) + who[1:]})
	if err != nil {
		a.t.Fatal(err)
	}
	_, tok, err := a.sessions.Start(ctx, identity.NewSession{TenantID: o.tenant.ID, UserID: u.ID, IdleTimeout: time.Hour, MaxLife: time.Hour, Method: "saml"})
	if err != nil {
		a.t.Fatal(err)
	}
	o.tokens[who], o.ids[who] = tok, u.ID
}

type result struct {
	Status    int
	RequestID string
	Data      map[string]any
	Errors    []struct {
		Message    string
		Path       []any
		Extensions map[string]any
	}
}

func (r result) code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	c, _ := r.Errors[0].Extensions["code"].(string)
	return c
}

// gql posts a query with a Bearer token ("" = anonymous).
func (a *api) gql(token, q string, vars map[string]any) result {
	a.t.Helper()
	body, _ := json.Marshal(map[string]any{"query": q, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, a.srv.URL, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return a.do(req)
}

func (a *api) do(req *http.Request) result {
	a.t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := result{Status: res.StatusCode, RequestID: res.Header.Get(httpmw.RequestIDHeader)}
	if err := json.Unmarshal(raw, &r); err != nil {
		a.t.Fatalf("response is not JSON: %s", raw)
	}
	return r
}

// must runs q and fails the test on any error.
func (a *api) must(token, q string, vars map[string]any) map[string]any {
	a.t.Helper()
	r := a.gql(token, q, vars)
	if len(r.Errors) > 0 {
		a.t.Fatalf("%s: %+v", q, r.Errors)
	}
	return r.Data
}

func gid(kind, raw string) string { return graph.GlobalID(kind, raw) }

// dig reads a dotted path out of decoded JSON.
func dig(v any, path string) any {
	for _, p := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[p]
		case []any:
			var i int
			fmt.Sscan(p, &i)
			if i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}
