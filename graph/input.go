package graph

// Helpers that turn GraphQL inputs into module calls.

import (
	"context"
	"encoding/json"
	"time"

	"github.com/gatehouse-dev/gatehouse/graph/model"
	"github.com/gatehouse-dev/gatehouse/modules/identity"
)

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func set(dst *string, v *string) {
	if v != nil {
		*dst = *v
	}
}

func seconds(n *int) *time.Duration {
	if n == nil {
		return nil
	}
	d := time.Duration(*n) * time.Second
	return &d
}

// setPrimaryEmail makes e the user's primary email ("" removes the primary one).
func setPrimaryEmail(u *identity.User, e string) {
	var kept []identity.Value
	for _, v := range u.Values {
		if v.Attr == identity.AttrEmails && v.Primary {
			continue
		}
		kept = append(kept, v)
	}
	if e != "" {
		kept = append([]identity.Value{{Attr: identity.AttrEmails, Value: e, Type: "work", Primary: true}}, kept...)
	}
	u.Values = kept
}

func (r *mutationResolver) setActive(ctx context.Context, id string, active bool) (*model.User, error) {
	v, err := r.viewer(ctx)
	if err != nil {
		return nil, err
	}
	raw, err := rawID(kindUser, id)
	if err != nil {
		return nil, err
	}
	u, err := r.Access.SetUserActive(ctx, v, raw, active)
	if err != nil {
		return nil, err
	}
	mode, err := r.mode(ctx)
	return toUser(u, mode), err
}

// extensionDefinition turns the input into the RFC 7643 §7 schema resource the CLI reads
// from a file, so both go through one parser with one set of rules. The input's fields
// are named as RFC 7643 names them (omitted ones stay out and take its defaults); only
// the schema's id is urn here.
func extensionDefinition(in model.ScimExtensionInput) ([]byte, error) {
	return json.Marshal(struct {
		ID          string                               `json:"id"`
		Name        *string                              `json:"name,omitempty"`
		Description *string                              `json:"description,omitempty"`
		Attributes  []*model.ScimExtensionAttributeInput `json:"attributes"`
	}{in.Urn, in.Name, in.Description, in.Attributes})
}
