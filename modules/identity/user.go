// Package identity owns people: users (the SCIM User resource with the enterprise
// extension) and, with the SSO work, their sessions. Transports (SCIM, GraphQL) convert
// to and from these types; the rules — uniqueness, validation, what an update changes
// and what it audits — live here so every transport obeys them alike.
package identity

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
)

// Source says who manages a user: the tenant's IdP over SCIM, the IdP through
// just-in-time creation at first SSO sign-in, or the app itself.
type Source string

const (
	SourceSCIM Source = "scim"
	SourceSSO  Source = "sso"
	SourceApp  Source = "app"
)

// Multi-valued attributes kept as Values, in the order the client sent them.
const (
	AttrEmails           = "emails"
	AttrPhoneNumbers     = "phoneNumbers"
	AttrIMs              = "ims"
	AttrPhotos           = "photos"
	AttrAddresses        = "addresses"
	AttrEntitlements     = "entitlements"
	AttrRoles            = "roles"
	AttrX509Certificates = "x509Certificates"
)

// MultiValuedAttrs lists them in the order they are rendered.
var MultiValuedAttrs = []string{AttrEmails, AttrPhoneNumbers, AttrIMs, AttrPhotos, AttrAddresses,
	AttrEntitlements, AttrRoles, AttrX509Certificates}

// Limits on one user, so a hostile payload cannot make a row unbounded.
const (
	MaxStringLen     = 2048
	MaxUserNameLen   = 512
	MaxValuesPerAttr = 100
)

// User is a person in a tenant.
type User struct {
	bun.BaseModel `bun:"table:users,alias:u"`

	ID                string `bun:"id,pk"`
	TenantID          string `bun:"tenant_id"`
	UserName          string `bun:"user_name"`
	UserNameKey       string `bun:"user_name_key"`
	ExternalID        string `bun:"external_id,nullzero"`
	DisplayName       string `bun:"display_name,nullzero"`
	NameFormatted     string `bun:"name_formatted,nullzero"`
	FamilyName        string `bun:"family_name,nullzero"`
	GivenName         string `bun:"given_name,nullzero"`
	MiddleName        string `bun:"middle_name,nullzero"`
	HonorificPrefix   string `bun:"honorific_prefix,nullzero"`
	HonorificSuffix   string `bun:"honorific_suffix,nullzero"`
	NickName          string `bun:"nick_name,nullzero"`
	ProfileURL        string `bun:"profile_url,nullzero"`
	Title             string `bun:"title,nullzero"`
	UserType          string `bun:"user_type,nullzero"`
	PreferredLanguage string `bun:"preferred_language,nullzero"`
	Locale            string `bun:"locale,nullzero"`
	Timezone          string `bun:"timezone,nullzero"`
	Active            bool   `bun:"active"`
	// Enterprise extension (RFC 7643 §4.3).
	EmployeeNumber string `bun:"employee_number,nullzero"`
	CostCenter     string `bun:"cost_center,nullzero"`
	Organization   string `bun:"organization,nullzero"`
	Division       string `bun:"division,nullzero"`
	Department     string `bun:"department,nullzero"`
	ManagerID      string `bun:"manager_id,nullzero"`

	Source    Source    `bun:"source"`
	Version   int64     `bun:"version"`
	CreatedAt time.Time `bun:"created_at"`
	UpdatedAt time.Time `bun:"updated_at"`

	// Values holds the multi-valued attributes; loaded with the user.
	Values []Value `bun:"-"`
	// Ext holds the values of the tenant's own extension attributes (see
	// extensions.go), in (URN, attribute, position) order; loaded with the user.
	Ext []ExtValue `bun:"-"`
}

// Value is one value of a multi-valued attribute. Addresses use the address fields;
// every other attribute uses Value/Display/Type.
type Value struct {
	bun.BaseModel `bun:"table:user_values"`

	UserID        string `bun:"user_id,pk"`
	TenantID      string `bun:"tenant_id"`
	Attr          string `bun:"attr,pk"`
	Position      int    `bun:"position,pk"`
	Value         string `bun:"value,nullzero"`
	ValueKey      string `bun:"value_key,nullzero"`
	Display       string `bun:"display,nullzero"`
	Type          string `bun:"type,nullzero"`
	Primary       bool   `bun:"is_primary"`
	Formatted     string `bun:"formatted,nullzero"`
	StreetAddress string `bun:"street_address,nullzero"`
	Locality      string `bun:"locality,nullzero"`
	Region        string `bun:"region,nullzero"`
	PostalCode    string `bun:"postal_code,nullzero"`
	Country       string `bun:"country,nullzero"`
}

// ValuesOf returns the user's values of one attribute, in order.
func (u *User) ValuesOf(attr string) []Value {
	var out []Value
	for _, v := range u.Values {
		if v.Attr == attr {
			out = append(out, v)
		}
	}
	return out
}

// PrimaryEmail returns the primary email, else the first, else "".
func (u *User) PrimaryEmail() string {
	es := u.ValuesOf(AttrEmails)
	for _, e := range es {
		if e.Primary {
			return e.Value
		}
	}
	if len(es) > 0 {
		return es[0].Value
	}
	return ""
}

// Fold is the one case folding used for case-insensitive uniqueness and lookups.
func Fold(s string) string { return strings.ToLower(s) }

// normalize validates u and fills its derived fields (keys, positions, tenant ids).
func (u *User) normalize() error {
	u.UserName = strings.TrimSpace(u.UserName)
	if u.UserName == "" {
		return apperr.Invalid("userName is required").WithCode("invalidValue")
	}
	if utf8.RuneCountInString(u.UserName) > MaxUserNameLen {
		return apperr.Invalid("userName is longer than %d characters", MaxUserNameLen).WithCode("invalidValue")
	}
	u.UserNameKey = Fold(u.UserName)
	for name, s := range u.strings() {
		if len(*s) > MaxStringLen {
			return apperr.Invalid("%s is longer than %d bytes", name, MaxStringLen).WithCode("invalidValue")
		}
		if !utf8.ValidString(*s) {
			return apperr.Invalid("%s is not valid UTF-8", name).WithCode("invalidValue")
		}
	}
	if u.Source == "" {
		u.Source = SourceSCIM
	}
	counts := map[string]int{}
	for i := range u.Values {
		v := &u.Values[i]
		if !slices.Contains(MultiValuedAttrs, v.Attr) {
			return fmt.Errorf("identity: unknown multi-valued attribute %q", v.Attr)
		}
		v.Position = counts[v.Attr]
		counts[v.Attr]++
		if counts[v.Attr] > MaxValuesPerAttr {
			return apperr.Invalid("%s has more than %d values", v.Attr, MaxValuesPerAttr).WithCode("invalidValue")
		}
		v.UserID, v.TenantID = u.ID, u.TenantID
		v.ValueKey = Fold(v.Value)
		for _, s := range []string{v.Value, v.Display, v.Type, v.Formatted, v.StreetAddress, v.Locality, v.Region, v.PostalCode, v.Country} {
			if len(s) > MaxStringLen {
				return apperr.Invalid("a value of %s is longer than %d bytes", v.Attr, MaxStringLen).WithCode("invalidValue")
			}
		}
	}
	return nil
}

// strings lists the single-valued string attributes by SCIM name, for validation and
// audit diffs.
func (u *User) strings() map[string]*string {
	return map[string]*string{
		"userName": &u.UserName, "externalId": &u.ExternalID, "displayName": &u.DisplayName,
		"name.formatted": &u.NameFormatted, "name.familyName": &u.FamilyName, "name.givenName": &u.GivenName,
		"name.middleName": &u.MiddleName, "name.honorificPrefix": &u.HonorificPrefix,
		"name.honorificSuffix": &u.HonorificSuffix, "nickName": &u.NickName, "profileUrl": &u.ProfileURL,
		"title": &u.Title, "userType": &u.UserType, "preferredLanguage": &u.PreferredLanguage,
		"locale": &u.Locale, "timezone": &u.Timezone,
		"employeeNumber": &u.EmployeeNumber, "costCenter": &u.CostCenter, "organization": &u.Organization,
		"division": &u.Division, "department": &u.Department, "manager": &u.ManagerID,
	}
}
