package identity

import (
	"strings"

	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
	"github.com/gatehouse-dev/gatehouse/modules/platform/filter"
	"github.com/gatehouse-dev/gatehouse/modules/platform/filtersql"
)

// SCIM schema URNs whose attributes live on users.
const (
	coreUserURN       = "urn:ietf:params:scim:schemas:core:2.0:user"
	enterpriseUserURN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user"
)

// userColumns maps lower-cased attribute paths to columns of users (alias u).
var userColumns = map[string]filtersql.Field{
	"id":                   {Column: "u.id", CaseExact: true, NotNull: true},
	"externalid":           {Column: "u.external_id", CaseExact: true},
	"username":             {Column: "u.user_name_key", Folded: true, NotNull: true, Unique: true},
	"displayname":          {Column: "u.display_name"},
	"name.formatted":       {Column: "u.name_formatted"},
	"name.familyname":      {Column: "u.family_name"},
	"name.givenname":       {Column: "u.given_name"},
	"name.middlename":      {Column: "u.middle_name"},
	"name.honorificprefix": {Column: "u.honorific_prefix"},
	"name.honorificsuffix": {Column: "u.honorific_suffix"},
	"nickname":             {Column: "u.nick_name"},
	"profileurl":           {Column: "u.profile_url", CaseExact: true},
	"title":                {Column: "u.title"},
	"usertype":             {Column: "u.user_type"},
	"preferredlanguage":    {Column: "u.preferred_language"},
	"locale":               {Column: "u.locale"},
	"timezone":             {Column: "u.timezone"},
	"active":               {Column: "u.active", Kind: filtersql.Bool, NotNull: true},
	"meta.created":         {Column: "u.created_at", Kind: filtersql.Time, NotNull: true},
	"meta.lastmodified":    {Column: "u.updated_at", Kind: filtersql.Time, NotNull: true},
	"employeenumber":       {Column: "u.employee_number"},
	"costcenter":           {Column: "u.cost_center"},
	"organization":         {Column: "u.organization"},
	"division":             {Column: "u.division"},
	"department":           {Column: "u.department"},
	"manager.value":        {Column: "u.manager_id", CaseExact: true},
	"manager":              {Column: "u.manager_id", CaseExact: true},
}

var enterpriseAttrs = map[string]bool{"employeenumber": true, "costcenter": true, "organization": true,
	"division": true, "department": true, "manager": true}

// valueColumns maps sub-attributes of multi-valued attributes to user_values (alias v).
var valueColumns = map[string]filtersql.Field{
	"value":         {Column: "v.value_key", Folded: true},
	"display":       {Column: "v.display"},
	"type":          {Column: "v.type"},
	"primary":       {Column: "v.is_primary", Kind: filtersql.Bool},
	"formatted":     {Column: "v.formatted"},
	"streetaddress": {Column: "v.street_address"},
	"locality":      {Column: "v.locality"},
	"region":        {Column: "v.region"},
	"postalcode":    {Column: "v.postal_code"},
	"country":       {Column: "v.country"},
}

func multiAttr(name string) (string, bool) {
	for _, a := range MultiValuedAttrs {
		if strings.EqualFold(a, name) {
			return a, true
		}
	}
	return "", false
}

type userFilterSchema struct {
	tenantID string
	exts     []UserExtension // the tenant's declared extensions, when the query names one
}

// extField is the user_ext_values column (alias x) that holds a value of a.
func extField(a *ExtensionAttribute) filtersql.Field {
	switch a.Type {
	case ExtInteger, ExtDecimal:
		return filtersql.Field{Column: "x.value_num", Kind: filtersql.Number}
	case ExtBoolean:
		return filtersql.Field{Column: "x.value_bool", Kind: filtersql.Bool}
	case ExtDateTime:
		return filtersql.Field{Column: "x.value_time", Kind: filtersql.Time}
	}
	if a.CaseExact {
		return filtersql.Field{Column: "x.value_text", CaseExact: true}
	}
	return filtersql.Field{Column: "x.value_key", Folded: true}
}

// extAttr finds a declared extension attribute named by p.
func (s userFilterSchema) extAttr(p filter.AttrPath) (*UserExtension, *ExtensionAttribute, error) {
	for i := range s.exts {
		x := &s.exts[i]
		if !strings.EqualFold(x.URN, p.URN) {
			continue
		}
		a := x.Attribute(p.Name)
		if a == nil || p.Sub != "" {
			return nil, nil, unknownAttr(p)
		}
		if !a.Indexed {
			return nil, nil, apperr.Invalid("attribute %q is not declared indexed, so it cannot be filtered or sorted on", p.String()).WithCode("invalidFilter")
		}
		return x, a, nil
	}
	return nil, nil, unknownAttr(p)
}

// mentionsExtension reports whether a filter or sort names an attribute outside the core
// and enterprise schemas, so the tenant's declarations must be read to resolve it.
func mentionsExtension(e filter.Expr, sortBy *filter.AttrPath) bool {
	other := func(p filter.AttrPath) bool {
		u := strings.ToLower(p.URN)
		return u != "" && u != coreUserURN && u != enterpriseUserURN
	}
	if sortBy != nil && other(*sortBy) {
		return true
	}
	var walk func(filter.Expr) bool
	walk = func(e filter.Expr) bool {
		switch n := e.(type) {
		case filter.And:
			return walk(n.Left) || walk(n.Right)
		case filter.Or:
			return walk(n.Left) || walk(n.Right)
		case filter.Not:
			return walk(n.X)
		case filter.Compare:
			return other(n.Attr)
		case filter.Present:
			return other(n.Attr)
		case filter.ValuePath:
			return other(n.Attr)
		}
		return false
	}
	return e != nil && walk(e)
}

func unknownAttr(p filter.AttrPath) error {
	return apperr.Invalid("attribute %q is not a filterable User attribute", p.String()).WithCode("invalidFilter")
}

func (s userFilterSchema) Resolve(p filter.AttrPath) (*filtersql.Field, *filtersql.Multi, error) {
	name := strings.ToLower(p.Name)
	switch strings.ToLower(p.URN) {
	case "", coreUserURN:
		if enterpriseAttrs[name] && p.URN != "" {
			return nil, nil, unknownAttr(p)
		}
	case enterpriseUserURN:
		if !enterpriseAttrs[name] {
			return nil, nil, unknownAttr(p)
		}
	default:
		x, a, err := s.extAttr(p)
		if err != nil {
			return nil, nil, err
		}
		f := extField(a)
		return nil, &filtersql.Multi{
			Subquery:   "SELECT x.user_id FROM user_ext_values AS x WHERE x.tenant_id = ? AND x.urn = ? AND x.attr = ?",
			Args:       []any{s.tenantID, x.URN, a.Name},
			DefaultSub: "value",
			Sub: func(sub string) (filtersql.Field, bool) {
				return f, strings.EqualFold(sub, "value")
			},
		}, nil
	}
	if attr, ok := multiAttr(p.Name); ok {
		m := &filtersql.Multi{
			Subquery:   "SELECT v.user_id FROM user_values AS v WHERE v.tenant_id = ? AND v.attr = ?",
			Args:       []any{s.tenantID, attr},
			DefaultSub: "value",
			Sub: func(sub string) (filtersql.Field, bool) {
				sub = strings.ToLower(sub)
				if attr == AttrAddresses && (sub == "value" || sub == "display") {
					return filtersql.Field{}, false
				}
				f, ok := valueColumns[sub]
				isAddr := sub == "formatted" || sub == "streetaddress" || sub == "locality" || sub == "region" || sub == "postalcode" || sub == "country"
				if isAddr && attr != AttrAddresses {
					return filtersql.Field{}, false
				}
				return f, ok
			},
		}
		return nil, m, nil
	}
	key := name
	if p.Sub != "" {
		key += "." + strings.ToLower(p.Sub)
	}
	f, ok := userColumns[key]
	if !ok {
		if name == "groups" {
			return nil, nil, apperr.Invalid("filtering users by groups is not supported; filter Groups by members.value instead").WithCode("invalidFilter")
		}
		if name == "name" && p.Sub == "" || name == "meta" && p.Sub == "" {
			return nil, nil, apperr.Invalid("attribute %q is complex: name one of its sub-attributes, e.g. %s.%s", p.Name, p.Name, map[string]string{"name": "familyName", "meta": "lastModified"}[name]).WithCode("invalidFilter")
		}
		return nil, nil, unknownAttr(p)
	}
	return &f, nil, nil
}

// sortColumn returns the ORDER BY expression for a sortBy attribute. Multi-valued
// attributes sort by their primary (else first) value.
func sortColumn(s userFilterSchema, p filter.AttrPath) (filtersql.Field, error) {
	f, m, err := s.Resolve(p)
	if err != nil {
		return filtersql.Field{}, apperr.Invalid("cannot sort by %q: %s", p.String(), apperr.PublicMessage(err)).WithCode("invalidValue")
	}
	if u := strings.ToLower(p.URN); m != nil && u != "" && u != coreUserURN && u != enterpriseUserURN {
		// A declared extension attribute: its first value. The URN and name are inlined;
		// both were validated at declaration (letters, digits, ':', '.', '_', '-' only).
		x, a, _ := s.extAttr(p)
		sf := extField(a)
		return filtersql.Field{Kind: sf.Kind, Column: "(SELECT " + sf.Column + " FROM user_ext_values AS x WHERE x.user_id = u.id AND x.urn = '" +
			x.URN + "' AND x.attr = '" + a.Name + "' ORDER BY x.position LIMIT 1)"}, nil
	}
	if m != nil {
		attr, _ := multiAttr(p.Name)
		sub := p.Sub
		if sub == "" {
			sub = "value"
		}
		sf, ok := m.Sub(sub)
		if !ok {
			return filtersql.Field{}, apperr.Invalid("cannot sort by %q", p.String()).WithCode("invalidValue")
		}
		return filtersql.Field{Kind: sf.Kind, Column: "(SELECT " + sf.Column + " FROM user_values AS v WHERE v.user_id = u.id AND v.attr = '" + attr +
			"' ORDER BY v.is_primary DESC, v.position LIMIT 1)"}, nil
	}
	out := *f
	if f.Kind == filtersql.String && !f.CaseExact && !f.Folded {
		out.Column = "lower(" + f.Column + ")"
	}
	return out, nil
}
