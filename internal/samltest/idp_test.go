package samltest

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
)

const (
	testACS      = "https://sp.test/saml/acme/acs"
	testAudience = "https://sp.test/saml/acme"
)

func newTestIdP(t *testing.T) *IdP {
	t.Helper()
	return NewIdP(t, "https://idp.test/acme")
}

func defaultSP(t *testing.T, p *IdP) spConfig {
	return spConfig{CertPEM: p.CertPEM(), IdPIssuer: p.EntityID, ACS: testACS, Audience: testAudience}
}

func parseDoc(t *testing.T, raw []byte) *etree.Document {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil {
		t.Fatalf("crafted document does not parse: %v\n%s", err, raw)
	}
	return doc
}

func TestDefaultResponseIsAcceptedByGosaml2(t *testing.T) {
	p := newTestIdP(t)
	b64 := p.Response(t, ResponseOptions{
		Destination:  testACS,
		Audience:     testAudience,
		InResponseTo: "_req1",
		NameID:       "bob@acme.com",
		SessionIndex: "sess-1",
		Attributes:   map[string][]string{"email": {"bob@acme.com"}, "groups": {"eng", "ops"}},
	})
	info, err := accept(gosamlSP(t, defaultSP(t, p)), b64)
	if err != nil {
		t.Fatalf("gosaml2 refused a default response: %v", err)
	}
	if info.NameID != "bob@acme.com" || info.NameIDFormat != NameIDFormatEmail {
		t.Errorf("NameID = %q (%q)", info.NameID, info.NameIDFormat)
	}
	if got := info.Values.Get("email"); got != "bob@acme.com" {
		t.Errorf("email = %q", got)
	}
	if got := info.Values.GetAll("groups"); strings.Join(got, ",") != "eng,ops" {
		t.Errorf("groups = %q", got)
	}
	if info.SessionIndex != "sess-1" {
		t.Errorf("SessionIndex = %q", info.SessionIndex)
	}
	if info.ResponseSignatureValidated {
		t.Error("the default signs only the assertion, yet the response signature was validated")
	}

	raw, _ := base64.StdEncoding.DecodeString(b64)
	doc := parseDoc(t, raw)
	root := doc.Root()
	if root.Tag != "Response" || root.SelectAttrValue("Destination", "") != testACS || root.SelectAttrValue("InResponseTo", "") != "_req1" {
		t.Errorf("Response attributes wrong: %s", raw)
	}
	scd := doc.FindElement("//SubjectConfirmationData")
	if scd.SelectAttrValue("Recipient", "") != testACS || scd.SelectAttrValue("InResponseTo", "") != "_req1" {
		t.Errorf("SubjectConfirmationData wrong: %s", raw)
	}
	// SAML's schema puts the Signature right after the Issuer.
	a := doc.FindElement("/Response/Assertion")
	kids := a.ChildElements()
	if len(kids) < 2 || kids[0].Tag != "Issuer" || kids[1].Tag != "Signature" {
		t.Errorf("assertion signature is not right after Issuer: %s", raw)
	}
	if doc.FindElement("/Response/Signature") != nil {
		t.Error("response is signed by default")
	}
	if got := doc.FindElement("//SignatureMethod").SelectAttrValue("Algorithm", ""); got != "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256" {
		t.Errorf("SignatureMethod = %s", got)
	}
	if got := doc.FindElement("//CanonicalizationMethod").SelectAttrValue("Algorithm", ""); got != "http://www.w3.org/2001/10/xml-exc-c14n#" {
		t.Errorf("CanonicalizationMethod = %s", got)
	}
}

// Each option must produce the document it promises, and gosaml2 (what the SP under
// test uses) must react the way a negative test expects.
func TestResponseOptions(t *testing.T) {
	p := newTestIdP(t)
	other := NewIdP(t, "https://evil.test/idp")
	now := time.Now()
	base := func() ResponseOptions { return ResponseOptions{Destination: testACS, Audience: testAudience} }

	cases := []struct {
		name    string
		opts    func(o *ResponseOptions)
		check   func(t *testing.T, doc *etree.Document)
		wantErr string // "" = gosaml2 (plus warning checks) accepts
	}{
		{
			name: "signed response only",
			opts: func(o *ResponseOptions) { o.SignResponse = true },
			check: func(t *testing.T, doc *etree.Document) {
				kids := doc.Root().ChildElements()
				if kids[0].Tag != "Issuer" || kids[1].Tag != "Signature" {
					t.Error("response signature is not right after Issuer")
				}
				if doc.FindElement("/Response/Assertion/Signature") != nil {
					t.Error("assertion signed although only SignResponse was asked")
				}
			},
		},
		{
			name: "both signed",
			opts: func(o *ResponseOptions) { o.SignResponse, o.SignAssertion = true, true },
			check: func(t *testing.T, doc *etree.Document) {
				if doc.FindElement("/Response/Signature") == nil || doc.FindElement("/Response/Assertion/Signature") == nil {
					t.Error("want two signatures")
				}
			},
		},
		{
			name:    "wrong audience",
			opts:    func(o *ResponseOptions) { o.Audience = "https://other-sp.test" },
			wantErr: "not in audience",
		},
		{
			name: "no audience restriction",
			opts: func(o *ResponseOptions) { o.NoAudienceRestriction = true },
			check: func(t *testing.T, doc *etree.Document) {
				if doc.FindElement("//AudienceRestriction") != nil {
					t.Error("AudienceRestriction present")
				}
			},
			// gosaml2 does not require an AudienceRestriction; the SP must.
		},
		{
			name:    "wrong recipient",
			opts:    func(o *ResponseOptions) { o.Recipient = "https://sp.test/saml/other/acs" },
			wantErr: "Recipient",
		},
		{
			name:    "wrong destination",
			opts:    func(o *ResponseOptions) { o.Destination = "https://sp.test/saml/other/acs"; o.Recipient = testACS },
			wantErr: "Destination",
		},
		{
			name: "omitted destination",
			opts: func(o *ResponseOptions) { o.OmitDestination = true },
			check: func(t *testing.T, doc *etree.Document) {
				if doc.Root().SelectAttr("Destination") != nil {
					t.Error("Destination present")
				}
				if doc.FindElement("//SubjectConfirmationData").SelectAttrValue("Recipient", "") != testACS {
					t.Error("Recipient must still default to Destination")
				}
			},
		},
		{
			name: "unsolicited",
			check: func(t *testing.T, doc *etree.Document) {
				if doc.Root().SelectAttr("InResponseTo") != nil || doc.FindElement("//SubjectConfirmationData").SelectAttr("InResponseTo") != nil {
					t.Error("InResponseTo present on an unsolicited response")
				}
			},
		},
		{
			name: "expired",
			opts: func(o *ResponseOptions) {
				o.NotBefore, o.NotOnOrAfter = now.Add(-10*time.Minute), now.Add(-5*time.Minute)
			},
			wantErr: "Expired",
		},
		{
			name: "not yet valid",
			opts: func(o *ResponseOptions) {
				o.NotBefore = now.Add(5 * time.Minute)
				o.NotOnOrAfter = now.Add(10 * time.Minute)
			},
			wantErr: "invalid time",
		},
		{
			name:    "other issuer",
			opts:    func(o *ResponseOptions) { o.Issuer = "https://evil.test/idp" },
			wantErr: "Issuer",
		},
		{
			name: "signed with another key",
			opts: func(o *ResponseOptions) { o.SignWith = other },
			check: func(t *testing.T, doc *etree.Document) {
				want := base64.StdEncoding.EncodeToString(other.Cert.Raw)
				if got := doc.FindElement("//X509Certificate").Text(); got != want {
					t.Error("KeyInfo does not carry the other IdP's certificate")
				}
			},
			wantErr: "Could not verify certificate against trusted certs",
		},
		{
			name:    "status requester",
			opts:    func(o *ResponseOptions) { o.StatusCode = StatusRequester },
			wantErr: "StatusCode",
		},
		{
			name: "two assertions",
			opts: func(o *ResponseOptions) { o.TwoAssertions = true; o.NameID = "alice@acme.com" },
			check: func(t *testing.T, doc *etree.Document) {
				as := doc.FindElements("/Response/Assertion")
				if len(as) != 2 {
					t.Fatalf("%d assertions", len(as))
				}
				if as[0].SelectAttrValue("ID", "") == as[1].SelectAttrValue("ID", "") {
					t.Error("same ID twice")
				}
				if got := as[1].FindElement("Subject/NameID").Text(); got != "second@acme.com" {
					t.Errorf("second NameID = %q", got)
				}
				for i, a := range as {
					ref := a.FindElement("Signature/SignedInfo/Reference")
					if ref == nil || ref.SelectAttrValue("URI", "") != "#"+a.SelectAttrValue("ID", "") {
						t.Errorf("assertion %d is not signed over its own ID", i)
					}
				}
			},
			// gosaml2 verifies both and returns the first; the SP under test must
			// refuse a response with more than one assertion.
		},
		{
			name: "NameID changed after signing",
			opts: func(o *ResponseOptions) {
				o.NameID = "mallory@acme.com"
				o.Mutate = func(doc *etree.Document) { doc.FindElement("//NameID").SetText("admin@acme.com") }
			},
			wantErr: "Signature could not be verified",
		},
		{
			name: "subject confirmation outlives the conditions",
			opts: func(o *ResponseOptions) {
				o.NotOnOrAfter, o.SubjectConfirmationNotOnOrAfter = now.Add(-10*time.Minute), now.Add(5*time.Minute)
			},
			check: func(t *testing.T, doc *etree.Document) {
				if doc.FindElement("//Conditions").SelectAttrValue("NotOnOrAfter", "") == doc.FindElement("//SubjectConfirmationData").SelectAttrValue("NotOnOrAfter", "") {
					t.Error("SubjectConfirmationData@NotOnOrAfter follows the Conditions")
				}
			},
			wantErr: "invalid time", // only the Conditions say so: a warning, not an error
		},
		{
			name: "no KeyInfo",
			opts: func(o *ResponseOptions) { o.SignResponse, o.SignAssertion, o.OmitKeyInfo = true, true, true },
			check: func(t *testing.T, doc *etree.Document) {
				if len(doc.FindElements("//Signature")) != 2 || doc.FindElement("//KeyInfo") != nil {
					t.Error("want two signatures without KeyInfo")
				}
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := base()
			if c.opts != nil {
				c.opts(&o)
			}
			raw := p.ResponseXML(t, o)
			if c.check != nil {
				c.check(t, parseDoc(t, raw))
			}
			_, err := accept(gosamlSP(t, defaultSP(t, p)), base64.StdEncoding.EncodeToString(raw))
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatalf("gosaml2 refused: %v", err)
			case c.wantErr != "" && err == nil:
				t.Fatalf("gosaml2 accepted; want an error containing %q", c.wantErr)
			case c.wantErr != "" && !strings.Contains(err.Error(), c.wantErr):
				t.Fatalf("error %q does not contain %q", err, c.wantErr)
			}
		})
	}
}

// The classic comment-injection attack: the victim signs for
// admin@acme.com.evil.com, the attacker makes it admin@acme.com<!---->.evil.com. The
// signature still verifies (c14n drops comments), so only the SP's reading of the
// NameID stands between the attacker and admin@acme.com.
func TestInjectCommentInNameID(t *testing.T) {
	p := newTestIdP(t)
	raw := p.ResponseXML(t, ResponseOptions{
		Destination: testACS, Audience: testAudience,
		NameID: "admin@acme.com.evil.com",
		Mutate: func(doc *etree.Document) { InjectCommentInNameID(doc, len("admin@acme.com")) },
	})
	if !bytes.Contains(raw, []byte(">admin@acme.com<!---->.evil.com</saml:NameID>")) {
		t.Fatalf("comment not injected: %s", raw)
	}
	info, err := accept(gosamlSP(t, defaultSP(t, p)), base64.StdEncoding.EncodeToString(raw))
	if err != nil {
		t.Fatalf("the signature should survive a comment, got %v", err)
	}
	if info.NameID != "admin@acme.com.evil.com" {
		t.Fatalf("gosaml2 read NameID %q; only the full signed value is safe", info.NameID)
	}
}

func TestWithDoctype(t *testing.T) {
	p := newTestIdP(t)
	raw := WithDoctype(p.ResponseXML(t, ResponseOptions{Destination: testACS, Audience: testAudience}))
	if !bytes.HasPrefix(raw, []byte(`<?xml version="1.0" encoding="UTF-8"?>`+Doctype+`<samlp:Response`)) {
		t.Fatalf("doctype not right after the XML declaration: %.200s", raw)
	}
	if got := WithDoctype([]byte("<a/>")); string(got) != Doctype+"<a/>" {
		t.Fatalf("without a declaration: %s", got)
	}
	// The signature does not cover the prolog, so refusing DTDs is the SP's job. Log
	// what gosaml2 alone does, for whoever writes the SP.
	_, err := accept(gosamlSP(t, defaultSP(t, p)), base64.StdEncoding.EncodeToString(raw))
	t.Logf("gosaml2 alone on a response with a DOCTYPE: err=%v", err)
}

func TestLogoutRequest(t *testing.T) {
	p := newTestIdP(t)
	const slo = "https://sp.test/saml/acme/slo"
	sp := gosamlSP(t, defaultSP(t, p))
	sp.ServiceProviderSLOURL = slo

	b64 := p.LogoutRequest(t, LogoutOptions{Destination: slo, NameID: "bob@acme.com", SessionIndex: "sess-1", ID: "_lr1"})
	req, err := sp.ValidateEncodedLogoutRequestPOST(b64)
	if err != nil {
		t.Fatalf("gosaml2 refused a signed logout request: %v", err)
	}
	if req.NameID.Value != "bob@acme.com" || req.ID != "_lr1" || !req.SignatureValidated || req.Issuer.Value != p.EntityID {
		t.Fatalf("decoded %+v", req)
	}
	raw, _ := base64.StdEncoding.DecodeString(b64)
	doc := parseDoc(t, raw)
	if doc.FindElement("/LogoutRequest/SessionIndex").Text() != "sess-1" {
		t.Error("SessionIndex missing")
	}
	if kids := doc.Root().ChildElements(); kids[0].Tag != "Issuer" || kids[1].Tag != "Signature" {
		t.Error("signature not right after Issuer")
	}

	if _, err := sp.ValidateEncodedLogoutRequestPOST(p.LogoutRequest(t, LogoutOptions{Destination: slo, Unsigned: true})); err == nil {
		t.Error("gosaml2 accepted an unsigned logout request")
	}
	if _, err := sp.ValidateEncodedLogoutRequestPOST(p.LogoutRequest(t, LogoutOptions{Destination: slo, SignWith: NewIdP(t, "https://evil.test")})); err == nil {
		t.Error("gosaml2 accepted a logout request signed by another key")
	}
}

func TestMetadataXML(t *testing.T) {
	p := newTestIdP(t)
	var ed saml.EntityDescriptor
	if err := xml.Unmarshal(p.MetadataXML(), &ed); err != nil {
		t.Fatal(err)
	}
	if ed.EntityID != p.EntityID || len(ed.IDPSSODescriptors) != 1 {
		t.Fatalf("entity %+v", ed)
	}
	d := ed.IDPSSODescriptors[0]
	if len(d.KeyDescriptors) != 1 || d.KeyDescriptors[0].Use != "signing" ||
		d.KeyDescriptors[0].KeyInfo.X509Data.X509Certificates[0].Data != base64.StdEncoding.EncodeToString(p.Cert.Raw) {
		t.Errorf("key descriptors %+v", d.KeyDescriptors)
	}
	if len(d.NameIDFormats) != 1 || string(d.NameIDFormats[0]) != NameIDFormatEmail {
		t.Errorf("NameIDFormats %v", d.NameIDFormats)
	}
	got := map[string]string{}
	for _, s := range d.SingleSignOnServices {
		got[s.Binding] = s.Location
	}
	if got[BindingHTTPRedirect] != p.EntityID+"/sso" || got[BindingHTTPPost] != p.EntityID+"/sso" {
		t.Errorf("SSO services %v", got)
	}
	if len(d.SingleLogoutServices) != 0 {
		t.Errorf("SLO services %v without SLOURL", d.SingleLogoutServices)
	}

	// A POST-only IdP with single logout, during a certificate rollover.
	next := NewIdP(t, p.EntityID)
	p.SSOBindings, p.SLOURL, p.SLOBindings, p.ExtraCerts = []string{BindingHTTPPost}, p.EntityID+"/slo", []string{BindingHTTPRedirect}, []*x509.Certificate{next.Cert}
	ed = saml.EntityDescriptor{}
	if err := xml.Unmarshal(p.MetadataXML(), &ed); err != nil {
		t.Fatal(err)
	}
	d = ed.IDPSSODescriptors[0]
	if len(d.SingleSignOnServices) != 1 || d.SingleSignOnServices[0].Binding != BindingHTTPPost {
		t.Errorf("SSO services %+v; want HTTP-POST only", d.SingleSignOnServices)
	}
	if len(d.SingleLogoutServices) != 1 || d.SingleLogoutServices[0].Binding != BindingHTTPRedirect || d.SingleLogoutServices[0].Location != p.SLOURL {
		t.Errorf("SLO services %+v", d.SingleLogoutServices)
	}
	if len(d.KeyDescriptors) != 2 || d.KeyDescriptors[1].KeyInfo.X509Data.X509Certificates[0].Data != base64.StdEncoding.EncodeToString(next.Cert.Raw) {
		t.Errorf("key descriptors %+v; want the current and the next certificate", d.KeyDescriptors)
	}
	if c := p.Cert; time.Until(c.NotBefore) > -59*time.Minute || time.Until(c.NotAfter) < 364*24*time.Hour || p.Key.N.BitLen() != 2048 {
		t.Errorf("cert valid %s..%s, key %d bits", c.NotBefore, c.NotAfter, p.Key.N.BitLen())
	}
}

// A LogoutRequest over the HTTP-Redirect binding carries no XML signature; its query
// signature verifies with the signer's certificate only, and not after any signed
// parameter changes.
func TestLogoutRequestRedirect(t *testing.T) {
	p := newTestIdP(t)
	const slo = "https://sp.test/saml/acme/slo"
	u := p.LogoutRequestRedirect(t, slo, "rs/1 &x", LogoutOptions{Destination: slo, NameID: "bob@acme.com", ID: "_lr2"})
	if !strings.HasPrefix(u, slo+"?SAMLRequest=") {
		t.Fatalf("URL %s", u)
	}
	m, err := DecodeRedirect(u, "SAMLRequest")
	if err != nil {
		t.Fatal(err)
	}
	doc := parseDoc(t, m.XML)
	if doc.Root().Tag != "LogoutRequest" || doc.Root().SelectAttrValue("ID", "") != "_lr2" || doc.FindElement("//Signature") != nil {
		t.Fatalf("decoded %s", m.XML)
	}
	if m.RelayState != "rs/1 &x" || !strings.Contains(m.Signed, "&RelayState=rs%2F1+%26x&SigAlg=") {
		t.Fatalf("RelayState %q, signed %q", m.RelayState, m.Signed)
	}
	if err := m.Verify(p.Cert); err != nil {
		t.Fatalf("signature does not verify: %v", err)
	}
	if err := m.Verify(NewIdP(t, "https://other.test").Cert); err == nil {
		t.Error("verifies with another certificate")
	}
	m.Signed = strings.Replace(m.Signed, "rs%2F1", "rs%2F2", 1)
	if err := m.Verify(p.Cert); err == nil {
		t.Error("verifies after RelayState changed")
	}

	other := NewIdP(t, "https://other.test")
	m, _ = DecodeRedirect(p.LogoutRequestRedirect(t, slo, "", LogoutOptions{SignWith: other}), "SAMLRequest")
	if m.Verify(other.Cert) != nil || m.Verify(p.Cert) == nil || strings.Contains(m.Signed, "RelayState") {
		t.Error("SignWith does not sign with the other key")
	}
	m, _ = DecodeRedirect(p.LogoutRequestRedirect(t, slo, "", LogoutOptions{Unsigned: true}), "SAMLRequest")
	if m.SigAlg != "" || m.Signature != nil {
		t.Errorf("unsigned request has SigAlg %q", m.SigAlg)
	}
}
