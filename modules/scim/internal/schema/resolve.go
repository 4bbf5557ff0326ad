package schema

import (
	"fmt"
	"strings"
)

// Path is an attribute path in RFC 7644 §3.10 notation, split into parts:
// an optional schema URN, an attribute name and an optional sub-attribute
// name. It is deliberately a plain struct so that the filter and PATCH
// parsers can convert their own path type to it.
type Path struct {
	URN  string // schema URN, "" when not qualified
	Name string // attribute name
	Sub  string // sub-attribute name, "" for none
}

// String returns p in RFC 7644 §3.10 notation.
func (p Path) String() string {
	var b strings.Builder
	if p.URN != "" {
		b.WriteString(p.URN)
		b.WriteByte(':')
	}
	b.WriteString(p.Name)
	if p.Sub != "" {
		b.WriteByte('.')
		b.WriteString(p.Sub)
	}
	return b.String()
}

// ParsePath parses an attribute path as used by the "attributes" and
// "excludedAttributes" parameters (RFC 7644 §3.10):
//
//	userName
//	name.givenName
//	urn:ietf:params:scim:schemas:core:2.0:User:userName
//	urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value
//
// A URN is recognised by its "urn:" prefix and ends at the last colon;
// splitting there is what makes "2.0" inside the URN unambiguous, since
// attribute names cannot contain colons. Value filters ("emails[type eq
// "work"]") are not part of this notation and are rejected.
func ParsePath(s string) (Path, error) {
	s = strings.TrimSpace(s)
	var p Path
	rest := s
	if hasURNPrefix(s) {
		i := strings.LastIndexByte(s, ':')
		p.URN, rest = s[:i], s[i+1:]
	}
	p.Name, p.Sub, _ = strings.Cut(rest, ".")
	if !validName(p.Name, false) || (p.Sub != "" && !validName(p.Sub, true)) || strings.HasSuffix(rest, ".") {
		return Path{}, fmt.Errorf("%w %q", ErrInvalidPath, s)
	}
	return p, nil
}

// Resolved is an attribute path resolved against a resource type, with all
// names in their canonical case.
type Resolved struct {
	// URN is the schema the attribute belongs to. Common attributes (id,
	// externalId, meta) report the resource type's core schema.
	URN string
	// Name is the canonical top-level attribute name.
	Name string
	// Sub is the canonical sub-attribute name, or "".
	Sub string
	// Attr is the top-level attribute definition.
	Attr *Attribute
	// SubAttr is the sub-attribute definition, nil when Sub is "".
	SubAttr *Attribute
	// Common reports one of the RFC 7643 §3.1 common attributes.
	Common bool
	// Extension reports an attribute of an extension schema; such values
	// live under the URN key of a resource's JSON (RFC 7643 §3.3).
	Extension bool
}

// Leaf returns the definition the path designates: the sub-attribute if
// there is one, otherwise the attribute. Filters use its Type and
// CaseExact to compare values.
func (r *Resolved) Leaf() *Attribute {
	if r.SubAttr != nil {
		return r.SubAttr
	}
	return r.Attr
}

// Path returns the canonical, URN-qualified path.
func (r *Resolved) Path() Path { return Path{URN: r.URN, Name: r.Name, Sub: r.Sub} }

// DefaultSub resolves a complex attribute named without a sub-attribute to
// its "value" sub-attribute, returning the result and true. Clients filter
// on complex attributes that way (e.g. `emails co "@example.com"`), and the
// RFC 7643 §2.4 "value" sub-attribute is the attribute's significant value.
// It returns r and false if r already names a sub-attribute or the
// attribute has no "value" sub-attribute.
func (r *Resolved) DefaultSub() (*Resolved, bool) {
	if r.Sub != "" || !r.Attr.IsComplex() {
		return r, false
	}
	v := r.Attr.Sub("value")
	if v == nil {
		return r, false
	}
	c := *r
	c.Sub, c.SubAttr = v.Name, v
	return &c, true
}

// Resolve resolves p against resourceType ("User", "Group"), comparing
// URNs, attribute and sub-attribute names case-insensitively (RFC 7643
// §2.1, RFC 7644 §3.10).
//
// A path with a URN is looked up in that schema only; the core schema's
// URN also qualifies the common attributes, as in
// "urn:ietf:params:scim:schemas:core:2.0:User:meta.lastModified". A path
// without a URN is looked up in the core schema, then among the common
// attributes, then in the extension schemas, where it must be defined by
// exactly one of them (otherwise ErrAmbiguousAttribute: the client has to
// qualify it).
//
// Errors wrap ErrUnknownResourceType, ErrUnknownAttribute or
// ErrAmbiguousAttribute.
func (r *Registry) Resolve(resourceType string, p Path) (*Resolved, error) {
	v, err := r.view(resourceType)
	if err != nil {
		return nil, err
	}
	return v.resolve(p)
}

func (v *view) resolve(p Path) (*Resolved, error) {
	unknown := func() error {
		return fmt.Errorf("%w %q for resource type %q", ErrUnknownAttribute, p.String(), v.rt.Name)
	}
	var res Resolved
	switch {
	case p.URN != "":
		s := v.schema(p.URN)
		if s == nil {
			return nil, unknown()
		}
		res.URN, res.Extension = s.ID, s != v.core
		if res.Attr = s.Attribute(p.Name); res.Attr == nil && !res.Extension {
			res.Attr, res.Common = findAttr(v.common, p.Name), true
		}
	default:
		res.URN = v.core.ID
		res.Attr, res.Common = v.coreAttr(p.Name)
		if res.Attr != nil {
			break
		}
		var found []*Schema
		for _, s := range v.exts {
			if a := s.Attribute(p.Name); a != nil {
				found = append(found, s)
				res.URN, res.Attr, res.Extension = s.ID, a, true
			}
		}
		if len(found) > 1 {
			ids := make([]string, len(found))
			for i, s := range found {
				ids[i] = s.ID
			}
			return nil, fmt.Errorf("%w %q for resource type %q: defined by %s; qualify it with the schema URN",
				ErrAmbiguousAttribute, p.String(), v.rt.Name, strings.Join(ids, ", "))
		}
	}
	if res.Attr == nil {
		return nil, unknown()
	}
	res.Name = res.Attr.Name
	if p.Sub != "" {
		if res.SubAttr = res.Attr.Sub(p.Sub); res.SubAttr == nil {
			return nil, unknown()
		}
		res.Sub = res.SubAttr.Name
	}
	return &res, nil
}
