// Package graph is Ferry's GraphQL API: the schema under graph/schema, the
// resolvers, the error presenter, limits and the audit trail of mutations.
// Resolvers translate between GraphQL and ent; tenant isolation happens below
// them, in ent's interceptors and hooks.
package graph

import (
	"log/slog"
	"time"

	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/internal/secrets"
	"github.com/ferry-migrate/ferry/jobs"
)

// Resolver holds the dependencies of every resolver.
type Resolver struct {
	Client  *ent.Client
	Secrets *secrets.Box
	// Key is the HMAC key registration tokens are signed with.
	Key []byte
	// Queue enqueues background tasks (plans, assessments, migrations).
	Queue *jobs.Queue
	// PublicURL is the URL agents reach the control plane at, for install
	// commands; empty means "take it from the request".
	PublicURL string
	// DataDir is the server's data directory (cloud driver, gateway state).
	DataDir string
	// Migrations runs the migration lifecycle (nil when another process
	// owns the local cloud driver: the mutations then say so).
	Migrations *jobs.Migrations
	Log        *slog.Logger
	Now        func() time.Time
	// ProgressEvery is how often a migrationProgress subscription reads
	// the database (default 1 s).
	ProgressEvery time.Duration
}
