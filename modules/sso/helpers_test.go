package sso_test

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/identity"
	"github.com/gatehouse-dev/gatehouse/modules/keys"
	"github.com/gatehouse-dev/gatehouse/modules/platform/cache"
	"github.com/gatehouse-dev/gatehouse/modules/platform/clock"
	"github.com/gatehouse-dev/gatehouse/modules/platform/httpmw"
	"github.com/gatehouse-dev/gatehouse/modules/sso"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// env is a running sign-in stack over real HTTP: database, cache, modules and the sso
// handler behind the same middleware as the server.
type env struct {
	t        *testing.T
	db       *bun.DB
	cache    cache.Cache
	srv      *httptest.Server
	tenancy  *tenancy.Service
	identity *identity.Service
	sessions *identity.Sessions
	keys     *keys.Store
	tenant   tenancy.Tenant
}

var seq atomic.Int64

func newEnv(t *testing.T, bdb *bun.DB, c cache.Cache) *env {
	t.Helper()
	return startEnv(t, bdb, c, false)
}

// startEnv is newEnv, served over https when tls is set: the public URL is then https
// (Secure cookies), and clients must come from e.browser.
func startEnv(t *testing.T, bdb *bun.DB, c cache.Cache, tls bool) *env {
	t.Helper()
	ctx := context.Background()
	clk := clock.System{}
	al := audit.New(clk)
	srv := httptest.NewUnstartedServer(nil)
	if tls {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	pub, _ := url.Parse(srv.URL)
	ks, err := keys.New(bdb, clk, nil)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	e := &env{t: t, db: bdb, cache: c, srv: srv, keys: ks,
		tenancy:  tenancy.New(bdb, clk, al, net.DefaultResolver),
		identity: identity.New(bdb, clk, al, c, log)}
	watch, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	e.identity.WatchEndedSessions(watch)
	e.sessions = e.identity.Sessions(ks, identity.SessionsConfig{Issuer: srv.URL})
	h := sso.New(sso.Config{PublicURL: pub, ClockSkew: 3 * time.Minute, MaxBodyBytes: 256 << 10}, log,
		sso.Deps{DB: bdb, Clock: clk, Cache: c, Audit: al, Tenancy: e.tenancy, Identity: e.identity, Sessions: e.sessions, Keys: ks})
	srv.Config.Handler = httpmw.Wrap(log, h)
	e.tenant, err = e.tenancy.CreateTenant(ctx, tenancy.CreateTenantInput{Slug: fmt.Sprintf("acme-%d", seq.Add(1)), Name: "Acme"})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func memoryCache(t *testing.T) cache.Cache {
	m := cache.NewMemory()
	t.Cleanup(func() { m.Close() })
	return m
}

func redisCache(t *testing.T) cache.Cache { return testenv.Redis(t) }

// eachDBAndCache runs fn on SQLite and PostgreSQL, each with the in-process cache and
// with Redis: for the rules that rest on the cache (single-use requests, replay).
func eachDBAndCache(t *testing.T, fn func(t *testing.T, bdb *bun.DB, c cache.Cache)) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		t.Run("memory", func(t *testing.T) { fn(t, bdb, memoryCache(t)) })
		t.Run("redis", func(t *testing.T) { fn(t, bdb, redisCache(t)) })
	})
}

func (e *env) slug() string        { return e.tenant.Slug }
func (e *env) entityID() string    { return e.srv.URL + "/saml/" + e.slug() }
func (e *env) acs() string         { return e.srv.URL + "/saml/" + e.slug() + "/acs" }
func (e *env) loginURL() string    { return e.srv.URL + "/saml/" + e.slug() + "/login" }
func (e *env) metadataURL() string { return e.srv.URL + "/saml/" + e.slug() + "/metadata" }

func (e *env) configure(metadata []byte) {
	e.t.Helper()
	if _, err := e.tenancy.ConfigureSAML(context.Background(), e.tenant.ID, tenancy.SAMLConfigInput{MetadataXML: metadata}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) settings(p tenancy.SettingsPatch) {
	e.t.Helper()
	t, err := e.tenancy.UpdateSettings(context.Background(), e.tenant.ID, p)
	if err != nil {
		e.t.Fatal(err)
	}
	e.tenant = t
}

func (e *env) addUser(userName string, active bool) identity.User {
	e.t.Helper()
	u, err := e.identity.CreateUser(context.Background(), e.tenant.ID, identity.User{UserName: userName, Active: active,
		Values: []identity.Value{{Attr: identity.AttrEmails, Value: userName, Primary: true}}})
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

// browser is a cookie-keeping client that does not follow redirects, so each step of
// a login can be inspected.
func browser(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// browser is a browser that also trusts e's test certificate (for startEnv with tls).
func (e *env) browser() *http.Client {
	c := browser(e.t)
	c.Transport = e.srv.Client().Transport
	return c
}

// startLogin begins SP-initiated login in c and returns the AuthnRequest's ID.
func (e *env) startLogin(c *http.Client, returnTo string) string {
	e.t.Helper()
	resp, err := c.Get(e.loginURL() + "?return_to=" + url.QueryEscape(returnTo))
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		e.t.Fatalf("login: %s", resp.Status)
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	return e.requestID(loc)
}

// requestID returns the ID of the AuthnRequest in an HTTP-Redirect binding URL.
func (e *env) requestID(loc *url.URL) string {
	e.t.Helper()
	raw, err := base64.StdEncoding.DecodeString(loc.Query().Get("SAMLRequest"))
	if err != nil {
		e.t.Fatal(err)
	}
	xml, err := io.ReadAll(flate.NewReader(bytes.NewReader(raw)))
	if err != nil {
		e.t.Fatal(err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(xml); err != nil {
		e.t.Fatal(err)
	}
	return doc.Root().SelectAttrValue("ID", "")
}

// post sends a SAMLResponse to the ACS from c.
func (e *env) post(c *http.Client, samlResponse, relayState string) (*http.Response, string) {
	e.t.Helper()
	form := url.Values{"SAMLResponse": {samlResponse}}
	if relayState != "" {
		form.Set("RelayState", relayState)
	}
	resp, err := c.PostForm(e.acs(), form)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// whoami calls /auth/session with c's cookies and returns the status.
func (e *env) whoami(c *http.Client) int {
	e.t.Helper()
	resp, err := c.Get(e.srv.URL + "/auth/session")
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (e *env) failures() []string {
	e.t.Helper()
	var evs []audit.Stored
	if err := e.db.NewSelect().Model(&evs).Where("tenant_id = ? AND action = 'sso.login_failed'", e.tenant.ID).OrderExpr("id").Scan(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Changes["reason"].After.(string))
	}
	return out
}
