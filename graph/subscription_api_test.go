package graph_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/graph"
	"github.com/gatehouse-dev/gatehouse/internal/gqlws"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/access"
	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/platform/bus"
	"github.com/gatehouse-dev/gatehouse/modules/platform/db"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

const subscribeAudit = `subscription($after: String, $f: AuditFilter) { auditEvents(after: $after, filter: $f) { id cursor seq action actor { type id } target { id } } }`

// onlyTestEvents is the filter of the subscriptions that follow a.record's events.
var onlyTestEvents = map[string]any{"actions": []string{"test.event"}}

func (a *api) dialWS(token, origin string) (*gqlws.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var init map[string]any
	if token != "" {
		init = map[string]any{"authorization": "Bearer " + token}
	}
	return gqlws.Dial(ctx, a.srv.URL, origin, init)
}

func (a *api) mustDialWS(token string) *gqlws.Conn {
	a.t.Helper()
	c, err := a.dialWS(token, "")
	if err != nil {
		a.t.Fatal(err)
	}
	a.t.Cleanup(c.Close)
	return c
}

// subscribe starts an audit subscription after the cursor (nil: new events only).
func subscribe(t *testing.T, c *gqlws.Conn, after any, filter map[string]any) <-chan gqlws.Message {
	t.Helper()
	ch, err := c.Subscribe(context.Background(), subscribeAudit, map[string]any{"after": after, "f": filter})
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// receiveEvent waits for the subscription's next event and fails on anything else.
func receiveEvent(t *testing.T, ch <-chan gqlws.Message) map[string]any {
	t.Helper()
	n, ok := gqlws.Receive(t, ch, 10*time.Second)
	if !ok || len(n.Errors) > 0 {
		t.Fatalf("the subscription ended: %+v", n)
	}
	return n.Data["auditEvents"].(map[string]any)
}

// receiveError waits for the message that ends a subscription with an error: an
// "error" message when the subscription was streaming, a "next" with errors when it
// was refused at the start.
func receiveError(t *testing.T, ch <-chan gqlws.Message, typ, code string) string {
	t.Helper()
	n, ok := gqlws.Receive(t, ch, 15*time.Second)
	if !ok || n.Type != typ || len(n.Errors) == 0 || n.Errors[0].Extensions["code"] != code {
		t.Fatalf("got %+v (ok %v); want a %q message with code %s", n, ok, typ, code)
	}
	return n.Errors[0].Message
}

// slugFor names a subtest's tenant: subtests may share a database.
func slugFor(t *testing.T) string {
	name := regexp.MustCompile(`[^a-z0-9]+`).ReplaceAllString(strings.ToLower(t.Name()[strings.LastIndex(t.Name(), "/")+1:]), "-")
	return strings.Trim(name[:min(len(name), 30)], "-")
}

func seqOf(ev map[string]any) int64 { return int64(ev["seq"].(float64)) }

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

// recordUnrelayed records n events of action in one transaction without their outbox
// rows: committed, but their bus messages are lost, so a subscriber only finds them in
// the database.
func (a *api) recordUnrelayed(tenantID, action string, n int) {
	a.t.Helper()
	ctx := audit.WithActor(context.Background(), audit.Actor{Type: audit.ActorSystem, Name: "test"})
	err := db.RunInTx(ctx, a.db, func(ctx context.Context, tx bun.Tx) error {
		for i := range n {
			if err := a.audit.Record(ctx, tx, audit.Event{TenantID: tenantID, Action: action,
				Target: audit.Target{Type: "test", ID: fmt.Sprint(i)}}); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, "DELETE FROM audit_outbox WHERE tenant_id = ?", tenantID)
		return err
	})
	if err != nil {
		a.t.Fatal(err)
	}
}

// endCursor is the cursor of the tenant's newest event, as the viewer's query sees it.
func (a *api) endCursor(token string) any {
	a.t.Helper()
	var cursor any
	for {
		d := a.must(token, `query($after: String) { auditEvents(first: 100, after: $after) { pageInfo { endCursor hasNextPage } } }`, map[string]any{"after": cursor})
		if c := dig(d, "auditEvents.pageInfo.endCursor"); c != nil {
			cursor = c
		}
		if dig(d, "auditEvents.pageInfo.hasNextPage") != true {
			return cursor
		}
	}
}

// Live audit events over graphql-transport-ws, on SQLite and PostgreSQL with the
// in-process bus, and on PostgreSQL with Redis (the production shape).
func TestAuditSubscription(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		auditSubscription(t, func(t *testing.T) *api { return newAPI(t, bdb) })
	})
	t.Run("postgres+redis", func(t *testing.T) {
		auditSubscription(t, func(t *testing.T) *api {
			return newAPIOn(t, testenv.Postgres(t), bus.NewRedis(testenv.Redis(t).Client(), fmt.Sprintf("gh-sub-%d:", time.Now().UnixNano())))
		})
	})
}

func auditSubscription(t *testing.T, newAPI func(t *testing.T) *api) {
	// A connection is refused at connection_init with 4403 and why: no credential, a
	// credential that is not a session, a session that has ended. A member without
	// VIEW_AUDIT_LOG is refused the subscription; another origin the upgrade.
	t.Run("refusals", func(t *testing.T) {
		a := newAPI(t)
		o := a.newOrg(slugFor(t), tenancy.ProvisioningManual)
		c := a.mustDialWS(o.tokens["member"])
		receiveError(t, subscribe(t, c, nil, nil), "next", "FORBIDDEN")
		if _, err := a.dialWS(o.tokens["owner"], "https://evil.test"); err == nil {
			t.Fatal("a websocket from another origin was accepted")
		}
		// The refusal is a GraphQL error that names the origin to use, before any upgrade.
		up, _ := http.NewRequest(http.MethodGet, a.srv.URL, nil)
		for k, v := range map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
			"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Protocol": "graphql-transport-ws", "Origin": "https://evil.test"} {
			up.Header.Set(k, v)
		}
		res, err := http.DefaultClient.Do(up)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusForbidden || !strings.Contains(string(body), `"code":"FORBIDDEN"`) || !strings.Contains(string(body), a.srv.URL) {
			t.Fatalf("upgrade from another origin: %d %s", res.StatusCode, body)
		}
		if c, err := a.dialWS(o.tokens["owner"], a.srv.URL); err != nil {
			t.Fatalf("a websocket from the public origin: %v", err)
		} else {
			c.Close()
		}
		if _, err := a.sessions.RevokeUser(context.Background(), o.tenant.ID, o.ids["admin"]); err != nil {
			t.Fatal(err)
		}
		for name, token := range map[string]string{"no credential": "", "not a session token": "not-a-token", "an ended session": o.tokens["admin"]} {
			_, err := a.dialWS(token, "")
			if code := gqlws.CloseCode(err); code != 4403 || !strings.HasPrefix(gqlws.CloseReason(err), "Forbidden: ") {
				t.Errorf("%s: %v (close code %d); want 4403 Forbidden", name, err, code)
			}
		}
	})

	// `after: ""` replays the whole log; a cursor whose next events retention deleted
	// is refused with CURSOR_EXPIRED rather than skipping them silently.
	t.Run("start of the log and expired cursors", func(t *testing.T) {
		a := newAPI(t)
		o := a.newOrg(slugFor(t), tenancy.ProvisioningManual)
		owner := o.tokens["owner"]
		first := dig(a.must(owner, `{ auditEvents(first: 1) { nodes { id seq cursor } } }`, nil), "auditEvents.nodes.0").(map[string]any)
		c := a.mustDialWS(owner)
		if ev := receiveEvent(t, subscribe(t, c, "", nil)); ev["id"] != first["id"] || seqOf(ev) != 1 {
			t.Fatalf("after \"\" started with %v; want the first event %v", ev, first)
		}
		a.record(o.tenant.ID, 3)
		if _, err := a.audit.Prune(context.Background(), a.db, o.tenant.ID, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		msg := receiveError(t, subscribe(t, c, first["cursor"], nil), "next", "CURSOR_EXPIRED")
		if !strings.Contains(msg, "deleted by the audit retention") {
			t.Fatalf("message %q", msg)
		}
		// Resuming at the newest event, all of it pruned, goes on: nothing was missed.
		a.record(o.tenant.ID, 1)
		latest, _ := a.audit.Latest(context.Background(), a.db, o.tenant.ID)
		if _, err := a.audit.Prune(context.Background(), a.db, o.tenant.ID, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		ch := subscribe(t, c, graph.AuditCursor(latest), onlyTestEvents)
		a.record(o.tenant.ID, 1)
		if ev := receiveEvent(t, ch); seqOf(ev) != latest+1 {
			t.Fatalf("resumed at the head, got %v; want #%d", ev, latest+1)
		}
	})

	// A client that drops out abruptly (the TCP connection cut, no close frame) while
	// 1,000 events are being recorded, and resumes from its last cursor, gets every
	// event exactly once after dedupe: the ones it missed replayed, then new ones live.
	t.Run("resume after an abrupt disconnect during 1,000 events", func(t *testing.T) {
		a := newAPI(t)
		o := a.newOrg(slugFor(t), tenancy.ProvisioningManual)
		owner := o.tokens["owner"]
		cursor := a.endCursor(owner)
		base, _ := a.audit.Latest(context.Background(), a.db, o.tenant.ID)

		// The recorder is held at two points so that, whatever the machine's speed, the
		// drop happens while events are still being recorded, events are recorded while
		// the client is away, and the last 200 are recorded after the resumed client has
		// caught up (so they can only reach it live).
		var dropped, caughtUp sync.Once
		gateDropped, gateCaughtUp := make(chan struct{}), make(chan struct{})
		openDropped, openCaughtUp := func() { dropped.Do(func() { close(gateDropped) }) }, func() { caughtUp.Do(func() { close(gateCaughtUp) }) }
		defer openDropped()
		defer openCaughtUp()
		var recorded atomic.Int64
		done := make(chan struct{})
		go func() {
			defer close(done)
			for _, part := range []struct {
				n    int
				gate chan struct{}
			}{{500, nil}, {300, gateDropped}, {200, gateCaughtUp}} {
				if part.gate != nil {
					<-part.gate
				}
				a.record(o.tenant.ID, part.n)
				recorded.Add(int64(part.n))
			}
		}()

		seen := map[string]int64{}
		var lastSeq int64
		take := func(ch <-chan gqlws.Message) int64 {
			ev := receiveEvent(t, ch)
			seq := seqOf(ev)
			if seq <= lastSeq {
				t.Fatalf("seq %d after %d: out of order or repeated within one connection", seq, lastSeq)
			}
			lastSeq = seq
			seen[ev["id"].(string)] = seq
			cursor = ev["cursor"]
			return seq
		}

		c1 := a.mustDialWS(owner)
		ch := subscribe(t, c1, cursor, onlyTestEvents)
		for range 300 {
			take(ch)
		}
		if n := recorded.Load(); n >= 1000 {
			t.Fatalf("%d events recorded before the drop; the recorder must still be running", n)
		}
		c1.Drop()
		openDropped()

		c2 := a.mustDialWS(owner)
		lastSeq = 0 // a new connection: order is checked within it
		ch = subscribe(t, c2, cursor, onlyTestEvents)
		for take(ch) < base+800 {
		}
		openCaughtUp()
		var live int
		for len(seen) < 1000 {
			if take(ch) > base+800 {
				live++
			}
		}
		<-done
		if live != 200 {
			t.Fatalf("%d events arrived after the resumed client caught up; want the 200 recorded then", live)
		}
		ids := map[int64]int{}
		for _, seq := range seen {
			ids[seq]++
		}
		for seq := base + 1; seq <= base+1000; seq++ {
			if ids[seq] != 1 {
				t.Fatalf("event #%d seen under %d ids", seq, ids[seq])
			}
		}
	})

	// With the periodic catch-up off, events still arrive: the bus carries them (on
	// PostgreSQL + Redis, through Redis pub/sub).
	t.Run("events travel on the bus", func(t *testing.T) {
		graph.SetLiveIntervals(t, 5*time.Second, time.Hour)
		a := newAPI(t)
		o := a.newOrg(slugFor(t), tenancy.ProvisioningManual)
		ch := subscribe(t, a.mustDialWS(o.tokens["owner"]), a.endCursor(o.tokens["owner"]), onlyTestEvents)
		// Once the first event is in, the replay is over: what follows comes by the bus.
		a.record(o.tenant.ID, 1)
		receiveEvent(t, ch)
		a.record(o.tenant.ID, 5)
		for range 5 {
			receiveEvent(t, ch)
		}
	})

	// An event whose bus message is lost still arrives, on a tenant where nothing else
	// happens: the subscription reads the log periodically. The event is committed
	// without its outbox row, so no relay ever publishes it.
	t.Run("a lost bus message does not hold an event back", func(t *testing.T) {
		a := newAPI(t)
		o := a.newOrg(slugFor(t), tenancy.ProvisioningManual)
		ch := subscribe(t, a.mustDialWS(o.tokens["owner"]), a.endCursor(o.tokens["owner"]), nil)
		a.record(o.tenant.ID, 1)
		relayed := receiveEvent(t, ch)
		a.recordUnrelayed(o.tenant.ID, "test.unrelayed", 1)
		if ev := receiveEvent(t, ch); ev["action"] != "test.unrelayed" || seqOf(ev) != seqOf(relayed)+1 {
			t.Fatalf("got %v; want the unrelayed event", ev)
		}
	})

	// A subscription that cannot read the log ends with an UNAVAILABLE error (the
	// client resubscribes from its cursor), not with a "complete" that looks like the
	// end of the log.
	t.Run("a log that cannot be read ends the subscription with an error", func(t *testing.T) {
		a := newAPI(t)
		o := a.newOrg(slugFor(t), tenancy.ProvisioningManual)
		ch := subscribe(t, a.mustDialWS(o.tokens["owner"]), a.endCursor(o.tokens["owner"]), nil)
		a.record(o.tenant.ID, 1)
		receiveEvent(t, ch) // streaming
		exec := func(q string) {
			if _, err := a.db.ExecContext(context.Background(), q); err != nil {
				t.Fatal(err)
			}
		}
		exec("ALTER TABLE audit_events RENAME TO audit_events_away")
		defer exec("ALTER TABLE audit_events_away RENAME TO audit_events")
		receiveError(t, ch, "error", "UNAVAILABLE")
	})

	// When the session ends, the subscription ends with an UNAUTHENTICATED error and the
	// connection closes with 4403, so graphql-ws reports it instead of reconnecting. The
	// periodic re-check is off: the end is announced on the bus.
	t.Run("an ended session ends the subscription, then the connection", func(t *testing.T) {
		graph.SetLiveIntervals(t, time.Hour, time.Second)
		a := newAPI(t)
		o := a.newOrg(slugFor(t), tenancy.ProvisioningManual)
		c := a.mustDialWS(o.tokens["owner"])
		ch := subscribe(t, c, a.endCursor(o.tokens["owner"]), onlyTestEvents)
		a.record(o.tenant.ID, 1)
		receiveEvent(t, ch)
		if _, err := a.sessions.RevokeUser(context.Background(), o.tenant.ID, o.ids["owner"]); err != nil {
			t.Fatal(err)
		}
		receiveError(t, ch, "error", "UNAUTHENTICATED")
		select {
		case <-c.Closed:
		case <-time.After(10 * time.Second):
			t.Fatal("the connection outlived its revoked session")
		}
		if code := gqlws.CloseCode(c.CloseErr); code != 4403 || gqlws.CloseReason(c.CloseErr) != "Forbidden: the session ended" {
			t.Fatalf("closed with %v; want 4403 Forbidden: the session ended", c.CloseErr)
		}
	})

	// The announcement that closes the connection may be lost or late; the session is
	// checked before events go out, so none reaches a subscription once the revocation
	// has been answered.
	t.Run("no event after the session ended, announcement or not", func(t *testing.T) {
		graph.SetLiveIntervals(t, time.Hour, 50*time.Millisecond)
		a := newAPI(t)
		a.identity.AnnounceEndedSessions(bus.NewMemory()) // announcements reach no one
		o := a.newOrg(slugFor(t), tenancy.ProvisioningManual)
		c := a.mustDialWS(o.tokens["owner"])
		ch := subscribe(t, c, a.endCursor(o.tokens["owner"]), onlyTestEvents)
		a.record(o.tenant.ID, 1)
		receiveEvent(t, ch)
		if _, err := a.sessions.RevokeUser(context.Background(), o.tenant.ID, o.ids["owner"]); err != nil {
			t.Fatal(err)
		}
		a.record(o.tenant.ID, 1)
		receiveError(t, ch, "error", "UNAUTHENTICATED")
	})

	// Losing VIEW_AUDIT_LOG ends the subscription with FORBIDDEN at the next re-check;
	// the connection itself stays usable.
	t.Run("losing VIEW_AUDIT_LOG ends the subscription", func(t *testing.T) {
		graph.SetLiveIntervals(t, 100*time.Millisecond, time.Second)
		a := newAPI(t)
		o := a.newOrg(slugFor(t), tenancy.ProvisioningManual)
		auditor := string(access.PermViewAuditLog)
		c := a.mustDialWS(o.tokens[auditor])
		ch := subscribe(t, c, a.endCursor(o.tokens[auditor]), onlyTestEvents)
		a.record(o.tenant.ID, 1)
		receiveEvent(t, ch)
		if err := a.access.SetUserRole(context.Background(), access.OperatorViewer(o.tenant.ID), o.ids[auditor], "member"); err != nil {
			t.Fatal(err)
		}
		if msg := receiveError(t, ch, "error", "FORBIDDEN"); !strings.Contains(msg, "view_audit_log") {
			t.Fatalf("message %q", msg)
		}
		receiveError(t, subscribe(t, c, nil, nil), "next", "FORBIDDEN")
	})
}

// sessionCheckFailer makes the session checks of a test fail the way an unreachable
// database does: the ended-sessions poll always (so the session cache is never trusted
// and every check reads the database), and the nth session read after arm.
type sessionCheckFailer struct {
	mu     sync.Mutex
	left   int           // session reads to let through before failing one (-1: off)
	failed chan struct{} // closed when it has failed one
}

func (h *sessionCheckFailer) arm(n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.left, h.failed = n-1, make(chan struct{})
}

func (h *sessionCheckFailer) BeforeQuery(ctx context.Context, e *bun.QueryEvent) context.Context {
	q := strings.TrimSpace(e.Query)
	fail := strings.HasPrefix(q, "SELECT") && strings.Contains(q, "ended_sessions")
	if strings.Contains(q, "JOIN users AS u ON u.id = s.user_id") {
		h.mu.Lock()
		switch {
		case h.left > 0:
			h.left--
		case h.left == 0:
			h.left, fail = -1, true
			defer close(h.failed)
		}
		h.mu.Unlock()
	}
	if fail {
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		return cancelled
	}
	return ctx
}

func (*sessionCheckFailer) AfterQuery(context.Context, *bun.QueryEvent) {}

// A relayed event that skips ahead makes the subscription read the gap from the log;
// when the session cannot be checked just then, the gap stays unread and the relayed
// event must wait with it: sent on its own, it would move the subscription past the
// missing events for good.
func TestAuditSubscriptionGapNotSkippedWhenSessionUncheckable(t *testing.T) {
	graph.SetLiveIntervals(t, time.Hour, time.Hour) // only the bus and its gap reads
	bdb := testenv.Postgres(t)
	h := &sessionCheckFailer{left: -1}
	bdb.AddQueryHook(h)
	a := newAPI(t, bdb)
	o := a.newOrg(slugFor(t), tenancy.ProvisioningManual)
	owner := o.tokens["owner"]
	ch := subscribe(t, a.mustDialWS(owner), a.endCursor(owner), onlyTestEvents)
	a.record(o.tenant.ID, 1)
	first := seqOf(receiveEvent(t, ch))

	// #first+1 is committed without its outbox row (its bus message is lost); #first+2 is
	// relayed. The subscription's first session check (before the relayed event) passes,
	// the second (before reading the gap) cannot be made.
	h.arm(2)
	a.recordUnrelayed(o.tenant.ID, "test.event", 1)
	a.record(o.tenant.ID, 1)
	select {
	case <-h.failed:
	case <-time.After(10 * time.Second):
		t.Fatal("the session check before the gap read was not made")
	}
	// The next relayed event, with the session checkable again, brings everything.
	a.record(o.tenant.ID, 1)
	for want := first + 1; want <= first+3; want++ {
		if got := seqOf(receiveEvent(t, ch)); got != want {
			t.Fatalf("got event #%d; want #%d (events #%d..#%d in order, none skipped)", got, want, first+1, first+3)
		}
	}
}

// A cursor past the end of the tenant's log (another tenant's, or one kept from before
// the database was restored) names no event of this log. Taken as a position, it would
// silently skip the events that come to take its place; it is refused instead, by the
// subscription and by the query.
func TestAuditCursorPastTheEndIsRefused(t *testing.T) {
	a := newAPI(t, testenv.Postgres(t))
	o := a.newOrg(slugFor(t), tenancy.ProvisioningManual)
	owner := o.tokens["owner"]
	latest, err := a.audit.Latest(context.Background(), a.db, o.tenant.ID)
	if err != nil {
		t.Fatal(err)
	}
	// Followed from there, the tenant's next events would never arrive.
	ahead := graph.AuditCursor(latest + 1000)
	ch := subscribe(t, a.mustDialWS(owner), ahead, onlyTestEvents)
	a.record(o.tenant.ID, 4)
	receiveError(t, ch, "next", "BAD_USER_INPUT")
	if r := a.gql(owner, `query($after: String) { auditEvents(after: $after) { nodes { seq } } }`, map[string]any{"after": ahead}); r.code() != "BAD_USER_INPUT" {
		t.Fatalf("the query with a cursor past the end of the log: %+v", r)
	}
	// The cursor of the newest event is no cursor past the end.
	ch = subscribe(t, a.mustDialWS(owner), graph.AuditCursor(latest+4), onlyTestEvents)
	a.record(o.tenant.ID, 1)
	if ev := receiveEvent(t, ch); seqOf(ev) != latest+5 {
		t.Fatalf("got %v; want #%d", ev, latest+5)
	}
}

// A subscription that is behind when retention deletes the events it has yet to send
// (a slow replay, or events whose bus messages were lost) must not skip them silently:
// it ends with CURSOR_EXPIRED, as a resume after them is refused.
func TestAuditSubscriptionOvertakenByRetentionEnds(t *testing.T) {
	graph.SetLiveIntervals(t, time.Hour, time.Hour) // only the bus and its gap reads
	a := newAPI(t, testenv.Postgres(t))
	o := a.newOrg(slugFor(t), tenancy.ProvisioningManual)
	owner := o.tokens["owner"]
	ch := subscribe(t, a.mustDialWS(owner), a.endCursor(owner), onlyTestEvents)
	a.record(o.tenant.ID, 1)
	receiveEvent(t, ch)

	// Three events whose bus messages are lost, then retention deletes them (and every
	// older one) before the subscription has read them; the next event is relayed.
	a.recordUnrelayed(o.tenant.ID, "test.event", 3)
	if _, err := a.audit.Prune(context.Background(), a.db, o.tenant.ID, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	a.record(o.tenant.ID, 1)
	if msg := receiveError(t, ch, "error", "CURSOR_EXPIRED"); !strings.Contains(msg, "retention") {
		t.Fatalf("message %q", msg)
	}
}

// `after: ""` on a log whose every event retention deleted: the next event, relayed,
// is the first one kept and arrives at once (not at the next periodic read).
func TestAuditSubscriptionFromTheStartOfAnEmptiedLog(t *testing.T) {
	graph.SetLiveIntervals(t, time.Hour, time.Hour) // only the bus and its gap reads
	a := newAPI(t, testenv.Postgres(t))
	o := a.newOrg(slugFor(t), tenancy.ProvisioningManual)
	if _, err := a.audit.Prune(context.Background(), a.db, o.tenant.ID, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	latest, _ := a.audit.Latest(context.Background(), a.db, o.tenant.ID)
	ch := subscribe(t, a.mustDialWS(o.tokens["owner"]), "", onlyTestEvents)
	time.Sleep(200 * time.Millisecond) // the replay (of nothing) is over
	a.record(o.tenant.ID, 1)
	if ev := receiveEvent(t, ch); seqOf(ev) != latest+1 {
		t.Fatalf("got %v; want #%d", ev, latest+1)
	}
}
