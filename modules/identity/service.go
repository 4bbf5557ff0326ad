package identity

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sort"
	"sync/atomic"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
	"github.com/gatehouse-dev/gatehouse/modules/platform/bus"
	"github.com/gatehouse-dev/gatehouse/modules/platform/cache"
	"github.com/gatehouse-dev/gatehouse/modules/platform/clock"
	"github.com/gatehouse-dev/gatehouse/modules/platform/db"
	"github.com/gatehouse-dev/gatehouse/modules/platform/filter"
	"github.com/gatehouse-dev/gatehouse/modules/platform/filtersql"
	"github.com/gatehouse-dev/gatehouse/modules/platform/ids"
)

// Service is the identity module's API.
type Service struct {
	db    bun.IDB
	clock clock.Clock
	audit *audit.Log
	ended *ended
	// extGen counts extension declarations changed by this process (shared by WithTx
	// copies); see ExtensionsGeneration.
	extGen *atomic.Uint64
}

// New returns the identity service. c holds the session cache entries that ending a
// session (deprovisioning included) purges.
func New(idb bun.IDB, clk clock.Clock, auditLog *audit.Log, c cache.Cache, log *slog.Logger) *Service {
	return &Service{db: idb, clock: clk, audit: auditLog, ended: newEnded(idb, clk, c, log), extGen: new(atomic.Uint64)}
}

// AnnounceEndedSessions makes every ended session known on b (EndedSessionsTopic), so
// live connections close on every replica. Call it before serving.
func (s *Service) AnnounceEndedSessions(b bus.Bus) { s.ended.bus = b }

// WatchEndedSessions keeps this process's view of sessions ended anywhere up to date
// until ctx ends (see ended.go). A server calls it once at start; without it, session
// checks never trust the cache and always ask the database.
func (s *Service) WatchEndedSessions(ctx context.Context) { s.ended.watch(ctx) }

// WithTx returns a copy of the service whose calls run inside tx, so a use case that
// spans modules commits or rolls back as one.
func (s *Service) WithTx(tx bun.Tx) *Service {
	c := *s
	c.db = tx
	return &c
}

func userTarget(u *User) audit.Target {
	return audit.Target{Type: "user", ID: u.ID, Display: u.UserName}
}

func conflictUserName(name string) error {
	return apperr.Conflict("userName %q is already taken in this tenant", name).WithCode("uniqueness")
}

// CreateUser stores a new user. ID, version and timestamps are assigned here.
func (s *Service) CreateUser(ctx context.Context, tenantID string, u User) (User, error) {
	now := s.clock.Now()
	u.ID, u.TenantID, u.Version, u.CreatedAt, u.UpdatedAt = ids.NewAt(now), tenantID, 1, now, now
	if err := u.normalize(); err != nil {
		return User{}, err
	}
	err := db.RunInTx(ctx, s.db, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(&u).Exec(ctx); err != nil {
			if db.IsUniqueViolation(err) {
				return conflictUserName(u.UserName)
			}
			return err
		}
		if err := insertValues(ctx, tx, u.Values); err != nil {
			return err
		}
		if err := s.checkExt(ctx, tx, &u); err != nil {
			return err
		}
		if err := storeExt(ctx, tx, &u, false); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{TenantID: tenantID, Action: "user.created",
			Target: userTarget(&u), Changes: diff(&User{}, &u)})
	})
	if err != nil {
		return User{}, err
	}
	return u, nil
}

func insertValues(ctx context.Context, idb bun.IDB, vs []Value) error {
	if len(vs) == 0 {
		return nil
	}
	_, err := idb.NewInsert().Model(&vs).Exec(ctx)
	return err
}

// GetUser returns the tenant's user with the given id; another tenant's id is not found.
// Its extension values (User.Ext) are not loaded: see GetUserWithExtensions.
func (s *Service) GetUser(ctx context.Context, tenantID, id string) (User, error) {
	return s.getUser(ctx, tenantID, id, false)
}

// GetUserWithExtensions is GetUser with the user's values of the tenant's own extension
// attributes, for the SCIM transport; other readers skip the query.
func (s *Service) GetUserWithExtensions(ctx context.Context, tenantID, id string) (User, error) {
	return s.getUser(ctx, tenantID, id, true)
}

func (s *Service) getUser(ctx context.Context, tenantID, id string, ext bool) (User, error) {
	u, err := getUser(ctx, s.db, tenantID, id, false)
	if err != nil {
		return User{}, err
	}
	if err := loadValues(ctx, s.db, []*User{&u}, ext); err != nil {
		return User{}, err
	}
	return u, nil
}

func errUserNotFound(id string) error {
	return apperr.NotFound("no user with id %q in this tenant", id)
}

func getUser(ctx context.Context, idb bun.IDB, tenantID, id string, forUpdate bool) (User, error) {
	var u User
	q := idb.NewSelect().Model(&u).Where("tenant_id = ? AND id = ?", tenantID, id)
	if forUpdate && db.DialectOf(idb) == db.Postgres {
		// SQLite needs no row lock: its transactions take the write lock at BEGIN.
		q = q.For("UPDATE")
	}
	err := q.Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, errUserNotFound(id)
	}
	return u, err
}

// loadValues loads the users' multi-valued attributes and, with ext, their extension
// values (the GraphQL API does not serve extension attributes, so its pages skip them).
func loadValues(ctx context.Context, idb bun.IDB, users []*User, ext bool) error {
	if len(users) == 0 {
		return nil
	}
	byID := make(map[string]*User, len(users))
	idList := make([]string, len(users))
	for i, u := range users {
		byID[u.ID] = u
		idList[i] = u.ID
		u.Values, u.Ext = nil, nil
	}
	var vs []Value
	err := idb.NewSelect().Model(&vs).Where("user_id IN (?)", bun.In(idList)).
		OrderExpr("user_id, attr, position").Scan(ctx)
	if err != nil {
		return err
	}
	for _, v := range vs {
		u := byID[v.UserID]
		u.Values = append(u.Values, v)
	}
	if !ext {
		return nil
	}
	return loadExt(ctx, idb, byID, idList)
}

// checkExt validates the user's extension values against the tenant's declarations,
// read only when the user (or, on an update, its previous version) has any; it marks
// the writeOnly values of both so audit records do not repeat them.
func (s *Service) checkExt(ctx context.Context, idb bun.IDB, u *User, old ...ExtValue) error {
	if len(u.Ext) == 0 && len(old) == 0 {
		return nil
	}
	exts, err := userExtensions(ctx, idb, u.TenantID)
	if err != nil {
		return err
	}
	markWriteOnly(exts, old)
	return u.normalizeExt(exts)
}

// UpdateUser changes a user under a row lock: it loads the user, lets change edit it,
// and stores the result with a new version. If ifVersion is not 0 and differs from the
// stored version the update is refused (precondition failed). Deactivation and
// reactivation are audited as such.
//
// Deactivation ends every session of the user in the same transaction (rows deleted,
// tombstones written, the count recorded in the audit event) and purges their cache
// entries before UpdateUser returns, so the caller answers only once the person is
// signed out everywhere. Reactivation brings no session back.
func (s *Service) UpdateUser(ctx context.Context, tenantID, id string, ifVersion int64, change func(u *User) error) (User, error) {
	var out User
	var gone []Session
	err := db.RunInTx(ctx, s.db, func(ctx context.Context, tx bun.Tx) error {
		old, err := getUser(ctx, tx, tenantID, id, true)
		if err != nil {
			return err
		}
		if ifVersion != 0 && ifVersion != old.Version {
			return apperr.PreconditionFailed("user %q has changed (version %d, not %d): fetch it again", id, old.Version, ifVersion)
		}
		if err := loadValues(ctx, tx, []*User{&old}, true); err != nil {
			return err
		}
		u := old
		u.Values = append([]Value(nil), old.Values...)
		u.Ext = append([]ExtValue(nil), old.Ext...)
		if err := change(&u); err != nil {
			return err
		}
		// What callers may not change.
		u.ID, u.TenantID, u.CreatedAt, u.Source = old.ID, old.TenantID, old.CreatedAt, old.Source
		if err := u.normalize(); err != nil {
			return err
		}
		if err := s.checkExt(ctx, tx, &u, old.Ext...); err != nil {
			return err
		}
		changes := diff(&old, &u)
		if len(changes) == 0 {
			out = old
			if !old.Active {
				// Says the person is gone as well: not before their sessions are.
				gone, err = recentlyEndedTx(ctx, tx, s.clock.Now(), tenantID, u.ID)
			}
			return err
		}
		u.Version = old.Version + 1
		u.UpdatedAt = s.clock.Now()
		if _, err := tx.NewUpdate().Model(&u).WherePK().Exec(ctx); err != nil {
			if db.IsUniqueViolation(err) {
				return conflictUserName(u.UserName)
			}
			return err
		}
		if _, ok := changes["values"]; ok {
			if _, err := tx.NewDelete().Model((*Value)(nil)).Where("user_id = ?", u.ID).Exec(ctx); err != nil {
				return err
			}
			if err := insertValues(ctx, tx, u.Values); err != nil {
				return err
			}
		}
		if _, ok := changes["extensions"]; ok {
			if err := storeExt(ctx, tx, &u, true); err != nil {
				return err
			}
		}
		action := "user.updated"
		switch {
		case old.Active && !u.Active:
			action = "user.deactivated"
			if gone, err = endTx(ctx, tx, u.UpdatedAt, "s.tenant_id = ? AND s.user_id = ?", tenantID, u.ID); err != nil {
				return err
			}
			changes["sessionsRevoked"] = audit.Change{After: len(gone)}
		case !old.Active && u.Active:
			action = "user.reactivated"
		}
		if !u.Active {
			// Those written just now included.
			if gone, err = recentlyEndedTx(ctx, tx, s.clock.Now(), tenantID, u.ID); err != nil {
				return err
			}
		}
		out = u
		return s.audit.Record(ctx, tx, audit.Event{TenantID: tenantID, Action: action,
			Target: userTarget(&u), Changes: changes})
	})
	if err != nil {
		return User{}, err
	}
	s.ended.purge(ctx, gone)
	return out, nil
}

// DeleteUser removes a user and, through the schema's cascades, what other modules keep
// of them. Their sessions end as on deactivation, before DeleteUser returns. first, when
// set, runs at the start of the deletion's transaction (access takes the user out of its
// groups there, so the groups' versions and events commit with the deletion or not at
// all); the session cache is purged only after the commit.
func (s *Service) DeleteUser(ctx context.Context, tenantID, id string, ifVersion int64, first func(ctx context.Context, tx bun.Tx) error) error {
	var gone []Session
	err := db.RunInTx(ctx, s.db, func(ctx context.Context, tx bun.Tx) error {
		if first != nil {
			if err := first(ctx, tx); err != nil {
				return err
			}
		}
		u, err := getUser(ctx, tx, tenantID, id, true)
		if err != nil {
			return err
		}
		if ifVersion != 0 && ifVersion != u.Version {
			return apperr.PreconditionFailed("user %q has changed (version %d, not %d): fetch it again", id, u.Version, ifVersion)
		}
		// Ended explicitly, not by the cascade, so they leave tombstones.
		ended, err := endTx(ctx, tx, s.clock.Now(), "s.tenant_id = ? AND s.user_id = ?", tenantID, u.ID)
		if err != nil {
			return err
		}
		if gone, err = recentlyEndedTx(ctx, tx, s.clock.Now(), tenantID, u.ID); err != nil {
			return err
		}
		if _, err := tx.NewDelete().Model(&u).WherePK().Exec(ctx); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{TenantID: tenantID, Action: "user.deleted", Target: userTarget(&u),
			Changes: map[string]audit.Change{"sessionsRevoked": {After: len(ended)}}})
	})
	if err != nil {
		return err
	}
	s.ended.purge(ctx, gone)
	return nil
}

// Query selects users of a tenant.
type Query struct {
	Filter filter.Expr // nil: every user
	// SortBy is an attribute path ("" sorts by creation order, which is stable).
	SortBy     *filter.AttrPath
	Descending bool
	// After, when set, pages by keyset from after this position (the zero Position is
	// the first page) and Offset is ignored; see filtersql.ListSpec.
	After  *filtersql.Position
	Offset int // rows to skip
	Limit  int // rows to return; 0 returns only the total
}

// Page is one page of users and the number matching in all.
type Page struct {
	Users []User
	Total int
	Next  *filtersql.Position // keyset paging only: where the next page starts; nil on the last
}

// ListUsers returns the users matching q. Filtering, sorting and paging happen in SQL
// on indexed columns.
func (s *Service) ListUsers(ctx context.Context, tenantID string, q Query) (Page, error) {
	fs := userFilterSchema{tenantID: tenantID}
	if mentionsExtension(q.Filter, q.SortBy) {
		var err error
		if fs.exts, err = userExtensions(ctx, s.db, tenantID); err != nil {
			return Page{}, err
		}
	}
	spec := filtersql.ListSpec{Table: "users AS u", TenantColumn: "u.tenant_id", IDColumn: "u.id", TenantID: tenantID,
		Filter: q.Filter, Schema: fs, Descending: q.Descending, After: q.After, Offset: q.Offset, Limit: q.Limit}
	if q.SortBy != nil {
		col, err := sortColumn(fs, *q.SortBy)
		if err != nil {
			return Page{}, err
		}
		spec.OrderBy = col
	}
	var users []User
	res, err := filtersql.List(ctx, s.db, spec, &users)
	if err != nil {
		return Page{}, err
	}
	page := Page{Total: res.Total, Next: res.Next}
	ptrs := make([]*User, len(users))
	for i := range users {
		ptrs[i] = &users[i]
	}
	if err := loadValues(ctx, s.db, ptrs, true); err != nil {
		return Page{}, err
	}
	page.Users = users
	return page, nil
}

// ExistingUserIDs returns which of ids are users of the tenant (for membership checks
// by other modules).
func (s *Service) ExistingUserIDs(ctx context.Context, tenantID string, idList []string) (map[string]User, error) {
	out := make(map[string]User, len(idList))
	if len(idList) == 0 {
		return out, nil
	}
	var users []User
	err := s.db.NewSelect().Model(&users).Column("id", "user_name", "display_name").
		Where("tenant_id = ? AND id IN (?)", tenantID, bun.In(idList)).Scan(ctx)
	for _, u := range users {
		out[u.ID] = u
	}
	return out, err
}

// diff returns the changed attributes between two versions of a user, for audit.
func diff(old, new *User) map[string]audit.Change {
	changes := map[string]audit.Change{}
	os, ns := old.strings(), new.strings()
	for k, nv := range ns {
		if *os[k] != *nv {
			changes[k] = audit.Change{Before: *os[k], After: *nv}
		}
	}
	if old.Active != new.Active || old.ID == "" {
		changes["active"] = audit.Change{Before: old.Active, After: new.Active}
	}
	if !sameExt(old.Ext, new.Ext) {
		changes["extensions"] = audit.Change{Before: extSummary(old.Ext), After: extSummary(new.Ext)}
	}
	if !sameValues(old.Values, new.Values) {
		changes["values"] = audit.Change{Before: valueSummary(old.Values), After: valueSummary(new.Values)}
	}
	return changes
}

func sameValues(a, b []Value) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		x.ValueKey, y.ValueKey, x.UserID, y.UserID, x.TenantID, y.TenantID = "", "", "", "", "", ""
		if !reflect.DeepEqual(x, y) {
			return false
		}
	}
	return true
}

// valueSummary renders multi-valued attributes compactly for an audit record.
func valueSummary(vs []Value) map[string][]string {
	if len(vs) == 0 {
		return nil
	}
	out := map[string][]string{}
	for _, v := range vs {
		s := v.Value
		if v.Attr == AttrAddresses {
			s = fmt.Sprintf("%s %s %s %s", v.StreetAddress, v.Locality, v.PostalCode, v.Country)
		}
		if v.Attr == AttrX509Certificates || v.Attr == AttrPhotos {
			s = fmt.Sprintf("(%d bytes)", len(v.Value))
		}
		if v.Type != "" {
			s = v.Type + ": " + s
		}
		out[v.Attr] = append(out[v.Attr], s)
	}
	for k := range out {
		sort.Strings(out[k])
	}
	return out
}
