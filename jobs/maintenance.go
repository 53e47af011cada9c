package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"entgo.io/ent/dialect"
	"github.com/hibiken/asynq"

	"github.com/ferry-migrate/ferry/engine"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/revocationevent"
	"github.com/ferry-migrate/ferry/ent/session"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

// TypePruneSessions deletes expired sign-in sessions.
const TypePruneSessions = "maintenance:prune_sessions"

// NewPruneSessionsTask returns the task. Unique collapses schedules that
// several processes enqueue in the same hour (best-effort; the task is
// idempotent anyway).
func NewPruneSessionsTask() (*asynq.Task, []asynq.Option) {
	return asynq.NewTask(TypePruneSessions, nil), []asynq.Option{asynq.Queue("low"), asynq.Unique(time.Hour)}
}

// TypeOptimizeDatabase refreshes the query planner's statistics.
const TypeOptimizeDatabase = "maintenance:optimize_database"

// NewOptimizeDatabaseTask returns the task, unique per hour like prune.
func NewOptimizeDatabaseTask() (*asynq.Task, []asynq.Option) {
	return asynq.NewTask(TypeOptimizeDatabase, nil), []asynq.Option{asynq.Queue("low"), asynq.Unique(time.Hour)}
}

// Maintenance handles housekeeping tasks.
type Maintenance struct {
	Client *ent.Client
	// Dialect is the database's (dialect.SQLite or dialect.Postgres).
	Dialect string
	Now     func() time.Time
	Log     *slog.Logger
}

// RevocationRetention is how long the revocation feed keeps an event: as
// long as a gateway keeps the subject revoked.
const RevocationRetention = engine.RevocationKeep

// PruneSessions is idempotent: deleting what is already gone deletes
// nothing. It also prunes the revocation feed's old events.
func (m *Maintenance) PruneSessions(ctx context.Context, _ *asynq.Task) error {
	n, err := m.Client.Session.Delete().Where(session.ExpiresAtLT(m.Now())).Exec(viewer.SystemContext(ctx))
	if err != nil {
		return fmt.Errorf("prune sessions: %w", err)
	}
	m.Log.InfoContext(ctx, "pruned expired sessions", "count", n)
	r, err := m.Client.RevocationEvent.Delete().Where(revocationevent.CreatedAtLT(m.Now().Add(-RevocationRetention))).
		Exec(viewer.SystemContext(ctx))
	if err != nil {
		return fmt.Errorf("prune revocation events: %w", err)
	}
	if r > 0 {
		m.Log.InfoContext(ctx, "pruned old revocation events", "count", r)
	}
	return nil
}

// OptimizeDatabase refreshes SQLite's planner statistics for tables that
// changed a lot (PRAGMA optimize). On PostgreSQL autovacuum keeps them, so
// there is nothing to do.
func (m *Maintenance) OptimizeDatabase(ctx context.Context, _ *asynq.Task) error {
	if m.Client == nil || m.Dialect == dialect.Postgres {
		return nil
	}
	if _, err := m.Client.ExecContext(viewer.SystemContext(ctx), "PRAGMA optimize"); err != nil {
		return fmt.Errorf("optimize database: %w", err)
	}
	return nil
}

// Register adds the maintenance handlers to mux.
func (m *Maintenance) Register(mux *asynq.ServeMux) {
	mux.HandleFunc(TypePruneSessions, m.PruneSessions)
	mux.HandleFunc(TypeOptimizeDatabase, m.OptimizeDatabase)
}
