package graph

import (
	"context"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vikstrous/dataloadgen"

	"github.com/gatehouse-dev/gatehouse/modules/access"
	"github.com/gatehouse-dev/gatehouse/modules/identity"
)

// loaders batch what list fields need, per request and per tenant, so a page of 100
// users with their groups, roles and spaces costs a fixed number of queries.
type loaders struct {
	users         *dataloadgen.Loader[string, identity.User]
	groups        *dataloadgen.Loader[string, access.Group]
	spaces        *dataloadgen.Loader[string, access.Space]
	groupsOfUser  *dataloadgen.Loader[string, []access.GroupRef]
	rolesOfUser   *dataloadgen.Loader[string, []access.RoleAssignment]
	spacesOfUser  *dataloadgen.Loader[string, []access.EffectiveAccess]
	grantsOfGroup *dataloadgen.Loader[string, []access.Grant]
	grantsOfSpace *dataloadgen.Loader[string, []access.Grant]
}

// batchWait is how long a loader collects keys before it queries: every field that
// goes through a loader waits this long. Connections prime the first level of per-user
// loads (primeUsers), so it only has to gather the loads that fan out from one finished
// batch, which start within microseconds. Single objects (the viewer's user, the
// tenant) are read directly, without this wait.
const batchWait = 5 * time.Millisecond

// byKey adapts a module's batch function (map by id) to a loader fetch that returns
// the zero value for absent keys; the resolvers decide what absent means.
func byKey[V any](fetch func(ctx context.Context, keys []string) (map[string]V, error)) func(ctx context.Context, keys []string) ([]V, []error) {
	return func(ctx context.Context, keys []string) ([]V, []error) {
		m, err := fetch(ctx, keys)
		out := make([]V, len(keys))
		errs := make([]error, len(keys))
		for i, k := range keys {
			out[i], errs[i] = m[k], err
		}
		return out, errs
	}
}

func (r *Resolver) newLoaders(tenantID string) *loaders {
	opt := dataloadgen.WithWait(batchWait)
	return &loaders{
		users: dataloadgen.NewLoader(byKey(func(ctx context.Context, ids []string) (map[string]identity.User, error) {
			return r.Identity.UsersByIDs(ctx, tenantID, ids)
		}), opt),
		groups: dataloadgen.NewLoader(byKey(func(ctx context.Context, ids []string) (map[string]access.Group, error) {
			return r.Access.GroupsByIDs(ctx, tenantID, ids)
		}), opt),
		spaces: dataloadgen.NewLoader(byKey(func(ctx context.Context, ids []string) (map[string]access.Space, error) {
			return r.Access.SpacesByIDs(ctx, tenantID, ids)
		}), opt),
		groupsOfUser: dataloadgen.NewLoader(byKey(func(ctx context.Context, ids []string) (map[string][]access.GroupRef, error) {
			return r.Access.GroupsOfUsers(ctx, tenantID, ids)
		}), opt),
		rolesOfUser: dataloadgen.NewLoader(byKey(func(ctx context.Context, ids []string) (map[string][]access.RoleAssignment, error) {
			return r.Access.UserRoles(ctx, tenantID, ids)
		}), opt),
		spacesOfUser: dataloadgen.NewLoader(byKey(func(ctx context.Context, ids []string) (map[string][]access.EffectiveAccess, error) {
			return r.Access.EffectiveSpaces(ctx, tenantID, ids)
		}), opt),
		grantsOfGroup: dataloadgen.NewLoader(byKey(func(ctx context.Context, ids []string) (map[string][]access.Grant, error) {
			return r.Access.GrantsOfGroups(ctx, tenantID, ids)
		}), opt),
		grantsOfSpace: dataloadgen.NewLoader(byKey(func(ctx context.Context, ids []string) (map[string][]access.Grant, error) {
			return r.Access.GrantsOfSpaces(ctx, tenantID, ids)
		}), opt),
	}
}

// load returns the request's loaders; a request without a principal has none, and
// every field that needs them requires a viewer first.
func load(ctx context.Context) *loaders { return requestFrom(ctx).loaders }

// primeUsers starts, in one batch each, the per-user loads that the selection under a
// user connection asks for (groups, roles, effectiveSpaces), so that a page of users
// costs one query per field whatever its size and however the resolvers interleave.
func primeUsers(ctx context.Context, userIDs []string) {
	l := load(ctx)
	if l == nil || len(userIDs) == 0 {
		return
	}
	fields := selectedNodeFields(ctx, "UserConnection", "UserEdge", "User")
	if fields["groups"] {
		l.groupsOfUser.LoadAllThunk(ctx, userIDs)
	}
	if fields["roles"] {
		l.rolesOfUser.LoadAllThunk(ctx, userIDs)
	}
	if fields["effectiveSpaces"] {
		l.spacesOfUser.LoadAllThunk(ctx, userIDs)
	}
}

// selectedNodeFields returns the field names selected on the nodes of the connection
// being resolved (through `nodes` or `edges { node }`, fragments included).
func selectedNodeFields(ctx context.Context, connType, edgeType, nodeType string) map[string]bool {
	out := map[string]bool{}
	fc, oc := graphql.GetFieldContext(ctx), graphql.GetOperationContext(ctx)
	if fc == nil || oc == nil {
		return out
	}
	collect := func(sel ast.SelectionSet) {
		for _, f := range graphql.CollectFields(oc, sel, []string{nodeType, "Node", "Principal"}) {
			out[f.Name] = true
		}
	}
	for _, f := range graphql.CollectFields(oc, fc.Field.Selections, []string{connType}) {
		switch f.Name {
		case "nodes":
			collect(f.Selections)
		case "edges":
			for _, e := range graphql.CollectFields(oc, f.Selections, []string{edgeType}) {
				if e.Name == "node" {
					collect(e.Selections)
				}
			}
		}
	}
	return out
}
