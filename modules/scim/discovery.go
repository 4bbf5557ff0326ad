package scim

import (
	"net/http"
	"strings"

	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
	"github.com/gatehouse-dev/gatehouse/modules/scim/internal/schema"
)

// serviceProviderConfig says exactly what this server supports (RFC 7643 §5).
func (h *Handler) serviceProviderConfig(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, schema.ServiceProviderConfig(h.cfg.BaseURL, schema.SPConfig{
		DocumentationURI: "https://github.com/gatehouse-dev/gatehouse#scim-20",
		Patch:            true,
		Bulk:             schema.BulkConfig{Supported: true, MaxOperations: MaxBulkOperations, MaxPayloadSize: MaxBulkPayloadBytes},
		Filter:           schema.FilterConfig{Supported: true, MaxResults: MaxResults},
		Pagination:       &schema.PaginationConfig{Cursor: true, Index: true, DefaultMethod: "index", DefaultPageSize: DefaultCount, MaxPageSize: MaxResults},
		ChangePassword:   false,
		Sort:             true,
		ETag:             true,
		AuthenticationSchemes: []schema.AuthenticationScheme{
			schema.OAuthBearerToken(),
		},
	}))
}

func listOf(resources []map[string]any) map[string]any {
	return map[string]any{
		"schemas":      []string{listResponseURN},
		"totalResults": len(resources),
		"startIndex":   1,
		"itemsPerPage": len(resources),
		"Resources":    resources,
	}
}

// The discovery endpoints answer with the tenant's own registry: its declared User
// extensions are listed for it and for no other tenant.

func (h *Handler) resourceTypes(w http.ResponseWriter, r *http.Request) {
	reg, err := h.userRegistry(r.Context(), tenantID(r))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, listOf(reg.ResourceTypeResources(h.cfg.BaseURL)))
}

func (h *Handler) resourceType(w http.ResponseWriter, r *http.Request) {
	reg, err := h.userRegistry(r.Context(), tenantID(r))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	name := r.PathValue("name")
	for _, rt := range reg.ResourceTypes() {
		if strings.EqualFold(rt.ID, name) || strings.EqualFold(rt.Name, name) {
			writeJSON(w, http.StatusOK, reg.ResourceTypeResource(rt, h.cfg.BaseURL))
			return
		}
	}
	h.writeError(w, r, apperr.NotFound("no resource type %q (this server has User and Group)", name))
}

func (h *Handler) schemas(w http.ResponseWriter, r *http.Request) {
	reg, err := h.userRegistry(r.Context(), tenantID(r))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, listOf(reg.SchemaResources(h.cfg.BaseURL)))
}

func (h *Handler) schema(w http.ResponseWriter, r *http.Request) {
	reg, err := h.userRegistry(r.Context(), tenantID(r))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	urn := r.PathValue("urn")
	for _, s := range reg.Schemas() {
		if strings.EqualFold(s.ID, urn) {
			writeJSON(w, http.StatusOK, reg.SchemaResource(s, h.cfg.BaseURL))
			return
		}
	}
	h.writeError(w, r, apperr.NotFound("no schema %q; see %s/Schemas", urn, h.cfg.BaseURL))
}
