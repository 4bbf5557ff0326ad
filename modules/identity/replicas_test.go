package identity_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/identity"
	"github.com/gatehouse-dev/gatehouse/modules/keys"
	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
	"github.com/gatehouse-dev/gatehouse/modules/platform/cache"
	"github.com/gatehouse-dev/gatehouse/modules/platform/clock"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

// replicaPair is two servers' worth of identity services on one database, each with its
// own cache client and its own view of ended sessions, as two `gatehouse serve`
// processes have. Nothing passes between them but the database and the cache.
type replicaPair struct {
	a, b     *identity.Service
	sa, sb   *identity.Sessions
	tenantID string
}

// pairOptions vary a replica pair: with slowB, replica B reads the tombstones once at
// start and then only when the test says (PollEndedSessions), so what the cache alone
// does is seen, not hidden by a poll; clockA, when set, is replica A's clock.
type pairOptions struct {
	slowB  bool
	clockA clock.Clock
}

func newReplicaPair(t *testing.T, bdb *bun.DB, ca, cb cache.Cache, o pairOptions) *replicaPair {
	t.Helper()
	ctx := context.Background()
	var clk clock.Clock = clock.System{}
	al := audit.New(clk)
	ten, err := tenancy.New(bdb, clk, al, net.DefaultResolver).CreateTenant(ctx, tenancy.CreateTenantInput{Slug: fmt.Sprintf("acme-%d", tenantSeq.Add(1))})
	if err != nil {
		t.Fatal(err)
	}
	p := &replicaPair{tenantID: ten.ID}
	clockA := o.clockA
	if clockA == nil {
		clockA = clk
	}
	for _, r := range []struct {
		svc  **identity.Service
		sess **identity.Sessions
		c    cache.Cache
		clk  clock.Clock
	}{{&p.a, &p.sa, ca, clockA}, {&p.b, &p.sb, cb, clk}} {
		svc := identity.New(bdb, r.clk, audit.New(r.clk), r.c, slog.New(slog.NewTextHandler(io.Discard, nil)))
		watch, stop := context.WithCancel(context.Background())
		t.Cleanup(stop)
		if o.slowB && r.svc == &p.b {
			svc.WatchEndedSessionsEvery(watch, time.Hour)
		} else {
			svc.WatchEndedSessions(watch)
		}
		ks, err := keys.New(bdb, r.clk, nil)
		if err != nil {
			t.Fatal(err)
		}
		*r.svc, *r.sess = svc, svc.Sessions(ks, identity.SessionsConfig{Issuer: issuer})
	}
	return p
}

func (p *replicaPair) user(t *testing.T, name string) identity.User {
	t.Helper()
	u, err := p.a.CreateUser(context.Background(), p.tenantID, identity.User{UserName: name, Active: true})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// signIn starts a session through one replica and uses it on both, so each has read it.
func (p *replicaPair) signIn(t *testing.T, on *identity.Sessions, userID string) string {
	t.Helper()
	ctx := context.Background()
	_, tok, err := on.Start(ctx, identity.NewSession{TenantID: p.tenantID, UserID: userID,
		IdleTimeout: time.Hour, MaxLife: 8 * time.Hour, Method: "saml"})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*identity.Sessions{p.sa, p.sb} {
		if _, err := s.Authenticate(ctx, tok); err != nil {
			t.Fatalf("a fresh session is refused: %v", err)
		}
	}
	return tok
}

func (p *replicaPair) deactivate(t *testing.T, userID string) {
	t.Helper()
	_, err := p.a.UpdateUser(context.Background(), p.tenantID, userID, 0, func(u *identity.User) error {
		u.Active = false
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func refusedOn(t *testing.T, s *identity.Sessions, what, tok string) {
	t.Helper()
	if _, err := s.Authenticate(context.Background(), tok); !apperr.Is(err, apperr.KindUnauthenticated) {
		t.Fatalf("%s: Authenticate = %v; want unauthenticated", what, err)
	}
}

func redisClient(t *testing.T, url string) *cache.Redis {
	t.Helper()
	c, err := cache.NewRedis(context.Background(), url, "gh:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Replica A deprovisions someone while its path to Redis is cut (a partition): it
// cannot bury the cached sessions, which replica B still reads from Redis. A answers
// only once B can no longer believe them, so B's very next request is refused.
func TestBurialLostOnOneReplica(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		rs := testenv.StartRedis(t)
		proxy := testenv.StartProxy(t, fmt.Sprintf("127.0.0.1:%d", rs.Port))
		p := newReplicaPair(t, bdb, redisClient(t, "redis://"+proxy.Addr+"/0"), redisClient(t, rs.URL()), pairOptions{slowB: true})
		for round := range 3 {
			u := p.user(t, fmt.Sprintf("ada%d@acme.test", round))
			toks := []string{p.signIn(t, p.sa, u.ID), p.signIn(t, p.sb, u.ID)}
			p.b.PollEndedSessions(context.Background()) // B trusts its cache from here
			proxy.Cut()
			start := time.Now()
			p.deactivate(t, u.ID)
			took := time.Since(start)
			for i, tok := range toks {
				refusedOn(t, p.sb, fmt.Sprintf("round %d, token %d on replica B right after A answered", round, i), tok)
			}
			proxy.Restore()
			t.Logf("round %d: deactivation with the burial lost took %s", round, took.Round(time.Millisecond))
		}
	})
}

// Redis restored from a snapshot taken before a deprovisioning holds the ended
// sessions again. Replica B, which learnt nothing from the deprovisioning itself, still
// refuses them: at once (its first read of the restored Redis comes through a new
// connection, so it asks the database), and after it trusts the cache again (its
// tombstones name them).
func TestSnapshotRestoreAcrossReplicas(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		rs := testenv.StartRedis(t)
		ca, cb := redisClient(t, rs.URL()), redisClient(t, rs.URL())
		p := newReplicaPair(t, bdb, ca, cb, pairOptions{slowB: true})
		ctx := context.Background()
		ada, bob := p.user(t, "ada@acme.test"), p.user(t, "bob@acme.test")
		adaToks := []string{p.signIn(t, p.sa, ada.ID), p.signIn(t, p.sb, ada.ID)}
		bobTok := p.signIn(t, p.sb, bob.ID)
		if err := ca.Client().Save(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		p.b.PollEndedSessions(ctx) // B trusts its cache, and knows nothing of ada's end
		p.deactivate(t, ada.ID)
		for _, tok := range adaToks {
			refusedOn(t, p.sb, "before the restore", tok)
		}
		rs.Restart(t) // loads dump.rdb: ada's entries are back, alive
		keys, err := cb.Client().Keys(ctx, "gh:session:{"+ada.ID+"}:*").Result()
		if err != nil || len(keys) != 2 {
			t.Fatalf("the restored snapshot should hold ada's 2 entries; found %v (%v)", keys, err)
		}
		for _, tok := range adaToks {
			refusedOn(t, p.sb, "right after the restore", tok)
		}
		if _, err := p.sb.Authenticate(ctx, bobTok); err != nil {
			t.Fatalf("a live session right after the restore: %v", err)
		}
		p.b.PollEndedSessions(ctx) // B trusts the restored cache again
		for _, tok := range adaToks {
			refusedOn(t, p.sb, "once B trusts the restored cache", tok)
		}
		if _, err := p.sb.Authenticate(ctx, bobTok); err != nil {
			t.Fatalf("a live session after the restore: %v", err)
		}
	})
}

// A request on replica B read a session from the database just before replica A ended
// it, and writes it into the cache just after A buried it there: the write does not
// land, and B's next request (B has not polled since) is refused.
func TestWriteBackAfterBurialDoesNotLand(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		for name, c := range map[string]cache.Cache{"redis": testenv.Redis(t), "memory": cache.NewMemory()} {
			t.Run(name, func(t *testing.T) {
				p := newReplicaPair(t, bdb, c, c, pairOptions{slowB: true})
				ctx := context.Background()
				ada := p.user(t, "ada"+name+"@acme.test")
				tok := p.signIn(t, p.sa, ada.ID)
				row, err := p.sb.Session(ctx, p.tenantID, sessionIDOf(t, p, tok))
				if err != nil {
					t.Fatal(err)
				}
				p.b.PollEndedSessions(ctx)
				p.deactivate(t, ada.ID)
				p.sb.WriteBack(ctx, row)
				refusedOn(t, p.sb, "after a write-back of a read from before the deactivation", tok)
			})
		}
	})
}

// No session outlives a deprovisioning: a sign-in that comes after it is refused, and
// one that races it either fails or is ended with the rest.
func TestNoSessionForInactiveUser(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		c := testenv.Redis(t)
		p := newReplicaPair(t, bdb, c, c, pairOptions{})
		ctx := context.Background()
		ada := p.user(t, "ada@acme.test")
		p.deactivate(t, ada.ID)
		_, _, err := p.sa.Start(ctx, identity.NewSession{TenantID: p.tenantID, UserID: ada.ID,
			IdleTimeout: time.Hour, MaxLife: time.Hour, Method: "saml"})
		if !apperr.Is(err, apperr.KindForbidden) {
			t.Fatalf("Start for a deactivated user = %v; want forbidden", err)
		}
		_, _, err = p.sa.Start(ctx, identity.NewSession{TenantID: p.tenantID, UserID: "no-such-user",
			IdleTimeout: time.Hour, MaxLife: time.Hour, Method: "saml"})
		if !apperr.Is(err, apperr.KindForbidden) {
			t.Fatalf("Start for an unknown user = %v; want forbidden", err)
		}

		for round := range 20 {
			u := p.user(t, fmt.Sprintf("racer%d@acme.test", round))
			var tok string
			var startErr, deactivateErr error
			var wg sync.WaitGroup
			wg.Go(func() {
				_, tok, startErr = p.sb.Start(ctx, identity.NewSession{TenantID: p.tenantID, UserID: u.ID,
					IdleTimeout: time.Hour, MaxLife: time.Hour, Method: "saml"})
			})
			wg.Go(func() {
				_, deactivateErr = p.a.UpdateUser(ctx, p.tenantID, u.ID, 0, func(u *identity.User) error {
					u.Active = false
					return nil
				})
			})
			wg.Wait()
			if deactivateErr != nil {
				t.Fatal(deactivateErr)
			}
			if startErr == nil {
				refusedOn(t, p.sa, fmt.Sprintf("round %d: a session started while the user was deactivated (A)", round), tok)
				refusedOn(t, p.sb, fmt.Sprintf("round %d: a session started while the user was deactivated (B)", round), tok)
			} else if !apperr.Is(startErr, apperr.KindForbidden) {
				t.Fatalf("round %d: Start = %v", round, startErr)
			}
		}
	})
}

// A session row of a user who is not active does not authenticate, even if it should
// never have survived: the database check reads the user's status with the session.
func TestSessionOfInactiveUserRefused(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		c := cache.NewMemory()
		t.Cleanup(func() { c.Close() })
		p := newReplicaPair(t, bdb, c, c, pairOptions{})
		ctx := context.Background()
		ada := p.user(t, "ada@acme.test")
		tok := p.signIn(t, p.sa, ada.ID)
		// Behind the services' backs, so no session is ended and no cache entry buried.
		if _, err := bdb.NewUpdate().Table("users").Set("active = ?", false).Where("id = ?", ada.ID).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		if err := c.Del(ctx, "session:{"+ada.ID+"}:"+sessionIDOf(t, p, tok)); err != nil {
			t.Fatal(err)
		}
		refusedOn(t, p.sb, "a session of an inactive user", tok)
	})
}

func sessionIDOf(t *testing.T, p *replicaPair, tok string) string {
	t.Helper()
	pr, err := p.sa.Authenticate(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	return pr.SessionID
}

// Replicas whose clocks disagree still see each other's tombstones: on PostgreSQL they
// are dated by the database's clock, so a replica running ten minutes behind does not
// write ended sessions that the others' polls have already passed.
func TestTombstonesFromASkewedReplica(t *testing.T) {
	bdb := testenv.Postgres(t)
	c := testenv.Redis(t)
	behind := clock.NewManual(time.Now().Add(-10 * time.Minute))
	p := newReplicaPair(t, bdb, c, c, pairOptions{slowB: true, clockA: behind})
	ctx := context.Background()
	// B has read a tombstone dated now, so its polls start from there.
	early := p.user(t, "early@acme.test")
	p.signIn(t, p.sb, early.ID)
	if _, err := p.b.UpdateUser(ctx, p.tenantID, early.ID, 0, func(u *identity.User) error { u.Active = false; return nil }); err != nil {
		t.Fatal(err)
	}
	p.b.PollEndedSessions(ctx)

	ada := p.user(t, "ada@acme.test")
	tok := p.signIn(t, p.sb, ada.ID)
	row, err := p.sb.Session(ctx, p.tenantID, sessionIDOf(t, p, tok))
	if err != nil {
		t.Fatal(err)
	}
	p.deactivate(t, ada.ID) // through A, whose clock is behind
	// Put the entry back as a snapshot restore would (a plain Set, not a write-back).
	restoreEntry(t, c, row, row.ExpiresAt, time.Now())
	p.b.PollEndedSessions(ctx)
	refusedOn(t, p.sb, "a session ended by a replica whose clock is behind", tok)
}

// A request on replica A read a session (from the cache) just before the session was
// ended, and its last-seen write then finds no row. It must not clear the burial on its
// way out: a request on replica B that read the row from the database before the end
// writes it back afterwards, and B (which has not polled since) would believe it.
func TestEndedTouchKeepsTheBurial(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		rs := testenv.StartRedis(t)
		m := cache.NewMemory()
		t.Cleanup(func() { m.Close() })
		for name, cs := range map[string][2]cache.Cache{"redis": {redisClient(t, rs.URL()), redisClient(t, rs.URL())}, "memory": {m, m}} {
			t.Run(name, func(t *testing.T) {
				// A's clock is two minutes ahead, so A's first use of the session writes its
				// last-seen time. Each replica has its own Redis client, as two servers do.
				p := newReplicaPair(t, bdb, cs[0], cs[1], pairOptions{slowB: true, clockA: clock.NewManual(time.Now().Add(2 * time.Minute))})
				ctx := context.Background()
				ada := p.user(t, "ada"+name+"@acme.test")
				sess, tok, err := p.sb.Start(ctx, identity.NewSession{TenantID: p.tenantID, UserID: ada.ID,
					IdleTimeout: time.Hour, MaxLife: 8 * time.Hour, Method: "saml"})
				if err != nil {
					t.Fatal(err)
				}
				row, err := p.sb.Session(ctx, p.tenantID, sess.ID) // B's request reads the row
				if err != nil {
					t.Fatal(err)
				}
				p.b.PollEndedSessions(ctx) // B trusts its cache from here
				var once sync.Once
				p.sa.BeforeTouch(func() { once.Do(func() { p.deactivate(t, ada.ID) }) })
				refusedOn(t, p.sa, "a touch of a session ended meanwhile", tok)
				p.sb.WriteBack(ctx, row) // B's request writes back what it read
				refusedOn(t, p.sb, "after a touch found the session gone and a write-back followed", tok)
			})
		}
	})
}

// A deprovisioning whose transaction stays open a while (waiting for a lock, or for
// what runs before it) commits its tombstones after others that began later. Replica B,
// which has polled those, must still read these: here the poll overlap is shortened to
// what the transaction outlasts, and the ended session's entry is put back as a snapshot
// restore would.
func TestTombstonesOfALongTransaction(t *testing.T) {
	bdb := testenv.Postgres(t)
	c := testenv.Redis(t)
	p := newReplicaPair(t, bdb, c, c, pairOptions{slowB: true})
	p.b.PollOverlap(100 * time.Millisecond)
	ctx := context.Background()
	ada, bob := p.user(t, "ada@acme.test"), p.user(t, "bob@acme.test")
	tok := p.signIn(t, p.sb, ada.ID)
	p.signIn(t, p.sb, bob.ID)
	row, err := p.sb.Session(ctx, p.tenantID, sessionIDOf(t, p, tok))
	if err != nil {
		t.Fatal(err)
	}
	err = p.a.DeleteUser(ctx, p.tenantID, ada.ID, 0, func(ctx context.Context, tx bun.Tx) error {
		time.Sleep(300 * time.Millisecond)
		p.deactivate(t, bob.ID) // commits first, with later tombstones
		p.b.PollEndedSessions(ctx)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	restoreEntry(t, c, row, row.ExpiresAt, time.Now())
	p.b.PollEndedSessions(ctx)
	refusedOn(t, p.sb, "a session ended by a transaction that committed after later ones", tok)
}

// Replica A, cut off from Redis, is still waiting out a deactivation it could not bury
// when the IdP's next request about the same person (a DELETE, or the same PATCH sent
// again) arrives. That answer says the person is gone too, so it must not come before
// the first one could: replica B, which still reads the sessions from Redis, refuses
// them by the time it is sent.
func TestLaterDeprovisioningWaitsForTheBurial(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		rs := testenv.StartRedis(t)
		proxy := testenv.StartProxy(t, fmt.Sprintf("127.0.0.1:%d", rs.Port))
		p := newReplicaPair(t, bdb, redisClient(t, "redis://"+proxy.Addr+"/0"), redisClient(t, rs.URL()), pairOptions{slowB: true})
		ctx := context.Background()
		for _, then := range []string{"patch again", "delete"} {
			u := p.user(t, "ada-"+strings.ReplaceAll(then, " ", "-")+"@acme.test")
			tok := p.signIn(t, p.sa, u.ID)
			p.b.PollEndedSessions(ctx) // B trusts its cache from here
			proxy.Cut()
			done := make(chan struct{})
			go func() {
				defer close(done)
				p.deactivate(t, u.ID) // commits at once, then waits out the lost burial
			}()
			for {
				var active bool
				if err := bdb.NewSelect().Table("users").Column("active").Where("id = ?", u.ID).Scan(ctx, &active); err != nil {
					t.Fatal(err)
				}
				if !active {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			switch then {
			case "patch again":
				p.deactivate(t, u.ID)
			case "delete":
				if err := p.a.DeleteUser(ctx, p.tenantID, u.ID, 0, nil); err != nil {
					t.Fatal(err)
				}
			}
			refusedOn(t, p.sb, "right after the "+then+" was answered", tok)
			<-done
			proxy.Restore()
		}
	})
}

// The other way round: the replica that reads the tombstones runs ten minutes ahead of
// the database. On PostgreSQL the tombstones are dated by the database's clock, so its
// view of which are recent must be too, or it reads none and trusts entries of ended
// sessions (put back here as a snapshot restore would).
func TestTombstonesReadByASkewedReplica(t *testing.T) {
	bdb := testenv.Postgres(t)
	c := testenv.Redis(t)
	ahead := clock.NewManual(time.Now().Add(11 * time.Minute))
	p := newReplicaPair(t, bdb, c, c, pairOptions{clockA: ahead})
	ctx := context.Background()
	ada := p.user(t, "ada@acme.test")
	tok := p.signIn(t, p.sb, ada.ID)
	row, err := p.sb.Session(ctx, p.tenantID, sessionIDOf(t, p, tok))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.b.UpdateUser(ctx, p.tenantID, ada.ID, 0, func(u *identity.User) error { u.Active = false; return nil }); err != nil {
		t.Fatal(err)
	}
	restoreEntry(t, c, row, row.ExpiresAt.Add(time.Hour), ahead.Now())
	p.a.PollEndedSessions(ctx)
	refusedOn(t, p.sa, "a session ended, read by a replica whose clock is ahead", tok)
}

// restoreEntry puts a session's cache entry back as a snapshot restore would (a plain
// Set, not a write-back), expiring at expires and last seen at seen.
func restoreEntry(t *testing.T, c cache.Cache, row identity.Session, expires, seen time.Time) {
	t.Helper()
	entry := `{"t":"` + row.TenantID + `","u":"` + row.UserID + `","x":"` + expires.Format(time.RFC3339Nano) +
		`","l":"` + seen.Format(time.RFC3339Nano) + `","i":3600}`
	if err := c.Set(context.Background(), "session:{"+row.UserID+"}:"+row.ID, []byte(entry), time.Minute); err != nil {
		t.Fatal(err)
	}
}
