package scim

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
	"github.com/gatehouse-dev/gatehouse/modules/platform/filtersql"
)

// Cursor paging (RFC 9865). A cursor is base64url JSON of the last row's position in the
// listing's order (its sort value and id), the totalResults counted for the first page
// (reported again by the later pages, which do not count), and a digest binding it to
// the tenant, the resource type, the filter and the sort. It holds no state on the server, so it never
// expires (no cursorTimeout is advertised), and the next page is a keyset seek, never an OFFSET. A
// cursor from another tenant or listing, or one altered, is refused with invalidCursor;
// forging one that fits is possible but only ever seeks within the caller's own tenant.

type cursorBody struct {
	Value *string `json:"v,omitempty"`
	ID    string  `json:"i"`
	Total int     `json:"t"` // totalResults as counted for the first page
	Bind  string  `json:"b"`
}

// cursorBinding is the digest a cursor carries: what it may be used with.
func cursorBinding(tenantID, resourceType string, q listQuery) string {
	sortBy := ""
	if q.sortBy != nil {
		sortBy = strings.ToLower(q.sortBy.String())
	}
	sum := sha256.Sum256([]byte(fmt.Sprintf("gatehouse-scim-cursor-v1\x00%s\x00%s\x00%s\x00%t\x00%#v\x00",
		tenantID, resourceType, sortBy, q.descending, q.filter)))
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

func encodeCursor(p *filtersql.Position, bind string) string {
	b, _ := json.Marshal(cursorBody{Value: p.Value, ID: p.ID, Total: p.Total, Bind: bind})
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor returns the position a cursor names; "" is the first page.
func decodeCursor(cursor, bind string) (*filtersql.Position, error) {
	if cursor == "" {
		return &filtersql.Position{}, nil
	}
	bad := apperr.Invalid("the cursor is not one this server issued for this listing (same filter, sortBy and sortOrder); start again with cursor=\"\"").WithCode(filtersql.InvalidCursor)
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(cursor, "="))
	if err != nil || len(raw) > 4096 {
		return nil, bad
	}
	var c cursorBody
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil || c.ID == "" || c.Total < 0 || c.Bind != bind {
		return nil, bad
	}
	if _, err := dec.Token(); err != io.EOF { // anything after the object: altered
		return nil, bad
	}
	if strings.IndexByte(c.ID, 0) >= 0 || c.Value != nil && strings.IndexByte(*c.Value, 0) >= 0 {
		return nil, bad // altered: no stored id or value holds U+0000
	}
	return &filtersql.Position{Value: c.Value, ID: c.ID, Total: c.Total}, nil
}
