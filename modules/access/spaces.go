package access

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/identity"
	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
	"github.com/gatehouse-dev/gatehouse/modules/platform/db"
	"github.com/gatehouse-dev/gatehouse/modules/platform/ids"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

// SpaceRole is a role on one space: viewer < editor < manager. A space manager may
// change the space and who has access to it.
type SpaceRole string

const (
	SpaceViewer  SpaceRole = "viewer"
	SpaceEditor  SpaceRole = "editor"
	SpaceManager SpaceRole = "manager"
)

// SpaceRoles lists the space roles, lowest first.
var SpaceRoles = []SpaceRole{SpaceViewer, SpaceEditor, SpaceManager}

func (r SpaceRole) rank() int { return slices.Index(SpaceRoles, r) }

// AtLeast reports whether r is at least as strong as floor (a product asks
// "may this person edit?" as role.AtLeast(SpaceEditor)).
func (r SpaceRole) AtLeast(floor SpaceRole) bool {
	return r.rank() >= floor.rank() && floor.rank() >= 0
}

// Principal types of a grant.
const (
	PrincipalUser  = "user"
	PrincipalGroup = "group"
)

// Limits on a space.
const (
	MaxSpaceNameLen        = 200
	MaxSpaceDescriptionLen = 2000
)

// Space is a shared area of the product that people get access to through grants.
type Space struct {
	ID          string
	TenantID    string
	Name        string
	Description string
	Version     int64
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Grant gives a user or a group a role on a space.
type Grant struct {
	ID            string
	TenantID      string
	SpaceID       string
	PrincipalType string // PrincipalUser or PrincipalGroup
	PrincipalID   string
	Role          SpaceRole
	CreatedAt     time.Time
}

// AccessSource is one reason a user has access to a space: a grant to them, or a grant
// to a group they are in (GroupID names the granted group, which the user may be in
// through nested groups).
type AccessSource struct {
	Kind      string // SourceDirect or SourceGroup
	GroupID   string
	GroupName string
	Role      SpaceRole
}

// EffectiveAccess is a user's access to one space: the highest role any source gives,
// and every source.
type EffectiveAccess struct {
	SpaceID string
	Role    SpaceRole
	Sources []AccessSource
}

// EffectiveMember is one user with access to a space.
type EffectiveMember struct {
	UserID  string
	Role    SpaceRole
	Sources []AccessSource
}

type spaceRow struct {
	bun.BaseModel `bun:"table:spaces,alias:s"`

	ID          string    `bun:"id,pk"`
	TenantID    string    `bun:"tenant_id"`
	Name        string    `bun:"name"`
	NameKey     string    `bun:"name_key"`
	Description string    `bun:"description"`
	Version     int64     `bun:"version"`
	CreatedAt   time.Time `bun:"created_at"`
	UpdatedAt   time.Time `bun:"updated_at"`
}

func (r spaceRow) space() Space {
	return Space{ID: r.ID, TenantID: r.TenantID, Name: r.Name, Description: r.Description, Version: r.Version,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
}

type grantRow struct {
	bun.BaseModel `bun:"table:space_grants,alias:sg"`

	ID            string    `bun:"id,pk"`
	TenantID      string    `bun:"tenant_id"`
	SpaceID       string    `bun:"space_id"`
	PrincipalType string    `bun:"principal_type"`
	PrincipalID   string    `bun:"principal_id"`
	UserID        string    `bun:"user_id,nullzero"`
	GroupID       string    `bun:"group_id,nullzero"`
	Role          SpaceRole `bun:"role"`
	CreatedAt     time.Time `bun:"created_at"`
	UpdatedAt     time.Time `bun:"updated_at"`
}

func (r grantRow) grant() Grant {
	return Grant{ID: r.ID, TenantID: r.TenantID, SpaceID: r.SpaceID, PrincipalType: r.PrincipalType,
		PrincipalID: r.PrincipalID, Role: r.Role, CreatedAt: r.CreatedAt}
}

func spaceTarget(r spaceRow) audit.Target {
	return audit.Target{Type: "space", ID: r.ID, Display: r.Name}
}

func errSpaceNotFound(id string) error {
	return apperr.NotFound("no space with id %q in this tenant", id)
}

func conflictSpaceName(name string) error {
	return apperr.Conflict("a space named %q already exists in this tenant", name).WithCode("uniqueness")
}

func normalizeSpaceName(name string) (string, string, error) {
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > MaxSpaceNameLen {
		return "", "", apperr.Invalid("a space name must be 1 to %d characters", MaxSpaceNameLen).WithCode("invalidValue")
	}
	return name, identity.Fold(name), nil
}

func checkDescription(d string) error {
	if utf8.RuneCountInString(d) > MaxSpaceDescriptionLen {
		return apperr.Invalid("a space description must be at most %d characters", MaxSpaceDescriptionLen).WithCode("invalidValue")
	}
	return nil
}

func errNoFeature(f tenancy.Feature, what string) error {
	return apperr.Forbidden("%s needs the %s feature, which this company's plan does not include", what, f).WithCode("FEATURE_NOT_IN_PLAN")
}

// CreateSpace creates a space. Its name is 1-200 characters, unique in the tenant
// ignoring case.
func (s *Service) CreateSpace(ctx context.Context, v Viewer, name, description string) (Space, error) {
	if err := v.require(PermManageSpaces, "create spaces"); err != nil {
		return Space{}, err
	}
	ctx = actorCtx(ctx, v)
	name, key, err := normalizeSpaceName(name)
	if err != nil {
		return Space{}, err
	}
	description = strings.TrimSpace(description)
	if err := checkDescription(description); err != nil {
		return Space{}, err
	}
	now := s.clock.Now()
	row := spaceRow{ID: ids.NewAt(now), TenantID: v.TenantID, Name: name, NameKey: key, Description: description,
		Version: 1, CreatedAt: now, UpdatedAt: now}
	err = db.RunInTx(ctx, s.db, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(&row).Exec(ctx); err != nil {
			if db.IsUniqueViolation(err) {
				return conflictSpaceName(name)
			}
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{TenantID: v.TenantID, Action: "space.created", Target: spaceTarget(row),
			Changes: map[string]audit.Change{"name": {After: name}, "description": {After: description}}})
	})
	if err != nil {
		return Space{}, err
	}
	return row.space(), nil
}

// visibleSpace loads a space the viewer may see, with the viewer's own effective role
// on it ("" for a manage_spaces holder, who may do anything to it). A space the viewer may not see
// is not found, exactly like one that does not exist.
func (s *Service) visibleSpace(ctx context.Context, idb bun.IDB, v Viewer, id string, forUpdate bool) (spaceRow, SpaceRole, error) {
	var row spaceRow
	q := idb.NewSelect().Model(&row).Where("tenant_id = ? AND id = ?", v.TenantID, id)
	if forUpdate && db.DialectOf(idb) == db.Postgres {
		q = q.For("UPDATE")
	}
	err := q.Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return spaceRow{}, "", errSpaceNotFound(id)
	}
	if err != nil {
		return spaceRow{}, "", err
	}
	if v.Can(PermManageSpaces) {
		return row, "", nil
	}
	var role SpaceRole
	if v.UserID != "" {
		if role, _, err = spaceAccess(ctx, idb, v.TenantID, v.UserID, id); err != nil {
			return spaceRow{}, "", err
		}
	}
	if role == "" {
		return spaceRow{}, "", errSpaceNotFound(id)
	}
	return row, role, nil
}

// mayManage checks that the viewer may change a space it can see, or its grants.
func (v Viewer) mayManage(role SpaceRole, to string) error {
	if v.Can(PermManageSpaces) || role == SpaceManager {
		return nil
	}
	return forbidden("you need the manage_spaces permission or the manager role on this space to %s", to)
}

// UpdateSpace renames a space or changes its description (nil leaves a field alone).
// Holders of manage_spaces and managers of the space may.
func (s *Service) UpdateSpace(ctx context.Context, v Viewer, id string, name, description *string) (Space, error) {
	if err := v.signedIn(); err != nil {
		return Space{}, err
	}
	ctx = actorCtx(ctx, v)
	var out Space
	err := db.RunInTx(ctx, s.db, func(ctx context.Context, tx bun.Tx) error {
		old, role, err := s.visibleSpace(ctx, tx, v, id, true)
		if err != nil {
			return err
		}
		if err := v.mayManage(role, "change it"); err != nil {
			return err
		}
		row := old
		changes := map[string]audit.Change{}
		if name != nil {
			if row.Name, row.NameKey, err = normalizeSpaceName(*name); err != nil {
				return err
			}
			if row.Name != old.Name {
				changes["name"] = audit.Change{Before: old.Name, After: row.Name}
			}
		}
		if description != nil {
			row.Description = strings.TrimSpace(*description)
			if err := checkDescription(row.Description); err != nil {
				return err
			}
			if row.Description != old.Description {
				changes["description"] = audit.Change{Before: old.Description, After: row.Description}
			}
		}
		if len(changes) == 0 {
			out = old.space()
			return nil
		}
		row.Version, row.UpdatedAt = old.Version+1, s.clock.Now()
		if _, err := tx.NewUpdate().Model(&row).WherePK().Exec(ctx); err != nil {
			if db.IsUniqueViolation(err) {
				return conflictSpaceName(row.Name)
			}
			return err
		}
		out = row.space()
		return s.audit.Record(ctx, tx, audit.Event{TenantID: v.TenantID, Action: "space.updated", Target: spaceTarget(row), Changes: changes})
	})
	return out, err
}

// DeleteSpace deletes a space and its grants. It needs manage_spaces.
func (s *Service) DeleteSpace(ctx context.Context, v Viewer, id string) error {
	if err := v.signedIn(); err != nil {
		return err
	}
	ctx = actorCtx(ctx, v)
	return db.RunInTx(ctx, s.db, func(ctx context.Context, tx bun.Tx) error {
		row, _, err := s.visibleSpace(ctx, tx, v, id, true)
		if err != nil {
			return err
		}
		if !v.Can(PermManageSpaces) {
			return forbidden("you need the manage_spaces permission to delete a space")
		}
		n, err := tx.NewSelect().Model((*grantRow)(nil)).Where("space_id = ?", row.ID).Count(ctx)
		if err != nil {
			return err
		}
		if _, err := tx.NewDelete().Model(&row).WherePK().Exec(ctx); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{TenantID: v.TenantID, Action: "space.deleted", Target: spaceTarget(row),
			Changes: map[string]audit.Change{"name": {Before: row.Name}, "grantsRemoved": {After: n}}})
	})
}

// Space returns a space the viewer may see: holders of manage_spaces see every space,
// anyone else the spaces they have access to. Any other space is not found.
func (s *Service) Space(ctx context.Context, v Viewer, id string) (Space, error) {
	if err := v.signedIn(); err != nil {
		return Space{}, err
	}
	row, _, err := s.visibleSpace(ctx, s.db, v, id, false)
	if err != nil {
		return Space{}, err
	}
	return row.space(), nil
}

// ListSpaces returns a page of the spaces the viewer may see, ordered by id, after the
// given id (keyset paging; "" starts at the beginning). first is clamped to 1..100.
func (s *Service) ListSpaces(ctx context.Context, v Viewer, after string, first int) ([]Space, bool, error) {
	if err := v.signedIn(); err != nil {
		return nil, false, err
	}
	first = min(max(first, 1), 100)
	var rows []spaceRow
	q := s.db.NewSelect().Model(&rows).Where("s.tenant_id = ? AND s.id > ?", v.TenantID, after)
	if err := s.visibleOnly(q, v, "s.id").OrderExpr("s.id").Limit(int64(first + 1)).Scan(ctx); err != nil {
		return nil, false, err
	}
	hasNext := len(rows) > first
	if hasNext {
		rows = rows[:first]
	}
	out := make([]Space, len(rows))
	for i, r := range rows {
		out[i] = r.space()
	}
	return out, hasNext, nil
}

// viewerSpaces is the query of the ids of the spaces a viewer without manage_spaces may
// see: those granted to them or to a group they are in (nested groups included).
func (s *Service) viewerSpaces(v Viewer) *bun.RawQuery {
	return s.db.NewRaw(userGroupsCTE+`
		SELECT g.space_id FROM space_grants AS g WHERE g.tenant_id = ? AND g.user_id = ?
		UNION
		SELECT g.space_id FROM ug JOIN space_grants AS g ON g.group_id = ug.group_id`,
		v.TenantID, bun.In([]string{v.UserID}), v.TenantID, v.UserID)
}

// visibleOnly restricts q to rows whose column col names a space v may see: every space
// with manage_spaces, else the viewer's own (viewerSpaces). It answers in the same
// statement, so a batch read stays one query.
func (s *Service) visibleOnly(q *bun.SelectQuery, v Viewer, col string) *bun.SelectQuery {
	switch {
	case v.Can(PermManageSpaces):
		return q
	case v.UserID == "":
		return q.Where("1 = 0")
	}
	return q.Where("? IN (?)", bun.Ident(col), s.viewerSpaces(v))
}

// SpacesByIDs returns the spaces with the given ids that the viewer may see (Space's
// rule), in one query, for batch loading: a space reached through another object (a
// grant, someone's access) shows only when the viewer could open it by id.
func (s *Service) SpacesByIDs(ctx context.Context, v Viewer, idList []string) (map[string]Space, error) {
	if err := v.signedIn(); err != nil {
		return nil, err
	}
	out := map[string]Space{}
	if len(idList) == 0 {
		return out, nil
	}
	var rows []spaceRow
	q := s.db.NewSelect().Model(&rows).Where("s.tenant_id = ? AND s.id IN (?)", v.TenantID, bun.In(dedupe(idList)))
	if err := s.visibleOnly(q, v, "s.id").Scan(ctx); err != nil {
		return nil, err
	}
	for _, r := range rows {
		out[r.ID] = r.space()
	}
	return out, nil
}

func validGrantInput(principalType string, role SpaceRole) error {
	if principalType != PrincipalUser && principalType != PrincipalGroup {
		return apperr.Invalid("principal type %q is not valid: use user or group", principalType).WithCode("invalidValue")
	}
	if role.rank() < 0 {
		return apperr.Invalid("space role %q is not valid: use viewer, editor or manager", role).WithCode("invalidValue")
	}
	return nil
}

// principal checks that a grant's principal exists in the tenant and returns its name.
func (s *Service) principal(ctx context.Context, tx bun.Tx, tenantID, principalType, id string) (string, error) {
	if principalType == PrincipalGroup {
		g, err := getGroup(ctx, tx, tenantID, id, false)
		return g.DisplayName, err
	}
	users, err := s.identity.WithTx(tx).ExistingUserIDs(ctx, tenantID, []string{id})
	if err != nil {
		return "", err
	}
	u, ok := users[id]
	if !ok {
		return "", errUserNotFound(id)
	}
	return u.UserName, nil
}

func grantChanges(principalType, principalID, name string, before, after SpaceRole) map[string]audit.Change {
	return map[string]audit.Change{
		"principalType": {After: principalType}, "principalId": {After: principalID}, "principal": {After: name},
		"role": {Before: string(before), After: string(after)},
	}
}

// GrantAccess gives a user or a group a role on a space, or changes the role of an
// existing grant. Holders of manage_spaces and managers of the space may. The principal
// must exist in the tenant; granting to a group needs the user_groups plan feature.
func (s *Service) GrantAccess(ctx context.Context, v Viewer, spaceID, principalType, principalID string, role SpaceRole) (Grant, error) {
	if err := v.signedIn(); err != nil {
		return Grant{}, err
	}
	ctx = actorCtx(ctx, v)
	if err := validGrantInput(principalType, role); err != nil {
		return Grant{}, err
	}
	var out Grant
	err := db.RunInTx(ctx, s.db, func(ctx context.Context, tx bun.Tx) error {
		sp, mine, err := s.visibleSpace(ctx, tx, v, spaceID, true)
		if err != nil {
			return err
		}
		if err := v.mayManage(mine, "give access to it"); err != nil {
			return err
		}
		if principalType == PrincipalGroup {
			t, err := s.tenant(ctx, v.TenantID)
			if err != nil {
				return err
			}
			if !t.Has(tenancy.FeatureUserGroups) {
				return errNoFeature(tenancy.FeatureUserGroups, "giving a group access to a space")
			}
		}
		name, err := s.principal(ctx, tx, v.TenantID, principalType, principalID)
		if err != nil {
			return err
		}
		var row grantRow
		err = tx.NewSelect().Model(&row).Where("space_id = ? AND principal_id = ?", sp.ID, principalID).Scan(ctx)
		now := s.clock.Now()
		switch {
		case errors.Is(err, sql.ErrNoRows):
			row = grantRow{ID: ids.NewAt(now), TenantID: v.TenantID, SpaceID: sp.ID, PrincipalType: principalType,
				PrincipalID: principalID, Role: role, CreatedAt: now, UpdatedAt: now}
			if principalType == PrincipalUser {
				row.UserID = principalID
			} else {
				row.GroupID = principalID
			}
			if _, err := tx.NewInsert().Model(&row).Exec(ctx); err != nil {
				return err
			}
			out = row.grant()
			return s.audit.Record(ctx, tx, audit.Event{TenantID: v.TenantID, Action: "access.granted", Target: spaceTarget(sp),
				Changes: grantChanges(principalType, principalID, name, "", role)})
		case err != nil:
			return err
		}
		before := row.Role
		if before == role {
			out = row.grant()
			return nil
		}
		row.Role, row.UpdatedAt = role, now
		if _, err := tx.NewUpdate().Model(&row).Column("role", "updated_at").WherePK().Exec(ctx); err != nil {
			return err
		}
		out = row.grant()
		return s.audit.Record(ctx, tx, audit.Event{TenantID: v.TenantID, Action: "access.granted", Target: spaceTarget(sp),
			Changes: grantChanges(principalType, principalID, name, before, role)})
	})
	return out, err
}

// RevokeAccess removes a user's or a group's grant on a space; revoking a grant that
// does not exist changes nothing. Holders of manage_spaces and managers of the space may.
func (s *Service) RevokeAccess(ctx context.Context, v Viewer, spaceID, principalType, principalID string) error {
	if err := v.signedIn(); err != nil {
		return err
	}
	ctx = actorCtx(ctx, v)
	if err := validGrantInput(principalType, SpaceViewer); err != nil {
		return err
	}
	return db.RunInTx(ctx, s.db, func(ctx context.Context, tx bun.Tx) error {
		sp, mine, err := s.visibleSpace(ctx, tx, v, spaceID, true)
		if err != nil {
			return err
		}
		if err := v.mayManage(mine, "take access to it away"); err != nil {
			return err
		}
		name, err := s.principal(ctx, tx, v.TenantID, principalType, principalID)
		if err != nil {
			return err
		}
		var gone []grantRow
		if err := tx.NewDelete().Model(&gone).
			Where("space_id = ? AND principal_type = ? AND principal_id = ?", sp.ID, principalType, principalID).
			Returning("*").Scan(ctx); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if len(gone) == 0 {
			return nil
		}
		return s.audit.Record(ctx, tx, audit.Event{TenantID: v.TenantID, Action: "access.revoked", Target: spaceTarget(sp),
			Changes: grantChanges(principalType, principalID, name, gone[0].Role, "")})
	})
}

func (s *Service) grantsWhere(ctx context.Context, v Viewer, column string, idList []string, key func(grantRow) string) (map[string][]Grant, error) {
	if err := v.signedIn(); err != nil {
		return nil, err
	}
	out := map[string][]Grant{}
	if len(idList) == 0 {
		return out, nil
	}
	var rows []grantRow
	q := s.db.NewSelect().Model(&rows).Where("sg.tenant_id = ? AND ? IN (?)", v.TenantID, bun.Ident("sg."+column), bun.In(dedupe(idList))).
		OrderExpr("?, sg.id", bun.Ident("sg."+column))
	if err := s.visibleOnly(q, v, "sg.space_id").Scan(ctx); err != nil {
		return nil, err
	}
	for _, r := range rows {
		out[key(r)] = append(out[key(r)], r.grant())
	}
	return out, nil
}

// GrantsOfSpaces returns the grants of each space the viewer may see, in one query (for
// dataloaders).
func (s *Service) GrantsOfSpaces(ctx context.Context, v Viewer, spaceIDs []string) (map[string][]Grant, error) {
	return s.grantsWhere(ctx, v, "space_id", spaceIDs, func(r grantRow) string { return r.SpaceID })
}

// GrantsOfGroups returns the grants given to each group (not to the groups it is in) on
// spaces the viewer may see, in one query (for dataloaders). It needs the user_groups
// feature.
func (s *Service) GrantsOfGroups(ctx context.Context, v Viewer, groupIDs []string) (map[string][]Grant, error) {
	if err := s.requireGroups(ctx, v); err != nil {
		return nil, err
	}
	return s.grantsWhere(ctx, v, "group_id", groupIDs, func(r grantRow) string { return r.GroupID })
}

type accessRow struct {
	UserID    string    `bun:"user_id"`
	SpaceID   string    `bun:"space_id"`
	Role      SpaceRole `bun:"role"`
	Kind      string    `bun:"kind"`
	GroupID   string    `bun:"group_id"`
	GroupName string    `bun:"group_name"`
}

func (r accessRow) source() AccessSource {
	return AccessSource{Kind: r.Kind, GroupID: r.GroupID, GroupName: r.GroupName, Role: r.Role}
}

// fold merges one more source into an access: the highest role wins, every distinct
// source is listed — direct first, then by group name (sorted here rather than in SQL,
// so both dialects order names alike).
func fold(role *SpaceRole, sources *[]AccessSource, src AccessSource) {
	if src.Role.rank() > role.rank() {
		*role = src.Role
	}
	if slices.Contains(*sources, src) {
		return
	}
	*sources = append(*sources, src)
	slices.SortFunc(*sources, func(a, b AccessSource) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(identity.Fold(a.GroupName), identity.Fold(b.GroupName)),
			cmp.Compare(a.GroupID, b.GroupID))
	})
}

// EffectiveSpaces returns each user's effective access: their direct grants and the
// grants to every group they are in (nested groups included), the highest role winning
// per space, with every source listed. Only spaces the viewer may see are listed: a
// viewer without manage_spaces learns of a colleague's access only to spaces they share.
// It runs one query however many users it is given.
func (s *Service) EffectiveSpaces(ctx context.Context, v Viewer, userIDs []string) (map[string][]EffectiveAccess, error) {
	if err := v.signedIn(); err != nil {
		return nil, err
	}
	if v.Can(PermManageSpaces) {
		return s.effectiveSpaces(ctx, v.TenantID, userIDs)
	}
	// The viewer's own access comes in the same query and bounds what is shown.
	all, err := s.effectiveSpaces(ctx, v.TenantID, append(slices.Clone(userIDs), v.UserID))
	if err != nil {
		return nil, err
	}
	mine := map[string]bool{}
	for _, a := range all[v.UserID] {
		mine[a.SpaceID] = true
	}
	out := map[string][]EffectiveAccess{}
	for _, id := range userIDs {
		for _, a := range all[id] {
			if mine[a.SpaceID] {
				out[id] = append(out[id], a)
			}
		}
	}
	return out, nil
}

func (s *Service) effectiveSpaces(ctx context.Context, tenantID string, userIDs []string) (map[string][]EffectiveAccess, error) {
	out := map[string][]EffectiveAccess{}
	userIDs = dedupe(userIDs)
	if len(userIDs) == 0 {
		return out, nil
	}
	var rows []accessRow
	err := s.db.NewRaw(userGroupsCTE+`
		SELECT g.user_id, g.space_id, g.role, 'direct' AS kind, '' AS group_id, '' AS group_name
		FROM space_grants AS g WHERE g.tenant_id = ? AND g.user_id IN (?)
		UNION ALL
		SELECT ug.user_id, g.space_id, g.role, 'group', gr.id, gr.display_name
		FROM ug JOIN space_grants AS g ON g.group_id = ug.group_id
		JOIN groups AS gr ON gr.id = ug.group_id
		ORDER BY user_id, space_id`,
		tenantID, bun.In(userIDs), tenantID, bun.In(userIDs)).Scan(ctx, &rows)
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		list := out[r.UserID]
		if n := len(list); n == 0 || list[n-1].SpaceID != r.SpaceID {
			list = append(list, EffectiveAccess{SpaceID: r.SpaceID})
		}
		a := &list[len(list)-1]
		fold(&a.Role, &a.Sources, r.source())
		out[r.UserID] = list
	}
	return out, nil
}

// EffectiveMembers returns a page of everyone with access to a space the viewer may
// see: users granted directly and the members of every granted group (nested groups
// included), each with the highest role and every source. The page holds up to first
// people after the user id after, in user id order, and more says whether others follow.
//
// A page costs what its size does, not what the space's membership does: the groups
// that give access are listed first (grants and the groups inside them, a short list),
// then the page is taken from one LIMITed index seek per source, then the sources of the
// people on it are read.
func (s *Service) EffectiveMembers(ctx context.Context, v Viewer, spaceID, after string, first int) (members []EffectiveMember, more bool, err error) {
	if err := v.signedIn(); err != nil {
		return nil, false, err
	}
	sp, _, err := s.visibleSpace(ctx, s.db, v, spaceID, false)
	if err != nil {
		return nil, false, err
	}
	first = min(max(first, 1), MaxPageSize)
	var groups []string
	err = s.db.NewRaw(`WITH RECURSIVE sub(group_id) AS (
			SELECT g.group_id FROM space_grants AS g WHERE g.space_id = ? AND g.group_id IS NOT NULL
			UNION
			SELECT m.member_group_id FROM sub JOIN group_members AS m ON m.group_id = sub.group_id
			WHERE m.member_group_id IS NOT NULL
		)
		SELECT group_id FROM sub`, sp.ID).Scan(ctx, &groups)
	if err != nil {
		return nil, false, err
	}
	ids, err := s.firstMembers(ctx, v.TenantID, sp.ID, groups, after, first+1)
	if err != nil {
		return nil, false, err
	}
	if more = len(ids) > first; more {
		ids = ids[:first]
	}
	members = []EffectiveMember{}
	if len(ids) == 0 {
		return members, false, nil
	}
	var rows []accessRow
	err = s.db.NewRaw(`WITH RECURSIVE sub(root_id, group_id) AS (
			SELECT g.group_id, g.group_id FROM space_grants AS g WHERE g.space_id = ? AND g.group_id IS NOT NULL
			UNION
			SELECT sub.root_id, m.member_group_id FROM sub JOIN group_members AS m ON m.group_id = sub.group_id
			WHERE m.member_group_id IS NOT NULL
		)
		SELECT g.user_id, g.space_id, g.role, 'direct' AS kind, '' AS group_id, '' AS group_name
		FROM space_grants AS g WHERE g.space_id = ? AND g.user_id IN (?)
		UNION ALL
		SELECT m.user_id, g.space_id, g.role, 'group', gr.id, gr.display_name
		FROM sub JOIN space_grants AS g ON g.space_id = ? AND g.group_id = sub.root_id
		JOIN group_members AS m ON m.group_id = sub.group_id AND m.user_id IN (?)
		JOIN groups AS gr ON gr.id = sub.root_id
		ORDER BY user_id`, sp.ID, sp.ID, bun.In(ids), sp.ID, bun.In(ids)).Scan(ctx, &rows)
	if err != nil {
		return nil, false, err
	}
	for _, r := range rows {
		if n := len(members); n == 0 || members[n-1].UserID != r.UserID {
			members = append(members, EffectiveMember{UserID: r.UserID})
		}
		m := &members[len(members)-1]
		fold(&m.Role, &m.Sources, r.source())
	}
	return members, more, nil
}

// seeksPerStatement bounds the UNION ALL of one statement (SQLite allows 500 terms).
const seeksPerStatement = 200

// firstMembers returns the n smallest distinct ids after after among the users granted
// space directly and the user members of groups, reading at most n from each.
func (s *Service) firstMembers(ctx context.Context, tenantID, spaceID string, groups []string, after string, n int) ([]string, error) {
	parts := []string{`SELECT * FROM (SELECT principal_id AS user_id FROM space_grants
		WHERE tenant_id = ? AND space_id = ? AND principal_type = 'user' AND principal_id > ? ORDER BY principal_id LIMIT ?) AS d`}
	args := []any{tenantID, spaceID, after, n}
	seen := map[string]bool{}
	var ids []string
	flush := func() error {
		var got []string
		if err := s.db.NewRaw(strings.Join(parts, " UNION ALL "), args...).Scan(ctx, &got); err != nil {
			return err
		}
		for _, id := range got {
			if !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
		parts, args = parts[:0], args[:0]
		return nil
	}
	for i, g := range groups {
		parts = append(parts, `SELECT * FROM (SELECT member_id AS user_id FROM group_members
			WHERE tenant_id = ? AND group_id = ? AND member_type = ? AND member_id > ? ORDER BY member_id LIMIT ?) AS p`+strconv.Itoa(i))
		args = append(args, tenantID, g, MemberUser, after, n)
		if len(parts) == seeksPerStatement {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	if len(parts) > 0 {
		if err := flush(); err != nil {
			return nil, err
		}
	}
	slices.Sort(ids)
	return ids[:min(len(ids), n)], nil
}

// SpaceAccess answers the per-request question "may this user open this space, and as
// what?": the highest role of the user's direct grant and of the grants to every group
// they are in. It reads the database every time (one query, no cache), so taking someone
// out of a group takes their access away on the very next call. It says nothing about
// whether the user is active: a deactivated user has no session to ask with.
func (s *Service) SpaceAccess(ctx context.Context, tenantID, userID, spaceID string) (SpaceRole, bool, error) {
	return spaceAccess(ctx, s.db, tenantID, userID, spaceID)
}

func spaceAccess(ctx context.Context, idb bun.IDB, tenantID, userID, spaceID string) (SpaceRole, bool, error) {
	var roles []SpaceRole
	err := idb.NewRaw(userGroupsCTE+`
		SELECT g.role FROM space_grants AS g
		WHERE g.tenant_id = ? AND g.space_id = ?
		AND (g.user_id = ? OR g.group_id IN (SELECT ug.group_id FROM ug))`,
		tenantID, bun.In([]string{userID}), tenantID, spaceID, userID).Scan(ctx, &roles)
	if err != nil {
		return "", false, err
	}
	var best SpaceRole
	for _, r := range roles {
		if r.rank() > best.rank() {
			best = r
		}
	}
	return best, best != "", nil
}
