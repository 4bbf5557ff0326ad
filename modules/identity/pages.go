package identity

import (
	"context"
	"strings"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/modules/platform/db"
)

// MaxPageSize bounds one page of a keyset listing.
const MaxPageSize = 100

// UserPage selects one page of a tenant's users in id (creation) order, for keyset
// paging: the cost of a page does not grow with how deep it is.
type UserPage struct {
	// Search matches a case-insensitive prefix of userName, display name or an email.
	Search string
	// Active, when set, keeps only active (true) or deactivated (false) users.
	Active *bool
	// InIDs, when set, is a subquery of user ids the page is restricted to (another
	// module's membership query, composed in SQL rather than materialised).
	InIDs *bun.SelectQuery
	// After is the id the page starts after ("" for the first page).
	After string
	// First is the page size, clamped to 1..MaxPageSize.
	First int
}

// PageUsers returns up to p.First users after p.After and whether more follow.
func (s *Service) PageUsers(ctx context.Context, tenantID string, p UserPage) ([]User, bool, error) {
	first := min(max(p.First, 1), MaxPageSize)
	var users []User
	q := s.db.NewSelect().Model(&users).Where("u.tenant_id = ?", tenantID)
	if p.After != "" {
		q = q.Where("u.id > ?", p.After)
	}
	if p.Active != nil {
		q = q.Where("u.active = ?", *p.Active)
	}
	if term := strings.TrimSpace(p.Search); term != "" {
		like := db.EscapeLike(Fold(term)) + "%"
		q = q.WhereGroup(" AND ", func(q *bun.SelectQuery) *bun.SelectQuery {
			return q.Where(`u.user_name_key LIKE ? ESCAPE '\'`, like).
				WhereOr(`lower(u.display_name) LIKE ? ESCAPE '\'`, like).
				WhereOr(`EXISTS (SELECT 1 FROM user_values v WHERE v.user_id = u.id AND v.tenant_id = u.tenant_id AND v.attr = ? AND v.value_key LIKE ? ESCAPE '\')`, AttrEmails, like)
		})
	}
	if p.InIDs != nil {
		q = q.Where("u.id IN (?)", p.InIDs)
	}
	if err := q.OrderExpr("u.id").Limit(int64(first + 1)).Scan(ctx); err != nil {
		return nil, false, err
	}
	more := len(users) > first
	if more {
		users = users[:first]
	}
	ptrs := make([]*User, len(users))
	for i := range users {
		ptrs[i] = &users[i]
	}
	return users, more, loadValues(ctx, s.db, ptrs, false)
}

// UsersByIDs returns the tenant's users with these ids (values included), for batch
// loading; ids of other tenants are simply absent.
func (s *Service) UsersByIDs(ctx context.Context, tenantID string, idList []string) (map[string]User, error) {
	out := make(map[string]User, len(idList))
	if len(idList) == 0 {
		return out, nil
	}
	var users []User
	if err := s.db.NewSelect().Model(&users).Where("u.tenant_id = ? AND u.id IN (?)", tenantID, bun.In(idList)).Scan(ctx); err != nil {
		return nil, err
	}
	ptrs := make([]*User, len(users))
	for i := range users {
		ptrs[i] = &users[i]
	}
	if err := loadValues(ctx, s.db, ptrs, false); err != nil {
		return nil, err
	}
	for _, u := range users {
		out[u.ID] = u
	}
	return out, nil
}
