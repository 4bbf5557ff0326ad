package scim

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/modules/identity"
	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
	"github.com/gatehouse-dev/gatehouse/modules/scim/internal/schema"
)

// Tenant-defined User extensions. The base registry (core User, Enterprise User, Group)
// is shared by every tenant; a tenant with declarations gets a registry extended with
// them, built once and kept until the declarations change (see registryFresh for how
// soon a change is seen).

type tenantRegistry struct {
	key string // the declarations it was built from
	gen uint64 // identity.ExtensionsGeneration when they were read
	at  time.Time
	reg *schema.Registry
}

type registries struct{ m sync.Map } // tenant id → tenantRegistry

// registryFresh is how long a tenant's registry is used without reading its
// declarations again. Declarations change rarely, by an operator; one made in this
// process is seen at once (the generation changes), one made elsewhere (the CLI,
// another replica) within this long. Writes are validated against the declarations in
// their own transaction whatever this cache holds.
const registryFresh = 2 * time.Second

// userRegistry returns the schema registry for a tenant's Users: the base one plus the
// tenant's declared extensions. It is cached per tenant and rebuilt only when the
// declarations change.
func (h *Handler) userRegistry(ctx context.Context, tenantID string) (*schema.Registry, error) {
	gen := h.identity.ExtensionsGeneration()
	if c, ok := h.regs.m.Load(tenantID); ok {
		if c := c.(tenantRegistry); c.gen == gen && time.Since(c.at) < registryFresh {
			return c.reg, nil
		}
	}
	exts, err := h.identity.UserExtensions(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(exts)
	if err != nil {
		return nil, err
	}
	key := string(b)
	if c, ok := h.regs.m.Load(tenantID); ok && c.(tenantRegistry).key == key {
		h.regs.m.Store(tenantID, tenantRegistry{key: key, gen: gen, at: time.Now(), reg: c.(tenantRegistry).reg})
		return c.(tenantRegistry).reg, nil
	}
	reg := h.registry
	if len(exts) > 0 {
		schemas := make([]*schema.Schema, len(exts))
		for i := range exts {
			schemas[i] = toSchema(&exts[i])
		}
		if reg, err = h.registry.Extend(resUser, false, schemas...); err != nil {
			return nil, err
		}
	}
	h.regs.m.Store(tenantID, tenantRegistry{key: key, gen: gen, at: time.Now(), reg: reg})
	return reg, nil
}

// toSchema renders a declaration as the schema /Schemas serves.
func toSchema(x *identity.UserExtension) *schema.Schema {
	s := &schema.Schema{ID: x.URN, Name: x.Name, Description: x.Description}
	for _, a := range x.Attributes {
		sa := &schema.Attribute{Name: a.Name, Type: a.Type, MultiValued: a.MultiValued, Description: a.Description,
			Required: a.Required, CaseExact: a.CaseExact, Mutability: a.Mutability, Returned: a.Returned, Uniqueness: a.Uniqueness}
		if a.Type == schema.TypeReference {
			sa.ReferenceTypes = []string{"external"}
		}
		s.Attributes = append(s.Attributes, sa)
	}
	return s
}

// isTenantExtension says whether key (canonical) is a tenant extension's URN.
func isTenantExtension(key string) bool {
	return strings.HasPrefix(key, "urn:") && key != schema.EnterpriseUserURN && key != schema.UserURN
}

// renderExt adds the user's extension values to res, typed as the registry says.
func renderExt(reg *schema.Registry, u *identity.User, res map[string]any) {
	if len(u.Ext) == 0 {
		return
	}
	schemas, _ := res["schemas"].([]any)
	for _, v := range u.Ext {
		s, ok := reg.Schema(v.URN)
		if !ok {
			continue
		}
		a := s.Attribute(v.Attr)
		if a == nil {
			continue
		}
		em, _ := res[s.ID].(map[string]any)
		if em == nil {
			em = map[string]any{}
			res[s.ID] = em
			schemas = append(schemas, s.ID)
		}
		var val any = v.Text
		switch a.Type {
		case schema.TypeInteger, schema.TypeDecimal:
			val = json.Number(v.Text)
		case schema.TypeBoolean:
			val = v.Text == "true"
		}
		if a.MultiValued {
			l, _ := em[a.Name].([]any)
			em[a.Name] = append(l, val)
		} else {
			em[a.Name] = val
		}
	}
	res["schemas"] = schemas
}

// extText is the canonical text of a coerced extension value.
func extText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case json.Number:
		return string(x)
	}
	return ""
}

// fromSCIMExt reads the extension attributes of a canonical resource into u.Ext. What a
// client may not write is kept as stored: readOnly attributes always, immutable ones
// once set (a different value is refused, RFC 7644 §3.5.1).
func fromSCIMExt(reg *schema.Registry, res map[string]any, u *identity.User) error {
	old := u.Ext
	var out []identity.ExtValue
	for k, v := range res {
		if !isTenantExtension(k) {
			continue
		}
		em, _ := v.(map[string]any)
		for attr, val := range em {
			vals, ok := schema.AsList(val)
			if !ok {
				vals = []any{val}
			}
			for _, e := range vals {
				if e == nil {
					continue
				}
				out = append(out, identity.ExtValue{URN: k, Attr: attr, Text: extText(e)})
			}
		}
	}
	rt, _ := reg.ResourceType(resUser)
	for _, x := range rt.SchemaExtensions {
		if !isTenantExtension(x.Schema) {
			continue
		}
		s, _ := reg.Schema(x.Schema)
		for _, a := range s.Attributes {
			if a.Mutability != schema.MutabilityReadOnly && a.Mutability != schema.MutabilityImmutable {
				continue
			}
			was, now := extValuesOf(old, s.ID, a.Name), extValuesOf(out, s.ID, a.Name)
			switch {
			case a.Mutability == schema.MutabilityImmutable && len(was) > 0 && len(now) > 0 && !slices.Equal(was, now):
				return apperr.Invalid("attribute %q is immutable and cannot be changed once set", s.ID+":"+a.Name).WithCode("mutability")
			case a.Mutability == schema.MutabilityImmutable && len(was) == 0:
				continue
			}
			out = slices.DeleteFunc(out, func(v identity.ExtValue) bool { return v.URN == s.ID && v.Attr == a.Name })
			for _, t := range was {
				out = append(out, identity.ExtValue{URN: s.ID, Attr: a.Name, Text: t})
			}
		}
	}
	// Go map order is random: sort so equal input gives equal rows (and no spurious diff).
	slices.SortStableFunc(out, func(a, b identity.ExtValue) int {
		if c := strings.Compare(a.URN, b.URN); c != 0 {
			return c
		}
		return strings.Compare(a.Attr, b.Attr)
	})
	u.Ext = out
	return nil
}

func extValuesOf(vs []identity.ExtValue, urn, attr string) []string {
	var out []string
	for _, v := range vs {
		if strings.EqualFold(v.URN, urn) && strings.EqualFold(v.Attr, attr) {
			out = append(out, v.Text)
		}
	}
	return out
}
