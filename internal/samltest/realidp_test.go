package samltest

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	saml2 "github.com/russellhaering/gosaml2"
	dsig "github.com/russellhaering/goxmldsig"
)

// miniSP is the smallest honest SP: gosaml2 with its own key, serving
// /saml/acme/{metadata,login,acs} the way the SP under test will, and checking
// InResponseTo against the requests it issued.
type miniSP struct {
	URL, EntityID, ACS string
	sp                 *saml2.SAMLServiceProvider
	plain              bool // strip the encryption key from metadata: samlidp then does not encrypt

	mu        sync.Mutex
	issued    map[string]bool
	logins    []*saml2.AssertionInfo
	failures  []error
	responses [][]byte // raw SAMLResponse XML as posted to the ACS
}

func startMiniSP(t *testing.T, idp *RealIdP, plain bool) *miniSP {
	t.Helper()
	m := &miniSP{issued: map[string]bool{}, plain: plain}
	srv := httptest.NewUnstartedServer(nil)
	m.URL = "http://" + srv.Listener.Addr().String()
	m.EntityID = m.URL + "/saml/acme"
	m.ACS = m.EntityID + "/acs"

	// The IdP's certificate comes from its metadata, as the SP under test gets it.
	var md saml.EntityDescriptor
	if err := xml.Unmarshal(idp.MetadataXML(t), &md); err != nil {
		t.Fatal(err)
	}
	var certs []*x509.Certificate
	for _, kd := range md.IDPSSODescriptors[0].KeyDescriptors {
		if kd.Use == "signing" {
			der, err := base64.StdEncoding.DecodeString(kd.KeyInfo.X509Data.X509Certificates[0].Data)
			if err != nil {
				t.Fatal(err)
			}
			cert, err := x509.ParseCertificate(der)
			if err != nil {
				t.Fatal(err)
			}
			certs = append(certs, cert)
		}
	}
	if len(certs) != 1 || !certs[0].Equal(parseCertPEM(t, idp.CertPEM())) {
		t.Fatalf("IdP metadata signing certs %v do not match CertPEM", certs)
	}

	key, cert := newKeyPair(t, m.EntityID, time.Now())
	m.sp = &saml2.SAMLServiceProvider{
		IdentityProviderSSOURL:      md.IDPSSODescriptors[0].SingleSignOnServices[0].Location,
		IdentityProviderIssuer:      md.EntityID,
		ServiceProviderIssuer:       m.EntityID,
		AssertionConsumerServiceURL: m.ACS,
		AudienceURI:                 m.EntityID,
		IDPCertificateStore:         &dsig.MemoryX509CertificateStore{Roots: certs},
		SPKeyStore:                  dsig.TLSCertKeyStore(tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}),
		Clock:                       dsig.NewRealClock(),
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /saml/acme/metadata", m.metadata)
	mux.HandleFunc("GET /saml/acme/login", m.login)
	mux.HandleFunc("POST /saml/acme/acs", m.acs)
	srv.Config.Handler = mux
	srv.Start()
	t.Cleanup(srv.Close)
	return m
}

func (m *miniSP) metadata(w http.ResponseWriter, _ *http.Request) {
	ed, err := m.sp.Metadata()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if m.plain {
		kds := ed.SPSSODescriptor.KeyDescriptors[:0]
		for _, kd := range ed.SPSSODescriptor.KeyDescriptors {
			if kd.Use != "encryption" {
				kds = append(kds, kd)
			}
		}
		ed.SPSSODescriptor.KeyDescriptors = kds
	}
	out, err := xml.Marshal(ed)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/samlmetadata+xml")
	_, _ = w.Write(out)
}

func (m *miniSP) login(w http.ResponseWriter, r *http.Request) {
	doc, err := m.sp.BuildAuthRequestDocument()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	m.mu.Lock()
	m.issued[doc.Root().SelectAttrValue("ID", "")] = true
	m.mu.Unlock()
	u, err := m.sp.BuildAuthURLRedirect(r.URL.Query().Get("return_to"), doc)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	http.Redirect(w, r, u, http.StatusFound)
}

func (m *miniSP) acs(w http.ResponseWriter, r *http.Request) {
	raw, _ := base64.StdEncoding.DecodeString(r.FormValue("SAMLResponse"))
	m.mu.Lock()
	m.responses = append(m.responses, raw)
	m.mu.Unlock()
	info, err := m.sp.RetrieveAssertionInfo(r.FormValue("SAMLResponse"))
	if err == nil {
		switch {
		case info.WarningInfo.InvalidTime:
			err = errors.New("assertion not valid now")
		case info.WarningInfo.NotInAudience:
			err = errors.New("assertion for another audience")
		case len(info.Assertions) != 1:
			err = fmt.Errorf("%d assertions", len(info.Assertions))
		}
	}
	if err == nil {
		irt := info.Assertions[0].Subject.SubjectConfirmation.SubjectConfirmationData.InResponseTo
		m.mu.Lock()
		switch {
		case irt == "": // IdP-initiated
		case m.issued[irt]:
			delete(m.issued, irt)
		default:
			err = fmt.Errorf("InResponseTo %q was never issued (or already used)", irt)
		}
		m.mu.Unlock()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		m.failures = append(m.failures, err)
		http.Error(w, "login refused", http.StatusForbidden)
		return
	}
	m.logins = append(m.logins, info)
	to := r.FormValue("RelayState")
	if !strings.HasPrefix(to, "/") || strings.HasPrefix(to, "//") {
		to = "/"
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

func (m *miniSP) lastLogin(t *testing.T) *saml2.AssertionInfo {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.failures) > 0 {
		t.Fatalf("the SP refused: %v", m.failures)
	}
	if len(m.logins) == 0 {
		t.Fatal("no login reached the SP")
	}
	return m.logins[len(m.logins)-1]
}

func (m *miniSP) lastResponse() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.responses[len(m.responses)-1]
}

// checkResponseShape checks what samlidp sent: a signed Response (RSA-SHA256) whose
// assertion is encrypted exactly when the SP metadata offered an encryption key.
func checkResponseShape(t *testing.T, raw []byte, encrypted bool) {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil {
		t.Fatal(err)
	}
	if doc.FindElement("/Response/Signature") == nil {
		t.Error("Response not signed")
	}
	if got := doc.FindElement("/Response/Signature/SignedInfo/SignatureMethod").SelectAttrValue("Algorithm", ""); got != dsig.RSASHA256SignatureMethod {
		t.Errorf("SignatureMethod %s", got)
	}
	if enc := doc.FindElement("/Response/EncryptedAssertion") != nil; enc != encrypted {
		t.Errorf("EncryptedAssertion present = %v, want %v", enc, encrypted)
	}
	if !encrypted && doc.FindElement("/Response/Assertion/Signature") == nil {
		t.Error("plain assertion not signed")
	}
}

func fetch(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v", url, resp.Status, err)
	}
	return b
}

func expectRedirect(t *testing.T, resp *http.Response, to string) {
	t.Helper()
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != to {
		t.Fatalf("SP answered %s Location %q, want 303 to %q: %s", resp.Status, resp.Header.Get("Location"), to, body)
	}
}

func checkAlice(t *testing.T, info *saml2.AssertionInfo) {
	t.Helper()
	if info.NameID != "alice@acme.com" || info.NameIDFormat != NameIDFormatTransient {
		t.Errorf("NameID %q format %q", info.NameID, info.NameIDFormat)
	}
	want := map[string]string{
		AttrMail: "alice@acme.com", AttrEPPN: "alice@acme.com", AttrUID: "alice",
		AttrGivenName: "Alice", AttrSurname: "Liddell", AttrCommonName: "Alice Liddell",
	}
	for name, v := range want {
		if got := info.Values.Get(name); got != v {
			t.Errorf("attribute %s = %q, want %q", name, got, v)
		}
	}
	if got := info.Values.GetAll(AttrGroups); !slices.Equal(got, []string{"eng", "admins"}) {
		t.Errorf("groups = %q", got)
	}
	if friendly := info.Values[AttrMail].FriendlyName; friendly != "mail" {
		t.Errorf("mail FriendlyName %q", friendly)
	}
	if info.SessionIndex == "" {
		t.Error("no SessionIndex")
	}
}

// The proof the toolkit works: a gosaml2 SP logs a user in through samlidp, SP- and
// IdP-initiated, with and without assertion encryption.
func TestRealIdPLogin(t *testing.T) {
	for _, plain := range []bool{false, true} {
		name := "encrypted assertion"
		if plain {
			name = "plain assertion"
		}
		t.Run(name, func(t *testing.T) {
			idp := StartRealIdP(t)
			sp := startMiniSP(t, idp, plain)
			idp.AddServiceProvider(t, "acme", fetch(t, sp.EntityID+"/metadata"))
			idp.AddUser(t, "alice", "wonderland", "alice@acme.com", "Alice", "Liddell", "eng", "admins")

			c := idp.Browser(t)
			resp, err := c.Get(sp.EntityID + "/login?return_to=/dashboard")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(resp.Request.URL.String(), idp.SSOURL+"?") {
				t.Fatalf("the browser ended at %s, not the IdP's SSO URL", resp.Request.URL)
			}
			expectRedirect(t, idp.SignIn(t, c, resp, "alice", "wonderland"), "/dashboard")
			info := sp.lastLogin(t)
			checkAlice(t, info)
			if got := info.Assertions[0].Subject.SubjectConfirmation.SubjectConfirmationData.InResponseTo; got == "" {
				t.Error("SP-initiated login came back unsolicited")
			}
			checkResponseShape(t, sp.lastResponse(), !plain)

			// The IdP session now exists: the next SP-initiated login goes straight
			// to the auto-post form, and SignIn just submits it.
			resp, err = c.Get(sp.EntityID + "/login?return_to=/again")
			if err != nil {
				t.Fatal(err)
			}
			expectRedirect(t, idp.SignIn(t, c, resp, "alice", "ignored"), "/again")
			checkAlice(t, sp.lastLogin(t))

			// IdP-initiated, in a fresh browser.
			idp.AddShortcut(t, "acme", sp.EntityID, "/welcome")
			c = idp.Browser(t)
			resp, err = c.Get(idp.IdPInitiatedURL("acme"))
			if err != nil {
				t.Fatal(err)
			}
			expectRedirect(t, idp.SignIn(t, c, resp, "alice", "wonderland"), "/welcome")
			info = sp.lastLogin(t)
			checkAlice(t, info)
			if got := info.Assertions[0].Subject.SubjectConfirmation.SubjectConfirmationData.InResponseTo; got != "" {
				t.Errorf("IdP-initiated login answers request %q", got)
			}
		})
	}
}

// PostForm alone drives the last hop: the IdP's auto-post form to the ACS.
func TestRealIdPPostForm(t *testing.T) {
	idp := StartRealIdP(t)
	sp := startMiniSP(t, idp, false)
	idp.AddServiceProvider(t, "acme", fetch(t, sp.EntityID+"/metadata"))
	idp.AddUser(t, "alice", "wonderland", "alice@acme.com", "Alice", "Liddell", "eng", "admins")
	idp.AddShortcut(t, "acme", sp.EntityID, "")
	c := idp.Browser(t)

	// Sign in through the login page by hand, then fetch the shortcut again.
	resp, err := c.Get(idp.IdPInitiatedURL("acme"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := ParseForm(readBody(t, resp))
	if err != nil || f.Method != http.MethodPost || !f.Values.Has("user") || !f.Values.Has("password") {
		t.Fatalf("login form %+v %v", f, err)
	}
	f.Values.Set("user", "alice")
	f.Values.Set("password", "wonderland")
	login := postForm(t, c, f, resp.Request.URL)
	if login.StatusCode != http.StatusOK {
		t.Fatalf("login: %s", login.Status)
	}
	login.Body.Close()
	resp, err = c.Get(idp.IdPInitiatedURL("acme"))
	if err != nil {
		t.Fatal(err)
	}
	expectRedirect(t, PostForm(t, c, readBody(t, resp)), "/")
	checkAlice(t, sp.lastLogin(t))
}

// fatalRecorder catches Fatalf so a test can check that a helper fails the test.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestRealIdPSignInWrongPassword(t *testing.T) {
	idp := StartRealIdP(t)
	sp := startMiniSP(t, idp, false)
	idp.AddServiceProvider(t, "acme", fetch(t, sp.EntityID+"/metadata"))
	idp.AddUser(t, "alice", "wonderland", "alice@acme.com", "Alice", "Liddell")
	c := idp.Browser(t)
	resp, err := c.Get(sp.EntityID + "/login?return_to=/x")
	if err != nil {
		t.Fatal(err)
	}
	rec := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		idp.SignIn(rec, c, resp, "alice", "looking-glass")
	}()
	<-done
	if !strings.Contains(rec.msg, `refused user "alice"`) || !strings.Contains(rec.msg, "Invalid username or password") {
		t.Fatalf("SignIn with a wrong password: %q", rec.msg)
	}
}

// An AuthnRequest from an SP the IdP does not know is refused: the IdP matches the
// request's Issuer against registered metadata.
func TestRealIdPUnknownSP(t *testing.T) {
	idp := StartRealIdP(t)
	sp := startMiniSP(t, idp, false)
	resp, err := idp.Browser(t).Get(sp.EntityID + "/login?return_to=/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("unknown SP: %s", resp.Status)
	}
}

func TestRealIdPMetadata(t *testing.T) {
	idp := StartRealIdP(t)
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(idp.MetadataXML(t)); err != nil {
		t.Fatal(err)
	}
	if got := doc.Root().SelectAttrValue("entityID", ""); got != idp.EntityID || !strings.HasPrefix(got, "http://localhost:") {
		t.Fatalf("entityID %q", got)
	}
	for _, sso := range doc.FindElements("//SingleSignOnService") {
		if sso.SelectAttrValue("Location", "") != idp.SSOURL {
			t.Errorf("SSO %s", sso.SelectAttrValue("Location", ""))
		}
	}
}

func TestParseForm(t *testing.T) {
	page := []byte(`<!DOCTYPE html><html><head><script>if (a < b && c) {}</script>
<style>p > a {}</style></head><body>
<form id=first method=post action="https://sp.test/acs?x=1&amp;y=2">
<input type="hidden" name="SAMLResponse" value="PD94&#43;bWw&#61;">
<input type=hidden name=RelayState value="/a b">
<input type="text" name="user" placeholder="user" value="" />
<input type="checkbox" name="remember" checked>
<input type="checkbox" name="spam" value="yes">
<input type="radio" name="r" value="1"><input type="radio" name="r" value="2" checked>
<select name="s"><option value="a">A<option value="b" selected>B</select>
<textarea name="note">hi &amp; bye</textarea>
<input type="submit" name="go" value="Go">
</form><form action="/second"><input name="no" value="no"></form></body></html>`)
	f, err := ParseForm(page)
	if err != nil {
		t.Fatal(err)
	}
	if f.Action != "https://sp.test/acs?x=1&y=2" || f.Method != http.MethodPost {
		t.Errorf("action %q method %q", f.Action, f.Method)
	}
	want := "RelayState=%2Fa+b&SAMLResponse=PD94%2BbWw%3D&note=hi+%26+bye&r=2&remember=on&s=b&user="
	if got := f.Values.Encode(); got != want {
		t.Errorf("values\n got %s\nwant %s", got, want)
	}
	if _, err := ParseForm([]byte("<html><p>no form</p></html>")); err == nil {
		t.Error("a page without a form parsed")
	}
}
