package main

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The SCIM rate limit from the operator's side: the default (100 requests per second,
// bursts of 200: far above the 25 per second Microsoft's gallery asks for) holds for a
// tenant without its own, `tenant update --scim-rate-limit` sets one that a real server
// enforces with 429, out-of-range values are refused, and 0 returns to the default.
func TestSCIMRateLimitCLI(t *testing.T) {
	for _, dbCase := range dbURLs {
		t.Run(dbCase.name, func(t *testing.T) {
			getenv := envOf("GATEHOUSE_DATABASE_URL", dbCase.url(t))
			token := regexp.MustCompile(`gatehouse_scim_\w+`)
			secret := map[string]string{}
			for _, slug := range []string{"acme", "globex"} {
				mustCLI(t, getenv, "tenant", "create", "--slug", slug)
				secret[slug] = token.FindString(mustCLI(t, getenv, "scim-token", "issue", "--tenant", slug, "--name", "Entra"))
			}
			limitLine := regexp.MustCompile(`SCIM rate limit\s+(.*)`)
			shown := func(out string) string {
				t.Helper()
				m := limitLine.FindStringSubmatch(out)
				if m == nil {
					t.Fatalf("no SCIM rate limit line in:\n%s", out)
				}
				return strings.TrimSpace(m[1])
			}
			if got := shown(mustCLI(t, getenv, "tenant", "show", "acme")); got != "100/s (the deployment's default)" {
				t.Fatalf("default: %q", got)
			}
			for _, bad := range []string{"10001", "-1", "fast"} {
				if _, err := cli(t, getenv, "tenant", "update", "acme", "--scim-rate-limit", bad); err == nil {
					t.Errorf("--scim-rate-limit %s was accepted", bad)
				}
			}
			if got := shown(mustCLI(t, getenv, "tenant", "update", "acme", "--scim-rate-limit", "1")); got != "1/s" {
				t.Fatalf("after update: %q", got)
			}

			base, _, stop := startServer(t, getenv)
			defer stop()
			call := func(slug string) *http.Response {
				t.Helper()
				req, _ := http.NewRequest("GET", base+"/scim/v2/Users?count=1", nil)
				req.Header.Set("Authorization", "Bearer "+secret[slug])
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				return res
			}
			// The default budget takes a burst of 60 at once (Microsoft asks for 25 a second).
			for i := range 60 {
				res := call("globex")
				_ = res.Body.Close()
				if res.StatusCode != http.StatusOK {
					t.Fatalf("globex request %d under the default limit: %d", i+1, res.StatusCode)
				}
			}
			// 1 per second with bursts of 2: one of the next requests is refused (each would
			// have to take a second for none to be).
			var refused *http.Response
			for range 50 {
				res := call("acme")
				if res.StatusCode == http.StatusTooManyRequests {
					refused = res
					break
				}
				_ = res.Body.Close()
			}
			if refused == nil {
				t.Fatal("50 requests at 1 per second were all served")
			}
			defer refused.Body.Close()
			var body map[string]any
			raw, _ := io.ReadAll(refused.Body)
			_ = json.Unmarshal(raw, &body)
			if secs, err := strconv.Atoi(refused.Header.Get("Retry-After")); err != nil || secs < 1 ||
				body["status"] != "429" || !strings.Contains(body["detail"].(string), "1 requests per second") {
				t.Fatalf("429: Retry-After %q, body %s", refused.Header.Get("Retry-After"), raw)
			}

			if got := shown(mustCLI(t, getenv, "tenant", "update", "acme", "--scim-rate-limit", "0")); got != "100/s (the deployment's default)" {
				t.Fatalf("after --scim-rate-limit 0: %q", got)
			}
		})
	}
}
