package samltest

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	saml2 "github.com/russellhaering/gosaml2"
	dsig "github.com/russellhaering/goxmldsig"
)

// spConfig is what a gosaml2 SP needs to judge a response.
type spConfig struct {
	CertPEM   string
	IdPIssuer string // "" = not checked
	ACS       string
	Audience  string
	At        time.Time // zero = real clock
}

// gosamlSP returns a gosaml2 SP configured like the SP under test will be.
func gosamlSP(t testing.TB, c spConfig) *saml2.SAMLServiceProvider {
	t.Helper()
	cert := parseCertPEM(t, c.CertPEM)
	clock := dsig.NewRealClock()
	if !c.At.IsZero() {
		clock = dsig.NewFakeClock(clockwork.NewFakeClockAt(c.At))
	}
	return &saml2.SAMLServiceProvider{
		IdentityProviderIssuer:      c.IdPIssuer,
		AssertionConsumerServiceURL: c.ACS,
		AudienceURI:                 c.Audience,
		IDPCertificateStore:         &dsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{cert}},
		Clock:                       clock,
	}
}

// accept runs RetrieveAssertionInfo and, like any correct SP must, also treats
// gosaml2's warnings (wrong audience, outside NotBefore/NotOnOrAfter) as refusals.
func accept(sp *saml2.SAMLServiceProvider, b64 string) (*saml2.AssertionInfo, error) {
	info, err := sp.RetrieveAssertionInfo(b64)
	if err != nil {
		return nil, err
	}
	switch {
	case info.WarningInfo.NotInAudience:
		return info, errors.New("not in audience")
	case info.WarningInfo.InvalidTime:
		return info, errors.New("invalid time")
	}
	return info, nil
}

func parseCertPEM(t testing.TB, s string) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		t.Fatalf("no PEM block in %q", s)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}
