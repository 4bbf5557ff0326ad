package identity_test

import (
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/identity"
	"github.com/gatehouse-dev/gatehouse/modules/platform/cache"
)

// sessionQueries records the statements that read or change sessions and tombstones.
type sessionQueries struct {
	mu sync.Mutex
	qs []string
}

var sessionTables = regexp.MustCompile(`(?i)^\s*(SELECT|UPDATE|DELETE)\b.*\b(FROM|UPDATE)\s+"?(sessions|ended_sessions)"?\b`)

func (l *sessionQueries) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context {
	return ctx
}

func (l *sessionQueries) AfterQuery(_ context.Context, ev *bun.QueryEvent) {
	if ev.Err == nil && sessionTables.MatchString(ev.Query) {
		l.mu.Lock()
		l.qs = append(l.qs, ev.Query)
		l.mu.Unlock()
	}
}

// Every statement on sessions and their tombstones — signing in, checking, listing,
// logout, Single Logout, revocation, deactivation, deletion, polling — seeks an index by
// its leading column: none scans the table, and none walks a whole index to filter on a
// later column (PostgreSQL's EXPLAIN with sequential scans discouraged, so that a plan
// the tiny test table would make cheapest does not hide a missing index).
func TestSessionStatementsSeekAnIndex(t *testing.T) {
	bdb := testenv.Postgres(t)
	c := cache.NewMemory()
	t.Cleanup(func() { c.Close() })
	log := &sessionQueries{}
	bdb.AddQueryHook(log)
	f := setup(t, bdb, c)
	ctx := context.Background()
	s, tok := f.start(t)
	mustPrincipal(t, f, tok)
	_ = c.Del(ctx, "session:{"+f.user.ID+"}:"+s.ID) // the database path too
	f.clk.Advance(2 * time.Minute)                  // and the last-seen write
	mustPrincipal(t, f, tok)
	if _, err := f.sessions.ListForUser(ctx, f.tenantID, f.user.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.sessions.End(ctx, f.tenantID, s.ID); err != nil {
		t.Fatal(err)
	}
	f.start(t)
	if _, err := f.sessions.EndSAMLSessions(ctx, f.tenantID, f.user.UserName, []string{"idx"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.sessions.RevokeUser(ctx, f.tenantID, f.user.ID); err != nil {
		t.Fatal(err)
	}
	f.start(t)
	if _, err := f.ids.UpdateUser(ctx, f.tenantID, f.user.ID, 0, func(u *identity.User) error { u.Active = false; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := f.ids.DeleteUser(ctx, f.tenantID, f.user.ID, 0, nil); err != nil {
		t.Fatal(err)
	}
	f.ids.PollEndedSessions(ctx)

	var idx []struct {
		Name string `bun:"indexname"`
		Def  string `bun:"indexdef"`
	}
	if err := bdb.NewRaw("SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN ('sessions', 'ended_sessions')").Scan(ctx, &idx); err != nil {
		t.Fatal(err)
	}
	leading := map[string]string{}
	for _, i := range idx {
		cols := i.Def[strings.LastIndex(i.Def, "(")+1:]
		leading[i.Name] = strings.TrimSpace(strings.FieldsFunc(cols, func(r rune) bool { return r == ',' || r == ')' })[0])
	}
	log.mu.Lock()
	qs := log.qs
	log.mu.Unlock()
	if len(qs) < 8 {
		t.Fatalf("only %d statements on sessions seen: %q", len(qs), qs)
	}
	scanUsing := regexp.MustCompile(`(?:Index Scan|Index Only Scan|Bitmap Index Scan) (?:Backward )?(?:using|on) (\w+)`)
	for _, q := range qs {
		var plan []string
		err := bdb.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			if _, err := tx.ExecContext(ctx, "SET LOCAL enable_seqscan = off"); err != nil {
				return err
			}
			return tx.NewRaw("EXPLAIN "+q).Scan(ctx, &plan)
		})
		if err != nil {
			t.Fatalf("EXPLAIN %s: %v", q, err)
		}
		for i, line := range plan {
			if strings.Contains(line, "Seq Scan on sessions") || strings.Contains(line, "Seq Scan on ended_sessions") {
				t.Errorf("%s\nscans the table:\n%s", q, strings.Join(plan, "\n"))
				break
			}
			m := scanUsing.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			col, ok := leading[m[1]]
			if !ok {
				continue
			}
			if i+1 >= len(plan) || !strings.Contains(plan[i+1], "Index Cond") || !strings.Contains(plan[i+1], col) {
				t.Errorf("%s\nwalks the whole of %s (leading column %s not in its condition):\n%s", q, m[1], col, strings.Join(plan, "\n"))
				break
			}
		}
	}
}
