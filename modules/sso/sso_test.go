package sso_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/samltest"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/platform/cache"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

// The whole journey against a real IdP (crewjam/saml's samlidp): SP metadata is read by
// the IdP, the browser is redirected there, signs in, the IdP's form posts to the ACS,
// and the session cookie then authenticates API calls until logout.
func TestRealIdPSPInitiatedLogin(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		for name, c := range map[string]func(t *testing.T) cache.Cache{"memory": memoryCache, "redis": redisCache} {
			t.Run(name, func(t *testing.T) {
				e := newEnv(t, bdb, c(t))
				idp := samltest.StartRealIdP(t)
				e.configure(idp.MetadataXML(t))
				idp.AddServiceProvider(t, "gatehouse", fetch(t, e.metadataURL()))
				idp.AddUser(t, "ada", "correct horse", "ada@acme.test", "Ada", "Lovelace")
				e.addUser("ada@acme.test", true)

				b := idp.Browser(t)
				resp, err := b.Get(e.loginURL() + "?return_to=" + url.QueryEscape("/projects/42?tab=files"))
				if err != nil {
					t.Fatal(err)
				}
				final := idp.SignIn(t, b, resp, "ada", "correct horse")
				body, _ := io.ReadAll(final.Body)
				final.Body.Close()
				if final.StatusCode != http.StatusSeeOther || final.Header.Get("Location") != "/projects/42?tab=files" {
					t.Fatalf("ACS answered %s (Location %q): %s; failures: %v", final.Status, final.Header.Get("Location"), body, e.failures())
				}
				if got := e.whoami(b); got != http.StatusOK {
					t.Fatalf("/auth/session with the session cookie = %d", got)
				}
				// Logout needs a same-origin request when authenticated by cookie.
				req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/auth/logout", nil)
				resp, _ = b.Do(req)
				resp.Body.Close()
				if resp.StatusCode != http.StatusForbidden {
					t.Fatalf("logout without Origin = %s; want 403 (CSRF)", resp.Status)
				}
				req, _ = http.NewRequest(http.MethodPost, e.srv.URL+"/auth/logout", nil)
				req.Header.Set("Origin", e.srv.URL)
				resp, _ = b.Do(req)
				resp.Body.Close()
				if resp.StatusCode != http.StatusNoContent {
					t.Fatalf("logout = %s", resp.Status)
				}
				if got := e.whoami(b); got != http.StatusUnauthorized {
					t.Fatalf("/auth/session after logout = %d; want 401", got)
				}
			})
		}
	})
}

// IdP-initiated sign-in through the real IdP: refused while the tenant has it off (the
// default), and with it on it ends in a session that authenticates.
func TestRealIdPInitiatedLogin(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		e := newEnv(t, bdb, memoryCache(t))
		idp := samltest.StartRealIdP(t)
		e.configure(idp.MetadataXML(t))
		idp.AddServiceProvider(t, "gatehouse", fetch(t, e.metadataURL()))
		idp.AddUser(t, "ada", "pw", "ada@acme.test", "Ada", "Lovelace")
		idp.AddShortcut(t, "gh", e.entityID(), "/welcome")
		e.addUser("ada@acme.test", true)

		signIn := func() (*http.Client, *http.Response) {
			b := idp.Browser(t)
			resp, err := b.Get(idp.IdPInitiatedURL("gh"))
			if err != nil {
				t.Fatal(err)
			}
			return b, idp.SignIn(t, b, resp, "ada", "pw")
		}
		b, resp := signIn()
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("IdP-initiated with the setting off = %s; want 403", resp.Status)
		}
		if f := e.failures(); len(f) != 1 || !strings.Contains(f[0], "unsolicited") {
			t.Fatalf("failures = %v", f)
		}
		if got := e.whoami(b); got != http.StatusUnauthorized {
			t.Fatalf("/auth/session after a refused IdP-initiated sign-in = %d; want 401", got)
		}
		on := true
		e.settings(tenancy.SettingsPatch{IdPInitiatedSSO: &on})
		b, resp = signIn()
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/welcome" {
			t.Fatalf("IdP-initiated with the setting on = %s to %q", resp.Status, resp.Header.Get("Location"))
		}
		if got := e.whoami(b); got != http.StatusOK {
			t.Fatalf("/auth/session after IdP-initiated sign-in = %d; want 200", got)
		}
	})
}

func fetch(t *testing.T, u string) []byte {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s %s", u, resp.Status, b)
	}
	return b
}

// crafted sets up a tenant whose IdP is a document-crafting samltest.IdP, with users
// ada@acme.test and admin@acme.com, on the in-process cache.
func crafted(t *testing.T, bdb *bun.DB) (*env, *samltest.IdP) {
	return craftedWith(t, bdb, memoryCache(t))
}

// craftedWith is crafted on the cache c.
func craftedWith(t *testing.T, bdb *bun.DB, c cache.Cache) (*env, *samltest.IdP) {
	e := newEnv(t, bdb, c)
	idp := samltest.NewIdP(t, "https://idp.acme.test/entity")
	e.configure(idp.MetadataXML())
	e.addUser("ada@acme.test", true)
	e.addUser("admin@acme.com", true)
	return e, idp
}

func (e *env) opts(reqID string) samltest.ResponseOptions {
	return samltest.ResponseOptions{Destination: e.acs(), Audience: e.entityID(), InResponseTo: reqID,
		NameID: "ada@acme.test", SignResponse: true, SignAssertion: true}
}

// One test per rule the ACS enforces beyond gosaml2's defaults, each with a real
// signed document. Every case has a control: the same setup with the rule satisfied
// signs in, so a refusal is caused by the rule alone.
func TestACSRefusals(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		e, idp := crafted(t, bdb)
		other := samltest.NewIdP(t, "https://idp.other.test/entity")
		now := time.Now()
		cases := []struct {
			name   string
			mut    func(o *samltest.ResponseOptions)
			ok     bool
			reason string
		}{
			{"control", nil, true, ""},
			{"control: assertion signed, response not", func(o *samltest.ResponseOptions) { o.SignResponse = false }, true, ""},
			{"wrong audience", func(o *samltest.ResponseOptions) { o.Audience = "https://someone-else.test/sp" }, false, "audience"},
			{"no AudienceRestriction", func(o *samltest.ResponseOptions) { o.NoAudienceRestriction = true }, false, "AudienceRestriction"},
			{"expired", func(o *samltest.ResponseOptions) {
				o.NotBefore, o.NotOnOrAfter = now.Add(-20*time.Minute), now.Add(-5*time.Minute)
			}, false, "expired"},
			{"conditions expired, subject confirmation still valid", func(o *samltest.ResponseOptions) {
				o.NotBefore, o.NotOnOrAfter = now.Add(-20*time.Minute), now.Add(-5*time.Minute)
				o.SubjectConfirmationNotOnOrAfter = now.Add(5 * time.Minute)
			}, false, "the assertion has expired (NotOnOrAfter"},
			{"expired within the skew", func(o *samltest.ResponseOptions) {
				o.NotBefore, o.NotOnOrAfter = now.Add(-20*time.Minute), now.Add(-1*time.Minute)
			}, true, ""},
			{"not yet valid beyond the skew", func(o *samltest.ResponseOptions) {
				o.NotBefore, o.NotOnOrAfter = now.Add(5*time.Minute), now.Add(20*time.Minute)
			}, false, "not valid yet"},
			{"not yet valid within the skew", func(o *samltest.ResponseOptions) {
				o.NotBefore, o.NotOnOrAfter = now.Add(1*time.Minute), now.Add(20*time.Minute)
			}, true, ""},
			{"two assertions", func(o *samltest.ResponseOptions) { o.TwoAssertions = true }, false, "exactly one"},
			{"signed response without Destination", func(o *samltest.ResponseOptions) { o.OmitDestination = true }, false, "Destination"},
			{"wrong issuer", func(o *samltest.ResponseOptions) { o.Issuer = "https://idp.evil.test/entity" }, false, "Issuer"},
			{"another IdP's key", func(o *samltest.ResponseOptions) { o.SignWith = other }, false, "signature"},
			{"tampered NameID", func(o *samltest.ResponseOptions) {
				o.Mutate = func(doc *etree.Document) {
					for _, el := range doc.FindElements("//NameID") {
						el.SetText("admin@acme.com")
					}
				}
			}, false, "signature"},
			{"comment-injected NameID", func(o *samltest.ResponseOptions) {
				o.NameID = "admin@acme.com.evil.com"
				o.Attributes = map[string][]string{}
				o.Mutate = func(doc *etree.Document) { samltest.InjectCommentInNameID(doc, len("admin@acme.com")) }
			}, false, "no account for admin@acme.com.evil.com"},
			{"error status", func(o *samltest.ResponseOptions) { o.StatusCode = samltest.StatusResponder }, false, "error status"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				b := browser(t)
				id := e.startLogin(b, "/after")
				o := e.opts(id)
				if tc.mut != nil {
					tc.mut(&o)
				}
				before := len(e.failures())
				resp, body := e.post(b, idp.Response(t, o), "")
				if tc.ok {
					if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/after" {
						t.Fatalf("want sign-in, got %s: %.400s", resp.Status, body)
					}
					if e.whoami(b) != http.StatusOK {
						t.Fatal("signed in but the session does not authenticate")
					}
					return
				}
				if resp.StatusCode == http.StatusSeeOther {
					t.Fatalf("signed in; want a refusal naming %q", tc.reason)
				}
				if !strings.Contains(body, tc.reason) {
					t.Errorf("page does not say %q: %.600s", tc.reason, body)
				}
				f := e.failures()
				if len(f) != before+1 || !strings.Contains(f[len(f)-1], tc.reason) {
					t.Errorf("audit sso.login_failed: %v", f[before:])
				}
				if e.whoami(b) != http.StatusUnauthorized {
					t.Error("a refused sign-in left a session")
				}
			})
		}
	})
}

// The request a response answers is bound to the browser that started it and used
// once; assertion IDs are remembered until they expire; redirects stay on this host.
// On both databases, with the in-process cache and with Redis.
func TestACSBindingAndReplay(t *testing.T) {
	eachDBAndCache(t, acsBindingAndReplay)
}

func acsBindingAndReplay(t *testing.T, bdb *bun.DB, c cache.Cache) {
	e, idp := craftedWith(t, bdb, c)
	idpInitiated := func(t *testing.T) {
		on := true
		e.settings(tenancy.SettingsPatch{IdPInitiatedSSO: &on})
		t.Cleanup(func() { off := false; e.settings(tenancy.SettingsPatch{IdPInitiatedSSO: &off}) })
	}

	t.Run("InResponseTo from another browser", func(t *testing.T) {
		a, b := browser(t), browser(t)
		id := e.startLogin(a, "/")
		e.startLogin(b, "/") // b has its own binding cookie
		resp, body := e.post(b, idp.Response(t, e.opts(id)), "")
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "another browser") {
			t.Fatalf("%s: %.400s", resp.Status, body)
		}
	})
	t.Run("InResponseTo nobody asked for", func(t *testing.T) {
		b := browser(t)
		e.startLogin(b, "/")
		resp, body := e.post(b, idp.Response(t, e.opts("_made-up-request-id")), "")
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "InResponseTo") {
			t.Fatalf("%s: %.400s", resp.Status, body)
		}
	})
	t.Run("unsolicited when IdP-initiated is off", func(t *testing.T) {
		resp, body := e.post(browser(t), idp.Response(t, e.opts("")), "")
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "unsolicited") {
			t.Fatalf("%s: %.400s", resp.Status, body)
		}
	})
	// Two different responses to one AuthnRequest, from the browser that started it
	// (its binding cookie put back after the first sign-in cleared it): the request is
	// consumed by the first, so the second answers nothing.
	t.Run("an AuthnRequest is answered once", func(t *testing.T) {
		b := browser(t)
		id := e.startLogin(b, "/")
		u, _ := url.Parse(e.srv.URL + "/saml/")
		var binding *http.Cookie
		for _, c := range b.Jar.Cookies(u) {
			if c.Name == "gatehouse_sso_binding" {
				binding = c
			}
		}
		if binding == nil {
			t.Fatal("login set no binding cookie")
		}
		if resp, body := e.post(b, idp.Response(t, e.opts(id)), ""); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("first response: %s %.300s", resp.Status, body)
		}
		b.Jar.SetCookies(u, []*http.Cookie{{Name: binding.Name, Value: binding.Value, Path: "/saml/"}})
		resp, body := e.post(b, idp.Response(t, e.opts(id)), "")
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "InResponseTo names no sign-in this server started") {
			t.Fatalf("second response to the same request: %s %.400s", resp.Status, body)
		}
	})
	t.Run("the same response twice", func(t *testing.T) {
		idpInitiated(t)
		b := browser(t)
		doc := idp.Response(t, e.opts(""))
		if resp, body := e.post(b, doc, ""); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("first post: %s %.300s", resp.Status, body)
		}
		resp, body := e.post(b, doc, "")
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "already used (replay)") {
			t.Fatalf("second post of the same response: %s %.400s", resp.Status, body)
		}
	})
	t.Run("20 parallel posts of one unsolicited response", func(t *testing.T) {
		idpInitiated(t)
		o := e.opts("")
		o.AssertionID = "_race-" + e.tenant.ID
		o.NotOnOrAfter = time.Now().Add(10 * time.Minute)
		doc := idp.Response(t, o)
		var wins, replays atomic.Int32
		var wg sync.WaitGroup
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, body := e.post(browser(t), doc, "/x")
				switch {
				case resp.StatusCode == http.StatusSeeOther:
					wins.Add(1)
				case strings.Contains(body, "already used"):
					replays.Add(1)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 || replays.Load() != 19 {
			t.Fatalf("%d sign-ins and %d replay refusals; want 1 and 19", wins.Load(), replays.Load())
		}
		// The assertion ID is kept until NotOnOrAfter plus the clock skew (3m here),
		// the longest time this server would still accept it, and a minute more for
		// replicas whose clocks run behind.
		if r, ok := e.cache.(*cache.Redis); ok {
			ctx := context.Background()
			sum := sha256.Sum256([]byte(o.AssertionID))
			keys, err := r.Client().Keys(ctx, "*saml:assertion:"+e.tenant.ID+":"+hex.EncodeToString(sum[:])).Result()
			if err != nil || len(keys) != 1 {
				t.Fatalf("replay keys %v, %v; want one", keys, err)
			}
			ttl, err := r.Client().TTL(ctx, keys[0]).Result()
			if err != nil || ttl < 13*time.Minute || ttl > 14*time.Minute+time.Second {
				t.Fatalf("the replay key lives %s (%v); want NotOnOrAfter (10m) + skew (3m) + a minute", ttl, err)
			}
		}
	})
	t.Run("RelayState cannot redirect off-site", func(t *testing.T) {
		idpInitiated(t)
		for _, rs := range []string{"https://evil.test/", "//evil.test/x", "/\\evil.test", "javascript:alert(1)"} {
			resp, _ := e.post(browser(t), idp.Response(t, e.opts("")), rs)
			if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
				t.Errorf("RelayState %q: %s to %q; want a redirect to /", rs, resp.Status, resp.Header.Get("Location"))
			}
		}
	})
	t.Run("return_to cannot redirect off-site", func(t *testing.T) {
		for _, rt := range []string{"https://evil.test/", "//evil.test/x", "/\\evil.test", "javascript:alert(1)", "/ok\r\nSet-Cookie: x=1"} {
			b := browser(t)
			resp, body := e.post(b, idp.Response(t, e.opts(e.startLogin(b, rt))), "")
			if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
				t.Errorf("return_to %q: %s to %q; want a redirect to /: %.200s", rt, resp.Status, resp.Header.Get("Location"), body)
			}
		}
		b := browser(t)
		resp, _ := e.post(b, idp.Response(t, e.opts(e.startLogin(b, "/projects/7?tab=a%2Fb"))), "")
		if resp.Header.Get("Location") != "/projects/7?tab=a%2Fb" {
			t.Errorf("a relative return_to became %q", resp.Header.Get("Location"))
		}
	})
}

func TestACSHostileInput(t *testing.T) {
	testenv.EachDB(t, acsHostileInput)
}

func acsHostileInput(t *testing.T, bdb *bun.DB) {
	e, idp := crafted(t, bdb)
	b := browser(t)
	t.Run("DOCTYPE", func(t *testing.T) {
		id := e.startLogin(b, "/")
		raw := samltest.WithDoctype(idp.ResponseXML(t, e.opts(id)))
		resp, body := e.post(b, base64.StdEncoding.EncodeToString(raw), "")
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "DOCTYPE") {
			t.Fatalf("%s: %.300s", resp.Status, body)
		}
	})
	t.Run("oversized body", func(t *testing.T) {
		big := strings.Repeat("A", 300<<10)
		resp, body := e.post(b, big, "")
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(body, "GATEHOUSE_SAML_MAX_BODY_BYTES") {
			t.Fatalf("%s: %.300s", resp.Status, body)
		}
	})
	t.Run("not base64", func(t *testing.T) {
		resp, _ := e.post(b, "%%%not base64%%%", "")
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("%s", resp.Status)
		}
	})
	t.Run("deactivated user", func(t *testing.T) {
		e.addUser("gone@acme.test", false)
		o := e.opts(e.startLogin(b, "/"))
		o.NameID = "gone@acme.test"
		resp, body := e.post(b, idp.Response(t, o), "")
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "deactivated") {
			t.Fatalf("%s: %.300s", resp.Status, body)
		}
	})
}

// A tenant's IdP can sign in only that tenant's users, even when another tenant has a
// user with the very same name.
func TestTenantIsolation(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		e, idp := crafted(t, bdb)
		other := newEnv(t, bdb, e.cache)
		other.addUser("only-elsewhere@acme.test", true)
		b := browser(t)
		o := e.opts(e.startLogin(b, "/"))
		o.NameID = "only-elsewhere@acme.test"
		resp, body := e.post(b, idp.Response(t, o), "")
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "no account") {
			t.Fatalf("%s: %.300s", resp.Status, body)
		}
	})
}

// Every login renews the binding cookie's lifetime (keeping its value, so requests
// already started in the browser still match): a login started near the end of an
// earlier one's cookie must not lose its cookie while the person is at the IdP.
func TestBindingCookieRenewedByEachLogin(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		e, _ := crafted(t, bdb)
		c := browser(t)
		login := func(cookie string) *http.Cookie {
			req, _ := http.NewRequest(http.MethodGet, e.loginURL(), nil)
			if cookie != "" {
				req.AddCookie(&http.Cookie{Name: "gatehouse_sso_binding", Value: cookie})
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			for _, ck := range resp.Cookies() {
				if ck.Name == "gatehouse_sso_binding" {
					return ck
				}
			}
			return nil
		}
		first := login("")
		if first == nil || first.MaxAge != 600 || len(first.Value) != 43 {
			t.Fatalf("first login's binding cookie: %+v", first)
		}
		again := login(first.Value)
		if again == nil || again.Value != first.Value || again.MaxAge != 600 || again.Path != "/saml/" || !again.HttpOnly {
			t.Fatalf("a second login in the same browser set %+v; want the same value with a fresh Max-Age=600", again)
		}
	})
}
