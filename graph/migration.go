package graph

import (
	"context"
	"strings"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/internal/viewer"
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

// beginAction is the common start of testLaunch, cutover and rollback: the
// operator role, a server process that runs migrations, the migration
// (loaded inside the request's transaction, which serialises concurrent
// requests on SQLite) and the state machine's consent to action.
func (r *Resolver) beginAction(ctx context.Context, id int, action ferry.MigrationAction) (*jobs.Migrations, *ent.Migration, error) {
	if _, err := require(ctx, viewer.RoleOperator); err != nil {
		return nil, nil, err
	}
	mg, err := r.migrations()
	if err != nil {
		return nil, nil, err
	}
	m, err := ent.FromContext(ctx).Migration.Get(ctx, id)
	if ent.IsNotFound(err) {
		return nil, nil, ferry.Errorf(ferry.ENOTFOUND, "migration %d not found", id)
	}
	if err != nil {
		return nil, nil, err
	}
	if err := m.State.Allows(action); err != nil {
		return nil, nil, err
	}
	return mg, m, nil
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
