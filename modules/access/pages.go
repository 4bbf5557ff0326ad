package access

import (
	"context"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/modules/identity"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

// MaxPageSize bounds one page of a keyset listing.
const MaxPageSize = 100

// PageGroups returns up to first groups of the tenant after the id after, in id
// (creation) order, and whether more follow. Keyset paging: a deep page costs what the
// first does.
func (s *Service) PageGroups(ctx context.Context, tenantID, after string, first int) ([]Group, bool, error) {
	first = min(max(first, 1), MaxPageSize)
	var gs []Group
	q := s.db.NewSelect().Model(&gs).Where("g.tenant_id = ?", tenantID)
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

// GroupsByIDs returns the tenant's groups with these ids, for batch loading; ids of
// other tenants are absent.
func (s *Service) GroupsByIDs(ctx context.Context, tenantID string, idList []string) (map[string]Group, error) {
	out := make(map[string]Group, len(idList))
	if len(idList) == 0 {
		return out, nil
	}
	var gs []Group
	if err := s.db.NewSelect().Model(&gs).Where("g.tenant_id = ? AND g.id IN (?)", tenantID, bun.In(idList)).Scan(ctx); err != nil {
		return nil, err
	}
	for _, g := range gs {
		out[g.ID] = g
	}
	return out, nil
}

// MemberUserIDs is a subquery of the ids of the users who are direct members of a
// group, for another module's listing to restrict itself to (composed in SQL, never
// materialised, so a 100,000-member group pages like any other).
func (s *Service) MemberUserIDs(tenantID, groupID string) *bun.SelectQuery {
	return s.db.NewSelect().TableExpr("group_members AS gm").Column("gm.user_id").
		Where("gm.tenant_id = ? AND gm.group_id = ? AND gm.user_id IS NOT NULL", tenantID, groupID)
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
