package sso

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	saml2 "github.com/russellhaering/gosaml2"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/identity"
	"github.com/gatehouse-dev/gatehouse/modules/keys"
	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

const (
	// bindingCookie ties an AuthnRequest to the browser that started it, so a response
	// to one browser's request cannot be replayed into another browser.
	bindingCookie = "gatehouse_sso_binding"
	// requestTTL is how long a started login may take at the IdP.
	requestTTL = 10 * time.Minute
)

// pendingRequest is what the cache keeps for an AuthnRequest until its response comes.
type pendingRequest struct {
	TenantID string `json:"t"`
	Binding  string `json:"b"` // SHA-256 of the browser's binding cookie
	ReturnTo string `json:"r"`
}

func requestKey(id string) string { return "saml:request:" + id }

func hashHex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// serviceProvider builds the gosaml2 SP for a tenant's connection. It trusts no IdP
// certificate yet: whatever checks a signature sets IDPCertificateStore, one
// certificate at a time (see withEachCertificate).
func (h *Handler) serviceProvider(t tenancy.Tenant, conn tenancy.SAMLConnection, spKey keys.Key) (*saml2.SAMLServiceProvider, error) {
	sp := &saml2.SAMLServiceProvider{
		IdentityProviderSSOURL:      conn.SSOURL,
		IdentityProviderSLOURL:      conn.SLOURL,
		IdentityProviderIssuer:      conn.IdPEntityID,
		ServiceProviderIssuer:       h.spEntityID(t.Slug),
		AssertionConsumerServiceURL: h.acsURL(t.Slug),
		ServiceProviderSLOURL:       h.sloURL(t.Slug),
		AudienceURI:                 h.spEntityID(t.Slug),
		NameIdFormat:                conn.NameIDFormat,
		SignAuthnRequests:           conn.SignRequests,
		AllowMissingAttributes:      true,
		MaximumDecompressedBodySize: h.cfg.MaxBodyBytes,
		Clock:                       dsig.NewFakeClockAt(h.clock.Now()),
	}
	if spKey.Signer != nil {
		rk, ok := spKey.Signer.(*rsa.PrivateKey)
		if !ok {
			return nil, errors.New("the SAML SP key is not RSA")
		}
		if err := sp.SetSPSigningKeyStore(&saml2.KeyStore{Signer: rk, Cert: spKey.Certificate.Raw}); err != nil {
			return nil, err
		}
	}
	return sp, nil
}

// tenantAndConnection resolves the {tenant} path segment. An unknown tenant and a
// tenant without SAML look the same to the browser.
func (h *Handler) tenantAndConnection(w http.ResponseWriter, r *http.Request) (tenancy.Tenant, tenancy.SAMLConnection, bool) {
	t, err := h.tenancy.TenantBySlug(r.Context(), r.PathValue("tenant"))
	if err != nil {
		h.notConfigured(w, r, err)
		return tenancy.Tenant{}, tenancy.SAMLConnection{}, false
	}
	conn, err := h.tenancy.SAMLConnection(r.Context(), t.ID)
	if err != nil {
		h.notConfigured(w, r, err)
		return tenancy.Tenant{}, tenancy.SAMLConnection{}, false
	}
	return t, conn, true
}

func (h *Handler) notConfigured(w http.ResponseWriter, r *http.Request, err error) {
	if apperr.Is(err, apperr.KindNotFound) {
		h.showPage(w, r, http.StatusNotFound, page{Title: "Single sign-on is not set up",
			Message: "This organization has no single sign-on connection.",
			Admin:   "configure the SAML connection with `gatehouse saml configure`."})
		return
	}
	h.internalError(w, r, err)
}

func (h *Handler) internalError(w http.ResponseWriter, r *http.Request, err error) {
	h.log.ErrorContext(r.Context(), "sign-in failed with an internal error", "err", err)
	status := http.StatusInternalServerError
	msg := "Something went wrong on our side. Try again in a minute."
	if apperr.Is(err, apperr.KindUnavailable) {
		status = http.StatusServiceUnavailable
		msg = "Sign-in is unavailable for a moment. Try again shortly."
	}
	h.showPage(w, r, status, page{Title: "Sign-in is unavailable", Message: msg})
}

// login starts SP-initiated sign-in: an AuthnRequest bound to this browser and usable
// once, sent over the binding the IdP's metadata offers (HTTP-Redirect when it offers
// both, else HTTP-POST through an auto-submitting form).
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	t, conn, ok := h.tenantAndConnection(w, r)
	if !ok {
		return
	}
	var spKey keys.Key
	if conn.SignRequests {
		k, err := h.keys.Active(ctx, keys.PurposeSAML)
		if err != nil {
			h.internalError(w, r, err)
			return
		}
		spKey = k
	}
	sp, err := h.serviceProvider(t, conn, spKey)
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	post := conn.SSOBinding == tenancy.SAMLBindingHTTPPost
	// The POST binding carries the signature inside the XML; the Redirect binding
	// signs the query instead (BuildAuthURLRedirect), so its XML stays unsigned.
	build := sp.BuildAuthRequestDocumentNoSig
	if post {
		build = sp.BuildAuthRequestDocument
	}
	doc, err := build()
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	reqID := doc.Root().SelectAttrValue("ID", "")
	binding := h.browserBinding(w, r)
	pending, _ := json.Marshal(pendingRequest{TenantID: t.ID, Binding: hashHex(binding),
		ReturnTo: safeReturnTo(r.URL.Query().Get("return_to"))})
	if err := h.cache.Set(ctx, requestKey(reqID), pending, requestTTL); err != nil {
		h.internalError(w, r, apperr.Unavailable(err, "the cache is unavailable"))
		return
	}
	if post {
		xml, err := doc.WriteToBytes()
		if err != nil {
			h.internalError(w, r, err)
			return
		}
		h.postForm(w, r, conn.SSOURL, map[string]string{"SAMLRequest": encodeB64(xml)})
		return
	}
	target, err := sp.BuildAuthURLRedirect("", doc)
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, target, http.StatusFound)
}

// browserBinding returns this browser's binding secret, making one if it has none,
// and (re)sets the cookie: a value already there is kept, so requests started earlier
// in this browser still match, but its lifetime starts again, so it lasts as long as
// the request just started. The cookie must come back on the IdP's cross-site POST to
// the ACS, so it is SameSite=None (which browsers accept only with Secure, i.e. over
// https).
func (h *Handler) browserBinding(w http.ResponseWriter, r *http.Request) string {
	var v string
	if c, err := r.Cookie(bindingCookie); err == nil {
		if b, err := base64.RawURLEncoding.DecodeString(c.Value); err == nil && len(b) == 32 {
			v = c.Value
		}
	}
	if v == "" {
		var b [32]byte
		_, _ = rand.Read(b[:])
		v = base64.RawURLEncoding.EncodeToString(b[:])
	}
	c := &http.Cookie{Name: bindingCookie, Value: v, Path: "/saml/", HttpOnly: true,
		MaxAge: int(requestTTL / time.Second), Secure: h.secure()}
	if h.secure() {
		c.SameSite = http.SameSiteNoneMode
	}
	http.SetCookie(w, c)
	return v
}

// acs is the assertion consumer: it validates the IdP's response, finds the person and
// starts their session.
func (h *Handler) acs(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	t, conn, ok := h.tenantAndConnection(w, r)
	if !ok {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.refuse(w, r, t, http.StatusRequestEntityTooLarge, "the SAML response is larger than the limit (GATEHOUSE_SAML_MAX_BODY_BYTES)")
			return
		}
		h.refuse(w, r, t, http.StatusBadRequest, "the ACS request is not a valid form post")
		return
	}
	encoded := r.PostForm.Get("SAMLResponse")
	if encoded == "" {
		h.refuse(w, r, t, http.StatusBadRequest, "the request has no SAMLResponse")
		return
	}
	a, err := h.validateResponse(t, conn, encoded)
	if err != nil {
		h.refuse(w, r, t, http.StatusForbidden, err.Error())
		return
	}

	returnTo := "/"
	if a.InResponseTo != "" {
		pending, reason := h.takePendingRequest(r, t, a.InResponseTo)
		if reason != "" {
			h.refuse(w, r, t, http.StatusForbidden, reason)
			return
		}
		returnTo = pending.ReturnTo
	} else {
		if !t.IdPInitiatedSSO {
			h.refuse(w, r, t, http.StatusForbidden, "the response is unsolicited (IdP-initiated) and this tenant does not allow IdP-initiated sign-in; start from the app's sign-in page, or enable it with `gatehouse tenant update --idp-initiated-sso=true`")
			return
		}
		returnTo = safeReturnTo(r.PostForm.Get("RelayState"))
	}

	// Replay: an assertion id is accepted once until it expires. If the cache cannot say
	// whether it was seen, refuse: a replayed assertion is worse than a retry.
	ttl := replayTTL(h.clock.Now(), a.NotOnOrAfter.Add(h.cfg.ClockSkew))
	first, err := h.cache.SetNX(ctx, "saml:assertion:"+t.ID+":"+hashHex(a.AssertionID), []byte{1}, ttl)
	if err != nil {
		h.log.ErrorContext(ctx, "replay cache unavailable; refusing the sign-in", "err", err)
		h.refuse(w, r, t, http.StatusServiceUnavailable, "the replay cache is unavailable, so the response cannot be checked for reuse; try again shortly")
		return
	}
	if !first {
		h.refuse(w, r, t, http.StatusForbidden, "this SAML response was already used (replay)")
		return
	}

	u, reason, err := h.signInUser(r, t, a)
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	if reason != "" {
		h.refuse(w, r, t, http.StatusForbidden, reason)
		return
	}
	h.startSession(w, r, t, u, a, returnTo)
}

// replayTTL is how long a message id is remembered when messages are accepted until
// deadline (by this server's clock): a minute past it, so a replica whose clock runs a
// little behind, still accepting the message, finds its id remembered.
func replayTTL(now, deadline time.Time) time.Duration {
	return max(deadline.Sub(now), 0) + time.Minute
}

// takePendingRequest consumes the AuthnRequest the response answers and checks it was
// started by this browser for this tenant. It returns a refusal reason or "".
func (h *Handler) takePendingRequest(r *http.Request, t tenancy.Tenant, id string) (pendingRequest, string) {
	b, err := h.cache.Take(r.Context(), requestKey(id))
	if err != nil {
		return pendingRequest{}, "InResponseTo names no sign-in this server started, or one that was already completed or expired; start again from the app"
	}
	var p pendingRequest
	if json.Unmarshal(b, &p) != nil || p.TenantID != t.ID {
		return pendingRequest{}, "InResponseTo names a sign-in started for another organization"
	}
	c, err := r.Cookie(bindingCookie)
	if err != nil || subtle.ConstantTimeCompare([]byte(hashHex(c.Value)), []byte(p.Binding)) != 1 {
		return pendingRequest{}, "the response answers a sign-in started in another browser; start again from the app in this browser"
	}
	return p, ""
}

// refuse shows the failure page and records it.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, t tenancy.Tenant, status int, reason string) {
	h.log.WarnContext(r.Context(), "sign-in refused", "tenant", t.Slug, "reason", reason)
	h.recordFailure(r.Context(), t, reason)
	h.loginFailed(w, r, status, reason)
}

// signInUser finds (or, where the tenant allows, creates) the person the assertion
// names. It returns a refusal reason for the admin, or an internal error.
func (h *Handler) signInUser(r *http.Request, t tenancy.Tenant, a assertion) (identity.User, string, error) {
	ctx := r.Context()
	u, err := h.identity.FindForSignIn(ctx, t.ID, a.NameID, a.Email)
	switch {
	case err == nil:
		if !u.Active {
			return identity.User{}, "the account " + u.UserName + " is deactivated in this organization", nil
		}
		return u, "", nil
	case apperr.Is(err, apperr.KindConflict):
		return identity.User{}, apperr.PublicMessage(err) + "; the IdP must send a NameID equal to one user's userName", nil
	case !apperr.Is(err, apperr.KindNotFound):
		return identity.User{}, "", err
	}
	email := a.Email
	if email == "" && strings.Contains(a.NameID, "@") {
		email = a.NameID
	}
	if !t.JITProvisioning {
		return identity.User{}, "no account for " + a.NameID + " exists in this organization; provision it through SCIM (or enable just-in-time creation)", nil
	}
	owner, err := h.tenancy.TenantByVerifiedDomain(ctx, email)
	if email == "" || err != nil || owner.ID != t.ID {
		return identity.User{}, "no account for " + a.NameID + " exists, and just-in-time creation needs an email address in a domain this organization has verified", nil
	}
	nu := identity.User{UserName: email, GivenName: a.GivenName, FamilyName: a.FamilyName,
		DisplayName: strings.TrimSpace(a.GivenName + " " + a.FamilyName), Active: true, Source: identity.SourceSSO,
		Values: []identity.Value{{Attr: identity.AttrEmails, Value: email, Type: "work", Primary: true}}}
	created, err := h.identity.CreateUser(ctx, t.ID, nu)
	if apperr.Is(err, apperr.KindConflict) {
		// Created by a concurrent sign-in; use it.
		created, err = h.identity.FindForSignIn(ctx, t.ID, email, email)
	}
	if err != nil {
		return identity.User{}, "", err
	}
	return created, "", nil
}

func (h *Handler) startSession(w http.ResponseWriter, r *http.Request, t tenancy.Tenant, u identity.User, a assertion, returnTo string) {
	ctx := audit.WithActor(r.Context(), audit.Actor{Type: audit.ActorUser, ID: u.ID, Name: u.UserName})
	// The session and its sso.login_succeeded event commit together.
	sess, token, err := h.sessions.Start(ctx, identity.NewSession{TenantID: t.ID, UserID: u.ID,
		IdleTimeout: t.SessionIdleTimeout, MaxLife: t.SessionMaxLifetime,
		IP: clientIP(r), UserAgent: r.UserAgent(), Method: "saml", SAMLNameID: a.NameID, SAMLSessionIndex: a.SessionIndex,
		Audit: &audit.Event{TenantID: t.ID, Action: "sso.login_succeeded",
			Target:  audit.Target{Type: "user", ID: u.ID, Display: u.UserName},
			Changes: map[string]audit.Change{"method": {After: "saml"}}}})
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: token, Path: "/", HttpOnly: true,
		Secure: h.secure(), SameSite: http.SameSiteLaxMode, Expires: sess.ExpiresAt})
	http.SetCookie(w, &http.Cookie{Name: bindingCookie, Value: "", Path: "/saml/", MaxAge: -1, HttpOnly: true, Secure: h.secure()})
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, returnTo, http.StatusSeeOther)
}

// discover is home-realm discovery: the email's domain names the tenant whose IdP
// signs the person in.
func (h *Handler) discover(w http.ResponseWriter, r *http.Request) {
	email := strings.TrimSpace(r.URL.Query().Get("email"))
	t, err := h.tenancy.TenantByVerifiedDomain(r.Context(), email)
	if err != nil {
		if apperr.Is(err, apperr.KindNotFound) || apperr.Is(err, apperr.KindInvalid) {
			h.showPage(w, r, http.StatusNotFound, page{Title: "No single sign-on for this address",
				Message: "No organization has set up single sign-on for the domain of this email address. Check the address, or sign in another way."})
			return
		}
		h.internalError(w, r, err)
		return
	}
	target := tenancy.SAMLPaths(t.Slug).Login
	if rt := r.URL.Query().Get("return_to"); rt != "" {
		target += "?return_to=" + url.QueryEscape(safeReturnTo(rt))
	}
	http.Redirect(w, r, target, http.StatusFound)
}
