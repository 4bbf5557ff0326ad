// Package ids makes identifiers: ULIDs, which sort by creation time (good for B-tree
// locality and stable paging) and are safe to show in URLs.
package ids

import (
	"crypto/rand"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
)

// Within one process ids are strictly increasing, even for the same millisecond (or a
// test clock that stands still): the entropy of a repeated timestamp is incremented.
var (
	mu      sync.Mutex
	entropy = ulid.Monotonic(rand.Reader, 0)
	last    uint64
)

// New returns a new lower-case ULID, e.g. "01hv3k9q6x0d6y7m2e6a1b2c3d".
func New() string {
	return NewAt(time.Now())
}

// NewAt returns a new lower-case ULID for time t (never earlier than the last id made).
func NewAt(t time.Time) string {
	mu.Lock()
	defer mu.Unlock()
	ms := ulid.Timestamp(t)
	if ms < last {
		ms = last
	}
	last = ms
	return strings.ToLower(ulid.MustNew(ms, entropy).String())
}
