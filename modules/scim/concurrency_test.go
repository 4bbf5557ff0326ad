package scim_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// Concurrent PATCHes never lose an update: each runs under a row lock on the resource.
// With the same If-Match version, exactly one of two wins and the other gets 412.
func TestConcurrentPatches(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		e := newEnv(t, bdb)
		gid := e.do("POST", "/Groups", group("Team")).must(t, 201).str("id")
		var users []string
		for i := range 20 {
			users = append(users, e.do("POST", "/Users", user(fmt.Sprintf("c%d@acme.com", i))).must(t, 201).str("id"))
		}
		var wg sync.WaitGroup
		for _, u := range users {
			wg.Add(1)
			go func() {
				defer wg.Done()
				e.do("PATCH", "/Groups/"+gid, patchOp(op("add", "members", []any{map[string]any{"value": u}}))).must(t, 204)
			}()
		}
		wg.Wait()
		g := e.do("GET", "/Groups/"+gid, nil).must(t, 200)
		if n := len(memberValues(g)); n != len(users) {
			t.Fatalf("%d members after %d concurrent adds", n, len(users))
		}
		if g.str("meta.version") != `W/"21"` {
			t.Fatalf("version %s after 20 changes", g.str("meta.version"))
		}

		// Two writers holding the same version: one 200, one 412.
		uid := users[0]
		tag := e.do("GET", "/Users/"+uid, nil).must(t, 200).Header.Get("ETag")
		codes := make(chan int, 2)
		for _, title := range []string{"A", "B"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				codes <- e.do("PATCH", "/Users/"+uid, patchOp(op("replace", "title", title)), "If-Match", tag).Status
			}()
		}
		wg.Wait()
		close(codes)
		got := map[int]int{}
		for c := range codes {
			got[c]++
		}
		if got[200] != 1 || got[412] != 1 {
			t.Fatalf("statuses %v, want one 200 and one 412", got)
		}
	})
}
