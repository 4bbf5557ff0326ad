package scim

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
	"github.com/gatehouse-dev/gatehouse/modules/scim/internal/schema"
)

func invalidValue(format string, args ...any) error {
	return apperr.Invalid(format, args...).WithCode("invalidValue")
}

// canonicalize turns a client's resource JSON into the canonical shape the rest of the
// transport works with: attribute names in schema case, extension attributes under their
// URN, values coerced to their schema types. Client-sent id and meta are ignored (RFC
// 7644 §3.3), readOnly attributes are ignored (Okta sends "groups": [] on create), unknown
// attributes are refused naming the attribute, and extra URIs in "schemas" (Entra adds
// its own) are tolerated.
func canonicalize(reg *schema.Registry, resourceType string, raw map[string]any) (map[string]any, error) {
	rt, ok := reg.ResourceType(resourceType)
	if !ok {
		return nil, fmt.Errorf("scim: unknown resource type %q", resourceType)
	}
	core, _ := reg.Schema(rt.Schema)
	exts := map[string]*schema.Schema{}
	for _, e := range rt.SchemaExtensions {
		if s, ok := reg.Schema(e.Schema); ok {
			exts[strings.ToLower(e.Schema)] = s
		}
	}
	out := map[string]any{}
	put := func(s *schema.Schema, into map[string]any, key string, v any) error {
		a := s.Attribute(key)
		if a == nil && s == core {
			for _, c := range reg.CommonAttributes() {
				if strings.EqualFold(c.Name, key) {
					a = c
				}
			}
		}
		if a == nil {
			return invalidValue("attribute %q is not part of the %s schema %s", key, resourceType, s.ID)
		}
		if a.Mutability == schema.MutabilityReadOnly {
			return nil
		}
		cv, err := schema.Coerce(a, v)
		if err != nil {
			return invalidValue("%s", err.Error())
		}
		into[a.Name] = cv
		return nil
	}
	for k, v := range raw {
		lk := strings.ToLower(k)
		switch {
		case lk == "schemas":
			if err := checkSchemas(rt, v); err != nil {
				return nil, err
			}
		case lk == "id" || lk == "meta":
			// server-assigned; ignored on input
		case exts[lk] != nil:
			obj, ok := v.(map[string]any)
			if v == nil {
				continue
			}
			if !ok {
				return nil, invalidValue("%s must be an object of its attributes", k)
			}
			ext := exts[lk]
			em := map[string]any{}
			for ek, ev := range obj {
				if err := put(ext, em, ek, ev); err != nil {
					return nil, err
				}
			}
			out[ext.ID] = em
		case strings.HasPrefix(lk, "urn:"):
			// A URN-qualified attribute as a key: "urn:…:enterprise:2.0:User:department".
			i := strings.LastIndexByte(k, ':')
			urn, attr := k[:i], k[i+1:]
			switch {
			case strings.EqualFold(urn, core.ID):
				if err := put(core, out, attr, v); err != nil {
					return nil, err
				}
			case exts[strings.ToLower(urn)] != nil:
				ext := exts[strings.ToLower(urn)]
				em, _ := out[ext.ID].(map[string]any)
				if em == nil {
					em = map[string]any{}
					out[ext.ID] = em
				}
				if err := put(ext, em, attr, v); err != nil {
					return nil, err
				}
			default:
				return nil, invalidValue("%q is not a schema or extension this server knows for %s; see /Schemas", k, resourceType)
			}
		default:
			if err := put(core, out, k, v); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// undeclaredExtension matches a User extension URN (RFC 7643 §3.3 naming): one in
// "schemas" that is not an extension of the resource type is extension data this
// tenant never declared. Other extra URIs (Entra's own) stay tolerated.
var undeclaredExtension = regexp.MustCompile(`(?i)^urn:ietf:params:scim:schemas:extension:[^:]+:2\.0:User$`)

func checkSchemas(rt *schema.ResourceType, v any) error {
	list, ok := v.([]any)
	if !ok {
		return invalidValue("schemas must be a list of schema URNs")
	}
	found := false
	for _, s := range list {
		str, ok := s.(string)
		if !ok {
			continue
		}
		if strings.EqualFold(str, rt.Schema) {
			found = true
			continue
		}
		if undeclaredExtension.MatchString(str) && !slices.ContainsFunc(rt.SchemaExtensions, func(x schema.Extension) bool { return strings.EqualFold(x.Schema, str) }) {
			return invalidValue("%q in schemas is not an extension this tenant declared for %s; see /Schemas", str, rt.Name)
		}
	}
	if !found {
		return invalidValue("schemas must include %q", rt.Schema)
	}
	return nil
}

// str reads a canonical string attribute ("" when unassigned).
func str(m map[string]any, key string) string {
	s, _ := m[key].(string)
	return s
}

func obj(m map[string]any, key string) map[string]any {
	o, _ := m[key].(map[string]any)
	return o
}

// list reads a canonical multi-valued complex attribute.
func list(m map[string]any, key string) []map[string]any {
	var out []map[string]any
	switch l := m[key].(type) {
	case []any:
		for _, e := range l {
			if em, ok := e.(map[string]any); ok {
				out = append(out, em)
			}
		}
	case []map[string]any:
		out = l
	}
	return out
}

func boolOr(m map[string]any, key string, def bool) bool {
	if b, ok := m[key].(bool); ok {
		return b
	}
	return def
}

// toAny round-trips v through JSON so typed values ([]string, structs) become the
// generic shapes projection and PATCH work on.
func toAny(v any) any {
	b, _ := json.Marshal(v)
	var out any
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	_ = dec.Decode(&out)
	return out
}
