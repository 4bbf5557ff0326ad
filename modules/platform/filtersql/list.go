package filtersql

import (
	"context"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/modules/platform/filter"
)

// ListSpec describes a filtered, sorted, paged listing of one tenant's resources.
type ListSpec struct {
	Table        string // e.g. "users AS u"; the model's alias must match
	TenantColumn string // e.g. "u.tenant_id"
	IDColumn     string // e.g. "u.id": the filter's subject and the stable tiebreak
	TenantID     string
	Filter       filter.Expr // nil: everything
	Schema       Schema
	OrderBy      string // SQL expression to sort by first; "" for creation order (ids are ULIDs)
	Descending   bool
	Offset       int
	Limit        int // 0 counts only
}

// List counts the resources matching spec and scans one page of them into dest (a
// pointer to a slice of Bun models). Both queries filter in SQL; the page is ordered by
// OrderBy and then the id, so pages never repeat or skip a row.
func List(ctx context.Context, idb bun.IDB, spec ListSpec, dest any) (int, error) {
	where := func(q *bun.SelectQuery) (*bun.SelectQuery, error) {
		q = q.Where(spec.TenantColumn+" = ?", spec.TenantID)
		if spec.Filter != nil {
			cond, args, err := Compile(spec.Filter, spec.Schema, spec.IDColumn)
			if err != nil {
				return nil, err
			}
			q = q.Where(cond, args...)
		}
		return q, nil
	}
	countQ, err := where(idb.NewSelect().TableExpr(spec.Table))
	if err != nil {
		return 0, err
	}
	n, err := countQ.Count(ctx)
	total := int(n)
	if err != nil || spec.Limit == 0 || spec.Offset >= total {
		return total, err
	}
	sel, err := where(idb.NewSelect().Model(dest))
	if err != nil {
		return 0, err
	}
	dir := " ASC"
	if spec.Descending {
		dir = " DESC"
	}
	if spec.OrderBy != "" {
		sel = sel.OrderExpr(spec.OrderBy + dir)
	}
	err = sel.OrderExpr(spec.IDColumn + dir).Offset(int64(spec.Offset)).Limit(int64(spec.Limit)).Scan(ctx)
	return total, err
}
