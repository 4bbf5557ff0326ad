package audit_test

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/platform/db"
	"github.com/gatehouse-dev/gatehouse/modules/platform/reqmeta"
)

// Events are numbered per tenant and chained; what is stored verifies right away,
// whatever jsonb or SQLite text does to nested values, numbers, unicode and nulls.
func TestRecordChainsAndVerifies(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		f := newFx(t, bdb)
		actx := audit.WithActor(ctx, audit.Actor{Type: audit.ActorSCIMToken, ID: "tok1", Name: "Okta “prod”"})
		actx = reqmeta.With(actx, reqmeta.Meta{RequestID: "req-1", RemoteIP: "192.0.2.7",
			UserAgent: "Okta SCIM\x00 client \xff\xfe/1.0\nnext line"}) // NUL and invalid UTF-8 as a client may send
		weird := map[string]audit.Change{
			"profile": {Before: map[string]any{
				"name": "Zoë 🚀 ünïcødé", "tags": []any{"a", nil, 3.5, true, map[string]any{"z": 1, "a": []any{}}},
				"big": 12345678901234567890.0, "small": 1e-7, "huge": 1e300, "negzero": math.Copysign(0, -1),
				"html": `<b>&'"\</b>` + "\u2028\t", "nul": "a\x00b", "emptyObj": map[string]any{},
			}},
			"count":   {Before: 1, After: int64(9007199254740993)},
			"ratio":   {Before: 0.1, After: 2.50},
			"cleared": {Before: "x", After: nil},
			"empty":   {},
			"list":    {After: []string{"b", "a"}},
			"struct":  {After: struct{ B, A int }{2, 1}},
		}
		events := []audit.Event{
			{TenantID: "acme", Action: "user.created", Target: audit.Target{Type: "user", ID: "u1", Display: "ada@acme.com"}, Changes: weird},
			{TenantID: "acme", Action: "user.updated", Target: audit.Target{Type: "user", ID: "u1"}},                                     // nil changes
			{TenantID: "acme", Action: "user.updated", Target: audit.Target{Type: "user", ID: "u1"}, Changes: map[string]audit.Change{}}, // empty
			{TenantID: "globex", Action: "tenant.created"},
		}
		for _, e := range events {
			if err := db.RunInTx(actx, bdb, func(ctx context.Context, tx bun.Tx) error { return f.log.Record(ctx, tx, e) }); err != nil {
				t.Fatal(err)
			}
		}
		// Given the database itself (sso does this), Record opens its own transaction.
		if err := f.log.Record(actx, bdb, audit.Event{TenantID: "acme", Action: "sso.login_failed",
			Changes: map[string]audit.Change{"reason": {After: "ünknown"}}}); err != nil {
			t.Fatal(err)
		}

		acme := f.all("acme")
		wantChain(t, acme, 1, 4)
		if acme[0].PrevHash != "" {
			t.Fatalf("first event prev_hash %q", acme[0].PrevHash)
		}
		globex := f.all("globex")
		wantChain(t, globex, 1, 1)
		f.mustVerify("acme", 4)
		f.mustVerify("globex", 1)
		f.mustVerify("nobody", 0)

		e := acme[0]
		if e.ActorType != audit.ActorSCIMToken || e.ActorID != "tok1" || e.ActorName != "Okta “prod”" || e.RequestID != "req-1" ||
			e.RemoteIP != "192.0.2.7" || e.UserAgent != "Okta SCIM client \uFFFD\uFFFD/1.0\nnext line" || e.TargetDisplay != "ada@acme.com" {
			t.Fatalf("stored %+v", e)
		}
		p := e.Changes["profile"].Before.(map[string]any)
		if p["name"] != "Zoë 🚀 ünïcødé" || p["nul"] != "ab" || p["negzero"] != 0.0 || p["small"] != 1e-7 {
			t.Fatalf("profile stored as %#v", p)
		}
		if c := e.Changes["count"]; c.Before != 1.0 || c.After != 9007199254740992.0 {
			t.Fatalf("count stored as %#v", c)
		}
		if acme[1].Changes != nil || acme[2].Changes == nil || len(acme[2].Changes) != 0 {
			t.Fatalf("nil and empty changes stored as %#v and %#v", acme[1].Changes, acme[2].Changes)
		}
		latest, err := f.log.Latest(ctx, bdb, "acme")
		if err != nil || latest != 4 {
			t.Fatalf("Latest = %d, %v", latest, err)
		}
		if latest, _ := f.log.Latest(ctx, bdb, "nobody"); latest != 0 {
			t.Fatalf("Latest of a tenant without events = %d", latest)
		}
	})
}

// A rolled-back change leaves neither its event nor an advance of the sequence.
func TestRolledBackChangeLeavesNoTrace(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		f := newFx(t, bdb)
		f.record("acme", 2)
		boom := errors.New("boom")
		err := db.RunInTx(ctx, bdb, func(ctx context.Context, tx bun.Tx) error {
			if err := f.log.Record(ctx, tx, audit.Event{TenantID: "acme", Action: "user.deleted"}); err != nil {
				return err
			}
			if err := f.log.Record(ctx, tx, audit.Event{TenantID: "newco", Action: "tenant.created"}); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatal(err)
		}
		if latest, _ := f.log.Latest(ctx, bdb, "acme"); latest != 2 {
			t.Fatalf("chain advanced to %d by a rolled-back change", latest)
		}
		f.record("acme", 1)
		f.record("newco", 1)
		wantChain(t, f.all("acme"), 1, 3)
		wantChain(t, f.all("newco"), 1, 1)
		for _, e := range f.all("acme") {
			if e.Action == "user.deleted" {
				t.Fatal("the rolled-back event was kept")
			}
		}
		f.mustVerify("acme", 3)
		f.mustVerify("newco", 1)
	})
}

// Eight writers, fifty events each, one tenant: seq 1..400 with no gap or duplicate and
// an intact chain. The first events race to create the tenant's chain head.
func TestConcurrentRecording(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		f := newFx(t, bdb)
		const writers, each = 8, 50
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					err := db.RunInTx(ctx, bdb, func(ctx context.Context, tx bun.Tx) error {
						return f.log.Record(ctx, tx, audit.Event{TenantID: "acme", Action: "user.updated",
							Changes: map[string]audit.Change{"writer": {After: w}, "i": {After: i}}})
					})
					if err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		wantChain(t, f.all("acme"), 1, writers*each)
		f.mustVerify("acme", writers*each)
		if latest, _ := f.log.Latest(ctx, bdb, "acme"); latest != writers*each {
			t.Fatalf("Latest = %d", latest)
		}
	})
}
