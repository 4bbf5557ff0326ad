// Package access owns groups (the SCIM Group resource) and their membership, company
// roles and permissions, spaces and grants, and the rules for managing people from the
// app. Membership is one row per member, so a change costs O(members changed) however
// large the group; membership is transitive (a group may be a member of a group), and
// everything derived from it — roles through group mappings, space access through group
// grants — is computed from the rows at read time, so a membership change takes effect
// on the very next check.
//
// Every exported function that acts for a signed-in person takes a Viewer and checks it
// here; ids of another tenant are not found.
package access

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/schema"

	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/identity"
	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
	"github.com/gatehouse-dev/gatehouse/modules/platform/clock"
	"github.com/gatehouse-dev/gatehouse/modules/platform/db"
	"github.com/gatehouse-dev/gatehouse/modules/platform/ids"
)

// Member types.
const (
	MemberUser  = "User"
	MemberGroup = "Group"
)

// MaxDisplayNameLen bounds a group's name.
const MaxDisplayNameLen = 512

// Group is a set of users (and groups) in a tenant.
type Group struct {
	bun.BaseModel `bun:"table:groups,alias:g"`

	ID             string          `bun:"id,pk"`
	TenantID       string          `bun:"tenant_id"`
	DisplayName    string          `bun:"display_name"`
	DisplayNameKey string          `bun:"display_name_key"`
	ExternalID     string          `bun:"external_id,nullzero"`
	Source         identity.Source `bun:"source"`
	Version        int64           `bun:"version"`
	CreatedAt      time.Time       `bun:"created_at"`
	UpdatedAt      time.Time       `bun:"updated_at"`
}

// Member is one member of a group as read back.
type Member struct {
	ID      string
	Type    string
	Display string
}

type membership struct {
	bun.BaseModel `bun:"table:group_members"`

	GroupID       string    `bun:"group_id,pk"`
	MemberID      string    `bun:"member_id,pk"`
	TenantID      string    `bun:"tenant_id"`
	MemberType    string    `bun:"member_type"`
	UserID        string    `bun:"user_id,nullzero"`
	MemberGroupID string    `bun:"member_group_id,nullzero"`
	CreatedAt     time.Time `bun:"created_at"`
}

// MemberChange is a change to a group's membership, by member id.
type MemberChange struct {
	Add []string
	// Remove lists members to drop; removing a non-member is not an error.
	Remove []string
	// RemoveAll drops every member before Add is applied (a full replacement).
	RemoveAll bool
}

func (c MemberChange) empty() bool { return len(c.Add) == 0 && len(c.Remove) == 0 && !c.RemoveAll }

// Service is the access module's API.
type Service struct {
	db       bun.IDB
	clock    clock.Clock
	audit    *audit.Log
	identity *identity.Service
	tenants  Tenants
}

// Option configures the access service.
type Option func(*Service)

// WithTenancy gives the service the tenant facts it needs for managing people from the
// app and for group grants: provisioning mode, plan features and SCIM token names.
// Without it those calls fail with an internal error.
func WithTenancy(t Tenants) Option { return func(s *Service) { s.tenants = t } }

// New returns the access service; it asks identity which users exist.
func New(idb bun.IDB, clk clock.Clock, log *audit.Log, id *identity.Service, opts ...Option) *Service {
	s := &Service{db: idb, clock: clk, audit: log, identity: id}
	for _, o := range opts {
		o(s)
	}
	return s
}

// withTx returns a copy of the service whose calls run inside tx, so a rule checked
// after a change (an owner must remain) rolls the change back.
func (s *Service) withTx(tx bun.Tx) *Service {
	c := *s
	c.db = tx
	c.identity = s.identity.WithTx(tx)
	return &c
}

func groupTarget(g *Group) audit.Target {
	return audit.Target{Type: "group", ID: g.ID, Display: g.DisplayName}
}

func (g *Group) normalize() error {
	g.DisplayName = strings.TrimSpace(g.DisplayName)
	if g.DisplayName == "" {
		return apperr.Invalid("displayName is required").WithCode("invalidValue")
	}
	if utf8.RuneCountInString(g.DisplayName) > MaxDisplayNameLen || len(g.ExternalID) > identity.MaxStringLen {
		return apperr.Invalid("displayName or externalId is too long").WithCode("invalidValue")
	}
	g.DisplayNameKey = identity.Fold(g.DisplayName)
	if g.Source == "" {
		g.Source = identity.SourceSCIM
	}
	return nil
}

func conflictName(name string) error {
	return apperr.Conflict("a group named %q already exists in this tenant", name).WithCode("uniqueness")
}

// CreateGroup stores a new group with its initial members.
func (s *Service) CreateGroup(ctx context.Context, tenantID string, g Group, members []string) (Group, error) {
	now := s.clock.Now()
	g.ID, g.TenantID, g.Version, g.CreatedAt, g.UpdatedAt = ids.NewAt(now), tenantID, 1, now, now
	if err := g.normalize(); err != nil {
		return Group{}, err
	}
	err := db.RunInTx(ctx, s.db, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(&g).Exec(ctx); err != nil {
			if db.IsUniqueViolation(err) {
				return conflictName(g.DisplayName)
			}
			return err
		}
		if err := s.audit.Record(ctx, tx, audit.Event{TenantID: tenantID, Action: "group.created", Target: groupTarget(&g),
			Changes: map[string]audit.Change{"displayName": {After: g.DisplayName}, "externalId": {After: g.ExternalID}}}); err != nil {
			return err
		}
		_, err := s.applyMembers(ctx, tx, &g, MemberChange{Add: members})
		return err
	})
	if err != nil {
		return Group{}, err
	}
	return g, nil
}

func errGroupNotFound(id string) error {
	return apperr.NotFound("no group with id %q in this tenant", id)
}

func getGroup(ctx context.Context, idb bun.IDB, tenantID, id string, forUpdate bool) (Group, error) {
	var g Group
	q := idb.NewSelect().Model(&g).Where("tenant_id = ? AND id = ?", tenantID, id)
	if forUpdate && db.DialectOf(idb) == db.Postgres {
		q = q.For("UPDATE")
	}
	err := q.Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return Group{}, errGroupNotFound(id)
	}
	return g, err
}

// GetGroup returns the tenant's group with the given id.
func (s *Service) GetGroup(ctx context.Context, tenantID, id string) (Group, error) {
	return getGroup(ctx, s.db, tenantID, id, false)
}

// FindGroup returns the tenant's group with the given id or, failing that, the one with
// that display name (ignoring case), for operators who know groups by name.
func (s *Service) FindGroup(ctx context.Context, tenantID, idOrName string) (Group, error) {
	g, err := getGroup(ctx, s.db, tenantID, idOrName, false)
	if !apperr.Is(err, apperr.KindNotFound) {
		return g, err
	}
	err = s.db.NewSelect().Model(&g).
		Where("tenant_id = ? AND display_name_key = ?", tenantID, identity.Fold(strings.TrimSpace(idOrName))).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return Group{}, apperr.NotFound("no group with id or name %q in this tenant", idOrName)
	}
	return g, err
}

// UpdateGroup changes a group in one transaction under a row lock: change edits its
// attributes and returns the membership change to apply; the version is bumped once.
// ifVersion != 0 must match the stored version.
func (s *Service) UpdateGroup(ctx context.Context, tenantID, id string, ifVersion int64, change func(*Group) (MemberChange, error)) (Group, error) {
	var out Group
	err := db.RunInTx(ctx, s.db, func(ctx context.Context, tx bun.Tx) error {
		old, err := getGroup(ctx, tx, tenantID, id, true)
		if err != nil {
			return err
		}
		if ifVersion != 0 && ifVersion != old.Version {
			return apperr.PreconditionFailed("group %q has changed (version %d, not %d): fetch it again", id, old.Version, ifVersion)
		}
		g := old
		members, err := change(&g)
		if err != nil {
			return err
		}
		g.ID, g.TenantID, g.CreatedAt, g.Source, g.Version = old.ID, old.TenantID, old.CreatedAt, old.Source, old.Version
		if err := g.normalize(); err != nil {
			return err
		}
		attrsChanged := g.DisplayName != old.DisplayName || g.ExternalID != old.ExternalID
		if attrsChanged {
			changes := map[string]audit.Change{}
			action := "group.updated"
			if g.DisplayName != old.DisplayName {
				changes["displayName"] = audit.Change{Before: old.DisplayName, After: g.DisplayName}
				action = "group.renamed"
			}
			if g.ExternalID != old.ExternalID {
				changes["externalId"] = audit.Change{Before: old.ExternalID, After: g.ExternalID}
			}
			if err := s.audit.Record(ctx, tx, audit.Event{TenantID: tenantID, Action: action, Target: groupTarget(&g), Changes: changes}); err != nil {
				return err
			}
		}
		membersChanged, err := s.applyMembers(ctx, tx, &g, members)
		if err != nil {
			return err
		}
		if !attrsChanged && !membersChanged {
			out = old
			return nil
		}
		g.Version = old.Version + 1
		g.UpdatedAt = s.clock.Now()
		if _, err := tx.NewUpdate().Model(&g).WherePK().Exec(ctx); err != nil {
			if db.IsUniqueViolation(err) {
				return conflictName(g.DisplayName)
			}
			return err
		}
		out = g
		return nil
	})
	return out, err
}

// applyMembers writes a membership change and audits it. It touches only the rows that
// change: inserts skip existing members, deletes skip non-members, and only the users
// who joined or left get a new version.
func (s *Service) applyMembers(ctx context.Context, tx bun.Tx, g *Group, c MemberChange) (bool, error) {
	if c.empty() {
		return false, nil
	}
	add := dedupe(c.Add)
	remove := dedupe(c.Remove)
	if c.RemoveAll {
		// A full replacement: keep members that stay, so only differences are written.
		var current []string
		if err := tx.NewSelect().Model((*membership)(nil)).Column("member_id").
			Where("group_id = ?", g.ID).Scan(ctx, &current); err != nil {
			return false, err
		}
		keep := map[string]bool{}
		for _, id := range add {
			keep[id] = true
		}
		remove = remove[:0]
		for _, id := range current {
			if !keep[id] {
				remove = append(remove, id)
			}
		}
	}
	var removed []string
	if len(remove) > 0 {
		if err := tx.NewDelete().Model((*membership)(nil)).
			Where("group_id = ? AND member_id IN (?)", g.ID, bun.In(remove)).
			Returning("member_id").Scan(ctx, &removed); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return false, err
		}
	}
	var added []string
	if len(add) > 0 {
		rows, err := s.resolveMembers(ctx, tx, g, add)
		if err != nil {
			return false, err
		}
		if err := tx.NewInsert().Model(&rows).On("CONFLICT DO NOTHING").
			Returning("member_id").Scan(ctx, &added); err != nil && !errors.Is(err, sql.ErrNoRows) {
			if db.IsForeignKeyViolation(err) { // found a moment ago, deleted since
				return false, apperr.Invalid("a member to add was deleted while the group changed; send the change again").WithCode("invalidValue")
			}
			return false, err
		}
	}
	// The users who joined or left now show another "groups" attribute: one statement
	// bumps exactly them (ids of member groups match no user).
	if changed := append(slices.Clip(added), removed...); len(changed) > 0 {
		if err := s.identity.WithTx(tx).TouchUsers(ctx, g.TenantID, bun.In(changed)); err != nil {
			return false, err
		}
	}
	if len(added) > 0 {
		if err := s.audit.Record(ctx, tx, audit.Event{TenantID: g.TenantID, Action: "group.members_added", Target: groupTarget(g),
			Changes: map[string]audit.Change{"members": {After: added}}}); err != nil {
			return false, err
		}
	}
	if len(removed) > 0 {
		if err := s.audit.Record(ctx, tx, audit.Event{TenantID: g.TenantID, Action: "group.members_removed", Target: groupTarget(g),
			Changes: map[string]audit.Change{"members": {Before: removed}}}); err != nil {
			return false, err
		}
	}
	return len(added) > 0 || len(removed) > 0, nil
}

// resolveMembers turns member ids into rows, refusing ids that are neither a user nor
// a group of the tenant (and the group itself).
func (s *Service) resolveMembers(ctx context.Context, tx bun.Tx, g *Group, idList []string) ([]membership, error) {
	users, err := s.identity.WithTx(tx).ExistingUserIDs(ctx, g.TenantID, idList)
	if err != nil {
		return nil, err
	}
	var groupIDs []string
	var rest []string
	for _, id := range idList {
		if _, ok := users[id]; !ok {
			rest = append(rest, id)
		}
	}
	if len(rest) > 0 {
		if err := tx.NewSelect().Model((*Group)(nil)).Column("id").
			Where("tenant_id = ? AND id IN (?)", g.TenantID, bun.In(rest)).Scan(ctx, &groupIDs); err != nil {
			return nil, err
		}
	}
	now := s.clock.Now()
	rows := make([]membership, 0, len(idList))
	for _, id := range idList {
		m := membership{GroupID: g.ID, MemberID: id, TenantID: g.TenantID, CreatedAt: now}
		switch {
		case users[id].ID != "":
			m.MemberType, m.UserID = MemberUser, id
		case slices.Contains(groupIDs, id):
			if id == g.ID {
				return nil, apperr.Invalid("a group cannot be a member of itself").WithCode("invalidValue")
			}
			m.MemberType, m.MemberGroupID = MemberGroup, id
		default:
			return nil, apperr.Invalid("member %q is not a user or group of this tenant", id).WithCode("invalidValue")
		}
		rows = append(rows, m)
	}
	return rows, nil
}

func dedupe(xs []string) []string {
	seen := make(map[string]bool, len(xs))
	out := make([]string, 0, len(xs))
	for _, x := range xs {
		if x != "" && !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// DeleteGroup removes a group and its memberships. The groups it was a member of lose
// a member, so each gets a new version and a group.members_removed event (as when a
// member user is deleted); its member users lose a group, so they get a new version.
func (s *Service) DeleteGroup(ctx context.Context, tenantID, id string, ifVersion int64) error {
	return db.RunInTx(ctx, s.db, func(ctx context.Context, tx bun.Tx) error {
		g, err := getGroup(ctx, tx, tenantID, id, true)
		if err != nil {
			return err
		}
		if ifVersion != 0 && ifVersion != g.Version {
			return apperr.PreconditionFailed("group %q has changed (version %d, not %d): fetch it again", id, g.Version, ifVersion)
		}
		n, err := tx.NewSelect().Model((*membership)(nil)).Where("group_id = ?", g.ID).Count(ctx)
		if err != nil {
			return err
		}
		// The group is locked, so no transaction can make it a member of another group
		// now (its foreign key check waits for this one). Its parents are locked in id
		// order, then read again: one that a change took the group out of meanwhile has
		// recorded that itself.
		parentsOf := func() *bun.SelectQuery {
			return tx.NewSelect().Model((*membership)(nil)).Column("group_id").Where("member_group_id = ?", g.ID)
		}
		if db.DialectOf(tx) == db.Postgres {
			var locked []string
			if err := tx.NewSelect().Model((*Group)(nil)).Column("id").Where("tenant_id = ? AND id IN (?)", tenantID, parentsOf()).
				OrderExpr("id").For("UPDATE").Scan(ctx, &locked); err != nil {
				return err
			}
		}
		var parents []Group
		if err := tx.NewSelect().Model(&parents).Where("tenant_id = ? AND id IN (?)", tenantID, parentsOf()).
			OrderExpr("id").Scan(ctx); err != nil {
			return err
		}
		if len(parents) > 0 {
			parentIDs := make([]string, len(parents))
			for i := range parents {
				parentIDs[i] = parents[i].ID
			}
			if err := touchGroups(ctx, tx, s.clock.Now(), tenantID, bun.In(parentIDs)); err != nil {
				return err
			}
			for i := range parents {
				if err := s.audit.Record(ctx, tx, audit.Event{TenantID: tenantID, Action: "group.members_removed", Target: groupTarget(&parents[i]),
					Changes: map[string]audit.Change{"members": {Before: []string{g.ID}}}}); err != nil {
					return err
				}
			}
		}
		if n > 0 {
			members := tx.NewSelect().Model((*membership)(nil)).Column("user_id").Where("group_id = ? AND user_id IS NOT NULL", g.ID)
			if err := s.identity.WithTx(tx).TouchUsers(ctx, tenantID, members); err != nil {
				return err
			}
		}
		// The schema's cascades remove the memberships, role mappings and grants.
		if _, err := tx.NewDelete().Model(&g).WherePK().Exec(ctx); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{TenantID: tenantID, Action: "group.deleted", Target: groupTarget(&g),
			Changes: map[string]audit.Change{"displayName": {Before: g.DisplayName}, "membersRemoved": {After: n}}})
	})
}

// touchGroups gives the tenant's groups whose ids are in ids (a list or a subquery) a
// new version and lastModified, in one statement.
func touchGroups(ctx context.Context, idb bun.IDB, now time.Time, tenantID string, ids schema.QueryAppender) error {
	_, err := idb.NewUpdate().Model((*Group)(nil)).
		Set("version = version + 1").Set("updated_at = ?", now).
		Where("tenant_id = ? AND id IN (?)", tenantID, ids).Exec(ctx)
	return err
}

// DeleteUser deletes a user of the tenant, ending its sessions before it returns (see
// identity's DeleteUser), and takes it out of every group it was in first, in the same
// transaction: those groups get a new version and a group.members_removed event, as
// when the IdP removes a member.
func (s *Service) DeleteUser(ctx context.Context, tenantID, id string, ifVersion int64) error {
	return s.identity.DeleteUser(ctx, tenantID, id, ifVersion, func(ctx context.Context, tx bun.Tx) error {
		return s.leaveGroups(ctx, tx, tenantID, id)
	})
}

// leaveGroups removes the user from every group inside tx, before identity locks the
// user: groups first, in id order, then the user is the order UpdateGroup locks them in,
// so the two never wait for each other in a cycle.
func (s *Service) leaveGroups(ctx context.Context, tx bun.Tx, tenantID, id string) error {
	if db.DialectOf(tx) == db.Postgres {
		var locked []string
		if err := tx.NewSelect().Model((*Group)(nil)).Column("id").
			Where("tenant_id = ? AND id IN (?)", tenantID, tx.NewSelect().Model((*membership)(nil)).Column("group_id").Where("user_id = ?", id)).
			OrderExpr("id").For("UPDATE").Scan(ctx, &locked); err != nil {
			return err
		}
	}
	var left []string
	if err := tx.NewDelete().Model((*membership)(nil)).Where("tenant_id = ? AND user_id = ?", tenantID, id).
		Returning("group_id").Scan(ctx, &left); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	if len(left) == 0 {
		return nil
	}
	if err := touchGroups(ctx, tx, s.clock.Now(), tenantID, bun.In(left)); err != nil {
		return err
	}
	var groups []Group
	if err := tx.NewSelect().Model(&groups).Where("id IN (?)", bun.In(left)).OrderExpr("id").Scan(ctx); err != nil {
		return err
	}
	for _, g := range groups {
		if err := s.audit.Record(ctx, tx, audit.Event{TenantID: tenantID, Action: "group.members_removed", Target: groupTarget(&g),
			Changes: map[string]audit.Change{"members": {Before: []string{id}}}}); err != nil {
			return err
		}
	}
	return nil
}

// Members returns a page of the group's members in a stable order, with display names.
// limit < 0 returns all.
func (s *Service) Members(ctx context.Context, tenantID, groupID string, offset, limit int) ([]Member, error) {
	var rows []membership
	q := s.db.NewSelect().Model(&rows).Where("tenant_id = ? AND group_id = ?", tenantID, groupID).OrderExpr("member_id")
	if limit >= 0 {
		q = q.Offset(int64(offset)).Limit(int64(limit))
	}
	if err := q.Scan(ctx); err != nil {
		return nil, err
	}
	var userIDs, groupIDs []string
	for _, r := range rows {
		if r.MemberType == MemberUser {
			userIDs = append(userIDs, r.MemberID)
		} else {
			groupIDs = append(groupIDs, r.MemberID)
		}
	}
	users, err := s.identity.ExistingUserIDs(ctx, tenantID, userIDs)
	if err != nil {
		return nil, err
	}
	groupNames := map[string]string{}
	if len(groupIDs) > 0 {
		var gs []Group
		if err := s.db.NewSelect().Model(&gs).Column("id", "display_name").Where("id IN (?)", bun.In(groupIDs)).Scan(ctx); err != nil {
			return nil, err
		}
		for _, g := range gs {
			groupNames[g.ID] = g.DisplayName
		}
	}
	out := make([]Member, len(rows))
	for i, r := range rows {
		m := Member{ID: r.MemberID, Type: r.MemberType}
		if r.MemberType == MemberUser {
			u := users[r.MemberID]
			m.Display = u.DisplayName
			if m.Display == "" {
				m.Display = u.UserName
			}
		} else {
			m.Display = groupNames[r.MemberID]
		}
		out[i] = m
	}
	return out, nil
}

// GroupRef names a group a user belongs to.
type GroupRef struct {
	ID          string
	DisplayName string
}

// GroupsOfUsers returns, for each user id, the groups it is a direct member of.
func (s *Service) GroupsOfUsers(ctx context.Context, tenantID string, userIDs []string) (map[string][]GroupRef, error) {
	out := map[string][]GroupRef{}
	if len(userIDs) == 0 {
		return out, nil
	}
	var rows []struct {
		UserID      string `bun:"user_id"`
		GroupID     string `bun:"group_id"`
		DisplayName string `bun:"display_name"`
	}
	err := s.db.NewSelect().TableExpr("group_members AS m").
		ColumnExpr("m.user_id, m.group_id, g.display_name").
		Join("JOIN groups AS g ON g.id = m.group_id").
		Where("m.tenant_id = ? AND m.user_id IN (?)", tenantID, bun.In(userIDs)).
		OrderExpr("m.user_id, g.display_name_key").Scan(ctx, &rows)
	for _, r := range rows {
		out[r.UserID] = append(out[r.UserID], GroupRef{ID: r.GroupID, DisplayName: r.DisplayName})
	}
	return out, err
}
