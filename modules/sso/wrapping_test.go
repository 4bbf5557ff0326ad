package sso

import (
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"

	saml2 "github.com/russellhaering/gosaml2"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/gatehouse-dev/gatehouse/internal/samltest"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

// The signature-wrapping and tampered documents that gosaml2 and crewjam/saml ship in
// their own test data, checked at the instant and with the SP settings they were made
// for. Each attack must be refused; each legit original must be accepted by the same
// settings, so the refusals come from the attack and not from a wrong setup.
func TestSignatureWrappingDocuments(t *testing.T) {
	cases := samltest.SignatureWrappingCases(t)
	if len(cases) < 4 {
		t.Fatalf("only %d wrapping cases found", len(cases))
	}
	attacks := 0
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			blk, _ := pem.Decode([]byte(c.CertPEM))
			if blk == nil {
				t.Fatal("case has no certificate")
			}
			cert, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			sp := &saml2.SAMLServiceProvider{
				IdentityProviderIssuer:      c.IdPEntityID,
				AssertionConsumerServiceURL: c.ACS,
				AudienceURI:                 c.Audience,
				AllowMissingAttributes:      true,
				Clock:                       dsig.NewFakeClockAt(c.At),
			}
			a, err := checkResponse(sp, []*x509.Certificate{cert}, tenancy.SAMLAttributeMap{}, c.ResponseB64, c.At, 3*time.Minute)
			if c.Legit {
				if err != nil {
					t.Fatalf("the legit document %s is refused: %v", c.Source, err)
				}
				return
			}
			attacks++
			if err == nil {
				t.Fatalf("attack accepted (%s): signed in as %q", c.Attack, a.NameID)
			}
			if _, ok := err.(refusal); !ok {
				t.Fatalf("refused with an internal error instead of a reason: %v", err)
			}
			t.Logf("refused: %v", err)
		})
	}
	if attacks < 4 {
		t.Fatalf("only %d attack documents were checked", attacks)
	}
}
