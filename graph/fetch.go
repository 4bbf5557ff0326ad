package graph

import (
	"context"

	"github.com/gatehouse-dev/gatehouse/graph/model"
	"github.com/gatehouse-dev/gatehouse/modules/access"
	"github.com/gatehouse-dev/gatehouse/modules/identity"
	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

// Loading one object through the request's loaders. A missing object is nil (GraphQL
// null) for nullable fields; callers needing it non-null turn nil into NOT_FOUND.

func (r *Resolver) mode(ctx context.Context) (tenancy.ProvisioningMode, error) {
	v, err := r.viewer(ctx)
	if err != nil {
		return "", err
	}
	t, err := r.tenantOf(ctx, v)
	return t.ProvisioningMode, err
}

func (r *Resolver) userByRawID(ctx context.Context, raw string) (*model.User, error) {
	mode, err := r.mode(ctx)
	if err != nil {
		return nil, err
	}
	u, err := load(ctx).users.Load(ctx, raw)
	if err != nil || u.ID == "" {
		return nil, err
	}
	return toUser(u, mode), nil
}

func (r *Resolver) groupByRawID(ctx context.Context, raw string) (*model.Group, error) {
	if raw == "" {
		return nil, nil
	}
	mode, err := r.mode(ctx)
	if err != nil {
		return nil, err
	}
	g, err := load(ctx).groups.Load(ctx, raw)
	if err != nil || g.ID == "" {
		return nil, err
	}
	return toGroup(g, mode), nil
}

func (r *Resolver) spaceByRawID(ctx context.Context, raw string) (*model.Space, error) {
	if _, err := r.viewer(ctx); err != nil {
		return nil, err
	}
	s, err := load(ctx).spaces.Load(ctx, raw)
	if err != nil || s.ID == "" {
		return nil, err
	}
	return toSpace(s), nil
}

// notNil turns a missing object into NOT_FOUND, for non-null fields that point at
// something deleted while the request ran.
func notNil[T any](v *T, err error) (*T, error) {
	if err == nil && v == nil {
		return nil, apperr.NotFound("it no longer exists")
	}
	return v, err
}

func userConnection(ctx context.Context, users []identity.User, more bool, mode tenancy.ProvisioningMode) *model.UserConnection {
	ids := make([]string, len(users))
	for i, u := range users {
		ids[i] = u.ID
	}
	primeUsers(ctx, ids)
	c := &model.UserConnection{Edges: []*model.UserEdge{}, Nodes: []*model.User{}, PageInfo: &model.PageInfo{HasNextPage: more}}
	for _, u := range users {
		m := toUser(u, mode)
		cur := cursorOf(u.ID)
		c.Edges = append(c.Edges, &model.UserEdge{Cursor: cur, Node: m})
		c.Nodes = append(c.Nodes, m)
		c.PageInfo.EndCursor = &cur
	}
	return c
}

func groupConnection(gs []access.Group, more bool, mode tenancy.ProvisioningMode) *model.GroupConnection {
	c := &model.GroupConnection{Edges: []*model.GroupEdge{}, Nodes: []*model.Group{}, PageInfo: &model.PageInfo{HasNextPage: more}}
	for _, g := range gs {
		m := toGroup(g, mode)
		cur := cursorOf(g.ID)
		c.Edges = append(c.Edges, &model.GroupEdge{Cursor: cur, Node: m})
		c.Nodes = append(c.Nodes, m)
		c.PageInfo.EndCursor = &cur
	}
	return c
}

func spaceConnection(ss []access.Space, more bool) *model.SpaceConnection {
	c := &model.SpaceConnection{Edges: []*model.SpaceEdge{}, Nodes: []*model.Space{}, PageInfo: &model.PageInfo{HasNextPage: more}}
	for _, s := range ss {
		m := toSpace(s)
		cur := cursorOf(s.ID)
		c.Edges = append(c.Edges, &model.SpaceEdge{Cursor: cur, Node: m})
		c.Nodes = append(c.Nodes, m)
		c.PageInfo.EndCursor = &cur
	}
	return c
}

// principalOf resolves a global id naming a user or a group to its type and raw id.
func principalOf(id string) (typ, raw string, err error) {
	kind, raw, ok := parseGlobalID(id)
	switch {
	case ok && kind == kindUser:
		return "user", raw, nil
	case ok && kind == kindGroup:
		return "group", raw, nil
	}
	return "", "", apperr.NotFound("no user or group with id %q", id)
}

func rawIDs(kind string, ids []string) ([]string, error) {
	out := make([]string, len(ids))
	for i, id := range ids {
		raw, err := rawID(kind, id)
		if err != nil {
			return nil, err
		}
		out[i] = raw
	}
	return out, nil
}
