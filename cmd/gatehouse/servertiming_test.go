package main

import (
	"bytes"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"
)

// GATEHOUSE_SERVER_TIMING=true adds a Server-Timing header counting the SQL statements
// of each request; by default there is none.
func TestServerTimingSetting(t *testing.T) {
	queriesRE := regexp.MustCompile(`^db;dur=[0-9]+\.[0-9]{2};desc="([0-9]+) queries"$`)
	for _, dbCase := range dbURLs {
		t.Run(dbCase.name, func(t *testing.T) {
			dbURL := dbCase.url(t)
			getenv := envOf("GATEHOUSE_DATABASE_URL", dbURL)
			mustCLI(t, getenv, "tenant", "create", "--slug", "acme", "--name", "Acme Inc")
			secret := regexp.MustCompile(`gatehouse_scim_\w+`).FindString(mustCLI(t, getenv, "scim-token", "issue", "--tenant", "acme", "--name", "Okta"))
			n := 0
			// call returns the Server-Timing headers of one request.
			call := func(base, method, path string) []string {
				t.Helper()
				n++
				var body io.Reader
				if method == http.MethodPost {
					body = bytes.NewReader([]byte(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ada` + strconv.Itoa(n) + `@acme.com","emails":[{"value":"ada@acme.com","type":"work"}]}`))
				}
				req, _ := http.NewRequest(method, base+path, body)
				req.Header.Set("Authorization", "Bearer "+secret)
				req.Header.Set("Content-Type", "application/scim+json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				data, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode >= 300 {
					t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, data)
				}
				return resp.Header.Values("Server-Timing")
			}
			queries := func(h []string) int {
				t.Helper()
				if len(h) != 1 || !queriesRE.MatchString(h[0]) {
					t.Fatalf("Server-Timing %q, want one db;dur=…;desc=\"N queries\"", h)
				}
				q, _ := strconv.Atoi(queriesRE.FindStringSubmatch(h[0])[1])
				return q
			}

			base, _, stop := startServer(t, envOf("GATEHOUSE_DATABASE_URL", dbURL, "GATEHOUSE_SERVER_TIMING", "true"))
			// A create is a transaction (BEGIN, at least one write, COMMIT) after the
			// token is checked; a lookup reads the token and the page. Either is far
			// below 50 statements.
			if q := queries(call(base, http.MethodPost, "/scim/v2/Users")); q < 4 || q > 50 {
				t.Errorf("POST /Users ran %d statements: implausible", q)
			}
			if q := queries(call(base, http.MethodGet, `/scim/v2/Users?filter=userName+eq+"ada1@acme.com"`)); q < 2 || q > 50 {
				t.Errorf("GET /Users ran %d statements: implausible", q)
			}
			if q := queries(call(base, http.MethodGet, "/healthz")); q != 0 {
				t.Errorf("/healthz ran %d statements, want 0", q)
			}
			if err := stop(); err != nil {
				t.Fatal(err)
			}

			base, _, stop = startServer(t, getenv)
			for _, c := range [][2]string{{http.MethodPost, "/scim/v2/Users"}, {http.MethodGet, "/healthz"}} {
				if h := call(base, c[0], c[1]); len(h) != 0 {
					t.Errorf("%s %s: Server-Timing %q although the setting is off", c[0], c[1], h)
				}
			}
			if err := stop(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
