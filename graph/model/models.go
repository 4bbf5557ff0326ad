// Models written by hand (bound in gqlgen.yml) where a GraphQL object needs data the
// schema does not show: the raw ids its field resolvers load more from. Schema fields
// missing here are resolved by resolvers.

package model

import "time"

// User is a person; groups, roles and effectiveSpaces are resolved (batched).
type User struct {
	ID          string // global id
	RawID       string
	UserName    string
	DisplayName string
	GivenName   string
	FamilyName  string
	Email       string
	Active      bool
	Source      UserSource
	Editable    bool
	Version     string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

func (User) IsNode()         {}
func (u User) GetID() string { return u.ID }
func (User) IsPrincipal()    {}

// Group is a group; members and spaceGrants are resolved.
type Group struct {
	ID          string
	RawID       string
	DisplayName string
	Source      UserSource
	Editable    bool
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

func (Group) IsNode()         {}
func (g Group) GetID() string { return g.ID }
func (Group) IsPrincipal()    {}

// Space is a space; grants, effectiveMembers and viewerRole are resolved.
type Space struct {
	ID          string
	RawID       string
	Name        string
	Description string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

func (Space) IsNode()         {}
func (s Space) GetID() string { return s.ID }

// Tenant is an organisation; serviceProvider, samlConnection and scimTokens are resolved.
type Tenant struct {
	ID               string
	RawID            string
	Slug             string
	Name             string
	ProvisioningMode ProvisioningMode
	Features         []string
	Settings         *TenantSettings
}

func (Tenant) IsNode()         {}
func (t Tenant) GetID() string { return t.ID }

// SpaceGrant is a grant; space and principal are resolved.
type SpaceGrant struct {
	ID             string
	Role           SpaceRole
	CreatedAt      time.Time
	SpaceRawID     string
	PrincipalType  string // "user" or "group"
	PrincipalRawID string
}

// AccessSource says where access comes from; group is resolved.
type AccessSource struct {
	Kind       AccessSourceKind
	Role       SpaceRole
	GroupRawID string
}

// SpaceAccess is a space a user can open; space is resolved.
type SpaceAccess struct {
	Role       SpaceRole
	Sources    []*AccessSource
	SpaceRawID string
}

// SpaceMember is a user with access to a space; user is resolved.
type SpaceMember struct {
	Role      SpaceRole
	Sources   []*AccessSource
	UserRawID string
}

// RoleAssignment is a role held; group is resolved.
type RoleAssignment struct {
	Role       *Role
	Source     RoleSource
	GroupRawID string
}

// RoleMapping maps a group to a role; group is resolved.
type RoleMapping struct {
	Role       *Role
	GroupRawID string
}

// Viewer is the signed-in person; every field is resolved.
type Viewer struct{}
