package sso_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/samltest"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/identity"
	"github.com/gatehouse-dev/gatehouse/modules/keys"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

// unverified returns a session token's kid and claims without checking its signature
// (the tests that use it check what was minted, not whether it verifies).
func unverified(t *testing.T, token string) (string, jwt.MapClaims) {
	t.Helper()
	c := jwt.MapClaims{}
	tok, _, err := jwt.NewParser().ParseUnverified(token, c)
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := tok.Header["kid"].(string)
	return kid, c
}

// The tenant's idle timeout and absolute lifetime are what a sign-in's session gets:
// the row's expiry and idle window, the token's exp and what /auth/sessions shows.
func TestTenantSessionLifetimes(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		e, idp := crafted(t, bdb)
		idle, maxLife := 17*time.Minute, 3*time.Hour
		e.settings(tenancy.SettingsPatch{SessionIdleTimeout: &idle, SessionMaxLifetime: &maxLife})
		before := time.Now().Truncate(time.Second)
		_, token := e.signIn(idp, "ada@acme.test")
		after := time.Now()

		var row identity.Session
		if err := e.db.NewSelect().Model(&row).Where("tenant_id = ?", e.tenant.ID).Scan(context.Background()); err != nil {
			t.Fatal(err)
		}
		if row.IdleSeconds != int64(idle/time.Second) || row.ExpiresAt.Before(before.Add(maxLife)) || row.ExpiresAt.After(after.Add(maxLife)) {
			t.Fatalf("session row: idle %ds, expires %s; want %ds and about %s", row.IdleSeconds, row.ExpiresAt, int64(idle/time.Second), before.Add(maxLife))
		}
		_, claims := unverified(t, token)
		if exp, _ := claims.GetExpirationTime(); exp == nil || !exp.Time.Equal(row.ExpiresAt.Truncate(time.Second)) {
			t.Fatalf("token exp %v; want the session's expiry %s", exp, row.ExpiresAt)
		}
		var list struct {
			Sessions []struct{ ExpiresAt time.Time }
		}
		if st := e.getJSON("/auth/sessions", token, &list); st != http.StatusOK || len(list.Sessions) != 1 || !list.Sessions[0].ExpiresAt.Equal(row.ExpiresAt) {
			t.Fatalf("/auth/sessions = %d %+v", st, list)
		}
	})
}

// The session cookie is HttpOnly and SameSite=Lax, and Secure when the public URL is
// https; the binding cookie of a login in progress is SameSite=None; Secure over https
// (it must survive the IdP's cross-site POST). The session row keeps the browser's
// IP address and user agent, which /auth/sessions shows.
func TestSessionCookieAndRow(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		for _, tls := range []bool{false, true} {
			name := map[bool]string{false: "http", true: "https"}[tls]
			t.Run(name, func(t *testing.T) {
				e := startEnv(t, bdb, memoryCache(t), tls)
				idp := samltest.NewIdP(t, "https://idp.acme.test/entity")
				e.configure(idp.MetadataXML())
				e.addUser("ada@acme.test", true)
				c := e.browser()
				const ua = "TestBrowser/1.0 (gatehouse)"
				c.Transport = userAgent{ua, c.Transport}

				resp, err := c.Get(e.loginURL())
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				binding := cookieNamed(resp, "gatehouse_sso_binding")
				if binding == nil || !binding.HttpOnly || binding.Secure != tls ||
					(tls && binding.SameSite != http.SameSiteNoneMode) {
					t.Fatalf("binding cookie %+v over %s", binding, name)
				}
				loc, _ := url.Parse(resp.Header.Get("Location"))
				resp, body := e.post(c, idp.Response(t, e.opts(e.requestID(loc))), "")
				if resp.StatusCode != http.StatusSeeOther {
					t.Fatalf("sign-in: %s %.300s", resp.Status, body)
				}
				sc := cookieNamed(resp, "gatehouse_session")
				if sc == nil {
					t.Fatal("no session cookie")
				}
				if !sc.HttpOnly || sc.SameSite != http.SameSiteLaxMode || sc.Secure != tls || sc.Path != "/" {
					t.Fatalf("session cookie HttpOnly=%v SameSite=%v Secure=%v Path=%q over %s; want HttpOnly, SameSite=Lax, Secure=%v, Path=/",
						sc.HttpOnly, sc.SameSite, sc.Secure, sc.Path, name, tls)
				}

				var list struct {
					Sessions []struct{ IP, UserAgent string }
				}
				if st := e.getJSON("/auth/sessions", sc.Value, &list); st != http.StatusOK || len(list.Sessions) != 1 || list.Sessions[0].IP != "127.0.0.1" || list.Sessions[0].UserAgent != ua {
					t.Fatalf("/auth/sessions = %d %+v; want IP 127.0.0.1 and user agent %q", st, list, ua)
				}
				var row identity.Session
				if err := e.db.NewSelect().Model(&row).Where("tenant_id = ?", e.tenant.ID).Scan(context.Background()); err != nil {
					t.Fatal(err)
				}
				if row.IP != "127.0.0.1" || row.UserAgent != ua {
					t.Fatalf("session row IP %q, user agent %q", row.IP, row.UserAgent)
				}
			})
		}
	})
}

// userAgent sets the User-Agent of every request, as a browser does.
type userAgent struct {
	ua   string
	next http.RoundTripper
}

func (u userAgent) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("User-Agent", u.ua)
	next := u.next
	if next == nil {
		next = http.DefaultTransport
	}
	return next.RoundTrip(r)
}

func cookieNamed(resp *http.Response, name string) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Session keys rotate without signing anyone out: a next key is published in the
// JWKS before it signs; once active, new tokens carry its kid and tokens signed with
// the previous key still authenticate, and both verify with the published keys.
func TestJWKSRotation(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		ctx := context.Background()
		e, idp := crafted(t, bdb)
		_, oldToken := e.signIn(idp, "ada@acme.test")
		oldKid, _ := unverified(t, oldToken)

		jwks := func() map[string]ed25519.PublicKey {
			var set struct{ Keys []struct{ Kid, X string } }
			if st := e.getJSON("/.well-known/jwks.json", "", &set); st != http.StatusOK {
				t.Fatalf("JWKS = %d", st)
			}
			out := map[string]ed25519.PublicKey{}
			for _, k := range set.Keys {
				x, _ := base64.RawURLEncoding.DecodeString(k.X)
				out[k.Kid] = x
			}
			return out
		}
		if ks := jwks(); len(ks) != 1 || ks[oldKid] == nil {
			t.Fatalf("JWKS before rotation: %v; want only %s", ks, oldKid)
		}
		next, err := e.keys.Add(ctx, keys.PurposeSession)
		if err != nil {
			t.Fatal(err)
		}
		if ks := jwks(); len(ks) != 2 || ks[next.ID] == nil {
			t.Fatalf("JWKS after adding a next key: %v; want %s and %s", ks, oldKid, next.ID)
		}
		if _, err := e.keys.Activate(ctx, next.ID); err != nil {
			t.Fatal(err)
		}
		_, newToken := e.signIn(idp, "ada@acme.test")
		if kid, _ := unverified(t, newToken); kid != next.ID {
			t.Fatalf("a token minted after activation has kid %s; want %s", kid, next.ID)
		}
		ks := jwks()
		if len(ks) != 2 {
			t.Fatalf("JWKS after activation: %v; want the active and the previous key", ks)
		}
		for name, tok := range map[string]string{"previous key": oldToken, "active key": newToken} {
			if st := e.getJSON("/auth/session", tok, nil); st != http.StatusOK {
				t.Fatalf("a token signed with the %s = %d; want 200", name, st)
			}
			if _, err := jwt.Parse(tok, func(tk *jwt.Token) (any, error) {
				return ks[tk.Header["kid"].(string)], nil
			}, jwt.WithValidMethods([]string{"EdDSA"})); err != nil {
				t.Fatalf("a token signed with the %s does not verify with the JWKS: %v", name, err)
			}
		}
	})
}
