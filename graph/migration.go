package graph

import (
	"context"
	"strings"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/jobs"
)

// migrations returns the lifecycle runner or a readable error when this
// process does not run migrations.
func (r *Resolver) migrations() (*jobs.Migrations, error) {
	if r.Migrations == nil {
		return nil, ferry.Errorf(ferry.ECONFLICT, "this server process does not run migrations: the local cloud driver is owned by another `ferry serve` on the same data directory")
	}
	return r.Migrations, nil
}

// lockMigration loads a migration for a state change; the transaction
// serialises concurrent requests on SQLite.
func lockMigration(ctx context.Context, id int) (*ent.Migration, error) {
	m, err := ent.FromContext(ctx).Migration.Get(ctx, id)
	if ent.IsNotFound(err) {
		return nil, ferry.Errorf(ferry.ENOTFOUND, "migration %d not found", id)
	}
	return m, err
}

// recoveryPointKind names a point by its first label.
func recoveryPointKind(labels []string) string {
	for _, l := range labels {
		if !strings.Contains(l, ":") {
			return l
		}
	}
	return "sync"
}
