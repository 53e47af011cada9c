// Package graph is Ferry's GraphQL API: the schema under graph/schema, the
// resolvers, the error presenter, limits and the audit trail of mutations.
// Resolvers translate between GraphQL and ent; tenant isolation happens below
// them, in ent's interceptors and hooks.
package graph

import (
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/internal/secrets"
)

// Resolver holds the dependencies of every resolver.
type Resolver struct {
	Client  *ent.Client
	Secrets *secrets.Box
}
