package sso_test

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/samltest"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/identity"
	"github.com/gatehouse-dev/gatehouse/modules/keys"
	"github.com/gatehouse-dev/gatehouse/modules/platform/cache"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

// signIn runs a crafted SP-initiated login for nameID and returns the browser holding
// the session and the session token.
func (e *env) signIn(idp *samltest.IdP, nameID string) (*http.Client, string) {
	e.t.Helper()
	b := browser(e.t)
	o := e.opts(e.startLogin(b, "/"))
	o.NameID = nameID
	resp, body := e.post(b, idp.Response(e.t, o), "")
	if resp.StatusCode != http.StatusSeeOther {
		e.t.Fatalf("sign-in of %s: %s %.300s", nameID, resp.Status, body)
	}
	return b, e.sessionToken(b)
}

// sessionToken returns the session token in b's cookie jar.
func (e *env) sessionToken(b *http.Client) string {
	e.t.Helper()
	u, _ := url.Parse(e.srv.URL)
	for _, c := range b.Jar.Cookies(u) {
		if c.Name == "gatehouse_session" {
			return c.Value
		}
	}
	e.t.Fatal("no session cookie")
	return ""
}

func (e *env) getJSON(path, token string, out any) int {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

// The session token works as a Bearer token for API clients, is verifiable with the
// published JWKS, and lists the caller's sessions.
func TestBearerTokenAndJWKS(t *testing.T) {
	testenv.EachDB(t, bearerTokenAndJWKS)
}

func bearerTokenAndJWKS(t *testing.T, bdb *bun.DB) {
	e, idp := crafted(t, bdb)
	_, token := e.signIn(idp, "ada@acme.test")
	e.signIn(idp, "ada@acme.test")

	var who struct {
		User   struct{ UserName string }
		Tenant struct{ Slug string }
	}
	if st := e.getJSON("/auth/session", token, &who); st != http.StatusOK || who.User.UserName != "ada@acme.test" || who.Tenant.Slug != e.slug() {
		t.Fatalf("/auth/session with Bearer = %d %+v", st, who)
	}
	var list struct {
		Sessions []struct {
			ID      string
			Current bool
		}
	}
	if st := e.getJSON("/auth/sessions", token, &list); st != http.StatusOK || len(list.Sessions) != 2 {
		t.Fatalf("/auth/sessions = %d %+v", st, list)
	}
	var jwks struct {
		Keys []struct{ Kid, Kty, Crv, X, Alg string }
	}
	if st := e.getJSON("/.well-known/jwks.json", "", &jwks); st != http.StatusOK || len(jwks.Keys) == 0 {
		t.Fatalf("JWKS = %d %+v", st, jwks)
	}
	parsed, err := jwt.Parse(token, func(tok *jwt.Token) (any, error) {
		for _, k := range jwks.Keys {
			if k.Kid == tok.Header["kid"] {
				x, _ := base64.RawURLEncoding.DecodeString(k.X)
				return ed25519.PublicKey(x), nil
			}
		}
		return nil, jwt.ErrTokenUnverifiable
	}, jwt.WithValidMethods([]string{"EdDSA"}))
	if err != nil || !parsed.Valid {
		t.Fatalf("the token does not verify with the JWKS: %v", err)
	}
	claims := parsed.Claims.(jwt.MapClaims)
	for _, c := range []string{"iss", "aud", "sub", "tid", "sid", "exp"} {
		if claims[c] == nil {
			t.Errorf("claim %s missing", c)
		}
	}
	if st := e.getJSON("/auth/session", token+"x", nil); st != http.StatusUnauthorized {
		t.Fatalf("a damaged token = %d; want 401", st)
	}
}

func TestJustInTimeCreation(t *testing.T) {
	testenv.EachDB(t, justInTimeCreation)
}

func justInTimeCreation(t *testing.T, bdb *bun.DB) {
	e, idp := crafted(t, bdb)
	ctx := context.Background()
	post := func(nameID string) (int, string) {
		b := browser(t)
		o := e.opts(e.startLogin(b, "/"))
		o.NameID = nameID
		o.Attributes = map[string][]string{"email": {nameID}, "firstName": {"Grace"}, "lastName": {"Hopper"}}
		resp, body := e.post(b, idp.Response(t, o), "")
		return resp.StatusCode, body
	}
	if st, body := post("grace@newco.test"); st != http.StatusForbidden || !strings.Contains(body, "no account") {
		t.Fatalf("JIT off: %d %.300s", st, body)
	}
	on := true
	e.settings(tenancy.SettingsPatch{JITProvisioning: &on})
	if st, body := post("grace@newco.test"); st != http.StatusForbidden || !strings.Contains(body, "verified") {
		t.Fatalf("JIT on, domain not verified: %d %.300s", st, body)
	}
	// A domain another tenant verified is not this tenant's: no account is made for it.
	other := newEnv(t, bdb, e.cache)
	if _, err := other.tenancy.AddDomain(ctx, other.tenant.ID, "elsewhere.test"); err != nil {
		t.Fatal(err)
	}
	if _, err := other.tenancy.VerifyDomain(ctx, other.tenant.ID, "elsewhere.test", tenancy.VerifyManual); err != nil {
		t.Fatal(err)
	}
	if st, body := post("linus@elsewhere.test"); st != http.StatusForbidden || !strings.Contains(body, "a domain this organization has verified") {
		t.Fatalf("JIT on, domain verified by another tenant: %d %.300s", st, body)
	}
	if _, err := e.identity.FindForSignIn(ctx, e.tenant.ID, "linus@elsewhere.test", ""); err == nil {
		t.Fatal("a user was created for a domain another tenant verified")
	}
	if _, err := e.tenancy.AddDomain(ctx, e.tenant.ID, "newco.test"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.tenancy.VerifyDomain(ctx, e.tenant.ID, "newco.test", tenancy.VerifyManual); err != nil {
		t.Fatal(err)
	}
	if st, body := post("grace@newco.test"); st != http.StatusSeeOther {
		t.Fatalf("JIT on, domain verified: %d %.300s", st, body)
	}
	u, err := e.identity.FindForSignIn(ctx, e.tenant.ID, "grace@newco.test", "")
	if err != nil || u.Source != identity.SourceSSO || u.GivenName != "Grace" || u.FamilyName != "Hopper" || !u.Active {
		t.Fatalf("JIT user: %+v %v", u, err)
	}
	n, _ := e.db.NewSelect().Table("audit_events").Where("tenant_id = ? AND action = 'user.created' AND target_id = ?", e.tenant.ID, u.ID).Count(ctx)
	if n != 1 {
		t.Fatalf("%d user.created events for the JIT user; want 1", n)
	}
	// A second sign-in uses the same user.
	if st, _ := post("grace@newco.test"); st != http.StatusSeeOther {
		t.Fatal("second JIT sign-in refused")
	}
}

func TestHomeRealmDiscovery(t *testing.T) {
	testenv.EachDB(t, homeRealmDiscovery)
}

func homeRealmDiscovery(t *testing.T, bdb *bun.DB) {
	e, _ := crafted(t, bdb)
	ctx := context.Background()
	e.tenancy.AddDomain(ctx, e.tenant.ID, "acme.test")
	if _, err := e.tenancy.VerifyDomain(ctx, e.tenant.ID, "acme.test", tenancy.VerifyManual); err != nil {
		t.Fatal(err)
	}
	c := browser(t)
	resp, err := c.Get(e.srv.URL + "/sso?email=" + url.QueryEscape("Ada@ACME.test") + "&return_to=/inbox")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/saml/"+e.slug()+"/login?return_to=%2Finbox" {
		t.Fatalf("discovery = %s to %q", resp.Status, resp.Header.Get("Location"))
	}
	// return_to passes through discovery only as a relative path on this host.
	for _, rt := range []string{"https://evil.test/", "//evil.test", "/\\evil.test"} {
		resp, err = c.Get(e.srv.URL + "/sso?email=ada@acme.test&return_to=" + url.QueryEscape(rt))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/saml/"+e.slug()+"/login?return_to=%2F" {
			t.Errorf("discovery with return_to %q = %s to %q", rt, resp.Status, resp.Header.Get("Location"))
		}
	}
	resp, _ = c.Get(e.srv.URL + "/sso?email=someone@unknown.test")
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown domain = %s; want 404", resp.Status)
	}
}

// The SP metadata names this tenant's entity ID and ACS and every published SP
// certificate, so an IdP that caches it accepts AuthnRequests across a key rotation.
func TestSPMetadataAndSignedRequests(t *testing.T) {
	testenv.EachDB(t, spMetadataAndSignedRequests)
}

func spMetadataAndSignedRequests(t *testing.T, bdb *bun.DB) {
	e, _ := crafted(t, bdb)
	ctx := context.Background()
	type md struct {
		EntityID string `xml:"entityID,attr"`
		SP       struct {
			AuthnRequestsSigned bool `xml:"AuthnRequestsSigned,attr"`
			Keys                []struct {
				Cert string `xml:"KeyInfo>X509Data>X509Certificate"`
			} `xml:"KeyDescriptor"`
			ACS []struct {
				Location string `xml:"Location,attr"`
			} `xml:"AssertionConsumerService"`
			SLO []struct {
				Binding  string `xml:"Binding,attr"`
				Location string `xml:"Location,attr"`
			} `xml:"SingleLogoutService"`
		} `xml:"SPSSODescriptor"`
	}
	read := func() md {
		var m md
		if err := xml.Unmarshal(fetch(t, e.metadataURL()), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	m := read()
	if m.EntityID != e.entityID() || len(m.SP.ACS) != 1 || m.SP.ACS[0].Location != e.acs() || len(m.SP.Keys) != 1 {
		t.Fatalf("metadata: %+v", m)
	}
	// Single Logout over both bindings, at one URL.
	slo := e.srv.URL + "/saml/" + e.slug() + "/slo"
	if len(m.SP.SLO) != 2 || m.SP.SLO[0].Binding != samltest.BindingHTTPRedirect || m.SP.SLO[1].Binding != samltest.BindingHTTPPost ||
		m.SP.SLO[0].Location != slo || m.SP.SLO[1].Location != slo {
		t.Fatalf("SingleLogoutService %+v; want HTTP-Redirect and HTTP-POST at %s", m.SP.SLO, slo)
	}
	ks := e.keys
	next, err := ks.Add(ctx, keys.PurposeSAML)
	if err != nil {
		t.Fatal(err)
	}
	if m = read(); len(m.SP.Keys) != 2 {
		t.Fatalf("after adding a next key the metadata lists %d certificates; want 2", len(m.SP.Keys))
	}

	// Signed AuthnRequests: the redirect carries SigAlg and a Signature over the query,
	// made with the active SP key.
	yes := true
	if _, err := e.tenancy.ConfigureSAML(ctx, e.tenant.ID, tenancy.SAMLConfigInput{SignRequests: &yes}); err != nil {
		t.Fatal(err)
	}
	if !read().SP.AuthnRequestsSigned {
		t.Fatal("metadata does not say AuthnRequestsSigned")
	}
	resp, err := browser(t).Get(e.loginURL())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	q := loc.Query()
	if q.Get("SigAlg") == "" || q.Get("Signature") == "" {
		t.Fatalf("redirect is not signed: %s", loc.RawQuery)
	}
	active, _ := ks.Active(ctx, keys.PurposeSAML)
	if active.ID == next.ID {
		t.Fatal("Add must not activate")
	}
	signed := "SAMLRequest=" + url.QueryEscape(q.Get("SAMLRequest")) + "&SigAlg=" + url.QueryEscape(q.Get("SigAlg"))
	sig, _ := base64.StdEncoding.DecodeString(q.Get("Signature"))
	sum := sha256.Sum256([]byte(signed))
	if err := rsa.VerifyPKCS1v15(active.Certificate.PublicKey.(*rsa.PublicKey), crypto.SHA256, sum[:], sig); err != nil {
		t.Fatalf("the AuthnRequest signature does not verify with the active SP certificate: %v", err)
	}
}

// When the replay cache cannot answer, sign-in is refused (fail closed), never let
// through unchecked.
func TestReplayCacheDownFailsClosed(t *testing.T) {
	testenv.EachDB(t, replayCacheDownFailsClosed)
}

func replayCacheDownFailsClosed(t *testing.T, bdb *bun.DB) {
	rs := testenv.StartRedis(t)
	c, err := cache.NewRedis(context.Background(), rs.URL(), "t:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	e := newEnv(t, bdb, c)
	idp := samltest.NewIdP(t, "https://idp.acme.test/entity")
	e.configure(idp.MetadataXML())
	e.addUser("ada@acme.test", true)
	on := true
	e.settings(tenancy.SettingsPatch{IdPInitiatedSSO: &on})
	doc := func() string { return idp.Response(t, e.opts("")) }
	if resp, body := e.post(browser(t), doc(), ""); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("control with Redis up: %s %.300s", resp.Status, body)
	}
	rs.Stop()
	time.Sleep(50 * time.Millisecond)
	resp, body := e.post(browser(t), doc(), "")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "replay cache is unavailable") {
		t.Fatalf("Redis down: %s %.300s; want 503 naming the replay cache", resp.Status, body)
	}
	// A signed LogoutRequest cannot be checked for reuse either.
	slo := e.srv.URL + "/saml/" + e.slug() + "/slo"
	resp, err = browser(t).Get(idp.LogoutRequestRedirect(t, slo, "", samltest.LogoutOptions{Destination: slo, NameID: "ada@acme.test"}))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "replay cache is unavailable") {
		t.Fatalf("LogoutRequest with Redis down: %s %.300s; want 503 naming the replay cache", resp.Status, b)
	}
}
