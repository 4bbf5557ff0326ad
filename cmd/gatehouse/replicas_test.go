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
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

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
	t        *testing.T
	bin      string
	settings []string
	getenv   func(string) string
	idp      *samltest.IdP
	token    string
	public   string
	client   *http.Client
}

// newCluster sets up a tenant for replicas of bin on a fresh PostgreSQL database and
// the Redis at redisURL.
func newCluster(t *testing.T, bin, redisURL string) *cluster {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	c := &cluster{t: t, bin: bin, public: "https://gatehouse.test", // both replicas sit behind this one address
		client: &http.Client{Timeout: 20 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	c.settings = []string{
		"GATEHOUSE_DATABASE_URL=" + testenv.PostgresDatabaseURL(t),
		"GATEHOUSE_REDIS_URL=" + redisURL,
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
	mustCLI(t, c.getenv, "tenant", "create", "--slug", "acme", "--features", "user_groups")
	mustCLI(t, c.getenv, "tenant", "update", "--tenant", "acme", "--idp-initiated-sso=true")
	mustCLI(t, c.getenv, "saml", "configure", "--tenant", "acme", "--metadata-file", mdFile)
	c.token = between(mustCLI(t, c.getenv, "scim-token", "issue", "--tenant", "acme", "--name", "IdP"), "Bearer token:", "\n")
	return c
}

// replica starts a `gatehouse serve` of the cluster; extra settings override its own.
func (c *cluster) replica(extra ...string) *replica {
	return startReplica(c.t, c.bin, append(append([]string(nil), c.settings...), extra...))
}

// scim sends a SCIM request to replica r with the tenant's token.
func (c *cluster) scim(r *replica, method, path, body string) (int, map[string]any) {
	c.t.Helper()
	req, _ := http.NewRequest(method, r.base+"/scim/v2"+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := c.client.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// provision creates an active user over SCIM through r and returns its id.
func (c *cluster) provision(r *replica, userName string) string {
	c.t.Helper()
	st, u := c.scim(r, http.MethodPost, "/Users", fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":%q,"active":true}`, userName))
	if st != http.StatusCreated {
		c.t.Fatalf("create %s = %d %v", userName, st, u)
	}
	return u["id"].(string)
}

// signIn posts an IdP-initiated sign-in for name to r's ACS and returns the session token.
func (c *cluster) signIn(r *replica, name string) string {
	c.t.Helper()
	doc := c.idp.Response(c.t, samltest.ResponseOptions{Destination: c.public + "/saml/acme/acs",
		Audience: c.public + "/saml/acme", NameID: name, SignResponse: true, SignAssertion: true})
	resp, err := c.client.PostForm(r.base+"/saml/acme/acs", url.Values{"SAMLResponse": {doc}})
	if err != nil {
		c.t.Fatal(err)
	}
	resp.Body.Close()
	for _, ck := range resp.Cookies() {
		if ck.Name == "gatehouse_session" && ck.Value != "" {
			return ck.Value
		}
	}
	c.t.Fatalf("sign-in of %s on %s: %s, no session cookie", name, r.base, resp.Status)
	return ""
}

// who asks r whose session tok is (GET /auth/session) and returns the status.
func (c *cluster) who(r *replica, tok string) int {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, r.base+"/auth/session", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := c.client.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// gql runs a GraphQL request on r with a Bearer token and returns data and errors.
func (c *cluster) gql(r *replica, tok, query string, vars map[string]any) (map[string]any, []any) {
	c.t.Helper()
	b, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, r.base+"/graphql", strings.NewReader(string(b)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := c.client.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Data   map[string]any
		Errors []any
	}
	json.NewDecoder(resp.Body).Decode(&out)
	return out.Data, out.Errors
}

func (c *cluster) mustGQL(r *replica, tok, query string, vars map[string]any) map[string]any {
	c.t.Helper()
	data, errs := c.gql(r, tok, query, vars)
	if len(errs) > 0 || data == nil {
		c.t.Fatalf("GraphQL %s: %v", query, errs)
	}
	return data
}

// deprovisionings are the ways IdPs take someone's access away, as they send them.
var deprovisionings = []struct {
	name, method, body string
	status             int
}{
	{"Okta PATCH", http.MethodPatch, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}`, 200},
	{"Entra PATCH", http.MethodPatch, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"False"}]}`, 200},
	{"PATCH path active", http.MethodPatch, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":false}]}`, 200},
	{"PUT", http.MethodPut, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"%s","active":false}`, 200},
	{"DELETE", http.MethodDelete, ``, 204},
}

const reactivate = `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":true}]}`

// deprovision sends deprovisioning d of user id (userName name) through r.
func (c *cluster) deprovision(r *replica, d int, id, name string) {
	c.t.Helper()
	dp := deprovisionings[d%len(deprovisionings)]
	body := dp.body
	if dp.method == http.MethodPut {
		body = fmt.Sprintf(body, name)
	}
	if st, m := c.scim(r, dp.method, "/Users/"+id, body); st != dp.status {
		c.t.Fatalf("%s of %s: %d %v", dp.name, name, st, m)
	}
}

// Two `gatehouse serve` processes share one PostgreSQL and one Redis, as replicas behind
// a load balancer do. A person signs in on both; the IdP deprovisions them through
// replica A; the very next request with each of their tokens on replica B is refused:
//   - 100 rounds cycling through every way IdPs deprovision, while another request on B
//     keeps reading (and writing back) the session during the deprovisioning, and with
//     the person reactivated afterwards (their old sessions stay ended);
//   - on a 3-master Redis Cluster;
//   - with Redis stopped, and then restored from a snapshot taken before;
//   - with replica A cut off from Redis (it cannot bury the cached sessions B reads).
func TestDeprovisioningAcrossReplicas(t *testing.T) {
	bin := buildBinary(t)
	// round runs one deprovisioning through a and checks every token on b at once;
	// during, when set, runs just before the deprovisioning and what it returns just
	// after it.
	round := func(t *testing.T, c *cluster, a, b *replica, i int, during func(toks []string) func()) {
		t.Helper()
		name := fmt.Sprintf("person%d@acme.test", i)
		id := c.provision(a, name)
		toks := []string{c.signIn(a, name), c.signIn(b, name)}
		for _, tok := range toks {
			if c.who(b, tok) != http.StatusOK || c.who(a, tok) != http.StatusOK {
				t.Fatalf("round %d: a fresh session is refused", i)
			}
		}
		after := func() {}
		if during != nil {
			after = during(toks)
		}
		c.deprovision(a, i, id, name)
		after()
		for _, tok := range toks {
			if got := c.who(b, tok); got != http.StatusUnauthorized {
				t.Fatalf("round %d (%s): the token is accepted on replica B (%d) right after replica A deprovisioned the person",
					i, deprovisionings[i%len(deprovisionings)].name, got)
			}
		}
		if deprovisionings[i%len(deprovisionings)].method == http.MethodDelete {
			return
		}
		if st, m := c.scim(a, http.MethodPatch, "/Users/"+id, reactivate); st != http.StatusOK {
			t.Fatalf("round %d: reactivation = %d %v", i, st, m)
		}
		for _, tok := range toks {
			if got := c.who(b, tok); got != http.StatusUnauthorized {
				t.Fatalf("round %d: reactivation brought an old session back on replica B (%d)", i, got)
			}
		}
		if fresh := c.signIn(b, name); c.who(a, fresh) != http.StatusOK {
			t.Fatalf("round %d: a new sign-in after reactivation is refused", i)
		}
	}

	t.Run("shared Redis", func(t *testing.T) {
		c := newCluster(t, bin, testenv.RedisURL())
		a, b := c.replica(), c.replica()
		for i := range 100 {
			round(t, c, a, b, i, func(toks []string) func() {
				// Requests on B that read the sessions (and write them back to the cache)
				// while A deprovisions; they stop when A has answered.
				stop := make(chan struct{})
				var wg sync.WaitGroup
				for _, tok := range toks {
					wg.Go(func() {
						for {
							select {
							case <-stop:
								return
							default:
							}
							req, _ := http.NewRequest(http.MethodGet, b.base+"/auth/session", nil)
							req.Header.Set("Authorization", "Bearer "+tok)
							if resp, err := c.client.Do(req); err == nil {
								resp.Body.Close()
							}
						}
					})
				}
				return func() { close(stop); wg.Wait() }
			})
		}
	})

	t.Run("Redis Cluster", func(t *testing.T) {
		c := newCluster(t, bin, testenv.StartRedisCluster(t))
		a, b := c.replica(), c.replica()
		for i := range 20 {
			round(t, c, a, b, i, nil)
		}
	})

	t.Run("Redis stopped, then restored from an older snapshot", func(t *testing.T) {
		rs := testenv.StartRedis(t)
		c := newCluster(t, bin, rs.URL())
		a, b := c.replica(), c.replica()
		rdb := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", rs.Port)})
		t.Cleanup(func() { rdb.Close() })
		c.provision(a, "bystander@acme.test")
		bystander := c.signIn(b, "bystander@acme.test")
		for i := range 3 {
			name := fmt.Sprintf("outage%d@acme.test", i)
			id := c.provision(a, name)
			toks := []string{c.signIn(a, name), c.signIn(b, name)}
			for _, tok := range toks {
				if c.who(b, tok) != http.StatusOK {
					t.Fatal("a fresh session is refused")
				}
			}
			if err := rdb.Save(context.Background()).Err(); err != nil {
				t.Fatal(err)
			}
			rs.Stop()
			c.deprovision(a, i, id, name)
			for _, tok := range toks {
				if got := c.who(b, tok); got != http.StatusUnauthorized {
					t.Fatalf("round %d: with Redis down, replica B accepts (%d) a token deprovisioned through A", i, got)
				}
			}
			if got := c.who(b, bystander); got != http.StatusOK {
				t.Fatalf("round %d: with Redis down a live session must be checked in the database, got %d", i, got)
			}
			rs.Restart(t) // from the snapshot: the ended sessions are cached, alive, again
			for _, tok := range toks {
				if got := c.who(b, tok); got != http.StatusUnauthorized {
					t.Fatalf("round %d: right after Redis came back from an older snapshot, replica B accepts (%d) an ended session", i, got)
				}
			}
			time.Sleep(1500 * time.Millisecond) // B has polled since and trusts the cache again
			for _, tok := range toks {
				if got := c.who(b, tok); got != http.StatusUnauthorized {
					t.Fatalf("round %d: once B trusts the restored Redis, it accepts (%d) an ended session", i, got)
				}
			}
			if got := c.who(b, bystander); got != http.StatusOK {
				t.Fatalf("round %d: a live session after the restore: %d", i, got)
			}
		}
	})

	t.Run("replica A cut off from Redis", func(t *testing.T) {
		rs := testenv.StartRedis(t)
		proxy := testenv.StartProxy(t, fmt.Sprintf("127.0.0.1:%d", rs.Port))
		c := newCluster(t, bin, rs.URL())
		a, b := c.replica("GATEHOUSE_REDIS_URL=redis://"+proxy.Addr+"/0"), c.replica()
		for i := range 3 {
			round(t, c, a, b, i, func([]string) func() { proxy.Cut(); return func() {} })
			proxy.Restore()
		}
	})
}

// An admin deactivates an app-managed person through GraphQL on replica A; the very
// next request with each of that person's tokens on replica B is refused.
func TestAdminDeactivationAcrossReplicas(t *testing.T) {
	c := newCluster(t, buildBinary(t), testenv.RedisURL())
	a, b := c.replica(), c.replica()
	mustCLI(t, c.getenv, "tenant", "update", "--tenant", "acme", "--provisioning-mode", "mixed")
	c.provision(a, "owner@acme.test")
	mustCLI(t, c.getenv, "role", "set", "--tenant", "acme", "--user", "owner@acme.test", "--role", "owner")
	owner := c.signIn(a, "owner@acme.test")
	for i := range 5 {
		name := fmt.Sprintf("contractor%d@acme.test", i)
		created := c.mustGQL(a, owner, `mutation($in: CreateUserInput!) { createUser(input: $in) { id } }`,
			map[string]any{"in": map[string]any{"userName": name}})
		id := dig(created, "createUser", "id").(string)
		toks := []string{c.signIn(a, name), c.signIn(b, name)}
		for _, tok := range toks {
			if c.who(b, tok) != http.StatusOK {
				t.Fatalf("round %d: a fresh session is refused", i)
			}
		}
		c.mustGQL(a, owner, `mutation($id: ID!) { deactivateUser(id: $id) { id active } }`, map[string]any{"id": id})
		for _, tok := range toks {
			if got := c.who(b, tok); got != http.StatusUnauthorized {
				t.Fatalf("round %d: replica B accepts (%d) a token of a person an admin deactivated through A", i, got)
			}
		}
	}
}

// A live subscription on replica B, authenticated by a session of someone the IdP
// deprovisions through replica A, ends with UNAUTHENTICATED and its connection closes
// with 4403: the ended sessions are announced on Redis before A answers.
func TestSubscriptionEndsOnDeprovisioningAcrossReplicas(t *testing.T) {
	c := newCluster(t, buildBinary(t), testenv.RedisURL())
	a, b := c.replica(), c.replica()
	id := c.provision(a, "auditor@acme.test")
	mustCLI(t, c.getenv, "role", "set", "--tenant", "acme", "--user", "auditor@acme.test", "--role", "owner")
	session := c.signIn(b, "auditor@acme.test")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := gqlws.Dial(ctx, b.base+"/graphql", "", map[string]any{"authorization": "Bearer " + session})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// From the oldest event kept: the first one arriving shows the subscription is live.
	events, err := conn.Subscribe(ctx, `subscription { auditEvents(after: "") { id action } }`, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := gqlws.Receive(t, events, 10*time.Second); !ok || len(n.Errors) > 0 {
		t.Fatalf("the subscription did not start: %+v", n)
	}
	c.deprovision(a, 0, id, "auditor@acme.test") // Okta's PATCH
	for {
		n, ok := gqlws.Receive(t, events, 10*time.Second)
		if !ok {
			t.Fatal("the subscription ended without saying why")
		}
		if len(n.Errors) > 0 {
			if code := n.Errors[0].Extensions["code"]; code != "UNAUTHENTICATED" {
				t.Fatalf("the subscription ended with %v; want UNAUTHENTICATED", n.Errors)
			}
			break
		}
		// Events committed before the deprovisioning may still arrive first.
	}
	select {
	case <-conn.Closed:
	case <-ctx.Done():
		t.Fatal("the connection of an ended session stays open")
	}
	if code := gqlws.CloseCode(conn.CloseErr); code != 4403 {
		t.Fatalf("the connection closed with %d (%v); want 4403", code, conn.CloseErr)
	}
}

// Space access that comes through a group ends on the next request after the IdP takes
// the person out of the group (SCIM PATCH or PUT) or deletes the group — through one
// replica, seen on the other.
func TestGroupRemovalEndsSpaceAccessAcrossReplicas(t *testing.T) {
	c := newCluster(t, buildBinary(t), testenv.RedisURL())
	a, b := c.replica(), c.replica()
	c.provision(a, "owner@acme.test")
	mustCLI(t, c.getenv, "role", "set", "--tenant", "acme", "--user", "owner@acme.test", "--role", "owner")
	owner := c.signIn(a, "owner@acme.test")
	member := c.provision(a, "ada@acme.test")
	ada := c.signIn(b, "ada@acme.test")
	space := dig(c.mustGQL(a, owner, `mutation { createSpace(input: {name: "Contracts"}) { id } }`, nil), "createSpace", "id").(string)
	spacesOfAda := func() int {
		t.Helper()
		d := c.mustGQL(b, ada, `{ viewer { user { effectiveSpaces { role space { id } } } } }`, nil)
		list, _ := dig(d, "viewer", "user", "effectiveSpaces").([]any)
		return len(list)
	}
	groupWithAda := func(name string) string {
		t.Helper()
		st, g := c.scim(a, http.MethodPost, "/Groups", fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":%q,"members":[{"value":%q}]}`, name, member))
		if st != http.StatusCreated {
			t.Fatalf("create group = %d %v", st, g)
		}
		id := g["id"].(string)
		c.mustGQL(a, owner, `mutation($in: SpaceAccessInput!) { grantSpaceAccess(input: $in) { role } }`,
			map[string]any{"in": map[string]any{"spaceId": space, "principalId": gid("Group", id), "role": "EDITOR"}})
		if n := spacesOfAda(); n != 1 {
			t.Fatalf("ada sees %d spaces through group %s; want 1", n, name)
		}
		return id
	}
	for _, tc := range []struct{ name, method, body string }{
		{"PATCH remove member", http.MethodPatch, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"remove","path":"members[value eq \"%[1]s\"]"}]}`},
		{"PUT without the member", http.MethodPut, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"%[2]s","members":[]}`},
		{"DELETE group", http.MethodDelete, ``},
	} {
		g := groupWithAda("Legal " + tc.name)
		body := tc.body
		if body != "" {
			body = fmt.Sprintf(body, member, "Legal "+tc.name)
		}
		if st, m := c.scim(a, tc.method, "/Groups/"+g, body); st >= 300 {
			t.Fatalf("%s = %d %v", tc.name, st, m)
		}
		if n := spacesOfAda(); n != 0 {
			t.Fatalf("%s through A: ada still sees %d spaces on B", tc.name, n)
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
	c := newCluster(t, buildBinary(t), testenv.RedisURL())
	settings, getenv, idp, token, public, client := c.settings, c.getenv, c.idp, c.token, c.public, c.client
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

	a, b := c.replica(), c.replica("GATEHOUSE_DATABASE_URL="+u.String(), "GATEHOUSE_AUTO_MIGRATE=false")
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
