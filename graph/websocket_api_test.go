package graph_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/graph"
	"github.com/gatehouse-dev/gatehouse/internal/gqlws"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/access"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

// Queries and mutations sent over a websocket are authorized as they would be by POST
// at that moment: losing a role takes effect on the next operation on an open socket,
// and no operation reads what an earlier one cached; an ended session serves nothing.
func TestWebsocketOperationsSeeCurrentPermissions(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		a := newAPI(t, bdb)
		o := a.newOrg("acme", tenancy.ProvisioningSCIM, tenancy.FeatureUserGroups)
		ctx := context.Background()
		conn := a.mustDialWS(o.tokens["admin"])
		run := func(q string) gqlws.Next {
			t.Helper()
			ch, err := conn.Subscribe(ctx, q, nil)
			if err != nil {
				t.Fatal(err)
			}
			n, ok := gqlws.Receive(t, ch, 10*time.Second)
			if !ok {
				t.Fatalf("%s: the socket answered nothing", q)
			}
			return n
		}
		permissions := func() []any {
			t.Helper()
			n := run(`{ viewer { permissions } }`)
			if len(n.Errors) > 0 {
				t.Fatalf("viewer over the socket: %+v", n.Errors)
			}
			return n.Data["viewer"].(map[string]any)["permissions"].([]any)
		}
		if !slices.Contains(permissions(), any("MANAGE_SPACES")) {
			t.Fatal("the admin lacks MANAGE_SPACES over the socket")
		}
		if n := run(`mutation { createSpace(input: {name: "Before"}) { id } }`); len(n.Errors) > 0 {
			t.Fatalf("createSpace as admin over the socket: %+v", n.Errors)
		}
		if err := a.access.SetUserRole(ctx, access.OperatorViewer(o.tenant.ID), o.ids["admin"], "member"); err != nil {
			t.Fatal(err)
		}
		if got := permissions(); len(got) != 0 {
			t.Fatalf("after losing the admin role the socket still reports permissions %v", got)
		}
		if n := run(`mutation { createSpace(input: {name: "After"}) { id } }`); len(n.Errors) == 0 || n.Errors[0].Extensions["code"] != "FORBIDDEN" {
			t.Fatalf("createSpace after losing the admin role over the same socket: %+v", n)
		}
		if _, err := a.sessions.RevokeUser(ctx, o.tenant.ID, o.ids["admin"]); err != nil {
			t.Fatal(err)
		}
		ch, err := conn.Subscribe(ctx, `{ viewer { permissions } }`, nil)
		if err == nil {
			if n, ok := gqlws.Receive(t, ch, 10*time.Second); ok && (len(n.Errors) == 0 || n.Errors[0].Extensions["code"] != "UNAUTHENTICATED") {
				t.Fatalf("a query over the socket of an ended session: %+v", n)
			}
		}
	})
}

// A client that vanishes without closing its connection (it stops answering) is let go:
// the server pings every interval and closes a connection with no pong within two.
func TestSilentClientIsDisconnected(t *testing.T) {
	graph.SetPingInterval(t, 200*time.Millisecond)
	a := newAPI(t, testenv.SQLite(t))
	o := a.newOrg("acme", tenancy.ProvisioningSCIM)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, strings.Replace(a.srv.URL, "http", "ws", 1), &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	init, _ := json.Marshal(map[string]any{"type": "connection_init", "payload": map[string]any{"authorization": "Bearer " + o.tokens["owner"]}})
	if err := ws.Write(ctx, websocket.MessageText, init); err != nil {
		t.Fatal(err)
	}
	pings := 0
	start := time.Now()
	for {
		_, b, err := ws.Read(ctx) // never answering a ping
		if err != nil {
			if ctx.Err() != nil {
				t.Fatalf("a client that answers no ping is still connected after %s", time.Since(start))
			}
			break
		}
		var m struct{ Type string }
		json.Unmarshal(b, &m)
		if m.Type == "ping" {
			pings++
		}
	}
	if pings == 0 {
		t.Fatal("the connection closed without a ping")
	}
}

// A websocket message is held to the limit a POST body is (MaxBodyBytes): one over it
// closes the connection with 1009 (message too big) and runs nothing.
func TestWebsocketMessageLimit(t *testing.T) {
	a := newAPI(t, testenv.SQLite(t))
	o := a.newOrg("acme", tenancy.ProvisioningSCIM)
	conn := a.mustDialWS(o.tokens["member"])
	ch, err := conn.Subscribe(context.Background(), `query($pad: String) { users(first: 1, filter: {search: $pad}) { nodes { id } } }`,
		map[string]any{"pad": strings.Repeat("x", graph.MaxBodyBytes)})
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := gqlws.Receive(t, ch, 10*time.Second); ok {
		t.Fatalf("a message over %d bytes was run: %+v", graph.MaxBodyBytes, n)
	}
	<-conn.Closed
	if code := gqlws.CloseCode(conn.CloseErr); code != int(websocket.StatusMessageTooBig) {
		t.Fatalf("closed with %d (%v); want %d", code, conn.CloseErr, websocket.StatusMessageTooBig)
	}
}
