// Package reqmeta carries facts about the current request (id, client address, user
// agent) through a context, so that logs and audit events can name them without the
// modules knowing about HTTP.
package reqmeta

import "context"

// Meta describes the request being served.
type Meta struct {
	RequestID string
	RemoteIP  string
	UserAgent string
}

type ctxKey struct{}

// With returns ctx carrying m.
func With(ctx context.Context, m Meta) context.Context { return context.WithValue(ctx, ctxKey{}, m) }

// From returns the Meta in ctx, or the zero Meta.
func From(ctx context.Context) Meta {
	m, _ := ctx.Value(ctxKey{}).(Meta)
	return m
}
