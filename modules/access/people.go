package access

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/modules/identity"
	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
	"github.com/gatehouse-dev/gatehouse/modules/platform/db"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

// Managing people from the app. Who may change a person or a group depends on the
// tenant's provisioning mode: in scim mode the IdP owns everyone and the app changes
// nothing; in mixed mode the app manages only what it created itself (Source app, e.g.
// contractors) and the IdP the rest; in manual mode the app manages everyone. Reading
// needs only a viewer of the tenant (pages.go).

// Tenants is what access needs from the tenancy module, for its rules and for the
// company administration it authorizes (company.go); *tenancy.Service has it.
type Tenants interface {
	Tenant(ctx context.Context, id string) (tenancy.Tenant, error)
	UpdateSettings(ctx context.Context, tenantID string, p tenancy.SettingsPatch) (tenancy.Tenant, error)
	ConfigureSAML(ctx context.Context, tenantID string, in tenancy.SAMLConfigInput) (tenancy.SAMLConnection, error)
	SAMLConnection(ctx context.Context, tenantID string) (tenancy.SAMLConnection, error)
	IssueSCIMToken(ctx context.Context, tenantID, name string, ttl time.Duration) (tenancy.IssuedToken, error)
	RevokeSCIMToken(ctx context.Context, tenantID, tokenID string) error
	ListSCIMTokens(ctx context.Context, tenantID string) ([]tenancy.SCIMToken, error)
}

var errNoTenancy = errors.New("access: built without tenancy: pass access.WithTenancy to access.New")

func (s *Service) tenant(ctx context.Context, id string) (tenancy.Tenant, error) {
	if s.tenants == nil {
		return tenancy.Tenant{}, errNoTenancy
	}
	return s.tenants.Tenant(ctx, id)
}

// idpName names the tenant's IdP by its most recently used SCIM token (e.g. "Okta
// production"), or "" when no token was ever used.
func (s *Service) idpName(ctx context.Context, tenantID string) string {
	ts, err := s.tenants.ListSCIMTokens(ctx, tenantID)
	if err != nil {
		return "" // the refusal stands; only its wording loses the name
	}
	var best *tenancy.SCIMToken
	for i, t := range ts {
		if t.LastUsedAt != nil && (best == nil || t.LastUsedAt.After(*best.LastUsedAt)) {
			best = &ts[i]
		}
	}
	if best == nil {
		return ""
	}
	return best.Name
}

// errIdPManaged refuses a change the IdP owns, naming the IdP as the place to make it.
// subject is the sentence's subject and verb ("Ada Lovelace is").
func (s *Service) errIdPManaged(ctx context.Context, tenantID, subject string, source identity.Source) error {
	idp := "your identity provider"
	if name := s.idpName(ctx, tenantID); name != "" {
		idp += " (“" + name + "”)"
	}
	how := "SCIM"
	if source == identity.SourceSSO {
		how = "single sign-on"
	}
	return apperr.Forbidden("%s managed by %s through %s; make this change there.", subject, idp, how).WithCode("SCIM_MANAGED")
}

// appMayCreate checks that the tenant's mode lets the app add people or groups: those
// it adds are app-managed, so the rule is Editable's for them.
func (s *Service) appMayCreate(ctx context.Context, t tenancy.Tenant, subject string) error {
	if Editable(t.ProvisioningMode, identity.SourceApp) {
		return nil
	}
	return s.errIdPManaged(ctx, t.ID, subject, identity.SourceSCIM)
}

// appMayChange checks that the tenant's mode lets the app change a record with the
// given source (Editable), naming the IdP when it does not.
func (s *Service) appMayChange(ctx context.Context, t tenancy.Tenant, source identity.Source, subject string) error {
	if Editable(t.ProvisioningMode, source) {
		return nil
	}
	if source == identity.SourceApp {
		source = identity.SourceSCIM
	}
	return s.errIdPManaged(ctx, t.ID, subject, source)
}

// CreateUser adds a person managed by the app (Source app). It needs manage_users and
// a tenant in manual or mixed mode. Active is stored as given.
func (s *Service) CreateUser(ctx context.Context, v Viewer, u identity.User) (identity.User, error) {
	if err := v.require(PermManageUsers, "add people"); err != nil {
		return identity.User{}, err
	}
	ctx = actorCtx(ctx, v)
	t, err := s.tenant(ctx, v.TenantID)
	if err != nil {
		return identity.User{}, err
	}
	if err := s.appMayCreate(ctx, t, "People in this company are"); err != nil {
		return identity.User{}, err
	}
	u.Source = identity.SourceApp
	return s.identity.CreateUser(ctx, v.TenantID, u)
}

// changeableUser loads a user the viewer may change from the app.
func (s *Service) changeableUser(ctx context.Context, v Viewer, id, to string) (identity.User, error) {
	if err := v.require(PermManageUsers, to); err != nil {
		return identity.User{}, err
	}
	t, err := s.tenant(ctx, v.TenantID)
	if err != nil {
		return identity.User{}, err
	}
	u, err := s.identity.GetUser(ctx, v.TenantID, id)
	if err != nil {
		return identity.User{}, err
	}
	if err := s.appMayChange(ctx, t, u.Source, displayOf(u)+" is"); err != nil {
		return identity.User{}, err
	}
	return u, nil
}

// UpdateUser changes a person from the app (see identity.Service.UpdateUser for
// ifVersion and change). It needs manage_users; in scim mode it is refused, in mixed mode
// only app-managed people may be changed. Activation is not changed here: SetUserActive
// does it, with its own rules.
func (s *Service) UpdateUser(ctx context.Context, v Viewer, id string, ifVersion int64, change func(*identity.User) error) (identity.User, error) {
	ctx = actorCtx(ctx, v)
	if _, err := s.changeableUser(ctx, v, id, "change people"); err != nil {
		return identity.User{}, err
	}
	roles, err := s.UserRoles(ctx, v.TenantID, []string{id})
	if err != nil {
		return identity.User{}, err
	}
	return s.identity.UpdateUser(ctx, v.TenantID, id, ifVersion, func(u *identity.User) error {
		active, names := u.Active, signInNames(*u)
		if err := change(u); err != nil {
			return err
		}
		if u.Active != active {
			return apperr.Invalid("activate or deactivate a person on its own, not as part of an update").WithCode("invalidValue")
		}
		if !slices.Equal(names, signInNames(*u)) {
			return v.mayTakeOver(*u, roles[id])
		}
		return nil
	})
}

// signInNames are what single sign-on finds a person by (identity.FindForSignIn): the
// userName, then the emails, folded and sorted.
func signInNames(u identity.User) []string {
	out := []string{identity.Fold(u.UserName)}
	for _, val := range u.Values {
		if val.Attr == identity.AttrEmails {
			out = append(out, identity.Fold(val.Value))
		}
	}
	slices.Sort(out[1:])
	return out
}

// mayTakeOver checks that v may change how u signs in (userName, emails): whoever sets
// them to a login of their own is u at the next sign-in, so it takes what giving u's
// roles takes (mayConfer) — only an owner may change an owner's, and nobody may change
// those of someone with a permission they lack.
func (v Viewer) mayTakeOver(u identity.User, roles []RoleAssignment) error {
	for _, a := range roles {
		if err := v.mayConfer(a.Role); err != nil {
			return forbidden("%s holds the %s role, which you may not give: changing their userName or email would hand you their sign-in", displayOf(u), a.Role.Name)
		}
	}
	return nil
}

// SetUserActive activates or deactivates a person, under UpdateUser's rules. Nobody may
// deactivate themselves, and only an owner may deactivate an owner. Deactivation ends
// every session of the person before it returns (identity.Service.UpdateUser).
func (s *Service) SetUserActive(ctx context.Context, v Viewer, id string, active bool) (identity.User, error) {
	ctx = actorCtx(ctx, v)
	u, err := s.changeableUser(ctx, v, id, "activate or deactivate people")
	if err != nil {
		return identity.User{}, err
	}
	if !active && u.Active {
		if u.ID == v.UserID {
			return identity.User{}, apperr.Invalid("you cannot deactivate yourself; ask another administrator").WithCode("invalidValue")
		}
		roles, err := s.UserRoles(ctx, v.TenantID, []string{u.ID})
		if err != nil {
			return identity.User{}, err
		}
		if slices.ContainsFunc(roles[u.ID], func(a RoleAssignment) bool { return a.Role.ID == RoleOwner }) && !v.IsOwner() {
			return identity.User{}, forbidden("only an owner may deactivate an owner")
		}
	}
	return s.identity.UpdateUser(ctx, v.TenantID, id, 0, func(u *identity.User) error {
		u.Active = active
		return nil
	})
}

// groupsAllowed checks the permission, the plan feature and returns the tenant.
func (s *Service) groupsAllowed(ctx context.Context, v Viewer, to string) (tenancy.Tenant, error) {
	if err := v.require(PermManageUserGroups, to); err != nil {
		return tenancy.Tenant{}, err
	}
	t, err := s.tenant(ctx, v.TenantID)
	if err != nil {
		return tenancy.Tenant{}, err
	}
	if !t.Has(tenancy.FeatureUserGroups) {
		return tenancy.Tenant{}, errNoFeature(tenancy.FeatureUserGroups, "user groups")
	}
	return t, nil
}

// CreateGroupAs creates an app-managed group (Source app) with its first members. It
// needs manage_user_groups, the user_groups plan feature and a tenant in manual or mixed
// mode.
func (s *Service) CreateGroupAs(ctx context.Context, v Viewer, name string, memberIDs []string) (Group, error) {
	ctx = actorCtx(ctx, v)
	t, err := s.groupsAllowed(ctx, v, "create groups")
	if err != nil {
		return Group{}, err
	}
	if err := s.appMayCreate(ctx, t, "Groups in this company are"); err != nil {
		return Group{}, err
	}
	if err := s.requireMembers(ctx, v.TenantID, memberIDs); err != nil {
		return Group{}, err
	}
	return s.CreateGroup(ctx, v.TenantID, Group{DisplayName: name, Source: identity.SourceApp}, memberIDs)
}

// requireMembers checks that every id is a user or a group of the tenant. Another
// tenant's ids are not found, as everywhere in the app (SCIM, through resolveMembers,
// calls them invalid values instead, as RFC 7644 asks).
func (s *Service) requireMembers(ctx context.Context, tenantID string, idList []string) error {
	idList = dedupe(idList)
	if len(idList) == 0 {
		return nil
	}
	users, err := s.identity.ExistingUserIDs(ctx, tenantID, idList)
	if err != nil {
		return err
	}
	var rest, groups []string
	for _, id := range idList {
		if _, ok := users[id]; !ok {
			rest = append(rest, id)
		}
	}
	if len(rest) == 0 {
		return nil
	}
	if err := s.db.NewSelect().Model((*Group)(nil)).Column("id").
		Where("tenant_id = ? AND id IN (?)", tenantID, bun.In(rest)).Scan(ctx, &groups); err != nil {
		return err
	}
	for _, id := range rest {
		if !slices.Contains(groups, id) {
			return apperr.NotFound("no user or group with id %q in this tenant", id)
		}
	}
	return nil
}

// changeGroup runs fn, which changes or deletes group id, in one transaction with the
// rules of the app: the mode must let the app change the group; if memberships change,
// the viewer must be able to give or take away every role membership confers (an admin
// cannot join the owners' group); and the tenant must keep an owner.
func (s *Service) changeGroup(ctx context.Context, v Viewer, id, to string, membersChange bool, fn func(ctx context.Context, sx *Service) error) error {
	t, err := s.groupsAllowed(ctx, v, to)
	if err != nil {
		return err
	}
	g, err := s.GetGroup(ctx, v.TenantID, id)
	if err != nil {
		return err
	}
	if err := s.appMayChange(ctx, t, g.Source, "The group "+g.DisplayName+" is"); err != nil {
		return err
	}
	return db.RunInTx(ctx, s.db, func(ctx context.Context, tx bun.Tx) error {
		var roles []Role
		if membersChange {
			if err := lockRoles(ctx, tx, v.TenantID); err != nil {
				return err
			}
			if roles, err = rolesThroughGroup(ctx, tx, v.TenantID, id); err != nil {
				return err
			}
			for _, r := range roles {
				if err := v.mayConfer(r); err != nil {
					return err
				}
			}
		}
		if err := fn(ctx, s.withTx(tx)); err != nil {
			return err
		}
		if slices.ContainsFunc(roles, func(r Role) bool { return r.ID == RoleOwner }) {
			return keepAnOwner(ctx, tx, v.TenantID, "This change to the group "+g.DisplayName)
		}
		return nil
	})
}

// UpdateGroupAs renames a group (nil leaves the name) and adds and removes members, by
// user or group id. It needs manage_user_groups and the user_groups plan feature; in
// scim mode it is refused, in mixed mode only app-managed groups may be changed.
func (s *Service) UpdateGroupAs(ctx context.Context, v Viewer, id string, name *string, add, remove []string) (Group, error) {
	ctx = actorCtx(ctx, v)
	var out Group
	err := s.changeGroup(ctx, v, id, "change groups", len(add)+len(remove) > 0, func(ctx context.Context, sx *Service) error {
		if err := sx.requireMembers(ctx, v.TenantID, add); err != nil {
			return err
		}
		var err error
		out, err = sx.UpdateGroup(ctx, v.TenantID, id, 0, func(g *Group) (MemberChange, error) {
			if name != nil {
				g.DisplayName = *name
			}
			return MemberChange{Add: add, Remove: remove}, nil
		})
		return err
	})
	return out, err
}

// DeleteGroupAs deletes a group under UpdateGroupAs's rules; its memberships, role
// mappings and grants go with it.
func (s *Service) DeleteGroupAs(ctx context.Context, v Viewer, id string) error {
	ctx = actorCtx(ctx, v)
	return s.changeGroup(ctx, v, id, "delete groups", true, func(ctx context.Context, sx *Service) error {
		return sx.DeleteGroup(ctx, v.TenantID, id, 0)
	})
}
