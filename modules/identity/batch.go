package identity

import (
	"context"
	"errors"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
	"github.com/gatehouse-dev/gatehouse/modules/platform/db"
	"github.com/gatehouse-dev/gatehouse/modules/platform/ids"
)

// ErrBatchRaced is CreateUsers' error when its writes met what its checks had not seen
// (a userName or unique value taken meanwhile by another request). Nothing was written;
// creating the users one by one gives each its own answer.
var ErrBatchRaced = errors.New("identity: a batched create met a concurrent change")

// Created is what CreateUsers did with one user: the user as stored, or why it was not
// created.
type Created struct {
	User User
	Err  error
}

// CreateUsers creates users as CreateUser creates each, with the same rules and audit
// events, but with one statement per table for all of them (users, multi-valued
// values, extension values, audit events) instead of several per user: for SCIM Bulk,
// where a thousand creates in one request must cost far less than a thousand requests.
//
// The answer has one entry per user handled, in order; a user that fails does not stop
// the others, unless maxFailures > 0: then the maxFailures-th failure is the last user
// handled and those after it are left alone (SCIM Bulk's failOnErrors). The conditions
// CreateUser learns from its statements are checked first, in order: a userName taken in
// the tenant or by an earlier user of us, then the extension values, then values of
// unique extension attributes likewise. If the writes still meet a conflict (another
// request took a name in between), nothing is written and the error is ErrBatchRaced.
func (s *Service) CreateUsers(ctx context.Context, tenantID string, us []User, maxFailures int) ([]Created, error) {
	now := s.clock.Now()
	var out []Created
	err := db.RunInTx(ctx, s.db, func(ctx context.Context, tx bun.Tx) error {
		out = make([]Created, len(us))
		var exts []UserExtension
		var valid []int
		extErr := map[int]error{}
		for i := range us {
			u := us[i]
			u.ID, u.TenantID, u.Version, u.CreatedAt, u.UpdatedAt = ids.NewAt(now), tenantID, 1, now, now
			if out[i].Err = u.normalize(); out[i].Err != nil {
				continue
			}
			if len(u.Ext) > 0 {
				if exts == nil {
					var err error
					if exts, err = userExtensions(ctx, tx, tenantID); err != nil {
						return err
					}
				}
				// Reported after a taken userName, as CreateUser finds them in that order.
				if err := u.normalizeExt(exts); err != nil {
					extErr[i] = err
					u.Ext = nil
				}
			}
			out[i].User = u
			valid = append(valid, i)
		}
		taken, err := takenKeys(ctx, tx, tenantID, out, valid)
		if err != nil {
			return err
		}
		// In order, as one by one: a user whose userName (else a unique value) is held
		// by the tenant or by an earlier user of the batch fails; the others claim theirs.
		var ok []int
		failures := 0
		for i := range out {
			c := &out[i]
			if c.Err == nil {
				u := &c.User
				if taken["name:"+u.UserNameKey] {
					c.Err = conflictUserName(u.UserName)
				} else if c.Err = extErr[i]; c.Err == nil {
					c.Err = claim(u, taken)
				}
			}
			if c.Err == nil {
				ok = append(ok, i)
				continue
			}
			c.User = User{}
			if failures++; failures == maxFailures {
				out = out[:i+1]
				break
			}
		}
		if len(ok) == 0 {
			return nil
		}
		return s.insertUsers(ctx, tx, tenantID, out, ok)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// uniqueKey names a value of a unique extension attribute.
func uniqueKey(urn, attr, key string) string { return urn + ":" + attr + "\x00" + key }

// takenKeys returns which userName keys and unique extension values of the users
// out[valid] the tenant's users hold already ("name:" + key, or uniqueKey).
func takenKeys(ctx context.Context, tx bun.Tx, tenantID string, out []Created, valid []int) (map[string]bool, error) {
	taken := map[string]bool{}
	var names, uniques []string
	for _, i := range valid {
		names = append(names, out[i].User.UserNameKey)
		for _, v := range out[i].User.Ext {
			if v.UniqueKey != "" {
				uniques = append(uniques, v.UniqueKey)
			}
		}
	}
	if len(names) > 0 {
		var held []string
		if err := tx.NewSelect().Model((*User)(nil)).Column("user_name_key").
			Where("tenant_id = ? AND user_name_key IN (?)", tenantID, bun.In(names)).Scan(ctx, &held); err != nil {
			return nil, err
		}
		for _, k := range held {
			taken["name:"+k] = true
		}
	}
	if len(uniques) > 0 {
		var held []ExtValue
		if err := tx.NewSelect().Model(&held).Column("urn", "attr", "unique_key").
			Where("tenant_id = ? AND unique_key IN (?)", tenantID, bun.In(uniques)).Scan(ctx); err != nil {
			return nil, err
		}
		for _, h := range held {
			taken[uniqueKey(h.URN, h.Attr, h.UniqueKey)] = true
		}
	}
	return taken, nil
}

// claim refuses u if a value of a unique extension attribute is taken (or in u twice),
// else marks them and u's userName taken.
func claim(u *User, taken map[string]bool) error {
	mine := map[string]bool{}
	for _, v := range u.Ext {
		if v.UniqueKey == "" {
			continue
		}
		k := uniqueKey(v.URN, v.Attr, v.UniqueKey)
		if mine[k] {
			return apperr.Invalid("attribute %q has the value %q twice", v.URN+":"+v.Attr, v.Text).WithCode("invalidValue")
		}
		if taken[k] {
			return conflictExt(v)
		}
		mine[k] = true
	}
	taken["name:"+u.UserNameKey] = true
	for k := range mine {
		taken[k] = true
	}
	return nil
}

// insertUsers writes the users out[ok], their values and their audit events, one
// statement per table.
func (s *Service) insertUsers(ctx context.Context, tx bun.Tx, tenantID string, out []Created, ok []int) error {
	users := make([]*User, len(ok))
	var values []Value
	var ext []ExtValue
	events := make([]audit.Event, len(ok))
	for n, i := range ok {
		u := &out[i].User
		users[n] = u
		values = append(values, u.Values...)
		ext = append(ext, u.Ext...)
		events[n] = audit.Event{TenantID: tenantID, Action: "user.created", Target: userTarget(u), Changes: diff(&User{}, u)}
	}
	// A conflict here is one the checks could not see: another request's, in between.
	var inserted []string
	if err := tx.NewInsert().Model(&users).On("CONFLICT DO NOTHING").Returning("id").Scan(ctx, &inserted); err != nil && !db.IsNoRows(err) {
		return err
	}
	if len(inserted) != len(users) {
		return ErrBatchRaced
	}
	if err := insertValues(ctx, tx, values); err != nil {
		return err
	}
	if len(ext) > 0 {
		if _, err := tx.NewInsert().Model(&ext).Exec(ctx); err != nil {
			if db.IsUniqueViolation(err) {
				return ErrBatchRaced
			}
			return err
		}
	}
	return s.audit.RecordAll(ctx, tx, events)
}
