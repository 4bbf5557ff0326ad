package access

import (
	"context"
	"time"

	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/identity"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

// Company administration done by a person of the company. The tenancy, identity and
// audit modules carry these changes out for anyone who calls them (the CLI's operator,
// SCIM); who among a company's people may ask for them is decided here, so every
// transport that acts for a person gets the same answer. Each call names the viewer as
// the audit actor.

// UpdateTenantSettings changes the viewer's company's settings: name, provisioning mode,
// just-in-time provisioning, IdP-initiated sign-in and session lifetimes. It needs
// manage_company_settings. The plan's features, the audit retention and the SCIM rate
// limit are the operator's (the command line) and are refused here.
func (s *Service) UpdateTenantSettings(ctx context.Context, v Viewer, p tenancy.SettingsPatch) (tenancy.Tenant, error) {
	if err := v.require(PermManageCompanySettings, "change the company's settings"); err != nil {
		return tenancy.Tenant{}, err
	}
	if p.Features != nil || p.AuditRetentionDays != nil || p.SCIMRateLimit != nil {
		return tenancy.Tenant{}, forbidden("the plan's features, the audit retention and the SCIM rate limit are set by the operator of this Gatehouse")
	}
	if s.tenants == nil {
		return tenancy.Tenant{}, errNoTenancy
	}
	return s.tenants.UpdateSettings(actorCtx(ctx, v), v.TenantID, p)
}

// ConfigureSAML sets up or replaces the company's SAML identity provider. Only an owner
// may: see requireOwner.
func (s *Service) ConfigureSAML(ctx context.Context, v Viewer, in tenancy.SAMLConfigInput) (tenancy.SAMLConnection, error) {
	if err := v.requireOwner("configure single sign-on", "whoever chooses the identity provider chooses who signs in as each person"); err != nil {
		return tenancy.SAMLConnection{}, err
	}
	if s.tenants == nil {
		return tenancy.SAMLConnection{}, errNoTenancy
	}
	return s.tenants.ConfigureSAML(actorCtx(ctx, v), v.TenantID, in)
}

// SAMLConnection returns the company's SAML connection (not found until configured). It
// needs manage_company_settings.
func (s *Service) SAMLConnection(ctx context.Context, v Viewer) (tenancy.SAMLConnection, error) {
	if err := v.require(PermManageCompanySettings, "see the single sign-on configuration"); err != nil {
		return tenancy.SAMLConnection{}, err
	}
	if s.tenants == nil {
		return tenancy.SAMLConnection{}, errNoTenancy
	}
	return s.tenants.SAMLConnection(ctx, v.TenantID)
}

// IssueSCIMToken issues a SCIM token for the company (ttl 0: it does not expire); the
// secret is in the result only. Only an owner may: see requireOwner.
func (s *Service) IssueSCIMToken(ctx context.Context, v Viewer, name string, ttl time.Duration) (tenancy.IssuedToken, error) {
	if err := v.requireOwner("issue SCIM tokens", "a SCIM token can put anyone in any group, including those mapped to the owner role"); err != nil {
		return tenancy.IssuedToken{}, err
	}
	if s.tenants == nil {
		return tenancy.IssuedToken{}, errNoTenancy
	}
	return s.tenants.IssueSCIMToken(actorCtx(ctx, v), v.TenantID, name, ttl)
}

// RevokeSCIMToken revokes one of the company's SCIM tokens. It needs
// manage_company_settings; another company's token is not found.
func (s *Service) RevokeSCIMToken(ctx context.Context, v Viewer, tokenID string) error {
	if err := v.require(PermManageCompanySettings, "revoke SCIM tokens"); err != nil {
		return err
	}
	if s.tenants == nil {
		return errNoTenancy
	}
	return s.tenants.RevokeSCIMToken(actorCtx(ctx, v), v.TenantID, tokenID)
}

// SCIMTokens lists the company's SCIM tokens, never their secrets. It needs
// manage_company_settings.
func (s *Service) SCIMTokens(ctx context.Context, v Viewer) ([]tenancy.SCIMToken, error) {
	if err := v.require(PermManageCompanySettings, "see the SCIM tokens"); err != nil {
		return nil, err
	}
	if s.tenants == nil {
		return nil, errNoTenancy
	}
	return s.tenants.ListSCIMTokens(ctx, v.TenantID)
}

// SCIMExtensions lists the company's SCIM User extension schemas. It needs
// manage_company_settings.
func (s *Service) SCIMExtensions(ctx context.Context, v Viewer) ([]identity.UserExtension, error) {
	if err := v.require(PermManageCompanySettings, "see the SCIM extension schemas"); err != nil {
		return nil, err
	}
	return s.identity.UserExtensions(ctx, v.TenantID)
}

// SetSCIMExtension declares or redeclares a SCIM User extension of the company from an
// RFC 7643 §7 schema resource, exactly as `gatehouse scim-extension set` does
// (identity.Service.SetUserExtension). It needs manage_company_settings.
func (s *Service) SetSCIMExtension(ctx context.Context, v Viewer, def []byte) (identity.UserExtension, error) {
	if err := v.require(PermManageCompanySettings, "declare SCIM extension schemas"); err != nil {
		return identity.UserExtension{}, err
	}
	return s.identity.SetUserExtension(actorCtx(ctx, v), v.TenantID, def)
}

// RemoveSCIMExtension removes a SCIM User extension of the company and every value of
// it. It needs manage_company_settings.
func (s *Service) RemoveSCIMExtension(ctx context.Context, v Viewer, urn string) error {
	if err := v.require(PermManageCompanySettings, "remove SCIM extension schemas"); err != nil {
		return err
	}
	return s.identity.RemoveUserExtension(actorCtx(ctx, v), v.TenantID, urn)
}

// RevokeUserSessions ends every session of one of the company's people at once and
// returns how many ended. It needs manage_users; another company's user is not found.
func (s *Service) RevokeUserSessions(ctx context.Context, v Viewer, userID string) (int, error) {
	if err := v.require(PermManageUsers, "end people's sessions"); err != nil {
		return 0, err
	}
	users, err := s.identity.ExistingUserIDs(ctx, v.TenantID, []string{userID})
	if err != nil {
		return 0, err
	}
	if _, ok := users[userID]; !ok {
		return 0, errUserNotFound(userID)
	}
	return s.identity.RevokeUserSessions(actorCtx(ctx, v), v.TenantID, userID)
}

// RequireAuditReader checks that v may read the company's audit log (view_audit_log),
// as a page (AuditEvents) or live.
func (s *Service) RequireAuditReader(v Viewer) error {
	return v.require(PermViewAuditLog, "read the audit log")
}

// AuditEvents returns a page of the company's audit log after afterSeq (see
// audit.Log.Page). It needs view_audit_log.
func (s *Service) AuditEvents(ctx context.Context, v Viewer, f audit.Filter, afterSeq int64, first int) ([]audit.Stored, bool, error) {
	if err := s.RequireAuditReader(v); err != nil {
		return nil, false, err
	}
	// A page after a cursor whose next events retention deleted would hide the hole. The
	// check follows the read, so a prune between the two is seen too (checked first, a
	// prune landing in between would go unnoticed).
	events, more, err := s.audit.Page(ctx, s.db, v.TenantID, f, afterSeq, first)
	if err != nil {
		return nil, false, err
	}
	if err := s.audit.CheckResume(ctx, s.db, v.TenantID, afterSeq); err != nil {
		return nil, false, err
	}
	return events, more, nil
}
