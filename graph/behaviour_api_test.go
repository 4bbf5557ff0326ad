package graph_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/graph"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/access"
	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/identity"
	"github.com/gatehouse-dev/gatehouse/modules/platform/cache"
	"github.com/gatehouse-dev/gatehouse/modules/platform/clock"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

// users(first: N) { groups { spaceGrants { space } members } effectiveSpaces roles }
// runs the same number of SQL statements for 10 users as for 100: every list field,
// and every group's page of members, is batched.
func TestDataloaderQueryCount(t *testing.T) {
	// The served wait (5 ms) is enough when the machine is idle, but on a loaded one a
	// resolver can start after its loader's batch went out, which splits the batch (CI
	// counted 20 statements for 100 users). A long wait makes the count a property of
	// the code, not of the machine's load.
	graph.SetBatchWait(t, 250*time.Millisecond)
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		a := newAPI(t, bdb)
		o := a.newOrg("acme", tenancy.ProvisioningManual, tenancy.FeatureUserGroups)
		ctx := context.Background()
		op := access.OperatorViewer(o.tenant.ID)
		var all []string
		for i := range 100 {
			o.add(a, fmt.Sprintf("p%03d", i))
			all = append(all, o.ids[fmt.Sprintf("p%03d", i)])
		}
		for i := range 5 {
			g, err := a.access.CreateGroupAs(ctx, op, fmt.Sprintf("team %d", i), all[i*20:(i+1)*20])
			if err != nil {
				t.Fatal(err)
			}
			s, err := a.access.CreateSpace(ctx, op, fmt.Sprintf("space %d", i), "")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.access.GrantAccess(ctx, op, s.ID, "group", g.ID, access.SpaceRole("editor")); err != nil {
				t.Fatal(err)
			}
			if _, err := a.access.GrantAccess(ctx, op, s.ID, "user", all[i], access.SpaceRole("manager")); err != nil {
				t.Fatal(err)
			}
		}
		q := `query($n: Int) { users(first: $n) { nodes { userName groups { displayName spaceGrants { role space { name } }
			members(first: 5) { nodes { userName } pageInfo { hasNextPage } } }
			effectiveSpaces { role space { name } sources { kind group { displayName } } } roles { role { name } } } } }`
		count := func(n int) int64 {
			before := a.queries.Load()
			d := a.must(o.tokens["member"], q, map[string]any{"n": n})
			if got := len(dig(d, "users.nodes").([]any)); got != n {
				t.Fatalf("got %d users, want %d", got, n)
			}
			return a.queries.Load() - before
		}
		// 15 statements when every batch gathers all its keys: the viewer with their
		// tenant, the page (users, their values), one or two per per-user field (groups,
		// roles, effective spaces), one per object loader (groups, grants, spaces), and
		// for the groups' members one page statement and their users (users, values).
		// Groups and spaces are reached along two paths each, so a loader may run twice
		// when those paths finish apart; 18 allows for that. Unbatched, 100 users would
		// cost several hundred.
		const bound = 18
		small, large := count(10), count(100)
		t.Logf("SQL statements: %d for 10 users, %d for 100", small, large)
		if large > bound || small > bound {
			t.Fatalf("%d statements for 100 users and %d for 10; the bound is %d whatever the page size", large, small, bound)
		}
	})
}

// Limits and protocol on both databases: depth, persisted queries, anonymous access,
// CSRF for cookies, logout.
func TestRequestRules(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		a := newAPI(t, bdb)
		o := a.newOrg("acme", tenancy.ProvisioningManual, tenancy.FeatureUserGroups)
		tok := o.tokens["member"]

		if r := a.gql("", `{ viewer { user { id } } }`, nil); r.code() != "UNAUTHENTICATED" {
			t.Fatalf("anonymous viewer: %+v", r.Errors)
		}
		if r := a.gql("", `{ organizationForEmail(email: "a@b.co") { slug } }`, nil); len(r.Errors) > 0 {
			t.Fatalf("anonymous home-realm discovery: %+v", r.Errors)
		}
		if r := a.gql("not-a-token", `{ organizationForEmail(email: "a@b.co") { slug } }`, nil); r.Status != http.StatusUnauthorized || r.code() != "UNAUTHENTICATED" {
			t.Fatalf("a bad token is refused even for public fields: %d %+v", r.Status, r.Errors)
		}

		// Small pages, so that depth and not complexity is what is over the limit.
		deep := `{ viewer { user { groups { members(first: 1) { nodes { groups { members(first: 1) { nodes { groups { members(first: 1) { nodes { groups { displayName } } } } } } } } } } } } }`
		if r := a.gql(tok, deep, nil); r.code() != "DEPTH_LIMIT_EXCEEDED" {
			t.Fatalf("deep query: %+v", r.Errors)
		}

		// Automatic persisted queries: the hash alone is unknown first, then known.
		q := `{ viewer { user { userName } } }`
		sum := sha256.Sum256([]byte(q))
		ext := map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hex.EncodeToString(sum[:])}}
		send := func(body map[string]any) result {
			b, _ := json.Marshal(body)
			req, _ := http.NewRequest(http.MethodPost, a.srv.URL, bytes.NewReader(b))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+tok)
			return a.do(req)
		}
		if r := send(map[string]any{"extensions": ext}); r.code() != "PERSISTED_QUERY_NOT_FOUND" {
			t.Fatalf("unknown persisted query: %+v", r.Errors)
		}
		if r := send(map[string]any{"query": q, "extensions": ext}); len(r.Errors) > 0 {
			t.Fatalf("registering a persisted query: %+v", r.Errors)
		}
		if r := send(map[string]any{"extensions": ext}); len(r.Errors) > 0 || dig(r.Data, "viewer.user.userName") != "member@acme.test" {
			t.Fatalf("persisted query by hash: %+v %v", r.Errors, r.Data)
		}

		// A cookie-authenticated request must come from our origin.
		cookieAs := func(token, origin, query string) result {
			body, _ := json.Marshal(map[string]any{"query": query})
			req, _ := http.NewRequest(http.MethodPost, a.srv.URL, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.AddCookie(&http.Cookie{Name: "gatehouse_session", Value: token})
			if origin != "" {
				req.Header.Set("Origin", origin)
			}
			return a.do(req)
		}
		cookie := func(origin string) result { return cookieAs(tok, origin, `{ viewer { user { id } } }`) }
		if r := cookie(""); r.Status != http.StatusForbidden || r.code() != "FORBIDDEN" {
			t.Fatalf("cookie without Origin: %d %+v", r.Status, r.Errors)
		}
		if r := cookie("https://evil.test"); r.Status != http.StatusForbidden {
			t.Fatalf("cookie from another origin: %d %+v", r.Status, r.Errors)
		}
		if r := cookie(a.srv.URL); len(r.Errors) > 0 {
			t.Fatalf("cookie from our origin: %+v", r.Errors)
		}

		// GraphiQL is off here: GET is refused with a GraphQL error.
		res, err := http.Get(a.srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("GET with GraphiQL off: %s", res.Status)
		}

		// The SP values and metadata an admin pastes into the IdP.
		d := a.must(tok, `{ tenant { serviceProvider { entityId acsUrl metadataXml } } }`, nil)
		if dig(d, "tenant.serviceProvider.entityId") != a.srv.URL+"/saml/acme" ||
			!strings.Contains(dig(d, "tenant.serviceProvider.metadataXml").(string), `entityID="`+a.srv.URL+`/saml/acme"`) {
			t.Fatalf("service provider: %v", d)
		}

		// A cookie logout from another site is refused and ends nothing; from ours it ends
		// the session.
		admin := o.tokens["admin"]
		if r := cookieAs(admin, "https://evil.test", `mutation { logout }`); r.Status != http.StatusForbidden || r.code() != "FORBIDDEN" {
			t.Fatalf("cookie logout from another origin: %d %+v", r.Status, r.Errors)
		}
		if r := a.gql(admin, `{ viewer { user { id } } }`, nil); len(r.Errors) > 0 {
			t.Fatalf("the refused logout ended the session: %+v", r.Errors)
		}
		if r := cookieAs(admin, a.srv.URL, `mutation { logout }`); len(r.Errors) > 0 || r.Data["logout"] != true {
			t.Fatalf("cookie logout from our origin: %+v", r)
		}
		if r := a.gql(admin, `{ viewer { user { id } } }`, nil); r.Status != http.StatusUnauthorized {
			t.Fatalf("after the cookie logout: %d %+v", r.Status, r.Errors)
		}

		// logout ends the session of the request; the token is refused afterwards.
		if d := a.must(tok, `mutation { logout }`, nil); d["logout"] != true {
			t.Fatalf("logout: %v", d)
		}
		if r := a.gql(tok, `{ viewer { user { id } } }`, nil); r.Status != http.StatusUnauthorized {
			t.Fatalf("after logout: %d %+v", r.Status, r.Errors)
		}
	})
}

// Space access follows group membership at once: taking someone out of a group (the
// module call SCIM PATCH makes) takes away the access that came through it on the very
// next request, and deleting the group does too.
func TestAccessFollowsGroups(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		a := newAPI(t, bdb)
		o := a.newOrg("acme", tenancy.ProvisioningSCIM, tenancy.FeatureUserGroups)
		ctx := context.Background()
		op := access.OperatorViewer(o.tenant.ID)
		g, err := a.access.CreateGroup(ctx, o.tenant.ID, access.Group{DisplayName: "Design"}, []string{o.ids["member"]})
		if err != nil {
			t.Fatal(err)
		}
		s, _ := a.access.CreateSpace(ctx, op, "Brand", "")
		if _, err := a.access.GrantAccess(ctx, op, s.ID, "group", g.ID, access.SpaceRole("editor")); err != nil {
			t.Fatal(err)
		}
		q := `{ viewer { user { effectiveSpaces { role space { name } } } } spaces { nodes { name } } }`
		d := a.must(o.tokens["member"], q, nil)
		if dig(d, "viewer.user.effectiveSpaces.0.space.name") != "Brand" || dig(d, "spaces.nodes.0.name") != "Brand" {
			t.Fatalf("through the group: %v", d)
		}
		if _, err := a.access.UpdateGroup(ctx, o.tenant.ID, g.ID, 0, func(*access.Group) (access.MemberChange, error) {
			return access.MemberChange{Remove: []string{o.ids["member"]}}, nil
		}); err != nil {
			t.Fatal(err)
		}
		d = a.must(o.tokens["member"], q, nil)
		if n := len(dig(d, "viewer.user.effectiveSpaces").([]any)); n != 0 || len(dig(d, "spaces.nodes").([]any)) != 0 {
			t.Fatalf("after removal from the group the space is still there: %v", d)
		}
		if _, ok, _ := a.access.SpaceAccess(ctx, o.tenant.ID, o.ids["member"], s.ID); ok {
			t.Fatal("SpaceAccess still grants access")
		}
		// Back in the group, then the group is deleted (SCIM DELETE /Groups): access goes too.
		if _, err := a.access.UpdateGroup(ctx, o.tenant.ID, g.ID, 0, func(*access.Group) (access.MemberChange, error) {
			return access.MemberChange{Add: []string{o.ids["member"]}}, nil
		}); err != nil {
			t.Fatal(err)
		}
		if d := a.must(o.tokens["member"], q, nil); len(dig(d, "spaces.nodes").([]any)) != 1 {
			t.Fatalf("re-added: %v", d)
		}
		if err := a.access.DeleteGroup(ctx, o.tenant.ID, g.ID, 0); err != nil {
			t.Fatal(err)
		}
		if d := a.must(o.tokens["member"], q, nil); len(dig(d, "spaces.nodes").([]any)) != 0 {
			t.Fatalf("after the group was deleted: %v", d)
		}
	})
}

// What went wrong inside stays inside: an internal error answers "internal error" with
// code INTERNAL and nothing more, and the log has the detail under the response's
// request id. A session check that cannot reach the database is not a sign-out: it
// answers 503 UNAVAILABLE (retry) and is logged too.
func TestInternalErrorsAreHidden(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		a := newAPI(t, bdb)
		o := a.newOrg("acme", tenancy.ProvisioningManual)
		ctx := context.Background()
		// A session this replica has not cached (another replica started it).
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		c := cache.NewMemory()
		t.Cleanup(func() { c.Close() })
		other := identity.New(bdb, clock.System{}, audit.New(clock.System{}), c, log).
			Sessions(a.keys, identity.SessionsConfig{Issuer: a.srv.URL})
		_, uncached, err := other.Start(ctx, identity.NewSession{TenantID: o.tenant.ID, UserID: o.ids["member"],
			IdleTimeout: time.Hour, MaxLife: time.Hour, Method: "saml"})
		if err != nil {
			t.Fatal(err)
		}

		// The spaces table is gone: reading spaces fails inside.
		if _, err := bdb.ExecContext(ctx, "ALTER TABLE spaces RENAME TO spaces_gone"); err != nil {
			t.Fatal(err)
		}
		r := a.gql(o.tokens["admin"], `{ spaces { nodes { name } } }`, nil)
		if r.code() != "INTERNAL" || r.Errors[0].Message != "internal error" || len(r.Errors) != 1 || r.RequestID == "" {
			t.Fatalf("an internal error: %+v", r)
		}
		if line := logLine(a.logs.String(), r.RequestID, "graphql request failed"); !strings.Contains(line, "spaces") {
			t.Fatalf("the log has no detail under request id %s: %q", r.RequestID, line)
		}

		// The sessions table is gone: the uncached session cannot be checked.
		if _, err := bdb.ExecContext(ctx, "ALTER TABLE sessions RENAME TO sessions_gone"); err != nil {
			t.Fatal(err)
		}
		r = a.gql(uncached, `{ viewer { user { id } } }`, nil)
		if r.Status != http.StatusServiceUnavailable || r.code() != "UNAVAILABLE" || strings.Contains(r.Errors[0].Message, "sessions") {
			t.Fatalf("a session check that failed: %d %+v", r.Status, r.Errors)
		}
		if line := logLine(a.logs.String(), r.RequestID, "the session could not be checked"); !strings.Contains(line, "sessions") {
			t.Fatalf("the failed session check is not logged under request id %s: %q", r.RequestID, line)
		}
	})
}

// logLine returns the first log line that names the request id and says what.
func logLine(logs, requestID, what string) string {
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "request_id="+requestID) && strings.Contains(l, what) {
			return l
		}
	}
	return ""
}

// A NUL character cannot be stored in a text column, so no id, cursor or string argument
// a client sends with one may reach the database as an internal error: an id with one
// names nothing (null, or NOT_FOUND for a mutation), a cursor with one is not a cursor
// of this API, and a string argument with one is BAD_USER_INPUT.
func TestNULIsTheClients(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		a := newAPI(t, bdb)
		o := a.newOrg("acme", tenancy.ProvisioningManual, tenancy.FeatureUserGroups)
		admin := o.tokens["admin"]
		nul := func(kind string) string { return gid(kind, "01a\x00b") }
		f := &targets{t: t, a: a, o: o}
		group := f.group(o.ids["member"])

		for _, c := range []struct{ field, kind string }{{"node", "User"}, {"node", "Group"}, {"node", "Space"},
			{"user", "User"}, {"group", "Group"}, {"space", "Space"}} {
			r := a.gql(admin, `query($id: ID!) { `+c.field+`(id: $id) { id } }`, map[string]any{"id": nul(c.kind)})
			if len(r.Errors) > 0 || r.Data[c.field] != nil {
				t.Errorf("%s of a %s id with a NUL: %+v %v; want null", c.field, c.kind, r.Errors, r.Data)
			}
		}
		for _, q := range []string{
			`mutation($id: ID!) { updateUser(input: {id: $id, displayName: "x"}) { id } }`,
			`mutation($id: ID!) { deleteSpace(id: $id) }`,
			`mutation($id: ID!) { revokeUserSessions(userId: $id) }`,
		} {
			id := nul("User")
			if strings.Contains(q, "Space") {
				id = nul("Space")
			}
			if r := a.gql(admin, q, map[string]any{"id": id}); r.code() != "NOT_FOUND" {
				t.Errorf("%s with a NUL in the id: %+v; want NOT_FOUND", q, r.Errors)
			}
		}
		cursor := graph.Cursor("01a\x00b")
		for _, q := range []string{
			`query($a: String) { users(after: $a) { nodes { id } } }`,
			`query($a: String) { groups(after: $a) { nodes { id } } }`,
			`query($a: String) { spaces(after: $a) { nodes { id } } }`,
			`query($a: String, $g: ID!) { group(id: $g) { members(first: 5, after: $a) { nodes { id } } } }`,
		} {
			if r := a.gql(admin, q, map[string]any{"a": cursor, "g": gid("Group", group)}); r.code() != "BAD_USER_INPUT" {
				t.Errorf("%s with a NUL in the cursor: %+v; want BAD_USER_INPUT", q, r.Errors)
			}
		}
		for _, c := range []struct {
			q    string
			vars map[string]any
		}{
			{`query($s: String) { users(filter: {search: $s}) { nodes { id } } }`, map[string]any{"s": "a\x00"}},
			{`query($s: String) { auditEvents(filter: {actorId: $s}) { nodes { id } } }`, map[string]any{"s": "a\x00"}},
			{`mutation($n: String!) { createSpace(input: {name: $n}) { id } }`, map[string]any{"n": "a\x00"}},
			{`mutation($u: ID!, $r: ID!) { setUserRole(userId: $u, roleId: $r) { id } }`, map[string]any{"u": gid("User", o.ids["member"]), "r": "x\x00"}},
			{`mutation { createSpace(input: {name: "inline\u0000"}) { id } }`, nil},
			{`query($g: ID!) { group(id: $g) { ...M } } fragment M on Group { members(after: "x\u0000") { nodes { id } } }`, map[string]any{"g": gid("Group", group)}},
		} {
			if r := a.gql(admin, c.q, c.vars); r.code() != "BAD_USER_INPUT" || !strings.Contains(r.Errors[0].Message, "NUL") {
				t.Errorf("%s with a NUL: %+v; want BAD_USER_INPUT", c.q, r.Errors)
			}
		}
		if strings.Contains(a.logs.String(), "graphql request failed") {
			t.Errorf("the server logged an internal error:\n%s", a.logs.String())
		}
	})
}

// Without a session only organizationForEmail answers: a lookup by id is
// UNAUTHENTICATED whatever the id, not a null that answers for the caller.
func TestAnonymousLookupsAreRefused(t *testing.T) {
	a := newAPI(t, testenv.SQLite(t))
	o := a.newOrg("acme", tenancy.ProvisioningManual, tenancy.FeatureUserGroups)
	for _, field := range []string{"user", "group", "space", "node"} {
		for _, id := range []string{"garbage", gid("Session", "x"), gid("User", o.ids["member"])} {
			if r := a.gql("", `query($id: ID!) { `+field+`(id: $id) { id } }`, map[string]any{"id": id}); r.code() != "UNAUTHENTICATED" {
				t.Errorf("anonymous %s(%q): %+v %v; want UNAUTHENTICATED", field, id, r.Errors, r.Data)
			}
		}
	}
}

// A search longer than any stored value it could be a prefix of is the client's mistake
// (BAD_USER_INPUT), on every database: SQLite refuses LIKE patterns over 50,000 bytes,
// which answered INTERNAL.
func TestLongSearchIsRefused(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		a := newAPI(t, bdb)
		o := a.newOrg("acme", tenancy.ProvisioningManual)
		q := `query($s: String) { users(first: 5, filter: {search: $s}) { nodes { id } } }`
		if r := a.gql(o.tokens["member"], q, map[string]any{"s": strings.Repeat("é", identity.MaxStringLen/2)}); len(r.Errors) > 0 {
			t.Fatalf("a search as long as the longest value: %+v", r.Errors)
		}
		r := a.gql(o.tokens["member"], q, map[string]any{"s": strings.Repeat("x", 60000)})
		if r.code() != "BAD_USER_INPUT" || !strings.Contains(r.Errors[0].Message, "search") {
			t.Fatalf("a search of 60,000 characters: %+v; want BAD_USER_INPUT", r.Errors)
		}
	})
}
