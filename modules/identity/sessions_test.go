package identity_test

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
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

func TestMain(m *testing.M) { testenv.Main(m) }

const issuer = "https://id.example.test"

var tenantSeq atomic.Int64

type fixture struct {
	clk      *clock.Manual
	db       *bun.DB
	keys     *keys.Store
	cache    cache.Cache
	sessions *identity.Sessions
	ids      *identity.Service
	tenantID string
	user     identity.User
}

func setup(t *testing.T, bdb *bun.DB, c cache.Cache) *fixture {
	t.Helper()
	ctx := context.Background()
	clk := clock.NewManual(time.Now())
	al := audit.New(clk)
	ten, err := tenancy.New(bdb, clk, al, net.DefaultResolver).CreateTenant(ctx, tenancy.CreateTenantInput{Slug: fmt.Sprintf("acme-%d", tenantSeq.Add(1))})
	if err != nil {
		t.Fatal(err)
	}
	ids := identity.New(bdb, clk, al, c, slog.New(slog.NewTextHandler(io.Discard, nil)))
	watch, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	ids.WatchEndedSessions(watch)
	u, err := ids.CreateUser(ctx, ten.ID, identity.User{UserName: "ada@acme.test", Active: true})
	if err != nil {
		t.Fatal(err)
	}
	ks, err := keys.New(bdb, clk, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := ids.Sessions(ks, identity.SessionsConfig{Issuer: issuer})
	return &fixture{clk: clk, db: bdb, keys: ks, cache: c, sessions: s, ids: ids, tenantID: ten.ID, user: u}
}

func (f *fixture) start(t *testing.T) (identity.Session, string) {
	t.Helper()
	s, tok, err := f.sessions.Start(context.Background(), identity.NewSession{TenantID: f.tenantID, UserID: f.user.ID,
		IdleTimeout: time.Hour, MaxLife: 8 * time.Hour, Method: "saml"})
	if err != nil {
		t.Fatal(err)
	}
	return s, tok
}

func eachBackend(t *testing.T, fn func(t *testing.T, f *fixture)) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		t.Run("memory", func(t *testing.T) {
			m := cache.NewMemory()
			t.Cleanup(func() { m.Close() })
			fn(t, setup(t, bdb, m))
		})
		t.Run("redis", func(t *testing.T) { fn(t, setup(t, bdb, testenv.Redis(t))) })
		t.Run("redis-cluster", func(t *testing.T) { fn(t, setup(t, bdb, redisCluster(t))) })
	})
}

func redisCluster(t *testing.T) cache.Cache {
	c, err := cache.NewRedis(context.Background(), testenv.StartRedisCluster(t), "gh:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func refused(t *testing.T, f *fixture, name, token string) {
	t.Helper()
	_, err := f.sessions.Authenticate(context.Background(), token)
	if !apperr.Is(err, apperr.KindUnauthenticated) {
		t.Errorf("%s: Authenticate = %v; want unauthenticated", name, err)
	}
}

func TestSessionLifecycle(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		s, tok := f.start(t)
		p, err := f.sessions.Authenticate(ctx, tok)
		if err != nil || p.UserID != f.user.ID || p.TenantID != f.tenantID || p.SessionID != s.ID {
			t.Fatalf("Authenticate = %+v, %v", p, err)
		}
		// Idle: used within the idle timeout it stays alive (and is touched) …
		f.clk.Advance(50 * time.Minute)
		if _, err := f.sessions.Authenticate(ctx, tok); err != nil {
			t.Fatalf("after 50 idle minutes: %v", err)
		}
		f.clk.Advance(50 * time.Minute)
		if _, err := f.sessions.Authenticate(ctx, tok); err != nil {
			t.Fatalf("the last use must have reset the idle clock: %v", err)
		}
		// … and ends after the idle timeout without use.
		f.clk.Advance(61 * time.Minute)
		refused(t, f, "idle", tok)

		_, tok2 := f.start(t)
		if err := f.sessions.End(ctx, f.tenantID, mustPrincipal(t, f, tok2).SessionID); err != nil {
			t.Fatal(err)
		}
		refused(t, f, "after logout", tok2)

		_, tok3 := f.start(t)
		f.clk.Advance(8*time.Hour + time.Minute)
		refused(t, f, "past the absolute lifetime", tok3)
	})
}

func mustPrincipal(t *testing.T, f *fixture, tok string) identity.Principal {
	t.Helper()
	p, err := f.sessions.Authenticate(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A valid token whose session row is gone is refused even when the cache still holds
// the session: revocation purges the cache, and a row deleted behind the cache's back
// is caught at the next touch (here: the cache is emptied as a restart would).
func TestDeletedSessionRefused(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		s1, tok := f.start(t)
		s2, other := f.start(t)
		for _, s := range []identity.Session{s1, s2} {
			if _, err := f.cache.Get(ctx, "session:{"+f.user.ID+"}:"+s.ID); err != nil {
				t.Fatalf("session %s is not cached: %v", s.ID, err)
			}
		}
		n, err := f.sessions.RevokeUser(ctx, f.tenantID, f.user.ID)
		if err != nil || n != 2 {
			t.Fatalf("RevokeUser = %d, %v; want 2", n, err)
		}
		// Buried in the cache (in a Cluster: one MULTI in the user's hash slot).
		for _, s := range []identity.Session{s1, s2} {
			if _, err := f.cache.Get(ctx, "session:{"+f.user.ID+"}:"+s.ID); !errors.Is(err, cache.ErrBuried) {
				t.Fatalf("session %s is not buried in the cache after revocation: %v", s.ID, err)
			}
		}
		refused(t, f, "revoked", tok)
		refused(t, f, "revoked (second session)", other)
		// One event for the one revocation, naming both sessions.
		var events []audit.Stored
		if err := f.db.NewSelect().Model(&events).Where("action = 'session.revoked' AND tenant_id = ?", f.tenantID).Scan(ctx); err != nil {
			t.Fatal(err)
		}
		if len(events) != 1 {
			t.Fatalf("%d session.revoked events; want 1 for the one revocation", len(events))
		}
		e := events[0]
		ended, _ := e.Changes["sessions"].After.([]any)
		if e.TargetType != "user" || e.TargetID != f.user.ID || e.TargetDisplay != f.user.UserName ||
			e.Changes["sessionsRevoked"].After != float64(2) || len(ended) != 2 || e.Changes["reason"].After != "revoked" {
			t.Fatalf("session.revoked event = %+v", e)
		}
	})
}

func TestForgedTokensRefused(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) { forgedTokensRefused(t, bdb) })
}

func forgedTokensRefused(t *testing.T, bdb *bun.DB) {
	m := cache.NewMemory()
	defer m.Close()
	f := setup(t, bdb, m)
	ctx := context.Background()
	s, good := f.start(t)
	k, err := f.keys.Active(ctx, keys.PurposeSession)
	if err != nil {
		t.Fatal(err)
	}
	claims := func(mut func(c jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"iss": issuer, "aud": []string{identity.DefaultAudience}, "sub": f.user.ID, "tid": f.tenantID,
			"sid": s.ID, "iat": time.Now().Unix(), "exp": f.clk.Now().Add(time.Hour).Unix()}
		if mut != nil {
			mut(c)
		}
		return c
	}
	sign := func(c jwt.MapClaims, kid string) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
		tok.Header["kid"] = kid
		out, err := tok.SignedString(k.Signer)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	// The control: a token we sign the same way is accepted, so each refusal below is
	// caused by the one thing that differs.
	if _, err := f.sessions.Authenticate(ctx, sign(claims(nil), k.ID)); err != nil {
		t.Fatalf("control token refused: %v", err)
	}
	if _, err := f.sessions.Authenticate(ctx, good); err != nil {
		t.Fatalf("issued token refused: %v", err)
	}

	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims(nil)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	refused(t, f, "alg none", none)

	pubDER, _ := x509.MarshalPKIXPublicKey(k.Public.(ed25519.PublicKey))
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, claims(nil))
	hs.Header["kid"] = k.ID
	hsTok, _ := hs.SignedString(pubDER)
	refused(t, f, "HS256 keyed with the public key", hsTok)
	hsRaw, _ := func() (string, error) {
		x := jwt.NewWithClaims(jwt.SigningMethodHS256, claims(nil))
		x.Header["kid"] = k.ID
		return x.SignedString([]byte(k.Public.(ed25519.PublicKey)))
	}()
	refused(t, f, "HS256 keyed with the raw public key", hsRaw)

	refused(t, f, "unknown kid", sign(claims(nil), "01UNKNOWNKID"))
	refused(t, f, "no kid", sign(claims(nil), ""))
	refused(t, f, "expired", sign(claims(func(c jwt.MapClaims) { c["exp"] = f.clk.Now().Add(-time.Minute).Unix() }), k.ID))
	refused(t, f, "no exp", sign(claims(func(c jwt.MapClaims) { delete(c, "exp") }), k.ID))
	refused(t, f, "wrong aud", sign(claims(func(c jwt.MapClaims) { c["aud"] = "someone-else" }), k.ID))
	refused(t, f, "wrong iss", sign(claims(func(c jwt.MapClaims) { c["iss"] = "https://evil.test" }), k.ID))
	refused(t, f, "other tenant in tid", sign(claims(func(c jwt.MapClaims) { c["tid"] = "01OTHERTENANT" }), k.ID))
	refused(t, f, "unknown session", sign(claims(func(c jwt.MapClaims) { c["sid"] = "01NOSUCHSESSION" }), k.ID))
	refused(t, f, "garbage", "not.a.token")

	// A key from elsewhere with our kid.
	_, foreign, _ := ed25519.GenerateKey(nil)
	ft := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims(nil))
	ft.Header["kid"] = k.ID
	ftTok, _ := ft.SignedString(foreign)
	refused(t, f, "signed by a foreign key", ftTok)

	// Tampered payload.
	parts := strings.Split(good, ".")
	parts[1] = parts[1][:len(parts[1])-2] + "AA"
	refused(t, f, "tampered payload", strings.Join(parts, "."))

	// And the session deleted straight from the database with the cache emptied (as
	// after a cache restart): the database is the truth.
	if _, err := bdb.NewDelete().Table("sessions").Where("id = ?", s.ID).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	m.Del(ctx, "session:{"+f.user.ID+"}:"+s.ID)
	refused(t, f, "session row deleted", good)
}

// A token verified once is remembered (its signature is not checked again), but what can
// change since is checked on every use: its expiry, and the standing of the key that
// signed it — a token of a retired key is refused although it was accepted before.
func TestVerifiedTokensStillExpireAndFollowKeys(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		m := cache.NewMemory()
		defer m.Close()
		f := setup(t, bdb, m)
		ctx := context.Background()
		s, _ := f.start(t)
		k, err := f.keys.Active(ctx, keys.PurposeSession)
		if err != nil {
			t.Fatal(err)
		}
		// A token of the (8-hour) session that itself expires in a minute.
		short := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{"iss": issuer, "aud": []string{identity.DefaultAudience},
			"sub": f.user.ID, "tid": f.tenantID, "sid": s.ID, "exp": f.clk.Now().Add(time.Minute).Unix()})
		short.Header["kid"] = k.ID
		shortTok, err := short.SignedString(k.Signer)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.sessions.Authenticate(ctx, shortTok); err != nil {
			t.Fatal(err)
		}
		_, tok := f.start(t)
		if _, err := f.sessions.Authenticate(ctx, tok); err != nil {
			t.Fatal(err)
		}
		f.clk.Advance(2 * time.Minute)
		refused(t, f, "a remembered token past its exp", shortTok)
		if _, err := f.sessions.Authenticate(ctx, tok); err != nil {
			t.Fatalf("a token within its exp: %v", err)
		}

		// Rotation: the old key signs no more but still verifies; retired, it does not.
		next, err := f.keys.Add(ctx, keys.PurposeSession)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.keys.Activate(ctx, next.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.sessions.Authenticate(ctx, tok); err != nil {
			t.Fatalf("a token of the previous key: %v", err)
		}
		if _, err := f.keys.Retire(ctx, k.ID); err != nil {
			t.Fatal(err)
		}
		refused(t, f, "a remembered token of a retired key", tok)
	})
}
