package filtersql

import (
	"context"
	"database/sql"
	"fmt"
	"reflect"
	"strconv"
	"time"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
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
	// OrderBy is the field to sort by first (its Column an SQL expression, its Kind the
	// type of its values, NotNull when it can never be NULL); a zero Field sorts by
	// creation order (ids are ULIDs).
	OrderBy    Field
	Descending bool
	// After, when set, pages by keyset: the page starts after this position in the
	// listing's order and Offset is ignored. A zero Position starts at the beginning.
	// The seek is a WHERE on (sort value, id), never an OFFSET, so a deep page costs
	// what the first does.
	After  *Position
	Offset int
	Limit  int // 0 counts only
}

// Position is a row's place in a listing's order: its sort value in text form (nil
// when the listing is in creation order or the row's value is NULL) and its id.
type Position struct {
	Value *string
	ID    string
}

// Result is what List found.
type Result struct {
	Total int
	// Next is the position of the page's last row when more rows follow it; set only
	// when paging by keyset (ListSpec.After).
	Next *Position
}

// InvalidCursor is the error code of a position that does not fit the listing.
const InvalidCursor = "invalidCursor"

// Nulls sort last ascending and first descending on both dialects (RFC 7644 §3.4.2.3;
// PostgreSQL's default, made explicit for SQLite).
func (s ListSpec) order() (string, string) {
	if s.Descending {
		return " DESC", " DESC NULLS FIRST"
	}
	return " ASC", " ASC NULLS LAST"
}

// List counts the resources matching spec and scans one page of them into dest (a
// pointer to a slice of Bun models). Both queries filter in SQL; the page is ordered by
// OrderBy and then the id, so pages never repeat or skip a row.
func List(ctx context.Context, idb bun.IDB, spec ListSpec, dest any) (Result, error) {
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
	var seek string
	var seekArgs []any
	if spec.After != nil && spec.After.ID != "" {
		var err error
		if seek, seekArgs, err = spec.seek(*spec.After); err != nil {
			return Result{}, err
		}
	}
	count := func() (Result, error) {
		countQ, err := where(idb.NewSelect().TableExpr(spec.Table))
		if err != nil {
			return Result{}, err
		}
		n, err := countQ.Count(ctx)
		return Result{Total: int(n)}, err
	}
	sel, err := where(idb.NewSelect().Model(dest))
	if err != nil {
		return Result{}, err
	}
	idDir, sortDir := spec.order()
	if spec.OrderBy.Column != "" {
		sel = sel.OrderExpr(spec.OrderBy.Column + sortDir)
	}
	sel = sel.OrderExpr(spec.IDColumn + idDir)
	if spec.After == nil && spec.Offset == 0 && spec.Limit > 0 {
		// A first page shorter than the limit is the whole result: its length is the
		// total, and the count query (which grows with the tenant) is not needed. This
		// is every "userName eq" lookup an IdP makes.
		if err := sel.Limit(int64(spec.Limit)).Scan(ctx); err != nil {
			return Result{}, err
		}
		if n := reflect.ValueOf(dest).Elem().Len(); n < spec.Limit {
			return Result{Total: n}, nil
		}
		return count()
	}
	res, err := count()
	if err != nil || spec.Limit == 0 || (spec.After == nil && spec.Offset >= res.Total) {
		return res, err
	}
	if spec.After == nil {
		return res, sel.Offset(int64(spec.Offset)).Limit(int64(spec.Limit)).Scan(ctx)
	}
	if seek != "" {
		sel = sel.Where(seek, seekArgs...)
	}
	if err := sel.Limit(int64(spec.Limit + 1)).Scan(ctx); err != nil {
		return res, err
	}
	rows := reflect.ValueOf(dest).Elem()
	if rows.Len() <= spec.Limit {
		return res, nil
	}
	rows.SetLen(spec.Limit)
	res.Next, err = spec.position(ctx, idb, rows.Index(spec.Limit-1))
	return res, err
}

// seek returns the condition "after p" in the listing's order.
func (s ListSpec) seek(p Position) (string, []any, error) {
	cmp := " > "
	if s.Descending {
		cmp = " < "
	}
	col, id := s.OrderBy.Column, s.IDColumn
	if col == "" {
		if p.Value != nil {
			return "", nil, apperr.Invalid("the cursor does not belong to this listing").WithCode(InvalidCursor)
		}
		return id + cmp + "?", []any{p.ID}, nil
	}
	if p.Value == nil {
		if s.OrderBy.NotNull {
			return "", nil, apperr.Invalid("the cursor does not belong to this listing").WithCode(InvalidCursor)
		}
		// After a NULL: the remaining NULLs by id; descending, every non-NULL follows.
		if s.Descending {
			return "((" + col + " IS NULL AND " + id + " < ?) OR " + col + " IS NOT NULL)", []any{p.ID}, nil
		}
		return "(" + col + " IS NULL AND " + id + " > ?)", []any{p.ID}, nil
	}
	v, err := s.OrderBy.parse(*p.Value)
	if err != nil {
		return "", nil, err
	}
	// A row-value comparison, which both planners turn into an index range when the
	// sort column is indexed.
	cond := "(" + col + ", " + id + ")" + cmp + "(?, ?)"
	if !s.OrderBy.NotNull && !s.Descending {
		cond = "(" + cond + " OR " + col + " IS NULL)"
	}
	return cond, []any{v, p.ID}, nil
}

// position reads the sort value of one scanned row, by its primary key.
func (s ListSpec) position(ctx context.Context, idb bun.IDB, row reflect.Value) (*Position, error) {
	for row.Kind() == reflect.Pointer {
		row = row.Elem()
	}
	table := idb.Dialect().Tables().Get(row.Type())
	if len(table.PKs) != 1 {
		return nil, fmt.Errorf("filtersql: %s needs a single-column primary key for keyset paging", row.Type())
	}
	id := fmt.Sprint(table.PKs[0].Value(row).Interface())
	p := &Position{ID: id}
	if s.OrderBy.Column == "" {
		return p, nil
	}
	q := idb.NewSelect().TableExpr(s.Table).ColumnExpr(s.OrderBy.Column).Where(s.IDColumn+" = ?", id)
	var text string
	switch s.OrderBy.Kind {
	case Time:
		var t bun.NullTime
		if err := q.Scan(ctx, &t); err != nil {
			return nil, err
		}
		if t.IsZero() {
			return p, nil
		}
		text = t.UTC().Format(time.RFC3339Nano)
	case Bool:
		var b sql.NullBool
		if err := q.Scan(ctx, &b); err != nil || !b.Valid {
			return p, err
		}
		text = strconv.FormatBool(b.Bool)
	case Number:
		var f sql.NullFloat64
		if err := q.Scan(ctx, &f); err != nil || !f.Valid {
			return p, err
		}
		text = strconv.FormatFloat(f.Float64, 'g', -1, 64)
	default:
		var str sql.NullString
		if err := q.Scan(ctx, &str); err != nil || !str.Valid {
			return p, err
		}
		text = str.String
	}
	p.Value = &text
	return p, nil
}

// parse turns a position's text back into a value of the field's kind.
func (f Field) parse(text string) (any, error) {
	bad := apperr.Invalid("the cursor does not belong to this listing").WithCode(InvalidCursor)
	switch f.Kind {
	case Time:
		t, err := time.Parse(time.RFC3339Nano, text)
		if err != nil {
			return nil, bad
		}
		return t.UTC(), nil
	case Bool:
		b, err := strconv.ParseBool(text)
		if err != nil {
			return nil, bad
		}
		return b, nil
	case Number:
		n, err := strconv.ParseFloat(text, 64)
		if err != nil {
			return nil, bad
		}
		return n, nil
	}
	return text, nil
}
