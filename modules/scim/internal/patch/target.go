package patch

import (
	"errors"
	"strings"

	"github.com/gatehouse-dev/gatehouse/modules/platform/filter"
	"github.com/gatehouse-dev/gatehouse/modules/scim/internal/schema"
)

// target is a PATCH path resolved against the schema.
type target struct {
	text   string            // the path as the client wrote it, for messages
	urn    string            // schema of the attribute
	ext    bool              // the attribute lives under res[urn] (RFC 7643 §3.3)
	common bool              // id, externalId or meta
	attr   *schema.Attribute // top-level attribute; nil when whole is set
	sub    *schema.Attribute // sub-attribute (name.givenName, emails[...].value), or nil
	filter filter.Expr       // value filter of a multi-valued attribute, or nil
	whole  *schema.Schema    // set when the path is a bare schema URN
}

// subPath names t's sub-attribute for messages, e.g. "emails.value".
func (t *target) subPath() string { return t.attr.Name + "." + t.sub.Name }

// resolve checks a parsed path against the schema: the attribute must
// exist, a filter needs a complex multi-valued attribute and may only
// name its sub-attributes, and the sub-attribute after "]." must exist.
// inValue says the path is a key of a path-less value rather than the
// operation's "path".
//
// Failures are invalidPath ("the path attribute was invalid or malformed",
// RFC 7644 §3.12), except an attribute that no schema defines where it is
// data: any key of a value, or a path into an extension schema (declared or
// not). That is invalidValue naming the attribute (the value "was not
// compatible with the resource schema"), exactly as POST and PUT answer the
// same data: undeclared extension attributes are refused alike however the
// client sends them. A path naming no core attribute stays invalidPath.
func (a *applier) resolve(text string, p filter.Path, inValue bool) (*target, error) {
	// "urn:...:enterprise:2.0:User" parses as URN "urn:...:2.0" plus the
	// attribute "User" (the parser splits at the last colon); if the whole
	// is one of our schemas, the path means that schema's object.
	if p.Filter == nil && p.Attr.URN != "" && p.Attr.Sub == "" {
		if s := a.schemaNamed(p.Attr.URN + ":" + p.Attr.Name); s != nil {
			return &target{text: text, urn: s.ID, whole: s}, nil
		}
	}
	r, err := a.reg.Resolve(a.rt.Name, schema.Path{URN: p.Attr.URN, Name: p.Attr.Name, Sub: p.Attr.Sub})
	if err != nil {
		if errors.Is(err, schema.ErrUnknownAttribute) && (inValue || extensionURN(p.Attr.URN)) {
			return nil, a.fail(InvalidValue, "%v", err)
		}
		if errors.Is(err, schema.ErrUnknownAttribute) || errors.Is(err, schema.ErrAmbiguousAttribute) {
			return nil, a.fail(InvalidPath, "%v", err)
		}
		return nil, a.fail(InvalidPath, "%q: %v", text, err)
	}
	t := &target{
		text: text, urn: r.URN, ext: r.Extension, common: r.Common,
		attr: r.Attr, sub: r.SubAttr,
	}
	if p.Filter == nil {
		return t, nil
	}
	switch {
	case !r.Attr.MultiValued:
		return nil, a.fail(InvalidPath, "%q: attribute %q is single-valued; a filter in brackets applies only to multi-valued attributes", text, r.Name)
	case !r.Attr.IsComplex():
		return nil, a.fail(InvalidPath, "%q: filters are supported only on multi-valued attributes with sub-attributes", text)
	}
	if msg := checkFilter(r.Attr, p.Filter); msg != "" {
		return nil, a.fail(InvalidPath, "%q: %s", text, msg)
	}
	t.filter = p.Filter
	if p.Sub != "" {
		if t.sub = r.Attr.Sub(p.Sub); t.sub == nil {
			return nil, a.fail(InvalidPath, "%q: attribute %q has no sub-attribute %q", text, r.Name, p.Sub)
		}
	}
	return t, nil
}

// extensionURN reports a URN in the namespace of extension schemas (RFC 7643
// §3.3, §10.2.2), whether or not this server knows it.
func extensionURN(urn string) bool {
	return strings.HasPrefix(strings.ToLower(urn), "urn:ietf:params:scim:schemas:extension:")
}

// container returns the map holding t's attribute: the resource, or its
// extension object, created if create is set.
func (a *applier) container(t *target, create bool) map[string]any {
	if !t.ext {
		return a.res
	}
	m, _ := lookup(a.res, t.urn).(map[string]any)
	if m == nil && create {
		m = map[string]any{}
		store(a.res, t.urn, m)
	}
	return m
}

// get returns the current value of t's attribute, nil if unassigned.
func (a *applier) get(t *target) any {
	return lookup(a.container(t, false), t.attr.Name)
}

// put sets t's attribute to v; an unassigned v (RFC 7643 §2.5) removes it,
// and an extension object left empty goes too.
func (a *applier) put(t *target, v any) error {
	if !unassigned(v) {
		store(a.container(t, true), t.attr.Name, v)
		return nil
	}
	c := a.container(t, false)
	if c == nil || lookup(c, t.attr.Name) == nil {
		return nil
	}
	if t.attr.Required {
		// RFC 7644 §3.12 invalidValue: "A required value was missing".
		return a.fail(InvalidValue, "attribute %q is required and cannot be removed", t.attr.Name)
	}
	deleteKey(c, t.attr.Name)
	if t.ext && len(c) == 0 {
		deleteKey(a.res, t.urn)
	}
	return nil
}

// checkWritable rejects operations that target a readOnly attribute or
// sub-attribute (RFC 7644 §3.5.2: "a client MUST NOT modify an attribute
// that has mutability readOnly").
func (a *applier) checkWritable(t *target) error {
	if t.attr.Mutability == schema.MutabilityReadOnly {
		return a.fail(Mutability, "attribute %q is readOnly", t.attr.Name)
	}
	if t.sub != nil && t.sub.Mutability == schema.MutabilityReadOnly {
		return a.fail(Mutability, "attribute %q is readOnly", t.subPath())
	}
	return nil
}

// checkImmutable rejects changing an immutable value that is set. RFC 7644
// §3.5.2: a client MUST NOT modify an immutable attribute but MAY add a
// value if the attribute had none, which also covers setting one in a new
// element of a multi-valued attribute.
func (a *applier) checkImmutable(attr *schema.Attribute, path string, old, new any) error {
	if attr.Mutability != schema.MutabilityImmutable || unassigned(old) || equal(old, new) {
		return nil
	}
	return a.fail(Mutability, "attribute %q is immutable and cannot be changed once set", path)
}

// coerce converts a client value with schema.Coerce, naming it path in
// error messages.
func (a *applier) coerce(attr *schema.Attribute, path string, v any) (any, error) {
	named := *attr
	named.Name = path
	c, err := schema.Coerce(&named, v)
	if err != nil {
		return nil, a.fail(InvalidValue, "%v", err)
	}
	return c, nil
}
