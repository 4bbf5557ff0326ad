package graph

import (
	"encoding/base64"
	"strings"
	"unicode/utf8"

	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
)

// Global ids are opaque to clients: base64url("Kind:rawID"). A malformed id, or one of
// the wrong kind, is simply not found — exactly like an id of another tenant.
const (
	kindUser   = "User"
	kindGroup  = "Group"
	kindSpace  = "Space"
	kindTenant = "Tenant"
)

func globalID(kind, raw string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + ":" + raw))
}

// parseGlobalID returns the kind and raw id of a global id. A raw id that is not text
// a database can hold (a NUL, or not UTF-8) is no id of this API.
func parseGlobalID(id string) (kind, raw string, ok bool) {
	b, err := base64.RawURLEncoding.DecodeString(id)
	if err != nil {
		return "", "", false
	}
	kind, raw, ok = strings.Cut(string(b), ":")
	return kind, raw, ok && validRaw(raw)
}

// validRaw reports whether a raw id decoded from a global id or cursor can be one of
// ours: not empty, UTF-8, without a NUL (which no text column can store).
func validRaw(raw string) bool {
	return raw != "" && utf8.ValidString(raw) && !strings.ContainsRune(raw, 0)
}

// rawID returns the raw id of a global id of the wanted kind.
func rawID(kind, id string) (string, error) {
	k, raw, ok := parseGlobalID(id)
	if !ok || k != kind {
		return "", apperr.NotFound("no %s with id %q", strings.ToLower(kind), id)
	}
	return raw, nil
}

// Cursors are opaque too: base64url of the last raw id of a page (keyset paging).
func cursorOf(raw string) string { return base64.RawURLEncoding.EncodeToString([]byte("c:" + raw)) }

func afterCursor(after *string) (string, error) {
	if after == nil || *after == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(*after)
	if err != nil || !strings.HasPrefix(string(b), "c:") || !validRaw(string(b[2:])) {
		return "", apperr.Invalid("the cursor %q is not valid: pass pageInfo.endCursor of the previous page", *after)
	}
	return string(b[2:]), nil
}

// Page sizes of connections (`first`).
const (
	defaultPageSize = 50
	maxPageSize     = 100
)

// pageSize reads `first`: 1..maxPageSize, defaultPageSize when omitted.
func pageSize(first *int) (int, error) {
	if first == nil {
		return defaultPageSize, nil
	}
	if *first < 1 || *first > maxPageSize {
		return 0, apperr.Invalid("first must be between 1 and %d, got %d", maxPageSize, *first)
	}
	return *first, nil
}

// pageArgs reads a connection's first and after.
func pageArgs(first *int, after *string) (int, string, error) {
	n, err := pageSize(first)
	if err != nil {
		return 0, "", err
	}
	cur, err := afterCursor(after)
	return n, cur, err
}
