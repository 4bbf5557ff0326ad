package access

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"hash/fnv"
	"slices"
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

// Permission is something a company role allows.
type Permission string

const (
	PermManageCompanySettings Permission = "manage_company_settings"
	PermManageUsers           Permission = "manage_users"
	PermManageUserGroups      Permission = "manage_user_groups"
	PermManageSpaces          Permission = "manage_spaces"
	PermViewAuditLog          Permission = "view_audit_log"
)

// AllPermissions lists every permission, in the order they are shown.
var AllPermissions = []Permission{PermManageCompanySettings, PermManageUsers, PermManageUserGroups,
	PermManageSpaces, PermViewAuditLog}

// Built-in role ids. Owners and admins have every permission; only owners may give or
// take away "owner", and a tenant's last owner cannot lose it. Everyone is a member:
// a user with no other role holds "member", which has no permission.
const (
	RoleOwner  = "owner"
	RoleAdmin  = "admin"
	RoleMember = "member"
)

// Where a role assignment or a space access comes from.
const (
	SourceDirect = "direct"
	SourceGroup  = "group"
	// SourceOperator is the operator's owner role at the command line (OperatorViewer).
	SourceOperator = "operator"
)

// MaxRoleNameLen bounds a custom role's name.
const MaxRoleNameLen = 100

// Role is a company role: built in, or a tenant-defined set of permissions with a ULID id.
type Role struct {
	ID          string
	Name        string
	Permissions []Permission
	BuiltIn     bool
	CreatedAt   time.Time // zero for built-in roles
}

// RoleAssignment is a role a user holds, directly or through a group mapped to it (the
// group may be one the user is in through nested groups).
type RoleAssignment struct {
	Role      Role
	Source    string // SourceDirect or SourceGroup
	GroupID   string
	GroupName string
}

// RoleMapping says that every member of a group holds a role.
type RoleMapping struct {
	GroupID   string
	GroupName string
	Role      Role
}

// BuiltInRoles returns owner, admin and member.
func BuiltInRoles() []Role {
	return []Role{
		{ID: RoleOwner, Name: "Owner", Permissions: slices.Clone(AllPermissions), BuiltIn: true},
		{ID: RoleAdmin, Name: "Admin", Permissions: slices.Clone(AllPermissions), BuiltIn: true},
		{ID: RoleMember, Name: "Member", Permissions: []Permission{}, BuiltIn: true},
	}
}

func builtInRole(id string) (Role, bool) {
	for _, r := range BuiltInRoles() {
		if r.ID == id {
			return r, true
		}
	}
	return Role{}, false
}

func memberRole() Role {
	r, _ := builtInRole(RoleMember)
	return r
}

// Viewer is who a request acts as, resolved once per request by Service.Viewer.
type Viewer struct {
	TenantID  string
	UserID    string
	SessionID string
	// UserName names the viewer as the actor of audit events.
	UserName    string
	Roles       []RoleAssignment
	Permissions []Permission

	// tenant is the viewer's tenant as Service.Viewer read it (zero for OperatorViewer):
	// the plan features that gate reads are taken from it, so a request's many batched
	// reads cost no tenant query each. Features change only at the command line.
	tenant tenancy.Tenant
}

// Tenant returns the viewer's tenant as read when the viewer was resolved; ok is false
// for a viewer built without one (OperatorViewer, or a service without tenancy).
func (v Viewer) Tenant() (tenancy.Tenant, bool) {
	return v.tenant, v.tenant.ID != "" && v.tenant.ID == v.TenantID
}

// Can reports whether the viewer has permission p.
func (v Viewer) Can(p Permission) bool { return slices.Contains(v.Permissions, p) }

// IsOwner reports whether the viewer holds the owner role, directly or through a group.
func (v Viewer) IsOwner() bool {
	return slices.ContainsFunc(v.Roles, func(a RoleAssignment) bool { return a.Role.ID == RoleOwner })
}

// OperatorViewer is the viewer of an operator at the command line: the owner role and
// every permission in one tenant, with no user behind it. Only operator tooling (the
// `gatehouse role` command) builds it; a request's viewer always comes from Service.Viewer.
func OperatorViewer(tenantID string) Viewer {
	owner, _ := builtInRole(RoleOwner)
	return Viewer{TenantID: tenantID, UserName: "operator",
		Roles: []RoleAssignment{{Role: owner, Source: SourceOperator}}, Permissions: slices.Clone(AllPermissions)}
}

func forbidden(format string, args ...any) error {
	return apperr.Forbidden(format, args...).WithCode("FORBIDDEN")
}

func (v Viewer) signedIn() error {
	if v.TenantID == "" {
		return apperr.Unauthenticated("sign in first")
	}
	return nil
}

// require checks that v may do something that needs permission p ("to" says what).
func (v Viewer) require(p Permission, to string) error {
	if err := v.signedIn(); err != nil {
		return err
	}
	if !v.Can(p) {
		return forbidden("you need the %s permission to %s", p, to)
	}
	return nil
}

// requireOwner checks that v is an owner, for what hands whoever does it every role
// (why says how): the SSO connection and SCIM tokens. manage_company_settings alone
// would otherwise let an admin, or a custom role, make themselves an owner.
func (v Viewer) requireOwner(to, why string) error {
	if err := v.require(PermManageCompanySettings, to); err != nil {
		return err
	}
	if !v.IsOwner() {
		return forbidden("only an owner may %s: %s", to, why)
	}
	return nil
}

// mayConfer checks that v may give or take away role r: "owner" only by owners, and
// any other role only by someone who has every permission it carries, so nobody can
// raise their own rights by handing themselves (or their group) a bigger role.
func (v Viewer) mayConfer(r Role) error {
	if r.ID == RoleOwner && !v.IsOwner() {
		return forbidden("only an owner may give or take away the owner role")
	}
	for _, p := range r.Permissions {
		if !v.Can(p) {
			return forbidden("the role %q carries the %s permission, which you do not have; only someone who has it may give or take away that role", r.Name, p)
		}
	}
	return nil
}

// actorCtx names the viewer as the actor of audit events, unless the transport already
// named one (a CLI operator, a SCIM token). A transport that named the viewer by id only
// (a session knows no names) gets the viewer's userName filled in.
func actorCtx(ctx context.Context, v Viewer) context.Context {
	if v.UserID == "" {
		return ctx
	}
	a := audit.ActorFrom(ctx)
	if a.Type == audit.ActorSystem || a.Type == audit.ActorUser && a.ID == v.UserID && a.Name == "" {
		return audit.WithActor(ctx, audit.Actor{Type: audit.ActorUser, ID: v.UserID, Name: v.UserName})
	}
	return ctx
}

type roleRow struct {
	bun.BaseModel `bun:"table:roles,alias:r"`

	ID          string       `bun:"id,pk"`
	TenantID    string       `bun:"tenant_id"`
	Name        string       `bun:"name"`
	NameKey     string       `bun:"name_key"`
	Permissions []Permission `bun:"permissions,type:jsonb"`
	CreatedAt   time.Time    `bun:"created_at"`
	UpdatedAt   time.Time    `bun:"updated_at"`
}

func (r roleRow) role() Role {
	ps := r.Permissions
	if ps == nil {
		ps = []Permission{}
	}
	return Role{ID: r.ID, Name: r.Name, Permissions: ps, CreatedAt: r.CreatedAt}
}

// userRoleRow is a user's direct role; custom_role_id repeats role_id for custom roles
// so that deleting the role cascades.
type userRoleRow struct {
	bun.BaseModel `bun:"table:user_roles"`

	UserID       string    `bun:"user_id,pk"`
	TenantID     string    `bun:"tenant_id"`
	RoleID       string    `bun:"role_id"`
	CustomRoleID string    `bun:"custom_role_id,nullzero"`
	CreatedAt    time.Time `bun:"created_at"`
}

type groupRoleRow struct {
	bun.BaseModel `bun:"table:group_roles"`

	GroupID      string    `bun:"group_id,pk"`
	RoleID       string    `bun:"role_id,pk"`
	TenantID     string    `bun:"tenant_id"`
	CustomRoleID string    `bun:"custom_role_id,nullzero"`
	CreatedAt    time.Time `bun:"created_at"`
}

func customID(r Role) string {
	if r.BuiltIn {
		return ""
	}
	return r.ID
}

func roleTarget(r Role) audit.Target { return audit.Target{Type: "role", ID: r.ID, Display: r.Name} }

func errRoleNotFound(id string) error {
	return apperr.NotFound("no role with id %q in this tenant", id)
}

func errBuiltIn(r Role) error {
	return apperr.Invalid("%s is a built-in role and cannot be changed or deleted; create a custom role instead", r.Name).WithCode("BUILT_IN_ROLE")
}

func conflictRoleName(name string) error {
	return apperr.Conflict("a role named %q already exists in this tenant", name).WithCode("uniqueness")
}

// normalizePermissions checks ps and returns them without repeats, in AllPermissions order.
func normalizePermissions(ps []Permission) ([]Permission, error) {
	for _, p := range ps {
		if !slices.Contains(AllPermissions, p) {
			return nil, apperr.Invalid("permission %q is not known: known permissions are %v", p, AllPermissions).WithCode("invalidValue")
		}
	}
	out := []Permission{}
	for _, p := range AllPermissions {
		if slices.Contains(ps, p) {
			out = append(out, p)
		}
	}
	return out, nil
}

func normalizeRoleName(name string) (string, string, error) {
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > MaxRoleNameLen {
		return "", "", apperr.Invalid("a role name must be 1 to %d characters", MaxRoleNameLen).WithCode("invalidValue")
	}
	key := identity.Fold(name)
	for _, b := range BuiltInRoles() {
		if key == b.ID || key == identity.Fold(b.Name) {
			return "", "", conflictRoleName(name)
		}
	}
	return name, key, nil
}

// union returns every permission the assignments carry, in AllPermissions order.
func union(as []RoleAssignment) []Permission {
	out := []Permission{}
	for _, p := range AllPermissions {
		if slices.ContainsFunc(as, func(a RoleAssignment) bool { return slices.Contains(a.Role.Permissions, p) }) {
			out = append(out, p)
		}
	}
	return out
}

// rolesByID returns the roles with the given ids: built-in ones from memory, custom
// ones of the tenant in one query. Unknown ids are left out.
func rolesByID(ctx context.Context, idb bun.IDB, tenantID string, idList []string) (map[string]Role, error) {
	out := map[string]Role{}
	var custom []string
	for _, id := range idList {
		if r, ok := builtInRole(id); ok {
			out[id] = r
		} else if !slices.Contains(custom, id) {
			custom = append(custom, id)
		}
	}
	if len(custom) == 0 {
		return out, nil
	}
	var rows []roleRow
	if err := idb.NewSelect().Model(&rows).Where("tenant_id = ? AND id IN (?)", tenantID, bun.In(custom)).Scan(ctx); err != nil {
		return nil, err
	}
	for _, r := range rows {
		out[r.ID] = r.role()
	}
	return out, nil
}

func resolveRole(ctx context.Context, idb bun.IDB, tenantID, id string) (Role, error) {
	rs, err := rolesByID(ctx, idb, tenantID, []string{id})
	if err != nil {
		return Role{}, err
	}
	r, ok := rs[id]
	if !ok {
		return Role{}, errRoleNotFound(id)
	}
	return r, nil
}

func getRoleRow(ctx context.Context, idb bun.IDB, tenantID, id string) (roleRow, error) {
	var r roleRow
	q := idb.NewSelect().Model(&r).Where("tenant_id = ? AND id = ?", tenantID, id)
	if db.DialectOf(idb) == db.Postgres {
		q = q.For("UPDATE")
	}
	err := q.Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return roleRow{}, errRoleNotFound(id)
	}
	return r, err
}

// Viewer resolves who an authenticated request acts as: the user must exist in the
// principal's tenant and be active. Their roles are their direct role ("member" when
// none is set) and the roles mapped to every group they are in, nested groups included;
// their permissions are the union.
func (s *Service) Viewer(ctx context.Context, p identity.Principal) (Viewer, error) {
	if p.TenantID == "" || p.UserID == "" {
		return Viewer{}, apperr.Unauthenticated("sign in first")
	}
	u, err := s.identity.GetUser(ctx, p.TenantID, p.UserID)
	if apperr.Is(err, apperr.KindNotFound) {
		return Viewer{}, apperr.Unauthenticated("your account no longer exists; sign in again")
	}
	if err != nil {
		return Viewer{}, err
	}
	if !u.Active {
		return Viewer{}, apperr.Unauthenticated("your account is deactivated; ask your administrator")
	}
	roles, err := s.UserRoles(ctx, p.TenantID, []string{u.ID})
	if err != nil {
		return Viewer{}, err
	}
	v := Viewer{TenantID: p.TenantID, UserID: u.ID, SessionID: p.SessionID, UserName: u.UserName,
		Roles: roles[u.ID], Permissions: union(roles[u.ID])}
	if s.tenants != nil {
		if v.tenant, err = s.tenants.Tenant(ctx, p.TenantID); err != nil {
			return Viewer{}, err
		}
	}
	return v, nil
}

// RolesOfUsers returns the roles of each of the viewer's tenant's users (UserRoles),
// which any signed-in person of the tenant may read.
func (s *Service) RolesOfUsers(ctx context.Context, v Viewer, userIDs []string) (map[string][]RoleAssignment, error) {
	if err := v.signedIn(); err != nil {
		return nil, err
	}
	return s.UserRoles(ctx, v.TenantID, userIDs)
}

// UserRoles returns the roles of each user (for dataloaders): the direct role first
// ("member" when none is set), then the roles mapped to their groups, nested groups
// included, by group name. It runs two queries however many users it is given.
func (s *Service) UserRoles(ctx context.Context, tenantID string, userIDs []string) (map[string][]RoleAssignment, error) {
	out := map[string][]RoleAssignment{}
	userIDs = dedupe(userIDs)
	if len(userIDs) == 0 {
		return out, nil
	}
	var rows []struct {
		UserID    string `bun:"user_id"`
		RoleID    string `bun:"role_id"`
		Source    string `bun:"source"`
		GroupID   string `bun:"group_id"`
		GroupName string `bun:"group_name"`
	}
	err := s.db.NewRaw(userGroupsCTE+`
		SELECT ur.user_id, ur.role_id, 'direct' AS source, '' AS group_id, '' AS group_name
		FROM user_roles AS ur WHERE ur.tenant_id = ? AND ur.user_id IN (?)
		UNION ALL
		SELECT ug.user_id, gr.role_id, 'group', g.id, g.display_name
		FROM ug JOIN group_roles AS gr ON gr.group_id = ug.group_id
		JOIN groups AS g ON g.id = ug.group_id`,
		tenantID, bun.In(userIDs), tenantID, bun.In(userIDs)).Scan(ctx, &rows)
	if err != nil {
		return nil, err
	}
	var roleIDs []string
	for _, r := range rows {
		roleIDs = append(roleIDs, r.RoleID)
	}
	roles, err := rolesByID(ctx, s.db, tenantID, roleIDs)
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		role, ok := roles[r.RoleID]
		if !ok {
			continue // a custom role deleted between the two queries
		}
		out[r.UserID] = append(out[r.UserID], RoleAssignment{Role: role, Source: r.Source, GroupID: r.GroupID, GroupName: r.GroupName})
	}
	for _, id := range userIDs {
		as := out[id]
		// Sorted here rather than in SQL, so both dialects order names alike.
		slices.SortFunc(as, func(a, b RoleAssignment) int {
			return cmp.Or(cmp.Compare(a.Source, b.Source), cmp.Compare(identity.Fold(a.GroupName), identity.Fold(b.GroupName)),
				cmp.Compare(a.GroupID, b.GroupID), cmp.Compare(a.Role.ID, b.Role.ID))
		})
		if len(as) == 0 || as[0].Source != SourceDirect {
			as = append([]RoleAssignment{{Role: memberRole(), Source: SourceDirect}}, as...)
		}
		out[id] = as
	}
	return out, nil
}

// ListRoles returns the built-in roles, then the tenant's custom roles by name.
func (s *Service) ListRoles(ctx context.Context, v Viewer) ([]Role, error) {
	if err := v.signedIn(); err != nil {
		return nil, err
	}
	var rows []roleRow
	if err := s.db.NewSelect().Model(&rows).Where("tenant_id = ?", v.TenantID).OrderExpr("name_key").Scan(ctx); err != nil {
		return nil, err
	}
	out := BuiltInRoles()
	for _, r := range rows {
		out = append(out, r.role())
	}
	return out, nil
}

// CreateRole adds a custom role. Its name is unique in the tenant (ignoring case) and
// not a built-in role's; its permissions must be ones the viewer has.
func (s *Service) CreateRole(ctx context.Context, v Viewer, name string, perms []Permission) (Role, error) {
	if err := v.require(PermManageCompanySettings, "create roles"); err != nil {
		return Role{}, err
	}
	ctx = actorCtx(ctx, v)
	name, key, err := normalizeRoleName(name)
	if err != nil {
		return Role{}, err
	}
	ps, err := normalizePermissions(perms)
	if err != nil {
		return Role{}, err
	}
	now := s.clock.Now()
	row := roleRow{ID: ids.NewAt(now), TenantID: v.TenantID, Name: name, NameKey: key, Permissions: ps, CreatedAt: now, UpdatedAt: now}
	if err := v.mayConfer(row.role()); err != nil {
		return Role{}, err
	}
	err = db.RunInTx(ctx, s.db, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(&row).Exec(ctx); err != nil {
			if db.IsUniqueViolation(err) {
				return conflictRoleName(name)
			}
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{TenantID: v.TenantID, Action: "role.created", Target: roleTarget(row.role()),
			Changes: map[string]audit.Change{"name": {After: name}, "permissions": {After: ps}}})
	})
	if err != nil {
		return Role{}, err
	}
	return row.role(), nil
}

// UpdateRole renames a custom role or replaces its permissions (nil leaves a field
// alone). The viewer must have every permission the role carries, before and after.
func (s *Service) UpdateRole(ctx context.Context, v Viewer, id string, name *string, perms *[]Permission) (Role, error) {
	if err := v.require(PermManageCompanySettings, "change roles"); err != nil {
		return Role{}, err
	}
	ctx = actorCtx(ctx, v)
	if r, ok := builtInRole(id); ok {
		return Role{}, errBuiltIn(r)
	}
	var out Role
	err := db.RunInTx(ctx, s.db, func(ctx context.Context, tx bun.Tx) error {
		old, err := getRoleRow(ctx, tx, v.TenantID, id)
		if err != nil {
			return err
		}
		if err := v.mayConfer(old.role()); err != nil {
			return err
		}
		row := old
		changes := map[string]audit.Change{}
		if name != nil {
			if row.Name, row.NameKey, err = normalizeRoleName(*name); err != nil {
				return err
			}
			if row.Name != old.Name {
				changes["name"] = audit.Change{Before: old.Name, After: row.Name}
			}
		}
		if perms != nil {
			if row.Permissions, err = normalizePermissions(*perms); err != nil {
				return err
			}
			if err := v.mayConfer(row.role()); err != nil {
				return err
			}
			if !slices.Equal(row.Permissions, old.role().Permissions) {
				changes["permissions"] = audit.Change{Before: old.role().Permissions, After: row.Permissions}
			}
		}
		if len(changes) == 0 {
			out = old.role()
			return nil
		}
		row.UpdatedAt = s.clock.Now()
		if _, err := tx.NewUpdate().Model(&row).WherePK().Exec(ctx); err != nil {
			if db.IsUniqueViolation(err) {
				return conflictRoleName(row.Name)
			}
			return err
		}
		out = row.role()
		return s.audit.Record(ctx, tx, audit.Event{TenantID: v.TenantID, Action: "role.updated", Target: roleTarget(out), Changes: changes})
	})
	return out, err
}

// DeleteRole deletes a custom role; its assignments and group mappings go with it (the
// users concerned become members, unless they hold other roles).
func (s *Service) DeleteRole(ctx context.Context, v Viewer, id string) error {
	if err := v.require(PermManageCompanySettings, "delete roles"); err != nil {
		return err
	}
	ctx = actorCtx(ctx, v)
	if r, ok := builtInRole(id); ok {
		return errBuiltIn(r)
	}
	return db.RunInTx(ctx, s.db, func(ctx context.Context, tx bun.Tx) error {
		row, err := getRoleRow(ctx, tx, v.TenantID, id)
		if err != nil {
			return err
		}
		if err := v.mayConfer(row.role()); err != nil {
			return err
		}
		assigned, err := tx.NewSelect().Model((*userRoleRow)(nil)).Where("custom_role_id = ?", id).Count(ctx)
		if err != nil {
			return err
		}
		mapped, err := tx.NewSelect().Model((*groupRoleRow)(nil)).Where("custom_role_id = ?", id).Count(ctx)
		if err != nil {
			return err
		}
		// The schema's cascades remove the assignments and mappings.
		if _, err := tx.NewDelete().Model(&row).WherePK().Exec(ctx); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{TenantID: v.TenantID, Action: "role.deleted", Target: roleTarget(row.role()),
			Changes: map[string]audit.Change{"name": {Before: row.Name}, "permissions": {Before: row.role().Permissions},
				"assignmentsRemoved": {After: assigned}, "mappingsRemoved": {After: mapped}}})
	})
}

// lockRoles serialises the changes of a tenant that can take the owner role away, so
// two owners demoting each other at once cannot leave the tenant without one. SQLite
// needs nothing: its transactions take the write lock at BEGIN.
func lockRoles(ctx context.Context, tx bun.Tx, tenantID string) error {
	if db.DialectOf(tx) != db.Postgres {
		return nil
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte("gatehouse/access/roles/" + tenantID))
	_, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(?)", int64(h.Sum64()>>1))
	return err
}

// ownerCount counts the users holding the owner role, directly or through a group
// (nested groups included).
func ownerCount(ctx context.Context, idb bun.IDB, tenantID string) (int, error) {
	var n int
	err := idb.NewRaw(`WITH RECURSIVE og(group_id) AS (
			SELECT gr.group_id FROM group_roles AS gr WHERE gr.tenant_id = ? AND gr.role_id = 'owner'
			UNION
			SELECT m.member_group_id FROM og JOIN group_members AS m ON m.group_id = og.group_id
			WHERE m.member_group_id IS NOT NULL
		)
		SELECT count(*) FROM (
			SELECT ur.user_id FROM user_roles AS ur WHERE ur.tenant_id = ? AND ur.role_id = 'owner'
			UNION
			SELECT m.user_id FROM og JOIN group_members AS m ON m.group_id = og.group_id WHERE m.user_id IS NOT NULL
		) AS owners`, tenantID, tenantID).Scan(ctx, &n)
	return n, err
}

// keepAnOwner refuses a change (made earlier in tx) that left the tenant without an
// owner; what describes the change ("Taking the owner role from Ada").
func keepAnOwner(ctx context.Context, tx bun.Tx, tenantID, what string) error {
	n, err := ownerCount(ctx, tx, tenantID)
	if err != nil {
		return err
	}
	if n == 0 {
		return apperr.Conflict("%s would leave this company without an owner; make someone else an owner first", what).WithCode("LAST_OWNER")
	}
	return nil
}

// SetUserRole sets a user's one direct role; "member" clears it. Roles the user holds
// through groups are not affected.
func (s *Service) SetUserRole(ctx context.Context, v Viewer, userID, roleID string) error {
	if err := v.require(PermManageUsers, "change a person's role"); err != nil {
		return err
	}
	ctx = actorCtx(ctx, v)
	return db.RunInTx(ctx, s.db, func(ctx context.Context, tx bun.Tx) error {
		if err := lockRoles(ctx, tx, v.TenantID); err != nil {
			return err
		}
		role, err := resolveRole(ctx, tx, v.TenantID, roleID)
		if err != nil {
			return err
		}
		users, err := s.identity.WithTx(tx).ExistingUserIDs(ctx, v.TenantID, []string{userID})
		if err != nil {
			return err
		}
		u, ok := users[userID]
		if !ok {
			return errUserNotFound(userID)
		}
		old := memberRole()
		var cur userRoleRow
		err = tx.NewSelect().Model(&cur).Where("user_id = ?", userID).Scan(ctx)
		switch {
		case err == nil:
			if old, err = resolveRole(ctx, tx, v.TenantID, cur.RoleID); err != nil {
				return err
			}
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		if old.ID == role.ID {
			return nil
		}
		if err := v.mayConfer(old); err != nil {
			return err
		}
		if err := v.mayConfer(role); err != nil {
			return err
		}
		if role.ID == RoleMember {
			_, err = tx.NewDelete().Model((*userRoleRow)(nil)).Where("user_id = ?", userID).Exec(ctx)
		} else {
			row := userRoleRow{UserID: userID, TenantID: v.TenantID, RoleID: role.ID, CustomRoleID: customID(role), CreatedAt: s.clock.Now()}
			_, err = tx.NewInsert().Model(&row).
				On("CONFLICT (user_id) DO UPDATE").
				Set("role_id = EXCLUDED.role_id, custom_role_id = EXCLUDED.custom_role_id, created_at = EXCLUDED.created_at").
				Exec(ctx)
		}
		if err != nil {
			return err
		}
		if old.ID == RoleOwner {
			if err := keepAnOwner(ctx, tx, v.TenantID, "Taking the owner role from "+displayOf(u)); err != nil {
				return err
			}
		}
		return s.audit.Record(ctx, tx, audit.Event{TenantID: v.TenantID, Action: "role.assigned",
			Target:  audit.Target{Type: "user", ID: u.ID, Display: u.UserName},
			Changes: map[string]audit.Change{"role": {Before: old.Name, After: role.Name}, "roleId": {Before: old.ID, After: role.ID}}})
	})
}

func errUserNotFound(id string) error {
	return apperr.NotFound("no user with id %q in this tenant", id)
}

// displayOf names a person in messages: display name, else formatted name, else userName.
func displayOf(u identity.User) string {
	for _, s := range []string{u.DisplayName, u.NameFormatted, strings.TrimSpace(u.GivenName + " " + u.FamilyName)} {
		if s != "" {
			return s
		}
	}
	return u.UserName
}

// DirectRoles returns the users of the tenant that have a direct role other than
// "member", by user id.
func (s *Service) DirectRoles(ctx context.Context, v Viewer) (map[string]Role, error) {
	if err := v.signedIn(); err != nil {
		return nil, err
	}
	var rows []userRoleRow
	if err := s.db.NewSelect().Model(&rows).Where("tenant_id = ?", v.TenantID).Scan(ctx); err != nil {
		return nil, err
	}
	var roleIDs []string
	for _, r := range rows {
		roleIDs = append(roleIDs, r.RoleID)
	}
	roles, err := rolesByID(ctx, s.db, v.TenantID, roleIDs)
	if err != nil {
		return nil, err
	}
	out := make(map[string]Role, len(rows))
	for _, r := range rows {
		if role, ok := roles[r.RoleID]; ok {
			out[r.UserID] = role
		}
	}
	return out, nil
}

func mappingChange(role Role, added bool) map[string]audit.Change {
	if added {
		return map[string]audit.Change{"role": {After: role.Name}, "roleId": {After: role.ID}}
	}
	return map[string]audit.Change{"role": {Before: role.Name}, "roleId": {Before: role.ID}}
}

// MapGroupToRole makes every member of a group (nested groups included) hold a role,
// e.g. the IdP group "Gatehouse Admins" -> admin, so admins are provisioned from the IdP.
// Mapping a group already mapped to the role changes nothing.
func (s *Service) MapGroupToRole(ctx context.Context, v Viewer, groupID, roleID string) error {
	if err := v.require(PermManageCompanySettings, "map groups to roles"); err != nil {
		return err
	}
	if err := s.requireGroups(ctx, v); err != nil {
		return err
	}
	ctx = actorCtx(ctx, v)
	return db.RunInTx(ctx, s.db, func(ctx context.Context, tx bun.Tx) error {
		role, err := resolveRole(ctx, tx, v.TenantID, roleID)
		if err != nil {
			return err
		}
		if role.ID == RoleMember {
			return apperr.Invalid("everyone is a member already; map the group to another role").WithCode("invalidValue")
		}
		g, err := getGroup(ctx, tx, v.TenantID, groupID, false)
		if err != nil {
			return err
		}
		if err := v.mayConfer(role); err != nil {
			return err
		}
		row := groupRoleRow{GroupID: g.ID, RoleID: role.ID, TenantID: v.TenantID, CustomRoleID: customID(role), CreatedAt: s.clock.Now()}
		var added []string
		if err := tx.NewInsert().Model(&row).On("CONFLICT DO NOTHING").Returning("role_id").Scan(ctx, &added); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if len(added) == 0 {
			return nil
		}
		return s.audit.Record(ctx, tx, audit.Event{TenantID: v.TenantID, Action: "role_mapping.changed", Target: groupTarget(&g),
			Changes: mappingChange(role, true)})
	})
}

// UnmapGroupRole undoes MapGroupToRole; a mapping that does not exist changes nothing.
// The last owner of the tenant cannot lose the role this way.
func (s *Service) UnmapGroupRole(ctx context.Context, v Viewer, groupID, roleID string) error {
	if err := v.require(PermManageCompanySettings, "map groups to roles"); err != nil {
		return err
	}
	if err := s.requireGroups(ctx, v); err != nil {
		return err
	}
	ctx = actorCtx(ctx, v)
	return db.RunInTx(ctx, s.db, func(ctx context.Context, tx bun.Tx) error {
		if err := lockRoles(ctx, tx, v.TenantID); err != nil {
			return err
		}
		role, err := resolveRole(ctx, tx, v.TenantID, roleID)
		if err != nil {
			return err
		}
		g, err := getGroup(ctx, tx, v.TenantID, groupID, false)
		if err != nil {
			return err
		}
		if err := v.mayConfer(role); err != nil {
			return err
		}
		var removed []string
		if err := tx.NewDelete().Model((*groupRoleRow)(nil)).Where("group_id = ? AND role_id = ?", g.ID, role.ID).
			Returning("role_id").Scan(ctx, &removed); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if len(removed) == 0 {
			return nil
		}
		if role.ID == RoleOwner {
			if err := keepAnOwner(ctx, tx, v.TenantID, "Taking the owner role from the group "+g.DisplayName); err != nil {
				return err
			}
		}
		return s.audit.Record(ctx, tx, audit.Event{TenantID: v.TenantID, Action: "role_mapping.changed", Target: groupTarget(&g),
			Changes: mappingChange(role, false)})
	})
}

// RoleMappings lists the tenant's group -> role mappings by group name. Like every read
// of groups, it needs the user_groups feature.
func (s *Service) RoleMappings(ctx context.Context, v Viewer) ([]RoleMapping, error) {
	if err := s.requireGroups(ctx, v); err != nil {
		return nil, err
	}
	var rows []struct {
		GroupID   string `bun:"group_id"`
		GroupName string `bun:"display_name"`
		RoleID    string `bun:"role_id"`
	}
	err := s.db.NewSelect().TableExpr("group_roles AS gr").ColumnExpr("gr.group_id, g.display_name, gr.role_id").
		Join("JOIN groups AS g ON g.id = gr.group_id").
		Where("gr.tenant_id = ?", v.TenantID).OrderExpr("g.display_name_key, gr.group_id, gr.role_id").Scan(ctx, &rows)
	if err != nil {
		return nil, err
	}
	var roleIDs []string
	for _, r := range rows {
		roleIDs = append(roleIDs, r.RoleID)
	}
	roles, err := rolesByID(ctx, s.db, v.TenantID, roleIDs)
	if err != nil {
		return nil, err
	}
	out := make([]RoleMapping, 0, len(rows))
	for _, r := range rows {
		if role, ok := roles[r.RoleID]; ok {
			out = append(out, RoleMapping{GroupID: r.GroupID, GroupName: r.GroupName, Role: role})
		}
	}
	return out, nil
}

// rolesThroughGroup returns the roles that membership of group g confers: those mapped
// to g and to every group g is in, nested groups included.
func rolesThroughGroup(ctx context.Context, idb bun.IDB, tenantID, groupID string) ([]Role, error) {
	var roleIDs []string
	err := idb.NewRaw(groupAncestorsCTE+`
		SELECT DISTINCT gr.role_id FROM anc JOIN group_roles AS gr ON gr.group_id = anc.group_id
		WHERE gr.tenant_id = ? ORDER BY gr.role_id`, groupID, tenantID).Scan(ctx, &roleIDs)
	if err != nil {
		return nil, err
	}
	roles, err := rolesByID(ctx, idb, tenantID, roleIDs)
	if err != nil {
		return nil, err
	}
	out := make([]Role, 0, len(roles))
	for _, id := range roleIDs {
		if r, ok := roles[id]; ok {
			out = append(out, r)
		}
	}
	return out, nil
}
