package access

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/modules/identity"
	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

// Reading the tenant's people and groups for a viewer. Any signed-in person of the
// tenant may read its users; groups, their members and anything reached through them
// need the user_groups plan feature as well. The tenant is always the viewer's, so ids
// of another tenant are simply absent (or not found).

// MaxPageSize bounds one page of a keyset listing.
const MaxPageSize = 100

// MaxSearchLen bounds UserQuery.Search: a prefix longer than the longest value it is
// matched against (identity.MaxStringLen) matches nothing.
const MaxSearchLen = identity.MaxStringLen

// viewerTenant returns the viewer's tenant: the one read with the viewer, else a fresh read.
func (s *Service) viewerTenant(ctx context.Context, v Viewer) (tenancy.Tenant, error) {
	if t, ok := v.Tenant(); ok {
		return t, nil
	}
	return s.tenant(ctx, v.TenantID)
}

// requireGroups checks that v is signed in and that their tenant's plan has user groups.
func (s *Service) requireGroups(ctx context.Context, v Viewer) error {
	if err := v.signedIn(); err != nil {
		return err
	}
	t, err := s.viewerTenant(ctx, v)
	if err != nil {
		return err
	}
	if !t.Has(tenancy.FeatureUserGroups) {
		return errNoFeature(tenancy.FeatureUserGroups, "user groups")
	}
	return nil
}

// UserQuery selects a page of users (see Users).
type UserQuery struct {
	// Search matches a case-insensitive prefix of userName, display name or an email.
	Search string
	// Active, when set, keeps only active (true) or deactivated (false) users.
	Active *bool
	// GroupID, when set, keeps only the group's direct members; it needs the
	// user_groups feature, and a group that is not the tenant's is not found.
	GroupID string
	// After is the id the page starts after ("" for the first page); First is the page
	// size, clamped to 1..MaxPageSize.
	After string
	First int
}

// Users returns a page of the viewer's tenant's users in id (creation) order and whether
// more follow. Keyset paging: a deep page costs what the first does, and a group filter
// is composed in SQL, so a 100,000-member group pages like any other.
func (s *Service) Users(ctx context.Context, v Viewer, q UserQuery) ([]identity.User, bool, error) {
	if err := v.signedIn(); err != nil {
		return nil, false, err
	}
	if utf8.RuneCountInString(strings.TrimSpace(q.Search)) > MaxSearchLen {
		// No stored value is that long, and SQLite refuses LIKE patterns over 50,000 bytes.
		return nil, false, apperr.Invalid("a search must be at most %d characters", MaxSearchLen).WithCode("invalidValue")
	}
	p := identity.UserPage{Search: q.Search, Active: q.Active, After: q.After, First: q.First}
	if q.GroupID != "" {
		if err := s.requireGroups(ctx, v); err != nil {
			return nil, false, err
		}
		if _, err := getGroup(ctx, s.db, v.TenantID, q.GroupID, false); err != nil {
			return nil, false, err
		}
		p.InIDs = s.db.NewSelect().TableExpr("group_members AS gm").Column("gm.user_id").
			Where("gm.tenant_id = ? AND gm.group_id = ? AND gm.user_id IS NOT NULL", v.TenantID, q.GroupID)
	}
	return s.identity.PageUsers(ctx, v.TenantID, p)
}

// UsersByIDs returns the viewer's tenant's users with these ids, for batch loading; ids
// of other tenants are absent.
func (s *Service) UsersByIDs(ctx context.Context, v Viewer, idList []string) (map[string]identity.User, error) {
	if err := v.signedIn(); err != nil {
		return nil, err
	}
	return s.identity.UsersByIDs(ctx, v.TenantID, idList)
}

// PageGroups returns up to first groups of the viewer's tenant after the id after, in id
// (creation) order, and whether more follow. Keyset paging: a deep page costs what the
// first does. It needs the user_groups feature.
func (s *Service) PageGroups(ctx context.Context, v Viewer, after string, first int) ([]Group, bool, error) {
	if err := s.requireGroups(ctx, v); err != nil {
		return nil, false, err
	}
	first = min(max(first, 1), MaxPageSize)
	var gs []Group
	q := s.db.NewSelect().Model(&gs).Where("g.tenant_id = ?", v.TenantID)
	if after != "" {
		q = q.Where("g.id > ?", after)
	}
	if err := q.OrderExpr("g.id").Limit(int64(first + 1)).Scan(ctx); err != nil {
		return nil, false, err
	}
	if len(gs) > first {
		return gs[:first], true, nil
	}
	return gs, false, nil
}

// GroupsByIDs returns the viewer's tenant's groups with these ids, for batch loading; ids
// of other tenants are absent. It needs the user_groups feature.
func (s *Service) GroupsByIDs(ctx context.Context, v Viewer, idList []string) (map[string]Group, error) {
	if err := s.requireGroups(ctx, v); err != nil {
		return nil, err
	}
	out := make(map[string]Group, len(idList))
	if len(idList) == 0 {
		return out, nil
	}
	var gs []Group
	if err := s.db.NewSelect().Model(&gs).Where("g.tenant_id = ? AND g.id IN (?)", v.TenantID, bun.In(dedupe(idList))).Scan(ctx); err != nil {
		return nil, err
	}
	for _, g := range gs {
		out[g.ID] = g
	}
	return out, nil
}

// GroupsOfUsersAs returns the groups each user is a direct member of (GroupsOfUsers), for
// a viewer of the tenant. It needs the user_groups feature.
func (s *Service) GroupsOfUsersAs(ctx context.Context, v Viewer, userIDs []string) (map[string][]GroupRef, error) {
	if err := s.requireGroups(ctx, v); err != nil {
		return nil, err
	}
	return s.GroupsOfUsers(ctx, v.TenantID, dedupe(userIDs))
}

// MemberPage is one page of a group's user members: their ids in id order, and whether
// more follow.
type MemberPage struct {
	UserIDs []string
	More    bool
}

// MemberPages returns, for each group, the page of up to first user members after the
// user id after (keyset paging, in id order; direct members only), in one statement
// however many groups it is given: each group's page is its own index seek, so a
// 100,000-member group pages like a small one. It needs the user_groups feature; groups
// of other tenants have empty pages.
func (s *Service) MemberPages(ctx context.Context, v Viewer, groupIDs []string, after string, first int) (map[string]MemberPage, error) {
	if err := s.requireGroups(ctx, v); err != nil {
		return nil, err
	}
	first = min(max(first, 1), MaxPageSize)
	groupIDs = dedupe(groupIDs)
	out := make(map[string]MemberPage, len(groupIDs))
	if len(groupIDs) == 0 {
		return out, nil
	}
	// One LIMITed seek per group, glued with UNION ALL (a window function would read
	// every member of a large group).
	parts := make([]string, len(groupIDs))
	var args []any
	for i, g := range groupIDs {
		parts[i] = `SELECT * FROM (SELECT gm.group_id, gm.member_id AS user_id FROM group_members AS gm
			WHERE gm.tenant_id = ? AND gm.group_id = ? AND gm.member_type = ? AND gm.member_id > ?
			ORDER BY gm.member_id LIMIT ?) AS p` + strconv.Itoa(i)
		args = append(args, v.TenantID, g, MemberUser, after, first+1)
	}
	var rows []struct {
		GroupID string `bun:"group_id"`
		UserID  string `bun:"user_id"`
	}
	if err := s.db.NewRaw(strings.Join(parts, " UNION ALL "), args...).Scan(ctx, &rows); err != nil {
		return nil, err
	}
	byGroup := map[string][]string{}
	for _, r := range rows {
		byGroup[r.GroupID] = append(byGroup[r.GroupID], r.UserID)
	}
	for g, ids := range byGroup {
		slices.Sort(ids) // UNION ALL promises no order across its parts
		if len(ids) > first {
			out[g] = MemberPage{UserIDs: ids[:first], More: true}
		} else {
			out[g] = MemberPage{UserIDs: ids}
		}
	}
	return out, nil
}

// Editable reports whether the app may change a user or group with this source under
// the tenant's provisioning mode: everything in manual mode, app-managed records in
// mixed mode, nothing in scim mode (the IdP owns it; the change belongs there).
func Editable(mode tenancy.ProvisioningMode, source identity.Source) bool {
	switch mode {
	case tenancy.ProvisioningManual:
		return true
	case tenancy.ProvisioningMixed:
		return source == identity.SourceApp
	}
	return false
}
