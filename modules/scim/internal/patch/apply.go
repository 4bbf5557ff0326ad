package patch

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/gatehouse-dev/gatehouse/modules/platform/filter"
	"github.com/gatehouse-dev/gatehouse/modules/scim/internal/schema"
)

// Options parameterise Apply.
type Options struct {
	// ResourceType is the resource type of res, "User" or "Group".
	ResourceType string
	// ResourceID is the resource's id. A path-less operation may repeat it
	// as {"id": ResourceID} (Okta's Group Push does); any other "id" is a
	// mutability error.
	ResourceID string
	// MembersAsDelta makes operations on the top-level "members" attribute
	// accumulate into Result.Members instead of modifying res["members"],
	// for groups whose members are not loaded into res. Filters on members
	// are then limited to `value eq "<id>"` joined by or.
	MembersAsDelta bool
}

// Result is the outcome of Apply.
type Result struct {
	// Resource is the patched resource, a new map sharing nothing mutable
	// with the input. writeOnly attributes such as password are in it as
	// set; the caller must not return them.
	Resource map[string]any
	// Members is the change to the group's members in MembersAsDelta mode,
	// zero otherwise.
	Members MemberChange
	// Changed lists the top-level attributes whose value differs from the
	// input, in the order the request first touched them: canonical names
	// for core and common attributes, "<schema URN>:<name>" for extension
	// attributes, and "members" when the member delta is not zero.
	Changed []string
}

// Apply applies ops to res, a resource of type o.ResourceType in SCIM JSON
// shape, following RFC 7644 §3.5.2. res is not modified: Apply works on a
// deep copy and returns it, and fails as a whole if any operation fails
// (RFC 7644 §3.5.2: "the entire PATCH operation MUST be aborted").
//
// Client errors are *Error. Any other error means the caller passed a nil
// registry or an unknown resource type.
func Apply(reg *schema.Registry, res map[string]any, ops []Operation, o Options) (Result, error) {
	if reg == nil {
		return Result{}, errors.New("patch: nil schema registry")
	}
	rt, ok := reg.ResourceType(o.ResourceType)
	if !ok {
		return Result{}, fmt.Errorf("patch: unknown resource type %q", o.ResourceType)
	}
	core, ok := reg.Schema(rt.Schema)
	if !ok {
		return Result{}, fmt.Errorf("patch: resource type %q has no schema %q", rt.Name, rt.Schema)
	}
	a := &applier{reg: reg, rt: rt, core: core, o: o, orig: res, res: copyMap(res)}
	if a.res == nil {
		a.res = map[string]any{}
	}
	for i, op := range ops {
		a.n, a.verb = i+1, strings.ToLower(op.Op)
		if err := a.apply(op); err != nil {
			return Result{}, err
		}
	}
	a.syncSchemas()
	return Result{Resource: a.res, Members: a.delta.result(), Changed: a.changed()}, nil
}

// applier holds the state of one Apply call.
type applier struct {
	reg  *schema.Registry
	rt   *schema.ResourceType
	core *schema.Schema
	o    Options
	orig map[string]any // the caller's resource, read-only
	res  map[string]any // the copy being patched

	delta   delta
	touched []touch // top-level attributes targeted so far, first-touch order

	n    int    // current operation, 1-based, for messages
	verb string // current operation name
}

// touch identifies a top-level attribute for Result.Changed.
type touch struct {
	urn, name string
	ext       bool
}

func (t touch) key() string {
	if t.ext {
		return t.urn + ":" + t.name
	}
	return t.name
}

// fail builds an *Error about the current operation.
func (a *applier) fail(scimType, format string, args ...any) *Error {
	return &Error{
		ScimType: scimType,
		Detail:   fmt.Sprintf("operation %d (%s): ", a.n, a.verb) + fmt.Sprintf(format, args...),
	}
}

func (a *applier) apply(op Operation) error {
	switch a.verb {
	case OpAdd, OpReplace, OpRemove:
	default:
		return errorf(InvalidSyntax, "operation %d: unknown op %q; expected add, replace or remove", a.n, op.Op)
	}
	hasValue := len(op.Value) > 0
	if op.Path == "" {
		// RFC 7644 §3.5.2.2: remove without a path fails with noTarget.
		if a.verb == OpRemove {
			return a.fail(NoTarget, "path is required for remove")
		}
		if !hasValue {
			return a.fail(InvalidValue, "value is required for %s", a.verb)
		}
		return a.applyObject(op)
	}
	p, err := filter.ParsePath(op.Path)
	if err != nil {
		return a.fail(InvalidPath, "%v", err)
	}
	var v any
	if hasValue {
		if v, err = decodeValue(op.Value); err != nil {
			return a.fail(InvalidSyntax, "value is not valid JSON: %v", err)
		}
	} else if a.verb != OpRemove {
		// RFC 7644 §3.5.2.1 and §3.5.2.3: add and replace carry a value.
		return a.fail(InvalidValue, "value is required for %s", a.verb)
	}
	t, err := a.resolve(op.Path, p, false)
	if err != nil {
		return err
	}
	return a.applyTarget(t, v, hasValue)
}

// applyObject applies a path-less add or replace. RFC 7644 §3.5.2.1 and
// §3.5.2.3: the target is the resource itself and the value holds the
// attributes to add or replace. Each key is treated as a path, which also
// covers what identity providers put there: "name.givenName",
// `emails[type eq "work"].value` (Entra), URN-qualified extension
// attributes, and whole extension objects keyed by their URN.
func (a *applier) applyObject(op Operation) error {
	members, ok, err := decodeObject(op.Value)
	if err != nil {
		return a.fail(InvalidSyntax, "value is not valid JSON: %v", err)
	}
	if !ok {
		return a.fail(InvalidValue, "without a path, value must be an object of attributes, got %s", jsonKind(op.Value))
	}
	for _, m := range members {
		if err := a.applyKey(m.key, m.val, ""); err != nil {
			return err
		}
	}
	return nil
}

// applyKey applies one key of a path-less value, or of an extension object
// within one (then urn is the extension's schema).
func (a *applier) applyKey(key string, v any, urn string) error {
	if urn == "" && strings.EqualFold(key, "schemas") {
		return nil // the resource's schemas follow from its attributes
	}
	if s := a.schemaNamed(key); s != nil && urn == "" {
		return a.applySchemaObject(key, s, v)
	}
	p, err := filter.ParsePath(key)
	if err != nil {
		return a.fail(InvalidPath, "attribute %q in value: %v", key, err)
	}
	if urn != "" {
		if p.Attr.URN != "" && !strings.EqualFold(p.Attr.URN, urn) {
			return a.fail(InvalidPath, "attribute %q is not in schema %q", key, urn)
		}
		p.Attr.URN = urn
	}
	t, err := a.resolve(key, p, true)
	if err != nil {
		return err
	}
	if t.attr != nil && t.common {
		switch t.attr.Name {
		case "meta":
			return nil // clients echo meta back; it is the server's
		case "id":
			if id, ok := v.(string); ok && id != "" && id == a.o.ResourceID && t.sub == nil && t.filter == nil {
				return nil // Okta's Group Push repeats the id
			}
			return a.fail(Mutability, `attribute "id" is readOnly; a path-less value may only repeat the resource's own id`)
		}
	}
	return a.applyTarget(t, v, true)
}

// applySchemaObject applies {"<schema URN>": {attributes...}}, or a value
// given for a path that names a whole schema.
func (a *applier) applySchemaObject(text string, s *schema.Schema, v any) error {
	if v == nil && s.ID != a.core.ID {
		return a.removeExtension(s)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return a.fail(InvalidValue, "%q must be an object of the attributes of that schema", text)
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if err := a.applyKey(k, m[k], s.ID); err != nil {
			return err
		}
	}
	return nil
}

// removeExtension removes a whole extension object (remove with a path
// that is an extension schema URN).
func (a *applier) removeExtension(s *schema.Schema) error {
	ext, _ := lookup(a.res, s.ID).(map[string]any)
	for _, attr := range s.Attributes {
		cur := lookup(ext, attr.Name)
		if cur == nil {
			continue
		}
		t := &target{text: s.ID, urn: s.ID, ext: true, attr: attr}
		if err := a.checkWritable(t); err != nil {
			return err
		}
		if err := a.checkImmutable(attr, attr.Name, cur, nil); err != nil {
			return err
		}
		a.touch(t)
		if err := a.put(t, nil); err != nil {
			return err
		}
	}
	deleteKey(a.res, s.ID)
	return nil
}

// applyTarget dispatches an operation on a resolved path.
func (a *applier) applyTarget(t *target, v any, hasValue bool) error {
	if t.whole != nil {
		if a.verb != OpRemove {
			return a.applySchemaObject(t.text, t.whole, v)
		}
		if t.whole.ID == a.core.ID {
			return a.fail(InvalidPath, "%q: the core schema cannot be removed", t.text)
		}
		return a.removeExtension(t.whole)
	}
	if a.o.MembersAsDelta && a.isMembers(t) {
		return a.memberOp(t, v, hasValue)
	}
	if err := a.checkWritable(t); err != nil {
		return err
	}
	a.touch(t)
	if a.verb == OpRemove {
		return a.remove(t, v, hasValue)
	}
	return a.set(t, v)
}

// isMembers reports whether t is the core "members" attribute of a Group.
func (a *applier) isMembers(t *target) bool {
	return !t.ext && !t.common && t.attr.Name == "members" && t.attr.MultiValued
}

func (a *applier) touch(t *target) {
	a.addTouch(touch{urn: t.urn, name: t.attr.Name, ext: t.ext})
}

func (a *applier) touchMembers() {
	a.addTouch(touch{name: "members"})
}

func (a *applier) addTouch(k touch) {
	if !slices.Contains(a.touched, k) {
		a.touched = append(a.touched, k)
	}
}

// changed lists the touched attributes whose value differs from the input.
func (a *applier) changed() []string {
	var out []string
	for _, k := range a.touched {
		if a.o.MembersAsDelta && !k.ext && k.name == "members" {
			if a.delta.touched() {
				out = append(out, k.key())
			}
			continue
		}
		if !equal(topValue(a.orig, k), topValue(a.res, k)) {
			out = append(out, k.key())
		}
	}
	return out
}

func topValue(res map[string]any, k touch) any {
	if !k.ext {
		return lookup(res, k.name)
	}
	ext, _ := lookup(res, k.urn).(map[string]any)
	return lookup(ext, k.name)
}

// syncSchemas keeps the resource's "schemas" list, if it has one, in step
// with its extension objects (RFC 7643 §3: "schemas" lists the schemas the
// resource uses): an extension gained is added, one emptied is dropped.
func (a *applier) syncSchemas() {
	raw := lookup(a.res, "schemas")
	list, ok := schema.AsList(raw)
	if !ok {
		return
	}
	ids := make([]string, 0, len(list)+len(a.rt.SchemaExtensions))
	for _, e := range list {
		s, ok := e.(string)
		if !ok {
			return // not ours to fix
		}
		if a.isExtension(s) && unassigned(lookup(a.res, s)) {
			continue
		}
		ids = append(ids, s)
	}
	for _, x := range a.rt.SchemaExtensions {
		if unassigned(lookup(a.res, x.Schema)) {
			continue
		}
		if !slices.ContainsFunc(ids, func(s string) bool { return strings.EqualFold(s, x.Schema) }) {
			ids = append(ids, x.Schema)
		}
	}
	if slices.Equal(ids, stringsOf(list)) {
		return
	}
	if _, isStrings := raw.([]string); isStrings {
		store(a.res, "schemas", ids)
		return
	}
	out := make([]any, len(ids))
	for i, s := range ids {
		out[i] = s
	}
	store(a.res, "schemas", out)
}

func (a *applier) isExtension(id string) bool {
	return slices.ContainsFunc(a.rt.SchemaExtensions, func(x schema.Extension) bool {
		return strings.EqualFold(x.Schema, id)
	})
}

// schemaNamed returns the core or an extension schema of the resource type
// whose id is s, compared case-insensitively, or nil.
func (a *applier) schemaNamed(s string) *schema.Schema {
	if !strings.EqualFold(s, a.core.ID) && !a.isExtension(s) {
		return nil
	}
	sc, _ := a.reg.Schema(s)
	return sc
}

func stringsOf(list []any) []string {
	out := make([]string, len(list))
	for i, e := range list {
		out[i], _ = e.(string)
	}
	return out
}
