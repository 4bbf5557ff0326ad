package identity

import (
	"context"

	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
	"github.com/gatehouse-dev/gatehouse/modules/platform/db"
)

// FindForSignIn returns the tenant's user that an IdP assertion names: first by userName
// equal to the NameID, then by an email address equal to the NameID or the asserted
// email. An email shared by several users matches none of them (an assertion must name
// one person). The lookup is always inside tenantID, so one tenant's IdP can never sign
// in another tenant's user.
func (s *Service) FindForSignIn(ctx context.Context, tenantID, nameID, email string) (User, error) {
	var names []string
	for _, n := range []string{nameID, email} {
		if n != "" {
			names = append(names, Fold(n))
		}
	}
	for _, n := range names {
		var u User
		err := s.db.NewSelect().Model(&u).Where("tenant_id = ? AND user_name_key = ?", tenantID, n).Limit(1).Scan(ctx)
		if err == nil {
			return s.GetUser(ctx, tenantID, u.ID)
		}
		if !db.IsNoRows(err) {
			return User{}, err
		}
	}
	for _, n := range names {
		var vs []Value
		err := s.db.NewSelect().Model(&vs).Column("user_id").
			Where("tenant_id = ? AND attr = ? AND value_key = ?", tenantID, AttrEmails, n).Limit(2).Scan(ctx)
		if err != nil {
			return User{}, err
		}
		switch {
		case len(vs) == 1:
			return s.GetUser(ctx, tenantID, vs[0].UserID)
		case len(vs) > 1:
			return User{}, apperr.Conflict("several users of this tenant have the email %q", n)
		}
	}
	return User{}, apperr.NotFound("no user of this tenant matches the sign-in")
}
