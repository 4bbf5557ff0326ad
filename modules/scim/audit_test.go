package scim_test

import (
	"context"
	"testing"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/audit"
)

// Every SCIM write records its audit event in the same transaction, naming the token
// that made it; a refused write records nothing.
func TestSCIMWritesAreAudited(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		e := newEnv(t, bdb)
		ctx := context.Background()
		before, _ := e.audit.Latest(ctx, bdb, e.tenant.ID)
		id := e.do("POST", "/Users", user("ada@acme.com")).must(t, 201).str("id")
		e.do("POST", "/Users", user("ADA@acme.com")).scimError(t, 409, "uniqueness")
		e.do("PATCH", "/Users/"+id, patchOp(op("replace", "active", false))).must(t, 200)
		e.do("PATCH", "/Users/"+id, patchOp(op("replace", "active", "bogus"))).scimError(t, 400, "invalidValue")
		e.do("DELETE", "/Users/"+id, nil).must(t, 204)
		events, _, err := e.audit.Page(ctx, bdb, e.tenant.ID, audit.Filter{}, before, 100)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"user.created", "user.deactivated", "user.deleted"}
		if len(events) != len(want) {
			t.Fatalf("got %d events, want %v: %+v", len(events), want, events)
		}
		for i, ev := range events {
			if ev.Action != want[i] || ev.ActorType != audit.ActorSCIMToken || ev.ActorName != "test" || ev.ActorID == "" || ev.TargetID != id {
				t.Fatalf("event %d = %+v, want %s by the SCIM token", i, ev, want[i])
			}
		}
		if ch := events[1].Changes["active"]; ch.Before != true || ch.After != false {
			t.Fatalf("deactivation change recorded as %+v", ch)
		}
	})
}
