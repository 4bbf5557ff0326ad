package graph

import (
	"context"
	"net/http"
	"sync"

	"github.com/gatehouse-dev/gatehouse/modules/access"
	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/identity"
	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

// Authenticator resolves a request's credential. ok is false when there is none (the
// request is anonymous); an error means a credential was there and is not acceptable.
type Authenticator interface {
	Principal(r *http.Request) (p identity.Principal, ok bool, err error)
}

// SPMetadata renders a tenant's SAML SP metadata (the sso transport does).
type SPMetadata interface {
	SPMetadata(ctx context.Context, t tenancy.Tenant) ([]byte, error)
}

// request is what one GraphQL request carries: who is asking (resolved lazily, so
// anonymous queries such as organizationForEmail cost nothing) and its dataloaders.
type request struct {
	principal *identity.Principal
	loaders   *loaders
	// socket is the websocket of a subscription connection (nil for POST).
	socket *liveSocket

	once   sync.Once
	viewer access.Viewer
	err    error

	tenantOnce sync.Once
	tenant     tenancy.Tenant
	tenantErr  error
}

type requestKey struct{}

func requestFrom(ctx context.Context) *request {
	r, _ := ctx.Value(requestKey{}).(*request)
	if r == nil {
		return &request{}
	}
	return r
}

// viewer returns who the request acts for, with their permissions, or an
// UNAUTHENTICATED error for an anonymous request.
func (r *Resolver) viewer(ctx context.Context) (access.Viewer, error) {
	req := requestFrom(ctx)
	if req.principal == nil {
		return access.Viewer{}, apperr.Unauthenticated("sign in first: this needs a session (cookie or Bearer token)")
	}
	req.once.Do(func() { req.viewer, req.err = r.Access.Viewer(ctx, *req.principal) })
	return req.viewer, req.err
}

// asViewer names the viewer (with their userName) as the audit actor of what ctx does.
func asViewer(ctx context.Context, v access.Viewer) context.Context {
	return audit.WithActor(ctx, audit.Actor{Type: audit.ActorUser, ID: v.UserID, Name: v.UserName})
}
