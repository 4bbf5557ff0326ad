package sso

import (
	"crypto/rand"
	"encoding/base64"
	"html/template"
	"net/http"

	"github.com/gatehouse-dev/gatehouse/modules/platform/reqmeta"
)

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{{.Title}}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}
code{background:#f3f3f3;padding:.1rem .3rem}</style></head>
<body><h1>{{.Title}}</h1><p>{{.Message}}</p>{{if .Admin}}<p><strong>Tell your administrator:</strong> {{.Admin}}</p>{{end}}
{{if .RequestID}}<p>Reference: <code>{{.RequestID}}</code></p>{{end}}</body></html>
`))

// page is the plain HTML the browser sees when sign-in cannot go on: what happened, what
// to tell the admin, and a reference that matches the server's log line.
type page struct {
	Title, Message, Admin, RequestID string
}

func (h *Handler) showPage(w http.ResponseWriter, r *http.Request, status int, p page) {
	p.RequestID = reqmeta.From(r.Context()).RequestID
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	w.WriteHeader(status)
	_ = pageTmpl.Execute(w, p)
}

// loginFailed shows why a sign-in was refused. reason is for the admin (it names the
// rule that failed); it is also what the audit event records.
func (h *Handler) loginFailed(w http.ResponseWriter, r *http.Request, status int, reason string) {
	h.showPage(w, r, status, page{Title: "Sign-in failed",
		Message: "Your organization's identity provider sent a sign-in that Gatehouse could not accept.",
		Admin:   reason})
}

var postFormTmpl = template.Must(template.New("post").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>Continue</title></head>
<body><form method="post" action="{{.Action}}">
{{range $k, $v := .Fields}}<input type="hidden" name="{{$k}}" value="{{$v}}">
{{end}}<noscript><p>JavaScript is off in this browser, so press Continue to go on.</p></noscript>
<button type="submit">Continue</button></form>
<script nonce="{{.Nonce}}">document.forms[0].submit()</script></body></html>
`))

// postForm answers with a page that posts fields to action straight away: the SAML
// HTTP-POST binding, for messages the browser carries to the IdP. The one script on
// the page submits the form; the Content-Security-Policy allows it by a nonce made
// for this response and nothing else (no inline handlers, no other scripts, no
// framing). form-action is left open on purpose: browsers apply it to the redirects
// that follow the POST, and an IdP may pass the browser on to another host (Entra ID
// to a federated ADFS).
func (h *Handler) postForm(w http.ResponseWriter, r *http.Request, action string, fields map[string]string) {
	var b [18]byte
	_, _ = rand.Read(b[:])
	nonce := base64.RawURLEncoding.EncodeToString(b[:]) // "+" and "/" would be entity-escaped in the attribute
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'nonce-"+nonce+"'; base-uri 'none'; frame-ancestors 'none'")
	if err := postFormTmpl.Execute(w, map[string]any{"Action": action, "Fields": fields, "Nonce": nonce}); err != nil {
		h.log.ErrorContext(r.Context(), "cannot write the form post page", "err", err)
	}
}
