package scim_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/audit"
)

const bulkRequestURN = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"

// bulkReq builds a BulkRequest; failOnErrors 0 leaves it out.
func bulkReq(failOnErrors int, ops ...map[string]any) map[string]any {
	l := make([]any, len(ops))
	for i, o := range ops {
		l[i] = o
	}
	b := map[string]any{"schemas": []string{bulkRequestURN}, "Operations": l}
	if failOnErrors > 0 {
		b["failOnErrors"] = failOnErrors
	}
	return b
}

func bulkOp(method, path, bulkID string, data any) map[string]any {
	o := map[string]any{"method": method, "path": path}
	if bulkID != "" {
		o["bulkId"] = bulkID
	}
	if data != nil {
		o["data"] = data
	}
	return o
}

// bulkResults returns the operations of a BulkResponse, checking its shape.
func bulkResults(t *testing.T, r resp) []map[string]any {
	t.Helper()
	r.must(t, 200)
	if s, _ := get(r.Body, "schemas.0").(string); s != "urn:ietf:params:scim:api:messages:2.0:BulkResponse" {
		t.Fatalf("not a BulkResponse: %s", r.Raw)
	}
	var out []map[string]any
	ops, _ := r.Body["Operations"].([]any)
	for _, o := range ops {
		out = append(out, o.(map[string]any))
	}
	return out
}

// opStatus checks one operation result's status (and scimType when it failed).
func opStatus(t *testing.T, o map[string]any, status, scimType string) {
	t.Helper()
	if o["status"] != status {
		t.Fatalf("operation %v: status %v, want %s", o, o["status"], status)
	}
	if status[0] == '2' {
		if o["response"] != nil || o["location"] == nil {
			t.Fatalf("successful operation %v: want a location and no response", o)
		}
		return
	}
	if get(o, "response.status") != status || get(o, "response.detail") == nil || get(o, "response.schemas.0") != "urn:ietf:params:scim:api:messages:2.0:Error" {
		t.Fatalf("failed operation %v: response is not a SCIM error with status %s", o, status)
	}
	if got, _ := get(o, "response.scimType").(string); got != scimType {
		t.Fatalf("operation %v: scimType %q, want %q", o, got, scimType)
	}
}

// TestBulkCreatesAndReferences: a group listed before the users it names by bulkId is
// created after them; Okta- and Entra-style user bodies are accepted as data; every
// created resource has its audit event, by the token.
func TestBulkCreatesAndReferences(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		e := newEnv(t, bdb)
		ctx := context.Background()
		before, _ := e.audit.Latest(ctx, bdb, e.tenant.ID)
		okta := map[string]any{
			"schemas":  []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
			"userName": "isaac.brock@example.com", "name": map[string]any{"givenName": "Isaac", "familyName": "Brock"},
			"emails": []any{map[string]any{"primary": true, "value": "isaac.brock@example.com", "type": "work"}},
			"groups": []any{}, "password": "1mz050nq", "active": true, "id": "ignored", "externalId": "00ujl29u0le5T6Aj10h7",
		}
		entra := map[string]any{
			"schemas":    []string{"urn:ietf:params:scim:schemas:core:2.0:User", enterpriseURN},
			"externalId": "0a21f0f2", "userName": "Test_User_ab6490ee", "active": "True",
			"meta":  map[string]any{"resourceType": "User"},
			"roles": []any{}, enterpriseURN: map[string]any{"department": "R&D", "manager": "bulkId:okta"},
		}
		r := e.do("POST", "/Bulk", bulkReq(0,
			bulkOp("POST", "/Groups", "team", map[string]any{
				"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"}, "displayName": "Team",
				"members": []any{map[string]any{"value": "bulkId:okta"}, map[string]any{"value": "bulkId:entra"}}}),
			bulkOp("POST", "/Users", "okta", okta),
			bulkOp("POST", "/Users", "entra", entra),
		))
		ops := bulkResults(t, r)
		if len(ops) != 3 {
			t.Fatalf("want 3 results: %s", r.Raw)
		}
		ids := map[string]string{}
		for _, o := range ops {
			opStatus(t, o, "201", "")
			loc := o["location"].(string)
			ids[o["bulkId"].(string)] = loc[strings.LastIndexByte(loc, '/')+1:]
			if o["method"] != "POST" || !strings.HasPrefix(o["version"].(string), `W/"`) {
				t.Fatalf("result %v", o)
			}
		}
		// The group waited for the users it names.
		if ops[2]["bulkId"] != "team" {
			t.Fatalf("group processed before its members: %s", r.Raw)
		}
		if ops[0]["location"] != e.base+"/Users/"+ids["okta"] {
			t.Fatalf("location %v", ops[0]["location"])
		}
		g := e.do("GET", "/Groups/"+ids["team"], nil).must(t, 200)
		if m := strings.Join(memberValues(g), ","); !strings.Contains(m, ids["okta"]) || !strings.Contains(m, ids["entra"]) || len(memberValues(g)) != 2 {
			t.Fatalf("group members %v, want %s and %s", memberValues(g), ids["okta"], ids["entra"])
		}
		u := e.do("GET", "/Users/"+ids["entra"], nil).must(t, 200)
		if u.ent("manager.value") != ids["okta"] || u.ent("department") != "R&D" || get(u.Body, "active") != true {
			t.Fatalf("entra user: %s", u.Raw)
		}
		if o := e.do("GET", "/Users/"+ids["okta"], nil).must(t, 200); strings.Contains(o.Raw, "1mz050nq") || o.str("externalId") != "00ujl29u0le5T6Aj10h7" {
			t.Fatalf("okta user: %s", o.Raw)
		}

		events, _, err := e.audit.Page(ctx, bdb, e.tenant.ID, audit.Filter{}, before, 100)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, ev := range events {
			if ev.ActorType != audit.ActorSCIMToken || ev.ActorName != "test" {
				t.Fatalf("event %+v not by the SCIM token", ev)
			}
			got[ev.Action+" "+ev.TargetID] = ev.Action
		}
		for _, want := range []string{"user.created " + ids["okta"], "user.created " + ids["entra"], "group.created " + ids["team"], "group.members_added " + ids["team"]} {
			if got[want] == "" {
				t.Fatalf("no audit event %q in %v", want, got)
			}
		}
		if len(events) != 4 {
			t.Fatalf("%d audit events, want 4: %v", len(events), got)
		}
	})
}

// TestBulkUpdatesAndErrors: PUT, PATCH and DELETE in bulk, version as If-Match, a bad
// operation in the middle failing alone, and failOnErrors stopping early.
func TestBulkUpdatesAndErrors(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		e := newEnv(t, bdb)
		u1 := e.do("POST", "/Users", user("u1@acme.com")).must(t, 201)
		u2 := e.do("POST", "/Users", user("u2@acme.com")).must(t, 201)
		gid := e.do("POST", "/Groups", group("G", u1.str("id"))).must(t, 201).str("id")
		id1, id2 := u1.str("id"), u2.str("id")
		v1 := e.etag("/Users/" + id1) // joining G gave u1 a new version

		r := e.do("POST", "/Bulk", bulkReq(0,
			map[string]any{"method": "patch", "path": "/Users/" + id1, "version": v1,
				"data": patchOp(op("replace", "title", "Boss"))},
			bulkOp("PATCH", "/Users/"+id2, "", patchOp(op("replace", "active", "bogus"))), // bad, in the middle
			map[string]any{"method": "PUT", "path": "/Users/" + id2, "version": `W/"999"`, "data": user("u2@acme.com")},
			bulkOp("PATCH", "/Groups/"+gid, "", patchOp(op("add", "members", []any{map[string]any{"value": id2}}))),
			bulkOp("PUT", "/Groups/"+gid, "", group("G renamed", id1, id2)),
			bulkOp("DELETE", "/Users/"+id1, "", nil),
			bulkOp("POST", "/Users", "x", map[string]any{"userName": "x@acme.com", "favouriteColour": "blue"}),
			bulkOp("POST", "/Users", "", user("nobulkid@acme.com")),
			bulkOp("GET", "/Users/"+id2, "", nil),
			bulkOp("DELETE", "/Widgets/1", "", nil),
			bulkOp("POST", "/Users", "y", user("y@acme.com")),
		))
		ops := bulkResults(t, r)
		if len(ops) != 11 {
			t.Fatalf("want 11 results: %s", r.Raw)
		}
		opStatus(t, ops[0], "200", "")
		opStatus(t, ops[1], "400", "invalidValue")
		opStatus(t, ops[2], "412", "")
		opStatus(t, ops[3], "204", "")
		opStatus(t, ops[4], "200", "")
		opStatus(t, ops[5], "204", "")
		opStatus(t, ops[6], "400", "invalidValue")
		opStatus(t, ops[7], "400", "invalidValue")
		opStatus(t, ops[8], "400", "invalidValue")
		opStatus(t, ops[9], "400", "invalidValue")
		opStatus(t, ops[10], "201", "")
		if ops[0]["method"] != "PATCH" || ops[0]["version"] == v1 {
			t.Fatalf("PATCH result %v", ops[0])
		}
		e.do("GET", "/Users/"+id1, nil).scimError(t, 404, "")
		g := e.do("GET", "/Groups/"+gid, nil).must(t, 200)
		if g.str("displayName") != "G renamed" || strings.Join(memberValues(g), ",") != id2 {
			t.Fatalf("group after bulk: %s", g.Raw)
		}
		if u := e.do("GET", "/Users/"+id2, nil).must(t, 200); get(u.Body, "active") != true {
			t.Fatalf("failed PATCH applied: %s", u.Raw)
		}

		// failOnErrors=1: the first error stops the request; only processed operations
		// are reported and nothing after the error runs.
		r = e.do("POST", "/Bulk", bulkReq(1,
			bulkOp("POST", "/Users", "a", user("a@acme.com")),
			bulkOp("POST", "/Users", "b", user("A@acme.com")),
			bulkOp("POST", "/Users", "c", user("c@acme.com")),
		))
		ops = bulkResults(t, r)
		if len(ops) != 2 {
			t.Fatalf("failOnErrors=1: want 2 results: %s", r.Raw)
		}
		opStatus(t, ops[0], "201", "")
		opStatus(t, ops[1], "409", "uniqueness")
		if l := e.do("GET", `/Users?filter=userName+eq+%22c%40acme.com%22`, nil).must(t, 200); l.num("totalResults") != 0 {
			t.Fatalf("operation after failOnErrors ran: %s", l.Raw)
		}
		// failOnErrors=2 lets one error pass.
		ops = bulkResults(t, e.do("POST", "/Bulk", bulkReq(2,
			bulkOp("POST", "/Users", "a", user("a@acme.com")),
			bulkOp("POST", "/Users", "c", user("c@acme.com")),
			bulkOp("DELETE", "/Users/nope", "", nil),
			bulkOp("POST", "/Users", "d", user("d@acme.com")),
		)))
		if len(ops) != 3 || ops[1]["status"] != "201" || ops[2]["status"] != "404" {
			t.Fatalf("failOnErrors=2: %v", ops)
		}
	})
}

// TestBulkForwardReferenceWithFailOnErrors: in one request a group names by bulkId a
// user created after it and another operation fails. With failOnErrors 1 the failure
// stops the request before the waiting group runs: it is neither created nor reported,
// and nothing after the failure runs. With failOnErrors 2 the request goes on and the
// group is created with the user it named.
func TestBulkForwardReferenceWithFailOnErrors(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		e := newEnv(t, bdb)
		e.do("POST", "/Users", user("taken@acme.com")).must(t, 201)
		request := func(failOnErrors int, suffix string) []map[string]any {
			return bulkResults(t, e.do("POST", "/Bulk", bulkReq(failOnErrors,
				bulkOp("POST", "/Groups", "team", group("Team "+suffix, "bulkId:ada")),
				bulkOp("POST", "/Users", "ada", user("ada-"+suffix+"@acme.com")),
				bulkOp("POST", "/Users", "dup", user("TAKEN@acme.com")),
				bulkOp("POST", "/Users", "cy", user("cy-"+suffix+"@acme.com")),
			)))
		}
		exists := func(path, filter string) bool {
			t.Helper()
			return e.do("GET", path+"?filter="+url.QueryEscape(filter), nil).must(t, 200).num("totalResults") == 1
		}

		ops := request(1, "1")
		if len(ops) != 2 || ops[0]["bulkId"] != "ada" || ops[1]["bulkId"] != "dup" {
			t.Fatalf("failOnErrors 1: want ada then dup: %v", ops)
		}
		opStatus(t, ops[0], "201", "")
		opStatus(t, ops[1], "409", "uniqueness")
		if !exists("/Users", `userName eq "ada-1@acme.com"`) || exists("/Users", `userName eq "cy-1@acme.com"`) || exists("/Groups", `displayName eq "Team 1"`) {
			t.Fatal("failOnErrors 1: want ada created, and neither cy nor the waiting group")
		}

		ops = request(2, "2")
		if len(ops) != 4 || ops[3]["bulkId"] != "team" {
			t.Fatalf("failOnErrors 2: want every operation, the group last: %v", ops)
		}
		opStatus(t, ops[2], "201", "")
		opStatus(t, ops[3], "201", "")
		loc := ops[3]["location"].(string)
		g := e.do("GET", loc[strings.Index(loc, "/Groups/"):], nil).must(t, 200)
		ada := ops[0]["location"].(string)
		if m := memberValues(g); len(m) != 1 || !strings.HasSuffix(ada, "/Users/"+m[0]) {
			t.Fatalf("group members %v, want ada (%s)", m, ada)
		}
	})
}

// TestBulkReferenceErrors: an unknown bulkId and a cycle fail the operations involved
// (and those waiting on them), not the request.
func TestBulkReferenceErrors(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		e := newEnv(t, bdb)
		r := e.do("POST", "/Bulk", bulkReq(0,
			bulkOp("POST", "/Groups", "a", group("A", "bulkId:b")),
			bulkOp("POST", "/Groups", "b", group("B", "bulkId:a")),
			bulkOp("POST", "/Groups", "self", group("Self", "bulkId:self")),
			bulkOp("POST", "/Groups", "lost", group("Lost", "bulkId:nowhere")),
			bulkOp("PATCH", "/Users/bulkId:nowhere", "", patchOp(op("replace", "title", "x"))),
			bulkOp("POST", "/Users", "ok", user("ok@acme.com")),
			bulkOp("POST", "/Users", "dup", user("dup1@acme.com")),
			bulkOp("POST", "/Users", "dup", user("dup2@acme.com")),
			bulkOp("POST", "/Users", "taken", user("ok@acme.com")),
			bulkOp("POST", "/Groups", "waits", group("Waits", "bulkId:taken")),
			bulkOp("PATCH", "/Users/bulkId:ok", "", patchOp(op("replace", "title", "Referenced"))),
		))
		ops := bulkResults(t, r)
		if len(ops) != 11 {
			t.Fatalf("want 11 results: %s", r.Raw)
		}
		byID := map[string]map[string]any{}
		for _, o := range ops {
			if id, _ := o["bulkId"].(string); id != "" && id != "dup" {
				byID[id] = o
			}
		}
		for _, id := range []string{"a", "b", "self", "lost", "waits"} {
			opStatus(t, byID[id], "400", "invalidValue")
		}
		if d := get(byID["a"], "response.detail").(string); !strings.Contains(d, "cycle") {
			t.Fatalf("cycle detail: %s", d)
		}
		if d := get(byID["lost"], "response.detail").(string); !strings.Contains(d, "nowhere") {
			t.Fatalf("unknown bulkId detail: %s", d)
		}
		opStatus(t, byID["ok"], "201", "")
		opStatus(t, byID["taken"], "409", "uniqueness")
		var patched bool
		for _, o := range ops {
			if o["method"] == "PATCH" && o["status"] == "200" {
				patched = true
			}
		}
		if !patched {
			t.Fatalf("PATCH of a resource created by bulkId did not run: %s", r.Raw)
		}
		if l := e.do("GET", "/Groups", nil).must(t, 200); l.num("totalResults") != 0 {
			t.Fatalf("groups created from failed operations: %s", l.Raw)
		}
		if l := e.do("GET", "/Users", nil).must(t, 200); l.num("totalResults") != 2 {
			t.Fatalf("want ok and dup1 only: %s", l.Raw)
		}
	})
}

// TestBulkLimits: maxOperations and maxPayloadSize are advertised and enforced with 413;
// a Bulk body may exceed the per-resource body limit; the request's shape is checked;
// /Groups operations need the user_groups feature.
func TestBulkLimits(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		e := newEnv(t, bdb)
		spc := e.do("GET", "/ServiceProviderConfig", nil).must(t, 200)
		if get(spc.Body, "bulk.supported") != true || get(spc.Body, "bulk.maxOperations") != float64(1000) || get(spc.Body, "bulk.maxPayloadSize") != float64(1<<20) {
			t.Fatalf("bulk config: %s", spc.Raw)
		}
		many := make([]map[string]any, 1001)
		for i := range many {
			many[i] = bulkOp("DELETE", fmt.Sprintf("/Users/%d", i), "", nil)
		}
		r := e.do("POST", "/Bulk", bulkReq(0, many...)).scimError(t, 413, "")
		if !strings.Contains(r.str("detail"), "maxOperations") {
			t.Fatalf("413 detail: %s", r.Raw)
		}
		big := bulkReq(0, bulkOp("POST", "/Users", "big", user("big@acme.com", "title", strings.Repeat("x", 1<<20))))
		r = e.do("POST", "/Bulk", big).scimError(t, 413, "")
		if !strings.Contains(r.str("detail"), "maxPayloadSize") {
			t.Fatalf("413 detail: %s", r.Raw)
		}
		// 100 KiB is over this server's 64 KiB resource limit but within maxPayloadSize.
		var ops []map[string]any
		for i := range 100 {
			ops = append(ops, bulkOp("POST", "/Users", fmt.Sprint(i), user(fmt.Sprintf("u%d@acme.com", i), "title", strings.Repeat("t", 900))))
		}
		for _, o := range bulkResults(t, e.do("POST", "/Bulk", bulkReq(0, ops...))) {
			opStatus(t, o, "201", "")
		}

		e.do("POST", "/Bulk", map[string]any{"Operations": []any{}}).scimError(t, 400, "invalidSyntax")
		e.do("POST", "/Bulk", map[string]any{"schemas": []string{bulkRequestURN}}).scimError(t, 400, "invalidSyntax")
		e.do("POST", "/Bulk", map[string]any{"schemas": []string{bulkRequestURN}, "Operations": []any{}, "failOnErrors": 0}).scimError(t, 400, "invalidValue")
		e.do("POST", "/Bulk", `{"schemas":["`+bulkRequestURN+`"],"Operations":[`).scimError(t, 400, "invalidSyntax")

		_, noGroups := e.newTenant("initech")
		res := e.doAs(noGroups, "POST", "/Bulk", bulkReq(0,
			bulkOp("POST", "/Users", "u", user("u@initech.com")),
			bulkOp("POST", "/Groups", "g", group("G", "bulkId:u")),
		))
		got := bulkResults(t, res)
		opStatus(t, got[0], "201", "")
		opStatus(t, got[1], "403", "")
	})
}

// TestBulkReferenceInAMemberFilter: a bulkId quoted in a PATCH operation's filter path
// (members[value eq "bulkId:a"]) is a reference like any other: the PATCH waits for
// the POST that defines it and filters on the id created, rather than on the text
// "bulkId:a", which names no member and would remove nobody.
func TestBulkReferenceInAMemberFilter(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		e := newEnv(t, bdb)
		ops := bulkResults(t, e.do("POST", "/Bulk", bulkReq(0,
			bulkOp("PATCH", "/Groups/bulkId:g", "", patchOp(op("remove", `members[value eq "bulkId:a"]`, nil))),
			bulkOp("POST", "/Groups", "g", group("G", "bulkId:a", "bulkId:b")),
			bulkOp("POST", "/Users", "a", user("a@acme.com")),
			bulkOp("POST", "/Users", "b", user("b@acme.com")),
			bulkOp("PATCH", "/Groups/bulkId:g", "", patchOp(op("remove", `members[value eq "bulkId:nowhere"]`, nil))),
		)))
		ids := map[string]string{}
		var patched, unknown map[string]any
		for _, o := range ops {
			if id, _ := o["bulkId"].(string); id != "" {
				loc := o["location"].(string)
				ids[id] = loc[strings.LastIndexByte(loc, '/')+1:]
			}
			if o["method"] == "PATCH" && o["status"] == "204" {
				patched = o
				if ids["g"] == "" {
					t.Fatalf("the PATCH ran before the POSTs it names: %v", ops)
				}
			} else if o["method"] == "PATCH" {
				unknown = o
			}
		}
		if len(ops) != 5 || patched == nil || unknown == nil {
			t.Fatalf("want one PATCH done and one refused: %v", ops)
		}
		opStatus(t, unknown, "400", "invalidValue")
		if d := get(unknown, "response.detail").(string); !strings.Contains(d, "nowhere") {
			t.Fatalf("unknown bulkId detail: %s", d)
		}
		if g := e.do("GET", "/Groups/"+ids["g"], nil).must(t, 200); strings.Join(memberValues(g), ",") != ids["b"] {
			t.Fatalf("members %v, want only b (%s): a was removed by its bulkId", memberValues(g), ids["b"])
		}
	})
}
