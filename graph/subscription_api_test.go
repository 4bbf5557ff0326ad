package graph_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/gqlws"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/platform/bus"
	"github.com/gatehouse-dev/gatehouse/modules/platform/db"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

const subscribeAudit = `subscription($after: String, $f: AuditFilter) { auditEvents(after: $after, filter: $f) { id cursor seq action actor { type id } target { id } } }`

func (a *api) dialWS(token, origin string) (*gqlws.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var init map[string]any
	if token != "" {
		init = map[string]any{"authorization": "Bearer " + token}
	}
	return gqlws.Dial(ctx, a.srv.URL, origin, init)
}

// record writes n audit events for the tenant, each in its own transaction, the way
// every module does.
func (a *api) record(tenantID string, n int) {
	a.t.Helper()
	ctx := audit.WithActor(context.Background(), audit.Actor{Type: audit.ActorSystem, Name: "test"})
	for i := range n {
		err := db.RunInTx(ctx, a.db, func(ctx context.Context, tx bun.Tx) error {
			return a.audit.Record(ctx, tx, audit.Event{TenantID: tenantID, Action: "test.event",
				Target: audit.Target{Type: "test", ID: fmt.Sprint(i)}})
		})
		if err != nil {
			a.t.Error(err)
			return
		}
	}
}

// Live audit events: replayed after a cursor, then streamed in seq order; a client that
// drops out during 1,000 events and resumes from its last cursor gets every event
// exactly once after dedupe; a revoked session's connection is closed.
func TestAuditSubscription(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		t.Run("in-process bus", func(t *testing.T) { auditSubscription(t, newAPI(t, bdb)) })
	})
	// PostgreSQL + Redis, the production shape (a fresh database: tenants are per test).
	t.Run("postgres+redis", func(t *testing.T) {
		auditSubscription(t, newAPIOn(t, testenv.Postgres(t), bus.NewRedis(testenv.Redis(t).Client(), fmt.Sprintf("gh-sub-%d:", time.Now().UnixNano()))))
	})
}

func auditSubscription(t *testing.T, a *api) {
	o := a.newOrg("acme", tenancy.ProvisioningManual, tenancy.FeatureUserGroups)
	owner := o.tokens["owner"]

	// Permission and origin.
	c, err := a.dialWS(o.tokens["member"], "")
	if err != nil {
		t.Fatal(err)
	}
	ch, _ := c.Subscribe(context.Background(), subscribeAudit, nil)
	if n, _ := gqlws.Receive(t, ch, 5*time.Second); len(n.Errors) == 0 || n.Errors[0].Extensions["code"] != "FORBIDDEN" {
		t.Fatalf("a member without view_audit_log: %+v", n)
	}
	c.Close()
	if _, err := a.dialWS(owner, "https://evil.test"); err == nil {
		t.Fatal("a websocket from another origin was accepted")
	}
	if _, err := a.dialWS("", ""); err == nil {
		t.Fatal("a websocket without a session was accepted")
	}

	// Resume across a disconnect, 1,000 events.
	start := a.must(owner, `{ auditEvents(first: 100) { pageInfo { endCursor } } }`, nil)
	cursor := dig(start, "auditEvents.pageInfo.endCursor")
	seen := map[string]int64{}
	var lastSeq int64
	consume := func(limit int) {
		c, err := a.dialWS(owner, "")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ch, _ := c.Subscribe(context.Background(), subscribeAudit, map[string]any{"after": cursor, "f": map[string]any{"actions": []string{"test.event"}}})
		for got := 0; got < limit; got++ {
			n, ok := gqlws.Receive(t, ch, 10*time.Second)
			if !ok || len(n.Errors) > 0 {
				t.Fatalf("subscription ended: %+v", n)
			}
			ev := n.Data["auditEvents"].(map[string]any)
			seq := int64(ev["seq"].(float64))
			if seq <= lastSeq {
				t.Fatalf("seq %d after %d: out of order or repeated within one connection", seq, lastSeq)
			}
			lastSeq = seq
			seen[ev["id"].(string)] = seq
			cursor = ev["cursor"]
		}
	}
	done := make(chan struct{})
	go func() { defer close(done); a.record(o.tenant.ID, 1000) }()
	consume(300) // then the client drops out while events keep coming
	consume(700) // and resumes from its last cursor
	<-done
	if len(seen) != 1000 {
		t.Fatalf("%d distinct events; want 1000", len(seen))
	}

	// The connection closes when its session is revoked.
	c, err = a.dialWS(owner, "")
	if err != nil {
		t.Fatal(err)
	}
	c.Subscribe(context.Background(), subscribeAudit, nil)
	if _, err := a.sessions.RevokeUser(context.Background(), o.tenant.ID, o.ids["owner"]); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Closed:
	case <-time.After(3 * time.Second):
		t.Fatal("the subscription outlived its revoked session")
	}
}
