package schema

import (
	"strings"
)

// SplitAttrList splits the comma-separated value of an "attributes" or
// "excludedAttributes" query parameter (RFC 7644 §3.4.2.5), trimming spaces
// and dropping empty entries. It returns nil for a blank value.
func SplitAttrList(s string) []string {
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// Projection is a compiled "attributes" / "excludedAttributes" selection
// for one resource type. Compile it once per request with
// [Registry.Projection] and apply it to every resource of a list response.
// It is immutable and safe for concurrent use.
//
// The rules (RFC 7644 §3.4.2.5 and §3.9, RFC 7643 §7 "returned"):
//
//   - "schemas" and attributes returned "always" (id) are always returned;
//     excludedAttributes has no effect on them.
//   - Attributes returned "never" (password) are never returned, even
//     when named.
//   - Without "attributes", attributes returned "default" are returned
//     unless named in excludedAttributes; "request" ones are not.
//   - With "attributes", only the named attributes (plus "always" ones)
//     are returned. Naming a sub-attribute ("name.givenName",
//     "emails.value") returns the parent reduced to the named
//     sub-attributes, in every value of a multi-valued attribute. Naming
//     an attribute returns it with its default sub-attributes and its
//     "request" ones. Naming an extension URN returns the whole extension.
//   - excludedAttributes may name attributes, sub-attributes or a whole
//     extension, and wins over "attributes" when both name something.
//   - meta is a "default" attribute like any other.
//   - "schemas" is returned unchanged, even when an extension's object is
//     left out: it lists the schemas the resource has (RFC 7643 §3).
//
// Both lists may use any case and URN-qualified names. Members of the
// resource that the schemas do not define are treated as "default"
// attributes: kept unless "attributes" is given.
type Projection struct {
	v         *view
	selective bool            // "attributes" was given
	named     map[string]bool // keys named in "attributes"
	ancestors map[string]bool // strict ancestors of named keys
	excluded  map[string]bool // keys named in "excludedAttributes"
}

// mode is how a node's children are selected.
type mode int

const (
	modeDefault   mode = iota // returned "default" and "always" children
	modeNamed                 // the node was named: also "request" children
	modeSelective             // only named children and "always" ones
)

// Projection compiles attributes and excluded (entries as produced by
// [SplitAttrList]) for resourceType. Entries naming unknown attributes make
// it fail with an error wrapping ErrUnknownAttribute (or
// ErrAmbiguousAttribute, ErrInvalidPath); callers answer those with 400 and
// scimType "invalidValue" (RFC 7644 §3.12).
func (r *Registry) Projection(resourceType string, attributes, excluded []string) (*Projection, error) {
	v, err := r.view(resourceType)
	if err != nil {
		return nil, err
	}
	p := &Projection{
		v:         v,
		named:     map[string]bool{},
		ancestors: map[string]bool{},
		excluded:  map[string]bool{},
	}
	for _, e := range attributes {
		if strings.TrimSpace(e) == "" {
			continue
		}
		p.selective = true
		chains, err := v.chains(e)
		if err != nil {
			return nil, err
		}
		for _, c := range chains {
			for _, n := range c[:len(c)-1] {
				p.ancestors[n.key] = true
			}
			p.named[c[len(c)-1].key] = true
		}
	}
	for _, e := range excluded {
		if strings.TrimSpace(e) == "" {
			continue
		}
		chains, err := v.chains(e)
		if err != nil {
			return nil, err
		}
		for _, c := range chains {
			p.excluded[c[len(c)-1].key] = true
		}
	}
	return p, nil
}

// Project applies attributes and excluded to the resource res of
// resourceType; see [Projection] for the rules. res must use the SCIM JSON
// shape: canonical attribute names, extension attributes under their
// schema URN, complex values as map[string]any and multi-valued complex
// values as []any or []map[string]any (what encoding/json produces).
// Other values are kept or dropped as a whole.
//
// res is not modified. The result shares the values that are returned
// whole with res.
func (r *Registry) Project(resourceType string, res map[string]any, attributes, excluded []string) (map[string]any, error) {
	p, err := r.Projection(resourceType, attributes, excluded)
	if err != nil {
		return nil, err
	}
	return p.Apply(res), nil
}

// Wants reports whether a response projected with attributes and excluded
// can contain any part of the attribute at path attr (same notation as
// the lists). Callers use it to skip loading expensive attributes; for
// example, Wants("Group", nil, []string{"members"}, "members") is false,
// which is how Entra ID's excludedAttributes=members is honoured without
// reading the membership. It answers true when in doubt (an unknown
// attribute or invalid lists), which only costs a load.
func (r *Registry) Wants(resourceType string, attributes, excluded []string, attr string) bool {
	p, err := r.Projection(resourceType, attributes, excluded)
	if err != nil {
		return true
	}
	return p.Wants(attr)
}

// Wants is [Registry.Wants] for a compiled projection.
func (p *Projection) Wants(attr string) bool {
	chain, err := p.v.chain(attr)
	if err != nil {
		return true
	}
	m := p.rootMode()
	for _, n := range chain {
		var keep bool
		if keep, m = p.decide(n.key, n.returned, m); !keep {
			return false
		}
	}
	return true
}

// Apply returns the projection of res; see [Registry.Project].
func (p *Projection) Apply(res map[string]any) map[string]any {
	out := make(map[string]any, len(res))
	root := p.rootMode()
	coreKey := lower(p.v.core.ID)
	for k, val := range res {
		// RFC 7643 §3: "schemas" identifies the resource's schemas and is
		// always part of the representation.
		if k == "schemas" {
			out[k] = val
			continue
		}
		if s := p.v.extension(k); s != nil {
			key := lower(s.ID)
			keep, m := p.decide(key, ReturnedDefault, root)
			if !keep {
				continue
			}
			if obj, ok := val.(map[string]any); ok {
				if pv, ok := p.object(obj, key+":", s.Attributes, m); ok {
					out[k] = pv
				}
			} else {
				out[k] = val
			}
			continue
		}
		if a, _ := p.v.coreAttr(k); a != nil {
			p.attribute(out, k, val, a, coreKey+":"+lower(a.Name), root)
		} else if root != modeSelective {
			out[k] = val
		}
	}
	return out
}

func (p *Projection) rootMode() mode {
	if p.selective {
		return modeSelective
	}
	return modeDefault
}

// decide reports whether the node key, whose "returned" characteristic is
// ret and whose parent selects children in mode parent, is returned, and
// in which mode its own children are selected.
func (p *Projection) decide(key, ret string, parent mode) (bool, mode) {
	if ret == ReturnedNever {
		return false, parent
	}
	named, anc := p.named[key], p.ancestors[key]
	child := parent
	switch {
	case named:
		child = modeNamed
	case anc:
		child = modeSelective
	case parent == modeSelective:
		// Only reachable for "always" nodes, which are returned with
		// their default content.
		child = modeDefault
	}
	if ret == ReturnedAlways {
		return true, child
	}
	if p.excluded[key] {
		return false, child
	}
	switch parent {
	case modeNamed:
		return true, child
	case modeSelective:
		return named || anc, child
	default:
		return ret != ReturnedRequest || named || anc, child
	}
}

// attribute projects the value val of attribute a (whose key is key) into
// out[k].
func (p *Projection) attribute(out map[string]any, k string, val any, a *Attribute, key string, parent mode) {
	keep, m := p.decide(key, a.Returned, parent)
	if !keep {
		return
	}
	if !a.IsComplex() || len(a.SubAttributes) == 0 {
		out[k] = val
		return
	}
	prefix := key + "."
	switch t := val.(type) {
	case map[string]any:
		if pv, ok := p.object(t, prefix, a.SubAttributes, m); ok {
			out[k] = pv
		}
	case []any:
		vals := make([]any, 0, len(t))
		for _, e := range t {
			if obj, ok := e.(map[string]any); ok {
				if pv, ok := p.object(obj, prefix, a.SubAttributes, m); ok {
					vals = append(vals, pv)
				}
			} else {
				vals = append(vals, e)
			}
		}
		if len(vals) > 0 || len(t) == 0 {
			out[k] = vals
		}
	case []map[string]any:
		vals := make([]map[string]any, 0, len(t))
		for _, obj := range t {
			if pv, ok := p.object(obj, prefix, a.SubAttributes, m); ok {
				vals = append(vals, pv)
			}
		}
		if len(vals) > 0 || len(t) == 0 {
			out[k] = vals
		}
	default:
		out[k] = val
	}
}

// object projects the members of a complex value or extension object. It
// reports false when projection emptied a non-empty object, so that e.g.
// attributes=name.middleName on a User without a middle name does not
// return "name": {}.
func (p *Projection) object(obj map[string]any, prefix string, attrs []*Attribute, m mode) (map[string]any, bool) {
	out := make(map[string]any, len(obj))
	for k, val := range obj {
		if a := findAttr(attrs, k); a != nil {
			p.attribute(out, k, val, a, prefix+lower(a.Name), m)
		} else if m != modeSelective {
			out[k] = val
		}
	}
	if len(out) == 0 && len(obj) > 0 {
		return nil, false
	}
	return out, true
}

// chains resolves an "attributes" / "excludedAttributes" entry to the
// chains of nodes it names: one chain, except that "schemas" names nothing
// (it is always returned) and the core schema URN alone stands for all
// core schema attributes.
func (v *view) chains(entry string) ([][]chainNode, error) {
	entry = strings.TrimSpace(entry)
	if strings.EqualFold(entry, "schemas") || strings.EqualFold(entry, v.core.ID+":schemas") {
		return nil, nil
	}
	if strings.EqualFold(entry, v.core.ID) {
		out := make([][]chainNode, len(v.core.Attributes))
		for i, a := range v.core.Attributes {
			out[i] = []chainNode{{lower(v.core.ID + ":" + a.Name), a.Returned}}
		}
		return out, nil
	}
	c, err := v.chain(entry)
	if err != nil {
		return nil, err
	}
	return [][]chainNode{c}, nil
}

// chainNode is one level of an attribute path. Its key identifies the node
// of a resource for projection: the lower-cased schema URN for an extension
// object, "<urn>:<attr>" for an attribute and "<urn>:<attr>.<sub>" for a
// sub-attribute, where common attributes use the core schema URN.
// Lower-casing implements the case-insensitive matching of RFC 7644 §3.10.
type chainNode struct {
	key      string
	returned string
}

// chain resolves an attribute path, or an extension URN, to the nodes from
// the top of the resource down to it.
func (v *view) chain(path string) ([]chainNode, error) {
	if s := v.extension(strings.TrimSpace(path)); s != nil {
		return []chainNode{{lower(s.ID), ReturnedDefault}}, nil
	}
	pp, err := ParsePath(path)
	if err != nil {
		return nil, err
	}
	r, err := v.resolve(pp)
	if err != nil {
		return nil, err
	}
	var c []chainNode
	if r.Extension {
		c = append(c, chainNode{lower(r.URN), ReturnedDefault})
	}
	key := lower(r.URN + ":" + r.Name)
	c = append(c, chainNode{key, r.Attr.Returned})
	if r.SubAttr != nil {
		c = append(c, chainNode{key + "." + lower(r.Sub), r.SubAttr.Returned})
	}
	return c, nil
}

func lower(s string) string { return strings.ToLower(s) }
