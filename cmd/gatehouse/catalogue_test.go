package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/samltest"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/platform/db"
)

// The audit event catalogue (docs/audit-events.md), proven through the real server on
// PostgreSQL and Redis: every action is caused by the kind of request that causes it in
// production — SCIM from the IdP, GraphQL from a signed-in person, a SAML sign-in at the
// ACS, an operator at the CLI — and after each request the test reads what was added to
// audit_events: exactly one event with that action (no other event unless the row says
// so), by the right actor (type, id and name), with the request's id, source address and
// user agent. The catalogue in the document, the actions the code can record (read from
// its source) and the actions driven here must be the same set.

// storedEvent is an audit event as the test reads it: straight from the table, so the
// test depends only on the stored columns, not on the audit module's API.
type storedEvent struct {
	bun.BaseModel `bun:"table:audit_events"`

	ID            string `bun:"id"`
	Action        string `bun:"action"`
	ActorType     string `bun:"actor_type"`
	ActorID       string `bun:"actor_id"`
	ActorName     string `bun:"actor_name"`
	TargetType    string `bun:"target_type"`
	TargetID      string `bun:"target_id"`
	TargetDisplay string `bun:"target_display"`
	Changes       string `bun:"changes"`
	RequestID     string `bun:"request_id"`
	RemoteIP      string `bun:"remote_ip"`
	UserAgent     string `bun:"user_agent"`
}

func (e storedEvent) String() string {
	return fmt.Sprintf("%s by %s %q %q on %s %q %q %s", e.Action, e.ActorType, e.ActorID, e.ActorName,
		e.TargetType, e.TargetID, e.TargetDisplay, e.Changes)
}

// auditLog reads a tenant's new events: those not seen at the previous read.
type auditLog struct {
	t    *testing.T
	db   *bun.DB
	slug string
	id   string // the tenant's id, once it exists
	seen map[string]bool
}

func (l *auditLog) tenantID() string {
	if l.id == "" {
		err := l.db.NewSelect().Table("tenants").Column("id").Where("slug = ?", l.slug).Scan(context.Background(), &l.id)
		if err != nil && !db.IsNoRows(err) {
			l.t.Fatal(err)
		}
	}
	return l.id
}

// fresh returns the tenant's events added since the last call, in id order.
func (l *auditLog) fresh() []storedEvent {
	l.t.Helper()
	tid := l.tenantID()
	if tid == "" {
		return nil
	}
	var all []storedEvent
	err := l.db.NewSelect().Model(&all).
		Column("id", "action", "actor_type", "actor_id", "actor_name", "target_type", "target_id", "target_display", "request_id", "remote_ip", "user_agent").
		ColumnExpr("COALESCE(CAST(changes AS text), '') AS changes").
		Where("tenant_id = ?", tid).OrderExpr("id").Scan(context.Background())
	if err != nil {
		l.t.Fatal(err)
	}
	var out []storedEvent
	for _, e := range all {
		if !l.seen[e.ID] {
			l.seen[e.ID] = true
			out = append(out, e)
		}
	}
	return out
}

// stack is one `gatehouse serve` on a fresh PostgreSQL database and Redis, with its
// tenant "acme" set up the way the README does it, plus the clients that drive it.
type stack struct {
	t      *testing.T
	base   string // the server, also its public URL
	getenv func(string) string
	log    *auditLog
	idp    *samltest.IdP
	mdFile string
	client *http.Client

	scimToken, scimTokenID string
}

func newStack(t *testing.T) *stack {
	t.Helper()
	port := testenv.FreePort(t)
	pub := fmt.Sprintf("http://127.0.0.1:%d", port)
	key := make([]byte, 32)
	rand.Read(key)
	dbURL := testenv.PostgresDatabaseURL(t)
	s := &stack{t: t, base: pub,
		getenv: envOf("GATEHOUSE_DATABASE_URL", dbURL, "GATEHOUSE_REDIS_URL", testenv.RedisURL(),
			"GATEHOUSE_REDIS_PREFIX", fmt.Sprintf("gh-catalogue-%d:", port),
			"GATEHOUSE_LISTEN", fmt.Sprintf("127.0.0.1:%d", port), "GATEHOUSE_PUBLIC_URL", pub,
			"GATEHOUSE_SECRET_KEY", base64.StdEncoding.EncodeToString(key)),
		idp:    samltest.NewIdP(t, "https://idp.acme.test/entity"),
		mdFile: filepath.Join(t.TempDir(), "idp.xml"),
		client: &http.Client{Timeout: 20 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
	}
	if err := os.WriteFile(s.mdFile, s.idp.MetadataXML(), 0o600); err != nil {
		t.Fatal(err)
	}
	bdb, err := db.Open(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bdb.Close() })
	s.log = &auditLog{t: t, db: bdb, slug: "acme", seen: map[string]bool{}}
	base, _, stop := startServer(t, s.getenv)
	t.Cleanup(func() { stop() })
	if base != pub {
		t.Fatalf("server at %s, want %s", base, pub)
	}
	return s
}

// issueToken issues a SCIM token from the CLI and keeps its secret and id.
func (s *stack) issueToken(name string) {
	s.t.Helper()
	out := mustCLI(s.t, s.getenv, "scim-token", "issue", "--tenant", "acme", "--name", name)
	s.scimToken = between(out, "Bearer token:", "\n")
	s.scimTokenID = between(out, "(id ", ")")
	if s.scimToken == "" || s.scimTokenID == "" {
		s.t.Fatalf("scim-token issue printed:\n%s", out)
	}
}

// userAgent is the User-Agent of every HTTP request the catalogue test sends; events
// caused over HTTP must record it.
const userAgent = "Okta SCIM Client 1.0 (catalogue test)"

// scim sends a SCIM request with the tenant's token and returns the status and body.
func (s *stack) scim(method, path string, body any) (int, map[string]any) {
	s.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.base+"/scim/v2"+path, r)
	req.Header.Set("Authorization", "Bearer "+s.scimToken)
	req.Header.Set("Content-Type", "application/scim+json")
	req.Header.Set("User-Agent", userAgent)
	resp, err := s.client.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// mustSCIM sends a SCIM request that must answer one of the statuses (200 and 204 both
// mean success for a PATCH).
func (s *stack) mustSCIM(method, path string, body any, statuses ...int) map[string]any {
	s.t.Helper()
	st, m := s.scim(method, path, body)
	if !slices.Contains(statuses, st) {
		s.t.Fatalf("SCIM %s %s = %d %v; want %v", method, path, st, m, statuses)
	}
	return m
}

// scimPassword is the password the IdP sends with users: accepted, and never recorded.
const scimPassword = "Tr0ub4dor&3-catalogue"

func scimUser(userName string, active bool) map[string]any {
	return map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
		"userName": userName, "active": active, "emails": []map[string]any{{"value": userName, "primary": true}},
		"password": scimPassword}
}

func scimGroup(name string) map[string]any {
	return map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"}, "displayName": name}
}

func patchOp(ops ...map[string]any) map[string]any {
	return map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"}, "Operations": ops}
}

func op(kind, path string, value any) map[string]any {
	o := map[string]any{"op": kind}
	if path != "" {
		o["path"] = path
	}
	if value != nil {
		o["value"] = value
	}
	return o
}

// provision creates an active user over SCIM and returns its id.
func (s *stack) provision(userName string) string {
	s.t.Helper()
	return s.mustSCIM("POST", "/Users", scimUser(userName, true), http.StatusCreated)["id"].(string)
}

// signIn posts an IdP-initiated SAML response for nameID to the ACS and returns the
// status and the session token it set ("" when refused).
func (s *stack) signIn(nameID string) (int, string) {
	s.t.Helper()
	doc := s.idp.Response(s.t, samltest.ResponseOptions{Destination: s.base + "/saml/acme/acs",
		Audience: s.base + "/saml/acme", NameID: nameID, SignResponse: true, SignAssertion: true})
	req, _ := http.NewRequest(http.MethodPost, s.base+"/saml/acme/acs", strings.NewReader(url.Values{"SAMLResponse": {doc}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", userAgent)
	resp, err := s.client.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == "gatehouse_session" && c.Value != "" {
			return resp.StatusCode, c.Value
		}
	}
	return resp.StatusCode, ""
}

func (s *stack) mustSignIn(nameID string) string {
	s.t.Helper()
	st, tok := s.signIn(nameID)
	if st != http.StatusSeeOther || tok == "" {
		s.t.Fatalf("sign-in of %s = %d, token %v", nameID, st, tok != "")
	}
	return tok
}

// credential is how a GraphQL request authenticates: a Bearer token, or the session
// cookie from the browser (which must come with the site's Origin).
type credential struct {
	token  string
	cookie bool
}

func bearerOf(tok string) credential { return credential{token: tok} }
func cookieOf(tok string) credential { return credential{token: tok, cookie: true} }

type gqlResult struct {
	Data   map[string]any
	Errors []struct {
		Message    string
		Extensions map[string]any
	}
}

// gql posts a GraphQL request to /graphql.
func (s *stack) gql(c credential, query string, vars map[string]any) gqlResult {
	s.t.Helper()
	b, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, s.base+"/graphql", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	if c.cookie {
		req.AddCookie(&http.Cookie{Name: "gatehouse_session", Value: c.token})
		req.Header.Set("Origin", s.base)
	} else {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out gqlResult
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil {
		s.t.Fatalf("GraphQL answered %s: %s", resp.Status, raw)
	}
	return out
}

// mustGQL runs a GraphQL request that must succeed and returns its data.
func (s *stack) mustGQL(c credential, query string, vars map[string]any) map[string]any {
	s.t.Helper()
	r := s.gql(c, query, vars)
	if len(r.Errors) > 0 || r.Data == nil {
		s.t.Fatalf("GraphQL %s: %+v", query, r.Errors)
	}
	return r.Data
}

// gqlCode runs a GraphQL request that must fail and returns its first error's code.
func (s *stack) gqlCode(c credential, query string, vars map[string]any) string {
	s.t.Helper()
	r := s.gql(c, query, vars)
	if len(r.Errors) == 0 {
		s.t.Fatalf("GraphQL %s succeeded: %v", query, r.Data)
	}
	code, _ := r.Errors[0].Extensions["code"].(string)
	return code
}

// gid is a GraphQL global id (base64url of "Kind:rawID"), as the API hands them out.
func gid(kind, raw string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + ":" + raw))
}

// dig walks nested maps by keys.
func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	return v
}

// wantActor is who an event must name: its type, id and name, each exactly.
type wantActor struct{ typ, id, name string }

// documentedActions reads the action column of the catalogue in docs/audit-events.md.
func documentedActions(t *testing.T) []string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "docs", "audit-events.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	row := regexp.MustCompile("^\\| `([a-z_]+\\.[a-z_]+)` \\|")
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := row.FindStringSubmatch(sc.Text()); m != nil && !slices.Contains(out, m[1]) {
			out = append(out, m[1])
		}
	}
	sort.Strings(out)
	return out
}

func TestAuditCatalogueThroughServe(t *testing.T) {
	s := newStack(t)
	cli := wantActor{typ: "cli", name: operatorName()}
	system := wantActor{typ: "system", name: "gatehouse"}
	var (
		ada, cy, bob, adaToken, cyToken, logoutToken string
		group, admins, space, role, issuedID         string
	)
	scimActor := func() wantActor { return wantActor{typ: "scim_token", id: s.scimTokenID, name: "Okta"} }
	// GraphQL names the signed-in person by id and userName.
	adaActor := func() wantActor { return wantActor{typ: "user", id: ada, name: "ada@acme.test"} }
	asAda := func() credential { return bearerOf(adaToken) }

	type step struct {
		action string
		via    string
		// prep runs before the request and may change state; its events are not counted.
		prep func()
		// do is the request whose events are counted.
		do    func()
		actor func() wantActor
		// also lists the other events the request adds besides action (normally none).
		also []string
	}
	steps := []step{
		// The operator sets the tenant up.
		{action: "tenant.created", via: "cli tenant create", actor: func() wantActor { return cli },
			do: func() {
				mustCLI(t, s.getenv, "tenant", "create", "--slug", "acme", "--name", "Acme", "--features", "user_groups")
			}},
		{action: "tenant.settings_changed", via: "cli tenant update", actor: func() wantActor { return cli },
			do: func() { mustCLI(t, s.getenv, "tenant", "update", "acme", "--idp-initiated-sso=true") }},
		{action: "saml.connection_changed", via: "cli saml configure", actor: func() wantActor { return cli },
			do: func() { mustCLI(t, s.getenv, "saml", "configure", "--tenant", "acme", "--metadata-file", s.mdFile) }},
		{action: "domain.added", via: "cli domain add", actor: func() wantActor { return cli },
			do: func() { mustCLI(t, s.getenv, "domain", "add", "--tenant", "acme", "acme.test") }},
		{action: "domain.verified", via: "cli domain verify --manual", actor: func() wantActor { return cli },
			do: func() { mustCLI(t, s.getenv, "domain", "verify", "--tenant", "acme", "--manual", "acme.test") }},
		{action: "scim_token.issued", via: "cli scim-token issue", actor: func() wantActor { return cli },
			do: func() { s.issueToken("Okta") }},
		{action: "scim_extension.changed", via: "cli scim-extension set", actor: func() wantActor { return cli },
			do: func() {
				file := filepath.Join(t.TempDir(), "ext.json")
				def := `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Schema"],"id":"urn:ietf:params:scim:schemas:extension:acme:2.0:User",
					"name":"Acme","attributes":[{"name":"costCenter","type":"string"}]}`
				if err := os.WriteFile(file, []byte(def), 0o600); err != nil {
					t.Fatal(err)
				}
				mustCLI(t, s.getenv, "scim-extension", "set", "--tenant", "acme", "--file", file)
			}},

		// The IdP provisions people and groups over SCIM.
		{action: "user.created", via: "SCIM POST /Users", actor: scimActor,
			do: func() { ada = s.provision("ada@acme.test") }},
		{action: "user.updated", via: "SCIM PATCH /Users title and password", actor: scimActor,
			do: func() {
				s.mustSCIM("PATCH", "/Users/"+ada, patchOp(op("replace", "title", "Engineer"), op("replace", "password", scimPassword+"-new")),
					http.StatusOK, http.StatusNoContent)
			}},
		{action: "user.deactivated", via: "SCIM PATCH /Users active:false", actor: scimActor,
			do: func() {
				s.mustSCIM("PATCH", "/Users/"+ada, patchOp(op("replace", "active", false)), http.StatusOK, http.StatusNoContent)
			}},
		{action: "user.reactivated", via: "SCIM PATCH /Users active:true (Okta's no-path form)", actor: scimActor,
			do: func() {
				s.mustSCIM("PATCH", "/Users/"+ada, patchOp(op("replace", "", map[string]any{"active": true})), http.StatusOK, http.StatusNoContent)
			}},
		{action: "user.deleted", via: "SCIM DELETE /Users", actor: scimActor,
			prep: func() { bob = s.provision("bob@acme.test") },
			do:   func() { s.mustSCIM("DELETE", "/Users/"+bob, nil, http.StatusNoContent) }},
		{action: "group.created", via: "SCIM POST /Groups", actor: scimActor,
			do: func() {
				group = s.mustSCIM("POST", "/Groups", scimGroup("Engineering"), http.StatusCreated)["id"].(string)
			}},
		{action: "group.renamed", via: "SCIM PATCH /Groups displayName", actor: scimActor,
			do: func() {
				s.mustSCIM("PATCH", "/Groups/"+group, patchOp(op("replace", "displayName", "Platform")), http.StatusOK, http.StatusNoContent)
			}},
		{action: "group.updated", via: "SCIM PATCH /Groups externalId", actor: scimActor,
			do: func() {
				s.mustSCIM("PATCH", "/Groups/"+group, patchOp(op("replace", "externalId", "okta-00g1")), http.StatusOK, http.StatusNoContent)
			}},
		{action: "group.members_added", via: "SCIM PATCH /Groups add members (two, one event)", actor: scimActor,
			prep: func() { cy = s.provision("cy@acme.test") },
			do: func() {
				s.mustSCIM("PATCH", "/Groups/"+group, patchOp(op("add", "members", []map[string]any{{"value": ada}, {"value": cy}})),
					http.StatusOK, http.StatusNoContent)
			}},
		{action: "group.members_removed", via: "SCIM PATCH /Groups remove members[value eq …]", actor: scimActor,
			do: func() {
				s.mustSCIM("PATCH", "/Groups/"+group, patchOp(op("remove", `members[value eq "`+cy+`"]`, nil)), http.StatusOK, http.StatusNoContent)
			}},
		{action: "group.deleted", via: "SCIM DELETE /Groups", actor: scimActor,
			do: func() { s.mustSCIM("DELETE", "/Groups/"+group, nil, http.StatusNoContent) }},

		// The operator makes the first owner.
		{action: "role.assigned", via: "cli role set", actor: func() wantActor { return cli },
			do: func() {
				mustCLI(t, s.getenv, "role", "set", "--tenant", "acme", "--user", "ada@acme.test", "--role", "owner")
			}},

		// Sign-in at the ACS.
		{action: "sso.login_succeeded", via: "SAML response at /saml/acme/acs", actor: func() wantActor { return wantActor{typ: "user", id: ada, name: "ada@acme.test"} },
			do: func() { adaToken = s.mustSignIn("ada@acme.test") }},
		{action: "sso.login_failed", via: "SAML response for nobody at /saml/acme/acs", actor: func() wantActor { return system },
			do: func() {
				if st, tok := s.signIn("nobody@acme.test"); st != http.StatusForbidden || tok != "" {
					t.Fatalf("sign-in of an unknown person = %d (token %v); want 403", st, tok != "")
				}
			}},

		// The signed-in owner works through GraphQL.
		{action: "space.created", via: "GraphQL createSpace (Bearer)", actor: adaActor,
			do: func() {
				d := s.mustGQL(asAda(), `mutation { createSpace(input: {name: "Design docs"}) { id } }`, nil)
				space = dig(d, "createSpace", "id").(string)
			}},
		{action: "space.updated", via: "GraphQL updateSpace (session cookie)", actor: adaActor,
			do: func() {
				s.mustGQL(cookieOf(adaToken), `mutation($id: ID!) { updateSpace(input: {id: $id, description: "Specs"}) { id } }`, map[string]any{"id": space})
			}},
		{action: "access.granted", via: "GraphQL grantSpaceAccess", actor: adaActor,
			do: func() {
				s.mustGQL(asAda(), `mutation($s: ID!, $p: ID!) { grantSpaceAccess(input: {spaceId: $s, principalId: $p, role: VIEWER}) { role } }`,
					map[string]any{"s": space, "p": gid("User", cy)})
			}},
		{action: "access.revoked", via: "GraphQL revokeSpaceAccess", actor: adaActor,
			do: func() {
				s.mustGQL(asAda(), `mutation($s: ID!, $p: ID!) { revokeSpaceAccess(spaceId: $s, principalId: $p) }`,
					map[string]any{"s": space, "p": gid("User", cy)})
			}},
		{action: "space.deleted", via: "GraphQL deleteSpace", actor: adaActor,
			do: func() { s.mustGQL(asAda(), `mutation($id: ID!) { deleteSpace(id: $id) }`, map[string]any{"id": space}) }},
		{action: "role.assigned", via: "GraphQL setUserRole", actor: adaActor,
			do: func() {
				s.mustGQL(asAda(), `mutation($u: ID!) { setUserRole(userId: $u, roleId: "admin") { id } }`, map[string]any{"u": gid("User", cy)})
			}},
		{action: "role.created", via: "GraphQL createRole", actor: adaActor,
			do: func() {
				d := s.mustGQL(asAda(), `mutation { createRole(name: "Space admins", permissions: [MANAGE_SPACES]) { id } }`, nil)
				role = dig(d, "createRole", "id").(string)
			}},
		{action: "role.updated", via: "GraphQL updateRole", actor: adaActor,
			do: func() {
				s.mustGQL(asAda(), `mutation($id: ID!) { updateRole(id: $id, name: "Space managers") { id } }`, map[string]any{"id": role})
			}},
		{action: "role.deleted", via: "GraphQL deleteRole", actor: adaActor,
			do: func() { s.mustGQL(asAda(), `mutation($id: ID!) { deleteRole(id: $id) }`, map[string]any{"id": role}) }},
		{action: "role_mapping.changed", via: "GraphQL mapGroupToRole", actor: adaActor,
			prep: func() {
				admins = s.mustSCIM("POST", "/Groups", scimGroup("Gatehouse Admins"), http.StatusCreated)["id"].(string)
			},
			do: func() {
				s.mustGQL(asAda(), `mutation($g: ID!) { mapGroupToRole(groupId: $g, roleId: "admin") { role { id } } }`, map[string]any{"g": gid("Group", admins)})
			}},
		{action: "role_mapping.changed", via: "GraphQL unmapGroupRole", actor: adaActor,
			do: func() {
				s.mustGQL(asAda(), `mutation($g: ID!) { unmapGroupRole(groupId: $g, roleId: "admin") }`, map[string]any{"g": gid("Group", admins)})
			}},
		{action: "tenant.settings_changed", via: "GraphQL updateTenantSettings", actor: adaActor,
			do: func() {
				s.mustGQL(asAda(), `mutation { updateTenantSettings(input: {name: "Acme Corp"}) { id } }`, nil)
			}},
		{action: "saml.connection_changed", via: "GraphQL configureSAML", actor: adaActor,
			do: func() {
				s.mustGQL(asAda(), `mutation($md: String!) { configureSAML(input: {metadataXml: $md, emailAttribute: "mail"}) { idpEntityId } }`,
					map[string]any{"md": string(s.idp.MetadataXML())})
			}},
		{action: "scim_token.issued", via: "GraphQL issueSCIMToken", actor: adaActor,
			do: func() {
				d := s.mustGQL(asAda(), `mutation { issueSCIMToken(name: "Entra") { token { id } secret } }`, nil)
				issuedID = dig(d, "issueSCIMToken", "token", "id").(string)
			}},
		{action: "scim_token.revoked", via: "GraphQL revokeSCIMToken", actor: adaActor,
			do: func() {
				s.mustGQL(asAda(), `mutation($id: ID!) { revokeSCIMToken(id: $id) }`, map[string]any{"id": issuedID})
			}},
		{action: "session.revoked", via: "GraphQL revokeUserSessions", actor: adaActor,
			prep: func() { cyToken = s.mustSignIn("cy@acme.test") },
			do: func() {
				d := s.mustGQL(asAda(), `mutation($u: ID!) { revokeUserSessions(userId: $u) }`, map[string]any{"u": gid("User", cy)})
				if n := dig(d, "revokeUserSessions"); n != float64(1) {
					t.Fatalf("revokeUserSessions = %v; want 1", n)
				}
				if r := s.gql(bearerOf(cyToken), `{ viewer { user { id } } }`, nil); len(r.Errors) == 0 {
					t.Fatal("a revoked session still answers")
				}
			}},
		{action: "session.revoked", via: "GraphQL logout", actor: adaActor,
			prep: func() { logoutToken = s.mustSignIn("ada@acme.test") },
			do:   func() { s.mustGQL(bearerOf(logoutToken), `mutation { logout }`, nil) }},

		// The operator ends the owner's sessions and retires the IdP's token.
		{action: "session.revoked", via: "cli session revoke", actor: func() wantActor { return cli },
			do: func() { mustCLI(t, s.getenv, "session", "revoke", "--tenant", "acme", "--user", "ada@acme.test") }},
		{action: "scim_token.revoked", via: "cli scim-token revoke", actor: func() wantActor { return cli },
			do: func() { mustCLI(t, s.getenv, "scim-token", "revoke", "--tenant", "acme", s.scimTokenID) }},
	}

	driven := map[string]bool{}
	for _, st := range steps {
		name := st.action + " via " + st.via
		if st.prep != nil {
			st.prep()
		}
		s.log.fresh() // what prep caused is not this row's
		st.do()
		got := s.log.fresh()
		want := st.actor()
		var hits []storedEvent
		var others []string
		for _, e := range got {
			if e.Action == st.action {
				hits = append(hits, e)
			} else {
				others = append(others, e.Action)
			}
		}
		if len(hits) != 1 {
			t.Fatalf("%s: %d %s events, want exactly 1; added: %v", name, len(hits), st.action, got)
		}
		if !slices.Equal(others, st.also) {
			t.Errorf("%s: other events %v, want %v", name, others, st.also)
		}
		e := hits[0]
		if e.ActorType != want.typ || e.ActorID != want.id || e.ActorName != want.name {
			t.Errorf("%s: actor %s %q %q, want %s %q %q", name, e.ActorType, e.ActorID, e.ActorName, want.typ, want.id, want.name)
		}
		if e.TargetType == "" || e.TargetID == "" {
			t.Errorf("%s: no target: %v", name, e)
		}
		if strings.HasPrefix(st.via, "cli ") {
			if e.RequestID != "" || e.RemoteIP != "" || e.UserAgent != "" {
				t.Errorf("%s: request facts on an event of the CLI: %q %q %q", name, e.RequestID, e.RemoteIP, e.UserAgent)
			}
		} else if e.RequestID == "" || e.RemoteIP != "127.0.0.1" || e.UserAgent != userAgent {
			t.Errorf("%s: request id %q, source %q, user agent %q; want an id, 127.0.0.1 and %q", name, e.RequestID, e.RemoteIP, e.UserAgent, userAgent)
		}
		for _, secret := range []string{"gatehouse_scim_", s.scimToken, adaToken, scimPassword} {
			if secret != "" && strings.Contains(e.Changes, secret) {
				t.Errorf("%s: a secret is in the event: %v", name, e)
			}
		}
		driven[st.action] = true
	}

	// The document, the code and the requests agree on what the catalogue is.
	doc := documentedActions(t)
	var drove []string
	for a := range driven {
		drove = append(drove, a)
	}
	sort.Strings(drove)
	if !slices.Equal(doc, drove) {
		t.Errorf("docs/audit-events.md documents %v\nbut the requests here cause %v", doc, drove)
	}
	if code := recordableActions(t); !slices.Equal(doc, code) {
		t.Errorf("docs/audit-events.md documents %v\nbut the code can record %v", doc, code)
	}
}

// recordableActions reads from the project's Go source (tests aside) every action an
// audit event can be recorded with. Each audit.Event literal's Action must be a string
// literal, or a local variable every assignment of which in the function is one; any
// other form fails the test, so an action cannot slip past the catalogue.
func recordableActions(t *testing.T) []string {
	t.Helper()
	root := filepath.Join("..", "..")
	fset := token.NewFileSet()
	found := map[string]bool{}
	literal := func(e ast.Expr) (string, bool) {
		if b, ok := e.(*ast.BasicLit); ok && b.Kind == token.STRING {
			v, err := strconv.Unquote(b.Value)
			return v, err == nil
		}
		return "", false
	}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules" || d.Name() == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			// values returns what the function assigns to the variable name.
			values := func(name string) []ast.Expr {
				var out []ast.Expr
				ast.Inspect(fn.Body, func(n ast.Node) bool {
					switch n := n.(type) {
					case *ast.AssignStmt:
						for i, l := range n.Lhs {
							if id, ok := l.(*ast.Ident); ok && id.Name == name && i < len(n.Rhs) {
								out = append(out, n.Rhs[i])
							}
						}
					case *ast.ValueSpec:
						for i, id := range n.Names {
							if id.Name == name && i < len(n.Values) {
								out = append(out, n.Values[i])
							}
						}
					}
					return true
				})
				return out
			}
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				lit, ok := n.(*ast.CompositeLit)
				if !ok {
					return true
				}
				if sel, ok := lit.Type.(*ast.SelectorExpr); !ok || sel.Sel.Name != "Event" || fmt.Sprint(sel.X) != "audit" {
					return true
				}
				for _, elt := range lit.Elts {
					kv, ok := elt.(*ast.KeyValueExpr)
					if !ok || fmt.Sprint(kv.Key) != "Action" {
						continue
					}
					exprs := []ast.Expr{kv.Value}
					if id, ok := kv.Value.(*ast.Ident); ok {
						exprs = values(id.Name)
					}
					if len(exprs) == 0 {
						t.Errorf("%s: cannot tell which action this audit.Event records", fset.Position(kv.Pos()))
					}
					for _, e := range exprs {
						v, ok := literal(e)
						if !ok {
							t.Errorf("%s: cannot tell which action this audit.Event records", fset.Position(e.Pos()))
							continue
						}
						found[v] = true
					}
				}
				return true
			})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for a := range found {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// A change that is refused or rolled back leaves no event: neither when it is refused
// before anything is written, nor when the event was already written in the change's
// transaction and the transaction then failed (a rename into a taken name, taking the
// last owner's role away).
func TestRefusedChangesRecordNothing(t *testing.T) {
	s := newStack(t)
	mustCLI(t, s.getenv, "tenant", "create", "--slug", "acme", "--features", "user_groups")
	mustCLI(t, s.getenv, "tenant", "update", "acme", "--idp-initiated-sso=true")
	mustCLI(t, s.getenv, "saml", "configure", "--tenant", "acme", "--metadata-file", s.mdFile)
	mustCLI(t, s.getenv, "domain", "add", "--tenant", "acme", "acme.test")
	s.issueToken("Okta")
	ada := s.provision("ada@acme.test")
	s.provision("cy@acme.test")
	s.provision("dee@acme.test")
	eng := s.mustSCIM("POST", "/Groups", scimGroup("Engineering"), http.StatusCreated)["id"].(string)
	s.mustSCIM("POST", "/Groups", scimGroup("Sales"), http.StatusCreated)
	mustCLI(t, s.getenv, "role", "set", "--tenant", "acme", "--user", "ada@acme.test", "--role", "owner")
	ada1, cy1 := s.mustSignIn("ada@acme.test"), s.mustSignIn("cy@acme.test")

	refusals := []struct {
		name string
		do   func()
	}{
		{"SCIM create with a taken userName", func() {
			if st, _ := s.scim("POST", "/Users", scimUser("ADA@acme.test", true)); st != http.StatusConflict {
				t.Fatalf("status %d, want 409", st)
			}
		}},
		{"SCIM rename into a taken name (event written, then rolled back)", func() {
			if st, _ := s.scim("PATCH", "/Groups/"+eng, patchOp(op("replace", "displayName", "sales"))); st != http.StatusConflict {
				t.Fatalf("status %d, want 409", st)
			}
		}},
		{"SCIM deactivation with an invalid value", func() {
			if st, _ := s.scim("PATCH", "/Users/"+ada, patchOp(op("replace", "active", "bogus"))); st != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", st)
			}
		}},
		{"SCIM add of a member that does not exist", func() {
			if st, _ := s.scim("PATCH", "/Groups/"+eng, patchOp(op("add", "members", []map[string]any{{"value": ada}, {"value": "01nosuchuser"}}))); st != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", st)
			}
		}},
		{"GraphQL createSpace by a member without MANAGE_SPACES", func() {
			if c := s.gqlCode(bearerOf(cy1), `mutation { createSpace(input: {name: "Mine"}) { id } }`, nil); c != "FORBIDDEN" {
				t.Fatalf("code %q, want FORBIDDEN", c)
			}
		}},
		{"GraphQL revokeUserSessions by a member without MANAGE_USERS", func() {
			if c := s.gqlCode(bearerOf(cy1), `mutation($u: ID!) { revokeUserSessions(userId: $u) }`, map[string]any{"u": gid("User", ada)}); c != "FORBIDDEN" {
				t.Fatalf("code %q, want FORBIDDEN", c)
			}
		}},
		{"GraphQL createUser in SCIM provisioning mode", func() {
			if c := s.gqlCode(bearerOf(ada1), `mutation { createUser(input: {userName: "zed@acme.test"}) { id } }`, nil); c != "SCIM_MANAGED" {
				t.Fatalf("code %q, want SCIM_MANAGED", c)
			}
		}},
		{"GraphQL setUserRole taking the last owner's role (written, then rolled back)", func() {
			if c := s.gqlCode(bearerOf(ada1), `mutation($u: ID!) { setUserRole(userId: $u, roleId: "member") { id } }`, map[string]any{"u": gid("User", ada)}); c != "LAST_OWNER" {
				t.Fatalf("code %q, want LAST_OWNER", c)
			}
		}},
		{"GraphQL mutation from a cookie without the site's Origin", func() {
			b, _ := json.Marshal(map[string]any{"query": `mutation { createSpace(input: {name: "CSRF"}) { id } }`})
			req, _ := http.NewRequest(http.MethodPost, s.base+"/graphql", bytes.NewReader(b))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Origin", "https://evil.example")
			req.AddCookie(&http.Cookie{Name: "gatehouse_session", Value: ada1})
			resp, err := s.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("status %d, want 403", resp.StatusCode)
			}
		}},
		{"CLI role set taking the last owner's role", func() {
			if _, err := cli(t, s.getenv, "role", "set", "--tenant", "acme", "--user", "ada@acme.test", "--role", "member"); err == nil {
				t.Fatal("the last owner lost the role")
			}
		}},
		{"CLI domain add of a domain already added", func() {
			if _, err := cli(t, s.getenv, "domain", "add", "--tenant", "acme", "acme.test"); err == nil {
				t.Fatal("a domain was added twice")
			}
		}},
		{"CLI session revoke of a user who has no session", func() {
			if out := mustCLI(t, s.getenv, "session", "revoke", "--tenant", "acme", "--user", "dee@acme.test"); !strings.Contains(out, "revoked 0 session") {
				t.Fatalf("session revoke: %s", out)
			}
		}},
	}
	s.log.fresh()
	for _, r := range refusals {
		r.do()
		if got := s.log.fresh(); len(got) != 0 {
			t.Errorf("%s: recorded %v", r.name, got)
		}
	}
}
