package scim_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/platform/db"
)

// TestFilters runs the RFC 7644 §3.4.2.2 operators against a small directory through
// HTTP on both databases; each is translated into SQL (see filtersql).
func TestFilters(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		e := newEnv(t, bdb)
		mk := func(userName, title, emailType, email string, active bool, extra ...any) {
			u := user(userName, "title", title, "active", active,
				"emails", []any{map[string]any{"value": email, "type": emailType}})
			for i := 0; i+1 < len(extra); i += 2 {
				u[extra[i].(string)] = extra[i+1]
			}
			e.do("POST", "/Users", u).must(t, 201)
		}
		mk("bjensen", "Tour Guide", "work", "bjensen@example.com", true, "userType", "Employee", "name", map[string]any{"familyName": "Jensen", "givenName": "Barbara"})
		mk("jsmith", "Engineer", "home", "jsmith@example.org", true, "userType", "Contractor", "name", map[string]any{"familyName": "O'Malley", "givenName": "John"})
		mk("mmouse", "", "work", "mickey@disney.com", false, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", map[string]any{"department": "Animation", "employeeNumber": "701984"})
		cases := []struct {
			filter string
			want   []string
		}{
			{`userName Eq "BJENSEN"`, []string{"bjensen"}},
			{`userName ne "bjensen"`, []string{"jsmith", "mmouse"}},
			{`userName sw "j"`, []string{"jsmith"}},
			{`userName ew "MOUSE"`, []string{"mmouse"}},
			{`userName co "sm"`, []string{"jsmith"}},
			{`title pr`, []string{"bjensen", "jsmith"}},
			{`not (title pr)`, []string{"mmouse"}},
			{`title pr and userType eq "Employee"`, []string{"bjensen"}},
			{`title pr or active eq false`, []string{"bjensen", "jsmith", "mmouse"}},
			{`userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")`, []string{"bjensen"}},
			{`userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")`, []string{"mmouse"}},
			{`emails[type eq "work" and value co "@example.com"] or emails[type eq "home" and value co "@example.org"]`, []string{"bjensen", "jsmith"}},
			{`emails[type eq "work"]`, []string{"bjensen", "mmouse"}},
			{`name.familyName co "O'Malley"`, []string{"jsmith"}},
			{`urn:ietf:params:scim:schemas:core:2.0:User:name.familyName co "o'malley"`, []string{"jsmith"}},
			{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984"`, []string{"mmouse"}},
			{`meta.lastModified gt "2011-05-13T04:42:34Z"`, []string{"bjensen", "jsmith", "mmouse"}},
			{`meta.created lt "2011-05-13T04:42:34Z"`, nil},
			{`active eq true and title eq "engineer"`, []string{"jsmith"}},
			{`title gt "F"`, []string{"bjensen"}},
			{`emails.type eq "home"`, []string{"jsmith"}},
			{`userName eq "100%_\\"`, nil},
		}
		for _, c := range cases {
			r := e.do("GET", "/Users?sortBy=userName&filter="+url.QueryEscape(c.filter), nil).must(t, 200)
			var got []string
			for _, res := range r.resources() {
				got = append(got, get(res, "userName").(string))
			}
			if fmt.Sprint(got) != fmt.Sprint(c.want) || r.num("totalResults") != len(c.want) {
				t.Errorf("filter %s: got %v (total %d), want %v", c.filter, got, r.num("totalResults"), c.want)
			}
		}
		for _, bad := range []string{`userName eq`, `userName equals "x"`, `(userName eq "x"`, `nosuch eq "x"`, `active gt true`,
			`meta.created gt "yesterday"`, `groups.value eq "x"`, `name eq "x"`, `emails[nosuch eq "x"]`, `title[value eq "x"]`,
			`urn:example:other:1.0:User:title eq "x"`} {
			e.do("GET", "/Users?filter="+url.QueryEscape(bad), nil).scimError(t, 400, "invalidFilter")
		}
		// .search takes the same parameters in a body.
		s := e.do("POST", "/Users/.search", map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:SearchRequest"},
			"filter": `userName sw "b"`, "attributes": []string{"userName"}, "count": 10}).must(t, 200)
		if s.num("totalResults") != 1 || get(s.Body, "Resources.0.emails") != nil {
			t.Fatalf(".search: %s", s.Raw)
		}
		e.do("POST", "/Users/.search", map[string]any{"schemas": []string{"urn:example:wrong"}, "filter": "userName pr"}).scimError(t, 400, "invalidSyntax")
		e.do("POST", "/Users/.search", map[string]any{"filter": "x"}).scimError(t, 400, "invalidFilter")
	})
}

// TestPaging: Okta pages through with count=100 and must see every user exactly once.
func TestPaging(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		e := newEnv(t, bdb)
		const n = 250
		for i := range n {
			e.do("POST", "/Users", user(fmt.Sprintf("user%03d@example.com", i))).must(t, 201)
		}
		seen := map[string]bool{}
		for start := 1; start <= n; start += 100 {
			r := e.do("GET", fmt.Sprintf("/Users?startIndex=%d&count=100", start), nil).must(t, 200)
			if r.num("totalResults") != n || r.num("startIndex") != start || r.num("itemsPerPage") != len(r.resources()) {
				t.Fatalf("page at %d: %.200s", start, r.Raw)
			}
			for _, res := range r.resources() {
				id := get(res, "id").(string)
				if seen[id] {
					t.Fatalf("user %s seen twice", id)
				}
				seen[id] = true
			}
		}
		if len(seen) != n {
			t.Fatalf("saw %d users, want %d", len(seen), n)
		}
		if r := e.do("GET", "/Users?count=0", nil).must(t, 200); r.num("totalResults") != n || len(r.resources()) != 0 {
			t.Fatalf("count=0: %.200s", r.Raw)
		}
		if r := e.do("GET", "/Users?startIndex=1000", nil).must(t, 200); r.num("totalResults") != n || len(r.resources()) != 0 {
			t.Fatalf("past the end: %.200s", r.Raw)
		}
		if r := e.do("GET", "/Users?startIndex=-5&count=5000", nil).must(t, 200); r.num("startIndex") != 1 || len(r.resources()) != n {
			t.Fatalf("clamped: %.200s", r.Raw)
		}
		e.do("GET", "/Users?count=ten", nil).scimError(t, 400, "invalidValue")
		e.do("GET", "/Users?sortOrder=sideways", nil).scimError(t, 400, "invalidValue")
		desc := e.do("GET", "/Users?sortBy=userName&sortOrder=descending&count=3&attributes=userName", nil).must(t, 200)
		var names []string
		for _, res := range desc.resources() {
			names = append(names, get(res, "userName").(string))
		}
		if !sort.IsSorted(sort.Reverse(sort.StringSlice(names))) || names[0] != "user249@example.com" {
			t.Fatalf("descending: %v", names)
		}
	})
}

// pageByCursor follows nextCursor from cursor="" and returns the value of attr of every
// resource seen, failing on a repeat.
func (e *env) pageByCursor(t *testing.T, path string, attr string) []string {
	t.Helper()
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	var got []string
	seen := map[string]bool{}
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatalf("%s: no last page", path)
		}
		r := e.do("GET", path+sep+"count=7&cursor="+url.QueryEscape(cursor), nil).must(t, 200)
		if _, ok := r.Body["startIndex"]; ok {
			t.Fatalf("cursor page has startIndex: %.200s", r.Raw)
		}
		if r.num("itemsPerPage") != len(r.resources()) || len(r.resources()) > 7 {
			t.Fatalf("page: %.300s", r.Raw)
		}
		for _, res := range r.resources() {
			id := get(res, "id").(string)
			if seen[id] {
				t.Fatalf("%s: %s seen twice", path, id)
			}
			seen[id] = true
			got = append(got, fmt.Sprint(get(res, attr)))
		}
		next, ok := r.Body["nextCursor"].(string)
		if !ok {
			if len(r.resources()) == 0 && len(got) > 0 {
				t.Fatalf("%s: an empty last page; the page before should have had no nextCursor", path)
			}
			return got
		}
		cursor = next
	}
}

// TestCursorPaging: RFC 9865 cursors page by keyset through the same listing, filtered
// and sorted, on both databases.
func TestCursorPaging(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		e := newEnv(t, bdb)
		spc := e.do("GET", "/ServiceProviderConfig", nil).must(t, 200)
		if pg, _ := json.Marshal(spc.Body["pagination"]); string(pg) != `{"cursor":true,"defaultPageSize":100,"defaultPaginationMethod":"index","index":true,"maxPageSize":1000}` {
			t.Fatalf("pagination: %s", pg)
		}
		const n = 250
		var all []string
		for i := range n {
			// Created in an order unrelated to userName, so sorting is visible.
			name := fmt.Sprintf("user%03d@example.com", (i*37)%n)
			title := []any{"", "Engineer", "Architect"}[i%3]
			u := user(name)
			if title != "" {
				u["title"] = title
			}
			e.do("POST", "/Users", u).must(t, 201)
			all = append(all, name)
		}
		// Creation order.
		if got := e.pageByCursor(t, "/Users?attributes=userName", "userName"); fmt.Sprint(got) != fmt.Sprint(all) {
			t.Fatalf("creation order by cursor: got %d users %v", len(got), got)
		}
		// Sorted by userName, both ways.
		sorted := append([]string(nil), all...)
		sort.Strings(sorted)
		if got := e.pageByCursor(t, "/Users?sortBy=userName&attributes=userName", "userName"); fmt.Sprint(got) != fmt.Sprint(sorted) {
			t.Fatalf("sortBy userName by cursor: %v", got)
		}
		sort.Sort(sort.Reverse(sort.StringSlice(sorted)))
		if got := e.pageByCursor(t, "/Users?sortBy=userName&sortOrder=descending&attributes=userName", "userName"); fmt.Sprint(got) != fmt.Sprint(sorted) {
			t.Fatalf("descending by cursor: %v", got)
		}
		// Sorted by a column with unassigned values: they come last ascending, first descending.
		for _, order := range []string{"ascending", "descending"} {
			got := e.pageByCursor(t, "/Users?sortBy=title&sortOrder="+order+"&attributes=title", "title")
			if len(got) != n {
				t.Fatalf("sortBy title %s: %d users", order, len(got))
			}
			if !sameBlocks(got, order) {
				t.Fatalf("sortBy title %s: %v", order, got)
			}
		}
		// With a filter.
		got := e.pageByCursor(t, "/Users?attributes=title&filter="+url.QueryEscape(`title eq "engineer"`), "title")
		if len(got) != 83 {
			t.Fatalf("filtered: %d users, want 83", len(got))
		}
		// Past the end and count=0.
		r := e.do("GET", "/Users?cursor=&count=0", nil).must(t, 200)
		if r.num("totalResults") != n || len(r.resources()) != 0 || r.Body["nextCursor"] != nil {
			t.Fatalf("count=0: %.300s", r.Raw)
		}
		// Errors: invalid, foreign (another sort or filter), and both cursor and startIndex.
		first := e.do("GET", "/Users?cursor=&count=5", nil).must(t, 200)
		next := first.str("nextCursor")
		if next == "" {
			t.Fatalf("no nextCursor: %.300s", first.Raw)
		}
		for _, bad := range []string{"not-a-cursor", "e30", next + "x", "Zm9v"} {
			e.do("GET", "/Users?cursor="+url.QueryEscape(bad), nil).scimError(t, 400, "invalidCursor")
		}
		e.do("GET", "/Users?sortBy=userName&cursor="+next, nil).scimError(t, 400, "invalidCursor")
		e.do("GET", "/Users?filter=title+pr&cursor="+next, nil).scimError(t, 400, "invalidCursor")
		e.do("GET", "/Groups?cursor="+next, nil).scimError(t, 400, "invalidCursor")
		e.do("GET", "/Users?cursor=&startIndex=1", nil).scimError(t, 400, "invalidValue")
		_, otherToken := e.newTenant("other")
		r = e.doAs(otherToken, "GET", "/Users?cursor="+next, nil)
		r.scimError(t, 400, "invalidCursor")
		// .search takes the cursor in the body.
		body := map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:SearchRequest"},
			"sortBy": "userName", "count": 100, "cursor": "", "attributes": []string{"userName"}}
		var searched []string
		for {
			s := e.do("POST", "/Users/.search", body).must(t, 200)
			for _, res := range s.resources() {
				searched = append(searched, get(res, "userName").(string))
			}
			c, ok := s.Body["nextCursor"].(string)
			if !ok {
				break
			}
			body["cursor"] = c
		}
		sort.Strings(sorted)
		if fmt.Sprint(searched) != fmt.Sprint(sorted) {
			t.Fatalf(".search by cursor: %v", searched)
		}
		body["cursor"], body["startIndex"] = "", 1
		e.do("POST", "/Users/.search", body).scimError(t, 400, "invalidValue")
		delete(body, "startIndex")
		body["cursor"] = 5
		e.do("POST", "/Users/.search", body).scimError(t, 400, "invalidValue")

		// Groups, by creation order and by displayName.
		var groups []string
		for i := range 30 {
			name := fmt.Sprintf("group %02d", (i*7)%30)
			e.do("POST", "/Groups", group(name)).must(t, 201)
			groups = append(groups, name)
		}
		if got := e.pageByCursor(t, "/Groups?excludedAttributes=members", "displayName"); fmt.Sprint(got) != fmt.Sprint(groups) {
			t.Fatalf("groups by cursor: %v", got)
		}
		sort.Strings(groups)
		if got := e.pageByCursor(t, "/Groups?sortBy=displayName", "displayName"); fmt.Sprint(got) != fmt.Sprint(groups) {
			t.Fatalf("groups by displayName by cursor: %v", got)
		}
		gs := e.do("POST", "/Groups/.search", map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:SearchRequest"},
			"filter": `displayName sw "group 1"`, "count": 4, "cursor": ""}).must(t, 200)
		if len(gs.resources()) != 4 || gs.str("nextCursor") == "" || gs.num("totalResults") != 10 {
			t.Fatalf("groups .search: %.300s", gs.Raw)
		}
	})
}

// sameBlocks checks titles come in blocks: Architect, Engineer, then unassigned
// ascending; unassigned, Engineer, Architect descending.
func sameBlocks(got []string, order string) bool {
	want := []string{"Architect", "Engineer", "<nil>"}
	if order == "descending" {
		want = []string{"<nil>", "Engineer", "Architect"}
	}
	i := 0
	for _, g := range got {
		for i < len(want) && g != want[i] {
			i++
		}
		if i == len(want) {
			return false
		}
	}
	return true
}

// Cursor paging through 10,000 users returns each exactly once while other users are
// being created: the keyset seek neither repeats nor skips a row that existed when
// paging began, whatever is inserted meanwhile.
func TestCursorPagingWhileCreating(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		e := newEnv(t, bdb)
		seedUsers(t, bdb, e.tenant.ID, 10000)
		stop := make(chan struct{})
		created := make(chan int, 1)
		go func() {
			n := 0
			for {
				select {
				case <-stop:
					created <- n
					return
				default:
				}
				if r := e.do("POST", "/Users", map[string]any{"userName": fmt.Sprintf("late%05d@acme.test", n)}); r.Status != 201 {
					t.Errorf("create while paging: %d %s", r.Status, r.Raw) // not Fatal: another goroutine
					created <- n
					return
				}
				n++
			}
		}()
		seen := map[string]bool{}
		seeded := 0
		cursor := ""
		for pages := 0; ; pages++ {
			r := e.do("GET", "/Users?attributes=userName&count=1000&cursor="+url.QueryEscape(cursor), nil).must(t, 200)
			for _, res := range r.resources() {
				id := get(res, "id").(string)
				if seen[id] {
					t.Fatalf("%s seen twice", id)
				}
				seen[id] = true
				if strings.HasPrefix(get(res, "userName").(string), "seed") {
					seeded++
				}
			}
			next, ok := r.Body["nextCursor"].(string)
			if !ok {
				break
			}
			cursor = next
		}
		close(stop)
		late := <-created // (or the count at which a create failed)
		if seeded != 10000 || late == 0 {
			t.Fatalf("saw %d of the 10000 seeded users (%d created meanwhile)", seeded, late)
		}
	})
}

// seedUsers writes n users named seed1…seedN straight into the database (the tests
// using it are about reading many users, not about creating them).
func seedUsers(t *testing.T, bdb *bun.DB, tenantID string, n int) {
	t.Helper()
	_, err := bdb.ExecContext(context.Background(), `INSERT INTO users (id, tenant_id, user_name, user_name_key, active, source, version, created_at, updated_at)
		SELECT 'seed' || x, ?, 'seed' || x, 'seed' || x, true, 'scim', 1, ?, ? FROM `+series(bdb, n),
		tenantID, "2026-01-01 00:00:00+00:00", "2026-01-01 00:00:00+00:00")
	if err != nil {
		t.Fatal(err)
	}
}

// queryLog records the SQL a test database runs.
type queryLog struct {
	mu sync.Mutex
	qs []string
}

func (l *queryLog) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context { return ctx }

func (l *queryLog) AfterQuery(_ context.Context, ev *bun.QueryEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.qs = append(l.qs, ev.Query)
}

// take returns the queries run since the last take.
func (l *queryLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	qs := l.qs
	l.qs = nil
	return qs
}

// TestCursorPagesSeekAnIndex guards the cost of cursor pages: for the default order and
// every indexed sort attribute, both ways, a page after the first runs no OFFSET and no
// count, and every query reading a page is an index range in the listing's order (no
// sort step in the plan: PostgreSQL's EXPLAIN with sorting and sequential scans
// discouraged, SQLite's EXPLAIN QUERY PLAN without a temporary B-tree for the ORDER BY).
// Paging by cursor also gives the same rows in the same order as by startIndex,
// unassigned externalIds last ascending and first descending.
func TestCursorPagesSeekAnIndex(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		e := newEnv(t, bdb)
		for i := range 7 {
			u := user(fmt.Sprintf("seek%d@acme.com", (i*3)%7))
			g := group(fmt.Sprintf("Group %d", (i*5)%7))
			if i%3 != 0 {
				u["externalId"] = fmt.Sprintf("ext-%d", (i*2)%7)
				g["externalId"] = fmt.Sprintf("ext-%d", (i*4)%7)
			}
			e.do("POST", "/Users", u).must(t, 201)
			e.do("POST", "/Groups", g).must(t, 201)
		}
		log := &queryLog{}
		bdb.AddQueryHook(log)
		ctx := context.Background()
		users, groups := regexp.MustCompile(`FROM "?users"? AS "?u"?`), regexp.MustCompile(`FROM "?groups"? AS "?g"?`)
		for _, l := range []struct {
			path  string
			table *regexp.Regexp
		}{
			{"/Users?", users},
			{"/Users?sortBy=userName&", users},
			{"/Users?sortBy=externalId&", users},
			{"/Users?sortBy=meta.lastModified&", users},
			{"/Groups?", groups},
			{"/Groups?sortBy=displayName&", groups},
			{"/Groups?sortBy=externalId&", groups},
		} {
			for _, order := range []string{"ascending", "descending"} {
				path := l.path + "sortOrder=" + order
				var want []string
				for _, res := range e.do("GET", path+"&count=100", nil).must(t, 200).resources() {
					want = append(want, get(res, "id").(string))
				}
				var got []string
				cursor := ""
				for page := 1; ; page++ {
					log.take()
					r := e.do("GET", path+"&count=2&cursor="+url.QueryEscape(cursor), nil).must(t, 200)
					if r.num("totalResults") != 7 {
						t.Fatalf("%s page %d: totalResults %d, want 7", path, page, r.num("totalResults"))
					}
					for _, res := range r.resources() {
						got = append(got, get(res, "id").(string))
					}
					reads := 0
					for _, q := range log.take() {
						if !l.table.MatchString(q) {
							continue
						}
						if page > 1 && (strings.Contains(q, "OFFSET") || strings.Contains(strings.ToLower(q), "count(")) {
							t.Fatalf("%s page %d ran %s", path, page, q)
						}
						if strings.Contains(q, "ORDER BY") && strings.Contains(q, "LIMIT") {
							reads++
							if how := sortStep(t, ctx, bdb, q); how != "" {
								t.Fatalf("%s page %d sorts (%s): %s", path, page, how, q)
							}
						}
					}
					if reads == 0 {
						t.Fatalf("%s page %d: no page query seen", path, page)
					}
					next, ok := r.Body["nextCursor"].(string)
					if !ok {
						break
					}
					cursor = next
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("%s: by cursor %v, by startIndex %v", path, got, want)
				}
			}
		}
	})
}

// sortStep explains q and returns the plan's line that sorts, or "".
func sortStep(t *testing.T, ctx context.Context, bdb *bun.DB, q string) string {
	t.Helper()
	var plan []string
	if db.DialectOf(bdb) == db.Postgres {
		err := bdb.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			// With seven rows a scan and a sort is cheapest; what matters is that the
			// index can give the order, so make the planner prefer it when it can.
			if _, err := tx.ExecContext(ctx, "SET LOCAL enable_seqscan = off; SET LOCAL enable_sort = off; SET LOCAL enable_bitmapscan = off"); err != nil {
				return err
			}
			return tx.NewRaw("EXPLAIN "+q).Scan(ctx, &plan)
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range plan {
			if strings.Contains(line, "Sort") {
				return strings.TrimSpace(line)
			}
		}
		return ""
	}
	rows, err := bdb.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(detail, "TEMP B-TREE") {
			return detail
		}
	}
	return ""
}
