// Package graph is the GraphQL transport: gqlgen's generated executor plus thin
// resolvers that call the modules. Rules (who may do what, what the IdP owns) live in
// the modules; resolvers translate. Regenerate with `go generate ./...`.
package graph

//go:generate sh -c "cd .. && go tool gqlgen generate --config gqlgen.yml"

import (
	"log/slog"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/modules/access"
	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/identity"
	"github.com/gatehouse-dev/gatehouse/modules/platform/bus"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

// Resolver holds the module services the resolvers call.
type Resolver struct {
	Tenancy  *tenancy.Service
	Identity *identity.Service
	Sessions *identity.Sessions
	Access   *access.Service
	// PublicURL is the server's public base URL (SP values, the SCIM base URL).
	PublicURL string
	// SP renders SP metadata documents.
	SP SPMetadata
	// Audit reads the audit log from DB; Bus carries live events; Live closes
	// websocket connections whose session ends.
	Audit *audit.Log
	DB    *bun.DB
	Bus   bus.Bus
	Live  *Live
	Log   *slog.Logger
}
