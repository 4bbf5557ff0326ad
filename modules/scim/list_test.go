package scim_test

import (
	"fmt"
	"net/url"
	"sort"
	"testing"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
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
