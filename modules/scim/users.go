package scim

import (
	"context"
	"net/http"
	"time"

	"github.com/gatehouse-dev/gatehouse/modules/access"
	"github.com/gatehouse-dev/gatehouse/modules/identity"
	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
	"github.com/gatehouse-dev/gatehouse/modules/scim/internal/patch"
	"github.com/gatehouse-dev/gatehouse/modules/scim/internal/schema"
)

const resUser = "User"

func timeString(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// toSCIMUser renders a user as a canonical SCIM resource.
func (h *Handler) toSCIMUser(reg *schema.Registry, u *identity.User, groups []access.GroupRef) map[string]any {
	res := map[string]any{
		"schemas":  []any{schema.UserURN},
		"id":       u.ID,
		"userName": u.UserName,
		"active":   u.Active,
		"meta": map[string]any{
			"resourceType": resUser,
			"created":      timeString(u.CreatedAt),
			"lastModified": timeString(u.UpdatedAt),
			"location":     h.location(resUser, u.ID),
			"version":      etag(u.Version),
		},
	}
	set := func(m map[string]any, k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	set(res, "externalId", u.ExternalID)
	set(res, "displayName", u.DisplayName)
	set(res, "nickName", u.NickName)
	set(res, "profileUrl", u.ProfileURL)
	set(res, "title", u.Title)
	set(res, "userType", u.UserType)
	set(res, "preferredLanguage", u.PreferredLanguage)
	set(res, "locale", u.Locale)
	set(res, "timezone", u.Timezone)
	name := map[string]any{}
	set(name, "formatted", u.NameFormatted)
	set(name, "familyName", u.FamilyName)
	set(name, "givenName", u.GivenName)
	set(name, "middleName", u.MiddleName)
	set(name, "honorificPrefix", u.HonorificPrefix)
	set(name, "honorificSuffix", u.HonorificSuffix)
	if len(name) > 0 {
		res["name"] = name
	}
	for _, attr := range identity.MultiValuedAttrs {
		var vals []any
		for _, v := range u.ValuesOf(attr) {
			e := map[string]any{}
			if attr == identity.AttrAddresses {
				set(e, "formatted", v.Formatted)
				set(e, "streetAddress", v.StreetAddress)
				set(e, "locality", v.Locality)
				set(e, "region", v.Region)
				set(e, "postalCode", v.PostalCode)
				set(e, "country", v.Country)
			} else {
				set(e, "value", v.Value)
				set(e, "display", v.Display)
			}
			set(e, "type", v.Type)
			if v.Primary {
				e["primary"] = true
			}
			vals = append(vals, e)
		}
		if len(vals) > 0 {
			res[attr] = vals
		}
	}
	if len(groups) > 0 {
		gs := make([]any, len(groups))
		for i, g := range groups {
			gs[i] = map[string]any{"value": g.ID, "$ref": h.location("Group", g.ID), "display": g.DisplayName, "type": "direct"}
		}
		res["groups"] = gs
	}
	ent := map[string]any{}
	set(ent, "employeeNumber", u.EmployeeNumber)
	set(ent, "costCenter", u.CostCenter)
	set(ent, "organization", u.Organization)
	set(ent, "division", u.Division)
	set(ent, "department", u.Department)
	if u.ManagerID != "" {
		ent["manager"] = map[string]any{"value": u.ManagerID, "$ref": h.location(resUser, u.ManagerID)}
	}
	if len(ent) > 0 {
		res[schema.EnterpriseUserURN] = ent
		res["schemas"] = []any{schema.UserURN, schema.EnterpriseUserURN}
	}
	renderExt(reg, u, res)
	return res
}

// fromSCIMUser reads a canonical SCIM user into the fields a client may set. Every
// writable attribute but active is assigned (active only when present), so it serves
// create, PUT (replace) and the result of a PATCH alike; password is accepted and
// discarded (sign-in is SSO only).
func fromSCIMUser(reg *schema.Registry, res map[string]any, u *identity.User) error {
	u.UserName = str(res, "userName")
	u.ExternalID = str(res, "externalId")
	u.DisplayName = str(res, "displayName")
	u.NickName = str(res, "nickName")
	u.ProfileURL = str(res, "profileUrl")
	u.Title = str(res, "title")
	u.UserType = str(res, "userType")
	u.PreferredLanguage = str(res, "preferredLanguage")
	u.Locale = str(res, "locale")
	u.Timezone = str(res, "timezone")
	// Absent, active stays as it is: a replace that leaves it out must not bring a
	// deprovisioned user back. New users start active (userFrom).
	u.Active = boolOr(res, "active", u.Active)
	name := obj(res, "name")
	u.NameFormatted = str(name, "formatted")
	u.FamilyName = str(name, "familyName")
	u.GivenName = str(name, "givenName")
	u.MiddleName = str(name, "middleName")
	u.HonorificPrefix = str(name, "honorificPrefix")
	u.HonorificSuffix = str(name, "honorificSuffix")
	u.Values = nil
	for _, attr := range identity.MultiValuedAttrs {
		for _, e := range list(res, attr) {
			v := identity.Value{Attr: attr, Type: str(e, "type"), Primary: boolOr(e, "primary", false)}
			if attr == identity.AttrAddresses {
				v.Formatted, v.StreetAddress, v.Locality = str(e, "formatted"), str(e, "streetAddress"), str(e, "locality")
				v.Region, v.PostalCode, v.Country = str(e, "region"), str(e, "postalCode"), str(e, "country")
			} else {
				v.Value, v.Display = str(e, "value"), str(e, "display")
				if v.Value == "" && attr != identity.AttrPhotos {
					return invalidValue("every value of %s needs a \"value\"", attr)
				}
			}
			u.Values = append(u.Values, v)
		}
	}
	onePrimary(u.Values)
	ent := obj(res, schema.EnterpriseUserURN)
	u.EmployeeNumber = str(ent, "employeeNumber")
	u.CostCenter = str(ent, "costCenter")
	u.Organization = str(ent, "organization")
	u.Division = str(ent, "division")
	u.Department = str(ent, "department")
	u.ManagerID = str(obj(ent, "manager"), "value")
	return fromSCIMExt(reg, res, u)
}

// onePrimary keeps at most one primary value per attribute (RFC 7643 §2.4: "The
// primary attribute value true MUST appear no more than once"): of several, the last
// wins, as when PATCH makes a value primary.
func onePrimary(values []identity.Value) {
	last := map[string]int{}
	for i, v := range values {
		if v.Primary {
			last[v.Attr] = i
		}
	}
	for i := range values {
		if values[i].Primary && last[values[i].Attr] != i {
			values[i].Primary = false
		}
	}
}

// renderUsers renders users with their groups, projected as the request asks. A user
// this request has just created is in no group yet (memberships name existing users),
// so fresh skips the groups query.
func (h *Handler) renderUsers(r *http.Request, reg *schema.Registry, p *schema.Projection, users []identity.User, fresh bool) ([]map[string]any, error) {
	var groups map[string][]access.GroupRef
	if p.Wants("groups") && len(users) > 0 && !fresh {
		idList := make([]string, len(users))
		for i := range users {
			idList[i] = users[i].ID
		}
		var err error
		if groups, err = h.access.GroupsOfUsers(r.Context(), tenantID(r), idList); err != nil {
			return nil, err
		}
	}
	out := make([]map[string]any, len(users))
	for i := range users {
		out[i] = p.Apply(h.toSCIMUser(reg, &users[i], groups[users[i].ID]))
	}
	return out, nil
}

func (h *Handler) writeUser(w http.ResponseWriter, r *http.Request, status int, u identity.User) {
	reg, err := h.userRegistry(r.Context(), tenantID(r))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	p, err := h.projection(r, reg, resUser)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	res, err := h.renderUsers(r, reg, p, []identity.User{u}, status == http.StatusCreated)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", h.location(resUser, u.ID))
	w.Header().Set("ETag", etag(u.Version))
	writeJSON(w, status, res[0])
}

func (h *Handler) createUser(w http.ResponseWriter, r *http.Request) {
	raw, err := decodeBody(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	created, err := h.createUserFrom(r.Context(), tenantID(r), raw)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeUser(w, r, http.StatusCreated, created)
}

// createUserFrom creates a user from a decoded body; POST /Users and Bulk share it.
func (h *Handler) createUserFrom(ctx context.Context, tenantID string, raw map[string]any) (identity.User, error) {
	u, err := h.userFrom(ctx, tenantID, raw)
	if err != nil {
		return identity.User{}, err
	}
	return h.identity.CreateUser(ctx, tenantID, u)
}

// userFrom reads a decoded POST /Users body into the user to create.
func (h *Handler) userFrom(ctx context.Context, tenantID string, raw map[string]any) (identity.User, error) {
	reg, err := h.userRegistry(ctx, tenantID)
	if err != nil {
		return identity.User{}, err
	}
	res, err := canonicalize(reg, resUser, raw)
	if err != nil {
		return identity.User{}, err
	}
	u := identity.User{Active: true}
	if err := fromSCIMUser(reg, res, &u); err != nil {
		return identity.User{}, err
	}
	u.Source = identity.SourceSCIM
	return u, nil
}

func (h *Handler) getUser(w http.ResponseWriter, r *http.Request) {
	u, err := h.identity.GetUserWithExtensions(r.Context(), tenantID(r), r.PathValue("id"))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if notModified(w, r, u.Version) {
		return
	}
	h.writeUser(w, r, http.StatusOK, u)
}

// replaceUser is PUT: the body replaces every writable attribute (RFC 7644 §3.5.1).
func (h *Handler) replaceUser(w http.ResponseWriter, r *http.Request) {
	raw, err := decodeBody(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	u, err := h.replaceUserFrom(r.Context(), tenantID(r), r.PathValue("id"), ifMatchVersion(r), raw)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeUser(w, r, http.StatusOK, u)
}

// replaceUserFrom replaces user id with a decoded body; PUT /Users/{id} and Bulk share it.
func (h *Handler) replaceUserFrom(ctx context.Context, tenantID, id string, ifVersion int64, raw map[string]any) (identity.User, error) {
	if bodyID, ok := raw["id"].(string); ok && bodyID != id {
		return identity.User{}, apperr.Invalid("id %q in the body does not match the URL's %q; id cannot change", bodyID, id).WithCode("mutability")
	}
	reg, err := h.userRegistry(ctx, tenantID)
	if err != nil {
		return identity.User{}, err
	}
	res, err := canonicalize(reg, resUser, raw)
	if err != nil {
		return identity.User{}, err
	}
	return h.identity.UpdateUser(ctx, tenantID, id, ifVersion, func(u *identity.User) error {
		return fromSCIMUser(reg, res, u)
	})
}

// patchUser applies RFC 7644 §3.5.2 operations to the stored user under a row lock:
// all operations apply or none do.
func (h *Handler) patchUser(w http.ResponseWriter, r *http.Request) {
	ops, err := h.patchOps(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	u, err := h.patchUserWith(r.Context(), tenantID(r), r.PathValue("id"), ifMatchVersion(r), ops)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeUser(w, r, http.StatusOK, u)
}

// patchUserWith applies parsed PATCH operations to user id; PATCH /Users/{id} and Bulk
// share it.
func (h *Handler) patchUserWith(ctx context.Context, tenantID, id string, ifVersion int64, ops []patch.Operation) (identity.User, error) {
	reg, err := h.userRegistry(ctx, tenantID)
	if err != nil {
		return identity.User{}, err
	}
	return h.identity.UpdateUser(ctx, tenantID, id, ifVersion, func(u *identity.User) error {
		current := toAny(h.toSCIMUser(reg, u, nil)).(map[string]any)
		result, err := patch.Apply(reg, current, ops, patch.Options{ResourceType: resUser, ResourceID: id})
		if err != nil {
			return patchError(err)
		}
		return fromSCIMUser(reg, result.Resource, u)
	})
}

func (h *Handler) deleteUser(w http.ResponseWriter, r *http.Request) {
	if err := h.access.DeleteUser(r.Context(), tenantID(r), r.PathValue("id"), ifMatchVersion(r)); err != nil {
		h.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) listUsers(w http.ResponseWriter, r *http.Request) {
	q, err := h.listQuery(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.usersPage(w, r, q)
}

func (h *Handler) searchUsers(w http.ResponseWriter, r *http.Request) {
	q, err := h.searchQuery(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.usersPage(w, r, q)
}

func (h *Handler) usersPage(w http.ResponseWriter, r *http.Request, q listQuery) {
	reg, err := h.userRegistry(r.Context(), tenantID(r))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	p, err := reg.Projection(resUser, q.attributes, q.excluded)
	if err != nil {
		h.writeError(w, r, invalidValue("%s", err.Error()))
		return
	}
	after, bind, err := keyset(tenantID(r), resUser, q)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	page, err := h.identity.ListUsers(r.Context(), tenantID(r), identity.Query{
		Filter: q.filter, SortBy: q.sortBy, Descending: q.descending, After: after, Offset: q.startIndex - 1, Limit: q.count})
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	res, err := h.renderUsers(r, reg, p, page.Users, false)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeList(w, q, page.Total, nextCursor(page.Next, bind), res)
}
