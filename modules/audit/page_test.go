package audit_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/platform/db"
)

func seqs(events []audit.Stored) []int64 {
	out := make([]int64, len(events))
	for i, e := range events {
		out[i] = e.Seq
	}
	return out
}

// Page returns a tenant's events in seq order after a cursor, filtered by actions,
// actor, target and time, and says whether more follow.
func TestPage(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		f := newFx(t, bdb)
		start := f.clock.Now()
		ada := audit.WithActor(ctx, audit.Actor{Type: audit.ActorUser, ID: "ada"})
		okta := audit.WithActor(ctx, audit.Actor{Type: audit.ActorSCIMToken, ID: "okta"})
		rec := func(actx context.Context, action, target string) {
			t.Helper()
			err := db.RunInTx(actx, bdb, func(ctx context.Context, tx bun.Tx) error {
				return f.log.Record(ctx, tx, audit.Event{TenantID: "acme", Action: action, Target: audit.Target{Type: "user", ID: target}})
			})
			if err != nil {
				t.Fatal(err)
			}
			f.clock.Advance(time.Minute)
		}
		rec(okta, "user.created", "u1")     // 1  +0m
		rec(okta, "user.created", "u2")     // 2  +1m
		rec(ada, "user.updated", "u1")      // 3  +2m
		rec(okta, "user.deactivated", "u2") // 4  +3m
		rec(ada, "group.created", "g1")     // 5  +4m
		rec(okta, "user.deactivated", "u1") // 6  +5m
		f.record("globex", 3)

		page := func(fl audit.Filter, after int64, first int) ([]int64, bool) {
			t.Helper()
			evs, more, err := f.log.Page(ctx, bdb, "acme", fl, after, first)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range evs {
				if e.TenantID != "acme" {
					t.Fatalf("another tenant's event: %+v", e)
				}
			}
			return seqs(evs), more
		}
		at := func(m int) *time.Time { x := start.Add(time.Duration(m) * time.Minute); return &x }
		for _, c := range []struct {
			name  string
			f     audit.Filter
			after int64
			first int
			want  []int64
			more  bool
		}{
			{"all", audit.Filter{}, 0, 100, []int64{1, 2, 3, 4, 5, 6}, false},
			{"first page", audit.Filter{}, 0, 2, []int64{1, 2}, true},
			{"next page", audit.Filter{}, 2, 2, []int64{3, 4}, true},
			{"last page", audit.Filter{}, 4, 2, []int64{5, 6}, false},
			{"exactly the rest", audit.Filter{}, 3, 3, []int64{4, 5, 6}, false},
			{"past the end", audit.Filter{}, 6, 10, []int64{}, false},
			{"first clamped up to 1", audit.Filter{}, 0, 0, []int64{1}, true},
			{"one action", audit.Filter{Actions: []string{"user.deactivated"}}, 0, 100, []int64{4, 6}, false},
			{"two actions", audit.Filter{Actions: []string{"user.created", "group.created"}}, 0, 100, []int64{1, 2, 5}, false},
			{"actions after a cursor", audit.Filter{Actions: []string{"user.created", "group.created"}}, 1, 1, []int64{2}, true},
			{"actor", audit.Filter{ActorID: "ada"}, 0, 100, []int64{3, 5}, false},
			{"target", audit.Filter{TargetID: "u2"}, 0, 100, []int64{2, 4}, false},
			{"actor and target", audit.Filter{ActorID: "okta", TargetID: "u1"}, 0, 100, []int64{1, 6}, false},
			{"from (inclusive)", audit.Filter{From: at(3)}, 0, 100, []int64{4, 5, 6}, false},
			{"to (exclusive)", audit.Filter{To: at(2)}, 0, 100, []int64{1, 2}, false},
			{"from and to", audit.Filter{From: at(1), To: at(4), TargetID: "u2"}, 0, 100, []int64{2, 4}, false},
			{"no match", audit.Filter{ActorID: "nobody"}, 0, 100, []int64{}, false},
		} {
			got, more := page(c.f, c.after, c.first)
			if !slices.Equal(got, c.want) || more != c.more {
				t.Fatalf("%s: Page = %v (more %v), want %v (more %v)", c.name, got, more, c.want, c.more)
			}
		}

		// first is clamped to MaxPage.
		f.record("big", audit.MaxPage+5)
		evs, more, err := f.log.Page(ctx, bdb, "big", audit.Filter{}, 0, 10000)
		if err != nil || len(evs) != audit.MaxPage || !more {
			t.Fatalf("Page(10000) = %d events, more %v, %v", len(evs), more, err)
		}
		evs, more, err = f.log.Page(ctx, bdb, "big", audit.Filter{}, evs[len(evs)-1].Seq, 10000)
		if err != nil || len(evs) != 5 || more {
			t.Fatalf("the page after = %d events, more %v, %v", len(evs), more, err)
		}
	})
}
