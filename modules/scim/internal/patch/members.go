package patch

import (
	"strings"

	"github.com/gatehouse-dev/gatehouse/modules/platform/filter"
)

// Member is a group member as given in a PATCH request (RFC 7643 §4.2).
type Member struct {
	// Value is the id of the member resource; never empty.
	Value string
	// Ref is "$ref" as sent; "" when absent or null (Entra sends null).
	Ref string
	// Display is "display" as sent. The attribute is readOnly, so the
	// server should derive it rather than store the client's version.
	Display string
	// Type is "type" as sent ("User" or "Group"); "" when absent.
	Type string
}

// MemberChange is the net effect of a request's operations on a group's
// members, returned instead of being applied when Options.MembersAsDelta is
// set. The new member set is
//
//	(ReplaceAll || RemoveAll ? ∅ : current members) − Remove ∪ Add
//
// Add and Remove are disjoint, each without duplicates, in the order the
// request first named each id; Remove is empty when ReplaceAll or RemoveAll
// is set, and at most one of those is. Adding an existing member and
// removing a non-member are no-ops for the caller to ignore. Remove may
// name ids the request also added: "add x, remove x" leaves x in Remove
// because x may have been a member before the request.
type MemberChange struct {
	Add    []Member
	Remove []string
	// ReplaceAll reports that the existing members are all dropped and Add
	// is the complete new member set (replace "members", or remove all
	// followed by adds).
	ReplaceAll bool
	// RemoveAll reports that the group ends up with no members.
	RemoveAll bool
}

// IsZero reports whether the change does nothing.
func (c MemberChange) IsZero() bool {
	return len(c.Add) == 0 && len(c.Remove) == 0 && !c.ReplaceAll && !c.RemoveAll
}

// delta accumulates a MemberChange in operation order. Entries removed from
// add or remove are tombstoned (Value "") rather than cut out, so each
// member named costs O(1) even when one request names 100,000 of them.
type delta struct {
	fromEmpty bool // the existing members are dropped (replace, remove all)
	add       []Member
	addAt     map[string]int
	remove    []string
	removeAt  map[string]int
}

func (d *delta) addMember(m Member) {
	if i, ok := d.removeAt[m.Value]; ok {
		d.remove[i] = ""
		delete(d.removeAt, m.Value)
	}
	if _, ok := d.addAt[m.Value]; ok {
		return // duplicate within the request: the first one stands
	}
	if d.addAt == nil {
		d.addAt = map[string]int{}
	}
	d.addAt[m.Value] = len(d.add)
	d.add = append(d.add, m)
}

func (d *delta) removeMember(id string) {
	if i, ok := d.addAt[id]; ok {
		d.add[i].Value = ""
		delete(d.addAt, id)
	}
	if d.fromEmpty {
		return // nothing that existed before survives anyway
	}
	if _, ok := d.removeAt[id]; ok {
		return
	}
	if d.removeAt == nil {
		d.removeAt = map[string]int{}
	}
	d.removeAt[id] = len(d.remove)
	d.remove = append(d.remove, id)
}

// clear drops every member, existing or added earlier in the request.
func (d *delta) clear() {
	*d = delta{fromEmpty: true}
}

// replace makes ms the complete member set.
func (d *delta) replace(ms []Member) {
	d.clear()
	for _, m := range ms {
		d.addMember(m)
	}
}

func (d *delta) touched() bool {
	return d.fromEmpty || len(d.addAt) > 0 || len(d.removeAt) > 0
}

func (d *delta) result() MemberChange {
	var c MemberChange
	for _, m := range d.add {
		if m.Value != "" {
			c.Add = append(c.Add, m)
		}
	}
	for _, id := range d.remove {
		if id != "" {
			c.Remove = append(c.Remove, id)
		}
	}
	if d.fromEmpty {
		c.ReplaceAll = len(c.Add) > 0
		c.RemoveAll = !c.ReplaceAll
	}
	return c
}

// memberOp applies an operation on "members" to the delta (MembersAsDelta).
func (a *applier) memberOp(t *target, v any, hasValue bool) error {
	if err := a.checkWritable(t); err != nil {
		return err
	}
	var ids []string
	if t.filter != nil {
		var ok bool
		if ids, ok = memberFilterIDs(t.filter); !ok {
			return a.fail(InvalidPath, `%q: only filters of the form members[value eq "<id>"], optionally joined with or, are supported on members; got %q`,
				t.text, filter.Format(t.filter))
		}
	}
	if t.sub != nil || (t.filter != nil && a.verb != OpRemove) {
		return a.fail(Mutability, "%q: members cannot be modified in place (RFC 7643 §4.2: a member's value is immutable); add or remove members instead", t.text)
	}
	a.touchMembers()
	var ms []Member
	if hasValue && v != nil {
		var err error
		if ms, err = a.members(t, v); err != nil {
			return err
		}
	}
	switch {
	case a.verb == OpAdd:
		for _, m := range ms {
			a.delta.addMember(m)
		}
	case a.verb == OpReplace:
		a.delta.replace(ms)
	case t.filter != nil:
		for _, id := range ids {
			if strings.IndexByte(id, 0) >= 0 {
				continue // no member id holds U+0000: it names nobody to remove
			}
			a.delta.removeMember(id)
		}
	case hasValue && v != nil:
		// Entra's {"op":"Remove","path":"members","value":[{"value":"id"}]}
		// removes just the listed members, never all of them; an empty
		// list removes nobody.
		for _, m := range ms {
			a.delta.removeMember(m.Value)
		}
	default:
		a.delta.clear()
	}
	return nil
}

// members converts a value given for "members" into Members, without
// duplicates. On error the result is nil.
func (a *applier) members(t *target, v any) ([]Member, error) {
	c, err := a.coerce(t.attr, t.attr.Name, v)
	if err != nil {
		return nil, err
	}
	list, _ := c.([]any)
	out := make([]Member, 0, len(list))
	seen := make(map[string]bool, len(list))
	for i, e := range list {
		m, _ := e.(map[string]any)
		str := func(k string) string { s, _ := m[k].(string); return s }
		id := str("value")
		if id == "" {
			return nil, a.fail(InvalidValue, `member %d has no "value" (the id of the member)`, i+1)
		}
		if !seen[id] {
			seen[id] = true
			out = append(out, Member{Value: id, Ref: str("$ref"), Display: str("display"), Type: str("type")})
		}
	}
	return out, nil
}

// memberFilterIDs returns the ids of a filter made of `value eq "<id>"`
// comparisons joined by or.
func memberFilterIDs(e filter.Expr) ([]string, bool) {
	if _, isAnd := e.(filter.And); isAnd {
		return nil, false
	}
	var ids []string
	for _, x := range operands(e) {
		c, ok := x.(filter.Compare)
		if !ok || c.Op != filter.OpEq || c.Value.Kind != filter.KindString || !strings.EqualFold(c.Attr.Name, "value") {
			return nil, false
		}
		ids = append(ids, c.Value.Str)
	}
	return ids, true
}
