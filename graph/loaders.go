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

// loaders batch what list fields need, per request, so a page of 100 users with their
// groups, roles and spaces costs a fixed number of queries. Every batch is read through
// the access module as the request's viewer, which decides what they may see.
type loaders struct {
	users         *dataloadgen.Loader[string, identity.User]
	groups        *dataloadgen.Loader[string, access.Group]
	spaces        *dataloadgen.Loader[string, access.Space]
	groupsOfUser  *dataloadgen.Loader[string, []access.GroupRef]
	rolesOfUser   *dataloadgen.Loader[string, []access.RoleAssignment]
	spacesOfUser  *dataloadgen.Loader[string, []access.EffectiveAccess]
	grantsOfGroup *dataloadgen.Loader[string, []access.Grant]
	grantsOfSpace *dataloadgen.Loader[string, []access.Grant]
	members       *dataloadgen.Loader[memberKey, access.MemberPage]
}

// memberKey asks for one page of a group's members.
type memberKey struct {
	group, after string
	first        int
}

// batchWait is how long a loader collects keys before it queries: every field that
// goes through a loader waits this long. Connections prime the first level of per-user
// loads (primeUsers), so it only has to gather the loads that fan out from one finished
// batch, which start within microseconds. Single objects (the viewer's user, the
// tenant) are read directly, without this wait.
var batchWait = 5 * time.Millisecond

// byKey adapts a module's batch function, called as the request's viewer, to a loader
// fetch that returns the zero value for absent keys; the resolvers decide what absent
// means.
func byKey[V any](r *Resolver, fetch func(ctx context.Context, v access.Viewer, keys []string) (map[string]V, error)) func(ctx context.Context, keys []string) ([]V, []error) {
	return func(ctx context.Context, keys []string) ([]V, []error) {
		v, err := r.viewer(ctx)
		var m map[string]V
		if err == nil {
			m, err = fetch(ctx, v, keys)
		}
		out := make([]V, len(keys))
		errs := make([]error, len(keys))
		for i, k := range keys {
			out[i], errs[i] = m[k], err
		}
		return out, errs
	}
}

// newLoaders builds a request's loaders; each batch reads as the request's viewer.
func (r *Resolver) newLoaders() *loaders {
	opt := dataloadgen.WithWait(batchWait)
	return &loaders{
		users:         dataloadgen.NewLoader(byKey(r, r.Access.UsersByIDs), opt),
		groups:        dataloadgen.NewLoader(byKey(r, r.Access.GroupsByIDs), opt),
		spaces:        dataloadgen.NewLoader(byKey(r, r.Access.SpacesByIDs), opt),
		groupsOfUser:  dataloadgen.NewLoader(byKey(r, r.Access.GroupsOfUsersAs), opt),
		rolesOfUser:   dataloadgen.NewLoader(byKey(r, r.Access.RolesOfUsers), opt),
		spacesOfUser:  dataloadgen.NewLoader(byKey(r, r.Access.EffectiveSpaces), opt),
		grantsOfGroup: dataloadgen.NewLoader(byKey(r, r.Access.GrantsOfGroups), opt),
		grantsOfSpace: dataloadgen.NewLoader(byKey(r, r.Access.GrantsOfSpaces), opt),
		members:       dataloadgen.NewLoader(r.memberPages, opt),
	}
}

// memberPages loads the member pages of many groups: one statement per distinct page
// (after, first), which is one for a list of groups asking for their first page.
func (r *Resolver) memberPages(ctx context.Context, keys []memberKey) ([]access.MemberPage, []error) {
	out := make([]access.MemberPage, len(keys))
	errs := make([]error, len(keys))
	v, err := r.viewer(ctx)
	byPage := map[memberKey][]int{} // (after, first) -> indexes of keys
	for i, k := range keys {
		p := memberKey{after: k.after, first: k.first}
		byPage[p] = append(byPage[p], i)
	}
	for p, idx := range byPage {
		groups := make([]string, len(idx))
		for j, i := range idx {
			groups[j] = keys[i].group
		}
		pages, perr := map[string]access.MemberPage(nil), err
		if err == nil {
			pages, perr = r.Access.MemberPages(ctx, v, groups, p.after, p.first)
		}
		for _, i := range idx {
			out[i], errs[i] = pages[keys[i].group], perr
		}
	}
	return out, errs
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
