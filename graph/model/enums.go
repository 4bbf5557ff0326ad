// Code written by hand, not generated: the schema's enums as Go types, bound in
// gqlgen.yml so the hand-written models in models.go can use them.

package model

import (
	"fmt"
	"io"
	"strconv"
)

// enumValue checks and unmarshals a GraphQL enum value.
func enumValue(v any, name string, valid func(string) bool) (string, error) {
	s, ok := v.(string)
	if !ok || !valid(s) {
		return "", fmt.Errorf("%v is not a valid %s", v, name)
	}
	return s, nil
}

// Permission is the GraphQL enum Permission.
type Permission string

const (
	PermissionManageCompanySettings Permission = "MANAGE_COMPANY_SETTINGS"
	PermissionManageUsers           Permission = "MANAGE_USERS"
	PermissionManageUserGroups      Permission = "MANAGE_USER_GROUPS"
	PermissionManageSpaces          Permission = "MANAGE_SPACES"
	PermissionViewAuditLog          Permission = "VIEW_AUDIT_LOG"
)

// AllPermission lists every Permission.
var AllPermission = []Permission{PermissionManageCompanySettings, PermissionManageUsers, PermissionManageUserGroups, PermissionManageSpaces, PermissionViewAuditLog}

func (e Permission) IsValid() bool {
	for _, x := range AllPermission {
		if e == x {
			return true
		}
	}
	return false
}

func (e Permission) String() string { return string(e) }

func (e *Permission) UnmarshalGQL(v any) error {
	s, err := enumValue(v, "Permission", func(s string) bool { return Permission(s).IsValid() })
	*e = Permission(s)
	return err
}

func (e Permission) MarshalGQL(w io.Writer) { fmt.Fprint(w, strconv.Quote(string(e))) }

// ProvisioningMode is the GraphQL enum ProvisioningMode.
type ProvisioningMode string

const (
	ProvisioningModeScim   ProvisioningMode = "SCIM"
	ProvisioningModeManual ProvisioningMode = "MANUAL"
	ProvisioningModeMixed  ProvisioningMode = "MIXED"
)

// AllProvisioningMode lists every ProvisioningMode.
var AllProvisioningMode = []ProvisioningMode{ProvisioningModeScim, ProvisioningModeManual, ProvisioningModeMixed}

func (e ProvisioningMode) IsValid() bool {
	for _, x := range AllProvisioningMode {
		if e == x {
			return true
		}
	}
	return false
}

func (e ProvisioningMode) String() string { return string(e) }

func (e *ProvisioningMode) UnmarshalGQL(v any) error {
	s, err := enumValue(v, "ProvisioningMode", func(s string) bool { return ProvisioningMode(s).IsValid() })
	*e = ProvisioningMode(s)
	return err
}

func (e ProvisioningMode) MarshalGQL(w io.Writer) { fmt.Fprint(w, strconv.Quote(string(e))) }

// UserSource is the GraphQL enum UserSource.
type UserSource string

const (
	UserSourceScim UserSource = "SCIM"
	UserSourceSso  UserSource = "SSO"
	UserSourceApp  UserSource = "APP"
)

// AllUserSource lists every UserSource.
var AllUserSource = []UserSource{UserSourceScim, UserSourceSso, UserSourceApp}

func (e UserSource) IsValid() bool {
	for _, x := range AllUserSource {
		if e == x {
			return true
		}
	}
	return false
}

func (e UserSource) String() string { return string(e) }

func (e *UserSource) UnmarshalGQL(v any) error {
	s, err := enumValue(v, "UserSource", func(s string) bool { return UserSource(s).IsValid() })
	*e = UserSource(s)
	return err
}

func (e UserSource) MarshalGQL(w io.Writer) { fmt.Fprint(w, strconv.Quote(string(e))) }

// SpaceRole is the GraphQL enum SpaceRole.
type SpaceRole string

const (
	SpaceRoleViewer  SpaceRole = "VIEWER"
	SpaceRoleEditor  SpaceRole = "EDITOR"
	SpaceRoleManager SpaceRole = "MANAGER"
)

// AllSpaceRole lists every SpaceRole.
var AllSpaceRole = []SpaceRole{SpaceRoleViewer, SpaceRoleEditor, SpaceRoleManager}

func (e SpaceRole) IsValid() bool {
	for _, x := range AllSpaceRole {
		if e == x {
			return true
		}
	}
	return false
}

func (e SpaceRole) String() string { return string(e) }

func (e *SpaceRole) UnmarshalGQL(v any) error {
	s, err := enumValue(v, "SpaceRole", func(s string) bool { return SpaceRole(s).IsValid() })
	*e = SpaceRole(s)
	return err
}

func (e SpaceRole) MarshalGQL(w io.Writer) { fmt.Fprint(w, strconv.Quote(string(e))) }

// AccessSourceKind is the GraphQL enum AccessSourceKind.
type AccessSourceKind string

const (
	AccessSourceKindDirect AccessSourceKind = "DIRECT"
	AccessSourceKindGroup  AccessSourceKind = "GROUP"
)

// AllAccessSourceKind lists every AccessSourceKind.
var AllAccessSourceKind = []AccessSourceKind{AccessSourceKindDirect, AccessSourceKindGroup}

func (e AccessSourceKind) IsValid() bool {
	for _, x := range AllAccessSourceKind {
		if e == x {
			return true
		}
	}
	return false
}

func (e AccessSourceKind) String() string { return string(e) }

func (e *AccessSourceKind) UnmarshalGQL(v any) error {
	s, err := enumValue(v, "AccessSourceKind", func(s string) bool { return AccessSourceKind(s).IsValid() })
	*e = AccessSourceKind(s)
	return err
}

func (e AccessSourceKind) MarshalGQL(w io.Writer) { fmt.Fprint(w, strconv.Quote(string(e))) }

// RoleSource is the GraphQL enum RoleSource.
type RoleSource string

const (
	RoleSourceDirect RoleSource = "DIRECT"
	RoleSourceGroup  RoleSource = "GROUP"
)

// AllRoleSource lists every RoleSource.
var AllRoleSource = []RoleSource{RoleSourceDirect, RoleSourceGroup}

func (e RoleSource) IsValid() bool {
	for _, x := range AllRoleSource {
		if e == x {
			return true
		}
	}
	return false
}

func (e RoleSource) String() string { return string(e) }

func (e *RoleSource) UnmarshalGQL(v any) error {
	s, err := enumValue(v, "RoleSource", func(s string) bool { return RoleSource(s).IsValid() })
	*e = RoleSource(s)
	return err
}

func (e RoleSource) MarshalGQL(w io.Writer) { fmt.Fprint(w, strconv.Quote(string(e))) }
