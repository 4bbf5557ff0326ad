package graph_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/scim"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

const acmeURN = "urn:ietf:params:scim:schemas:extension:acme:2.0:User"

// A tenant's SCIM User extension declared through GraphQL is the one the CLI declares:
// the same rules, the same defaults, SCIM serves it at once, audited as the person's.
func TestScimExtensions(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		a := newAPI(t, bdb)
		acme := a.newOrg("acme", tenancy.ProvisioningSCIM)
		globex := a.newOrg("globex", tenancy.ProvisioningSCIM)
		owner := acme.tokens["owner"]
		set := `mutation($in: ScimExtensionInput!) { setScimExtension(input: $in) { urn name description createdAt
			attributes { name type multiValued description required caseExact mutability returned uniqueness indexed } } }`
		in := map[string]any{"urn": acmeURN, "description": "Acme's HR fields", "attributes": []any{
			map[string]any{"name": "costCenter", "type": "integer", "indexed": true, "required": true},
			map[string]any{"name": "badgePin", "mutability": "writeOnly"},
			map[string]any{"name": "skills", "multiValued": true, "caseExact": true, "uniqueness": "none"},
		}}
		d := a.must(owner, set, map[string]any{"in": in})
		x := dig(d, "setScimExtension").(map[string]any)
		if x["urn"] != acmeURN || x["name"] != "acme" || x["description"] != "Acme's HR fields" {
			t.Fatalf("declared: %v", x)
		}
		// RFC 7643 §2.2 defaults, as the CLI's file would get them.
		want := []map[string]any{
			{"name": "costCenter", "type": "integer", "multiValued": false, "description": "", "required": true, "caseExact": false,
				"mutability": "readWrite", "returned": "default", "uniqueness": "none", "indexed": true},
			{"name": "badgePin", "type": "string", "multiValued": false, "description": "", "required": false, "caseExact": false,
				"mutability": "writeOnly", "returned": "never", "uniqueness": "none", "indexed": false},
			{"name": "skills", "type": "string", "multiValued": true, "description": "", "required": false, "caseExact": true,
				"mutability": "readWrite", "returned": "default", "uniqueness": "none", "indexed": false},
		}
		gotJSON, _ := json.Marshal(x["attributes"])
		wantJSON, _ := json.Marshal(want)
		if string(gotJSON) != string(wantJSON) {
			t.Fatalf("attributes:\n%s\nwant\n%s", gotJSON, wantJSON)
		}
		stored, err := a.identity.UserExtensions(context.Background(), acme.tenant.ID)
		if err != nil || len(stored) != 1 || stored[0].URN != acmeURN || len(stored[0].Attributes) != 3 {
			t.Fatalf("stored: %+v %v", stored, err)
		}
		list := `{ tenant { scimExtensions { urn attributes { name indexed } } } }`
		if d := a.must(owner, list, nil); dig(d, "tenant.scimExtensions.0.urn") != acmeURN || dig(d, "tenant.scimExtensions.0.attributes.0.indexed") != true {
			t.Fatalf("listed: %v", d)
		}
		events, _, err := a.audit.Page(context.Background(), bdb, acme.tenant.ID, audit.Filter{Actions: []string{"scim_extension.changed"}}, 0, 10)
		if err != nil || len(events) != 1 || events[0].ActorType != audit.ActorUser || events[0].ActorID != acme.ids["owner"] {
			t.Fatalf("audit: %+v %v", events, err)
		}

		// SCIM serves it at once, to this tenant only.
		scimSrv := newSCIM(t, a)
		it, err := a.tenancy.IssueSCIMToken(context.Background(), acme.tenant.ID, "Okta", 0)
		if err != nil {
			t.Fatal(err)
		}
		if status := scimGet(t, scimSrv+"/Schemas/"+acmeURN, it.Secret); status != http.StatusOK {
			t.Fatalf("GET /Schemas/%s: %d", acmeURN, status)
		}

		// Wrong declarations are BAD_USER_INPUT naming the problem.
		for _, c := range []struct {
			name  string
			in    map[string]any
			names string
		}{
			{"enterprise", map[string]any{"urn": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
				"attributes": []any{map[string]any{"name": "x"}}}, "Enterprise User extension"},
			{"bad urn", map[string]any{"urn": "urn:acme:custom", "attributes": []any{map[string]any{"name": "x"}}}, "urn:ietf:params:scim:schemas:extension:<name>:2.0:User"},
			{"no attributes", map[string]any{"urn": acmeURN, "attributes": []any{}}, "at least one attribute"},
			{"twice", map[string]any{"urn": acmeURN, "attributes": []any{map[string]any{"name": "a"}, map[string]any{"name": "A"}}}, `"A" is declared twice`},
			{"type", map[string]any{"urn": acmeURN, "attributes": []any{map[string]any{"name": "a", "type": "float"}}}, `type "float"`},
			{"writeOnly", map[string]any{"urn": acmeURN, "attributes": []any{map[string]any{"name": "pin", "mutability": "writeOnly", "returned": "always"}}}, "writeOnly"},
			{"name", map[string]any{"urn": acmeURN, "attributes": []any{map[string]any{"name": "9lives"}}}, `"9lives"`},
		} {
			r := a.gql(owner, set, map[string]any{"in": c.in})
			if r.code() != "BAD_USER_INPUT" || !strings.Contains(r.Errors[0].Message, c.names) {
				t.Errorf("%s: %+v; want BAD_USER_INPUT naming %q", c.name, r.Errors, c.names)
			}
		}

		// Another tenant sees none of it and cannot remove it.
		if d := a.must(globex.tokens["owner"], list, nil); len(dig(d, "tenant.scimExtensions").([]any)) != 0 {
			t.Fatalf("globex sees: %v", d)
		}
		remove := `mutation($u: String!) { removeScimExtension(urn: $u) }`
		if r := a.gql(globex.tokens["owner"], remove, map[string]any{"u": acmeURN}); r.code() != "NOT_FOUND" {
			t.Fatalf("globex removes acme's: %+v", r.Errors)
		}
		// Removing: then it is gone, and a second time it is not found.
		if d := a.must(owner, remove, map[string]any{"u": strings.ToUpper(acmeURN[:3]) + acmeURN[3:]}); d["removeScimExtension"] != true {
			t.Fatalf("remove: %v", d)
		}
		if d := a.must(owner, list, nil); len(dig(d, "tenant.scimExtensions").([]any)) != 0 {
			t.Fatalf("after removal: %v", d)
		}
		if r := a.gql(owner, remove, map[string]any{"u": acmeURN}); r.code() != "NOT_FOUND" {
			t.Fatalf("removing twice: %+v", r.Errors)
		}
		if status := scimGet(t, scimSrv+"/Schemas/"+acmeURN, it.Secret); status != http.StatusNotFound {
			t.Fatalf("GET /Schemas/%s after removal: %d", acmeURN, status)
		}
	})
}

// newSCIM serves SCIM over the API's modules, as the server does, and returns its base URL.
func newSCIM(t *testing.T, a *api) string {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	h, err := scim.New(scim.Config{BaseURL: srv.URL + "/scim/v2", MaxBodyBytes: 1 << 20},
		slog.New(slog.NewTextHandler(io.Discard, nil)), a.tenancy, a.identity, a.access)
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/scim/v2/", http.StripPrefix("/scim/v2", h))
	return srv.URL + "/scim/v2"
}

func scimGet(t *testing.T, url, token string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}
