package graph_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/uptrace/bun"

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
