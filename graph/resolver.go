// Package graph is Ferry's GraphQL API: the schema under graph/schema, the
// resolvers, the error presenter, limits and the audit trail of mutations.
// Resolvers translate between GraphQL and ent; tenant isolation happens below
// them, in ent's interceptors and hooks.
package graph

import (
	"context"
	"log/slog"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/engine/cloud"
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
	// Clouds opens and checks cloud accounts by provider.
	Clouds *cloud.Registry
	// Migrations is the migration lifecycle service.
	Migrations ferry.MigrationService
	// Waves runs plan waves over the lifecycle (nil: not in this process).
	Waves ferry.WaveService
	// MigrationSettings changes a migration's RPO and retention.
	MigrationSettings ferry.MigrationSettingsService
	Log               *slog.Logger
	Now               func() time.Time
	// ProgressEvery is how often a migrationProgress subscription reads
	// the database (default 1 s).
	ProgressEvery time.Duration
}

// afterCommit runs fn once the mutation's transaction has committed (at
// once outside a transaction), so that a task never sees the database
// before the change that asked for it. A failed enqueue is logged: the
// reconciler re-derives the work from the database (at start-up and every
// few minutes). Plans and migrations both enqueue through it.
func (r *Resolver) afterCommit(ctx context.Context, fn func(context.Context) error) {
	run := func() {
		if err := fn(context.WithoutCancel(ctx)); err != nil {
			r.Log.ErrorContext(ctx, "enqueue after commit", "error", err)
		}
	}
	tx := ent.TxFromContext(ctx)
	if tx == nil {
		run()
		return
	}
	tx.OnCommit(func(next ent.Committer) ent.Committer {
		return ent.CommitFunc(func(ctx context.Context, tx *ent.Tx) error {
			err := next.Commit(ctx, tx)
			if err == nil {
				run()
			}
			return err
		})
	})
}
