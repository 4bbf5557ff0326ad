package access

import (
	"context"
	"strings"

	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
	"github.com/gatehouse-dev/gatehouse/modules/platform/filter"
	"github.com/gatehouse-dev/gatehouse/modules/platform/filtersql"
)

const coreGroupURN = "urn:ietf:params:scim:schemas:core:2.0:group"

var groupColumns = map[string]filtersql.Field{
	"id":                {Column: "g.id", CaseExact: true, NotNull: true},
	"externalid":        {Column: "g.external_id", CaseExact: true},
	"displayname":       {Column: "g.display_name_key", Folded: true, NotNull: true, Unique: true},
	"meta.created":      {Column: "g.created_at", Kind: filtersql.Time, NotNull: true},
	"meta.lastmodified": {Column: "g.updated_at", Kind: filtersql.Time, NotNull: true},
}

type groupFilterSchema struct{ tenantID string }

func (s groupFilterSchema) Resolve(p filter.AttrPath) (*filtersql.Field, *filtersql.Multi, error) {
	if p.URN != "" && !strings.EqualFold(p.URN, coreGroupURN) {
		return nil, nil, apperr.Invalid("attribute %q is not a filterable Group attribute", p.String()).WithCode("invalidFilter")
	}
	if strings.EqualFold(p.Name, "members") {
		return nil, &filtersql.Multi{
			Subquery:   "SELECT m.group_id FROM group_members AS m WHERE m.tenant_id = ?",
			Args:       []any{s.tenantID},
			DefaultSub: "value",
			Sub: func(sub string) (filtersql.Field, bool) {
				switch strings.ToLower(sub) {
				case "value":
					return filtersql.Field{Column: "m.member_id", CaseExact: true}, true
				case "type":
					return filtersql.Field{Column: "m.member_type"}, true
				}
				return filtersql.Field{}, false
			},
		}, nil
	}
	key := strings.ToLower(p.Name)
	if p.Sub != "" {
		key += "." + strings.ToLower(p.Sub)
	}
	f, ok := groupColumns[key]
	if !ok {
		return nil, nil, apperr.Invalid("attribute %q is not a filterable Group attribute", p.String()).WithCode("invalidFilter")
	}
	return &f, nil, nil
}

// Query selects groups of a tenant.
type Query struct {
	Filter     filter.Expr
	SortBy     *filter.AttrPath
	Descending bool
	// After, when set, pages by keyset from after this position (the zero Position is
	// the first page) and Offset is ignored; see filtersql.ListSpec.
	After  *filtersql.Position
	Offset int
	Limit  int // 0 returns only the total
}

// Page is one page of groups and the number matching in all.
type Page struct {
	Groups []Group
	Total  int
	Next   *filtersql.Position // keyset paging only: where the next page starts; nil on the last
}

// ListGroups returns the groups matching q, filtered, sorted and paged in SQL.
func (s *Service) ListGroups(ctx context.Context, tenantID string, q Query) (Page, error) {
	spec := filtersql.ListSpec{Table: "groups AS g", TenantColumn: "g.tenant_id", IDColumn: "g.id", TenantID: tenantID,
		Filter: q.Filter, Schema: groupFilterSchema{tenantID: tenantID}, Descending: q.Descending, After: q.After, Offset: q.Offset, Limit: q.Limit}
	if q.SortBy != nil {
		f, m, err := groupFilterSchema{}.Resolve(*q.SortBy)
		if err != nil || m != nil {
			return Page{}, apperr.Invalid("cannot sort groups by %q", q.SortBy.String()).WithCode("invalidValue")
		}
		spec.OrderBy = *f
	}
	var page Page
	res, err := filtersql.List(ctx, s.db, spec, &page.Groups)
	page.Total, page.Next = res.Total, res.Next
	return page, err
}
