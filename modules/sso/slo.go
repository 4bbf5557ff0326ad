package sso

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	saml2 "github.com/russellhaering/gosaml2"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/gatehouse-dev/gatehouse/modules/keys"
	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

// logoutRequest is a LogoutRequest whose signature checked out.
type logoutRequest struct {
	*saml2.LogoutRequest
	NotOnOrAfter time.Time // zero when the request has none
	// SessionIndexes are the sessions at this SP the request ends (SAML core
	// §3.7.3.2); none means every SAML session of the person.
	SessionIndexes []string
	RelayState     string
}

// slo honours an IdP's LogoutRequest, over the HTTP-Redirect binding (GET: the
// signature is over the query string, as Entra ID sends it) or the HTTP-POST binding
// (an enveloped XML signature), only when it is signed with one of the connection's
// certificates, was issued within the clock skew and has not been seen before. It
// ends the person's SAML sessions it names by SessionIndex (all of them when it names
// none) and, when the IdP has a logout URL, answers it with a LogoutResponse signed by
// the SP key, over the binding of that URL.
func (h *Handler) slo(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	t, conn, ok := h.tenantAndConnection(w, r)
	if !ok {
		return
	}
	sp, err := h.serviceProvider(t, conn, keys.Key{})
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	certs, err := conn.X509Certificates()
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	var req logoutRequest
	if r.Method == http.MethodPost {
		req, err = h.readLogoutPOST(w, r, sp, certs)
	} else {
		req, err = h.readLogoutRedirect(sp, certs, r.URL.RawQuery)
	}
	if err == nil {
		err = h.checkLogoutFresh(ctx, t, req)
	}
	if err != nil {
		status, reason := http.StatusForbidden, err.Error()
		var tooBig *http.MaxBytesError
		switch {
		case apperr.Is(err, apperr.KindUnavailable):
			h.log.ErrorContext(ctx, "replay cache unavailable; refusing the logout request", "err", err)
			status, reason = http.StatusServiceUnavailable, apperr.PublicMessage(err)
		case errors.As(err, &tooBig):
			status, reason = http.StatusRequestEntityTooLarge, "the logout request is larger than the limit (GATEHOUSE_SAML_MAX_BODY_BYTES)"
		case errors.As(err, new(malformed)):
			status = http.StatusBadRequest
		}
		h.log.WarnContext(ctx, "SAML logout request refused", "tenant", t.Slug, "reason", reason)
		h.showPage(w, r, status, page{Title: "Sign-out refused",
			Message: "The logout request could not be accepted from this organization's identity provider, so it was ignored.",
			Admin:   reason})
		return
	}

	if _, err := h.sessions.EndSAMLSessions(ctx, t.ID, req.NameID.Value, req.SessionIndexes); err != nil {
		h.internalError(w, r, err)
		return
	}
	if conn.SLOURL == "" {
		h.showPage(w, r, http.StatusOK, page{Title: "Signed out", Message: "You have been signed out."})
		return
	}
	h.answerLogout(w, r, t, conn, req)
}

// malformed is a logout request that is not a SAML message at all (400, not 403).
type malformed struct{ refusal }

// readLogoutRedirect reads and verifies a LogoutRequest sent over the HTTP-Redirect
// binding (SAML bindings §3.4.4.1): the signature covers the octets
// "SAMLRequest=…[&RelayState=…]&SigAlg=…" exactly as they were URL-encoded in the
// query, so the raw query is split by hand, never decoded and re-encoded.
func (h *Handler) readLogoutRedirect(sp *saml2.SAMLServiceProvider, certs []*x509.Certificate, rawQuery string) (logoutRequest, error) {
	raw := map[string]string{}
	for _, kv := range strings.Split(rawQuery, "&") {
		k, v, _ := strings.Cut(kv, "=")
		if _, dup := raw[k]; dup && (k == "SAMLRequest" || k == "RelayState" || k == "SigAlg" || k == "Signature") {
			return logoutRequest{}, malformed{refusal("the query names " + k + " twice")}
		}
		raw[k] = v
	}
	value := func(k string) string { v, _ := url.QueryUnescape(raw[k]); return v }
	if raw["SAMLRequest"] == "" {
		return logoutRequest{}, malformed{refusal("the request has no SAMLRequest")}
	}
	if raw["SigAlg"] == "" || raw["Signature"] == "" {
		return logoutRequest{}, refusal("the logout request is not signed (no SigAlg and Signature in the query)")
	}
	algo, ok := redirectSigAlgs[value("SigAlg")]
	if !ok {
		return logoutRequest{}, refusef("the logout request is signed with SigAlg %.100q, which is not accepted (RSA or ECDSA with SHA-256, -384 or -512)", value("SigAlg"))
	}
	sig, err := base64.StdEncoding.DecodeString(value("Signature"))
	if err != nil {
		return logoutRequest{}, malformed{refusal("the Signature is not valid base64")}
	}
	signed := "SAMLRequest=" + raw["SAMLRequest"]
	if _, ok := raw["RelayState"]; ok {
		signed += "&RelayState=" + raw["RelayState"]
	}
	signed += "&SigAlg=" + raw["SigAlg"]
	verified := false
	for _, c := range certs {
		if c.CheckSignature(algo, []byte(signed), sig) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return logoutRequest{}, refusal("the logout request's signature does not verify with the IdP certificates configured for this organization")
	}

	deflated, err := decodeB64(value("SAMLRequest"))
	if err != nil {
		return logoutRequest{}, malformed{refusal("the SAMLRequest is not valid base64")}
	}
	doc, err := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(deflated)), h.cfg.MaxBodyBytes+1))
	if err != nil {
		return logoutRequest{}, malformed{refusal("the SAMLRequest does not inflate (the HTTP-Redirect binding is DEFLATE-compressed)")}
	}
	if int64(len(doc)) > h.cfg.MaxBodyBytes {
		return logoutRequest{}, &http.MaxBytesError{Limit: h.cfg.MaxBodyBytes}
	}
	if err := noDoctype(doc); err != nil {
		return logoutRequest{}, err
	}
	req := &saml2.LogoutRequest{}
	if err := xml.Unmarshal(doc, req); err != nil {
		return logoutRequest{}, malformed{refusal("the SAMLRequest is not a SAML LogoutRequest")}
	}
	if err := sp.ValidateDecodedLogoutRequest(req); err != nil {
		return logoutRequest{}, refusef("the logout request is not valid: %s", describe(err))
	}
	req.SignatureValidated = true
	return finishLogoutRequest(req, doc, value("RelayState"))
}

// redirectSigAlgs are the SigAlg values accepted on HTTP-Redirect messages. SHA-1 is
// not among them: x509 refuses it.
var redirectSigAlgs = map[string]x509.SignatureAlgorithm{
	dsig.RSASHA256SignatureMethod:   x509.SHA256WithRSA,
	dsig.RSASHA384SignatureMethod:   x509.SHA384WithRSA,
	dsig.RSASHA512SignatureMethod:   x509.SHA512WithRSA,
	dsig.ECDSASHA256SignatureMethod: x509.ECDSAWithSHA256,
	dsig.ECDSASHA384SignatureMethod: x509.ECDSAWithSHA384,
	dsig.ECDSASHA512SignatureMethod: x509.ECDSAWithSHA512,
}

// readLogoutPOST reads and verifies a LogoutRequest sent over the HTTP-POST binding:
// an enveloped signature by one of the IdP's certificates.
func (h *Handler) readLogoutPOST(w http.ResponseWriter, r *http.Request, sp *saml2.SAMLServiceProvider, certs []*x509.Certificate) (logoutRequest, error) {
	r.Body = http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes)
	if err := r.ParseForm(); err != nil {
		if errors.As(err, new(*http.MaxBytesError)) {
			return logoutRequest{}, err
		}
		return logoutRequest{}, malformed{refusal("the logout request is not a valid form post")}
	}
	encoded := r.PostForm.Get("SAMLRequest")
	if encoded == "" {
		return logoutRequest{}, malformed{refusal("the request has no SAMLRequest")}
	}
	doc, err := decodeB64(encoded)
	if err != nil {
		return logoutRequest{}, malformed{refusal("the SAMLRequest is not valid base64")}
	}
	if err := noDoctype(doc); err != nil {
		return logoutRequest{}, err
	}
	var req *saml2.LogoutRequest
	err = withEachCertificate(sp, certs, func() error {
		var err error
		req, err = sp.ValidateEncodedLogoutRequestPOST(encodeB64(doc))
		return err
	})
	if err != nil {
		return logoutRequest{}, refusef("the logout request was refused: %s", describe(err))
	}
	if !req.SignatureValidated {
		return logoutRequest{}, refusal("the logout request is not signed")
	}
	return finishLogoutRequest(req, doc, r.PostForm.Get("RelayState"))
}

func noDoctype(doc []byte) error {
	upper := bytes.ToUpper(doc)
	if bytes.Contains(upper, []byte("<!DOCTYPE")) || bytes.Contains(upper, []byte("<!ENTITY")) {
		return refusal("the logout request contains a DOCTYPE, which is never allowed")
	}
	return nil
}

// finishLogoutRequest adds what gosaml2 does not read (NotOnOrAfter, SessionIndex)
// and requires the parts the checks rely on.
func finishLogoutRequest(req *saml2.LogoutRequest, doc []byte, relayState string) (logoutRequest, error) {
	if req.ID == "" || req.IssueInstant.IsZero() {
		return logoutRequest{}, refusal("the logout request needs an ID and an IssueInstant")
	}
	if req.NameID == nil || strings.TrimSpace(req.NameID.Value) == "" {
		return logoutRequest{}, refusal("the logout request has no NameID")
	}
	// The ACS trims the NameID before it looks the person up; so must logout, or an
	// IdP that pretty-prints its XML would be told "Success" while the session lives.
	req.NameID.Value = strings.TrimSpace(req.NameID.Value)
	var extra struct {
		NotOnOrAfter   time.Time `xml:"NotOnOrAfter,attr"`
		SessionIndexes []string  `xml:"urn:oasis:names:tc:SAML:2.0:protocol SessionIndex"`
	}
	if err := xml.Unmarshal(doc, &extra); err != nil {
		return logoutRequest{}, refusal("the logout request's NotOnOrAfter is not a time")
	}
	var indexes []string
	for _, idx := range extra.SessionIndexes {
		if idx = strings.TrimSpace(idx); idx != "" && !slices.Contains(indexes, idx) {
			indexes = append(indexes, idx)
		}
	}
	return logoutRequest{LogoutRequest: req, NotOnOrAfter: extra.NotOnOrAfter, SessionIndexes: indexes, RelayState: relayState}, nil
}

// checkLogoutFresh refuses a logout request issued outside the clock skew or past its
// NotOnOrAfter, and one already honoured: its ID is remembered until its IssueInstant
// is out of the skew, when the time check refuses it anyway. If the cache cannot say
// whether the ID was seen, it refuses (fail closed), as the ACS does.
func (h *Handler) checkLogoutFresh(ctx context.Context, t tenancy.Tenant, req logoutRequest) error {
	now, skew := h.clock.Now(), h.cfg.ClockSkew
	if d := now.Sub(req.IssueInstant); d > skew || d < -skew {
		return refusef("the logout request was issued at %s, more than the allowed clock skew (%s) from this server's clock; a stale or replayed request, or a wrong clock at the IdP",
			req.IssueInstant.UTC().Format(time.RFC3339), skew)
	}
	if !req.NotOnOrAfter.IsZero() && !now.Before(req.NotOnOrAfter.Add(skew)) {
		return refusef("the logout request expired (NotOnOrAfter %s, allowed clock skew %s)", req.NotOnOrAfter.UTC().Format(time.RFC3339), skew)
	}
	// IssueInstant within the skew bounds acceptance, whatever NotOnOrAfter says.
	first, err := h.cache.SetNX(ctx, "saml:logout:"+t.ID+":"+hashHex(req.ID), []byte{1}, replayTTL(now, req.IssueInstant.Add(skew)))
	if err != nil {
		return apperr.Unavailable(err, "the replay cache is unavailable, so the logout request cannot be checked for reuse; try again shortly")
	}
	if !first {
		return refusal("this logout request was already used (replay)")
	}
	return nil
}

// answerLogout sends the IdP its LogoutResponse, signed with the active SP key: over
// HTTP-Redirect (a query signature) when the IdP's logout URL takes it, else through
// an auto-submitting form (an enveloped signature).
func (h *Handler) answerLogout(w http.ResponseWriter, r *http.Request, t tenancy.Tenant, conn tenancy.SAMLConnection, req logoutRequest) {
	spKey, err := h.keys.Active(r.Context(), keys.PurposeSAML)
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	sp, err := h.serviceProvider(t, conn, spKey)
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	redirect := conn.SLOBinding == tenancy.SAMLBindingHTTPRedirect
	build := sp.BuildLogoutResponseDocument // an enveloped signature, for the form
	if redirect {
		build = sp.BuildLogoutResponseDocumentNoSig // the query is signed instead
	}
	doc, err := build(saml2.StatusCodeSuccess, req.ID)
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	out, err := doc.WriteToBytes()
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	if redirect {
		target, err := redirectURL(conn.SLOURL, "SAMLResponse", out, req.RelayState, spKey.Signer)
		if err != nil {
			h.internalError(w, r, err)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, target, http.StatusFound)
		return
	}
	fields := map[string]string{"SAMLResponse": encodeB64(out)}
	if req.RelayState != "" {
		fields["RelayState"] = req.RelayState
	}
	h.postForm(w, r, conn.SLOURL, fields)
}

// redirectURL encodes a SAML message for the HTTP-Redirect binding (SAML bindings
// §3.4.4): param is the DEFLATE-compressed, base64-encoded xml; then RelayState when
// given; then SigAlg (RSA-SHA256) and the Signature over the query up to there,
// exactly as it is encoded.
func redirectURL(base, param string, xml []byte, relayState string, key crypto.Signer) (string, error) {
	var buf bytes.Buffer
	fw, err := flate.NewWriter(&buf, flate.DefaultCompression)
	if err != nil {
		return "", err
	}
	if _, err := fw.Write(xml); err != nil {
		return "", err
	}
	if err := fw.Close(); err != nil {
		return "", err
	}
	q := param + "=" + url.QueryEscape(base64.StdEncoding.EncodeToString(buf.Bytes()))
	if relayState != "" {
		q += "&RelayState=" + url.QueryEscape(relayState)
	}
	q += "&SigAlg=" + url.QueryEscape(dsig.RSASHA256SignatureMethod)
	sum := sha256.Sum256([]byte(q))
	sig, err := key.Sign(rand.Reader, sum[:], crypto.SHA256)
	if err != nil {
		return "", err
	}
	q += "&Signature=" + url.QueryEscape(base64.StdEncoding.EncodeToString(sig))
	if strings.Contains(base, "?") {
		return base + "&" + q, nil
	}
	return base + "?" + q, nil
}

var errNotBase64 = errors.New("not base64")
