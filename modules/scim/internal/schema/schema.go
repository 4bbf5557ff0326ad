// Package schema is the SCIM 2.0 schema catalogue of the service provider.
//
// It defines the RFC 7643 resource schemas (core User, Enterprise User
// extension, core Group) and the common attributes every resource carries,
// and builds on them a [Registry] that
//
//   - renders the discovery endpoints /Schemas, /ResourceTypes and
//     /ServiceProviderConfig (RFC 7643 §5–§8.7, RFC 7644 §4);
//   - resolves attribute paths case-insensitively (RFC 7643 §2.1 makes
//     attribute names case-insensitive) for filters, sorting and PATCH
//     paths ([Registry.Resolve]);
//   - applies the "attributes" / "excludedAttributes" query parameters
//     together with each attribute's "returned" characteristic
//     (RFC 7644 §3.4.2.5, §3.9; RFC 7643 §7) ([Registry.Project]).
//
// A Registry is immutable once built: tenant-defined extension schemas are
// added with [Registry.Extend], which returns a new Registry and leaves the
// receiver untouched, so one base Registry can be shared by all requests.
// Schemas, attributes and resource types handed out by a Registry are shared
// with it and must be treated as read-only.
package schema

import (
	"errors"
	"strings"
)

// Schema URNs defined by RFC 7643.
const (
	UserURN                  = "urn:ietf:params:scim:schemas:core:2.0:User"
	GroupURN                 = "urn:ietf:params:scim:schemas:core:2.0:Group"
	EnterpriseUserURN        = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	SchemaURN                = "urn:ietf:params:scim:schemas:core:2.0:Schema"
	ResourceTypeURN          = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
	ServiceProviderConfigURN = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
)

// Attribute data types (RFC 7643 §2.3).
const (
	TypeString    = "string"
	TypeBoolean   = "boolean"
	TypeDecimal   = "decimal"
	TypeInteger   = "integer"
	TypeDateTime  = "dateTime"
	TypeReference = "reference"
	TypeComplex   = "complex"
	TypeBinary    = "binary"
)

// Values of the "mutability" characteristic (RFC 7643 §7).
const (
	MutabilityReadOnly  = "readOnly"
	MutabilityReadWrite = "readWrite"
	MutabilityImmutable = "immutable"
	MutabilityWriteOnly = "writeOnly"
)

// Values of the "returned" characteristic (RFC 7643 §7).
const (
	ReturnedAlways  = "always"
	ReturnedNever   = "never"
	ReturnedDefault = "default"
	ReturnedRequest = "request"
)

// Values of the "uniqueness" characteristic (RFC 7643 §7).
const (
	UniquenessNone   = "none"
	UniquenessServer = "server"
	UniquenessGlobal = "global"
)

// Errors returned (wrapped) by this package; test with errors.Is.
var (
	// ErrUnknownAttribute reports an attribute path that names no attribute
	// of the resource type. Callers usually answer 400 with scimType
	// "invalidPath" (PATCH) or "invalidFilter" (filters), RFC 7644 §3.12.
	ErrUnknownAttribute = errors.New("unknown attribute")
	// ErrAmbiguousAttribute reports an attribute name without a schema URN
	// that is defined by more than one extension schema of the resource type.
	ErrAmbiguousAttribute = errors.New("ambiguous attribute")
	// ErrUnknownResourceType reports a resource type the Registry does not
	// serve.
	ErrUnknownResourceType = errors.New("unknown resource type")
	// ErrInvalidPath reports a syntactically invalid attribute path.
	ErrInvalidPath = errors.New("invalid attribute path")
	// ErrInvalidSchema reports an extension schema that cannot be
	// registered.
	ErrInvalidSchema = errors.New("invalid schema")
)

// Attribute is an attribute definition as served by /Schemas (RFC 7643 §7).
//
// All characteristics are always encoded (even false / "none") so clients
// never have to apply the RFC 7643 §2.2 defaults themselves.
type Attribute struct {
	Name            string       `json:"name"`
	Type            string       `json:"type"`
	MultiValued     bool         `json:"multiValued"`
	Description     string       `json:"description"`
	Required        bool         `json:"required"`
	CaseExact       bool         `json:"caseExact"`
	Mutability      string       `json:"mutability"`
	Returned        string       `json:"returned"`
	Uniqueness      string       `json:"uniqueness"`
	CanonicalValues []string     `json:"canonicalValues,omitempty"`
	ReferenceTypes  []string     `json:"referenceTypes,omitempty"`
	SubAttributes   []*Attribute `json:"subAttributes,omitempty"`
}

// Sub returns the sub-attribute called name, compared case-insensitively
// (RFC 7643 §2.1), or nil.
func (a *Attribute) Sub(name string) *Attribute {
	return findAttr(a.SubAttributes, name)
}

// IsComplex reports whether a is of type complex.
func (a *Attribute) IsComplex() bool { return a.Type == TypeComplex }

// Clone returns a deep copy of a.
func (a *Attribute) Clone() *Attribute {
	if a == nil {
		return nil
	}
	c := *a
	c.CanonicalValues = cloneStrings(a.CanonicalValues)
	c.ReferenceTypes = cloneStrings(a.ReferenceTypes)
	c.SubAttributes = cloneAttrs(a.SubAttributes)
	return &c
}

// Schema is a resource or extension schema (RFC 7643 §7). Common
// attributes (id, externalId, meta) are not part of it, as in the RFC 7643
// §8.7.1 representations; see [CommonAttributes].
type Schema struct {
	ID          string       `json:"id"`
	Name        string       `json:"name"`
	Description string       `json:"description"`
	Attributes  []*Attribute `json:"attributes"`
}

// Attribute returns the top-level attribute called name, compared
// case-insensitively, or nil.
func (s *Schema) Attribute(name string) *Attribute {
	return findAttr(s.Attributes, name)
}

// Clone returns a deep copy of s.
func (s *Schema) Clone() *Schema {
	if s == nil {
		return nil
	}
	c := *s
	c.Attributes = cloneAttrs(s.Attributes)
	return &c
}

// ResourceType describes a resource endpoint (RFC 7643 §6).
type ResourceType struct {
	ID               string      `json:"id"`
	Name             string      `json:"name"`
	Endpoint         string      `json:"endpoint"`
	Description      string      `json:"description"`
	Schema           string      `json:"schema"`
	SchemaExtensions []Extension `json:"schemaExtensions,omitempty"`
}

// Extension is an entry of ResourceType.SchemaExtensions (RFC 7643 §6).
type Extension struct {
	Schema   string `json:"schema"`
	Required bool   `json:"required"`
}

func (rt *ResourceType) clone() *ResourceType {
	c := *rt
	c.SchemaExtensions = append([]Extension(nil), rt.SchemaExtensions...)
	return &c
}

func findAttr(attrs []*Attribute, name string) *Attribute {
	for _, a := range attrs {
		if strings.EqualFold(a.Name, name) {
			return a
		}
	}
	return nil
}

func cloneAttrs(attrs []*Attribute) []*Attribute {
	if attrs == nil {
		return nil
	}
	out := make([]*Attribute, len(attrs))
	for i, a := range attrs {
		out[i] = a.Clone()
	}
	return out
}

func cloneStrings(s []string) []string {
	if s == nil {
		return nil
	}
	return append([]string(nil), s...)
}
