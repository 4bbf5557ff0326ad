package patch

import (
	"maps"

	"github.com/gatehouse-dev/gatehouse/modules/scim/internal/schema"
)

// set applies add or replace to a resolved attribute path. The two differ
// only for multi-valued attributes: add appends (RFC 7644 §3.5.2.1),
// replace swaps the list (§3.5.2.3). On single-valued attributes add acts as
// replace, and on complex ones both merge the given sub-attributes.
func (a *applier) set(t *target, v any) error {
	switch {
	case t.filter == nil && t.sub == nil:
		switch {
		case t.attr.MultiValued:
			return a.setList(t, v)
		case t.attr.IsComplex():
			return a.mergeComplex(t, v)
		}
		return a.setSimple(t, v)
	case !t.attr.MultiValued:
		return a.setSub(t, v) // name.givenName
	}
	return a.setElements(t, v) // emails[type eq "work"], emails[...].value, emails.value
}

func (a *applier) setSimple(t *target, v any) error {
	c, err := a.coerce(t.attr, t.attr.Name, v)
	if err != nil {
		return err
	}
	if err := a.checkImmutable(t.attr, t.attr.Name, a.get(t), c); err != nil {
		return err
	}
	return a.put(t, c)
}

// mergeComplex sets a single-valued complex attribute. RFC 7644 §3.5.2.3:
// sub-attributes given replace existing ones and those not given are left
// unchanged; a null sub-attribute is unassigned. A value that is not an
// object (Entra's bare manager id) stands for the whole attribute and
// replaces it, so that a new manager id does not inherit the old $ref.
// null unassigns the attribute.
func (a *applier) mergeComplex(t *target, v any) error {
	c, err := a.coerce(t.attr, t.attr.Name, v)
	if err != nil {
		return err
	}
	cur, _ := a.get(t).(map[string]any)
	raw, isObject := v.(map[string]any)
	next := map[string]any{}
	if isObject {
		next = maps.Clone(cur)
		if next == nil {
			next = map[string]any{}
		}
	}
	cm, _ := c.(map[string]any)
	for name, val := range cm {
		if sub := t.attr.Sub(name); sub.Mutability != schema.MutabilityReadOnly {
			next[name] = val
		}
	}
	for k, x := range raw {
		if sub := t.attr.Sub(k); x == nil && sub.Mutability != schema.MutabilityReadOnly { // Coerce has vetted k
			deleteKey(next, sub.Name)
		}
	}
	for _, sub := range t.attr.SubAttributes {
		if err := a.checkImmutable(sub, t.attr.Name+"."+sub.Name, cur[sub.Name], next[sub.Name]); err != nil {
			return err
		}
	}
	return a.put(t, next)
}

// setSub sets (or, with nil, unassigns) a sub-attribute of a single-valued
// complex attribute.
func (a *applier) setSub(t *target, v any) error {
	c, err := a.coerce(t.sub, t.subPath(), v)
	if err != nil {
		return err
	}
	cur, _ := a.get(t).(map[string]any)
	if err := a.checkImmutable(t.sub, t.subPath(), cur[t.sub.Name], c); err != nil {
		return err
	}
	next := maps.Clone(cur)
	if next == nil {
		next = map[string]any{}
	}
	if c == nil {
		delete(next, t.sub.Name)
	} else {
		next[t.sub.Name] = c
	}
	return a.put(t, next)
}

// setList adds values to, or replaces, a multi-valued attribute. Values
// equal to one already present (for members: with the same "value") are
// skipped rather than duplicated.
func (a *applier) setList(t *target, v any) error {
	c, err := a.coerce(t.attr, t.attr.Name, v)
	if err != nil {
		return err
	}
	given, _ := c.([]any)
	given = stripReadOnly(t.attr, given)
	var list []any
	if a.verb == OpAdd {
		list = asList(a.get(t))
	}
	present := newElementSet(t.attr, list)
	var touched []int
	for _, e := range given {
		if !present.has(e) {
			present.add(e)
			touched = append(touched, len(list))
			list = append(list, e)
		}
	}
	fixPrimary(t.attr, list, touched)
	return a.put(t, list)
}

// setElements applies add or replace to the elements of a multi-valued
// attribute selected by a filter (all of them when there is none), or to
// one sub-attribute of those elements.
//
// If nothing matches and the filter is a conjunction of eq comparisons, a
// new element is built from those comparisons: Entra sends
// `replace emails[type eq "work"].value` for a user who has no work email
// yet, meaning "set the work email". RFC 7644 §3.5.2.3 would make this
// noTarget, which is what other filters still get.
func (a *applier) setElements(t *target, v any) error {
	list := asList(a.get(t))
	hits := a.match(t, list)
	var touched []int
	if t.sub != nil {
		c, err := a.coerce(t.sub, t.subPath(), v)
		if err != nil {
			return err
		}
		if c == nil {
			return a.removeSubs(t, list, hits)
		}
		if len(hits) == 0 {
			e, err := a.newElement(t)
			if err != nil {
				return err
			}
			hits, list = []int{len(list)}, append(list, e)
		}
		for _, i := range hits { // a new element gets c here too
			m := list[i].(map[string]any)
			if err := a.checkImmutable(t.sub, t.subPath(), m[t.sub.Name], c); err != nil {
				return err
			}
			m[t.sub.Name] = c
		}
		touched = hits
	} else {
		elem := *t.attr
		elem.MultiValued = false
		c, err := a.coerce(&elem, t.attr.Name, v)
		if err != nil {
			return err
		}
		var given map[string]any
		if s := stripReadOnly(t.attr, asList(c)); len(s) > 0 {
			given = s[0].(map[string]any)
		}
		if given == nil {
			if a.verb == OpReplace { // replacing with null: the values go
				return a.removeElements(t, list, hits)
			}
			return nil
		}
		if len(hits) == 0 {
			e, err := a.newElement(t)
			if err != nil {
				return err
			}
			maps.Copy(e, given)
			touched, list = []int{len(list)}, append(list, e)
		}
		for _, i := range hits {
			if err := a.setElement(t.attr, list, i, given); err != nil {
				return err
			}
			touched = append(touched, i)
		}
	}
	fixPrimary(t.attr, list, touched)
	return a.put(t, list)
}

// setElement merges given into list[i] (add) or replaces list[i] with it
// (replace: RFC 7644 §3.5.2.3 "all matching record values SHALL be
// replaced"), refusing to change immutable sub-attributes.
func (a *applier) setElement(attr *schema.Attribute, list []any, i int, given map[string]any) error {
	old := list[i].(map[string]any)
	next := maps.Clone(given)
	if a.verb == OpAdd {
		next = maps.Clone(old)
		maps.Copy(next, given)
	}
	for _, sub := range attr.SubAttributes {
		if err := a.checkImmutable(sub, attr.Name+"."+sub.Name, old[sub.Name], next[sub.Name]); err != nil {
			return err
		}
	}
	list[i] = next
	return nil
}

// newElement builds the element a filter describes, for an add or replace
// whose filter matched nothing; see setElements.
func (a *applier) newElement(t *target) (map[string]any, error) {
	conds, ok := eqConjunction(t.attr, t.filter)
	if !ok {
		return nil, a.fail(NoTarget, "%q matches no value of %q (a new value is only created for filters made of eq comparisons joined by and)", t.text, t.attr.Name)
	}
	e := map[string]any{}
	for _, c := range conds {
		if c.sub.Mutability == schema.MutabilityReadOnly {
			continue
		}
		v, err := a.coerce(c.sub, t.attr.Name+"."+c.sub.Name, c.val)
		if err != nil {
			return nil, err
		}
		e[c.sub.Name] = v
	}
	return e, nil
}

// remove applies a remove operation (RFC 7644 §3.5.2.2).
func (a *applier) remove(t *target, v any, hasValue bool) error {
	switch {
	case t.filter == nil && t.sub == nil:
		if t.attr.MultiValued && hasValue && v != nil {
			return a.removeValues(t, v)
		}
		cur := a.get(t)
		if err := a.checkImmutable(t.attr, t.attr.Name, cur, nil); err != nil {
			return err
		}
		return a.put(t, nil)
	case !t.attr.MultiValued:
		return a.setSub(t, nil)
	}
	list := asList(a.get(t))
	hits := a.match(t, list)
	if t.sub == nil {
		// A filter that matches nothing removes nothing; that is not an
		// error (the values are already gone).
		return a.removeElements(t, list, hits)
	}
	return a.removeSubs(t, list, hits)
}

// removeElements drops list[i] for each i in hits.
func (a *applier) removeElements(t *target, list []any, hits []int) error {
	if len(hits) == 0 {
		return nil
	}
	drop := make(map[int]bool, len(hits))
	for _, i := range hits {
		drop[i] = true
	}
	keep := make([]any, 0, len(list)-len(hits))
	for i, e := range list {
		if !drop[i] {
			keep = append(keep, e)
		}
	}
	return a.put(t, keep)
}

// removeSubs unassigns t.sub in each element in hits. An element left
// empty, or without its "value" (RFC 7643 §2.4: the significant value of
// the element, without which it means nothing), is dropped.
func (a *applier) removeSubs(t *target, list []any, hits []int) error {
	var drop []int
	for _, i := range hits {
		m := list[i].(map[string]any)
		old := lookup(m, t.sub.Name)
		if old == nil {
			continue
		}
		if err := a.checkImmutable(t.sub, t.subPath(), old, nil); err != nil {
			return err
		}
		deleteKey(m, t.sub.Name)
		if len(m) == 0 || t.sub.Name == "value" {
			drop = append(drop, i)
		}
	}
	if len(drop) > 0 {
		return a.removeElements(t, list, drop)
	}
	return a.put(t, list)
}

// removeValues removes the listed values from a multi-valued attribute:
// Entra removes members with
// {"op":"Remove","path":"members","value":[{"value":"<id>"}]}, which must
// remove just those members. A listed complex value matches an element by
// "value" when that identifies elements (members), otherwise when every
// sub-attribute it gives is equal. An empty list removes nothing.
func (a *applier) removeValues(t *target, v any) error {
	c, err := a.coerce(t.attr, t.attr.Name, v)
	if err != nil {
		return err
	}
	given := asList(c)
	id := valueIdentity(t.attr)
	if t.attr.IsComplex() {
		for i, g := range given {
			m := g.(map[string]any)
			if id != nil && m[id.Name] == nil {
				return a.fail(InvalidValue, "value %d to remove from %q does not say which value it is (give its %q)", i+1, t.attr.Name, id.Name)
			}
			if len(stripReadOnly(t.attr, []any{m})) == 0 {
				return a.fail(InvalidValue, "value %d to remove from %q does not say which value it is (readOnly sub-attributes are ignored)", i+1, t.attr.Name)
			}
		}
	}
	list := asList(a.get(t))
	var hits []int
	if id != nil {
		// Members: one pass with a set, as a request may name thousands.
		ids := newElementSet(t.attr, given)
		for i, e := range list {
			if ids.has(e) {
				hits = append(hits, i)
			}
		}
		return a.removeElements(t, list, hits)
	}
	for i, e := range list {
		for _, g := range given {
			if removes(t.attr, g, e) {
				hits = append(hits, i)
				break
			}
		}
	}
	return a.removeElements(t, list, hits)
}

// removes reports whether the listed value g designates the element e: a
// simple value must be equal, a complex one must agree on every
// sub-attribute it gives.
func removes(attr *schema.Attribute, g, e any) bool {
	if !attr.IsComplex() {
		return equal(g, e)
	}
	gm, _ := g.(map[string]any)
	em, ok := e.(map[string]any)
	if !ok {
		return false
	}
	for k, x := range gm {
		if !equal(x, lookup(em, k)) {
			return false
		}
	}
	return true
}

// match returns the indices of the elements t's filter selects; all
// elements when t has no filter.
func (a *applier) match(t *target, list []any) []int {
	var hits []int
	for i, e := range list {
		m, ok := e.(map[string]any)
		if ok && (t.filter == nil || matches(t.attr, t.filter, m)) {
			hits = append(hits, i)
		}
	}
	return hits
}

// valueIdentity returns the "value" sub-attribute of attr when it
// identifies elements, which is when it is immutable: a group member is
// its value (RFC 7643 §4.2), whatever its display or $ref say.
func valueIdentity(attr *schema.Attribute) *schema.Attribute {
	v := attr.Sub("value")
	if v == nil || v.Mutability != schema.MutabilityImmutable {
		return nil
	}
	return v
}

// elementSet tells whether a multi-valued attribute already holds a value:
// by "value" when that identifies elements (see valueIdentity), in O(1),
// otherwise by comparing whole values, in O(n), which is fine for the short
// lists (emails, phoneNumbers) such attributes hold.
type elementSet struct {
	attr *schema.Attribute
	id   *schema.Attribute
	ids  map[string]bool
	list []any
}

func newElementSet(attr *schema.Attribute, list []any) *elementSet {
	s := &elementSet{attr: attr, id: valueIdentity(attr)}
	if s.id != nil {
		s.ids = make(map[string]bool, len(list))
	}
	for _, e := range list {
		s.add(e)
	}
	return s
}

// key returns e's identifying value, if attr has one and e's is a string.
func (s *elementSet) key(e any) (string, bool) {
	if s.id == nil {
		return "", false
	}
	m, _ := e.(map[string]any)
	k, ok := lookup(m, s.id.Name).(string)
	return k, ok
}

func (s *elementSet) add(e any) {
	if k, ok := s.key(e); ok {
		s.ids[k] = true
		return
	}
	s.list = append(s.list, e)
}

func (s *elementSet) has(e any) bool {
	if k, ok := s.key(e); ok {
		return s.ids[k]
	}
	for _, x := range s.list {
		if equal(x, e) {
			return true
		}
	}
	return false
}

// stripReadOnly removes readOnly sub-attributes from client values, which
// the server ignores (RFC 7643 §7: readOnly values "SHALL NOT be modified";
// RFC 7644 §3.5.1 ignores them in PUT, and Okta sends members' display).
// Elements left empty are dropped. The elements are fresh from Coerce and
// are modified in place.
func stripReadOnly(attr *schema.Attribute, list []any) []any {
	if !attr.IsComplex() {
		return list
	}
	out := list[:0]
	for _, e := range list {
		m, _ := e.(map[string]any)
		for _, sub := range attr.SubAttributes {
			if sub.Mutability == schema.MutabilityReadOnly {
				delete(m, sub.Name)
			}
		}
		if len(m) > 0 {
			out = append(out, m)
		}
	}
	return out
}

// fixPrimary keeps at most one element with primary=true (RFC 7643 §2.4:
// "The primary attribute value true MUST appear no more than once"): if
// the operation set primary on some element, the last such wins and every
// other element loses it.
func fixPrimary(attr *schema.Attribute, list []any, touched []int) {
	p := attr.Sub("primary")
	if p == nil || p.Type != schema.TypeBoolean {
		return
	}
	winner := -1
	for _, i := range touched {
		if m, ok := list[i].(map[string]any); ok && m[p.Name] == true {
			winner = i
		}
	}
	if winner < 0 {
		return
	}
	for i, e := range list {
		if m, ok := e.(map[string]any); ok && i != winner && m[p.Name] == true {
			m[p.Name] = false
		}
	}
}
