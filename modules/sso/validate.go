package sso

import (
	"bytes"
	"cmp"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/beevik/etree"
	saml2 "github.com/russellhaering/gosaml2"
	"github.com/russellhaering/gosaml2/types"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/gatehouse-dev/gatehouse/modules/keys"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

// assertion is what a validated SAML response says about the person.
type assertion struct {
	AssertionID  string
	InResponseTo string
	NameID       string
	Email        string
	GivenName    string
	FamilyName   string
	Groups       []string
	SessionIndex string
	NotOnOrAfter time.Time
}

// refusal is a validation failure; its text is shown to the person (for their admin)
// and recorded in the audit event, so it names the rule and never echoes secrets.
type refusal string

func (r refusal) Error() string { return string(r) }

func refusef(format string, args ...any) error { return refusal(fmt.Sprintf(format, args...)) }

// validateResponse checks a base64 SAMLResponse posted to a tenant's ACS. gosaml2 checks
// the signature against the connection's certificates, the issuers, the status, the
// Destination (when present), the Recipient and the SubjectConfirmation's expiry; it
// reports audience and validity-window failures only as warnings and leaves the rest to
// the application. Those are checked here:
//   - no DOCTYPE (entity tricks) and no compressed payload (the POST binding has none);
//   - exactly one assertion in the whole document, so nothing can hide beside it;
//   - a signed Response must carry Destination;
//   - an AudienceRestriction is required and must name this SP;
//   - NotBefore/NotOnOrAfter with the configured clock skew, and nothing beyond it;
//   - InResponseTo on the Response and the SubjectConfirmationData must agree.
//
// Binding InResponseTo to the browser, unsolicited responses and replay are checked by
// the caller, which holds the request.
func (h *Handler) validateResponse(t tenancy.Tenant, conn tenancy.SAMLConnection, encoded string) (assertion, error) {
	sp, err := h.serviceProvider(t, conn, keys.Key{})
	if err != nil {
		return assertion{}, err
	}
	certs, err := conn.X509Certificates()
	if err != nil {
		return assertion{}, err
	}
	return checkResponse(sp, certs, conn.Attributes, encoded, h.clock.Now(), h.cfg.ClockSkew)
}

// checkResponse is validateResponse for a built SP (its entity ID, ACS URL and IdP
// issuer) and the IdP's certificates, at the instant now.
func checkResponse(sp *saml2.SAMLServiceProvider, certs []*x509.Certificate, attrs tenancy.SAMLAttributeMap, encoded string, now time.Time, skew time.Duration) (assertion, error) {
	raw, err := decodeB64(encoded)
	if err != nil {
		return assertion{}, refusal("the SAMLResponse is not valid base64")
	}
	encoded = encodeB64(raw)
	if err := precheck(raw); err != nil {
		return assertion{}, err
	}

	// gosaml2 compares the SubjectConfirmation's NotOnOrAfter with its clock and has no
	// skew setting; running it skew behind is the same as allowing the skew there. The
	// same clock decides whether the IdP certificate is valid, so a certificate issued
	// within the last skew minutes is checked again at the real time.
	var resp *types.Response
	err = withEachCertificate(sp, certs, func() error {
		var err error
		sp.Clock = dsig.NewFakeClockAt(now.Add(-skew))
		resp, err = sp.ValidateEncodedResponse(encoded)
		if err != nil && strings.Contains(err.Error(), errCertNotValidNow) {
			sp.Clock = dsig.NewFakeClockAt(now)
			resp, err = sp.ValidateEncodedResponse(encoded)
		}
		return err
	})
	if err != nil {
		return assertion{}, refusef("the SAML response failed validation: %s", describe(err))
	}
	if len(resp.Assertions) != 1 || len(resp.EncryptedAssertions) != 0 {
		return assertion{}, refusef("the response must carry exactly one signed assertion (it has %d)", len(resp.Assertions)+len(resp.EncryptedAssertions))
	}
	if resp.SignatureValidated && resp.Destination == "" {
		return assertion{}, refusal("the Response is signed but has no Destination; the IdP must send Destination=" + sp.AssertionConsumerServiceURL)
	}
	as := resp.Assertions[0]
	if as.Issuer == nil || as.Issuer.Value != sp.IdentityProviderIssuer {
		return assertion{}, refusal("the assertion's Issuer is not the configured IdP entity ID " + sp.IdentityProviderIssuer)
	}
	if as.Conditions == nil || len(as.Conditions.AudienceRestrictions) == 0 {
		return assertion{}, refusal("the assertion has no AudienceRestriction; the IdP must restrict it to " + sp.AudienceURI)
	}
	nb, err1 := time.Parse(time.RFC3339, as.Conditions.NotBefore)
	noa, err2 := time.Parse(time.RFC3339, as.Conditions.NotOnOrAfter)
	if err1 != nil || err2 != nil {
		return assertion{}, refusal("the assertion's Conditions need NotBefore and NotOnOrAfter times")
	}
	// Evaluate gosaml2's condition checks at "now", moved by at most the skew into the
	// assertion's window: within the skew it passes, beyond it InvalidTime is set.
	at := now
	switch {
	case now.Before(nb) && nb.Sub(now) <= skew:
		at = nb
	case !now.Before(noa) && now.Sub(noa) < skew:
		at = noa.Add(-time.Second)
	}
	sp.Clock = dsig.NewFakeClockAt(at)
	warn, err := sp.VerifyAssertionConditions(&as)
	if err != nil {
		return assertion{}, refusef("the assertion's conditions are malformed: %s", describe(err))
	}
	if warn.NotInAudience {
		return assertion{}, refusal("the assertion's audience is not this service provider; the IdP must use the Entity ID " + sp.AudienceURI)
	}
	if warn.InvalidTime {
		if now.Before(nb) {
			return assertion{}, refusef("the assertion is not valid yet (NotBefore %s is more than %s ahead of this server's clock); check the IdP's clock", nb.Format(time.RFC3339), skew)
		}
		return assertion{}, refusef("the assertion has expired (NotOnOrAfter %s, allowed clock skew %s)", noa.Format(time.RFC3339), skew)
	}
	if as.Subject == nil || as.Subject.NameID == nil || strings.TrimSpace(as.Subject.NameID.Value) == "" {
		return assertion{}, refusal("the assertion has no NameID")
	}
	irt := resp.InResponseTo
	if sc := as.Subject.SubjectConfirmation; sc != nil && sc.SubjectConfirmationData != nil {
		if d := sc.SubjectConfirmationData.InResponseTo; d != "" {
			if irt != "" && irt != d {
				return assertion{}, refusal("the Response and its SubjectConfirmationData disagree on InResponseTo")
			}
			irt = d
		}
	}
	if as.ID == "" {
		return assertion{}, refusal("the assertion has no ID")
	}

	vals := saml2.Values{}
	if as.AttributeStatement != nil {
		for _, at := range as.AttributeStatement.Attributes {
			vals[at.Name] = at
		}
	}
	emails, givens, families, groups := attrs.Candidates()
	a := assertion{AssertionID: as.ID, InResponseTo: irt, NameID: strings.TrimSpace(as.Subject.NameID.Value),
		Email: first(vals, emails), GivenName: first(vals, givens), FamilyName: first(vals, families),
		NotOnOrAfter: noa}
	for _, g := range groups {
		if vs := vals.GetAll(g); len(vs) > 0 {
			a.Groups = vs
			break
		}
	}
	if as.AuthnStatement != nil {
		a.SessionIndex = as.AuthnStatement.SessionIndex
	}
	return a, nil
}

func first(vals saml2.Values, names []string) string {
	for _, n := range names {
		if v := strings.TrimSpace(vals.Get(n)); v != "" {
			return v
		}
	}
	return ""
}

// precheck refuses what no honest IdP sends, before any XML library sees it: a DOCTYPE
// or entity declaration, a payload that is not XML (compressed), and any count of
// assertions other than one anywhere in the document (signature-wrapping attacks hide a
// second assertion where the signature check does not look).
func precheck(raw []byte) error {
	trimmed := bytes.TrimLeft(raw, " \t\r\n\ufeff")
	if len(trimmed) == 0 || trimmed[0] != '<' {
		return refusal("the SAMLResponse is not an XML document (the HTTP-POST binding is not compressed)")
	}
	upper := bytes.ToUpper(raw)
	if bytes.Contains(upper, []byte("<!DOCTYPE")) || bytes.Contains(upper, []byte("<!ENTITY")) {
		return refusal("the SAML response contains a DOCTYPE, which is never allowed")
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil || doc.Root() == nil {
		return refusal("the SAML response is not well-formed XML")
	}
	if doc.Root().Tag != "Response" {
		return refusal("the document is not a SAML Response")
	}
	n := 0
	var walk func(e *etree.Element)
	walk = func(e *etree.Element) {
		if e.Tag == "Assertion" || e.Tag == "EncryptedAssertion" {
			n++
		}
		for _, c := range e.ChildElements() {
			walk(c)
		}
	}
	walk(doc.Root())
	if n != 1 {
		return refusef("the response must carry exactly one assertion (it has %d)", n)
	}
	return nil
}

// goxmldsig's messages about the certificate a signature is checked with.
const (
	errKeyInfoNotTrusted = "Could not verify certificate against trusted certs" // KeyInfo names another certificate
	errCertNotValidNow   = "Cert is not valid at this time"
)

// signatureMismatch reports whether err says the signature (or the content it covers)
// does not verify with the certificate it was checked with: x509's RSA and ECDSA
// verification errors, or goxmldsig's digest mismatch.
func signatureMismatch(err error) bool {
	msg := err.Error()
	return errors.Is(err, rsa.ErrVerification) || strings.Contains(msg, "ECDSA verification failure") ||
		strings.Contains(msg, "Signature could not be verified")
}

// withEachCertificate runs check with sp trusting one of the IdP's certificates at a
// time, until one passes. goxmldsig takes the signer from the signature's KeyInfo,
// and with several trusted certificates and no KeyInfo it gives up ("Missing x509
// Element"), so an IdP that leaves KeyInfo out could not sign in at all while its
// metadata lists two certificates — exactly during a rollover. Trying each alone
// accepts a signature by any listed certificate, with or without KeyInfo. An error
// that is not about the certificate is returned at once: it would be the same with
// every one. When no certificate passes, the error names the most telling cause: a
// signature that matches none, else a signer that is listed but not valid now.
func withEachCertificate(sp *saml2.SAMLServiceProvider, certs []*x509.Certificate, check func() error) error {
	if len(certs) == 0 {
		return errors.New("the SAML connection has no IdP certificate")
	}
	var mismatch, notValid, otherKeyInfo error
	for _, c := range certs {
		sp.IDPCertificateStore = &dsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{c}}
		err := check()
		if err == nil {
			return nil
		}
		switch msg := err.Error(); {
		case signatureMismatch(err):
			mismatch = cmp.Or(mismatch, err)
		case strings.Contains(msg, errCertNotValidNow):
			notValid = cmp.Or(notValid, err)
		case strings.Contains(msg, errKeyInfoNotTrusted):
			otherKeyInfo = cmp.Or(otherKeyInfo, err)
		default:
			return err
		}
	}
	return cmp.Or(mismatch, notValid, otherKeyInfo)
}

// describe turns a gosaml2/goxmldsig error into text for the admin.
func describe(err error) string {
	var ve saml2.ErrVerification
	if errors.As(err, &ve) {
		err = ve.Cause
	}
	var iv saml2.ErrInvalidValue
	if errors.As(err, &iv) {
		switch {
		case iv.Reason == saml2.ReasonExpired:
			return fmt.Sprintf("the assertion has expired (%s %s is past, beyond the allowed clock skew)", iv.Key, iv.Actual)
		case iv.Key == saml2.IssuerTag:
			return fmt.Sprintf("the Issuer %q is not the IdP entity ID configured for this organization (%q)", iv.Actual, iv.Expected)
		case iv.Key == saml2.StatusCodeTag:
			return fmt.Sprintf("the IdP reported an error status (%s) instead of a successful sign-in", iv.Actual)
		}
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, errKeyInfoNotTrusted), signatureMismatch(err):
		return "the signature does not verify with the IdP certificates configured for this organization (was the response changed, or did the IdP's signing certificate change? re-run `gatehouse saml configure` with fresh metadata)"
	case strings.Contains(msg, "Missing signature"), errors.Is(err, dsig.ErrMissingSignature):
		return "the response is not signed"
	}
	return msg
}

func decodeB64(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		return nil, errNotBase64
	}
	return b, nil
}

func encodeB64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
