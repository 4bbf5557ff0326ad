package tenancy

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/netip"
)

// NonPublicKind is nonPublicKind, for tests that classify most addresses as usual.
var NonPublicKind = nonPublicKind

// UseStrictMetadataFetcher makes s fetch metadata in the production (strict) mode,
// judging addresses with classify and trusting the certificates in roots, so a test
// can stand a loopback https server in for a public IdP.
func (s *Service) UseStrictMetadataFetcher(classify func(netip.Addr) string, roots *x509.CertPool) {
	f := newMetadataFetcher(false)
	f.classify = classify
	f.client.Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: roots}
	s.metadata = f
}
