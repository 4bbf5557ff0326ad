package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/gqlws"
	"github.com/gatehouse-dev/gatehouse/internal/samltest"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/platform/db"
)

// replica is a `gatehouse serve` process.
type replica struct {
	base string // where this process listens
	cmd  *exec.Cmd
	logs *syncBuffer
}

// buildBinary compiles the server once per test run.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "gatehouse")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func startReplica(t *testing.T, bin string, env []string) *replica {
	t.Helper()
	port := testenv.FreePort(t)
	r := &replica{base: fmt.Sprintf("http://127.0.0.1:%d", port), logs: &syncBuffer{}}
	r.cmd = exec.Command(bin, "serve")
	r.cmd.Env = append(append(os.Environ(), env...), fmt.Sprintf("GATEHOUSE_LISTEN=127.0.0.1:%d", port))
	r.cmd.Stdout, r.cmd.Stderr = io.Discard, r.logs
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.cmd.Process.Signal(syscall.SIGTERM)
		r.cmd.Wait()
		if t.Failed() {
			t.Logf("replica %s log:\n%s", r.base, r.logs.String())
		}
	})
	testenv.WaitForPort(t, fmt.Sprintf("127.0.0.1:%d", port), 30*time.Second)
	return r
}

// cluster is what two replicas share: the binary, their settings (one PostgreSQL
// database, one Redis prefix, one public URL), a tenant "acme" configured through the
// CLI with a crafted SAML IdP (IdP-initiated sign-in on) and a SCIM token.
type cluster struct {
	bin      string
	settings []string
	getenv   func(string) string
	idp      *samltest.IdP
	token    string
	public   string
}

func newCluster(t *testing.T) cluster {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	c := cluster{bin: buildBinary(t), public: "https://gatehouse.test"} // both replicas sit behind this one address
	c.settings = []string{
		"GATEHOUSE_DATABASE_URL=" + testenv.PostgresDatabaseURL(t),
		"GATEHOUSE_REDIS_URL=" + testenv.RedisURL(),
		fmt.Sprintf("GATEHOUSE_REDIS_PREFIX=gh-replicas-%d:", time.Now().UnixNano()),
		"GATEHOUSE_PUBLIC_URL=" + c.public,
		"GATEHOUSE_SECRET_KEY=" + base64.StdEncoding.EncodeToString(key),
		"GATEHOUSE_LOG_LEVEL=warn",
	}
	var kv []string
	for _, s := range c.settings {
		k, v, _ := strings.Cut(s, "=")
		kv = append(kv, k, v)
	}
	c.getenv = envOf(kv...)
	c.idp = samltest.NewIdP(t, "https://idp.acme.test/entity")
	mdFile := filepath.Join(t.TempDir(), "idp.xml")
	os.WriteFile(mdFile, c.idp.MetadataXML(), 0o600)
	mustCLI(t, c.getenv, "tenant", "create", "--slug", "acme")
	mustCLI(t, c.getenv, "tenant", "update", "--tenant", "acme", "--idp-initiated-sso=true")
	mustCLI(t, c.getenv, "saml", "configure", "--tenant", "acme", "--metadata-file", mdFile)
	c.token = between(mustCLI(t, c.getenv, "scim-token", "issue", "--tenant", "acme", "--name", "IdP"), "Bearer token:", "\n")
	return c
}

// Two `gatehouse serve` processes share one PostgreSQL and one Redis, as replicas behind
// a load balancer do. A person signs in on both; the IdP deprovisions them through
// replica A; the very next request with each of their tokens on replica B is refused.
// 100 rounds, cycling through every way IdPs deprovision.
func TestDeprovisioningAcrossReplicas(t *testing.T) {
	c := newCluster(t)
	bin, settings, idp, token, public := c.bin, c.settings, c.idp, c.token, c.public
	a := startReplica(t, bin, settings)
	b := startReplica(t, bin, settings)
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	scim := func(r *replica, method, path, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, r.base+"/scim/v2"+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/scim+json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	signIn := func(r *replica, name string) string {
		t.Helper()
		doc := idp.Response(t, samltest.ResponseOptions{Destination: public + "/saml/acme/acs",
			Audience: public + "/saml/acme", NameID: name, SignResponse: true, SignAssertion: true})
		resp, err := client.PostForm(r.base+"/saml/acme/acs", url.Values{"SAMLResponse": {doc}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		for _, c := range resp.Cookies() {
			if c.Name == "gatehouse_session" {
				return c.Value
			}
		}
		t.Fatalf("sign-in on %s: %s, no session cookie", r.base, resp.Status)
		return ""
	}
	who := func(r *replica, tok string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, r.base+"/auth/session", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	dialects := []struct {
		name, method, body string
		status             int
	}{
		{"Okta PATCH", http.MethodPatch, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}`, 200},
		{"Entra PATCH", http.MethodPatch, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"False"}]}`, 200},
		{"PATCH path active", http.MethodPatch, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":false}]}`, 200},
		{"PUT", http.MethodPut, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"%s","active":false}`, 200},
		{"DELETE", http.MethodDelete, ``, 204},
	}
	for i := range 100 {
		d := dialects[i%len(dialects)]
		name := fmt.Sprintf("person%d@acme.test", i)
		st, u := scim(a, http.MethodPost, "/Users", fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":%q,"active":true}`, name))
		if st != http.StatusCreated {
			t.Fatalf("round %d: create = %d %v", i, st, u)
		}
		id := u["id"].(string)
		onA, onB := signIn(a, name), signIn(b, name)
		for _, tok := range []string{onA, onB} {
			if who(b, tok) != http.StatusOK || who(a, tok) != http.StatusOK {
				t.Fatalf("round %d: a fresh session is refused", i)
			}
		}
		body := d.body
		if d.method == http.MethodPut {
			body = fmt.Sprintf(body, name)
		}
		if st, m := scim(a, d.method, "/Users/"+id, body); st != d.status {
			t.Fatalf("round %d (%s): %d %v", i, d.name, st, m)
		}
		for _, tok := range []string{onA, onB} {
			if got := who(b, tok); got != http.StatusUnauthorized {
				t.Fatalf("round %d (%s): the token is accepted on replica B (%d) right after replica A deprovisioned the person", i, d.name, got)
			}
		}
	}
}

// An audit event caused through replica A reaches a live subscriber on replica B: A's
// relay reads the committed outbox and publishes on Redis, B streams it. B connects to
// PostgreSQL as a role that may not claim outbox rows (no UPDATE or DELETE on
// audit_outbox), so its relay cannot publish anything and every event must cross from
// A's process; the test watches Redis to see A publish each one. (That a subscription
// is fed by the bus and not only by its periodic catch-up from the database is shown
// in graph's TestAuditSubscription, "events travel on the bus".)
func TestAuditEventsAcrossReplicas(t *testing.T) {
	c := newCluster(t)
	bin, settings, getenv, idp, token, public := c.bin, c.settings, c.getenv, c.idp, c.token, c.public
	var dbURL, prefix string
	for _, s := range settings {
		if v, ok := strings.CutPrefix(s, "GATEHOUSE_DATABASE_URL="); ok {
			dbURL = v
		}
		if v, ok := strings.CutPrefix(s, "GATEHOUSE_REDIS_PREFIX="); ok {
			prefix = v
		}
	}
	ctx := context.Background()
	admin, err := db.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	role := fmt.Sprintf("gh_no_relay_%d", time.Now().UnixNano())
	for _, q := range []string{"CREATE ROLE " + role + " LOGIN",
		"GRANT USAGE ON SCHEMA public TO " + role,
		"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO " + role,
		"REVOKE UPDATE, DELETE ON audit_outbox FROM " + role} {
		if _, err := admin.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() { // after the replicas stopped (cleanups run last first)
		admin.ExecContext(ctx, "DROP OWNED BY "+role)
		admin.ExecContext(ctx, "DROP ROLE "+role)
	})
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(role)
	published := testenv.Redis(t).Client().PSubscribe(ctx, prefix+"audit.*")
	defer published.Close()
	if _, err := published.Receive(ctx); err != nil {
		t.Fatal(err)
	}

	a := startReplica(t, bin, settings)
	b := startReplica(t, bin, append(slices.Clone(settings), "GATEHOUSE_DATABASE_URL="+u.String(), "GATEHOUSE_AUTO_MIGRATE=false"))
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	scimCreate := func(name string) {
		req, _ := http.NewRequest(http.MethodPost, a.base+"/scim/v2/Users", strings.NewReader(
			fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":%q,"active":true}`, name)))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/scim+json")
		resp, err := client.Do(req)
		if err != nil || resp.StatusCode != http.StatusCreated {
			t.Fatalf("SCIM create %s: %v %v", name, err, resp)
		}
		resp.Body.Close()
	}
	scimCreate("auditor@acme.test")
	mustCLI(t, getenv, "role", "set", "--tenant", "acme", "--user", "auditor@acme.test", "--role", "owner")
	doc := idp.Response(t, samltest.ResponseOptions{Destination: public + "/saml/acme/acs", Audience: public + "/saml/acme",
		NameID: "auditor@acme.test", SignResponse: true, SignAssertion: true})
	resp, err := client.PostForm(b.base+"/saml/acme/acs", url.Values{"SAMLResponse": {doc}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var session string
	for _, c := range resp.Cookies() {
		if c.Name == "gatehouse_session" {
			session = c.Value
		}
	}
	if session == "" {
		t.Fatalf("sign-in on B: %s", resp.Status)
	}

	wsCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := gqlws.Dial(wsCtx, b.base+"/graphql", "", map[string]any{"authorization": "Bearer " + session})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	events, err := conn.Subscribe(wsCtx, `subscription { auditEvents(filter: {actions: ["user.created"]}) { id action target { display } actor { type } } }`, nil)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the subscription is registered on B
	for i := range 5 {
		name := fmt.Sprintf("new%d@acme.test", i)
		scimCreate(name)
		n, ok := gqlws.Receive(t, events, 10*time.Second)
		if !ok || len(n.Errors) > 0 {
			t.Fatalf("event %d: %+v", i, n)
		}
		ev := n.Data["auditEvents"].(map[string]any)
		if ev["target"].(map[string]any)["display"] != name || ev["actor"].(map[string]any)["type"] != "scim_token" {
			t.Fatalf("event %d on replica B: %v", i, ev)
		}
		for seen := false; !seen; {
			select {
			case m := <-published.Channel():
				seen = strings.Contains(m.Payload, `"`+ev["id"].(string)+`"`)
			case <-time.After(10 * time.Second):
				t.Fatalf("event %d was not published on Redis", i)
			}
		}
	}
	if !strings.Contains(b.logs.String(), "audit relay: events stay in the outbox") {
		t.Fatalf("replica B's relay was not kept from relaying; its log:\n%s", b.logs.String())
	}
}
