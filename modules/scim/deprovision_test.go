package scim_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/identity"
	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
	"github.com/gatehouse-dev/gatehouse/modules/platform/cache"
)

// deprovisionings are the ways IdPs take someone's access away, as they send them.
var deprovisionings = []struct {
	name   string
	method string
	body   func(id, userName string) any
}{
	{"PATCH path active", http.MethodPatch, func(string, string) any {
		return patchOps(map[string]any{"op": "replace", "path": "active", "value": false})
	}},
	{"PATCH no path (Okta)", http.MethodPatch, func(string, string) any {
		return patchOps(map[string]any{"op": "replace", "value": map[string]any{"active": false}})
	}},
	{"PATCH \"False\" (Entra)", http.MethodPatch, func(string, string) any {
		return patchOps(map[string]any{"op": "Replace", "path": "active", "value": "False"})
	}},
	{"PUT active false", http.MethodPut, func(id, userName string) any {
		return map[string]any{"schemas": []string{userSchema}, "id": id, "userName": userName, "active": false}
	}},
	{"DELETE", http.MethodDelete, func(string, string) any { return nil }},
}

func patchOps(ops ...map[string]any) map[string]any {
	return map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"}, "Operations": ops}
}

const userSchema = "urn:ietf:params:scim:schemas:core:2.0:User"

// startSessions signs a user in n times and returns the tokens, each checked to work.
func (e *env) startSessions(userID string, n int) []string {
	e.t.Helper()
	ctx := context.Background()
	toks := make([]string, n)
	for i := range toks {
		_, tok, err := e.sessions.Start(ctx, identity.NewSession{TenantID: e.tenant.ID, UserID: userID,
			IdleTimeout: time.Hour, MaxLife: 8 * time.Hour, Method: "saml"})
		if err != nil {
			e.t.Fatal(err)
		}
		if _, err := e.sessions.Authenticate(ctx, tok); err != nil {
			e.t.Fatal(err)
		}
		toks[i] = tok
	}
	return toks
}

func (e *env) allRefused(toks []string) {
	e.t.Helper()
	for i, tok := range toks {
		if _, err := e.sessions.Authenticate(context.Background(), tok); !apperr.Is(err, apperr.KindUnauthenticated) {
			e.t.Fatalf("token %d of %d still authenticates after deprovisioning (err %v)", i+1, len(toks), err)
		}
	}
}

func (e *env) createUser(userName string) string {
	e.t.Helper()
	r := e.do(http.MethodPost, "/Users", map[string]any{"schemas": []string{userSchema}, "userName": userName, "active": true}).must(e.t, http.StatusCreated)
	return r.Body["id"].(string)
}

// Every way an IdP deprovisions ends every session of the person before the SCIM
// response is sent: the very next check of each token is refused. Checked with 1, 10
// and 100 sessions, on both databases and both caches.
func TestDeprovisioningEndsSessions(t *testing.T) {
	for cname, mk := range map[string]func(t *testing.T) cache.Cache{
		"memory": func(t *testing.T) cache.Cache { m := cache.NewMemory(); t.Cleanup(func() { m.Close() }); return m },
		"redis":  func(t *testing.T) cache.Cache { return testenv.Redis(t) },
		"redis-cluster": func(t *testing.T) cache.Cache {
			c, err := cache.NewRedis(context.Background(), testenv.StartRedisCluster(t), "gh:")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			return c
		},
	} {
		t.Run(cname, func(t *testing.T) {
			testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
				e := newEnvWithCache(t, bdb, mk(t))
				n := 0
				for _, d := range deprovisionings {
					for _, sessions := range []int{1, 10, 100} {
						n++
						t.Run(fmt.Sprintf("%s/%d sessions", d.name, sessions), func(t *testing.T) {
							name := fmt.Sprintf("user%d@acme.test", n)
							id := e.createUser(name)
							other := e.createUser("bystander" + name)
							toks := e.startSessions(id, sessions)
							keep := e.startSessions(other, 1)
							want := http.StatusOK
							if d.method == http.MethodDelete {
								want = http.StatusNoContent
							}
							e.do(d.method, "/Users/"+id, d.body(id, name)).must(t, want)
							e.allRefused(toks)
							if _, err := e.sessions.Authenticate(context.Background(), keep[0]); err != nil {
								t.Fatalf("another user's session was ended too: %v", err)
							}
							action := "user.deactivated"
							if d.method == http.MethodDelete {
								action = "user.deleted"
							}
							var ev audit.Stored
							if err := bdb.NewSelect().Model(&ev).Where("tenant_id = ? AND target_id = ? AND action = ?", e.tenant.ID, id, action).Scan(context.Background()); err != nil {
								t.Fatalf("no %s event: %v", action, err)
							}
							if got := ev.Changes["sessionsRevoked"].After; fmt.Sprint(got) != fmt.Sprint(sessions) || ev.ActorType != audit.ActorSCIMToken {
								t.Fatalf("%s event: sessionsRevoked %v (want %d), actor %s", action, got, sessions, ev.ActorType)
							}
						})
					}
				}
			})
		})
	}
}

// Reactivating someone does not bring their old sessions back; they sign in anew.
func TestReactivationDoesNotRestoreSessions(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		e := newEnvWithCache(t, bdb, testenv.Redis(t))
		id := e.createUser("ada@acme.test")
		toks := e.startSessions(id, 3)
		e.do(http.MethodPatch, "/Users/"+id, patchOps(map[string]any{"op": "replace", "path": "active", "value": false})).must(t, http.StatusOK)
		e.do(http.MethodPatch, "/Users/"+id, patchOps(map[string]any{"op": "replace", "path": "active", "value": true})).must(t, http.StatusOK)
		e.allRefused(toks)
		fresh := e.startSessions(id, 1)
		if _, err := e.sessions.Authenticate(context.Background(), fresh[0]); err != nil {
			t.Fatalf("a new sign-in after reactivation is refused: %v", err)
		}
	})
}

// With Redis down, deprovisioning still revokes (the database is the truth), sessions
// are checked in the database, and when Redis comes back — empty, or restored from a
// snapshot taken before the deprovisioning — no ended session is accepted again.
func TestDeprovisioningThroughRedisTrouble(t *testing.T) {
	for _, db := range []struct {
		name string
		open func(t *testing.T) *bun.DB
	}{{"sqlite", func(t *testing.T) *bun.DB { return testenv.SQLite(t) }}, {"postgres", func(t *testing.T) *bun.DB { return testenv.Postgres(t) }}} {
		t.Run(db.name, func(t *testing.T) {
			rs := testenv.StartRedis(t)
			c, err := cache.NewRedis(context.Background(), rs.URL(), "gh:")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			e := newEnvWithCache(t, db.open(t), c)
			ctx := context.Background()

			// Down: deprovisioning revokes, surviving sessions are checked in the database.
			ada, bob := e.createUser("ada@acme.test"), e.createUser("bob@acme.test")
			adaToks, bobToks := e.startSessions(ada, 2), e.startSessions(bob, 1)
			rs.Stop()
			e.do(http.MethodPatch, "/Users/"+ada, patchOps(map[string]any{"op": "replace", "path": "active", "value": false})).must(t, http.StatusOK)
			e.allRefused(adaToks)
			if _, err := e.sessions.Authenticate(ctx, bobToks[0]); err != nil {
				t.Fatalf("with Redis down a live session must be checked in the database, got %v", err)
			}

			// Back, restored from a snapshot taken before a deprovisioning.
			rs.Restart(t)
			waitForCache(t, c)
			carol := e.createUser("carol@acme.test")
			carolToks := e.startSessions(carol, 2)
			if err := c.Client().Save(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			e.do(http.MethodDelete, "/Users/"+carol, nil).must(t, http.StatusNoContent)
			e.allRefused(carolToks)
			rs.Stop()
			rs.Restart(t) // loads dump.rdb: carol's cache entries are back
			waitForCache(t, c)
			n, err := c.Client().Keys(ctx, "gh:session:{"+carol+"}:*").Result()
			if err != nil || len(n) != 2 {
				t.Fatalf("the restored snapshot should hold carol's 2 stale entries; found %v (%v)", n, err)
			}
			e.allRefused(carolToks)
			if _, err := e.sessions.Authenticate(ctx, bobToks[0]); err != nil {
				t.Fatalf("a live session after the restore: %v", err)
			}
		})
	}
}

// waitForCache waits until the client has reconnected to a restarted Redis.
func waitForCache(t *testing.T, c cache.Cache) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(context.Background()) != nil {
		if time.Now().After(deadline) {
			t.Fatal("the Redis client did not reconnect within 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
