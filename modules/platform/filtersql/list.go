package filtersql

import (
	"context"
	"database/sql"
	"fmt"
	"reflect"
	"strconv"
	"strings"
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
	// type of its values, NotNull when it can never be NULL, Unique when no two rows
	// share a value); a zero Field sorts by creation order (ids are ULIDs).
	OrderBy    Field
	Descending bool
	// After, when set, pages by keyset: the page starts after this position in the
	// listing's order and Offset is ignored. A zero Position starts at the beginning.
	// The seek is a WHERE on (sort value, id), never an OFFSET, so a deep page costs
	// what the first does when an index on (tenant, sort column, id) serves the order
	// (see segments).
	After  *Position
	Offset int
	Limit  int // 0 counts only
}

// Position is a row's place in a listing's order: its sort value in text form (nil
// when the listing is in creation order or the row's value is NULL) and its id.
type Position struct {
	Value *string
	ID    string
	// Total is the number of matching rows counted for the listing's first page. Later
	// pages report it instead of counting again, which would cost a pass over every
	// matching row on each page (RFC 9865 lets totalResults be an estimate there).
	Total int
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

// orderBy is the ORDER BY of the whole listing: the sort field, then the id, which a
// unique sort field makes redundant (left out so its unique index serves the order).
func (s ListSpec) orderBy() []string {
	idDir, sortDir := s.order()
	switch {
	case s.OrderBy.Column == "":
		return []string{s.IDColumn + idDir}
	case s.OrderBy.Unique && s.OrderBy.NotNull:
		return []string{s.OrderBy.Column + sortDir}
	}
	return []string{s.OrderBy.Column + sortDir, s.IDColumn + idDir}
}

// List counts the resources matching spec and scans one page of them into dest (a
// pointer to a slice of Bun models). Every query filters in SQL; the page is ordered by
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
	count := func() (Result, error) {
		countQ, err := where(idb.NewSelect().TableExpr(spec.Table))
		if err != nil {
			return Result{}, err
		}
		n, err := countQ.Count(ctx)
		return Result{Total: int(n)}, err
	}
	if spec.After != nil {
		return spec.keyset(ctx, idb, dest, where, count)
	}
	sel, err := where(idb.NewSelect().Model(dest))
	if err != nil {
		return Result{}, err
	}
	for _, o := range spec.orderBy() {
		sel = sel.OrderExpr(o)
	}
	if spec.Offset == 0 && spec.Limit > 0 {
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
	if err != nil || spec.Limit == 0 || spec.Offset >= res.Total {
		return res, err
	}
	return res, sel.Offset(int64(spec.Offset)).Limit(int64(spec.Limit)).Scan(ctx)
}

// keyset reads the page after spec.After. The first page counts the matches (unless it
// holds them all); later pages carry that count in their position and never count.
func (s ListSpec) keyset(ctx context.Context, idb bun.IDB, dest any,
	where func(*bun.SelectQuery) (*bun.SelectQuery, error), count func() (Result, error)) (Result, error) {
	first := s.After.ID == ""
	res := Result{Total: s.After.Total}
	if s.Limit == 0 {
		if first {
			return count()
		}
		return res, nil
	}
	segs, err := s.segments(*s.After)
	if err != nil {
		return Result{}, err
	}
	rows := reflect.ValueOf(dest).Elem()
	rows.SetLen(0)
	want := s.Limit + 1 // one more than the page says whether another follows
	for _, sg := range segs {
		part := reflect.New(rows.Type())
		q, err := where(idb.NewSelect().Model(part.Interface()))
		if err != nil {
			return Result{}, err
		}
		if sg.cond != "" {
			q = q.Where(sg.cond, sg.args...)
		}
		for _, o := range sg.order {
			q = q.OrderExpr(o)
		}
		if err := q.Limit(int64(want - rows.Len())).Scan(ctx); err != nil {
			return Result{}, err
		}
		rows.Set(reflect.AppendSlice(rows, part.Elem()))
		if rows.Len() == want {
			break
		}
	}
	if first {
		if rows.Len() < want {
			res.Total = rows.Len()
		} else if res, err = count(); err != nil {
			return Result{}, err
		}
	}
	if rows.Len() <= s.Limit {
		return res, nil
	}
	rows.SetLen(s.Limit)
	if res.Next, err = s.position(ctx, idb, rows.Index(s.Limit-1)); err != nil {
		return Result{}, err
	}
	res.Next.Total = res.Total
	return res, nil
}

// segment is one part of a listing read by keyset: a condition and its order.
type segment struct {
	cond  string
	args  []any
	order []string
}

// segments returns the queries that read the listing after p, in order. A nullable
// sort field is read in two parts, its values and then (ascending; before them
// descending) the rows without one, so each part is a range of an index on (tenant,
// column, id) where one exists: a single condition "after p, or NULL" would make the
// database walk the listing from its start.
func (s ListSpec) segments(p Position) ([]segment, error) {
	bad := apperr.Invalid("the cursor does not belong to this listing").WithCode(InvalidCursor)
	cmp := " > "
	if s.Descending {
		cmp = " < "
	}
	col, id, seeking := s.OrderBy.Column, s.IDColumn, p.ID != ""
	if col == "" || s.OrderBy.Unique && s.OrderBy.NotNull {
		if seeking && (col == "") != (p.Value == nil) {
			return nil, bad
		}
		sg := segment{order: s.orderBy()}
		switch {
		case seeking && col == "":
			sg.cond, sg.args = id+cmp+"?", []any{p.ID}
		case seeking:
			v, err := s.OrderBy.parse(*p.Value)
			if err != nil {
				return nil, err
			}
			sg.cond, sg.args = col+cmp+"?", []any{v}
		}
		return []segment{sg}, nil
	}
	values := segment{order: s.orderBy()}
	var conds []string
	if !s.OrderBy.NotNull {
		conds = append(conds, col+" IS NOT NULL")
	}
	if p.Value != nil {
		v, err := s.OrderBy.parse(*p.Value)
		if err != nil {
			return nil, err
		}
		// A row-value comparison, which both planners turn into an index range.
		conds = append(conds, "("+col+", "+id+")"+cmp+"(?, ?)")
		values.args = []any{v, p.ID}
	}
	values.cond = strings.Join(conds, " AND ")
	if s.OrderBy.NotNull {
		if seeking && p.Value == nil {
			return nil, bad
		}
		return []segment{values}, nil
	}
	// Ordered like the values (all NULL, so by id) to match the index's order.
	nulls := segment{cond: col + " IS NULL", order: s.orderBy()}
	inNulls := seeking && p.Value == nil
	if inNulls {
		nulls.cond += " AND " + id + cmp + "?"
		nulls.args = []any{p.ID}
	}
	// Unassigned values sort last ascending and first descending (RFC 7644 §3.4.2.3).
	switch {
	case s.Descending && p.Value != nil:
		return []segment{values}, nil
	case s.Descending:
		return []segment{nulls, values}, nil
	case inNulls:
		return []segment{nulls}, nil
	}
	return []segment{values, nulls}, nil
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
		if err != nil || !inCalendar(t) {
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
