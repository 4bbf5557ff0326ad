package identity

import (
	"context"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/schema"
)

// A user's version (its SCIM meta.version) changes whenever its resource as served
// changes, including through what other modules own: the readOnly "groups" attribute
// lists its memberships, which the access module writes. These functions let such a
// change move the version in its own transaction.

// TouchUsers gives the tenant's users whose ids are in ids (a bun.In list or a
// subquery of user ids) a new version and lastModified, in one statement. Ids that are
// not users of the tenant are skipped.
func (s *Service) TouchUsers(ctx context.Context, tenantID string, ids schema.QueryAppender) error {
	return touchUsers(ctx, s.db, s.clock.Now(), tenantID, ids)
}

func touchUsers(ctx context.Context, idb bun.IDB, now time.Time, tenantID string, ids schema.QueryAppender) error {
	_, err := idb.NewUpdate().Model((*User)(nil)).
		Set("version = version + 1").Set("updated_at = ?", now).
		Where("tenant_id = ? AND id IN (?)", tenantID, ids).Exec(ctx)
	return err
}
