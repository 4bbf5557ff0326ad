package scim_test

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/identity"
)

// TestBulkCreatesAreBatched: consecutive user creates are written with one statement per
// table, so 200 creates run a few dozen statements, not thousands; every user still has
// its own audit event, in request order, by the token.
func TestBulkCreatesAreBatched(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		e := newEnv(t, bdb)
		ctx := context.Background()
		before, _ := e.audit.Latest(ctx, bdb, e.tenant.ID)
		const n = 200
		ops := make([]map[string]any, n)
		for i := range ops {
			ops[i] = bulkOp("POST", "/Users", fmt.Sprint(i), user(fmt.Sprintf("batch%03d@acme.com", i)))
		}
		log := &queryLog{}
		bdb.AddQueryHook(log)
		res := bulkResults(t, e.do("POST", "/Bulk", bulkReq(0, ops...)))
		queries := log.take()
		if len(res) != n {
			t.Fatalf("%d results, want %d", len(res), n)
		}
		for _, o := range res {
			opStatus(t, o, "201", "")
		}
		userInserts := regexp.MustCompile(`^INSERT INTO "users"`)
		inserts := 0
		for _, q := range queries {
			if userInserts.MatchString(q) {
				inserts++
			}
		}
		// A statement per table per batch of creates; one by one it was ten per user.
		if inserts != 1 || len(queries) > 50 {
			t.Fatalf("%d creates ran %d statements, %d of them INSERT INTO users", n, len(queries), inserts)
		}
		events, _, err := e.audit.Page(ctx, bdb, e.tenant.ID, audit.Filter{}, before, audit.MaxPage)
		if err != nil {
			t.Fatal(err)
		}
		if len(events) != n {
			t.Fatalf("%d audit events, want %d", len(events), n)
		}
		for i, ev := range events {
			want := fmt.Sprintf("batch%03d@acme.com", i)
			if ev.Action != "user.created" || ev.TargetDisplay != want || ev.ActorType != audit.ActorSCIMToken || ev.Changes["userName"].After != want {
				t.Fatalf("event %d: %+v, want user.created of %s by the token", i, ev, want)
			}
		}
		if r, err := e.audit.Verify(ctx, bdb, e.tenant.ID); err != nil || !r.OK {
			t.Fatalf("audit chain after a batch: %+v %v", r, err)
		}
		got := e.do("GET", "/Users/"+strings.TrimPrefix(res[7]["location"].(string), e.base+"/Users/"), nil).must(t, 200)
		if got.str("userName") != "batch007@acme.com" || got.str("emails.0.value") != "batch007@acme.com" || got.str("meta.version") != `W/"1"` {
			t.Fatalf("created user: %s", got.Raw)
		}
	})
}

// TestBulkBatchedCreatesFailAlone: in one batch of creates, each failing operation gets
// the status and scimType its own POST would (unreadable body, userName taken in the
// tenant or earlier in the request, a bad or taken extension value), in order, and the
// others are created; with failOnErrors the request stops at the same operation as one
// by one would, and nothing after it is created.
func TestBulkBatchedCreatesFailAlone(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		e := newEnv(t, bdb)
		if _, err := e.identity.SetUserExtension(context.Background(), e.tenant.ID, []byte(acmeSchema)); err != nil {
			t.Fatal(err)
		}
		e.do("POST", "/Users", user("taken@acme.com", acmeURN, map[string]any{"costCenterCode": 1, "badge": "B-1"})).must(t, 201)
		batch := func(failOnErrors int, p string) []map[string]any {
			return bulkResults(t, e.do("POST", "/Bulk", bulkReq(failOnErrors,
				bulkOp("POST", "/Users", "a", user(p+"a@acme.com")),
				bulkOp("POST", "/Users", "b", user("TAKEN@acme.com")),
				bulkOp("POST", "/Users", "c", user(p+"c@acme.com", "shoeSize", 44)),
				bulkOp("POST", "/Users", "d", user(p+"a@acme.com")),
				bulkOp("POST", "/Users", "e", user(p+"e@acme.com", acmeURN, map[string]any{"costCenterCode": "lots"})),
				bulkOp("POST", "/Users", "f", user(p+"f@acme.com", acmeURN, map[string]any{"costCenterCode": 2, "badge": "B-1"})),
				bulkOp("POST", "/Users", "g", user(p+"g@acme.com", acmeURN, map[string]any{"costCenterCode": 3, "badge": "B-" + p})),
				bulkOp("POST", "/Users", "h", user(p+"h@acme.com", acmeURN, map[string]any{"costCenterCode": 4, "badge": "B-" + p})),
				bulkOp("POST", "/Users", "i", user(p+"i@acme.com")),
			)))
		}
		exists := func(name string) bool {
			t.Helper()
			return e.do("GET", "/Users?filter="+url.QueryEscape(`userName eq "`+name+`"`), nil).must(t, 200).num("totalResults") == 1
		}
		want := []struct{ status, scimType string }{
			{"201", ""}, {"409", "uniqueness"}, {"400", "invalidValue"}, {"409", "uniqueness"}, {"400", "invalidValue"},
			{"409", "uniqueness"}, {"201", ""}, {"409", "uniqueness"}, {"201", ""},
		}
		ops := batch(0, "x")
		if len(ops) != len(want) {
			t.Fatalf("%d results, want %d", len(ops), len(want))
		}
		for k, o := range ops {
			if o["bulkId"] != string(rune('a'+k)) {
				t.Fatalf("result %d is %v: not in request order", k, o["bulkId"])
			}
			opStatus(t, o, want[k].status, want[k].scimType)
		}
		for name, created := range map[string]bool{"xa": true, "xc": false, "xf": false, "xg": true, "xh": false, "xi": true} {
			if exists(name+"@acme.com") != created {
				t.Errorf("%s created: %v, want %v", name, !created, created)
			}
		}

		// failOnErrors 3: the third failure (c, invalid) is the last operation run.
		ops = batch(3, "y")
		if len(ops) != 4 || ops[3]["bulkId"] != "d" {
			t.Fatalf("failOnErrors 3: want a, b, c, d: %v", ops)
		}
		opStatus(t, ops[0], "201", "")
		opStatus(t, ops[3], "409", "uniqueness")
		if !exists("ya@acme.com") || exists("yg@acme.com") || exists("yi@acme.com") {
			t.Fatal("failOnErrors 3: want ya created and nothing after d")
		}
		// failOnErrors 2: stops at b, a failure found by the write's checks.
		ops = batch(2, "z")
		if len(ops) != 3 || ops[2]["bulkId"] != "c" {
			t.Fatalf("failOnErrors 2: want a, b, c: %v", ops)
		}
		if !exists("za@acme.com") || exists("zi@acme.com") {
			t.Fatal("failOnErrors 2: want za created and nothing after c")
		}
		// failOnErrors 1 inside one write: the create after the failure is not made.
		ops = bulkResults(t, e.do("POST", "/Bulk", bulkReq(1,
			bulkOp("POST", "/Users", "p1", user("p1@acme.com")),
			bulkOp("POST", "/Users", "p2", user("taken@acme.com")),
			bulkOp("POST", "/Users", "p3", user("p3@acme.com")),
		)))
		if len(ops) != 2 || ops[1]["bulkId"] != "p2" || !exists("p1@acme.com") || exists("p3@acme.com") {
			t.Fatalf("failOnErrors 1: want p1 created, p2 refused and p3 not run: %v", ops)
		}
		opStatus(t, ops[1], "409", "uniqueness")
	})
}

// raceHook creates, once, a user named like the batch's first create just before the
// batch inserts its users, from another connection: what a concurrent request would do.
type raceHook struct {
	fired  atomic.Bool
	create func()
}

func (h *raceHook) BeforeQuery(ctx context.Context, ev *bun.QueryEvent) context.Context {
	if strings.HasPrefix(ev.Query, `INSERT INTO "users"`) && strings.Contains(ev.Query, "ON CONFLICT DO NOTHING") && h.fired.CompareAndSwap(false, true) {
		h.create()
	}
	return ctx
}

func (h *raceHook) AfterQuery(context.Context, *bun.QueryEvent) {}

// TestBulkBatchRaced: when another request takes a userName between the batch's checks
// and its insert, the batch writes nothing and its creates run one by one, so only the
// one that lost the name fails (409). PostgreSQL only: SQLite serialises the two writes.
func TestBulkBatchRaced(t *testing.T) {
	bdb := testenv.Postgres(t)
	e := newEnv(t, bdb)
	hook := &raceHook{create: func() {
		if _, err := e.identity.CreateUser(context.Background(), e.tenant.ID, identity.User{UserName: "r1@acme.com", Active: true}); err != nil {
			t.Errorf("the concurrent create: %v", err)
		}
	}}
	bdb.AddQueryHook(hook)
	ops := bulkResults(t, e.do("POST", "/Bulk", bulkReq(0,
		bulkOp("POST", "/Users", "1", user("r0@acme.com")),
		bulkOp("POST", "/Users", "2", user("r1@acme.com")),
		bulkOp("POST", "/Users", "3", user("r2@acme.com")),
	)))
	if !hook.fired.Load() {
		t.Fatal("the batch never inserted users")
	}
	if len(ops) != 3 {
		t.Fatalf("%d results: %v", len(ops), ops)
	}
	opStatus(t, ops[0], "201", "")
	opStatus(t, ops[1], "409", "uniqueness")
	opStatus(t, ops[2], "201", "")
	if l := e.do("GET", "/Users?count=0", nil).must(t, 200); l.num("totalResults") != 3 {
		t.Fatalf("%d users, want r0, r2 and the concurrent r1", l.num("totalResults"))
	}
}
