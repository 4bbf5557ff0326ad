package schema

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Registry is the catalogue of resource types and schemas a service
// provider serves. It is immutable after construction and safe for
// concurrent use; [Registry.Extend] derives a new Registry.
type Registry struct {
	schemas       []*Schema       // sorted by ID, for stable /Schemas output
	resourceTypes []*ResourceType // sorted by Name
	common        []*Attribute
}

// NewRegistry returns a Registry serving the User (with the optional
// Enterprise User extension) and Group resource types plus the given extra
// extension schemas.
//
// Each extra schema is attached, as a non-required extension, to the
// resource type named by the last colon-separated segment of its ID, which
// is the RFC 7643 §3.3 naming convention (e.g.
// "urn:example:params:scim:schemas:extension:acme:2.0:User" extends User).
// Use [Registry.Extend] to choose the resource type or required flag
// explicitly. The extra schemas are copied; the error is always nil when
// no extra schema is given.
func NewRegistry(extra ...*Schema) (*Registry, error) {
	r := &Registry{
		schemas:       []*Schema{UserSchema(), EnterpriseUserSchema(), GroupSchema()},
		resourceTypes: []*ResourceType{userResourceType(), groupResourceType()},
		common:        CommonAttributes(),
	}
	r.sort()
	for _, s := range extra {
		if s == nil {
			return nil, fmt.Errorf("%w: nil schema", ErrInvalidSchema)
		}
		rt := s.ID[strings.LastIndexByte(s.ID, ':')+1:]
		if _, ok := r.ResourceType(rt); !ok {
			return nil, fmt.Errorf("%w: cannot infer the resource type extended by %q; use Registry.Extend", ErrInvalidSchema, s.ID)
		}
		var err error
		if r, err = r.Extend(rt, false, s); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Extend returns a new Registry in which the given extension schemas are
// registered and attached to resourceType (RFC 7643 §6
// "schemaExtensions"); r itself is not modified, so a base Registry built
// once can cheaply be extended per request with tenant-defined schemas.
//
// The schemas are deep-copied and their attributes normalized: empty
// characteristics get the RFC 7643 §2.2 defaults (type string, mutability
// readWrite, returned default, uniqueness none). Extend fails if a schema ID
// is not a URN, is already registered, or an attribute is malformed.
func (r *Registry) Extend(resourceType string, required bool, schemas ...*Schema) (*Registry, error) {
	rt, ok := r.ResourceType(resourceType)
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownResourceType, resourceType)
	}
	n := &Registry{
		schemas:       slices.Clone(r.schemas),
		resourceTypes: slices.Clone(r.resourceTypes),
		common:        r.common,
	}
	rt = rt.clone()
	for _, s := range schemas {
		c, err := normalizeSchema(s)
		if err != nil {
			return nil, err
		}
		if _, dup := n.Schema(c.ID); dup {
			return nil, fmt.Errorf("%w: schema %q is already registered", ErrInvalidSchema, c.ID)
		}
		n.schemas = append(n.schemas, c)
		rt.SchemaExtensions = append(rt.SchemaExtensions, Extension{Schema: c.ID, Required: required})
	}
	slices.SortFunc(rt.SchemaExtensions, func(a, b Extension) int { return strings.Compare(a.Schema, b.Schema) })
	for i, x := range n.resourceTypes {
		if x.Name == rt.Name {
			n.resourceTypes[i] = rt
		}
	}
	n.sort()
	return n, nil
}

func (r *Registry) sort() {
	slices.SortFunc(r.schemas, func(a, b *Schema) int { return strings.Compare(a.ID, b.ID) })
	slices.SortFunc(r.resourceTypes, func(a, b *ResourceType) int { return strings.Compare(a.Name, b.Name) })
}

// Schemas returns every registered schema ordered by ID, the content of
// /Schemas. The slice is the caller's; the schemas are shared, read-only.
func (r *Registry) Schemas() []*Schema { return slices.Clone(r.schemas) }

// Schema returns the schema with the given ID, compared case-insensitively
// (URNs are case-insensitive, RFC 8141 §3.1, and RFC 7644 §3.10 requires
// case-insensitive attribute paths).
func (r *Registry) Schema(id string) (*Schema, bool) {
	for _, s := range r.schemas {
		if strings.EqualFold(s.ID, id) {
			return s, true
		}
	}
	return nil, false
}

// ResourceTypes returns the resource types ordered by name, the content of
// /ResourceTypes. The slice is the caller's; the values are shared,
// read-only.
func (r *Registry) ResourceTypes() []*ResourceType { return slices.Clone(r.resourceTypes) }

// ResourceType returns the resource type with the given name ("User",
// "Group"), compared case-insensitively.
func (r *Registry) ResourceType(name string) (*ResourceType, bool) {
	for _, rt := range r.resourceTypes {
		if strings.EqualFold(rt.Name, name) {
			return rt, true
		}
	}
	return nil, false
}

// CommonAttributes returns the registry's id, externalId and meta
// definitions (shared, read-only).
func (r *Registry) CommonAttributes() []*Attribute { return slices.Clone(r.common) }

// view is the set of schemas that make up one resource type.
type view struct {
	rt     *ResourceType
	core   *Schema
	exts   []*Schema // in rt.SchemaExtensions order
	common []*Attribute
}

func (r *Registry) view(resourceType string) (*view, error) {
	rt, ok := r.ResourceType(resourceType)
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownResourceType, resourceType)
	}
	v := &view{rt: rt, common: r.common}
	v.core, _ = r.Schema(rt.Schema)
	for _, x := range rt.SchemaExtensions {
		if s, ok := r.Schema(x.Schema); ok {
			v.exts = append(v.exts, s)
		}
	}
	return v, nil
}

// schema returns the core or extension schema of the view with the given
// ID, compared case-insensitively.
func (v *view) schema(id string) *Schema {
	if strings.EqualFold(v.core.ID, id) {
		return v.core
	}
	return v.extension(id)
}

func (v *view) extension(id string) *Schema {
	for _, s := range v.exts {
		if strings.EqualFold(s.ID, id) {
			return s
		}
	}
	return nil
}

// coreAttr finds a top-level attribute of the core schema or a common
// attribute.
func (v *view) coreAttr(name string) (a *Attribute, common bool) {
	if a := v.core.Attribute(name); a != nil {
		return a, false
	}
	if a := findAttr(v.common, name); a != nil {
		return a, true
	}
	return nil, false
}

// normalizeSchema validates s and returns a deep copy with the RFC 7643
// §2.2 defaults filled in.
func normalizeSchema(s *Schema) (*Schema, error) {
	if s == nil {
		return nil, fmt.Errorf("%w: nil schema", ErrInvalidSchema)
	}
	// Extension attributes are addressed as "<schema URN>:<attr>"
	// (RFC 7644 §3.10) inside comma-separated lists and filters; a URN
	// without spaces, commas, brackets or quotes keeps that unambiguous.
	if !hasURNPrefix(s.ID) || strings.HasSuffix(s.ID, ":") || strings.ContainsAny(s.ID, " \t,[]\"()") {
		return nil, fmt.Errorf("%w: schema id %q is not a URN", ErrInvalidSchema, s.ID)
	}
	c := s.Clone()
	if c.Name == "" {
		c.Name = c.ID[strings.LastIndexByte(c.ID, ':')+1:]
	}
	if err := normalizeAttrs(c.ID, c.Attributes, 0); err != nil {
		return nil, err
	}
	return c, nil
}

func normalizeAttrs(schemaID string, attrs []*Attribute, depth int) error {
	seen := make(map[string]bool, len(attrs))
	for _, a := range attrs {
		if a == nil {
			return fmt.Errorf("%w: %s: nil attribute", ErrInvalidSchema, schemaID)
		}
		if !validName(a.Name, depth > 0) {
			return fmt.Errorf("%w: %s: invalid attribute name %q", ErrInvalidSchema, schemaID, a.Name)
		}
		// RFC 7643 §2.1: names are case-insensitive, so duplicates are
		// compared that way.
		key := strings.ToLower(a.Name)
		if seen[key] {
			return fmt.Errorf("%w: %s: duplicate attribute %q", ErrInvalidSchema, schemaID, a.Name)
		}
		seen[key] = true
		a.Type = cmp.Or(a.Type, TypeString)
		a.Mutability = cmp.Or(a.Mutability, MutabilityReadWrite)
		a.Returned = cmp.Or(a.Returned, ReturnedDefault)
		a.Uniqueness = cmp.Or(a.Uniqueness, UniquenessNone)
		if err := checkEnum(schemaID, a, "type", a.Type, TypeString, TypeBoolean, TypeDecimal, TypeInteger, TypeDateTime, TypeReference, TypeComplex, TypeBinary); err != nil {
			return err
		}
		if err := checkEnum(schemaID, a, "mutability", a.Mutability, MutabilityReadOnly, MutabilityReadWrite, MutabilityImmutable, MutabilityWriteOnly); err != nil {
			return err
		}
		if err := checkEnum(schemaID, a, "returned", a.Returned, ReturnedAlways, ReturnedNever, ReturnedDefault, ReturnedRequest); err != nil {
			return err
		}
		if err := checkEnum(schemaID, a, "uniqueness", a.Uniqueness, UniquenessNone, UniquenessServer, UniquenessGlobal); err != nil {
			return err
		}
		switch {
		case a.Type != TypeComplex && len(a.SubAttributes) > 0:
			return fmt.Errorf("%w: %s: attribute %q has sub-attributes but is not complex", ErrInvalidSchema, schemaID, a.Name)
		case a.Type == TypeComplex && depth > 0:
			// RFC 7643 §2.3.8: a complex attribute MUST NOT contain
			// sub-attributes that have sub-attributes.
			return fmt.Errorf("%w: %s: complex sub-attribute %q", ErrInvalidSchema, schemaID, a.Name)
		case a.Type == TypeComplex && len(a.SubAttributes) == 0:
			return fmt.Errorf("%w: %s: complex attribute %q has no sub-attributes", ErrInvalidSchema, schemaID, a.Name)
		}
		if err := normalizeAttrs(schemaID, a.SubAttributes, depth+1); err != nil {
			return err
		}
	}
	return nil
}

func checkEnum(schemaID string, a *Attribute, what, v string, allowed ...string) error {
	if slices.Contains(allowed, v) {
		return nil
	}
	return fmt.Errorf("%w: %s: attribute %q has invalid %s %q", ErrInvalidSchema, schemaID, a.Name, what, v)
}

// validName reports whether s is an RFC 7643 §2.1 ATTRNAME
// (ALPHA *(ALPHA / DIGIT / "-" / "_")), or "$ref" when sub is set: "$ref"
// is the one sub-attribute name RFC 7643 §2.4 allows outside that grammar.
func validName(s string, sub bool) bool {
	if sub && strings.EqualFold(s, "$ref") {
		return true
	}
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '-' || c == '_'):
		default:
			return false
		}
	}
	return true
}

func hasURNPrefix(s string) bool {
	return len(s) > 4 && strings.EqualFold(s[:4], "urn:")
}
