package graph

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/graph/model"
	"github.com/gatehouse-dev/gatehouse/modules/access"
	"github.com/gatehouse-dev/gatehouse/modules/identity"
	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

// Named converters from module types to GraphQL models, one per type.

// tenantOf returns the request's tenant: the one read with the viewer, or the one a
// settings change of this request returned.
func (r *Resolver) tenantOf(ctx context.Context, v access.Viewer) (tenancy.Tenant, error) {
	req := requestFrom(ctx)
	req.tenantOnce.Do(func() {
		var ok bool
		if req.tenant, ok = v.Tenant(); !ok {
			req.tenant, req.tenantErr = r.Tenancy.Tenant(ctx, v.TenantID)
		}
	})
	return req.tenant, req.tenantErr
}

// setTenant makes t the request's tenant (after a settings change returned it).
func setTenant(ctx context.Context, t tenancy.Tenant) {
	req := requestFrom(ctx)
	req.tenantOnce = sync.Once{}
	req.tenantOnce.Do(func() { req.tenant, req.tenantErr = t, nil })
}

func toUser(u identity.User, mode tenancy.ProvisioningMode) *model.User {
	return &model.User{ID: globalID(kindUser, u.ID), RawID: u.ID, UserName: u.UserName, DisplayName: u.DisplayName,
		GivenName: u.GivenName, FamilyName: u.FamilyName, Email: u.PrimaryEmail(), Active: u.Active,
		Source: toSource(u.Source), Editable: access.Editable(mode, u.Source), Version: strconv.FormatInt(u.Version, 10),
		CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
}

func toGroup(g access.Group, mode tenancy.ProvisioningMode) *model.Group {
	return &model.Group{ID: globalID(kindGroup, g.ID), RawID: g.ID, DisplayName: g.DisplayName,
		Source: toSource(g.Source), Editable: access.Editable(mode, g.Source), CreatedAt: g.CreatedAt, UpdatedAt: g.UpdatedAt}
}

func toSource(s identity.Source) model.UserSource {
	switch s {
	case identity.SourceApp:
		return model.UserSourceApp
	case identity.SourceSSO:
		return model.UserSourceSso
	}
	return model.UserSourceScim
}

func toSpace(s access.Space) *model.Space {
	return &model.Space{ID: globalID(kindSpace, s.ID), RawID: s.ID, Name: s.Name, Description: s.Description,
		CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt}
}

func toTenant(t tenancy.Tenant) *model.Tenant {
	fs := make([]string, len(t.Features))
	for i, f := range t.Features {
		fs[i] = string(f)
	}
	return &model.Tenant{ID: globalID(kindTenant, t.ID), RawID: t.ID, Slug: t.Slug, Name: t.Name,
		ProvisioningMode: model.ProvisioningMode(strings.ToUpper(string(t.ProvisioningMode))), Features: fs,
		Settings: &model.TenantSettings{JitProvisioning: t.JITProvisioning, IdpInitiatedSso: t.IdPInitiatedSSO,
			SessionIdleTimeoutSeconds: int(t.SessionIdleTimeout / time.Second),
			SessionMaxLifetimeSeconds: int(t.SessionMaxLifetime / time.Second)}}
}

func toSpaceRole(r access.SpaceRole) model.SpaceRole {
	return model.SpaceRole(strings.ToUpper(string(r)))
}

func fromSpaceRole(r model.SpaceRole) access.SpaceRole {
	return access.SpaceRole(strings.ToLower(string(r)))
}

func toPermissions(ps []access.Permission) []model.Permission {
	out := make([]model.Permission, len(ps))
	for i, p := range ps {
		out[i] = model.Permission(strings.ToUpper(string(p)))
	}
	return out
}

func fromPermissions(ps []model.Permission) []access.Permission {
	out := make([]access.Permission, len(ps))
	for i, p := range ps {
		out[i] = access.Permission(strings.ToLower(string(p)))
	}
	return out
}

func toRole(r access.Role) *model.Role {
	return &model.Role{ID: r.ID, Name: r.Name, Permissions: toPermissions(r.Permissions), BuiltIn: r.BuiltIn}
}

func toRoleAssignment(a access.RoleAssignment) *model.RoleAssignment {
	src := model.RoleSourceDirect
	if a.Source == "group" {
		src = model.RoleSourceGroup
	}
	return &model.RoleAssignment{Role: toRole(a.Role), Source: src, GroupRawID: a.GroupID}
}

func toGrant(g access.Grant) *model.SpaceGrant {
	return &model.SpaceGrant{ID: g.ID, Role: toSpaceRole(g.Role), CreatedAt: g.CreatedAt, SpaceRawID: g.SpaceID,
		PrincipalType: g.PrincipalType, PrincipalRawID: g.PrincipalID}
}

func toSources(ss []access.AccessSource) []*model.AccessSource {
	out := make([]*model.AccessSource, len(ss))
	for i, s := range ss {
		kind := model.AccessSourceKindDirect
		if s.Kind == "group" {
			kind = model.AccessSourceKindGroup
		}
		out[i] = &model.AccessSource{Kind: kind, Role: toSpaceRole(s.Role), GroupRawID: s.GroupID}
	}
	return out
}

func toSession(s identity.Session, current string) *model.Session {
	return &model.Session{ID: s.ID, CreatedAt: s.CreatedAt, ExpiresAt: s.ExpiresAt, LastSeenAt: s.LastSeenAt,
		IP: s.IP, UserAgent: s.UserAgent, Current: s.ID == current}
}

func toSCIMToken(t tenancy.SCIMToken, now time.Time) *model.SCIMToken {
	return &model.SCIMToken{ID: t.ID, Name: t.Name, Hint: t.Hint, State: t.State(now), CreatedAt: t.CreatedAt,
		LastUsedAt: t.LastUsedAt, ExpiresAt: t.ExpiresAt}
}

func toSAMLConnection(c tenancy.SAMLConnection, now time.Time) (*model.SAMLConnection, error) {
	certs, err := c.X509Certificates()
	if err != nil {
		return nil, err
	}
	out := &model.SAMLConnection{IdpEntityID: c.IdPEntityID, SsoURL: c.SSOURL, SloURL: c.SLOURL, NameIDFormat: c.NameIDFormat,
		SignRequests: c.SignRequests, MetadataURL: c.MetadataURL, Warnings: c.Warnings(now), UpdatedAt: c.UpdatedAt,
		Attributes: &model.SAMLAttributes{Email: c.Attributes.Email, GivenName: c.Attributes.GivenName,
			FamilyName: c.Attributes.FamilyName, Groups: c.Attributes.Groups}}
	if out.Warnings == nil {
		out.Warnings = []string{}
	}
	for _, x := range certs {
		out.Certificates = append(out.Certificates, &model.Certificate{Subject: x.Subject.String(),
			Sha256Fingerprint: tenancy.CertificateFingerprint(x), NotAfter: x.NotAfter, Expired: now.After(x.NotAfter)})
	}
	return out, nil
}

// parseVersion reads the opaque version a client passes back ("" = no check).
func parseVersion(v *string) (int64, error) {
	if v == nil || *v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(*v, 10, 64)
	if err != nil || n < 1 {
		return 0, apperr.Invalid("ifVersion %q is not a version read from this API", *v)
	}
	return n, nil
}

func toScimExtension(x identity.UserExtension) *model.ScimExtension {
	out := &model.ScimExtension{Urn: x.URN, Name: x.Name, Description: x.Description, CreatedAt: x.CreatedAt,
		UpdatedAt: x.UpdatedAt, Attributes: make([]*model.ScimExtensionAttribute, len(x.Attributes))}
	for i, a := range x.Attributes {
		out.Attributes[i] = &model.ScimExtensionAttribute{Name: a.Name, Type: a.Type, MultiValued: a.MultiValued,
			Description: a.Description, Required: a.Required, CaseExact: a.CaseExact, Mutability: a.Mutability,
			Returned: a.Returned, Uniqueness: a.Uniqueness, Indexed: a.Indexed}
	}
	return out
}
