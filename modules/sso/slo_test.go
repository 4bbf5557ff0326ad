package sso_test

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/samltest"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/keys"
	"github.com/gatehouse-dev/gatehouse/modules/platform/cache"
)

// sloEnv is a tenant whose IdP has a single logout URL and is rolling its certificate
// (the metadata lists idp's and next's), with ada@acme.test.
type sloEnv struct {
	*env
	idp, next *samltest.IdP
	slo       string // the SP's SLO URL
}

func newSLOEnv(t *testing.T, bdb *bun.DB, c cache.Cache, idpSLOBindings ...string) *sloEnv {
	e := newEnv(t, bdb, c)
	idp := samltest.NewIdP(t, "https://idp.acme.test/entity")
	next := samltest.NewIdP(t, idp.EntityID)
	idp.ExtraCerts = []*x509.Certificate{next.Cert}
	idp.SLOURL, idp.SLOBindings = "https://idp.acme.test/slo?tenant=acme", idpSLOBindings
	e.configure(idp.MetadataXML())
	e.addUser("ada@acme.test", true)
	return &sloEnv{env: e, idp: idp, next: next, slo: e.srv.URL + "/saml/" + e.slug() + "/slo"}
}

// do sends a request without following redirects and returns the response and body.
func (s *sloEnv) do(req *http.Request) (*http.Response, string) {
	s.t.Helper()
	resp, err := browser(s.t).Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func (s *sloEnv) get(u string) (*http.Response, string) {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return s.do(req)
}

func (s *sloEnv) post(samlRequest, relayState string) (*http.Response, string) {
	form := url.Values{"SAMLRequest": {samlRequest}}
	if relayState != "" {
		form.Set("RelayState", relayState)
	}
	req, _ := http.NewRequest(http.MethodPost, s.slo, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return s.do(req)
}

// spCert is the active SP signing certificate, which LogoutResponses must verify with.
func (s *sloEnv) spCert() *x509.Certificate {
	k, err := s.keys.Active(context.Background(), keys.PurposeSAML)
	if err != nil {
		s.t.Fatal(err)
	}
	return k.Certificate
}

// checkLogoutResponse checks a LogoutResponse document: it answers requestID with
// success, from this SP, to the IdP's SLO URL.
func (s *sloEnv) checkLogoutResponse(doc []byte, requestID string) *etree.Element {
	s.t.Helper()
	d := etree.NewDocument()
	if err := d.ReadFromBytes(doc); err != nil {
		s.t.Fatal(err)
	}
	root := d.Root()
	if root.Tag != "LogoutResponse" || root.SelectAttrValue("InResponseTo", "") != requestID ||
		root.SelectAttrValue("Destination", "") != s.idp.SLOURL || d.FindElement("//Issuer").Text() != s.entityID() ||
		d.FindElement("//StatusCode").SelectAttrValue("Value", "") != "urn:oasis:names:tc:SAML:2.0:status:Success" {
		s.t.Fatalf("LogoutResponse %s", doc)
	}
	return root
}

// IdP-initiated Single Logout over the HTTP-Redirect binding (what Entra ID sends):
// honoured only with a query signature by a listed IdP certificate, an IssueInstant
// within the clock skew, an unexpired NotOnOrAfter and an ID not seen before; answered
// with a LogoutResponse redirected to the IdP's logout URL, signed with the SP key.
// Every refusal leaves the session alive; the controls show the same request signed
// in order ends it.
func TestSingleLogoutRedirect(t *testing.T) {
	eachDBAndCache(t, func(t *testing.T, bdb *bun.DB, c cache.Cache) {
		s := newSLOEnv(t, bdb, c)
		now := time.Now()
		opts := func(mut func(o *samltest.LogoutOptions)) samltest.LogoutOptions {
			o := samltest.LogoutOptions{Destination: s.slo, NameID: "ada@acme.test"}
			if mut != nil {
				mut(&o)
			}
			return o
		}
		signed := func(o samltest.LogoutOptions) string { return s.idp.LogoutRequestRedirect(t, s.slo, "", o) }

		for _, tc := range []struct {
			name, url string
			status    int
			reason    string
		}{
			{"unsigned", s.idp.LogoutRequestRedirect(t, s.slo, "", opts(func(o *samltest.LogoutOptions) { o.Unsigned = true })),
				http.StatusForbidden, "not signed"},
			{"signed by another key", signed(opts(func(o *samltest.LogoutOptions) { o.SignWith = samltest.NewIdP(t, s.idp.EntityID) })),
				http.StatusForbidden, "signature does not verify"},
			{"RelayState changed after signing", strings.Replace(s.idp.LogoutRequestRedirect(t, s.slo, "a", opts(nil)), "RelayState=a", "RelayState=b", 1),
				http.StatusForbidden, "signature does not verify"},
			{"SHA-1", strings.Replace(signed(opts(nil)), "rsa-sha256", "rsa-sha1", 1),
				http.StatusForbidden, "not accepted"},
			{"issued beyond the skew", signed(opts(func(o *samltest.LogoutOptions) { o.IssueInstant = now.Add(-10 * time.Minute) })),
				http.StatusForbidden, "more than the allowed clock skew"},
			{"issued in the future beyond the skew", signed(opts(func(o *samltest.LogoutOptions) { o.IssueInstant = now.Add(10 * time.Minute) })),
				http.StatusForbidden, "more than the allowed clock skew"},
			{"NotOnOrAfter passed beyond the skew", signed(opts(func(o *samltest.LogoutOptions) { o.NotOnOrAfter = now.Add(-4 * time.Minute) })),
				http.StatusForbidden, "expired"},
			{"another Destination", signed(opts(func(o *samltest.LogoutOptions) { o.Destination = "https://sp.evil.test/slo" })),
				http.StatusForbidden, "Destination"},
			{"another issuer", signed(opts(func(o *samltest.LogoutOptions) { o.Issuer = "https://idp.evil.test/entity" })),
				http.StatusForbidden, "Issuer"},
			{"DOCTYPE", samltest.RedirectURL(t, s.slo, "SAMLRequest", samltest.WithDoctype(s.idp.LogoutRequestXML(t, opts(func(o *samltest.LogoutOptions) { o.Unsigned = true }))), "", s.idp.Key),
				http.StatusForbidden, "DOCTYPE"},
			{"no SAMLRequest", s.slo + "?SigAlg=x&Signature=eA==", http.StatusBadRequest, "no SAMLRequest"},
			{"inflates beyond the body limit", samltest.RedirectURL(t, s.slo, "SAMLRequest", []byte("<x>"+strings.Repeat(" ", 300<<10)+"</x>"), "", s.idp.Key),
				http.StatusRequestEntityTooLarge, "GATEHOUSE_SAML_MAX_BODY_BYTES"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				b, _ := s.signIn(s.idp, "ada@acme.test")
				resp, body := s.get(tc.url)
				if resp.StatusCode != tc.status || !strings.Contains(body, tc.reason) {
					t.Fatalf("%s; want %d naming %q: %.800s", resp.Status, tc.status, tc.reason, body)
				}
				if s.whoami(b) != http.StatusOK {
					t.Fatal("a refused LogoutRequest ended the session")
				}
			})
		}

		t.Run("signed, within the skew, by the next certificate", func(t *testing.T) {
			b, _ := s.signIn(s.idp, "ada@acme.test")
			o := opts(func(o *samltest.LogoutOptions) {
				// The IdP's clock runs 2 minutes ahead: within the skew.
				o.ID, o.IssueInstant, o.NotOnOrAfter, o.SignWith = "_lr-"+s.tenant.ID, now.Add(2*time.Minute), now.Add(-time.Minute), s.next
			})
			u := s.idp.LogoutRequestRedirect(t, s.slo, "back/to=here", o)
			resp, body := s.get(u)
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("%s: %.600s", resp.Status, body)
			}
			loc := resp.Header.Get("Location")
			if !strings.HasPrefix(loc, s.idp.SLOURL+"&SAMLResponse=") {
				t.Fatalf("redirected to %q; want the IdP's logout URL (which has a query already)", loc)
			}
			m, err := samltest.DecodeRedirect(loc, "SAMLResponse")
			if err != nil {
				t.Fatal(err)
			}
			s.checkLogoutResponse(m.XML, o.ID)
			if m.RelayState != "back/to=here" {
				t.Errorf("RelayState %q not echoed", m.RelayState)
			}
			if err := m.Verify(s.spCert()); err != nil {
				t.Errorf("the LogoutResponse's signature does not verify with the active SP certificate: %v", err)
			}
			if s.whoami(b) != http.StatusUnauthorized {
				t.Fatal("the session survived a signed LogoutRequest")
			}
			// The ID is kept as long as the IssueInstant is within the skew (3m) of
			// the clock, and a minute more for replicas whose clocks run behind: here
			// until 6 minutes from now.
			if r, ok := s.cache.(*cache.Redis); ok {
				sum := sha256.Sum256([]byte(o.ID))
				ctx := context.Background()
				keys, err := r.Client().Keys(ctx, "*saml:logout:"+s.tenant.ID+":"+hex.EncodeToString(sum[:])).Result()
				if err != nil || len(keys) != 1 {
					t.Fatalf("replay keys %v, %v; want one", keys, err)
				}
				if ttl, err := r.Client().TTL(ctx, keys[0]).Result(); err != nil || ttl < 5*time.Minute || ttl > 6*time.Minute+time.Second {
					t.Fatalf("the logout replay key lives %s (%v); want IssueInstant (+2m) + skew (3m) + a minute", ttl, err)
				}
			}

			// The same request again, for a new session: a replay.
			b2, _ := s.signIn(s.idp, "ada@acme.test")
			resp, body = s.get(u)
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "already used (replay)") {
				t.Fatalf("replayed LogoutRequest: %s %.600s", resp.Status, body)
			}
			if s.whoami(b2) != http.StatusOK {
				t.Fatal("a replayed LogoutRequest ended a later session")
			}
		})
	})
}

// Over the HTTP-POST binding the same rules hold for the enveloped signature; an IdP
// whose logout URL takes only HTTP-POST gets the LogoutResponse by a form, signed
// inside the XML.
func TestSingleLogoutPOST(t *testing.T) {
	eachDBAndCache(t, func(t *testing.T, bdb *bun.DB, c cache.Cache) {
		s := newSLOEnv(t, bdb, c, samltest.BindingHTTPPost)
		now := time.Now()
		for _, tc := range []struct {
			name   string
			o      samltest.LogoutOptions
			reason string
		}{
			{"unsigned", samltest.LogoutOptions{Unsigned: true}, "not signed"},
			{"signed by another key", samltest.LogoutOptions{SignWith: samltest.NewIdP(t, "https://x.test")}, "the signature does not verify"},
			{"issued beyond the skew", samltest.LogoutOptions{IssueInstant: now.Add(-10 * time.Minute)}, "more than the allowed clock skew"},
			{"NotOnOrAfter passed beyond the skew", samltest.LogoutOptions{NotOnOrAfter: now.Add(-4 * time.Minute)}, "expired"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				b, _ := s.signIn(s.idp, "ada@acme.test")
				tc.o.Destination, tc.o.NameID = s.slo, "ada@acme.test"
				resp, body := s.post(s.idp.LogoutRequest(t, tc.o), "")
				if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, tc.reason) {
					t.Fatalf("%s; want 403 naming %q: %.600s", resp.Status, tc.reason, body)
				}
				if s.whoami(b) != http.StatusOK {
					t.Fatal("a refused LogoutRequest ended the session")
				}
			})
		}

		t.Run("oversized body", func(t *testing.T) {
			resp, body := s.post(strings.Repeat("A", 300<<10), "")
			if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(body, "GATEHOUSE_SAML_MAX_BODY_BYTES") {
				t.Fatalf("%s; want 413 naming the limit: %.600s", resp.Status, body)
			}
		})
		t.Run("DOCTYPE", func(t *testing.T) {
			raw := samltest.WithDoctype(s.idp.LogoutRequestXML(t, samltest.LogoutOptions{Destination: s.slo, NameID: "ada@acme.test"}))
			resp, body := s.post(base64.StdEncoding.EncodeToString(raw), "")
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "DOCTYPE") {
				t.Fatalf("%s; want 403 naming the DOCTYPE: %.600s", resp.Status, body)
			}
		})

		t.Run("signed by the next certificate, without KeyInfo", func(t *testing.T) {
			b, _ := s.signIn(s.idp, "ada@acme.test")
			// Issued 2 minutes ago: within the skew.
			o := samltest.LogoutOptions{Destination: s.slo, NameID: "ada@acme.test", SignWith: s.next, OmitKeyInfo: true,
				ID: "_lrp-" + s.tenant.ID, IssueInstant: now.Add(-2 * time.Minute)}
			doc := s.idp.LogoutRequest(t, o)
			resp, body := s.post(doc, "rs-1")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s: %.600s", resp.Status, body)
			}
			f, err := samltest.ParseForm([]byte(body))
			if err != nil || f.Action != s.idp.SLOURL || f.Values.Get("RelayState") != "rs-1" {
				t.Fatalf("form %+v, %v; want a post to the IdP's logout URL with the RelayState", f, err)
			}
			raw, _ := base64.StdEncoding.DecodeString(f.Values.Get("SAMLResponse"))
			root := s.checkLogoutResponse(raw, o.ID)
			vc := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{s.spCert()}})
			if _, err := vc.Validate(root); err != nil {
				t.Errorf("the LogoutResponse's signature does not verify with the active SP certificate: %v", err)
			}
			if s.whoami(b) != http.StatusUnauthorized {
				t.Fatal("the session survived a signed LogoutRequest")
			}
			b2, _ := s.signIn(s.idp, "ada@acme.test")
			resp, body = s.post(doc, "rs-1")
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "already used (replay)") {
				t.Fatalf("replayed LogoutRequest: %s %.600s", resp.Status, body)
			}
			if s.whoami(b2) != http.StatusOK {
				t.Fatal("a replayed LogoutRequest ended a later session")
			}
		})
	})
}

// signInWithIndex signs nameID in through a crafted SP-initiated login whose
// AuthnStatement carries sessionIndex, and returns the browser holding the session.
func (s *sloEnv) signInWithIndex(nameID, sessionIndex string) *http.Client {
	s.t.Helper()
	b := browser(s.t)
	o := s.opts(s.startLogin(b, "/"))
	o.NameID, o.SessionIndex = nameID, sessionIndex
	if resp, body := s.env.post(b, s.idp.Response(s.t, o), ""); resp.StatusCode != http.StatusSeeOther {
		s.t.Fatalf("sign-in of %s: %s %.300s", nameID, resp.Status, body)
	}
	return b
}

// A LogoutRequest ends the sessions its SessionIndex elements name (SAML core
// §3.7.3.2) and leaves the person's other sessions alone; without a SessionIndex it
// ends all of that person's SAML sessions. Both bindings.
func TestSingleLogoutSessionIndex(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		for _, binding := range []string{samltest.BindingHTTPRedirect, samltest.BindingHTTPPost} {
			t.Run(binding[strings.LastIndex(binding, ":")+1:], func(t *testing.T) {
				s := newSLOEnv(t, bdb, memoryCache(t), binding)
				send := func(o samltest.LogoutOptions) {
					t.Helper()
					o.Destination, o.NameID = s.slo, "ada@acme.test"
					var resp *http.Response
					var body string
					if binding == samltest.BindingHTTPPost {
						resp, body = s.post(s.idp.LogoutRequest(t, o), "")
					} else {
						resp, body = s.get(s.idp.LogoutRequestRedirect(t, s.slo, "", o))
					}
					if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusFound {
						t.Fatalf("LogoutRequest refused: %s %.600s", resp.Status, body)
					}
				}
				laptop, phone, tablet := s.signInWithIndex("ada@acme.test", "_idx-laptop"),
					s.signInWithIndex("ada@acme.test", "_idx-phone"), s.signInWithIndex("ada@acme.test", "_idx-tablet")
				send(samltest.LogoutOptions{SessionIndex: "_idx-laptop"})
				if s.whoami(laptop) != http.StatusUnauthorized {
					t.Fatal("the session the SessionIndex names survived")
				}
				if s.whoami(phone) != http.StatusOK || s.whoami(tablet) != http.StatusOK {
					t.Fatal("a LogoutRequest for one SessionIndex ended the person's other sessions")
				}
				send(samltest.LogoutOptions{})
				if s.whoami(phone) != http.StatusUnauthorized || s.whoami(tablet) != http.StatusUnauthorized {
					t.Fatal("a LogoutRequest without SessionIndex left a session of the person alive")
				}
				// A SessionIndex longer than a session keeps (256 bytes) cannot be
				// matched exactly, so it ends all of the person's SAML sessions rather
				// than none.
				long := "_idx-" + strings.Repeat("x", 300)
				desk := s.signInWithIndex("ada@acme.test", long)
				send(samltest.LogoutOptions{SessionIndex: long})
				if s.whoami(desk) != http.StatusUnauthorized {
					t.Fatal("the session a long SessionIndex names survived")
				}
			})
		}
	})
}

// An IdP that writes the NameID with surrounding whitespace (pretty-printed XML) is
// signed in as the trimmed name at the ACS; its LogoutRequest must find the same
// person, not answer "Success" while the session lives on.
func TestSingleLogoutNameIDWhitespace(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		s := newSLOEnv(t, bdb, memoryCache(t))
		b := s.signInWithIndex("\n    ada@acme.test\n  ", "_idx-ws")
		if s.whoami(b) != http.StatusOK {
			t.Fatal("not signed in")
		}
		resp, body := s.get(s.idp.LogoutRequestRedirect(t, s.slo, "", samltest.LogoutOptions{Destination: s.slo, NameID: "\n    ada@acme.test\n  "}))
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("%s: %.600s", resp.Status, body)
		}
		if s.whoami(b) != http.StatusUnauthorized {
			t.Fatal("the IdP was told the person is signed out, but the session survived")
		}
	})
}

// Okta's and Entra's persistent NameIDs are opaque ids; such a person is found at sign-in
// by the email attribute. Their LogoutRequest names them only by that NameID, and must
// end their sessions, not answer "Success" while the sessions live on.
func TestSingleLogoutOpaqueNameID(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		s := newSLOEnv(t, bdb, memoryCache(t))
		b := browser(t)
		o := s.opts(s.startLogin(b, "/"))
		o.NameID, o.NameIDFormat, o.Attributes = "00u8f3k2pQ7Zr9", samltest.NameIDFormatPersistent, map[string][]string{"email": {"ada@acme.test"}}
		if resp, body := s.env.post(b, s.idp.Response(t, o), ""); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign-in by the email attribute: %s %.300s", resp.Status, body)
		}
		other := s.signInWithIndex("ada@acme.test", "_idx-other") // the same person, another NameID
		resp, body := s.get(s.idp.LogoutRequestRedirect(t, s.slo, "", samltest.LogoutOptions{Destination: s.slo, NameID: "00u8f3k2pQ7Zr9"}))
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("%s: %.600s", resp.Status, body)
		}
		if s.whoami(b) != http.StatusUnauthorized {
			t.Fatal("the IdP was told the person is signed out, but the session signed in with its NameID survived")
		}
		if s.whoami(other) != http.StatusOK {
			t.Fatal("a LogoutRequest ended a session signed in with another NameID")
		}
	})
}
