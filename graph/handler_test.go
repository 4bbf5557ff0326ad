package graph_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/graph"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/identity"
	"github.com/gatehouse-dev/gatehouse/modules/platform/clock"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// anonymous authenticates no one: these tests exercise what answers without a session.
type anonymous struct{}

func (anonymous) Principal(*http.Request) (identity.Principal, bool, error) {
	return identity.Principal{}, false, nil
}

type noDNS struct{}

func (noDNS) LookupTXT(context.Context, string) ([]string, error) { return nil, nil }

type gqlResponse struct {
	Data   map[string]any
	Errors []struct {
		Message    string
		Extensions map[string]any
	}
}

func post(t *testing.T, url, body string) (int, gqlResponse) {
	t.Helper()
	res, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var r gqlResponse
	_ = json.Unmarshal(raw, &r)
	return res.StatusCode, r
}

func query(q string, vars map[string]any) string {
	b, _ := json.Marshal(map[string]any{"query": q, "variables": vars})
	return string(b)
}

func TestOrganizationForEmail(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		ctx := context.Background()
		clk := clock.System{}
		ten := tenancy.New(bdb, clk, audit.New(clk), noDNS{})
		acme, _ := ten.CreateTenant(ctx, tenancy.CreateTenantInput{Slug: "acme", Name: "Acme Inc"})
		if _, err := ten.AddDomain(ctx, acme.ID, "acme.com"); err != nil {
			t.Fatal(err)
		}
		if _, err := ten.VerifyDomain(ctx, acme.ID, "acme.com", tenancy.VerifyManual); err != nil {
			t.Fatal(err)
		}
		// Claimed but unverified domains never route.
		globex, _ := ten.CreateTenant(ctx, tenancy.CreateTenantInput{Slug: "globex"})
		_, _ = ten.AddDomain(ctx, globex.ID, "globex.com")

		srv := httptest.NewServer(graph.NewHandler(&graph.Resolver{Tenancy: ten}, graph.HandlerConfig{}, slog.New(slog.NewTextHandler(io.Discard, nil)), anonymous{}))
		defer srv.Close()
		q := `query($e: String!) { organizationForEmail(email: $e) { slug name } }`

		_, r := post(t, srv.URL, query(q, map[string]any{"e": "Ada@ACME.com"}))
		if len(r.Errors) > 0 || r.Data["organizationForEmail"].(map[string]any)["slug"] != "acme" {
			t.Fatalf("verified domain: %+v", r)
		}
		for _, e := range []string{"bob@globex.com", "eve@nowhere.org"} {
			if _, r := post(t, srv.URL, query(q, map[string]any{"e": e})); len(r.Errors) > 0 || r.Data["organizationForEmail"] != nil {
				t.Fatalf("%s: %+v", e, r)
			}
		}
		_, r = post(t, srv.URL, query(q, map[string]any{"e": "not an email"}))
		if len(r.Errors) != 1 || r.Errors[0].Extensions["code"] != "BAD_USER_INPUT" {
			t.Fatalf("malformed email: %+v", r)
		}
	})
}

func TestLimits(t *testing.T) {
	clk := clock.System{}
	ten := tenancy.New(testenv.SQLite(t), clk, audit.New(clk), noDNS{})
	srv := httptest.NewServer(graph.NewHandler(&graph.Resolver{Tenancy: ten}, graph.HandlerConfig{}, slog.New(slog.NewTextHandler(io.Discard, nil)), anonymous{}))
	defer srv.Close()

	// Over-complex: a page of users with a page of members of each of their groups,
	// though small in text, because each page counts as many times as it is long. The
	// same query with small pages passes the limit (and then needs a session).
	over := `{ users(first: 100) { nodes { id groups { members(first: 100) { nodes { id userName } } } } } }`
	_, r := post(t, srv.URL, query(over, nil))
	if len(r.Errors) == 0 || r.Errors[0].Extensions["code"] != "COMPLEXITY_LIMIT_EXCEEDED" {
		t.Fatalf("over-complex query: %+v", r.Errors)
	}
	small := strings.ReplaceAll(over, "100", "5")
	if _, r = post(t, srv.URL, query(small, nil)); len(r.Errors) == 0 || r.Errors[0].Extensions["code"] != "UNAUTHENTICATED" {
		t.Fatalf("the same query with small pages: %+v", r.Errors)
	}
	// Too many tokens.
	_, r = post(t, srv.URL, query("{"+strings.Repeat(" __typename", 6000)+"}", nil))
	if len(r.Errors) == 0 || !strings.Contains(r.Errors[0].Message, "token limit") {
		t.Fatalf("token limit: %+v", r.Errors)
	}
	// Oversized body, announced by Content-Length or not (chunked), and one just under.
	big := query(`{ __typename }`+strings.Repeat(" ", graph.MaxBodyBytes), nil)
	for _, chunked := range []bool{false, true} {
		var body io.Reader = strings.NewReader(big)
		if chunked {
			body = io.MultiReader(body) // a reader of unknown length: sent chunked
		}
		req, _ := http.NewRequest(http.MethodPost, srv.URL, body)
		req.Header.Set("Content-Type", "application/json")
		if chunked != (req.ContentLength <= 0) {
			t.Fatalf("chunked %v: Content-Length %d", chunked, req.ContentLength)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var r gqlResponse
		_ = json.NewDecoder(res.Body).Decode(&r)
		res.Body.Close()
		if res.StatusCode != http.StatusRequestEntityTooLarge || len(r.Errors) != 1 || r.Errors[0].Extensions["code"] != "REQUEST_TOO_LARGE" {
			t.Fatalf("oversized body (chunked %v): status %d %+v", chunked, res.StatusCode, r)
		}
	}
	q := query(`{ __typename }`, nil)
	if code, r := post(t, srv.URL, q[:len(q)-1]+strings.Repeat(" ", graph.MaxBodyBytes-len(q))+"}"); code != http.StatusOK || len(r.Errors) > 0 {
		t.Fatalf("a body of exactly the limit: status %d %+v", code, r)
	}
}

// A fragment spread twice in each of a chain of fragments doubles what the operation
// asks for at every link: 26 links in 2 KB ask for 67 million fields. It is refused
// at once, without a session, before anything walks the expansion (the depth and
// complexity checks would each walk all of it); a chain that expands to little passes.
func TestFragmentExpansionLimit(t *testing.T) {
	clk := clock.System{}
	ten := tenancy.New(testenv.SQLite(t), clk, audit.New(clk), noDNS{})
	srv := httptest.NewServer(graph.NewHandler(&graph.Resolver{Tenancy: ten}, graph.HandlerConfig{}, slog.New(slog.NewTextHandler(io.Discard, nil)), anonymous{}))
	defer srv.Close()
	chain := func(links int) string {
		var b strings.Builder
		b.WriteString("query { ...F0 }\n")
		for i := range links {
			fmt.Fprintf(&b, "fragment F%d on Query { ...F%d ... on Query { ...F%d } }\n", i, i+1, i+1)
		}
		fmt.Fprintf(&b, "fragment F%d on Query { organizationForEmail(email: \"a@b.test\") { slug } }\n", links)
		return b.String()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, strings.NewReader(query(chain(26), nil)))
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("a chain of 26 doubling fragments: no answer after %s: %v", time.Since(start), err)
	}
	var r gqlResponse
	_ = json.NewDecoder(res.Body).Decode(&r)
	res.Body.Close()
	if len(r.Errors) != 1 || r.Errors[0].Extensions["code"] != "COMPLEXITY_LIMIT_EXCEEDED" {
		t.Fatalf("a chain of 26 doubling fragments: %d %+v", res.StatusCode, r)
	}
	if _, r := post(t, srv.URL, query(chain(4), nil)); len(r.Errors) > 0 {
		t.Fatalf("a chain of 4 doubling fragments: %+v", r.Errors)
	}
}

// Introspection and "did you mean" suggestions answer only when configured; when off,
// asking for the schema is refused with INTROSPECTION_DISABLED, which is the client's
// doing and not logged as a server error.
func TestIntrospection(t *testing.T) {
	clk := clock.System{}
	ten := tenancy.New(testenv.SQLite(t), clk, audit.New(clk), noDNS{})
	queries := map[string]string{
		"__schema":            `{ __schema { queryType { name } } }`,
		"__type in fragments": `query { ...A } fragment A on Query { ... on Query { __type(name: "User") { name } } }`,
	}
	for _, on := range []bool{true, false} {
		var logged bytes.Buffer
		log := slog.New(slog.NewTextHandler(&logged, nil))
		srv := httptest.NewServer(graph.NewHandler(&graph.Resolver{Tenancy: ten}, graph.HandlerConfig{Introspection: on}, log, anonymous{}))
		for name, q := range queries {
			status, r := post(t, srv.URL, query(q, nil))
			switch {
			case on && (len(r.Errors) > 0 || len(r.Data) == 0):
				t.Errorf("%s with introspection on: %d %+v", name, status, r)
			case !on && (len(r.Errors) != 1 || r.Errors[0].Extensions["code"] != "INTROSPECTION_DISABLED" ||
				!strings.Contains(r.Errors[0].Message, "GATEHOUSE_GRAPHQL_INTROSPECTION") || r.Data != nil):
				t.Errorf("%s with introspection off: %d %+v", name, status, r)
			}
		}
		_, r := post(t, srv.URL, query(`{ organizationForEmal(email: "a@b.co") { slug } }`, nil))
		if len(r.Errors) == 0 || strings.Contains(r.Errors[0].Message, "Did you mean") != on {
			t.Errorf("introspection %v: suggestions: %+v", on, r.Errors)
		}
		if strings.Contains(logged.String(), "level=ERROR") {
			t.Errorf("introspection %v: logged as a server error: %s", on, logged.String())
		}
		srv.Close()
	}
}

// GraphiQL answers GET /graphql only when configured.
func TestGraphiQL(t *testing.T) {
	clk := clock.System{}
	ten := tenancy.New(testenv.SQLite(t), clk, audit.New(clk), noDNS{})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, on := range []bool{true, false} {
		srv := httptest.NewServer(graph.NewHandler(&graph.Resolver{Tenancy: ten}, graph.HandlerConfig{GraphiQL: on}, log, anonymous{}))
		res, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		srv.Close()
		if got := res.StatusCode == http.StatusOK && strings.Contains(string(body), "graphiql"); got != on {
			t.Fatalf("GraphiQL %v: GET answered %s %.80q", on, res.Status, body)
		}
	}
}

// Requests that are not what this endpoint takes get a clear code and status, each
// documented in the README.
func TestProtocolErrors(t *testing.T) {
	clk := clock.System{}
	ten := tenancy.New(testenv.SQLite(t), clk, audit.New(clk), noDNS{})
	srv := httptest.NewServer(graph.NewHandler(&graph.Resolver{Tenancy: ten}, graph.HandlerConfig{}, slog.New(slog.NewTextHandler(io.Discard, nil)), anonymous{}))
	defer srv.Close()
	for _, c := range []struct {
		name, contentType, body string
		status                  int
		code                    string
	}{
		{"syntax", "", query(`{ viewer `, nil), 422, "GRAPHQL_PARSE_FAILED"},
		{"tokens", "", query("{"+strings.Repeat(" __typename", 6000)+"}", nil), 422, "GRAPHQL_PARSE_FAILED"},
		{"unknown field", "", query(`{ nosuch }`, nil), 422, "GRAPHQL_VALIDATION_FAILED"},
		{"bad variable", "", query(`query($f: Int) { users(first: $f) { nodes { id } } }`, map[string]any{"f": "x"}), 422, "GRAPHQL_VALIDATION_FAILED"},
		{"which operation", "", query(`query A { __typename } query B { __typename }`, nil), 422, "GRAPHQL_VALIDATION_FAILED"},
		{"complexity", "", query(`{ users(first: 100) { nodes { groups { members(first: 100) { nodes { id } } } } } }`, nil), 200, "COMPLEXITY_LIMIT_EXCEEDED"},
		{"complexity of member lists", "", query(`{ spaces(first: 100) { nodes { effectiveMembers(first: 1) { nodes { role } } } } }`, nil), 200, "COMPLEXITY_LIMIT_EXCEEDED"},
		{"introspection", "", query(`{ __schema { queryType { name } } }`, nil), 200, "INTROSPECTION_DISABLED"},
		{"persisted query", "", `{"extensions":{"persistedQuery":{"version":1,"sha256Hash":"abc"}}}`, 200, "PERSISTED_QUERY_NOT_FOUND"},
		{"persisted query version", "", `{"extensions":{"persistedQuery":{"version":2,"sha256Hash":"abc"}}}`, 200, "BAD_REQUEST"},
		{"not JSON", "", `{"query": `, 400, "BAD_REQUEST"},
		{"not a JSON request", "text/plain", query(`{ __typename }`, nil), 415, "BAD_REQUEST"},
		{"no session", "", query(`{ viewer { user { id } } }`, nil), 200, "UNAUTHENTICATED"},
	} {
		ct := c.contentType
		if ct == "" {
			ct = "application/json; charset=utf-8"
		}
		res, err := http.Post(srv.URL, ct, strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		var r gqlResponse
		_ = json.NewDecoder(res.Body).Decode(&r)
		res.Body.Close()
		if res.StatusCode != c.status || len(r.Errors) != 1 || r.Errors[0].Extensions["code"] != c.code {
			t.Errorf("%s: %d %+v; want %d %s", c.name, res.StatusCode, r.Errors, c.status, c.code)
		}
	}
}
