package graph_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/graph"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/access"
	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/platform/db"
	"github.com/gatehouse-dev/gatehouse/modules/platform/reqmeta"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

const auditQuery = `query($f: AuditFilter, $first: Int, $after: String) {
  auditEvents(filter: $f, first: $first, after: $after) {
    edges { cursor node { id } }
    nodes { id cursor seq occurredAt action actor { type id name } target { type id display }
            changes { attribute before after } requestId remoteIp userAgent hash }
    pageInfo { hasNextPage endCursor }
  }
}`

// auditEvent is one node of the auditEvents query, with the fields the filters use.
type auditEvent struct {
	id, cursor, action, actorID, targetID string
	seq                                   int64
	at                                    time.Time
	node                                  map[string]any
}

// auditPages reads every page of auditEvents with the filter, first events at a time,
// checking each page's shape: edges and nodes agree, endCursor is the last cursor,
// hasNextPage is true on all but the last page.
func (a *api) auditPages(token string, filter map[string]any, first int) []auditEvent {
	a.t.Helper()
	var out []auditEvent
	var after any
	for page := 0; ; page++ {
		d := a.must(token, auditQuery, map[string]any{"f": filter, "first": first, "after": after})
		nodes, edges := dig(d, "auditEvents.nodes").([]any), dig(d, "auditEvents.edges").([]any)
		more, end := dig(d, "auditEvents.pageInfo.hasNextPage").(bool), dig(d, "auditEvents.pageInfo.endCursor")
		if len(nodes) != len(edges) || len(nodes) > first || (more && len(nodes) != first) {
			a.t.Fatalf("page %d: %d nodes, %d edges, first %d, hasNextPage %v", page, len(nodes), len(edges), first, more)
		}
		for i, n := range nodes {
			m := n.(map[string]any)
			at, err := time.Parse(time.RFC3339Nano, m["occurredAt"].(string))
			if err != nil {
				a.t.Fatal(err)
			}
			e := auditEvent{id: m["id"].(string), cursor: m["cursor"].(string), action: m["action"].(string),
				actorID: dig(m, "actor.id").(string), targetID: dig(m, "target.id").(string), seq: int64(m["seq"].(float64)), at: at, node: m}
			if dig(edges[i], "cursor") != e.cursor || dig(edges[i], "node.id") != e.id {
				a.t.Fatalf("page %d: edge %d is %v, node %v", page, i, edges[i], m)
			}
			out = append(out, e)
		}
		switch {
		case len(nodes) == 0 && end != nil:
			a.t.Fatalf("page %d: empty, with endCursor %v", page, end)
		case len(nodes) > 0 && end != out[len(out)-1].cursor:
			a.t.Fatalf("page %d: endCursor %v, last cursor %v", page, end, out[len(out)-1].cursor)
		}
		if !more {
			return out
		}
		after = end
	}
}

func idsOf(events []auditEvent) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.id
	}
	return out
}

// The GraphQL auditEvents query: every filter, keyset paging in seq order, bad
// cursors and page sizes, VIEW_AUDIT_LOG, and one tenant never seeing another's log.
func TestAuditEventsQuery(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		a := newAPI(t, bdb)
		acme := a.newOrg("acme", tenancy.ProvisioningManual)
		globex := a.newOrg("globex", tenancy.ProvisioningManual)
		owner := acme.tokens["owner"]

		// 30 events by two actors about five targets with three actions, from a request
		// with a known id, address and user agent.
		okta := audit.Actor{Type: audit.ActorSCIMToken, ID: "tok-okta", Name: "Okta"}
		ada := audit.Actor{Type: audit.ActorUser, ID: acme.ids["owner"], Name: "owner@acme.test"}
		ctx := reqmeta.With(context.Background(), reqmeta.Meta{RequestID: "req-1", RemoteIP: "192.0.2.7", UserAgent: "Okta SCIM Client 1.0"})
		actions := []string{"user.updated", "group.renamed", "user.deactivated"}
		for i := range 30 {
			actor := okta
			if i%3 == 0 {
				actor = ada
			}
			err := db.RunInTx(audit.WithActor(ctx, actor), a.db, func(ctx context.Context, tx bun.Tx) error {
				return a.audit.Record(ctx, tx, audit.Event{TenantID: acme.tenant.ID, Action: actions[i%len(actions)],
					Target:  audit.Target{Type: "user", ID: fmt.Sprintf("target-%d", i%5), Display: fmt.Sprintf("person%d@acme.test", i%5)},
					Changes: map[string]audit.Change{"title": {Before: "old", After: fmt.Sprint("title ", i)}, "active": {After: true}}})
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		a.record(globex.tenant.ID, 5)

		// The whole log, in pages of 7: seq 1, 2, 3, … in order, nothing repeated.
		all := a.auditPages(owner, nil, 7)
		latest, _ := a.audit.Latest(context.Background(), a.db, acme.tenant.ID)
		if int64(len(all)) != latest {
			t.Fatalf("%d events paged; the log has %d", len(all), latest)
		}
		for i, e := range all {
			if e.seq != int64(i+1) {
				t.Fatalf("event %d has seq %d", i, e.seq)
			}
		}
		if got := idsOf(a.auditPages(owner, nil, 100)); !slices.Equal(got, idsOf(all)) {
			t.Fatal("pages of 100 and pages of 7 disagree")
		}

		// One event's fields as recorded.
		last := all[len(all)-1].node // the 30th: i = 29, by okta, user.deactivated, target-4
		want := map[string]any{"action": "user.deactivated", "actor.type": "scim_token", "actor.id": "tok-okta", "actor.name": "Okta",
			"target.type": "user", "target.id": "target-4", "target.display": "person4@acme.test",
			"changes.0.attribute": "active", "changes.0.before": nil, "changes.0.after": "true",
			"changes.1.attribute": "title", "changes.1.before": `"old"`, "changes.1.after": `"title 29"`,
			"requestId": "req-1", "remoteIp": "192.0.2.7", "userAgent": "Okta SCIM Client 1.0"}
		for path, v := range want {
			if got := dig(last, path); got != v {
				t.Errorf("%s = %v, want %v", path, got, v)
			}
		}
		if h, _ := last["hash"].(string); len(h) != 64 {
			t.Errorf("hash %q", h)
		}

		// Filters: the query returns exactly the events of the whole log that match.
		mid := all[len(all)-15].at
		end := all[len(all)-5].at
		cases := []struct {
			name   string
			filter map[string]any
			keep   func(e auditEvent) bool
		}{
			{"one action", map[string]any{"actions": []string{"group.renamed"}}, func(e auditEvent) bool { return e.action == "group.renamed" }},
			{"two actions", map[string]any{"actions": []string{"group.renamed", "user.deactivated"}},
				func(e auditEvent) bool { return e.action == "group.renamed" || e.action == "user.deactivated" }},
			{"an action no event has", map[string]any{"actions": []string{"space.deleted"}}, func(auditEvent) bool { return false }},
			{"actorId", map[string]any{"actorId": "tok-okta"}, func(e auditEvent) bool { return e.actorID == "tok-okta" }},
			{"targetId", map[string]any{"targetId": "target-2"}, func(e auditEvent) bool { return e.targetID == "target-2" }},
			{"from (inclusive)", map[string]any{"from": mid.Format(time.RFC3339Nano)}, func(e auditEvent) bool { return !e.at.Before(mid) }},
			{"to (exclusive)", map[string]any{"to": mid.Format(time.RFC3339Nano)}, func(e auditEvent) bool { return e.at.Before(mid) }},
			{"from and to", map[string]any{"from": mid.Format(time.RFC3339Nano), "to": end.Format(time.RFC3339Nano)},
				func(e auditEvent) bool { return !e.at.Before(mid) && e.at.Before(end) }},
			{"every condition at once", map[string]any{"actions": []string{"user.updated", "user.deactivated"}, "actorId": "tok-okta",
				"targetId": "target-1", "from": all[0].at.Format(time.RFC3339Nano)},
				func(e auditEvent) bool {
					return (e.action == "user.updated" || e.action == "user.deactivated") && e.actorID == "tok-okta" && e.targetID == "target-1"
				}},
		}
		for _, c := range cases {
			var wantIDs []string
			for _, e := range all {
				if c.keep(e) {
					wantIDs = append(wantIDs, e.id)
				}
			}
			got := idsOf(a.auditPages(owner, c.filter, 4))
			if !slices.Equal(got, wantIDs) || (c.name != "an action no event has" && len(got) == 0) {
				t.Errorf("%s: %d events %v\nwant %d %v", c.name, len(got), got, len(wantIDs), wantIDs)
			}
		}

		// Past the end: an empty page. Bad cursors and page sizes: BAD_USER_INPUT.
		d := a.must(owner, auditQuery, map[string]any{"after": all[len(all)-1].cursor})
		if n := dig(d, "auditEvents.nodes").([]any); len(n) != 0 || dig(d, "auditEvents.pageInfo.hasNextPage") != false || dig(d, "auditEvents.pageInfo.endCursor") != nil {
			t.Fatalf("after the last event: %v", d)
		}
		for name, vars := range map[string]map[string]any{
			"a cursor that is not base64": {"after": "not a cursor!"},
			"a cursor of another kind":    {"after": gid("User", acme.ids["owner"])},
			"a cursor with no seq in it":  {"after": graph.Cursor("abc")},
			"first: 0":                    {"first": 0},
			"first: 101":                  {"first": 101},
		} {
			if r := a.gql(owner, auditQuery, vars); r.code() != "BAD_USER_INPUT" {
				t.Errorf("%s: %+v", name, r.Errors)
			}
		}

		// VIEW_AUDIT_LOG: owner, admin and a custom role holding it read the log; nobody
		// else does, and an anonymous request is not signed in.
		for who, token := range acme.tokens {
			r := a.gql(token, auditQuery, map[string]any{"first": 1})
			allowed := who == "owner" || who == "admin" || who == string(access.PermViewAuditLog)
			if allowed && (r.code() != "" || len(dig(r.Data, "auditEvents.nodes").([]any)) != 1) {
				t.Errorf("%s: %+v", who, r.Errors)
			}
			if !allowed && r.code() != "FORBIDDEN" {
				t.Errorf("%s without VIEW_AUDIT_LOG: %+v", who, r)
			}
		}
		if r := a.gql("", auditQuery, nil); r.code() != "UNAUTHENTICATED" {
			t.Errorf("anonymous: %+v", r.Errors)
		}

		// Another tenant's log: its own events only, numbered from 1, whatever the filter
		// or cursor names.
		theirs := a.auditPages(globex.tokens["owner"], nil, 50)
		for i, e := range theirs {
			if e.seq != int64(i+1) || slices.Contains(idsOf(all), e.id) {
				t.Fatalf("globex sees %+v", e)
			}
		}
		if got := a.auditPages(globex.tokens["owner"], map[string]any{"targetId": "target-1"}, 50); len(got) != 0 {
			t.Fatalf("globex filtering on acme's target: %v", idsOf(got))
		}
		if got := a.auditPages(globex.tokens["owner"], map[string]any{"actorId": "tok-okta"}, 50); len(got) != 0 {
			t.Fatalf("globex filtering on acme's actor: %v", idsOf(got))
		}
		d = a.must(globex.tokens["owner"], auditQuery, map[string]any{"after": all[9].cursor})
		for _, n := range dig(d, "auditEvents.nodes").([]any) {
			if id := dig(n, "id").(string); slices.Contains(idsOf(all), id) {
				t.Fatalf("globex paging with acme's cursor sees acme's event %s", id)
			}
		}

		// Retention deletes acme's oldest events: a cursor from before the cut is refused
		// (the page after it would hide the hole); one at the cut, and "", page on.
		if _, err := a.audit.Prune(context.Background(), a.db, acme.tenant.ID, all[10].at); err != nil {
			t.Fatal(err)
		}
		if r := a.gql(owner, auditQuery, map[string]any{"after": all[3].cursor}); r.code() != "CURSOR_EXPIRED" {
			t.Fatalf("a cursor before the retention cut: %+v", r.Errors)
		}
		kept := a.auditPages(owner, nil, 50)
		if len(kept) == 0 || kept[0].seq <= all[3].seq {
			t.Fatalf("after the prune the log starts at %v", kept)
		}
		a.must(owner, auditQuery, map[string]any{"after": kept[0].cursor})
	})
}
