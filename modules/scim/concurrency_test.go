package scim_test

import (
	"fmt"
	"strconv"
	"strings"
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

		// Concurrent user PATCHes without If-Match: each adds its own email and none is lost.
		uid := users[1]
		before := e.do("GET", "/Users/"+uid, nil).must(t, 200)
		const writers = 10
		for i := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				e.do("PATCH", "/Users/"+uid, patchOp(op("add", "emails", []any{map[string]any{"value": fmt.Sprintf("w%d@acme.com", i), "type": "other"}}))).must(t, 200)
			}()
		}
		wg.Wait()
		after := e.do("GET", "/Users/"+uid, nil).must(t, 200)
		emails, _ := after.Body["emails"].([]any)
		seen := map[string]bool{}
		for _, m := range emails {
			seen[get(m, "value").(string)] = true
		}
		for i := range writers {
			if !seen[fmt.Sprintf("w%d@acme.com", i)] {
				t.Fatalf("email of writer %d lost: %s", i, after.Raw)
			}
		}
		if len(emails) != 1+writers || versionOf(after) != versionOf(before)+writers {
			t.Fatalf("%d emails, version %s after %d concurrent adds to version %s", len(emails), after.str("meta.version"), writers, before.str("meta.version"))
		}

		// Two writers holding the same version: one 200, one 412.
		uid = users[0]
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

// versionOf reads the number in a W/"n" meta.version.
func versionOf(r resp) int {
	n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(r.str("meta.version"), `W/"`), `"`))
	return n
}
