package sso_test

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/samltest"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/keys"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

// postLogin starts SP-initiated login in c against an IdP reached over HTTP-POST and
// returns the form the page would submit, after checking the page: it posts to the
// IdP's SSO URL, and its only script runs by the nonce of its Content-Security-Policy.
func (e *env) postLogin(c *http.Client, returnTo, ssoURL string) samltest.HTMLForm {
	e.t.Helper()
	resp, err := c.Get(e.loginURL() + "?return_to=" + url.QueryEscape(returnTo))
	if err != nil {
		e.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		e.t.Fatalf("login over HTTP-POST: %s %s (Location %q)", resp.Status, resp.Header.Get("Content-Type"), resp.Header.Get("Location"))
	}
	csp := resp.Header.Get("Content-Security-Policy")
	m := regexp.MustCompile(`script-src 'nonce-([A-Za-z0-9_-]+)'`).FindStringSubmatch(csp)
	if m == nil || !strings.Contains(csp, "default-src 'none'") {
		e.t.Fatalf("Content-Security-Policy %q does not allow scripts by nonce only", csp)
	}
	scripts := regexp.MustCompile(`<script[^>]*>`).FindAllString(string(body), -1)
	if len(scripts) != 1 || scripts[0] != `<script nonce="`+m[1]+`">` {
		e.t.Fatalf("scripts %q; want one carrying the nonce %s", scripts, m[1])
	}
	if regexp.MustCompile(`(?i)\son[a-z]+=`).Match(body) {
		e.t.Fatalf("the page has an inline event handler, which the policy blocks: %s", body)
	}
	f, err := samltest.ParseForm(body)
	if err != nil {
		e.t.Fatal(err)
	}
	if f.Method != http.MethodPost || f.Action != ssoURL || f.Values.Get("SAMLRequest") == "" {
		e.t.Fatalf("form %+v; want a POST of SAMLRequest to %s", f, ssoURL)
	}
	return f
}

// An IdP whose metadata offers only HTTP-POST gets the AuthnRequest by an
// auto-submitting form, bound to the browser like a redirect; signed inside the XML
// when the tenant signs requests. An IdP offering both gets HTTP-Redirect.
func TestPOSTBindingLogin(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		ctx := context.Background()
		e := newEnv(t, bdb, memoryCache(t))
		idp := samltest.NewIdP(t, "https://idp.acme.test/entity")
		idp.SSOBindings = []string{samltest.BindingHTTPPost}
		e.configure(idp.MetadataXML())
		e.addUser("ada@acme.test", true)
		if conn, _ := e.tenancy.SAMLConnection(ctx, e.tenant.ID); conn.SSOBinding != tenancy.SAMLBindingHTTPPost {
			t.Fatalf("stored binding %q", conn.SSOBinding)
		}

		request := func(f samltest.HTMLForm) *etree.Element {
			raw, err := base64.StdEncoding.DecodeString(f.Values.Get("SAMLRequest"))
			if err != nil {
				t.Fatal(err)
			}
			doc := etree.NewDocument()
			if err := doc.ReadFromBytes(raw); err != nil {
				t.Fatalf("SAMLRequest is not plain XML (the POST binding is not deflated): %v", err)
			}
			root := doc.Root()
			if root.Tag != "AuthnRequest" || root.SelectAttrValue("Destination", "") != idp.SSOURL ||
				root.SelectAttrValue("AssertionConsumerServiceURL", "") != e.acs() {
				t.Fatalf("AuthnRequest %s", raw)
			}
			return root
		}

		b := browser(t)
		req := request(e.postLogin(b, "/after", idp.SSOURL))
		if req.FindElement("./Signature") != nil {
			t.Fatal("the request is signed although the tenant does not sign requests")
		}
		resp, body := e.post(b, idp.Response(t, e.opts(req.SelectAttrValue("ID", ""))), "")
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/after" || e.whoami(b) != http.StatusOK {
			t.Fatalf("answer to a POST-bound request: %s %.300s", resp.Status, body)
		}
		// Bound to the browser that loaded the form, like a redirect.
		a, other := browser(t), browser(t)
		req = request(e.postLogin(a, "/", idp.SSOURL))
		e.postLogin(other, "/", idp.SSOURL)
		if resp, body := e.post(other, idp.Response(t, e.opts(req.SelectAttrValue("ID", ""))), ""); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "another browser") {
			t.Fatalf("response to another browser's POST-bound request: %s %.300s", resp.Status, body)
		}

		// Signed requests: an enveloped signature by the active SP key.
		yes := true
		if _, err := e.tenancy.ConfigureSAML(ctx, e.tenant.ID, tenancy.SAMLConfigInput{SignRequests: &yes}); err != nil {
			t.Fatal(err)
		}
		active, err := e.keys.Active(ctx, keys.PurposeSAML)
		if err != nil {
			t.Fatal(err)
		}
		req = request(e.postLogin(browser(t), "/", idp.SSOURL))
		vc := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{active.Certificate}})
		if _, err := vc.Validate(req); err != nil {
			t.Fatalf("the POST-bound AuthnRequest does not verify with the active SP certificate: %v", err)
		}

		// Offered both (POST listed first): HTTP-Redirect.
		idp.SSOBindings = []string{samltest.BindingHTTPPost, samltest.BindingHTTPRedirect}
		e.configure(idp.MetadataXML())
		resp, err = browser(t).Get(e.loginURL())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, idp.SSOURL+"?SAMLRequest=") {
			t.Fatalf("IdP with both bindings: %s to %q; want the HTTP-Redirect binding", resp.Status, loc)
		}
	})
}

// The whole journey with a real IdP that is told (by its metadata) to take requests
// over HTTP-POST only: the browser runs the SP's form, signs in at samlidp, and the
// resulting session authenticates.
func TestRealIdPPOSTOnly(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		e := newEnv(t, bdb, memoryCache(t))
		idp := samltest.StartRealIdP(t)
		md := regexp.MustCompile(`<SingleSignOnService Binding="urn:oasis:names:tc:SAML:2\.0:bindings:HTTP-Redirect"[^>]*></SingleSignOnService>`).
			ReplaceAll(idp.MetadataXML(t), nil)
		if strings.Contains(string(md), "HTTP-Redirect") {
			t.Fatalf("the IdP metadata still offers HTTP-Redirect: %s", md)
		}
		e.configure(md)
		idp.AddServiceProvider(t, "gatehouse", fetch(t, e.metadataURL()))
		idp.AddUser(t, "ada", "pw", "ada@acme.test", "Ada", "Lovelace")
		e.addUser("ada@acme.test", true)

		b := idp.Browser(t)
		f := e.postLogin(b, "/reports", idp.SSOURL)
		resp, err := b.PostForm(f.Action, f.Values) // what the page's script does
		if err != nil {
			t.Fatal(err)
		}
		final := idp.SignIn(t, b, resp, "ada", "pw")
		body, _ := io.ReadAll(final.Body)
		final.Body.Close()
		if final.StatusCode != http.StatusSeeOther || final.Header.Get("Location") != "/reports" {
			t.Fatalf("ACS answered %s (Location %q): %s; failures: %v", final.Status, final.Header.Get("Location"), body, e.failures())
		}
		if got := e.whoami(b); got != http.StatusOK {
			t.Fatalf("/auth/session = %d", got)
		}
	})
}
