package samltest

import (
	"bytes"
	"compress/flate"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"testing"
)

// SigAlgRSASHA256 is the SigAlg of HTTP-Redirect signatures made here.
const SigAlgRSASHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"

// LogoutRequestRedirect returns the URL an IdP sends the browser to with a
// LogoutRequest over the HTTP-Redirect binding (SAML bindings §3.4): sloURL with
// SAMLRequest (the XML, without an enveloped signature, DEFLATE-compressed and
// base64-encoded), RelayState when given and, unless o.Unsigned, SigAlg (RSA-SHA256)
// and Signature over "SAMLRequest=…&RelayState=…&SigAlg=…" exactly as those appear
// in the query (§3.4.4.1). o.SignWith signs with another IdP's key; o.Mutate changes
// the XML before it is encoded.
func (p *IdP) LogoutRequestRedirect(t testing.TB, sloURL, relayState string, o LogoutOptions) string {
	t.Helper()
	unsigned := o.Unsigned
	o.Unsigned = true
	xml := p.LogoutRequestXML(t, o)
	signer := p
	if o.SignWith != nil {
		signer = o.SignWith
	}
	var key *rsa.PrivateKey
	if !unsigned {
		key = signer.Key
	}
	return RedirectURL(t, sloURL, "SAMLRequest", xml, relayState, key)
}

// RedirectURL encodes a SAML message for the HTTP-Redirect binding at base: param
// ("SAMLRequest" or "SAMLResponse") is the DEFLATE-compressed, base64-encoded xml,
// then RelayState when not "", then, when key is not nil, SigAlg (RSA-SHA256) and the
// Signature over the encoded query so far, in that order (§3.4.4.1).
func RedirectURL(t testing.TB, base, param string, xml []byte, relayState string, key *rsa.PrivateKey) string {
	t.Helper()
	var buf bytes.Buffer
	fw, _ := flate.NewWriter(&buf, flate.DefaultCompression)
	if _, err := fw.Write(xml); err != nil {
		t.Fatalf("samltest: deflate: %v", err)
	}
	if err := fw.Close(); err != nil {
		t.Fatalf("samltest: deflate: %v", err)
	}
	q := param + "=" + url.QueryEscape(base64.StdEncoding.EncodeToString(buf.Bytes()))
	if relayState != "" {
		q += "&RelayState=" + url.QueryEscape(relayState)
	}
	if key != nil {
		q += "&SigAlg=" + url.QueryEscape(SigAlgRSASHA256)
		sum := sha256.Sum256([]byte(q))
		sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
		if err != nil {
			t.Fatalf("samltest: sign the redirect query: %v", err)
		}
		q += "&Signature=" + url.QueryEscape(base64.StdEncoding.EncodeToString(sig))
	}
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + q
}

// RedirectMessage is a SAML message received over the HTTP-Redirect binding.
type RedirectMessage struct {
	XML        []byte // the inflated SAMLRequest or SAMLResponse
	RelayState string
	SigAlg     string
	Signature  []byte
	// Signed is the octet string the signature covers: the raw (still URL-encoded)
	// SAMLRequest/SAMLResponse, RelayState and SigAlg parameters, in that order.
	Signed string
}

// DecodeRedirect reads the SAML message of an HTTP-Redirect binding URL, as an SP or
// IdP receiving it would: param is "SAMLRequest" or "SAMLResponse".
func DecodeRedirect(rawURL, param string) (RedirectMessage, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return RedirectMessage{}, err
	}
	raw := map[string]string{}
	for _, kv := range strings.Split(u.RawQuery, "&") {
		k, v, _ := strings.Cut(kv, "=")
		if _, dup := raw[k]; !dup {
			raw[k] = v
		}
	}
	var m RedirectMessage
	val := func(k string) string { v, _ := url.QueryUnescape(raw[k]); return v }
	if raw[param] == "" {
		return m, fmt.Errorf("no %s in the query", param)
	}
	deflated, err := base64.StdEncoding.DecodeString(val(param))
	if err != nil {
		return m, fmt.Errorf("%s is not base64: %w", param, err)
	}
	if m.XML, err = io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(deflated)), 1<<20)); err != nil {
		return m, fmt.Errorf("%s does not inflate: %w", param, err)
	}
	m.RelayState, m.SigAlg = val("RelayState"), val("SigAlg")
	if s := val("Signature"); s != "" {
		if m.Signature, err = base64.StdEncoding.DecodeString(s); err != nil {
			return m, fmt.Errorf("the Signature is not base64: %w", err)
		}
	}
	m.Signed = param + "=" + raw[param]
	if _, ok := raw["RelayState"]; ok {
		m.Signed += "&RelayState=" + raw["RelayState"]
	}
	m.Signed += "&SigAlg=" + raw["SigAlg"]
	return m, nil
}

// Verify checks the message's RSA-SHA256 query signature with cert.
func (m RedirectMessage) Verify(cert *x509.Certificate) error {
	if m.SigAlg != SigAlgRSASHA256 {
		return fmt.Errorf("SigAlg is %q, want %s", m.SigAlg, SigAlgRSASHA256)
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return errors.New("the certificate has no RSA key")
	}
	sum := sha256.Sum256([]byte(m.Signed))
	return rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], m.Signature)
}
