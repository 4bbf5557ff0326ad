package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// A tenant's extension declared from the CLI is served and enforced by the SCIM server.
func TestSCIMExtensionCLI(t *testing.T) {
	const urn = "urn:ietf:params:scim:schemas:extension:acme:2.0:User"
	for _, dbCase := range dbURLs {
		t.Run(dbCase.name, func(t *testing.T) {
			getenv := envOf("GATEHOUSE_DATABASE_URL", dbCase.url(t))
			mustCLI(t, getenv, "tenant", "create", "--slug", "acme", "--name", "Acme Inc")
			secret := regexp.MustCompile(`gatehouse_scim_\w+`).FindString(mustCLI(t, getenv, "scim-token", "issue", "--tenant", "acme", "--name", "Okta"))
			file := filepath.Join(t.TempDir(), "ext.json")
			def := `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Schema"],"id":"` + urn + `","name":"Acme",
				"attributes":[{"name":"managementLevel","type":"string"},
				{"name":"costCenterCode","type":"integer","required":true,"indexed":true},
				{"name":"isContractor","type":"boolean","indexed":true}]}`
			if err := os.WriteFile(file, []byte(def), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := cli(t, getenv, "scim-extension", "set", "--tenant", "acme", "--file", file+".missing"); err == nil {
				t.Fatal("a missing file was accepted")
			}
			bad := filepath.Join(t.TempDir(), "bad.json")
			_ = os.WriteFile(bad, []byte(strings.Replace(def, "acme:2.0", "enterprise:2.0", 1)), 0o600)
			if _, err := cli(t, getenv, "scim-extension", "set", "--tenant", "acme", "--file", bad); err == nil || !strings.Contains(err.Error(), "Enterprise") {
				t.Fatalf("the enterprise URN: %v", err)
			}
			if out := mustCLI(t, getenv, "scim-extension", "set", "--tenant", "acme", "--file", file); !strings.Contains(out, "3 attribute(s)") {
				t.Fatalf("set:\n%s", out)
			}
			if out := mustCLI(t, getenv, "scim-extension", "list", "--tenant", "acme"); !strings.Contains(out, "costCenterCode   integer") || !strings.Contains(out, "required, indexed") {
				t.Fatalf("list:\n%s", out)
			}
			if out := mustCLI(t, getenv, "audit", "tail", "--tenant", "acme"); !strings.Contains(out, "scim_extension.changed") {
				t.Fatalf("audit:\n%s", out)
			}

			base, _, stop := startServer(t, getenv)
			defer stop()
			call := func(method, path, body string) (int, string) {
				t.Helper()
				req, _ := http.NewRequest(method, base+"/scim/v2"+path, bytes.NewBufferString(body))
				req.Header.Set("Authorization", "Bearer "+secret)
				req.Header.Set("Content-Type", "application/scim+json")
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				b, _ := io.ReadAll(res.Body)
				return res.StatusCode, string(b)
			}
			code, body := call("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","`+urn+`"],"userName":"ada@acme.com",
				"`+urn+`":{"managementLevel":"Senior","costCenterCode":"123","isContractor":"True"}}`)
			var u map[string]any
			_ = json.Unmarshal([]byte(body), &u)
			ext, _ := u[urn].(map[string]any)
			if code != 201 || ext["costCenterCode"] != float64(123) || ext["isContractor"] != true {
				t.Fatalf("POST /Users = %d %s", code, body)
			}
			if code, body := call("GET", "/Users?filter="+url.QueryEscape(urn+":costCenterCode gt 100"), ""); code != 200 || !strings.Contains(body, `"totalResults":1`) {
				t.Fatalf("filter = %d %s", code, body)
			}
			if code, body := call("GET", "/Schemas/"+urn, ""); code != 200 || !strings.Contains(body, "isContractor") {
				t.Fatalf("schema = %d %s", code, body)
			}

			if _, err := cli(t, getenv, "scim-extension", "remove", "--tenant", "acme"); err == nil || !strings.Contains(err.Error(), "--urn is required") {
				t.Fatalf("remove without --urn: %v", err)
			}
			mustCLI(t, getenv, "scim-extension", "remove", "--tenant", "acme", "--urn", urn)
			// The CLI is another process's worth of services: a running server sees its
			// change within the 2 s its per-tenant schema is cached for.
			deadline := time.Now().Add(3 * time.Second)
			for code, _ := call("GET", "/Schemas/"+urn, ""); code != 404; code, _ = call("GET", "/Schemas/"+urn, "") {
				if time.Now().After(deadline) {
					t.Fatalf("schema still served %s after its removal (%d)", 3*time.Second, code)
				}
				time.Sleep(100 * time.Millisecond)
			}
			if out := mustCLI(t, getenv, "scim-extension", "list", "--tenant", "acme"); strings.Contains(out, urn) {
				t.Fatalf("list after removal:\n%s", out)
			}
		})
	}
}
