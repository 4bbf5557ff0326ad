package samltest

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/crewjam/saml/samlidp"
	dsig "github.com/russellhaering/goxmldsig"
)

// Attribute names (SAML Attribute@Name, attrname-format uri) that samlidp puts in
// every assertion, whatever the SP asks for; an attribute whose value is empty is
// left out. gosaml2's AssertionInfo.Values is keyed by these names.
const (
	AttrUID        = "urn:oid:0.9.2342.19200300.100.1.1" // FriendlyName uid: the samlidp user name
	AttrMail       = "urn:oid:0.9.2342.19200300.100.1.3" // FriendlyName mail: email
	AttrEPPN       = "urn:oid:1.3.6.1.4.1.5923.1.1.1.6"  // FriendlyName eduPersonPrincipalName: email again
	AttrSurname    = "urn:oid:2.5.4.4"                   // FriendlyName sn: family name
	AttrGivenName  = "urn:oid:2.5.4.42"                  // FriendlyName givenName
	AttrCommonName = "urn:oid:2.5.4.3"                   // FriendlyName cn: "given family"
	// AttrGroups carries the user's groups, one AttributeValue each.
	AttrGroups = "urn:oid:1.3.6.1.4.1.5923.1.1.1.1" // FriendlyName eduPersonAffiliation
)

// RealIdP is crewjam/saml's samlidp (v0.5.1) serving on loopback: a real, if small,
// SAML IdP with users, registered SPs, sessions and IdP-initiated shortcuts.
//
// How samlidp behaves, read from its source:
//   - Entity ID and Issuer are MetadataURL (URL+"/metadata"); SSO is at URL+"/sso"
//     (HTTP-Redirect and HTTP-POST); it answers with an auto-submitting HTML form
//     (HTTP-POST binding) to the ACS.
//   - It picks the SP by the AuthnRequest's Issuer, which must equal the entityID of
//     metadata registered with AddServiceProvider, and it checks the request's
//     AssertionConsumerServiceURL (or index) against that metadata's ACS endpoints. A
//     Destination on the request must equal SSOURL; IssueInstant may be at most 90 s
//     old. Request signatures are not checked.
//   - With no session it shows a login form (fields user, password, plus hidden
//     SAMLRequest and RelayState) that posts to URL+"/login"; that endpoint only sets
//     the "session" cookie (Path /, host-only, one hour) and answers with JSON, so
//     SignIn then repeats the original request, as a user reloading the page would.
//   - NameID is the user's email with Format transient
//     (urn:oasis:names:tc:SAML:2.0:nameid-format:transient), NameQualifier the IdP's
//     entity ID, SPNameQualifier the SP's.
//   - Attributes: see AttrUID… above (uid, mail, eduPersonPrincipalName, sn,
//     givenName, cn, eduPersonAffiliation for groups). If the SP metadata has an
//     AttributeConsumingService, requested attributes with NameFormat basic or
//     unspecified are added under the requested name when it is (after dropping
//     non-alphanumerics, case-sensitively) one of email, emailaddress, name, fullname,
//     cn, commonname, givenname, firstname, surname, lastname, familyname, uid, user,
//     userid.
//   - The Response and the Assertion are both signed (StartRealIdP switches samlidp's
//     default RSA-SHA1 to RSA-SHA256; set Server.IDP.SignatureMethod before the first
//     request to change it). If the SP metadata has a KeyDescriptor use="encryption"
//     (or one with no use), the assertion is encrypted to that certificate
//     (RSA-OAEP, AES-128-CBC).
//   - Validity: NotBefore now-180s, NotOnOrAfter now+90s (crewjam's MaxClockSkew and
//     MaxIssueDelay).
//
// The server's host is "localhost", not 127.0.0.1: cookie jars ignore ports, so an SP
// under test on httptest's 127.0.0.1 keeps its own cookies apart from the IdP's
// "session" cookie. Address the SP by 127.0.0.1 (httptest's default URL).
type RealIdP struct {
	URL         string // base URL, http://localhost:PORT
	MetadataURL string // URL+"/metadata"
	EntityID    string // the entity ID and Issuer: MetadataURL
	SSOURL      string // URL+"/sso"
	Key         *rsa.PrivateKey
	Cert        *x509.Certificate
	Server      *samlidp.Server // the samlidp server itself, for what the helpers do not cover
	srv         *httptest.Server
}

// StartRealIdP starts samlidp with a fresh RSA-2048 key and self-signed certificate
// and an in-memory store on a loopback port; it is closed when the test ends.
func StartRealIdP(t testing.TB) *RealIdP {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	base := fmt.Sprintf("http://localhost:%d", port)
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	key, cert := newKeyPair(t, base, time.Now())
	idp, err := samlidp.New(samlidp.Options{
		URL:         *u,
		Key:         key,
		Certificate: cert,
		Store:       &samlidp.MemoryStore{},
		Logger:      log.New(testLogWriter{t}, "samlidp: ", 0),
	})
	if err != nil {
		t.Fatalf("samltest: samlidp.New: %v", err)
	}
	idp.IDP.SignatureMethod = dsig.RSASHA256SignatureMethod
	srv.Config.Handler = idp
	srv.Start()
	t.Cleanup(srv.Close)
	return &RealIdP{
		URL:         base,
		MetadataURL: base + "/metadata",
		EntityID:    base + "/metadata",
		SSOURL:      base + "/sso",
		Key:         key,
		Cert:        cert,
		Server:      idp,
		srv:         srv,
	}
}

type testLogWriter struct{ t testing.TB }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// CertPEM returns the IdP's signing certificate as PEM.
func (r *RealIdP) CertPEM() string { return certPEM(r.Cert) }

// MetadataXML fetches the IdP's metadata from its /metadata endpoint.
func (r *RealIdP) MetadataXML(t testing.TB) []byte {
	t.Helper()
	resp, err := r.srv.Client().Get(r.MetadataURL)
	if err != nil {
		t.Fatalf("samltest: get IdP metadata: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("samltest: get IdP metadata: %s %v", resp.Status, err)
	}
	return body
}

// AddUser creates (or replaces) a user through samlidp's API (PUT /users/{name}).
// Its email becomes the NameID; given and family become givenName, sn and cn
// ("given family"); groups become eduPersonAffiliation values.
func (r *RealIdP) AddUser(t testing.TB, name, password, email, given, family string, groups ...string) {
	t.Helper()
	body, _ := json.Marshal(samlidp.User{
		PlaintextPassword: &password,
		Email:             email,
		GivenName:         given,
		Surname:           family,
		CommonName:        strings.TrimSpace(given + " " + family),
		Groups:            groups,
	})
	r.put(t, "/users/"+url.PathEscape(name), "application/json", body)
}

// AddServiceProvider registers an SP (PUT /services/{id}) from its metadata, which the
// test fetches from the SP (for the SP under test: B/saml/S/metadata). The SP is then
// known by the metadata's entityID; id is only samlidp's storage key.
func (r *RealIdP) AddServiceProvider(t testing.TB, id string, spMetadataXML []byte) {
	t.Helper()
	r.put(t, "/services/"+url.PathEscape(id), "application/samlmetadata+xml", spMetadataXML)
}

// AddShortcut registers an IdP-initiated login: a browser that visits
// IdPInitiatedURL(name) is sent, after signing in, to the ACS of the SP whose entity ID
// is spEntityID, with RelayState relayState ("" sends none).
func (r *RealIdP) AddShortcut(t testing.TB, name, spEntityID, relayState string) {
	t.Helper()
	sc := samlidp.Shortcut{ServiceProviderID: spEntityID}
	if relayState != "" {
		sc.RelayState = &relayState
	}
	body, _ := json.Marshal(sc)
	r.put(t, "/shortcuts/"+url.PathEscape(name), "application/json", body)
}

// IdPInitiatedURL is where a browser starts the IdP-initiated login of a shortcut.
func (r *RealIdP) IdPInitiatedURL(shortcut string) string {
	return r.URL + "/login/" + url.PathEscape(shortcut)
}

func (r *RealIdP) put(t testing.TB, path, contentType string, body []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, r.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := r.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("samltest: PUT %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		msg, _ := io.ReadAll(resp.Body)
		t.Fatalf("samltest: PUT %s: %s %s", path, resp.Status, msg)
	}
}

// Browser returns an http.Client with a cookie jar that follows redirects only when
// they lead to the IdP. Redirects from the SP to the IdP (SP-initiated login) are
// followed to the login page; the SP's own redirects (after the ACS, to return_to) are
// not, so SignIn and PostForm hand back the SP's 3xx for the test to inspect.
func (r *RealIdP) Browser(t testing.TB) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(r.URL, "http://")
	return &http.Client{
		Jar:     jar,
		Timeout: 30 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 10 {
				return errors.New("samltest: stopped after 10 redirects")
			}
			if req.URL.Host != host {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
}

// SignIn completes a login at the IdP. resp is the IdP's answer to the browser's
// arrival — the login page after the SP's redirect to SSOURL, or after a visit to
// IdPInitiatedURL — and c the client (a Browser, or any client with a cookie jar)
// that got it. SignIn posts user and password to the login form, repeats the
// original request now that the IdP's session cookie is set (samlidp's /login only
// answers with JSON), and submits the resulting auto-post form (SAMLResponse,
// RelayState) to the SP's ACS with c. It returns the SP's response to that POST,
// unread; with a Browser client that is the SP's own redirect, not followed. If the
// browser already had a session, resp is the auto-post form itself and is submitted
// as is. Wrong credentials fail the test.
func (r *RealIdP) SignIn(t testing.TB, c *http.Client, resp *http.Response, user, password string) *http.Response {
	t.Helper()
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("samltest: SignIn: expected the IdP's login page, got %s from %s: %.500s", resp.Status, resp.Request.URL, body)
	}
	form, err := ParseForm(body)
	if err != nil {
		t.Fatalf("samltest: SignIn: %v in %.500s", err, body)
	}
	if form.Values.Has("SAMLResponse") { // already signed in
		return postForm(t, c, form, resp.Request.URL)
	}
	if !form.Values.Has("password") {
		t.Fatalf("samltest: SignIn: no login form in %.500s", body)
	}
	form.Values.Set("user", user)
	form.Values.Set("password", password)
	login := postForm(t, c, form, resp.Request.URL)
	loginBody := readBody(t, login)
	if f, err := ParseForm(loginBody); err == nil {
		if f.Values.Has("SAMLResponse") { // a login template that posts straight to /sso
			return postForm(t, c, f, login.Request.URL)
		}
		if f.Values.Has("password") {
			t.Fatalf("samltest: SignIn: the IdP refused user %q: %.300s", user, loginBody)
		}
	}
	if login.StatusCode != http.StatusOK {
		t.Fatalf("samltest: SignIn: login answered %s: %.300s", login.Status, loginBody)
	}

	// Repeat what brought the browser to the login page, now with a session.
	orig := resp.Request
	var again *http.Response
	if orig.Method == http.MethodPost {
		v := url.Values{}
		for _, k := range []string{"SAMLRequest", "RelayState"} {
			if form.Values.Has(k) {
				v.Set(k, form.Values.Get(k))
			}
		}
		again, err = c.PostForm(orig.URL.String(), v)
	} else {
		again, err = c.Get(orig.URL.String())
	}
	if err != nil {
		t.Fatalf("samltest: SignIn: repeat %s %s: %v", orig.Method, orig.URL, err)
	}
	againBody := readBody(t, again)
	f, err := ParseForm(againBody)
	if err != nil || !f.Values.Has("SAMLResponse") {
		t.Fatalf("samltest: SignIn: no SAMLResponse form from %s (%s): %.500s", orig.URL, again.Status, againBody)
	}
	return postForm(t, c, f, again.Request.URL)
}

// HTMLForm is the first <form> of a page: where it goes and what it would submit.
type HTMLForm struct {
	Action string // as written; may be relative
	Method string // upper case; GET when absent
	Values url.Values
}

var scriptOrStyle = regexp.MustCompile(`(?is)<(script|style)\b.*?</(script|style)\s*>`)

// ParseForm finds the first <form> in an HTML page and collects what a browser would
// submit without a click: its named <input>s (checkboxes and radios only when
// checked; no submit, button, image, reset or file inputs), <textarea>s and
// <select>s (the selected or first option).
func ParseForm(htmlBody []byte) (HTMLForm, error) {
	d := xml.NewDecoder(bytes.NewReader(scriptOrStyle.ReplaceAll(htmlBody, nil)))
	d.Strict = false
	d.AutoClose = xml.HTMLAutoClose
	d.Entity = xml.HTMLEntity
	var (
		f                 HTMLForm
		in                bool
		textName, selName string
		text              strings.Builder
		selValue          *string
		selChosen         bool
	)
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return f, fmt.Errorf("parse HTML: %w", err)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			name := strings.ToLower(el.Name.Local)
			if name == "form" && !in {
				in = true
				f.Action = attr(el, "action")
				f.Method = strings.ToUpper(attr(el, "method"))
				if f.Method == "" {
					f.Method = http.MethodGet
				}
				f.Values = url.Values{}
				continue
			}
			if !in {
				continue
			}
			field := attr(el, "name")
			switch name {
			case "input":
				typ := strings.ToLower(attr(el, "type"))
				switch {
				case field == "", typ == "submit", typ == "button", typ == "image", typ == "reset", typ == "file":
				case (typ == "checkbox" || typ == "radio") && !hasAttr(el, "checked"):
				case typ == "checkbox" || typ == "radio":
					v := attr(el, "value")
					if !hasAttr(el, "value") {
						v = "on"
					}
					f.Values.Add(field, v)
				default:
					f.Values.Add(field, attr(el, "value"))
				}
			case "textarea":
				textName = field
				text.Reset()
			case "select":
				selName, selValue, selChosen = field, nil, false
			case "option":
				if selName == "" {
					continue
				}
				v := attr(el, "value")
				switch {
				case hasAttr(el, "selected") && !selChosen:
					selValue, selChosen = &v, true
				case selValue == nil:
					selValue = &v
				}
			}
		case xml.CharData:
			if textName != "" {
				text.Write(el)
			}
		case xml.EndElement:
			switch strings.ToLower(el.Name.Local) {
			case "textarea":
				if textName != "" {
					f.Values.Add(textName, text.String())
					textName = ""
				}
			case "select":
				if selName != "" && selValue != nil {
					f.Values.Add(selName, *selValue)
				}
				selName = ""
			case "form":
				if in {
					return f, nil
				}
			}
		}
	}
	if !in {
		return f, errors.New("no <form> in the page")
	}
	return f, nil // an unclosed form ends with the page
}

func attr(el xml.StartElement, name string) string {
	for _, a := range el.Attr {
		if strings.EqualFold(a.Name.Local, name) {
			return a.Value
		}
	}
	return ""
}

func hasAttr(el xml.StartElement, name string) bool {
	for _, a := range el.Attr {
		if strings.EqualFold(a.Name.Local, name) {
			return true
		}
	}
	return false
}

// PostForm parses the first <form> of htmlBody and submits it with c, like a browser
// running the IdP's auto-submit script. The form's action must be an absolute URL
// (samlidp's and every IdP's auto-post form has one). The response is returned
// unread.
func PostForm(t testing.TB, c *http.Client, htmlBody []byte) *http.Response {
	t.Helper()
	f, err := ParseForm(htmlBody)
	if err != nil {
		t.Fatalf("samltest: PostForm: %v in %.500s", err, htmlBody)
	}
	return postForm(t, c, f, nil)
}

// postForm submits f, resolving its action against base (nil: it must be absolute).
func postForm(t testing.TB, c *http.Client, f HTMLForm, base *url.URL) *http.Response {
	t.Helper()
	action, err := url.Parse(f.Action)
	if err != nil {
		t.Fatalf("samltest: form action %q: %v", f.Action, err)
	}
	if base != nil {
		action = base.ResolveReference(action)
	} else if !action.IsAbs() {
		t.Fatalf("samltest: form action %q is not absolute", f.Action)
	}
	var resp *http.Response
	if f.Method == http.MethodPost {
		resp, err = c.PostForm(action.String(), f.Values)
	} else {
		action.RawQuery = f.Values.Encode()
		resp, err = c.Get(action.String())
	}
	if err != nil {
		t.Fatalf("samltest: submit form to %s: %v", action, err)
	}
	return resp
}

func readBody(t testing.TB, resp *http.Response) []byte {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("samltest: read response from %s: %v", resp.Request.URL, err)
	}
	return b
}
