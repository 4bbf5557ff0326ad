package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/samltest"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// The README's SSO path through the real server, on PostgreSQL and Redis and on the
// embedded default: the operator configures the tenant's IdP from its metadata URL with
// the CLI, the IdP provisions the person over SCIM, the person signs in through the IdP,
// and an admin's CLI revocation has ended the session when the command returns (with the
// embedded cache the CLI cannot reach the server's cache: the server reads the
// tombstones).
func TestSSOThroughServe(t *testing.T) {
	for name, stores := range deployments {
		t.Run(name, func(t *testing.T) { ssoThroughServe(t, stores(t)) })
	}
}

func ssoThroughServe(t *testing.T, stores []string) {
	port := testenv.FreePort(t)
	pub := fmt.Sprintf("http://127.0.0.1:%d", port)
	key := make([]byte, 32)
	rand.Read(key)
	getenv := envOf(append(stores, "GATEHOUSE_LISTEN", fmt.Sprintf("127.0.0.1:%d", port), "GATEHOUSE_PUBLIC_URL", pub,
		"GATEHOUSE_SECRET_KEY", base64.StdEncoding.EncodeToString(key), "GATEHOUSE_SAML_METADATA_ALLOW_PRIVATE", "true")...)

	idp := samltest.StartRealIdP(t)
	mustCLI(t, getenv, "tenant", "create", "--slug", "acme", "--name", "Acme")
	out := mustCLI(t, getenv, "saml", "configure", "--tenant", "acme", "--metadata-url", idp.MetadataURL)
	if !strings.Contains(out, pub+"/saml/acme/acs") {
		t.Fatalf("saml configure does not print the ACS URL to give the IdP:\n%s", out)
	}
	token := between(mustCLI(t, getenv, "scim-token", "issue", "--tenant", "acme", "--name", "IdP"), "Bearer token:", "\n")

	base, logs, stop := startServer(t, getenv)
	defer stop()
	if base != pub {
		t.Fatalf("server at %s, want %s", base, pub)
	}
	if strings.Contains(logs.String(), "unsealed") {
		t.Fatal("warned about unsealed keys although GATEHOUSE_SECRET_KEY is set")
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/scim/v2/Users", strings.NewReader(
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ada@acme.test","active":true,"emails":[{"value":"ada@acme.test","primary":true}]}`))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(token))
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("SCIM create: %v %v", err, resp)
	}
	resp.Body.Close()

	_, md := get(t, base+"/saml/acme/metadata")
	idp.AddServiceProvider(t, "gatehouse", []byte(md))
	idp.AddUser(t, "ada", "pw", "ada@acme.test", "Ada", "Lovelace")
	b := idp.Browser(t)
	resp, err = b.Get(base + "/saml/acme/login?return_to=/home")
	if err != nil {
		t.Fatal(err)
	}
	final := idp.SignIn(t, b, resp, "ada", "pw")
	body, _ := io.ReadAll(final.Body)
	final.Body.Close()
	if final.StatusCode != http.StatusSeeOther || final.Header.Get("Location") != "/home" {
		t.Fatalf("ACS: %s %s\n%s", final.Status, body, logs.String())
	}
	who := func() int {
		resp, err := b.Get(base + "/auth/session")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if who() != http.StatusOK {
		t.Fatal("the session cookie does not authenticate")
	}
	list := mustCLI(t, getenv, "session", "list", "--tenant", "acme", "--user", "ada@acme.test")
	if strings.Count(list, "saml") != 1 {
		t.Fatalf("session list:\n%s", list)
	}
	if out := mustCLI(t, getenv, "session", "revoke", "--tenant", "acme", "--user", "ada@acme.test"); !strings.Contains(out, "revoked 1 session") {
		t.Fatalf("session revoke: %s", out)
	}
	if got := who(); got != http.StatusUnauthorized {
		t.Fatalf("/auth/session after an admin revoked the session = %d; want 401", got)
	}
	if list := mustCLI(t, getenv, "session", "list", "--tenant", "acme", "--user", "ada@acme.test"); !strings.Contains(list, "ada@acme.test has no live sessions") {
		t.Fatalf("session list after the revocation:\n%s", list)
	}
}

func between(s, start, end string) string {
	i := strings.Index(s, start)
	if i < 0 {
		return ""
	}
	s = s[i+len(start):]
	if j := strings.Index(s, end); j >= 0 {
		s = s[:j]
	}
	return strings.TrimSpace(s)
}
