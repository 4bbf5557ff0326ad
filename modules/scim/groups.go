package scim

import (
	"context"
	"net/http"
	"strings"

	"github.com/gatehouse-dev/gatehouse/modules/access"
	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
	"github.com/gatehouse-dev/gatehouse/modules/scim/internal/patch"
	"github.com/gatehouse-dev/gatehouse/modules/scim/internal/schema"
)

const resGroup = "Group"

// toSCIMGroup renders a group; members is nil when they were not asked for (and so not
// loaded).
func (h *Handler) toSCIMGroup(g *access.Group, members []access.Member) map[string]any {
	res := map[string]any{
		"schemas":     []any{schema.GroupURN},
		"id":          g.ID,
		"displayName": g.DisplayName,
		"meta": map[string]any{
			"resourceType": resGroup,
			"created":      timeString(g.CreatedAt),
			"lastModified": timeString(g.UpdatedAt),
			"location":     h.location(resGroup, g.ID),
			"version":      etag(g.Version),
		},
	}
	if g.ExternalID != "" {
		res["externalId"] = g.ExternalID
	}
	if members != nil {
		ms := make([]any, len(members))
		for i, m := range members {
			ms[i] = map[string]any{"value": m.ID, "$ref": h.location(m.Type, m.ID), "display": m.Display, "type": m.Type}
		}
		res["members"] = ms
	}
	return res
}

// memberIDs reads the member ids of a canonical group; every member needs a value.
func memberIDs(res map[string]any) ([]string, error) {
	var out []string
	for _, m := range list(res, "members") {
		v := str(m, "value")
		if v == "" {
			return nil, invalidValue("every member needs a \"value\" (the member's id)")
		}
		out = append(out, v)
	}
	return out, nil
}

// groupFrom validates a decoded Group body; urlID is the id of the resource it replaces
// ("" on create).
func (h *Handler) groupFrom(raw map[string]any, urlID string) (map[string]any, []string, error) {
	if id, ok := raw["id"].(string); ok && urlID != "" && id != urlID {
		return nil, nil, apperr.Invalid("id %q in the body does not match the URL's %q; id cannot change", id, urlID).WithCode("mutability")
	}
	res, err := canonicalize(h.registry, resGroup, raw)
	if err != nil {
		return nil, nil, err
	}
	ids, err := memberIDs(res)
	if err != nil {
		return nil, nil, err
	}
	return res, ids, nil
}

func (h *Handler) writeGroup(w http.ResponseWriter, r *http.Request, status int, g access.Group) {
	p, err := h.projection(r, h.registry, resGroup)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	var members []access.Member
	if p.Wants("members") {
		if members, err = h.access.Members(r.Context(), tenantID(r), g.ID, 0, -1); err != nil {
			h.writeError(w, r, err)
			return
		}
		if members == nil {
			members = []access.Member{}
		}
	}
	w.Header().Set("Location", h.location(resGroup, g.ID))
	w.Header().Set("ETag", etag(g.Version))
	writeJSON(w, status, p.Apply(h.toSCIMGroup(&g, members)))
}

func (h *Handler) createGroup(w http.ResponseWriter, r *http.Request) {
	raw, err := decodeBody(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	g, err := h.createGroupFrom(r.Context(), tenantID(r), raw)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeGroup(w, r, http.StatusCreated, g)
}

// createGroupFrom creates a group from a decoded body; POST /Groups and Bulk share it.
func (h *Handler) createGroupFrom(ctx context.Context, tenantID string, raw map[string]any) (access.Group, error) {
	res, ids, err := h.groupFrom(raw, "")
	if err != nil {
		return access.Group{}, err
	}
	return h.access.CreateGroup(ctx, tenantID, access.Group{
		DisplayName: str(res, "displayName"), ExternalID: str(res, "externalId")}, ids)
}

func (h *Handler) getGroup(w http.ResponseWriter, r *http.Request) {
	g, err := h.access.GetGroup(r.Context(), tenantID(r), r.PathValue("id"))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if notModified(w, r, g.Version) {
		return
	}
	h.writeGroup(w, r, http.StatusOK, g)
}

// replaceGroup is PUT: name, externalId and the full member list are replaced; only
// the membership differences are written.
func (h *Handler) replaceGroup(w http.ResponseWriter, r *http.Request) {
	raw, err := decodeBody(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	g, err := h.replaceGroupFrom(r.Context(), tenantID(r), r.PathValue("id"), ifMatchVersion(r), raw)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeGroup(w, r, http.StatusOK, g)
}

// replaceGroupFrom replaces group id with a decoded body; PUT /Groups/{id} and Bulk
// share it.
func (h *Handler) replaceGroupFrom(ctx context.Context, tenantID, id string, ifVersion int64, raw map[string]any) (access.Group, error) {
	res, ids, err := h.groupFrom(raw, id)
	if err != nil {
		return access.Group{}, err
	}
	return h.access.UpdateGroup(ctx, tenantID, id, ifVersion, func(g *access.Group) (access.MemberChange, error) {
		g.DisplayName, g.ExternalID = str(res, "displayName"), str(res, "externalId")
		return access.MemberChange{RemoveAll: true, Add: ids}, nil
	})
}

// patchGroup applies PATCH operations. Member operations become a delta, so the cost is
// O(members changed) and the member list is never loaded. The response is 204 No
// Content (RFC 7644 §3.5.2 allows it, and Entra and Okta expect it for groups); a
// client that wants the resource asks with attributes/excludedAttributes or
// "Prefer: return=representation".
func (h *Handler) patchGroup(w http.ResponseWriter, r *http.Request) {
	ops, err := h.patchOps(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	g, err := h.patchGroupWith(r.Context(), tenantID(r), r.PathValue("id"), ifMatchVersion(r), ops)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	if q.Has("attributes") || q.Has("excludedAttributes") || strings.Contains(r.Header.Get("Prefer"), "return=representation") {
		h.writeGroup(w, r, http.StatusOK, g)
		return
	}
	w.Header().Set("ETag", etag(g.Version))
	w.WriteHeader(http.StatusNoContent)
}

// patchGroupWith applies parsed PATCH operations to group id; PATCH /Groups/{id} and
// Bulk share it.
func (h *Handler) patchGroupWith(ctx context.Context, tenantID, id string, ifVersion int64, ops []patch.Operation) (access.Group, error) {
	return h.access.UpdateGroup(ctx, tenantID, id, ifVersion, func(g *access.Group) (access.MemberChange, error) {
		current := toAny(h.toSCIMGroup(g, nil)).(map[string]any)
		result, err := patch.Apply(h.registry, current, ops, patch.Options{ResourceType: resGroup, ResourceID: id, MembersAsDelta: true})
		if err != nil {
			return access.MemberChange{}, patchError(err)
		}
		g.DisplayName, g.ExternalID = str(result.Resource, "displayName"), str(result.Resource, "externalId")
		d := result.Members
		c := access.MemberChange{Remove: d.Remove, RemoveAll: d.RemoveAll || d.ReplaceAll}
		for _, m := range d.Add {
			c.Add = append(c.Add, m.Value)
		}
		return c, nil
	})
}

func (h *Handler) deleteGroup(w http.ResponseWriter, r *http.Request) {
	if err := h.access.DeleteGroup(r.Context(), tenantID(r), r.PathValue("id"), ifMatchVersion(r)); err != nil {
		h.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) listGroups(w http.ResponseWriter, r *http.Request) {
	q, err := h.listQuery(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.groupsPage(w, r, q)
}

func (h *Handler) searchGroups(w http.ResponseWriter, r *http.Request) {
	q, err := h.searchQuery(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.groupsPage(w, r, q)
}

func (h *Handler) groupsPage(w http.ResponseWriter, r *http.Request, q listQuery) {
	p, err := h.registry.Projection(resGroup, q.attributes, q.excluded)
	if err != nil {
		h.writeError(w, r, invalidValue("%s", err.Error()))
		return
	}
	after, bind, err := keyset(tenantID(r), resGroup, q)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	page, err := h.access.ListGroups(r.Context(), tenantID(r), access.Query{
		Filter: q.filter, SortBy: q.sortBy, Descending: q.descending, After: after, Offset: q.startIndex - 1, Limit: q.count})
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	res := make([]map[string]any, len(page.Groups))
	for i := range page.Groups {
		var members []access.Member
		if p.Wants("members") {
			// One query per group on the page; a page is at most MaxResults groups and
			// clients that list groups at scale exclude members (Entra does).
			if members, err = h.access.Members(r.Context(), tenantID(r), page.Groups[i].ID, 0, -1); err != nil {
				h.writeError(w, r, err)
				return
			}
			if members == nil {
				members = []access.Member{}
			}
		}
		res[i] = p.Apply(h.toSCIMGroup(&page.Groups[i], members))
	}
	writeList(w, q, page.Total, nextCursor(page.Next, bind), res)
}
