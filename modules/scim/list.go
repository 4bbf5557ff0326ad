package scim

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
	"github.com/gatehouse-dev/gatehouse/modules/platform/filter"
	"github.com/gatehouse-dev/gatehouse/modules/platform/filtersql"
	"github.com/gatehouse-dev/gatehouse/modules/scim/internal/patch"
	"github.com/gatehouse-dev/gatehouse/modules/scim/internal/schema"
)

// listQuery is a parsed list or .search request (RFC 7644 §3.4.2, §3.4.3).
type listQuery struct {
	filter     filter.Expr
	sortBy     *filter.AttrPath
	descending bool
	startIndex int // 1-based
	count      int
	// cursor is set when the client pages by cursor (RFC 9865): "" asks for the first
	// page; startIndex is then unused.
	cursor     *string
	attributes []string
	excluded   []string
}

// rawList holds the parameters as text, from the query string or a .search body.
type rawList struct {
	filter, sortBy, sortOrder, startIndex, count string
	cursor                                       *string
	attributes, excluded                         []string
}

func (h *Handler) listQuery(r *http.Request) (listQuery, error) {
	q := r.URL.Query()
	raw := rawList{
		filter: q.Get("filter"), sortBy: q.Get("sortBy"), sortOrder: q.Get("sortOrder"),
		startIndex: q.Get("startIndex"), count: q.Get("count"),
		attributes: schema.SplitAttrList(q.Get("attributes")), excluded: schema.SplitAttrList(q.Get("excludedAttributes")),
	}
	if q.Has("cursor") {
		c := q.Get("cursor")
		raw.cursor = &c
	}
	return parseList(raw)
}

// searchQuery reads POST /.search (RFC 7644 §3.4.3). A member of the wrong JSON type
// is refused, never dropped (a dropped filter would list every resource); null is
// unassigned.
func (h *Handler) searchQuery(r *http.Request) (listQuery, error) {
	body, err := decodeBody(r)
	if err != nil {
		return listQuery{}, err
	}
	var raw rawList
	for k, v := range body {
		lk := strings.ToLower(k)
		if v == nil && lk != "schemas" && lk != "cursor" {
			continue
		}
		var ok bool
		switch lk {
		case "schemas":
			ok := false
			if l, isList := v.([]any); isList {
				for _, s := range l {
					ok = ok || s == searchURN
				}
			}
			if !ok {
				return listQuery{}, apperr.Invalid("schemas must be [%q]", searchURN).WithCode("invalidSyntax")
			}
		case "filter":
			if raw.filter, ok = v.(string); !ok {
				return listQuery{}, invalidSyntax("filter must be a string, got %s", jsonType(v))
			}
		case "sortby":
			if raw.sortBy, ok = v.(string); !ok {
				return listQuery{}, invalidSyntax("sortBy must be a string, got %s", jsonType(v))
			}
		case "sortorder":
			if raw.sortOrder, ok = v.(string); !ok {
				return listQuery{}, invalidSyntax("sortOrder must be a string, got %s", jsonType(v))
			}
		case "startindex", "count":
			var n string
			switch x := v.(type) {
			case json.Number:
				n = x.String()
			case string: // as in a query string; parseList checks it is an integer
				n = x
			default:
				return listQuery{}, invalidSyntax("%s must be an integer, got %s", k, jsonType(v))
			}
			if lk == "count" {
				raw.count = n
			} else {
				raw.startIndex = n
			}
		case "cursor":
			c, ok := v.(string)
			if !ok {
				return listQuery{}, invalidValue("cursor must be a string (\"\" for the first page)")
			}
			raw.cursor = &c
		case "attributes", "excludedattributes":
			l, ok := stringList(v)
			if !ok {
				return listQuery{}, invalidSyntax("%s must be a list of attribute names, got %s", k, jsonType(v))
			}
			if lk == "attributes" {
				raw.attributes = l
			} else {
				raw.excluded = l
			}
		default:
			return listQuery{}, apperr.Invalid("unknown search request attribute %q", k).WithCode("invalidSyntax")
		}
	}
	return parseList(raw)
}

// stringList reads "attributes" or "excludedAttributes" of a SearchRequest: a list of
// strings (RFC 7644 §3.4.3), or one comma-separated string as in a query.
func stringList(v any) ([]string, bool) {
	var out []string
	switch l := v.(type) {
	case []any:
		for _, s := range l {
			str, ok := s.(string)
			if !ok {
				return nil, false
			}
			out = append(out, schema.SplitAttrList(str)...)
		}
	case string:
		out = schema.SplitAttrList(l)
	default:
		return nil, false
	}
	return out, true
}

// jsonType names the JSON type of a decoded value, for messages.
func jsonType(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return "null"
}

func parseList(raw rawList) (listQuery, error) {
	q := listQuery{startIndex: 1, count: DefaultCount, cursor: raw.cursor, attributes: raw.attributes, excluded: raw.excluded}
	if raw.cursor != nil && raw.startIndex != "" {
		return q, invalidValue("send either cursor or startIndex, not both")
	}
	if raw.filter != "" {
		f, err := filter.Parse(raw.filter)
		if err != nil {
			return q, apperr.Invalid("%s", err.Error()).WithCode("invalidFilter")
		}
		q.filter = f
	}
	if raw.sortBy != "" {
		p, err := schema.ParsePath(raw.sortBy)
		if err != nil {
			return q, invalidValue("sortBy %q is not an attribute path", raw.sortBy)
		}
		q.sortBy = &filter.AttrPath{URN: p.URN, Name: p.Name, Sub: p.Sub}
	}
	switch strings.ToLower(raw.sortOrder) {
	case "", "ascending":
	case "descending":
		q.descending = true
	default:
		return q, invalidValue("sortOrder must be ascending or descending")
	}
	// Non-integers are refused; out-of-range values are corrected as RFC 7644 §3.4.2.4
	// says: startIndex < 1 means 1, a negative count means 0, and count is clamped to
	// the advertised maximum.
	if raw.startIndex != "" {
		n, err := strconv.Atoi(raw.startIndex)
		if err != nil {
			return q, invalidValue("startIndex must be an integer, got %q", raw.startIndex)
		}
		q.startIndex = max(n, 1)
	}
	if raw.count != "" {
		n, err := strconv.Atoi(raw.count)
		if err != nil {
			return q, invalidValue("count must be an integer, got %q", raw.count)
		}
		q.count = min(max(n, 0), MaxResults)
	}
	return q, nil
}

// writeList writes a ListResponse. Paged by cursor it carries nextCursor (absent on
// the last page) instead of startIndex; previousCursor is not offered (RFC 9865 allows
// that).
func writeList(w http.ResponseWriter, q listQuery, total int, next string, resources []map[string]any) {
	if resources == nil {
		resources = []map[string]any{}
	}
	body := map[string]any{
		"schemas":      []string{listResponseURN},
		"totalResults": total,
		"itemsPerPage": len(resources),
		"Resources":    resources,
	}
	if q.cursor == nil {
		body["startIndex"] = q.startIndex
	} else if next != "" {
		body["nextCursor"] = next
	}
	writeJSON(w, http.StatusOK, body)
}

// keyset returns the position a cursor-paged request starts after (nil when paging by
// startIndex) and the binding its next cursor carries.
func keyset(tenantID, resourceType string, q listQuery) (*filtersql.Position, string, error) {
	if q.cursor == nil {
		return nil, "", nil
	}
	bind := cursorBinding(tenantID, resourceType, q)
	p, err := decodeCursor(*q.cursor, bind)
	return p, bind, err
}

// nextCursor is the cursor of the page after one that ended at p ("" when none follows).
func nextCursor(p *filtersql.Position, bind string) string {
	if p == nil {
		return ""
	}
	return encodeCursor(p, bind)
}

// projection compiles the attributes/excludedAttributes of a single-resource request.
func (h *Handler) projection(r *http.Request, reg *schema.Registry, resourceType string) (*schema.Projection, error) {
	q := r.URL.Query()
	p, err := reg.Projection(resourceType, schema.SplitAttrList(q.Get("attributes")), schema.SplitAttrList(q.Get("excludedAttributes")))
	if err != nil {
		return nil, invalidValue("%s", err.Error())
	}
	return p, nil
}

// patchOps reads a PATCH body.
func (h *Handler) patchOps(r *http.Request) ([]patch.Operation, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.Contains(ct, "json") {
		return nil, apperr.Invalid("Content-Type %q is not supported: send application/scim+json or application/json", ct).WithCode("invalidSyntax")
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	ops, err := patch.ParseRequest(body, MaxPatchOperations)
	if err != nil {
		return nil, patchError(err)
	}
	return ops, nil
}

// patchError maps the PATCH engine's errors to 400 with their scimType.
func patchError(err error) error {
	var pe *patch.Error
	if errors.As(err, &pe) {
		return apperr.Invalid("%s", pe.Detail).WithCode(pe.ScimType)
	}
	return err
}
