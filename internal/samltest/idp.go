package samltest

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
)

// SAML namespaces, bindings and well-known values used in crafted documents.
const (
	NSProtocol  = "urn:oasis:names:tc:SAML:2.0:protocol"
	NSAssertion = "urn:oasis:names:tc:SAML:2.0:assertion"
	NSMetadata  = "urn:oasis:names:tc:SAML:2.0:metadata"
	NSDSig      = "http://www.w3.org/2000/09/xmldsig#"

	BindingHTTPRedirect = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
	BindingHTTPPost     = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"

	NameIDFormatEmail      = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
	NameIDFormatPersistent = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
	NameIDFormatTransient  = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"

	StatusSuccess   = "urn:oasis:names:tc:SAML:2.0:status:Success"
	StatusRequester = "urn:oasis:names:tc:SAML:2.0:status:Requester"
	StatusResponder = "urn:oasis:names:tc:SAML:2.0:status:Responder"

	attrNameFormatBasic = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic"
	bearer              = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
	passwordProtected   = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
)

// IdP is a document-crafting identity provider: it owns a real RSA key and certificate
// and signs whatever Response or LogoutRequest a test asks for. It serves nothing;
// give the SP under test MetadataXML (or CertPEM, EntityID and SSOURL) and post the
// output of Response to the SP's ACS.
type IdP struct {
	EntityID string
	SSOURL   string // default EntityID+"/sso"
	Key      *rsa.PrivateKey
	Cert     *x509.Certificate
	// Now is the IdP's clock (IssueInstant, default Conditions); nil means time.Now.
	Now func() time.Time
	// SSOBindings are the bindings MetadataXML offers SingleSignOnService over; nil
	// means HTTP-Redirect and HTTP-POST.
	SSOBindings []string
	// SLOURL, when set, makes MetadataXML list a SingleLogoutService there, over
	// SLOBindings (nil means HTTP-Redirect and HTTP-POST).
	SLOURL      string
	SLOBindings []string
	// ExtraCerts are listed in MetadataXML after Cert, each in its own signing
	// KeyDescriptor, as an IdP does during a certificate rollover.
	ExtraCerts []*x509.Certificate
}

// NewIdP returns an IdP with a fresh RSA-2048 key and a self-signed certificate valid
// from an hour ago to a year from now.
func NewIdP(t testing.TB, entityID string) *IdP {
	t.Helper()
	key, cert := newKeyPair(t, entityID, time.Now())
	return &IdP{EntityID: entityID, SSOURL: entityID + "/sso", Key: key, Cert: cert}
}

// newKeyPair makes an RSA-2048 key and a self-signed certificate for name, valid
// now-1h..now+1y.
func newKeyPair(t testing.TB, name string, now time.Time) (*rsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("samltest: generate key: %v", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatalf("samltest: serial: %v", err)
	}
	cn := name
	if u, err := url.Parse(name); err == nil && u.Host != "" {
		cn = u.Host
	}
	if len(cn) > 64 { // the X.509 upper bound for a common name
		cn = cn[:64]
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"samltest"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(1, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("samltest: create certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("samltest: parse certificate: %v", err)
	}
	return key, cert
}

func (p *IdP) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

func (p *IdP) ssoURL() string {
	if p.SSOURL != "" {
		return p.SSOURL
	}
	return p.EntityID + "/sso"
}

// CertPEM returns the IdP's signing certificate as PEM.
func (p *IdP) CertPEM() string { return certPEM(p.Cert) }

func certPEM(c *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}

// MetadataXML returns the IdP's EntityDescriptor: one IDPSSODescriptor with a signing
// KeyDescriptor for Cert (and one per ExtraCerts), NameIDFormat emailAddress, a
// SingleLogoutService per SLOBindings when SLOURL is set, and a SingleSignOnService at
// SSOURL per SSOBindings (default HTTP-Redirect and HTTP-POST).
func (p *IdP) MetadataXML() []byte {
	doc := etree.NewDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="UTF-8"`)
	ed := doc.CreateElement("md:EntityDescriptor")
	ed.CreateAttr("xmlns:md", NSMetadata)
	ed.CreateAttr("xmlns:ds", NSDSig)
	ed.CreateAttr("entityID", p.EntityID)
	d := ed.CreateElement("md:IDPSSODescriptor")
	d.CreateAttr("WantAuthnRequestsSigned", "false")
	d.CreateAttr("protocolSupportEnumeration", NSProtocol)
	for _, c := range append([]*x509.Certificate{p.Cert}, p.ExtraCerts...) {
		kd := d.CreateElement("md:KeyDescriptor")
		kd.CreateAttr("use", "signing")
		kd.CreateElement("ds:KeyInfo").CreateElement("ds:X509Data").CreateElement("ds:X509Certificate").
			SetText(base64.StdEncoding.EncodeToString(c.Raw))
	}
	if p.SLOURL != "" {
		for _, b := range bindingsOrBoth(p.SLOBindings) {
			s := d.CreateElement("md:SingleLogoutService")
			s.CreateAttr("Binding", b)
			s.CreateAttr("Location", p.SLOURL)
		}
	}
	d.CreateElement("md:NameIDFormat").SetText(NameIDFormatEmail)
	for _, b := range bindingsOrBoth(p.SSOBindings) {
		s := d.CreateElement("md:SingleSignOnService")
		s.CreateAttr("Binding", b)
		s.CreateAttr("Location", p.ssoURL())
	}
	doc.Indent(2)
	out, err := doc.WriteToBytes()
	if err != nil {
		panic("samltest: write metadata: " + err.Error()) // only on an io error from a bytes.Buffer
	}
	return out
}

func bindingsOrBoth(b []string) []string {
	if b == nil {
		return []string{BindingHTTPRedirect, BindingHTTPPost}
	}
	return b
}

// ResponseOptions shape one crafted SAML Response. The zero value plus Destination and
// Audience gives a response a correctly configured SP accepts: success status, one
// assertion signed by the IdP, NameID alice@example.com (emailAddress), an email
// attribute, valid from a minute ago for five minutes.
type ResponseOptions struct {
	Destination     string // Response@Destination; "" leaves it out, as does OmitDestination
	OmitDestination bool
	Recipient       string // SubjectConfirmationData@Recipient; default Destination
	InResponseTo    string // on Response and SubjectConfirmationData; "" = unsolicited (attribute omitted)
	// Audience is the AudienceRestriction/Audience text (the SP's entity ID);
	// NoAudienceRestriction leaves the whole AudienceRestriction out.
	Audience              string
	NoAudienceRestriction bool
	Issuer                string // default EntityID; on the Response and the Assertion
	NameID                string // default alice@example.com
	NameIDFormat          string // default emailAddress
	// Attributes become an AttributeStatement (names sorted, NameFormat basic, xs:string
	// values). nil means {"email": [NameID]}; an empty non-nil map leaves the
	// AttributeStatement out.
	Attributes   map[string][]string
	SessionIndex string // AuthnStatement@SessionIndex; default a random id
	AssertionID  string // default a random "_…" id
	// Conditions; defaults now-1m and now+5m.
	NotBefore, NotOnOrAfter time.Time
	// SubjectConfirmationNotOnOrAfter is SubjectConfirmationData@NotOnOrAfter; default
	// NotOnOrAfter.
	SubjectConfirmationNotOnOrAfter time.Time
	SignResponse                    bool // enveloped signature on the Response
	// SignAssertion signs the Assertion. When neither is set the assertion is signed
	// and the response is not (the Okta/Entra default).
	SignAssertion bool
	// TwoAssertions adds a second assertion, signed separately like the first, with
	// another ID and NameID "second@<domain of NameID>", after the first.
	TwoAssertions bool
	// StatusCode is the top-level StatusCode value; default Success. The assertion is
	// included whatever the status, so an SP must check the status itself.
	StatusCode string
	SignWith   *IdP // sign with another IdP's key and certificate (an untrusted key)
	// OmitKeyInfo leaves the certificate out of every signature (KeyInfo is outside
	// SignedInfo, so the signatures stay valid); the SP must then know which of its
	// trusted certificates to try.
	OmitKeyInfo bool
	// Mutate runs on the finished, signed document before it is serialized: tamper
	// with it here (change the NameID text, InjectCommentInNameID, wrap elements…).
	Mutate func(doc *etree.Document)
}

// Response returns the crafted response base64-encoded, ready for the SAMLResponse
// form field of the HTTP-POST binding.
func (p *IdP) Response(t testing.TB, o ResponseOptions) string {
	t.Helper()
	return base64.StdEncoding.EncodeToString(p.ResponseXML(t, o))
}

// ResponseXML returns the crafted response as XML (with an XML declaration).
func (p *IdP) ResponseXML(t testing.TB, o ResponseOptions) []byte {
	t.Helper()
	now := p.now().UTC()
	if o.Issuer == "" {
		o.Issuer = p.EntityID
	}
	if o.NameID == "" {
		o.NameID = "alice@example.com"
	}
	if o.NameIDFormat == "" {
		o.NameIDFormat = NameIDFormatEmail
	}
	if o.Recipient == "" {
		o.Recipient = o.Destination
	}
	if o.NotBefore.IsZero() {
		o.NotBefore = now.Add(-time.Minute)
	}
	if o.NotOnOrAfter.IsZero() {
		o.NotOnOrAfter = now.Add(5 * time.Minute)
	}
	if o.SubjectConfirmationNotOnOrAfter.IsZero() {
		o.SubjectConfirmationNotOnOrAfter = o.NotOnOrAfter
	}
	if o.StatusCode == "" {
		o.StatusCode = StatusSuccess
	}
	if o.AssertionID == "" {
		o.AssertionID = newID()
	}
	if o.SessionIndex == "" {
		o.SessionIndex = newID()
	}
	if o.Attributes == nil {
		o.Attributes = map[string][]string{"email": {o.NameID}}
	}
	signAssertion := o.SignAssertion || !o.SignResponse
	signer := p
	if o.SignWith != nil {
		signer = o.SignWith
	}

	assertions := []*etree.Element{p.assertion(o, now)}
	if o.TwoAssertions {
		second := o
		second.AssertionID = newID()
		second.SessionIndex = newID()
		domain := "example.com"
		if i := strings.LastIndex(o.NameID, "@"); i >= 0 {
			domain = o.NameID[i+1:]
		}
		second.NameID = "second@" + domain
		second.Attributes = map[string][]string{"email": {second.NameID}}
		assertions = append(assertions, p.assertion(second, now))
	}
	if signAssertion {
		for _, a := range assertions {
			signer.sign(t, a, o.OmitKeyInfo)
		}
	}

	resp := etree.NewElement("samlp:Response")
	resp.CreateAttr("xmlns:samlp", NSProtocol)
	resp.CreateAttr("xmlns:saml", NSAssertion)
	resp.CreateAttr("ID", newID())
	resp.CreateAttr("Version", "2.0")
	resp.CreateAttr("IssueInstant", samlTime(now))
	if o.Destination != "" && !o.OmitDestination {
		resp.CreateAttr("Destination", o.Destination)
	}
	if o.InResponseTo != "" {
		resp.CreateAttr("InResponseTo", o.InResponseTo)
	}
	resp.CreateElement("saml:Issuer").SetText(o.Issuer)
	resp.CreateElement("samlp:Status").CreateElement("samlp:StatusCode").CreateAttr("Value", o.StatusCode)
	for _, a := range assertions {
		resp.AddChild(a)
	}
	if o.SignResponse {
		signer.sign(t, resp, o.OmitKeyInfo)
	}

	doc := etree.NewDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="UTF-8"`)
	doc.SetRoot(resp)
	if o.Mutate != nil {
		o.Mutate(doc)
	}
	out, err := doc.WriteToBytes()
	if err != nil {
		t.Fatalf("samltest: write response: %v", err)
	}
	return out
}

// assertion builds one unsigned Assertion element. It declares its own saml
// namespace so it canonicalizes the same inside the Response and detached.
func (p *IdP) assertion(o ResponseOptions, now time.Time) *etree.Element {
	a := etree.NewElement("saml:Assertion")
	a.CreateAttr("xmlns:saml", NSAssertion)
	a.CreateAttr("ID", o.AssertionID)
	a.CreateAttr("Version", "2.0")
	a.CreateAttr("IssueInstant", samlTime(now))
	a.CreateElement("saml:Issuer").SetText(o.Issuer)

	subj := a.CreateElement("saml:Subject")
	nameID := subj.CreateElement("saml:NameID")
	nameID.CreateAttr("Format", o.NameIDFormat)
	nameID.SetText(o.NameID)
	sc := subj.CreateElement("saml:SubjectConfirmation")
	sc.CreateAttr("Method", bearer)
	scd := sc.CreateElement("saml:SubjectConfirmationData")
	if o.InResponseTo != "" {
		scd.CreateAttr("InResponseTo", o.InResponseTo)
	}
	scd.CreateAttr("NotOnOrAfter", samlTime(o.SubjectConfirmationNotOnOrAfter))
	scd.CreateAttr("Recipient", o.Recipient)

	cond := a.CreateElement("saml:Conditions")
	cond.CreateAttr("NotBefore", samlTime(o.NotBefore))
	cond.CreateAttr("NotOnOrAfter", samlTime(o.NotOnOrAfter))
	if !o.NoAudienceRestriction {
		cond.CreateElement("saml:AudienceRestriction").CreateElement("saml:Audience").SetText(o.Audience)
	}

	as := a.CreateElement("saml:AuthnStatement")
	as.CreateAttr("AuthnInstant", samlTime(now))
	as.CreateAttr("SessionIndex", o.SessionIndex)
	as.CreateElement("saml:AuthnContext").CreateElement("saml:AuthnContextClassRef").SetText(passwordProtected)

	if len(o.Attributes) > 0 {
		st := a.CreateElement("saml:AttributeStatement")
		names := make([]string, 0, len(o.Attributes))
		for n := range o.Attributes {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			attr := st.CreateElement("saml:Attribute")
			attr.CreateAttr("Name", n)
			attr.CreateAttr("NameFormat", attrNameFormatBasic)
			for _, v := range o.Attributes[n] {
				av := attr.CreateElement("saml:AttributeValue")
				av.CreateAttr("xmlns:xs", "http://www.w3.org/2001/XMLSchema")
				av.CreateAttr("xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance")
				av.CreateAttr("xsi:type", "xs:string")
				av.SetText(v)
			}
		}
	}
	return a
}

// sign puts an enveloped signature (RSA-SHA256, exclusive c14n, the signer's
// certificate in KeyInfo unless noKeyInfo) into el right after its Issuer, where SAML
// requires it.
func (p *IdP) sign(t testing.TB, el *etree.Element, noKeyInfo bool) {
	t.Helper()
	sig, err := p.signingContext(t).ConstructSignature(el, true)
	if err != nil {
		t.Fatalf("samltest: sign %s: %v", el.Tag, err)
	}
	if ki := sig.FindElement("./KeyInfo"); noKeyInfo && ki != nil {
		sig.RemoveChild(ki)
	}
	at := 0
	for _, c := range el.ChildElements() {
		if c.Tag == "Issuer" {
			at = c.Index() + 1
			break
		}
	}
	el.InsertChildAt(at, sig)
}

func (p *IdP) signingContext(t testing.TB) *dsig.SigningContext {
	t.Helper()
	ctx := dsig.NewDefaultSigningContext(dsig.TLSCertKeyStore(tls.Certificate{
		Certificate: [][]byte{p.Cert.Raw},
		PrivateKey:  p.Key,
		Leaf:        p.Cert,
	}))
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	if err := ctx.SetSignatureMethod(dsig.RSASHA256SignatureMethod); err != nil {
		t.Fatalf("samltest: signature method: %v", err)
	}
	return ctx
}

// LogoutOptions shape one crafted LogoutRequest (IdP-initiated single logout).
type LogoutOptions struct {
	Destination  string    // LogoutRequest@Destination (the SP's SLO URL); "" leaves it out
	Issuer       string    // default EntityID
	NameID       string    // default alice@example.com
	NameIDFormat string    // default emailAddress
	SessionIndex string    // SessionIndex element; "" leaves it out
	ID           string    // default a random "_…" id
	IssueInstant time.Time // default now
	NotOnOrAfter time.Time // optional LogoutRequest@NotOnOrAfter
	Unsigned     bool      // no signature at all
	OmitKeyInfo  bool      // leave the certificate out of the signature
	SignWith     *IdP      // sign with another IdP's key and certificate
	Mutate       func(doc *etree.Document)
}

// LogoutRequest returns a SAML LogoutRequest, signed unless o.Unsigned, base64-encoded
// for the SAMLRequest field of the HTTP-POST binding.
func (p *IdP) LogoutRequest(t testing.TB, o LogoutOptions) string {
	t.Helper()
	return base64.StdEncoding.EncodeToString(p.LogoutRequestXML(t, o))
}

// LogoutRequestXML is LogoutRequest without the base64.
func (p *IdP) LogoutRequestXML(t testing.TB, o LogoutOptions) []byte {
	t.Helper()
	if o.Issuer == "" {
		o.Issuer = p.EntityID
	}
	if o.NameID == "" {
		o.NameID = "alice@example.com"
	}
	if o.NameIDFormat == "" {
		o.NameIDFormat = NameIDFormatEmail
	}
	if o.ID == "" {
		o.ID = newID()
	}
	if o.IssueInstant.IsZero() {
		o.IssueInstant = p.now()
	}
	req := etree.NewElement("samlp:LogoutRequest")
	req.CreateAttr("xmlns:samlp", NSProtocol)
	req.CreateAttr("xmlns:saml", NSAssertion)
	req.CreateAttr("ID", o.ID)
	req.CreateAttr("Version", "2.0")
	req.CreateAttr("IssueInstant", samlTime(o.IssueInstant))
	if o.Destination != "" {
		req.CreateAttr("Destination", o.Destination)
	}
	if !o.NotOnOrAfter.IsZero() {
		req.CreateAttr("NotOnOrAfter", samlTime(o.NotOnOrAfter))
	}
	req.CreateElement("saml:Issuer").SetText(o.Issuer)
	nameID := req.CreateElement("saml:NameID")
	nameID.CreateAttr("Format", o.NameIDFormat)
	nameID.SetText(o.NameID)
	if o.SessionIndex != "" {
		req.CreateElement("samlp:SessionIndex").SetText(o.SessionIndex)
	}
	if !o.Unsigned {
		signer := p
		if o.SignWith != nil {
			signer = o.SignWith
		}
		signer.sign(t, req, o.OmitKeyInfo)
	}
	doc := etree.NewDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="UTF-8"`)
	doc.SetRoot(req)
	if o.Mutate != nil {
		o.Mutate(doc)
	}
	out, err := doc.WriteToBytes()
	if err != nil {
		t.Fatalf("samltest: write logout request: %v", err)
	}
	return out
}

// InjectCommentInNameID splits the text of the document's first NameID at byte offset
// at and puts an empty XML comment between the halves. XML signatures canonicalize
// without comments, so a document signed for "admin@acme.com.evil.com" still verifies
// as "admin@acme.com<!---->.evil.com" after InjectCommentInNameID(doc, 14) — and an SP
// that reads only the first text node logs the attacker in as admin@acme.com
// (CVE-2017-11427 family). It panics when there is no NameID or at is out of range.
func InjectCommentInNameID(doc *etree.Document, at int) {
	el := doc.FindElement("//NameID")
	if el == nil {
		panic("samltest: InjectCommentInNameID: no NameID in document")
	}
	text := el.Text()
	if at < 0 || at > len(text) {
		panic(fmt.Sprintf("samltest: InjectCommentInNameID: offset %d outside %q", at, text))
	}
	for len(el.Child) > 0 {
		el.RemoveChildAt(0)
	}
	el.CreateText(text[:at])
	el.CreateComment("")
	el.CreateText(text[at:])
}

// Doctype is the document type declaration WithDoctype adds.
const Doctype = `<!DOCTYPE Response [<!ENTITY x "y">]>`

// WithDoctype returns xml with Doctype inserted after the XML declaration (or at the
// start when there is none). SAML forbids DTDs; an SP must refuse such a document
// before it expands anything.
func WithDoctype(xml []byte) []byte {
	at := 0
	if bytes.HasPrefix(xml, []byte("<?xml")) {
		if end := bytes.Index(xml, []byte("?>")); end >= 0 {
			at = end + 2
		}
	}
	out := make([]byte, 0, len(xml)+len(Doctype))
	out = append(out, xml[:at]...)
	out = append(out, Doctype...)
	return append(out, xml[at:]...)
}

func newID() string {
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return "_" + hex.EncodeToString(b)
}

func samlTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }
