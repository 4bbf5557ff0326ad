// Package graph is the GraphQL transport: gqlgen's generated executor plus thin
// resolvers that call the modules. Regenerate with `go generate ./...`.
package graph

//go:generate sh -c "cd .. && go tool gqlgen generate --config gqlgen.yml"

import "github.com/gatehouse-dev/gatehouse/modules/tenancy"

// Resolver holds the module services the resolvers call.
type Resolver struct {
	Tenancy *tenancy.Service
}
