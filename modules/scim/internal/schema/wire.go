package schema

import "strings"

// SchemaResource renders s as served by /Schemas/{id} (RFC 7643 §7,
// §8.7.1). baseURL is the absolute SCIM base, e.g.
// "https://example.com/scim/v2"; a trailing slash is ignored.
func (r *Registry) SchemaResource(s *Schema, baseURL string) map[string]any {
	attrs := s.Attributes
	if attrs == nil {
		attrs = []*Attribute{} // "attributes" is REQUIRED: encode [] not null
	}
	return map[string]any{
		"schemas":     []string{SchemaURN},
		"id":          s.ID,
		"name":        s.Name,
		"description": s.Description,
		"attributes":  attrs,
		"meta": map[string]any{
			"resourceType": "Schema",
			"location":     trimBase(baseURL) + "/Schemas/" + s.ID,
		},
	}
}

// SchemaResources renders every registered schema, in [Registry.Schemas]
// order, for the /Schemas list response.
func (r *Registry) SchemaResources(baseURL string) []map[string]any {
	out := make([]map[string]any, len(r.schemas))
	for i, s := range r.schemas {
		out[i] = r.SchemaResource(s, baseURL)
	}
	return out
}

// ResourceTypeResource renders rt as served by /ResourceTypes/{id}
// (RFC 7643 §6, §8.6).
func (r *Registry) ResourceTypeResource(rt *ResourceType, baseURL string) map[string]any {
	m := map[string]any{
		"schemas":     []string{ResourceTypeURN},
		"id":          rt.ID,
		"name":        rt.Name,
		"endpoint":    rt.Endpoint,
		"description": rt.Description,
		"schema":      rt.Schema,
		"meta": map[string]any{
			"resourceType": "ResourceType",
			"location":     trimBase(baseURL) + "/ResourceTypes/" + rt.ID,
		},
	}
	if len(rt.SchemaExtensions) > 0 {
		m["schemaExtensions"] = rt.SchemaExtensions
	}
	return m
}

// ResourceTypeResources renders every resource type, in
// [Registry.ResourceTypes] order, for the /ResourceTypes list response.
func (r *Registry) ResourceTypeResources(baseURL string) []map[string]any {
	out := make([]map[string]any, len(r.resourceTypes))
	for i, rt := range r.resourceTypes {
		out[i] = r.ResourceTypeResource(rt, baseURL)
	}
	return out
}

// SPConfig is what the service provider actually supports, rendered by
// [ServiceProviderConfig]. Every value comes from the caller so that the
// advertised configuration matches the server's behaviour (RFC 7643 §5:
// clients use it to discover which optional features they may use).
type SPConfig struct {
	// DocumentationURI points to human-readable help; omitted when empty.
	DocumentationURI string
	// Patch reports support for PATCH (RFC 7644 §3.5.2).
	Patch bool
	// Bulk describes /Bulk support (RFC 7644 §3.7).
	Bulk BulkConfig
	// Filter describes filter support (RFC 7644 §3.4.2.2).
	Filter FilterConfig
	// Pagination, when set, describes the paging methods (RFC 9865 §4).
	Pagination *PaginationConfig
	// ChangePassword reports whether the password attribute can be changed.
	ChangePassword bool
	// Sort reports support for sortBy / sortOrder (RFC 7644 §3.4.2.3).
	Sort bool
	// ETag reports support for resource versions (RFC 7644 §3.14).
	ETag bool
	// AuthenticationSchemes lists the supported authentication schemes,
	// e.g. [OAuthBearerToken].
	AuthenticationSchemes []AuthenticationScheme
}

// BulkConfig is the "bulk" entry of the service provider configuration.
// RFC 7643 §5 requires the limits even when bulk is not supported.
type BulkConfig struct {
	Supported      bool
	MaxOperations  int
	MaxPayloadSize int // bytes
}

// FilterConfig is the "filter" entry of the service provider
// configuration.
type FilterConfig struct {
	Supported  bool
	MaxResults int
}

// AuthenticationScheme is an entry of "authenticationSchemes"
// (RFC 7643 §5).
type AuthenticationScheme struct {
	Type             string `json:"type"`
	Name             string `json:"name"`
	Description      string `json:"description"`
	SpecURI          string `json:"specUri,omitempty"`
	DocumentationURI string `json:"documentationUri,omitempty"`
	Primary          bool   `json:"primary"`
}

// OAuthBearerToken returns the RFC 6750 bearer token scheme, marked
// primary, for SPConfig.AuthenticationSchemes.
func OAuthBearerToken() AuthenticationScheme {
	return AuthenticationScheme{
		Type:        "oauthbearertoken",
		Name:        "OAuth Bearer Token",
		Description: "Authentication scheme using the OAuth Bearer Token Standard",
		SpecURI:     "https://www.rfc-editor.org/info/rfc6750",
		Primary:     true,
	}
}

// ServiceProviderConfig renders c as served by /ServiceProviderConfig
// (RFC 7643 §5, §8.5).
func ServiceProviderConfig(baseURL string, c SPConfig) map[string]any {
	schemes := c.AuthenticationSchemes
	if schemes == nil {
		schemes = []AuthenticationScheme{} // REQUIRED: encode [] not null
	}
	m := map[string]any{
		"schemas": []string{ServiceProviderConfigURN},
		"patch":   map[string]any{"supported": c.Patch},
		"bulk": map[string]any{
			"supported":      c.Bulk.Supported,
			"maxOperations":  c.Bulk.MaxOperations,
			"maxPayloadSize": c.Bulk.MaxPayloadSize,
		},
		"filter": map[string]any{
			"supported":  c.Filter.Supported,
			"maxResults": c.Filter.MaxResults,
		},
		"changePassword":        map[string]any{"supported": c.ChangePassword},
		"sort":                  map[string]any{"supported": c.Sort},
		"etag":                  map[string]any{"supported": c.ETag},
		"authenticationSchemes": schemes,
		"meta": map[string]any{
			"resourceType": "ServiceProviderConfig",
			"location":     trimBase(baseURL) + "/ServiceProviderConfig",
		},
	}
	if c.DocumentationURI != "" {
		m["documentationUri"] = c.DocumentationURI
	}
	if p := c.Pagination; p != nil {
		pm := map[string]any{
			"cursor":                  p.Cursor,
			"index":                   p.Index,
			"defaultPaginationMethod": p.DefaultMethod,
			"defaultPageSize":         p.DefaultPageSize,
			"maxPageSize":             p.MaxPageSize,
		}
		// RFC 9865 §4: a positive integer, OPTIONAL; a server whose cursors never
		// expire has no value to give.
		if p.CursorTimeout > 0 {
			pm["cursorTimeout"] = p.CursorTimeout
		}
		m["pagination"] = pm
	}
	return m
}

// PaginationConfig is the "pagination" block of /ServiceProviderConfig (RFC 9865 §4).
type PaginationConfig struct {
	Cursor, Index   bool
	DefaultMethod   string // "cursor" or "index"
	DefaultPageSize int
	MaxPageSize     int
	CursorTimeout   int // seconds a cursor stays valid; 0: no timeout, and none advertised
}

func trimBase(baseURL string) string { return strings.TrimRight(baseURL, "/") }
