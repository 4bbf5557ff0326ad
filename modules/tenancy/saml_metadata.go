package tenancy

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
)

// SAML bindings and formats that connections use.
const (
	SAMLBindingHTTPRedirect = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
	SAMLBindingHTTPPost     = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
	NameIDFormatUnspecified = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
)

// MaxMetadataBytes bounds an IdP metadata document, uploaded or fetched.
const MaxMetadataBytes = 1 << 20

// maxMetadataCertificates bounds how many signing certificates one IdP may list.
const maxMetadataCertificates = 10

const (
	mdNS            = "urn:oasis:names:tc:SAML:2.0:metadata"
	saml2ProtocolNS = "urn:oasis:names:tc:SAML:2.0:protocol"
)

// IdPMetadata is what Gatehouse takes from an IdP's SAML metadata.
type IdPMetadata struct {
	EntityID   string
	SSOURL     string
	SSOBinding string // SAMLBindingHTTPRedirect when offered, else SAMLBindingHTTPPost
	SLOURL     string // "" when the IdP offers no single logout over a supported binding
	SLOBinding string
	// Certificates are the IdP's signing certificates, in document order, without
	// duplicates; more than one during a key rollover.
	Certificates            []*x509.Certificate
	NameIDFormat            string // the first one listed, NameIDFormatUnspecified if none
	WantAuthnRequestsSigned bool
}

// The subset of the SAML 2.0 metadata schema read here. Unknown elements (signatures,
// WS-Federation role descriptors, organisation and contact data) are ignored.
type mdEntities struct {
	XMLName  xml.Name     `xml:"urn:oasis:names:tc:SAML:2.0:metadata EntitiesDescriptor"`
	Entities []mdEntity   `xml:"urn:oasis:names:tc:SAML:2.0:metadata EntityDescriptor"`
	Nested   []mdEntities `xml:"urn:oasis:names:tc:SAML:2.0:metadata EntitiesDescriptor"`
}

type mdEntity struct {
	XMLName    xml.Name `xml:"urn:oasis:names:tc:SAML:2.0:metadata EntityDescriptor"`
	EntityID   string   `xml:"entityID,attr"`
	ValidUntil string   `xml:"validUntil,attr"`
	IdPs       []mdIdP  `xml:"urn:oasis:names:tc:SAML:2.0:metadata IDPSSODescriptor"`
}

type mdIdP struct {
	ProtocolSupport         string       `xml:"protocolSupportEnumeration,attr"`
	WantAuthnRequestsSigned string       `xml:"WantAuthnRequestsSigned,attr"`
	Keys                    []mdKey      `xml:"urn:oasis:names:tc:SAML:2.0:metadata KeyDescriptor"`
	NameIDFormats           []string     `xml:"urn:oasis:names:tc:SAML:2.0:metadata NameIDFormat"`
	SSO                     []mdEndpoint `xml:"urn:oasis:names:tc:SAML:2.0:metadata SingleSignOnService"`
	SLO                     []mdEndpoint `xml:"urn:oasis:names:tc:SAML:2.0:metadata SingleLogoutService"`
}

type mdKey struct {
	Use   string   `xml:"use,attr"`
	Certs []string `xml:"http://www.w3.org/2000/09/xmldsig# KeyInfo>X509Data>X509Certificate"`
}

type mdEndpoint struct {
	Binding  string `xml:"Binding,attr"`
	Location string `xml:"Location,attr"`
}

func (e mdEntities) idpEntities() []mdEntity {
	var out []mdEntity
	for _, ent := range e.Entities {
		if len(ent.IdPs) > 0 {
			out = append(out, ent)
		}
	}
	for _, n := range e.Nested {
		out = append(out, n.idpEntities()...)
	}
	return out
}

// ParseIdPMetadata reads an IdP's SAML 2.0 metadata: what Entra ID calls "Federation
// Metadata XML" and Okta "Identity Provider metadata". The root is an EntityDescriptor,
// or an EntitiesDescriptor holding exactly one identity provider. Documents over 1 MiB
// and documents with a DOCTYPE are refused before anything else is read. Warnings name
// things that are accepted but need the admin's attention, such as expired certificates.
// Errors are apperr.Invalid with a message for the tenant's administrator.
func ParseIdPMetadata(doc []byte) (IdPMetadata, []string, error) {
	return parseIdPMetadata(doc, time.Now())
}

func invalidMetadata(format string, args ...any) error {
	return apperr.Invalid("the IdP metadata is not usable: "+format, args...)
}

func parseIdPMetadata(doc []byte, now time.Time) (IdPMetadata, []string, error) {
	if len(doc) > MaxMetadataBytes {
		return IdPMetadata{}, nil, invalidMetadata("it is %d bytes; the limit is %d (1 MiB)", len(doc), MaxMetadataBytes)
	}
	if len(bytes.TrimSpace(doc)) == 0 {
		return IdPMetadata{}, nil, invalidMetadata("the document is empty")
	}
	root, err := scanMetadata(doc)
	if err != nil {
		return IdPMetadata{}, nil, err
	}
	var ent mdEntity
	switch {
	case root == xml.Name{Space: mdNS, Local: "EntityDescriptor"}:
		if err := xml.Unmarshal(doc, &ent); err != nil {
			return IdPMetadata{}, nil, invalidMetadata("it does not parse: %v", err)
		}
		if len(ent.IdPs) == 0 {
			return IdPMetadata{}, nil, invalidMetadata("it has no IDPSSODescriptor, so it does not describe an identity provider (is it a service provider's metadata?); download the IdP metadata of the Gatehouse application from your IdP")
		}
	case root == xml.Name{Space: mdNS, Local: "EntitiesDescriptor"}:
		var all mdEntities
		if err := xml.Unmarshal(doc, &all); err != nil {
			return IdPMetadata{}, nil, invalidMetadata("it does not parse: %v", err)
		}
		idps := all.idpEntities()
		switch len(idps) {
		case 0:
			return IdPMetadata{}, nil, invalidMetadata("it has no IDPSSODescriptor, so it does not describe an identity provider; download the IdP metadata of the Gatehouse application from your IdP")
		case 1:
			ent = idps[0]
		default:
			ids := make([]string, 0, 3)
			for _, e := range idps[:min(3, len(idps))] {
				ids = append(ids, fmt.Sprintf("%q", e.EntityID))
			}
			return IdPMetadata{}, nil, invalidMetadata("it describes %d identity providers (%s…), not one; download the metadata of the single IdP application configured for this tenant", len(idps), strings.Join(ids, ", "))
		}
	case root.Local == "EntityDescriptor" || root.Local == "EntitiesDescriptor":
		return IdPMetadata{}, nil, invalidMetadata("the root element %s is not in the SAML 2.0 metadata namespace %q", root.Local, mdNS)
	default:
		return IdPMetadata{}, nil, invalidMetadata("the root element is %s, not a SAML 2.0 EntityDescriptor; give the IdP's federation metadata XML", root.Local)
	}
	return idpFromEntity(ent, now)
}

// scanMetadata reads every token once, refusing DOCTYPE (and with it entity
// declarations, the way to "billion laughs" and external entities) and anything that is
// not well-formed, and returns the root element's name.
func scanMetadata(doc []byte) (xml.Name, error) {
	d := xml.NewDecoder(bytes.NewReader(doc))
	var root xml.Name
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return xml.Name{}, invalidMetadata("it is not well-formed XML (%v)", err)
		}
		switch t := tok.(type) {
		case xml.Directive:
			if bytes.HasPrefix(bytes.ToUpper(bytes.TrimSpace(t)), []byte("DOCTYPE")) {
				return xml.Name{}, invalidMetadata("it contains a DOCTYPE declaration, which is refused for safety; SAML metadata never needs one")
			}
			return xml.Name{}, invalidMetadata("it contains an XML declaration <!%s…>, which is refused for safety", firstWord(t))
		case xml.StartElement:
			if root.Local == "" {
				root = t.Name
			}
		}
	}
	if root.Local == "" {
		return xml.Name{}, invalidMetadata("it has no XML elements")
	}
	return root, nil
}

func firstWord(b []byte) string {
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

func xsBoolean(s string) bool {
	s = strings.TrimSpace(s)
	return s == "true" || s == "1"
}

func idpFromEntity(ent mdEntity, now time.Time) (IdPMetadata, []string, error) {
	var warnings []string
	md := IdPMetadata{EntityID: strings.TrimSpace(ent.EntityID)}
	if md.EntityID == "" {
		return IdPMetadata{}, nil, invalidMetadata("the EntityDescriptor has no entityID")
	}
	if len(md.EntityID) > 1024 {
		return IdPMetadata{}, nil, invalidMetadata("the entityID is %d characters; the limit is 1024", len(md.EntityID))
	}
	if vu := strings.TrimSpace(ent.ValidUntil); vu != "" {
		if t, err := time.Parse(time.RFC3339, vu); err == nil && now.After(t) {
			warnings = append(warnings, fmt.Sprintf("the metadata says it was valid until %s; ask the IdP for current metadata", t.UTC().Format(time.RFC3339)))
		}
	}
	var idp *mdIdP
	for i := range ent.IdPs {
		if slices.Contains(strings.Fields(ent.IdPs[i].ProtocolSupport), saml2ProtocolNS) {
			idp = &ent.IdPs[i]
			break
		}
	}
	if idp == nil {
		return IdPMetadata{}, nil, invalidMetadata("its IDPSSODescriptor does not list SAML 2.0 (protocolSupportEnumeration %q)", saml2ProtocolNS)
	}
	md.WantAuthnRequestsSigned = xsBoolean(idp.WantAuthnRequestsSigned)

	sso, ok := pickEndpoint(idp.SSO)
	if !ok {
		return IdPMetadata{}, nil, invalidMetadata("it has no SingleSignOnService with the HTTP-Redirect or HTTP-POST binding")
	}
	if err := checkEndpointURL("SingleSignOnService", sso.Location); err != nil {
		return IdPMetadata{}, nil, err
	}
	md.SSOURL, md.SSOBinding = strings.TrimSpace(sso.Location), sso.Binding
	if slo, ok := pickEndpoint(idp.SLO); ok {
		if err := checkEndpointURL("SingleLogoutService", slo.Location); err != nil {
			return IdPMetadata{}, nil, err
		}
		md.SLOURL, md.SLOBinding = strings.TrimSpace(slo.Location), slo.Binding
	}
	md.NameIDFormat = NameIDFormatUnspecified
	for _, f := range idp.NameIDFormats {
		if f = strings.TrimSpace(f); f != "" {
			md.NameIDFormat = f
			break
		}
	}

	certs, certWarnings, err := signingCertificates(idp.Keys)
	if err != nil {
		return IdPMetadata{}, nil, err
	}
	md.Certificates = certs
	warnings = append(warnings, certWarnings...)
	warnings = append(warnings, certificateWarnings(certs, now)...)
	if strings.HasPrefix(md.SSOURL, "http:") {
		warnings = append(warnings, "the SingleSignOnService URL uses plain http; use https outside development")
	}
	return md, warnings, nil
}

// pickEndpoint prefers HTTP-Redirect, then HTTP-POST; other bindings are not supported.
func pickEndpoint(eps []mdEndpoint) (mdEndpoint, bool) {
	for _, b := range []string{SAMLBindingHTTPRedirect, SAMLBindingHTTPPost} {
		for _, e := range eps {
			if strings.TrimSpace(e.Binding) == b {
				e.Binding = b
				return e, true
			}
		}
	}
	return mdEndpoint{}, false
}

// checkEndpointURL accepts absolute http(s) URLs only: the browser is sent there.
func checkEndpointURL(what, raw string) error {
	raw = strings.TrimSpace(raw)
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || len(raw) > 2048 {
		return invalidMetadata("the %s Location %q is not an absolute https URL", what, truncate(raw, 100))
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// signingCertificates decodes the certificates of every KeyDescriptor whose use is
// "signing" or not given (which means both signing and encryption).
func signingCertificates(keys []mdKey) ([]*x509.Certificate, []string, error) {
	var certs []*x509.Certificate
	var warnings []string
	n := 0
	for _, k := range keys {
		use := strings.TrimSpace(k.Use)
		if use != "" && use != "signing" {
			continue
		}
		for _, text := range k.Certs {
			n++
			der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(text), ""))
			if err != nil {
				return nil, nil, invalidMetadata("signing certificate %d (X509Certificate) is not valid base64: %v", n, err)
			}
			cert, err := x509.ParseCertificate(der)
			if err != nil {
				return nil, nil, invalidMetadata("signing certificate %d (X509Certificate) is not an X.509 certificate: %v", n, err)
			}
			if slices.ContainsFunc(certs, func(c *x509.Certificate) bool { return c.Equal(cert) }) {
				continue
			}
			switch pub := cert.PublicKey.(type) {
			case *rsa.PublicKey:
				if pub.N.BitLen() < 2048 {
					warnings = append(warnings, fmt.Sprintf("signing certificate %s has a %d-bit RSA key; 2048 bits or more is expected", describeCert(cert), pub.N.BitLen()))
				}
			case *ecdsa.PublicKey:
			default:
				warnings = append(warnings, fmt.Sprintf("signing certificate %s has a %T key, which SAML signatures here cannot use; it is ignored", describeCert(cert), cert.PublicKey))
				continue
			}
			certs = append(certs, cert)
		}
	}
	if len(certs) == 0 {
		return nil, nil, invalidMetadata("the metadata has no signing certificate (KeyDescriptor use=\"signing\" with an X509Certificate in the IDPSSODescriptor); Gatehouse needs it to check the IdP's signatures. Download the full federation metadata XML, not only the certificate")
	}
	if len(certs) > maxMetadataCertificates {
		return nil, nil, invalidMetadata("it lists %d signing certificates; the limit is %d", len(certs), maxMetadataCertificates)
	}
	return certs, warnings, nil
}

// describeCert names a certificate for people: its subject and SHA-256 fingerprint.
func describeCert(c *x509.Certificate) string {
	return fmt.Sprintf("%q (SHA-256 %s)", c.Subject.String(), CertificateFingerprint(c))
}

// certificateWarnings reports signing certificates that are expired or not yet valid.
func certificateWarnings(certs []*x509.Certificate, now time.Time) []string {
	var out []string
	valid := 0
	for _, c := range certs {
		switch {
		case now.After(c.NotAfter):
			out = append(out, fmt.Sprintf("signing certificate %s expired on %s", describeCert(c), c.NotAfter.UTC().Format(time.RFC3339)))
		case now.Before(c.NotBefore):
			out = append(out, fmt.Sprintf("signing certificate %s is not valid before %s", describeCert(c), c.NotBefore.UTC().Format(time.RFC3339)))
		default:
			valid++
		}
	}
	if len(certs) > 0 && valid == 0 {
		out = append(out, "no signing certificate is currently valid: sign-in will fail until the IdP publishes metadata with a current certificate")
	}
	return out
}
