package sso

import (
	"bytes"
	"errors"
	"net/http"

	saml2 "github.com/russellhaering/gosaml2"

	"github.com/gatehouse-dev/gatehouse/modules/keys"
	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
)

// slo honours an IdP's LogoutRequest (HTTP-POST binding) only when it is signed with
// the connection's certificate: it ends the person's SAML sessions and, when the IdP
// has a logout URL, answers with a LogoutResponse.
func (h *Handler) slo(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	t, conn, ok := h.tenantAndConnection(w, r)
	if !ok {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes)
	if err := r.ParseForm(); err != nil {
		h.showPage(w, r, http.StatusBadRequest, page{Title: "Sign-out failed", Message: "The logout request is not a valid form post."})
		return
	}
	encoded := r.PostForm.Get("SAMLRequest")
	if encoded == "" {
		h.showPage(w, r, http.StatusBadRequest, page{Title: "Sign-out failed", Message: "The request has no SAMLRequest (only the HTTP-POST binding is supported)."})
		return
	}
	sp, err := h.serviceProvider(t, conn, keys.Key{})
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	raw, _ := decodeB64(encoded)
	if bytes.Contains(bytes.ToUpper(raw), []byte("<!DOCTYPE")) {
		h.showPage(w, r, http.StatusBadRequest, page{Title: "Sign-out failed", Message: "The logout request contains a DOCTYPE, which is never allowed."})
		return
	}
	certs, err := conn.X509Certificates()
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	var req *saml2.LogoutRequest
	err = withEachCertificate(sp, certs, func() error {
		var err error
		req, err = sp.ValidateEncodedLogoutRequestPOST(encoded)
		return err
	})
	if err != nil || req.NameID == nil || req.NameID.Value == "" || !req.SignatureValidated {
		h.log.WarnContext(ctx, "SAML logout request refused", "tenant", t.Slug, "err", err)
		h.showPage(w, r, http.StatusForbidden, page{Title: "Sign-out refused",
			Message: "The logout request is not signed by this organization's identity provider, so it was ignored."})
		return
	}
	u, err := h.identity.FindForSignIn(ctx, t.ID, req.NameID.Value, "")
	if err == nil {
		if _, err := h.sessions.EndSAMLSessions(ctx, t.ID, u.ID, ""); err != nil {
			h.internalError(w, r, err)
			return
		}
	} else if !apperr.Is(err, apperr.KindNotFound) && !apperr.Is(err, apperr.KindConflict) {
		h.internalError(w, r, err)
		return
	}
	if conn.SLOURL == "" {
		h.showPage(w, r, http.StatusOK, page{Title: "Signed out", Message: "You have been signed out."})
		return
	}
	doc, err := sp.BuildLogoutResponseDocumentNoSig(saml2.StatusCodeSuccess, req.ID)
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	out, err := doc.WriteToBytes()
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	h.postForm(w, r, conn.SLOURL, map[string]string{"SAMLResponse": encodeB64(out)})
}

var errNotBase64 = errors.New("not base64")
